"""Property-based tests of the verdicts (issue: property-based suite; docs/testing.md).

Every property drives the public API (build / one_step / check_claims / verify) on sizes, options
and inputs drawn by tests/strategies.py. The claims must PASS exactly where the paper (with our
fixes) is right, and each known gap must show exactly when its condition holds.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from universality import Config, ConfigError, Design, build, one_step, verify
from universality.samples import BELOW_ONE, Sample
from universality.verify import check_claims

from .strategies import (alphas, configs, epsilons, kept_sign, labels, relu_grads, sizes, triples)

README = Config(N=6, J=4, L=4)


def verdicts(results) -> dict:
    return {c.id: c.verdict.value for c in results}


def not_passed(results) -> dict:
    return {c.id: (c.verdict.value, c.note) for c in results if c.verdict.value not in ("PASS", "SKIPPED")}


@st.composite
def signed_cases(draw):
    cfg = draw(configs(variant="signed", eps=epsilons(), alpha=alphas(), r=relu_grads()))
    samples = [draw(triples(cfg)) for _ in range(draw(st.integers(1, 3)))]
    return cfg, samples


# ---- 1. the signed variant: every claim PASSes whenever y != 0 and r != 0 ------------------------
@given(signed_cases())
@example((README, [Sample((0.3,), (0.7,), (1.5,), "README")]))
@example((README, [Sample((0.0,), (BELOW_ONE,), (-1e-8,), "extremes")]))
@example((Config(N=4, J=1, L=1), [Sample((0.0,), (0.0,), (1e8,), "one cell, x = x*")]))
@example((Config(N=4, J=1, L=2, layout="paper"), [Sample((0.5,), (0.5,), (-2.0,), "smallest paper")]))
@example((Config(N=12, J=2, L=2, dx=2, dy=3, eps=1e-12, alpha=-1e3, relu_grad_at_zero=0.01),
          [Sample((0.5, 0.0), (BELOW_ONE, 0.5), (1e8, -1e-8, 3.0), "ill-conditioned")]))
def test_signed_variant_every_claim_passes(case):
    cfg, samples = case
    results = check_claims(build(cfg), samples)
    assert not not_passed(results), (cfg, samples, not_passed(results))
    assert all(c.verdict.value == "PASS" for c in results)


@settings(max_examples=10)  # a full verify() with the five findings per example
@given(configs(variant="signed", samples=2))
@example(README.with_(samples=2))
def test_verify_signed_passes_and_every_gap_is_shown(cfg):
    report = verify(cfg)
    assert report.passed, not_passed(report.claims)
    for f in report.findings:
        if f.id == "depth-jl" and cfg.cells_x * cfg.cells_star < 3:
            assert not f.demonstrated  # not applicable: a depth-J*L network has no code layer
        else:
            assert f.demonstrated, (f.id, f.headline)


# ---- 2. the known gaps appear exactly when their conditions hold ---------------------------------
@st.composite
def paper_cases(draw):
    cfg = draw(configs(variant="paper", eps=epsilons(), alpha=alphas()))
    return cfg, draw(triples(cfg))


@given(paper_cases())
@example((README.with_(variant="paper"), Sample((0.3,), (0.7,), (1.5,), "bad sign")))
@example((README.with_(variant="paper"), Sample((0.3,), (0.7,), (-1.5,), "kept sign")))
@example((Config(N=4, J=1, L=1, dy=2, alpha=1e-8, variant="paper"),  # found by Hypothesis: a clipped
          Sample((0.0,), (0.0,), (1e-8, -1e8), "tiny clipped component")))  # 1e-8 beside 1e8
def test_paper_variant_fails_exactly_for_the_clipped_sign(case):
    """Gap 2: the paper variant is right iff -alpha * y_d > 0 for every label component."""
    cfg, s = case
    results = check_claims(build(cfg), [s])
    clipped = bool(np.any(cfg.alpha * np.asarray(s.y) > 0))
    bad = not_passed(results)
    if clipped:
        assert verdicts(results)["z-star-is-minus-alpha-v"] == "FAIL"
        assert verdicts(results)["post-update-eq3"] == "FAIL"  # eq. (3) assumes the ReLUs are linear
        assert set(bad) <= {"z-star-is-minus-alpha-v", "post-update-eq3", "v-decodes", "multiplexer",
                            "nonneg-linear-regime"}
        # all components clipped: nothing is left, the gate stays shut
        if np.all(cfg.alpha * np.asarray(s.y) > 0):
            assert verdicts(results)["multiplexer"] == "FAIL"
    else:
        assert not bad, bad


@given(configs(r=st.just(0.0), eps=epsilons(), alpha=alphas()).flatmap(
    lambda cfg: st.tuples(st.just(cfg), triples(cfg))))
@example((README.with_(relu_grad_at_zero=0.0), Sample((0.3,), (0.7,), (-1.5,), "README, r = 0")))
def test_relu_grad_zero_collapses(case):
    """Gap 1: with ReLU'(0) = 0 no error crosses the kink: theta_b' = 0, zbar* = 0, claims FAIL."""
    cfg, s = case
    con = build(cfg)
    st_ = one_step(con, s.x, s.y, s.x_star)
    assert st_.theta_b_post == 0.0
    assert not np.any(st_.z_star[con.blocks.mid])
    v = verdicts(check_claims(con, [s]))
    for cid in ("z-star-is-minus-alpha-v", "e-linear", "multiplexer", "v-decodes"):
        assert v[cid] == "FAIL", (cid, v)


@given(configs(eps=epsilons(), alpha=alphas()).flatmap(
    lambda cfg: st.tuples(st.just(cfg), triples(cfg, y=st.just((0.0,) * cfg.dy)))))
@example((README, Sample((0.3,), (0.7,), (0.0,), "y = 0")))
def test_zero_label_no_switch(case):
    """Gap 4: y = 0 moves nothing; the switch stays off; e-linear and multiplexer FAIL."""
    cfg, s = case
    con = build(cfg)
    st_ = one_step(con, s.x, s.y, s.x_star)
    assert not np.any(st_.grads) and st_.theta_b_post == 0.0
    v = verdicts(check_claims(con, [s]))
    assert v["e-linear"] == "FAIL" and v["multiplexer"] == "FAIL" and v["v-decodes"] == "SKIPPED"


@given(configs(variant="signed").filter(lambda c: c.dy >= 2), st.floats(0.1, 10.0))
def test_label_in_kernel_of_e_check_no_switch(cfg, mag):
    """Gap 4, general form: y != 0 but e_check(y) = sum(y) = 0 leaves theta_b' = 0 (e-linear FAILs)."""
    y = np.zeros(cfg.dy)
    y[0], y[1] = mag, -mag
    s = Sample((0.25,) * cfg.dx, (0.75,) * cfg.dx, tuple(y), "sum 0")
    con = build(cfg)
    assert one_step(con, s.x, s.y, s.x_star).theta_b_post == 0.0
    v = verdicts(check_claims(con, [s]))
    assert v["e-linear"] == "FAIL"
    # the signed-variant claim is stated for e_check(y) != 0 (spec erratum): SKIPPED here, while eq. (3)
    # with the real theta_b' = 0 (no switch) still holds and is checked
    assert v["z-star-is-minus-alpha-v"] == "SKIPPED" and v["post-update-eq3"] == "PASS"


