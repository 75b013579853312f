"""The claims' compiled kernels (engine/kernels.py, kclaims section) against the generic claim code
they replace (claims/one_step.py with ``UNIVERSALITY_KERNELS=0``): second-order-zero's group sweep,
grad-rank-one's formula sweeps and its comparison of every gradient entry, e-linear's magnitude
backward pass, nonneg-linear-regime's per-unit extremes of a group's stored passes.

The same values (bit for bit where the operations are the same and in the same order; within rtol
1e-12 of the rounding magnitude where only a short dot product may sum in another order), on random
layers of both stores (plain CSR per layer and the shared-row store), stored and checkpointed, with
planted entries anywhere; the same verdicts on whole runs; and each kernel's pure-Python ``.py_func``
against the compiled one (njit code is not traced by coverage)."""
from __future__ import annotations

import contextlib
import copy
import os
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from universality import Config, build
from universality.claims import CLAIMS, one_step
from universality.claims.base import FLOAT, Context
from universality.engine import batch, kernels, to_sparse
from universality.engine.batch import StepGroup, single_steps
from universality.engine.checkpoint import Sweep
from universality.engine.layers import outer_diff_max_abs_all
from universality.samples import make_samples
from universality.verify import check_claims

from .test_kernels import _random_layers

pytestmark = pytest.mark.skipif(not kernels.enabled(), reason="numba not importable or kernels disabled")


@contextlib.contextmanager
def _generic(off: bool = True):
    """The generic claim code (``UNIVERSALITY_KERNELS=0``) inside the block when ``off``, else the
    kernels; the environment restored after."""
    old = os.environ.get("UNIVERSALITY_KERNELS")
    os.environ["UNIVERSALITY_KERNELS"] = "0" if off else "1"  # (1: at every size, as the suite runs)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("UNIVERSALITY_KERNELS", None)
        else:
            os.environ["UNIVERSALITY_KERNELS"] = old


def _lazy(arr: np.ndarray, seg: int, upward: bool):
    """``arr`` (N, ...) as a checkpointed sweep's output (a LazyStack of segments of ``seg`` layers)."""

    def step(k, state, out):
        if out is not None:
            out[0][...] = arr[k]
        return state

    sw = Sweep(arr.shape[0], seg, step, ("x",), (arr.shape[1:],), upward=upward)
    sw.run(np.zeros(1))
    return sw.stack("x")


def _same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def _close(a, b, scale, rtol=1e-12) -> bool:
    """Equal NaN / inf patterns, and finite entries within rtol of ``scale`` (a magnitude per entry)."""
    a, b, scale = np.asarray(a), np.asarray(b), np.asarray(scale)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    inf = np.isinf(a) | np.isinf(b)
    if not np.array_equal(a[inf], b[inf]):
        return False
    fin = ~(np.isnan(a) | inf)
    s = np.broadcast_to(scale, a.shape)[fin]
    return bool(np.all(np.abs(a[fin] - b[fin]) <= rtol * np.where(np.isfinite(s), s, np.inf) + 1e-300))


def _factors(rng, N, D, G, special=False):
    """Random gradient factors (N, D, G): d dense, h nonzero on a few units per layer (some layers none),
    as backprop gives them on the paper layout; ``special``: an inf in one d entry."""
    dfac = rng.standard_normal((N, D, G))
    hfac = np.zeros((N, D, G))
    for k in range(N):
        if rng.random() < 0.2:
            continue
        rows = rng.choice(D, size=int(rng.integers(1, min(D, 3) + 1)), replace=False)
        hfac[k, rows] = rng.standard_normal((rows.size, G)) * (rng.random((rows.size, G)) < 0.8)
    if special:
        dfac[rng.integers(N), rng.integers(D), rng.integers(G)] = np.inf
    return dfac, hfac


def _expand(layers, dfac, hfac, coef, rng):
    """one_step._expand_group on a bare group (probes: the identity at D <= 128, else Gaussian probes
    plus each sample's own two inputs)."""
    N, D, G = layers.N, layers.D, dfac.shape[2]
    ctx = SimpleNamespace(layers=layers, N=N, D=D)
    grp = StepGroup(layers, dfac, hfac, coef)
    grp.steps = [SimpleNamespace(phi_star_post=rng.standard_normal(D), phi_x=rng.standard_normal(D))
                 for _ in range(G)]
    return one_step._expand_group(ctx, grp)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 6), D=st.sampled_from([1, 2, 5, 9, 129, 131]),
       G=st.integers(1, 4), shared=st.booleans(), seg=st.sampled_from([None, 1, 2, 4]),
       coef=st.sampled_from([-0.3, 2.0, -1e-3]), special=st.booleans())
