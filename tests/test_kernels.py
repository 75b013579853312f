"""The compiled kernels (engine/kernels.py) against the generic layer algebra they replace: the same
values, on random layers of both stores (plain CSR per layer and the shared-row store), with planted
entries anywhere (nothing assumed about the blocks), and whole runs with the kernels on and off."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from universality.engine import kernels
from universality.engine.batch import forward_sweep
from universality.engine.layers import SparseLayers

pytestmark = pytest.mark.skipif(not kernels.enabled(), reason="numba not importable or kernels disabled")


def _random_layers(rng, N, D, shared, density=0.3, ref_share=0.7, special=False):
    """N random D x D layers, most rows shared with a common reference (as the paper layout's), the
    others random; ``special``: some entries inf / nan / -0.0."""
    ref = (rng.random((D, D)) < density) * rng.standard_normal((D, D))
    mats = []
    for _ in range(N):
        W = ref.copy()
        own = rng.random(D) > ref_share
        W[own] = (rng.random((int(own.sum()), D)) < density) * rng.standard_normal((int(own.sum()), D))
        if special and rng.random() < 0.5:
            i, j = rng.integers(D, size=2)
            W[i, j] = rng.choice([np.inf, -np.inf, np.nan, -0.0, 1e300])
        mats.append(W)
    import scipy.sparse as sp

    return SparseLayers([sp.csr_matrix(W) for W in mats], D, shared=shared), np.stack(mats)


def _same(a, b):
    """Equal bit for bit up to the sign of zero, NaN equal to NaN."""
    return np.array_equal(a, b, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 6), D=st.integers(1, 9), G=st.integers(1, 4),
       shared=st.booleans(), special=st.booleans())
def test_layer_products_equal_the_generic_ones(seed, N, D, G, shared, special):
    rng = np.random.default_rng(seed)
    L, _ = _random_layers(rng, N, D, shared, special=special)
    X = rng.standard_normal((D, G))
    want = {(t, a): [(L.abs_apply_T if t else L.abs_apply)(k, X) if a else (L.apply_T if t else L.apply)(k, X)
                     for k in range(N)] for t in (False, True) for a in (False, True)}
    for (t, a), ws in want.items():
        for k in range(N):
            got = kernels.apply(L, k, X, transpose=t, absolute=a)
            assert _same(got, ws[k]), (t, a, k)
    # the flat form shares its memory with the store: the generic products are unchanged after it
    for k in range(N):
        assert _same(L.apply(k, X), want[(False, False)][k])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 9), D=st.integers(1, 8), G=st.integers(1, 3),
       shared=st.booleans(), seg=st.integers(1, 9), relu=st.booleans(), special=st.booleans())
def test_forward_sweep_kernel_equals_layer_by_layer(seed, N, D, G, shared, seg, relu, special):
    rng = np.random.default_rng(seed)
    L, _ = _random_layers(rng, N, D, shared, special=special)
    PHI = rng.standard_normal((D, G))
    ident = (lambda u: u)
    seg = min(seg, N)
    a = forward_sweep(L.apply, L.relu if relu else ident, N, seg, PHI, extremes=True)
    b = forward_sweep(L.apply, L.relu if relu else ident, N, seg, PHI, extremes=True, layers=L, use_relu=relu)
    assert b.segment is not None and a.segment is None
    assert _same(a.final, b.final)
    assert _same(a.extremes[0], b.extremes[0]) and _same(a.extremes[1], b.extremes[1])
    for name in ("pre", "inp"):
        sa, sb = a.stack(name), b.stack(name)
        for k in range(N):
            assert _same(sa[k], sb[k]), (name, k)


def test_set_layer_drops_the_flat_form():
    rng = np.random.default_rng(0)
    L, W = _random_layers(rng, 3, 5, True)
    X = rng.standard_normal((5, 2))
    kernels.apply(L, 1, X)
    W1 = W[1].copy()
    W1[2, 3] = 7.5  # a planted entry: executed by the kernel too
    L.mats[1] = W1
    assert np.allclose(kernels.apply(L, 1, X), W1 @ X, rtol=1e-13, atol=0)
    assert not np.allclose(kernels.apply(L, 1, X), W[1] @ X, rtol=1e-13, atol=0)


def test_no_kernel_captures_a_dispatcher_in_its_closure():
    """Numba's on-disk cache keys a kernel by its closure variables' pickled bytes, and a compiled
    dispatcher pickles differently in every process: a kernel that captured one would be compiled
    again in every run. Kernels call each other through module globals."""
    from numba.core.dispatcher import Dispatcher

    kernels.kernel("layer_apply")
    for name, f in kernels._K.items():
        cells = f.py_func.__closure__ or ()
        assert not any(isinstance(c.cell_contents, Dispatcher) for c in cells), name


# ---- the engine's sweeps through the kernels (kengine section) against the generic sweeps ----------
# The generic code runs with the kernels switched off (``kernels.enabled`` False through the
# environment); both run the very same layers. Plain passes and backprop are compared bit for bit
# (the same operations in the same order, NaN and signed-zero rules included); the passes through
# updated layers accumulate h^T X in order where the generic code calls a BLAS product, and are
# compared within rtol 1e-12 on finite values (special values in the layers would make the two
# differ only in how a NaN or inf of one column leaks into another through BLAS's exact zeros).

from universality import Config, build  # noqa: E402
from universality.engine import batch as _batch  # noqa: E402
from universality.engine import step as _step  # noqa: E402
from universality.engine.batch import PerColumnUpdates, backward_sweep  # noqa: E402
from universality.engine.layers import UpdatedLayers  # noqa: E402


class _Off:
    """Kernels switched off inside the block (the generic code runs)."""

    def __enter__(self):
        import os

        self._old = os.environ.get("UNIVERSALITY_KERNELS")
        os.environ["UNIVERSALITY_KERNELS"] = "0"

    def __exit__(self, *exc):
        import os

        if self._old is None:
            del os.environ["UNIVERSALITY_KERNELS"]
        else:
            os.environ["UNIVERSALITY_KERNELS"] = self._old


def _close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300, equal_nan=True)


def _factors(rng, L, G, seg, r=0.5):
    """A group's step factors on the layers L: the forward pass of random inputs, backprop of random
    errors (generic code), as batch._group forms them: (fx, bx, dfac, hfac) with the factors stored
    (seg = N) or checkpointed LazyStacks."""
    N, D = L.N, L.D
    with _Off():
        fx = _batch.forward_sweep(L.apply, L.relu, N, seg, rng.standard_normal((D, G)), layers=L)
        pre = fx.array("pre") if fx.stored else fx.stack("pre")
        bx = backward_sweep(L, pre, r, N, seg, rng.standard_normal((D, G)))
    if fx.stored:
        return fx, bx, bx.array("d"), fx.array("inp")[1:]
    return fx, bx, bx.stack("d"), fx.stack("inp")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 8), D=st.integers(1, 8), G=st.integers(1, 4),
       shared=st.booleans(), seg=st.integers(1, 8), special=st.booleans(),
       r=st.sampled_from([1.0, 0.5, 0.0, 2.0]))
def test_backward_sweep_kernel_equals_layer_by_layer(seed, N, D, G, shared, seg, special, r):
    """Backprop (batch.backward_sweep) through the kernel: every layer's error d and dl/dphi bit for
    bit, stored or checkpointed (the pre-activations a LazyStack recomputed by the forward kernel)."""
    rng = np.random.default_rng(seed)
    L, _ = _random_layers(rng, N, D, shared, special=special)
    seg = min(seg, N)
    PHI = rng.standard_normal((D, G))
    E = rng.standard_normal((D, G))
    if special:
        E[rng.integers(D), rng.integers(G)] = rng.choice([np.nan, np.inf, -0.0])
    out = []
    for on in (True, False):
        ctx = _Off() if not on else __import__("contextlib").nullcontext()
        with ctx:
            fx = _batch.forward_sweep(L.apply, L.relu, N, seg, PHI, layers=L)
            pre = fx.array("pre") if fx.stored else fx.stack("pre")
            bx = backward_sweep(L, pre, r, N, seg, E)
            assert (bx.segment is not None) == on
            d = bx.stack("d")
            out.append((bx.final.copy(), [np.array(d[k]) for k in range(N)]))
    assert _same(out[0][0], out[1][0])
    for k in range(N):
        assert _same(out[0][1][k], out[1][1][k]), k


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 8), D=st.integers(1, 8), G=st.integers(1, 4),
       shared=st.booleans(), seg=st.integers(1, 8), pseg=st.integers(1, 8), sparse_h=st.booleans())
def test_per_column_pass_kernels_equal_the_generic_passes(seed, N, D, G, shared, seg, pseg, sparse_h):
    """The passes through the G samples' updated layers (batch.PerColumnUpdates: the forward pass
    at x* kept whole, and _post_step_reductions' pass and magnitude block) through the kernels equal
    the generic passes within rtol 1e-12, with the factors stored or checkpointed (and the pass's
    own segments other than the factors')."""
    rng = np.random.default_rng(seed)
    L, _ = _random_layers(rng, N, D, shared)
    seg, pseg = min(seg, N), min(pseg, N)
    fx, bx, dfac, hfac = _factors(rng, L, G, seg)
    if sparse_h and not isinstance(hfac, np.ndarray):
        pass
    elif sparse_h:  # most units of h zero, as on the paper layout
        hfac = hfac * (rng.random(hfac.shape[:2])[:, :, None] < 0.3)
    coef = -0.37
    PHI = rng.standard_normal((D, G))
    ABS = rng.standard_normal((D, 2, G))
    res = []
    for on in (True, False):
        ctx = _Off() if not on else __import__("contextlib").nullcontext()
        with ctx:
            upd = PerColumnUpdates(L, dfac, hfac, coef)
            fsp = _batch.forward_sweep(upd.apply, L.relu, N, pseg, PHI, extremes=True, layers=upd)
            assert (fsp.segment is not None) == on
            pre, inp = fsp.stack("pre"), fsp.stack("inp")
            (hi, lo), cm = _batch._post_step_reductions(upd, L.relu, N, PHI, ABS)
            res.append((fsp.final.copy(), [np.array(pre[k]) for k in range(N)], [np.array(inp[k]) for k in range(N)],
                        fsp.extremes, hi, lo, cm))
    a, b = res
    _close(a[0], b[0])
    for k in range(N):
        _close(a[1][k], b[1][k])
        _close(a[2][k], b[2][k])
    for x, y in zip(a[3:], b[3:]):
        if isinstance(x, tuple):
            for u, v in zip(x, y):
                _close(u, v)
        else:
            _close(x, y)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 8), D=st.integers(1, 8), G=st.integers(1, 4),
       shared=st.booleans(), special=st.booleans(), three=st.booleans())