@given(st.sampled_from([(1, 3), (3, 1), (2, 2), (2, 3), (3, 2), (3, 3), (2, 4), (4, 2)]), st.data())
def test_depth_jl_gap(JL, data):
    """Gap 5: with N = J*L (one-hot codes, two layers short) exactly the uncovered cells lose x*."""
    J, L = JL
    N = J * L
    if N >= 4:
        with pytest.raises(ConfigError, match=str(N + 2)):
            Config(N=N, J=J, L=L, layout="paper")
    alpha = data.draw(alphas(1e-2, 10.0))
    short = build(Design(N=N, J=J, L=L, layout="truncated", alpha=alpha))
    full = build(Design(N=N + 2, J=J, L=L, layout="paper", alpha=alpha))
    y = (data.draw(st.sampled_from([1.0, -1.0])) * data.draw(st.floats(0.1, 10.0)),)
    for j, l in itertools.product(range(J), range(L)):
        s = Sample(((j + 0.5) / J,), ((l + 0.5) / L,), y, f"cell {j},{l}")
        covered = j + J * l < N - 2
        st_ = one_step(short, s.x, s.y, s.x_star)
        assert bool(np.any(st_.z_star[short.blocks.mid])) == covered
        assert (verdicts(check_claims(short, [s], claim_ids={"multiplexer"}))["multiplexer"] == "PASS") == covered
        if not covered:  # N = J L + 2 serves the cell the short network misses
            assert all(c.verdict.value == "PASS" for c in check_claims(full, [s]))


# ---- 3. metamorphic relations ---------------------------------------------------------------
def zbar(con, s, alpha=None):
    return one_step(con, s.x, s.y, s.x_star, alpha=alpha).z_star[con.blocks.mid]