def test_second_order_group_sweep_kernel_equals_the_generic_sweep(seed, N, D, G, shared, seg, coef, special,
                                                                  ):
    rng = np.random.default_rng(seed)
    L, _ = _random_layers(rng, N, D, shared, density=0.3 if D < 100 else 0.03)
    dfac, hfac = _factors(rng, N, D, G, special)
    if seg is not None and seg < N:
        dfac, hfac = _lazy(dfac, seg, upward=False), _lazy(hfac, seg, upward=True)
    state = rng.bit_generator.state
    with _generic():
        want = _expand(L, dfac, hfac, coef, rng)
    rng.bit_generator.state = state
    got = _expand(L, dfac, hfac, coef, rng)
    for (X, lhs, fo, la, fa), (Xg, lhs_g, fo_g, la_g, fa_g) in zip(want, got):
        assert _same(X, Xg)
        # the magnitudes have no cancellation: rtol 1e-12 of themselves; the signed sides: of the magnitudes
        assert _close(la_g, la, la) and _close(fa_g, fa, fa)
        assert _close(lhs_g, lhs, la) and _close(fo_g, fo, fa)
        if not special:  # the same operations in the same order but for the order of h^T Y's few terms
            assert np.allclose(lhs_g, lhs, rtol=1e-12, atol=1e-300) or _close(lhs_g, lhs, la)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 7), D=st.integers(1, 9), G=st.integers(1, 4),
       shared=st.booleans(), seg=st.sampled_from([None, 1, 2, 3]), r=st.sampled_from([1.0, 0.5, 1.5, 0.0]),
       special=st.booleans())
def test_grad_rank_one_formula_sweeps_are_the_generic_ones_bit_for_bit(seed, N, D, G, shared, seg, r, special,
                                                                       ):
    rng = np.random.default_rng(seed)
    L, _ = _random_layers(rng, N, D, shared, special=special)
    PHI = rng.standard_normal((D, G))
    E = rng.standard_normal((D, G))
    if special:
        E[0, 0] = np.nan
    ctx = SimpleNamespace(layers=L, N=N, cache={})
    seg = None if seg is None or seg >= N else seg
    with _generic():
        a0, m0, b0 = one_step._grad_sides(ctx, PHI, E, r, seg)
        a0, b0 = np.array(a0), np.array(b0)  # (copies: the stored sweeps reuse one pair of buffers per run)
    a1, m1, b1 = one_step._grad_sides(ctx, PHI, E, r, seg)
    assert _same(np.array(a1), a0) and _same(m1, m0) and _same(np.array(b1), b0)


def _outer_inputs(rng, N, D, G):
    P, A = rng.standard_normal((N, D, G)), rng.standard_normal((N, D, G))
    Q, B = np.zeros((N, D, G)), np.zeros((N, D, G))
    for k in range(N):
        for g in range(G):
            kind = rng.integers(4)
            ncols = int(rng.integers(0, min(D, 20) + 1))
            cols = rng.choice(D, size=ncols, replace=False)
            Q[k, cols, g] = rng.standard_normal(ncols)
            B[k, cols, g] = Q[k, cols, g] * (1 + 1e-9 * rng.standard_normal(ncols))
            if kind == 0:  # the two factor pairs equal entry for entry: every difference exactly 0
                A[k, :, g], B[k, :, g] = P[k, :, g], Q[k, :, g]
            elif kind == 1:  # the same outer product, one entry off (a planted error anywhere)
                A[k, :, g], B[k, :, g] = P[k, :, g], Q[k, :, g]
                A[k, rng.integers(D), g] += 1e-7
            elif kind == 2:  # sparse output factors too
                P[k, rng.random(D) < 0.5, g] = 0.0
    return P, Q, A, B


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 6), D=st.integers(1, 40), G=st.integers(1, 4),
       seg=st.sampled_from([None, 1, 2]))