def test_extremes_and_magnitude_pass_kernels_equal_the_generic_ones_bit_for_bit(seed, N, D, G, shared, special,
                                                                               three):
    """_pre_extremes and _abs_extremes (colmax, and rowmax = per-layer unit maxima) through the
    kernels: bit for bit, special values included; a (D, S, G) magnitude block too."""
    rng = np.random.default_rng(seed)
    L, _ = _random_layers(rng, N, D, shared, special=special)
    PHI = rng.standard_normal((D, G))
    ABS = rng.standard_normal((D, 2, G)) if three else PHI
    res = []
    for on in (True, False):
        ctx = _Off() if not on else __import__("contextlib").nullcontext()
        with ctx:
            hi, lo = _batch._pre_extremes(L.apply, L.relu, N, PHI, layers=L)
            # (the generic products take a (D, S G) block: the same columns)
            cm, rm = _batch._abs_extremes(L.abs_apply, N, ABS if on else ABS.reshape(D, -1), layers=L)
            res.append((hi, lo, cm.reshape(D, -1), rm.reshape(N, -1)))
    for x, y in zip(*res):
        assert _same(x, y)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 8), D=st.integers(1, 8), K=st.integers(1, 3),
       shared=st.booleans(), special=st.booleans(), relu=st.booleans(), r=st.sampled_from([1.0, 0.5, 0.0]))
