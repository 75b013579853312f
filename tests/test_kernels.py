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