def test_outer_diff_kernel_equals_outer_diff_max_abs_all_per_sample(seed, N, D, G, seg):
    rng = np.random.default_rng(seed)
    P, Q, A, B = _outer_inputs(rng, N, D, G)
    stacks = (P, Q, A, B)
    if seg is not None and seg < N:
        stacks = tuple(_lazy(s, seg, upward=bool(i % 2)) for i, s in enumerate(stacks))
    got = one_step._outer_diffs_group(*stacks, N)
    for g in range(G):
        want = outer_diff_max_abs_all(P[:, :, g], Q[:, :, g], A[:, :, g], B[:, :, g])
        small = ((Q[:, :, g] != 0) | (B[:, :, g] != 0)).sum(axis=1) <= 16
        assert np.array_equal(got[small, g], want[small])  # the same products in the same order
        # above 16 columns the generic code's BLAS product may fuse a multiply-add: within the rounding
        # of the products (rtol 1e-12 of their size)
        scale = (np.abs(P[:, :, g]).max(axis=1) * np.abs(Q[:, :, g]).max(axis=1)
                 + np.abs(A[:, :, g]).max(axis=1) * np.abs(B[:, :, g]).max(axis=1))
        assert np.all(np.abs(got[:, g] - want) <= 1e-12 * scale)
        # and the same verdict, each layer against its own tolerance
        tol = np.abs(rng.standard_normal(N)) * np.median(want) if want.size else np.zeros(N)
        ctx = SimpleNamespace(tol=lambda m: m)
        c0 = FLOAT.outer_equal(ctx, P[:, :, g], Q[:, :, g], A[:, :, g], B[:, :, g], lambda: tol)
        c1 = FLOAT.outer_equal(ctx, P[:, :, g], Q[:, :, g], A[:, :, g], B[:, :, g], lambda: tol,
                               diffs=got[:, g])
        assert c0.verdict == c1.verdict


def test_outer_diff_kernel_propagates_nan():
    """A NaN in an executed factor (a NaN gradient) is a NaN difference, never 0: grad-rank-one FAILs."""
    P, Q, A, B = (np.ones((2, 3, 1)) for _ in range(4))
    P[1, 2, 0] = np.nan
    got = one_step._outer_diffs_group(P, Q, A, B, 2)
    assert got[0, 0] == 0.0 and np.isnan(got[1, 0])
    chk = FLOAT.outer_equal(SimpleNamespace(tol=lambda m: m), P[:, :, 0], Q[:, :, 0], A[:, :, 0], B[:, :, 0],
                            lambda: np.ones(2), diffs=got[:, 0])
    assert chk.verdict.value == "FAIL"


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 7), D=st.integers(1, 9), G=st.integers(1, 4),
       shared=st.booleans(), seg=st.sampled_from([None, 1, 3]), r=st.sampled_from([1.0, 0.5, -0.75, 0.0]),
       special=st.booleans())
def test_abs_backward_kernel_is_the_generic_pass_bit_for_bit(seed, N, D, G, shared, seg, r, special):
    rng = np.random.default_rng(seed)
    L, _ = _random_layers(rng, N, D, shared, special=special)
    E = rng.standard_normal((D, G))
    pre = rng.choice([0.0, -0.0, 1.0, -1.0, 2.5, -1e-300, np.nan], size=(N, D, G))
    if special:
        E[rng.integers(D), rng.integers(G)] = np.inf
    ctx = SimpleNamespace(layers=L, N=N)
    stack = pre if seg is None or seg >= N else _lazy(pre, seg, upward=True)
    with _generic():
        want = one_step._abs_backward(ctx, E, stack, r)
    got = one_step._abs_backward(ctx, E, stack, r)
    assert _same(got, want)


def _group_steps(con, samples):
    """(sample, step) pairs of one group of all the samples (checked while the group is alive)."""
    return zip(samples, single_steps(con, samples, group=len(samples)))


@pytest.mark.parametrize("cfg", [Config(N=18, J=4, L=4), Config(N=66, J=8, L=8, variant="paper")])
def test_group_unit_extremes_are_each_samples_own(cfg):
    con = build(cfg, engine="sparse")
    samples = make_samples(3, 0, cfg.J, cfg.L)[:3]
    for s, st_ in _group_steps(con, samples):
        for name, pas in (("x, before", st_.fwd_x), ("x*, after", st_.fwd_star_post)):
            got = one_step._group_unit_extremes(st_, name, pas.pre)
            assert got is not None
            want = FLOAT.unit_extremes(pas.pre)
            assert _same(got[0], want[0]) and _same(got[1], want[1])
        # not a column of the group's pass: the claim reduces it itself
        assert one_step._group_unit_extremes(st_, "x, before", np.array(st_.fwd_x.pre)) is None