def test_lone_passes_through_the_kernels(seed, N, D, K, shared, special, relu, r):
    """A lone step's passes (engine/step.py: forward, abs_forward, backward) through the kernels:
    on the layers themselves bit for bit (special values included); through a step's updated layers
    (UpdatedLayers: K examples' factors, every column through the same layer) within rtol 1e-12 on
    finite values."""
    rng = np.random.default_rng(seed)
    L, _ = _random_layers(rng, N, D, shared, special=special)
    phi = rng.standard_normal(D)
    e = rng.standard_normal(D)
    res = []
    for on in (True, False):
        ctx = _Off() if not on else __import__("contextlib").nullcontext()
        with ctx:
            f = _step.forward(L, phi, relu=relu)
            d, g = _step.backward(L, f, e, r)
            res.append((f.pre, f.post, _step.abs_forward(L, phi), d, g))
    for x, y in zip(*res):
        assert _same(x, y)
    L2, _ = _random_layers(rng, N, D, shared)
    Dfac = rng.standard_normal((N, D, K)) * (rng.random((N, D, K)) < 0.6)
    Hfac = rng.standard_normal((N, D, K)) * (rng.random((N, D, K)) < 0.4)
    res = []
    for on in (True, False):
        ctx = _Off() if not on else __import__("contextlib").nullcontext()
        with ctx:
            W = UpdatedLayers(L2, Dfac, Hfac, -0.3 / K)
            f = _step.forward(W, phi, relu=relu)
            res.append((f.pre, f.post, _step.abs_forward(W, phi)))
    for x, y in zip(*res):
        _close(x, y)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 5), D=st.integers(1, 9), G=st.integers(1, 4),
       dt=st.integers(0, 10), special=st.booleans())