def close(a, b, rel=1e-9):
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(a - b))) <= rel * scale


def swap_pairs(z, blocks):
    return z.reshape(blocks.m, blocks.s, blocks.dy)[:, ::-1, :].reshape(-1)


@st.composite
def moderate_cases(draw, variant="signed"):
    cfg = draw(configs(variant=variant))
    return cfg, draw(triples(cfg, y=labels(cfg.dy, 1e-3, 1e3)))


@given(moderate_cases(), st.floats(1e-3, 1e3))
@example((README, Sample((0.3,), (0.7,), (1.5,), "README")), 3.0)
def test_scaling_alpha_scales_zbar(case, c):
    cfg, s = case
    z1 = zbar(build(cfg), s)
    zc = zbar(build(cfg.with_(alpha=c * cfg.alpha)), s)
    assert close(zc, c * z1)
    # signed variant: flipping the sign of alpha swaps each (+, -) pair
    zneg = zbar(build(cfg.with_(alpha=-cfg.alpha)), s)
    con = build(cfg)
    assert close(zneg, swap_pairs(z1, con.blocks))


@given(moderate_cases(), st.floats(1e-3, 1e3))
def test_label_linearity(case, c):
    """zbar* is positively homogeneous in y and y -> -y swaps the (+, -) pairs (signed variant)."""
    cfg, s = case
    con = build(cfg)
    z1 = zbar(con, s)
    scaled = Sample(s.x, s.x_star, tuple(c * v for v in s.y), "scaled")
    flipped = Sample(s.x, s.x_star, tuple(-v for v in s.y), "flipped")
    assert close(zbar(con, scaled), c * z1)
    assert close(zbar(con, flipped), swap_pairs(z1, con.blocks))


@given(moderate_cases())
@example((README, Sample((0.3,), (0.7,), (1.5,), "README")))
@example((README, Sample((0.3,), (0.3,), (1.5,), "x = x*, same cell")))
def test_swapping_x_and_x_star(case):
    """Swapping x and x* changes zbar* exactly when the code differs on the swapped cells."""
    cfg, s = case
    con = build(cfg)
    a, b = con.bin_x(s.x), con.bin_star(s.x_star)
    a2, b2 = con.bin_x(s.x_star), con.bin_star(s.x)
    z = zbar(con, s)
    zs = zbar(con, Sample(s.x_star, s.x, s.y, "swapped"))
    same_code = np.array_equal(con.code_vector(a, b), con.code_vector(a2, b2))
    assert close(z, zs) == same_code


@given(st.sampled_from([(1, 2), (2, 1), (2, 2), (2, 3), (3, 2), (3, 3), (2, 4), (4, 2)]),
       st.sampled_from(["signed", "paper"]), st.data())
def test_relabelling_bins_permutes_channels(JL, variant, data):
    """Paper layout: moving (x, x*) from cell (a, b) to (pi a, sigma b) permutes the code channels."""
    J, L = JL
    cfg = Config(N=J * L + 2, J=J, L=L, variant=variant, alpha=data.draw(alphas(1e-2, 10.0)),
                 eps=data.draw(epsilons(1e-3, 10.0)))
    con = build(cfg)
    b = con.blocks
    pi = data.draw(st.permutations(range(J)))
    sigma = data.draw(st.permutations(range(L)))
    a, bb = data.draw(st.integers(0, J - 1)), data.draw(st.integers(0, L - 1))
    y = data.draw(labels(1, 1e-2, 1e2, sign=kept_sign(cfg.alpha)))
    z = zbar(con, Sample(((a + .5) / J,), ((bb + .5) / L,), y, "orig"))
    zp = zbar(con, Sample(((pi[a] + .5) / J,), ((sigma[bb] + .5) / L,), y, "moved"))
    # the channel permutation induced by (pi, sigma): c(j, l) = j + J l -> c(pi j, sigma l)
    perm = np.empty(b.m, dtype=int)
    for j, l in itertools.product(range(J), range(L)):
        perm[pi[j] + J * sigma[l]] = j + J * l
    zr = z.reshape(b.m, b.s * b.dy)[perm].reshape(-1)
    assert close(zp, zr)


# ---- 4. sizes strategy sanity: every drawn size is a valid Config ---------------------------------
@given(sizes())
def test_sizes_are_valid(sz):
    N, J, L, dx, dy, layout = sz
    cfg = Config(N=N, J=J, L=L, dx=dx, dy=dy, layout=layout)
    assert cfg.resolved_layout in ("paper", "compact")
    assert cfg.N <= 12