def _verdicts(con, samples):
    return {c.id: c for c in check_claims(con, samples)}


@pytest.mark.parametrize("cfg,checkpoint", [
    (Config(N=18, J=4, L=4, samples=4), False),
    (Config(N=66, J=8, L=8, samples=3, relu_grad_at_zero=0.5), False),
    (Config(N=38, J=6, L=6, samples=3, variant="paper", alpha=-2.0), True),
])
def test_whole_runs_kernels_on_and_off_agree(cfg, checkpoint, monkeypatch):
    """The same verdicts, and residuals within each other's tolerance, with the kernels on and off."""
    if checkpoint:
        monkeypatch.setattr(batch, "CHECKPOINT_ABOVE_BYTES", 0)
    con = build(cfg, engine="sparse")
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L)
    with _generic():
        off = _verdicts(con, samples)
    on = _verdicts(con, samples)
    assert on.keys() == off.keys()
    for cid in on:
        a, b = on[cid], off[cid]
        assert a.verdict == b.verdict and a.counts == b.counts, cid
        assert abs(a.residual - b.residual) <= max(a.tolerance, b.tolerance, 1e-300) or a.residual == b.residual, cid


@settings(max_examples=8, deadline=None)
@given(k=st.integers(0, 17), i=st.integers(0, 10_000), j=st.integers(0, 10_000),
       delta=st.sampled_from([0.25, -1.0, 1e-6, 3.0]), checkpoint=st.booleans())
def test_an_entry_anywhere_gives_the_same_verdicts_with_the_kernels(k, i, j, delta, checkpoint):
    """A planted entry anywhere in any layer (nothing assumed about the blocks): the kernels execute
    it as the generic code does, every claim's verdict the same; and the run FAILs a claim whenever
    the generic run does."""
    cfg = Config(N=18, J=4, L=4, samples=3)
    con = build(cfg, engine="sparse")
    D = con.D
    W = np.asarray(con.W).copy()
    W[k, i % D, j % D] += delta
    bad = copy.copy(con)
    bad.W, bad.extras = to_sparse(W), {}
    samples = make_samples(3, 0, 4, 4)
    old = batch.CHECKPOINT_ABOVE_BYTES
    batch.CHECKPOINT_ABOVE_BYTES = 0 if checkpoint else old
    try:
        with _generic():
            off = {c.id: c.verdict for c in check_claims(bad, samples)}
        on = {c.id: c.verdict for c in check_claims(bad, samples)}
    finally:
        batch.CHECKPOINT_ABOVE_BYTES = old
    assert on == off


@pytest.mark.parametrize("claim", ["second-order-zero", "grad-rank-one"])
def test_planted_bugs_fail_on_the_kernel_path(claim, monkeypatch):
    """The kernel path is the one taken, and still catches: a second-order term (a top row of layer 2
    reading a middle unit: two updates meet) FAILs second-order-zero; a backprop bug (ReLU'(0) = 1
    instead of r = 0.5) FAILs grad-rank-one; the clean network PASSes both."""
    from universality.engine.layers import SparseLayers, relu_grad

    calls = []
    real = kernels.kernel

    def counting(name):
        calls.append(name)
        return real(name)

    monkeypatch.setattr(kernels, "kernel", counting)
    if claim == "second-order-zero":
        cfg = Config(N=66, J=8, L=8, samples=3)
        con = build(cfg, engine="sparse")
        W = np.asarray(con.W).copy()
        W[1, 0, con.blocks.dt] += 1.0
        bad = copy.copy(con)
        bad.W, bad.extras = to_sparse(W), {}
        samples = make_samples(3, 0, 8, 8)
    else:
        cfg = Config(N=66, J=8, L=8, samples=3, relu_grad_at_zero=0.5)
        con = bad = build(cfg, engine="sparse")
        samples = make_samples(3, 0, 8, 8)[:3]
    clean = {c.id: c.verdict.value for c in check_claims(con, samples, claim_ids=[claim])}
    assert clean[claim] == "PASS"
    if claim == "grad-rank-one":
        monkeypatch.setattr(SparseLayers, "relu_grad", lambda self, pre, r: relu_grad(pre, 1.0))
    got = {c.id: c.verdict.value for c in check_claims(bad, samples, claim_ids=[claim])}
    assert got[claim] == "FAIL"
    want = {"second-order-zero": {"so_sweep"}, "grad-rank-one": {"adjoint_pair", "chain_compare"}}[claim]
    assert want <= set(calls)