def test_factor_block_max_kernel_equals_row_abs_max(seed, N, D, G, dt, special):
    """The factors' block maxima (Step.factor_block_max) through the kernel: step.row_abs_max's
    values over the two unit ranges, for every column."""
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((N, D, G)) * (rng.random((N, D, G)) < 0.5)
    if special:
        F[rng.integers(N), rng.integers(D), rng.integers(G)] = rng.choice([np.nan, np.inf, -np.inf, -0.0])
    out = np.empty((2, N, G))
    kernels.factor_block_max(F, dt, out, 0)
    for g in range(G):
        assert _same(out[0, :, g] + 0.0, _step.row_abs_max(F[:, :dt, g]) + 0.0)
        assert _same(out[1, :, g] + 0.0, _step.row_abs_max(F[:, dt:, g]) + 0.0)


def _verdicts(cfg, on, monkeypatch):
    from universality import verify

    monkeypatch.setenv("UNIVERSALITY_KERNELS", "1" if on else "0")
    rep = verify(cfg)
    out = {("claim", c.id): (c.verdict.value, c.residual, c.checked, str(c.counts)) for c in rep.claims}
    out.update({("finding", f.id): (f.demonstrated, None) for f in rep.findings})
    return out


@pytest.mark.parametrize("cfg", [
    Config(N=6, J=4, L=4, engine="sparse"),
    Config(N=18, J=4, L=4, engine="sparse", samples=3, relu_grad_at_zero=0.5),
    Config(N=11, J=3, L=3, variant="signed", layout="paper", engine="sparse", samples=3, loss="ce", dy=2),
    Config(N=6, J=4, L=4, engine="sparse", K=3, samples=2, loss="hinge"),
    Config(N=66, J=8, L=8, engine="sparse", samples=2, relu_grad_at_zero=1.25, alpha=-0.5),
])
def test_whole_runs_give_the_same_verdicts_with_kernels_on_and_off(cfg, monkeypatch):
    """verify() on the sparse engine with the kernels on and off: the same claims, the same
    verdicts, residuals equal within rtol 1e-9."""
    a = _verdicts(cfg, True, monkeypatch)
    b = _verdicts(cfg, False, monkeypatch)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k][0] == b[k][0], k
        ra, rb = a[k][1], b[k][1]
        if isinstance(ra, float) and isinstance(rb, float) and np.isfinite(ra) and np.isfinite(rb):
            assert abs(ra - rb) <= 1e-9 * max(abs(ra), abs(rb)) + 1e-300, k


