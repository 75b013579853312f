"""The verifier must be able to fail: targeted corruptions of the construction, each with the claim
expected to catch it (issue 2's requirement). Every corruption below changes what the network
computes (or what it is declared to compute); the named claim must FAIL on the ordinary samples.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from universality import Config, build, one_step
from universality.samples import make_samples
from universality.verify import check_claims

CFG = Config(N=6, J=2, L=3, samples=6)


@pytest.fixture(scope="module")
def con():
    return build(CFG)


@pytest.fixture(scope="module")
def samples():
    return make_samples(CFG.samples, CFG.seed, CFG.J, CFG.L)


def on_engine(con, engine: str):
    """The same (possibly corrupted) construction on the requested backend: the sparse engine gets
    every entry of the dense stack as a general CSR matrix per layer (nothing assumed about which
    blocks are nonzero, so a corrupted entry anywhere is executed)."""
    if engine == "dense":
        return con
    import copy

    from universality.engine.layers import to_sparse

    out = copy.copy(con)  # keeps instance-level overrides (a patched phi)
    out.W, out.extras = to_sparse(con.W), {}
    return out


def failing(con, samples, engine: str = "dense") -> set:
    return {c.id for c in check_claims(on_engine(con, engine), samples) if c.verdict.value == "FAIL"}


ENGINES = ["dense", "sparse"]


def with_W(con, edit):
    W = con.W.copy()
    edit(W, con.blocks)
    return replace(con, W=W)


@pytest.mark.parametrize("engine", ENGINES)
def test_baseline_passes(con, samples, engine):
    assert failing(con, samples, engine) == set()


# (corruption, the claim that must catch it)
CASES = {
    # a weight entry of the middle channel: A_3 is no longer what the products telescope to
    "middle diagonal weight of W_3 * 1.5": (
        lambda c: with_W(c, lambda W, b: W.__setitem__((2, b.mid.start, b.mid.start), W[2, b.mid.start, b.mid.start] * 1.5)),
        {"boundary", "z-star-is-minus-alpha-v"}),
    # an entry of the off-diagonal (mid, top) block: zbar != 0 before the step, the gate opens early
    "(mid, top) entry of W_3 = 0.5": (
        lambda c: with_W(c, lambda W, b: W.__setitem__((2, b.mid.start, 0), 0.5)),
        {"multiplexer", "update-blocks"}),
    # an entry of the top block (the code difference G_{i-1} - G_i): B_i changes
    "top (x*-cell, x-cell) entry of W_3 * 1.5": (
        lambda c: with_W(c, lambda W, b: W.__setitem__((2, b.cells_x + 1, 1), W[2, b.cells_x + 1, 1] * 1.5)),
        {"boundary", "kernel-code"}),
    # a bottom-channel weight feeding the middle channel after the step
    "(mid, bottom) entry of W_3 = 0.5": (
        lambda c: with_W(c, lambda W, b: W.__setitem__((2, b.mid.start, b.bottom), 0.5)),
        {"post-update-eq3"}),
    # the W_g sign convention of the middle copies: e_bar(y) flips sign
    "W_g middle columns negated": (
        lambda c: replace(c, Wg=np.where(np.arange(c.D)[None, :] < c.blocks.bottom, -c.Wg, c.Wg)),
        {"z-star-is-minus-alpha-v", "v-decodes"}),
    # epsilon: the weights realise a different A_i than the one declared
    "weights built with eps = 0.2": (
        lambda c: replace(c, W=build(c.design.with_(eps=0.2)).W),
        {"boundary", "z-star-is-minus-alpha-v"}),
    # the r compensation: backprop uses r = 2, the weights compensate r = 1 (eq. (3) with the
    # recovered A_i and r^i still holds as algebra; the design does not)
    "backprop with r = 2, weights for r = 1": (
        lambda c: replace(c, design=c.design.with_(relu_grad_at_zero=2.0)),
        {"z-star-is-minus-alpha-v", "boundary"}),
    # one code entry realised in the weights differs from the spec's table (B_3 realises
    # c_1(1, 2) * 2): the claims read the spec's table, never the builder's declared one
    "code c_1(1, 2) * 2 in the weights": (
        lambda c: with_W(c, lambda W, b: _code_in_weights(W, b, c.codes, 1, 1, 2)),
        {"kernel-code", "boundary"}),
    # a layer order mistake
    "W_2 and W_3 swapped": (
        lambda c: with_W(c, lambda W, b: W.__setitem__([1, 2], W[[2, 1]])),
        {"boundary", "kernel-code"}),
    # theta_b does not start at 0: the switch is on before the step
    "theta_b starts at 1e-3": (
        lambda c: replace(c, theta_b=1e-3),
        {"multiplexer", "kernel-code"}),
}


def _code_in_weights(W, b, codes, ch, j, l):
    """B_{ch+2} realises c_ch(j, l) * 2: Wtilde_i = [[I, 0], [G_{i-1}^T - G_i^T, I]] moves in layers
    i = ch + 2 and ch + 3."""
    delta = float(np.asarray(codes)[ch, j, l])
    i = ch + 2
    W[i - 1, b.cells_x + l, j] -= delta
    W[i, b.cells_x + l, j] += delta


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", list(CASES))
def test_corruption_is_caught_by_the_named_claim(con, samples, name, engine):
    corrupt, expected = CASES[name]
    bad = failing(corrupt(con), samples, engine)
    assert expected <= bad, f"{name}: expected {sorted(expected)} to FAIL, got {sorted(bad)}"


def _switch(kind):
    def apply(con):
        from universality.construction.features import cell

        c = replace(con)
        b, d = c.blocks, c.design

        def phi(u, theta_b):
            out = np.zeros(b.D)
            if kind == "never" or theta_b == 0:
                out[b.top_x.start + cell(u, d.J)] = 1.0
            else:
                out[b.top_star.start + cell(u, d.L)] = 1.0
            out[b.bottom] = float(theta_b)
            return out

        c.phi = phi
        return c

    return apply


@pytest.mark.parametrize("engine", ENGINES)
def test_switch_that_never_flips_is_caught_by_kernel_code(con, samples, engine):
    """The switch of the feature map: x* lands in the x-slots after the step, k_i loses the code."""
    bad = failing(_switch("never")(con), samples, engine)
    assert {"kernel-code", "z-star-is-minus-alpha-v"} <= bad


def test_wg_bottom_sign_is_behaviourally_equivalent(con, samples):
    """Negating only wcheck_g flips the sign of theta_b' but no output: shown by execution, so no claim
    is required to catch it (see docs/mutation.md, 'equivalent mutants')."""
    mutant = replace(con, Wg=con.Wg.copy())
    mutant.Wg[:, con.blocks.bottom] *= -1
    for s in samples:
        a, b = one_step(con, s.x, s.y, s.x_star), one_step(mutant, s.x, s.y, s.x_star)
        assert a.theta_b_post == -b.theta_b_post != 0
        assert np.array_equal(a.out_star_post.yhat, b.out_star_post.yhat)
        assert np.array_equal(a.out_x.yhat, b.out_x.yhat)