# ---- coverage: each kernel's pure-Python body against the compiled one (tiny inputs) ----------------

def _tiny(shared):
    rng = np.random.default_rng(3)
    L, _ = _random_layers(rng, 3, 4, shared, density=0.6)
    return rng, L, kernels.flat_of(L)


@pytest.mark.parametrize("shared", [False, True])
def test_kernels_py_func_equal_the_compiled_ones(shared):
    rng, L, f = _tiny(shared)
    N, D, G = 3, 4, 2
    dfac, hfac = _factors(rng, N, D, G)
    dfac[0, 1, 0] = np.inf  # the block-diagonal NaN rule
    hfac[1, 2, 1] = 0.5
    q, p, qa, pa = 1, 2, 0, 3
    B = rng.standard_normal((D, q + G * p + 2 * G * (q + p)))
    Ba = np.abs(rng.standard_normal((D, qa + G * pa + 2 * G * (qa + pa))))
    outs = []
    for fn in (kernels.kernel("so_sweep"), kernels.kernel("so_sweep").py_func):
        cur, out, cura, outa = B.copy(), np.empty_like(B), Ba.copy(), np.empty_like(Ba)
        fn(*f.args, N - 1, 0, dfac, hfac, cur, out, q, p, -0.3, cura, outa, qa, pa, 0.3)
        outs.append((out, outa) if N % 2 else (cur, cura))
    assert _same(outs[0][0], outs[1][0]) and _same(outs[0][1], outs[1][1])
    X = rng.standard_normal((D, G))
    rpow = np.array([0.5 ** (k + 1) for k in range(N)])
    pre = rng.choice([0.0, -1.0, 2.0, np.nan], size=(N, D, G))
    res = []
    for chain, adj, absb in ((kernels.kernel("chain_segment"), kernels.kernel("adjoint_segment"),
                              kernels.kernel("abs_backward_segment")),
                             (kernels.kernel("chain_segment").py_func, kernels.kernel("adjoint_segment").py_func,
                              kernels.kernel("abs_backward_segment").py_func)):
        bout, aout, amax = np.empty((N, D, G)), np.empty((N, D, G)), np.empty((N, G))
        b = chain(*f.args, N - 1, 0, X, bout, True)
        a = adj(*f.args, 0, N, X, rpow, aout, True, False, np.zeros((1, 1)), False)
        m = adj(*f.args, 0, N, np.abs(X), rpow, np.zeros((1, 1, 1)), False, True, amax, True)
        c = absb(*f.args, 0, N, np.abs(X), pre, 0.5)
        pout, pmax = np.empty((N, D, G)), np.empty((N, G))
        (kernels.kernel("adjoint_pair") if chain is kernels.kernel("chain_segment")
         else kernels.kernel("adjoint_pair").py_func)(*f.args, X, np.abs(X), rpow, pout, pmax)
        assert _same(pout, aout) and _same(pmax, amax)  # the pair: each chain as apart
        res.append((b, bout, a, aout, m, amax, c))
    for u, v in zip(*res):
        assert _same(u, v)
    P, Q, A, B4 = _outer_inputs(np.random.default_rng(7), 3, 20, 2)
    o1, o2 = np.empty((3, 2)), np.empty((3, 2))
    kernels.kernel("outer_diff_group")(P, Q, A, B4, 16, o1)
    kernels.kernel("outer_diff_group").py_func(P, Q, A, B4, 16, o2)
    assert _same(o1, o2)
    P[0, 0, 0] = np.nan
    kernels.kernel("outer_diff_group").py_func(P, Q, A, B4, 2, o2)
    assert np.isnan(o2[0, 0])