def test_a_planted_entry_anywhere_fails_with_kernels_on(monkeypatch):
    """A corrupted entry of a middle layer (a block the construction leaves zero) is executed by
    the kernels: the same claims FAIL as with the generic code."""
    from universality.verify import check_claims
    from universality.samples import make_samples

    cfg = Config(N=18, J=4, L=4, engine="sparse", samples=3)
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L)
    out = []
    for on in ("1", "0"):
        monkeypatch.setenv("UNIVERSALITY_KERNELS", on)
        con = build(cfg, engine="sparse")
        L = _step.layers_of(con)
        W = L.dense(7).copy()
        W[L.D - 2, 1] += 0.75  # an entry anywhere: bottom row, top column
        L.mats[7] = W
        out.append({c.id: c.verdict.value for c in check_claims(con, samples)})
    assert out[0] == out[1]
    assert "FAIL" in out[0].values()


def test_a_backprop_bug_in_the_kernel_sweep_fails_grad_rank_one(monkeypatch):
    """A planted engine bug on the kernel path: the group's reverse sweep through the kernel takes
    ReLU'(0) = 1 instead of r = 0.5: grad-rank-one FAILs, as it does for the same bug on the
    generic path (tests/test_group_sweeps.py)."""
    from universality.claims import CLAIMS
    from universality.claims.base import Context
    from universality.engine.batch import single_steps
    from universality.samples import make_samples

    cfg = Config(N=66, J=8, L=8, samples=3, relu_grad_at_zero=0.5)
    con = build(cfg, engine="sparse")
    samples = make_samples(3, 0, 8, 8)[:3]

    def verdicts():
        ctx = Context(con)
        return [CLAIMS["grad-rank-one"].func(ctx, s, st_).verdict.value
                for s, st_ in zip(samples, single_steps(con, samples, group=3))]

    assert set(verdicts()) == {"PASS"}
    real = kernels.backward_segment
    calls = []

    def wrong_r(layers, pre, r):
        calls.append(r)
        return real(layers, pre, 1.0)

    monkeypatch.setattr(kernels, "backward_segment", wrong_r)
    assert "FAIL" in verdicts()
    assert calls