def test_group_step_ops_are_each_steps_own():
    """The tolerance's operation count of a step (tolerance.step_ops), counted for its whole group at
    once: the same integer; None for a step that is not its group's column."""
    from universality.claims.base import _group_step_ops
    from universality.tolerance import step_ops

    cfg = Config(N=18, J=4, L=4)
    con = build(cfg, engine="sparse")
    samples = make_samples(3, 0, 4, 4)[:3]
    for s, st_ in _group_steps(con, samples):
        assert _group_step_ops(st_) == step_ops(st_)
        lone = copy.copy(st_)
        lone.W_post = copy.copy(st_.W_post)
        lone.W_post.Hfac = np.array(st_.W_post.Hfac)
        assert _group_step_ops(lone) is None


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 6), M=st.integers(1, 12), special=st.booleans())
def test_column_extremes_kernel_equals_numpy_max_and_min(seed, n, M, special):
    rng = np.random.default_rng(seed)
    A = rng.choice([0.0, -0.0, 1.0, -2.0, 3.5, -1e-300, np.inf, -np.inf] + ([np.nan] if special else []),
                   size=(n, M))
    for run in (kernels.kernel("column_extremes"), kernels.kernel("column_extremes").py_func):
        hi, lo = np.empty(M), np.empty(M)
        run(A, hi, lo)
        assert _same(hi, A.max(axis=0, initial=-np.inf)) and _same(lo, A.min(axis=0, initial=np.inf))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), cells=st.integers(1, 40), m=st.integers(1, 12), ties=st.booleans())
def test_separation_margin_kernel_equals_the_generic_one(seed, cells, m, ties):
    monkeypatch = pytest.MonkeyPatch()
    try:
        _separation_margin_case(monkeypatch, seed, cells, m, ties)
    finally:
        monkeypatch.undo()


def _separation_margin_case(monkeypatch, seed, cells, m, ties):
    """decode.separation_margin through rejection_min: the same margin within rounding (rtol 1e-12
    of the unit rows' size), for random gains and for one-hot gains (every cell a candidate)."""
    from universality import decode

    rng = np.random.default_rng(seed)
    if ties:
        Wc = np.zeros((cells, m))
        Wc[np.arange(cells), rng.integers(m, size=cells)] = rng.uniform(0.5, 2.0, cells)
    else:
        Wc = rng.standard_normal((cells, m))
    Wc[rng.integers(cells)] *= 0.0 if rng.random() < 0.2 else 1.0
    monkeypatch.setattr(decode, "KERNEL_MIN_ENTRIES", 0)
    for index in range(min(cells, 5)):
        decode._UNIT_CACHE[:] = [None, None, None, None]
        with _generic():
            want = decode.separation_margin(Wc, index)
        decode._UNIT_CACHE[:] = [None, None, None, None]
        got = decode.separation_margin(Wc, index)
        assert abs(got - want) <= 1e-12 or got == want
    norms, unit = decode._unit_rows(Wc)
    cand = np.arange(cells, dtype=np.int64)
    cand = cand[cand != 0]
    assert kernels.kernel("rejection_min").py_func(unit, cand, 0) == kernels.kernel("rejection_min")(unit, cand, 0)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 30), G=st.integers(1, 4))
def test_nonzero_per_column_kernel_counts_as_numpy(seed, n, G):
    rng = np.random.default_rng(seed)
    A = rng.choice([0.0, -0.0, 1.0, np.nan, -np.inf, 1e-300], size=(n, G))
    for run in (kernels.kernel("nonzero_per_column"), kernels.kernel("nonzero_per_column").py_func):
        counts = np.zeros(G, dtype=np.int64)
        run(A, counts)
        assert np.array_equal(counts, np.count_nonzero(A, axis=0))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 6), D=st.integers(1, 24), G=st.integers(1, 4),
       shared=st.booleans(), special=st.booleans())
def test_chain_compare_is_the_chain_then_the_comparison_bit_for_bit(seed, N, D, G, shared, special):
    """grad-rank-one's stored group path: chain_compare (b never stored) gives the per-layer maxima
    that chain_segment's stored b and outer_diff_group give, bit for bit (also in pure Python)."""
    rng = np.random.default_rng(seed)
    L, _ = _random_layers(rng, N, D, shared, special=special)
    f = kernels.flat_of(L)
    PHI = rng.standard_normal((D, G))
    P, Q, A, _ = _outer_inputs(rng, N, D, G)
    bvec = np.empty((N, D, G))
    kernels.kernel("chain_segment")(*f.args, N - 1, 0, PHI, bvec, True)
    Q[:, :, 0] = bvec[:, :, 0]  # one sample's executed factor equal to the formula's (difference 0)
    want = np.empty((N, G))
    kernels.kernel("outer_diff_group")(P, Q, A, bvec, 16, want)
    for run in (kernels.kernel("chain_compare"), kernels.kernel("chain_compare").py_func):
        got = np.empty((N, G))
        run(*f.args, PHI, P, Q, A, 16, got)
        assert _same(got, want)