def test_engine_kernels_py_func_equal_the_compiled_ones():
    """Each kengine kernel's pure-Python body (``.py_func``, which CI's coverage can trace; the
    kernels it calls run compiled) on tiny inputs computes what the compiled kernel computes."""
    rng = np.random.default_rng(3)
    for shared in (False, True):
        L, _ = _random_layers(rng, 4, 5, shared, special=shared)
        f = kernels.flat_of(L)
        N, D, G = 4, 5, 2
        X = rng.standard_normal((D, G))
        Dseg = rng.standard_normal((N, D, G))
        Hseg = rng.standard_normal((N, D, G)) * (rng.random((N, D, G)) < 0.4)
        pre = rng.standard_normal((N, D, G))
        for name in ("layer_apply", "layer_apply_T"):
            k = kernels.kernel(name)
            for absolute in (False, True):
                extra = (absolute, False) if name == "layer_apply" else (absolute,)
                Y1, Y2 = np.empty((D, G)), np.empty((D, G))
                k(*f.args, 1, X, Y1, *extra)
                k.py_func(*f.args, 1, X, Y2, *extra)
                assert _same(Y1, Y2)
        Y1, Y2 = rng.standard_normal((D, G)), None
        Y2 = Y1.copy()
        kernels.kernel("layer_apply")(*f.args, 2, X, Y1, False, True)
        kernels.kernel("layer_apply").py_func(*f.args, 2, X, Y2, False, True)
        assert _same(Y1, Y2)
        bw = kernels.kernel("backward_segment")
        outs = [np.empty((N, D, G)) for _ in range(2)]
        a = bw(*f.args, 0, N, pre, X, outs[0], True, 0.5)
        b = bw.py_func(*f.args, 0, N, pre, X, outs[1], True, 0.5)
        assert _same(a, b) and _same(outs[0], outs[1])
        up = kernels.kernel("updated_segment")
        for mode, absolute, relu in ((0, False, True), (1, True, False), (2, False, True), (2, True, False)):
            res = []
            for fn in (up, up.py_func):
                pre_o, inp_o = np.empty((N, D, G)), np.empty((N, D, G))
                hi, lo = np.full((D, G), -np.inf), np.full((D, G), np.inf)
                cm, rm = np.zeros((D, G)), np.empty((N, G))
                z = fn(*f.args, N - 1, 0, X, mode, Dseg, Hseg, -0.3, absolute, relu, True, pre_o, True, inp_o,
                       True, hi, lo, True, cm, rm)
                res.append((z, pre_o, inp_o, hi, lo, cm, rm))
            for x, y in zip(*res):
                assert _same(x, y), (mode, absolute)
        ps = kernels.kernel("post_step_segment")
        res = []
        for fn in (ps, ps.py_func):
            Xs, A = X.copy(), np.abs(rng.standard_normal((D, 2 * G))) if not res else res[0][5].copy()
            A0 = A.copy()
            hi, lo, cm = np.full((D, G), -np.inf), np.full((D, G), np.inf), np.zeros((D, 2 * G))
            fn(*f.args, N - 1, 0, Xs, A, Dseg, Hseg, -0.3, hi, lo, cm)
            res.append((Xs, A, hi, lo, cm, A0))
        for x, y in zip(res[0][:5], res[1][:5]):
            assert _same(x, y)
    fb = kernels.kernel("factor_block_max")
    F = rng.standard_normal((3, 6, 2))
    o1, o2 = np.empty((2, 3, 2)), np.empty((2, 3, 2))
    fb(F, 2, o1, 0)
    fb.py_func(F, 2, o2, 0)
    assert _same(o1, o2)
    for a, b in ((1.0, np.nan), (np.nan, 1.0), (-0.0, 0.0), (2.0, 1.0)):
        for name, ref in (("kengine_np_max", np.maximum), ("kengine_np_min", np.minimum)):
            k = kernels.kernel(name)
            assert _same(k(a, b), ref(a, b)) and _same(k.py_func(a, b), ref(a, b))


def test_engine_kernel_helpers_py_func_equal_the_compiled_ones():
    """The helpers the kernels inline or call (the rank-one corrections, a layer's finishing steps,
    a CSR row) run as pure Python against their compiled selves."""
    rng = np.random.default_rng(4)
    D, G = 6, 2
    X = rng.standard_normal((D, 2 * G))
    Dk = rng.standard_normal((D, G))
    Hk = rng.standard_normal((D, G)) * (rng.random((D, G)) < 0.5)
    rows = np.empty(D, dtype=np.int64)
    for name, shape, work in (("kengine_update_cols", (D, 2 * G), (np.empty(2 * G), rows)),
                              ("kengine_update_shared", (D, 2 * G), (np.empty((G, 2 * G)),))):
        k = kernels.kernel(name)
        for absolute in (False, True):
            Y1 = rng.standard_normal(shape)
            Y2 = Y1.copy()
            k(Y1, X, Dk, Hk, -0.4, absolute, *work)
            k.py_func(Y2, X, Dk, Hk, -0.4, absolute, *work)
            assert _same(Y1, Y2), (name, absolute)
    one = kernels.kernel("kengine_update_cols")
    for S in (1, 2, 3):  # one sample's column(s): the unrolled forms
        for absolute in (False, True):
            Y1 = rng.standard_normal((D, S))
            Y2 = Y1.copy()
            args = (X[:, :S].copy(), Dk[:, :1].copy(), Hk[:, :1].copy(), 0.7, absolute, np.empty(S), rows)
            one(Y1, *args)
            one.py_func(Y2, *args)
            assert _same(Y1, Y2)
    nzr = kernels.kernel("kengine_nonzero_rows")
    Hz = np.zeros((11, 2))
    Hz[3, 1], Hz[3, 0], Hz[10, 0], Hz[7, 1] = 1.0, np.nan, -0.0, 2.0
    r1, r2 = np.empty(11, dtype=np.int64), np.empty(11, dtype=np.int64)
    n1, n2 = nzr(Hz, r1), nzr.py_func(Hz, r2)
    assert n1 == n2 == 2 and list(r1[:2]) == list(r2[:2]) == [3, 7]
    sh = kernels.kernel("kengine_update_shared")
    Y1 = rng.standard_normal((D, 3))
    Y2 = Y1.copy()
    sh(Y1, X[:, :3].copy(), Dk[:, :1].copy(), Hk[:, :1].copy(), 0.7, True, np.empty((1, 3)))
    sh.py_func(Y2, X[:, :3].copy(), Dk[:, :1].copy(), Hk[:, :1].copy(), 0.7, True, np.empty((1, 3)))
    assert _same(Y1, Y2)
    fin = kernels.kernel("kengine_finish_layer")
    for Dn in (D, 0):
        res = []
        for fn in (fin, fin.py_func):
            Y = rng.standard_normal((Dn, G)) if not res else res[0][0].copy()
            Y0 = Y.copy()
            cur = np.ones((Dn, G))
            pre, inp = np.empty((3, Dn, G)), np.empty((3, Dn, G))
            hi, lo = np.full((Dn, G), -np.inf), np.full((Dn, G), np.inf)
            cm, rm = np.zeros((Dn, G)), np.empty((3, G))
            fn(Y, cur, 1, 2, True, pre, True, inp, True, hi, lo, True, cm, rm, True)
            res.append((Y0, Y, pre[1], inp[1], hi, lo, cm, rm[2]))
        for x, y in zip(res[0][1:], res[1][1:]):
            assert _same(x, y)
    row = kernels.kernel("csr_row")
    ix = np.array([0, 2, 3], dtype=np.int32)
    dat = np.array([1.5, -2.0, 0.25])
    for p0, p1 in ((0, 1), (0, 3), (1, 1)):
        for G2 in (1, 3):
            Xr = rng.standard_normal((4, G2))
            for accumulate in (False, True):
                Y1 = rng.standard_normal((2, G2))
                Y2 = Y1.copy()
                row(ix, dat, p0, p1, Xr, Y1, 1, True, accumulate)
                row.py_func(ix, dat, p0, p1, Xr, Y2, 1, True, accumulate)
                assert _same(Y1, Y2)


def test_replaced_operations_run_the_generic_code(monkeypatch):
    """Layers whose operations were replaced (a planted bug in a test, a subclass's own) are not run
    by the kernels, which compute the class's own operations: the generic code calls the replaced
    ones, so the plant is executed."""
    rng = np.random.default_rng(5)
    L, _ = _random_layers(rng, 3, 4, False)
    W = UpdatedLayers(L, rng.standard_normal((3, 4, 1)), rng.standard_normal((3, 4, 1)), -0.2)
    upd = PerColumnUpdates(L, rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2)), -0.2)
    assert all(kernels.pass_of(x) is not None for x in (L, W, upd))
    monkeypatch.setattr(UpdatedLayers, "apply", lambda self, k, X: self.base.apply(k, X))
    monkeypatch.setattr(PerColumnUpdates, "abs_apply", lambda self, k, X: self.base.abs_apply(k, X))
    assert kernels.pass_of(W) is None and kernels.pass_of(upd) is None and kernels.pass_of(L) is not None
    monkeypatch.setattr(SparseLayers, "relu", lambda self, u: u)
    assert kernels.pass_of(L) is None and kernels.backward_segment(L, np.zeros((3, 4, 1)), 1.0) is None
    L.__dict__["apply_T"] = L.apply_T  # an instance's own
    monkeypatch.undo()
    assert kernels.pass_of(L) is None
