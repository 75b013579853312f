"""second-order-zero's compiled group sweep (engine/kernels.py ``so_sweep``, the kernel
claims/one_step.py runs), which accumulates each row's layer product right after writing that row's
rank-one terms, against a plain reference written here in the sweep's first form: every row's terms
written, then the layer's product over all rows by the compiled ``layer_apply``. The same values bit
for bit (the same operations per entry, in the same order; NaN equal to NaN, the sign of zero compared
too), on random layers of both stores, G = 1..4, special values in the layers and in the factors (the
block-diagonal product's NaN rule for G > 1), and the pure-Python bodies (``.py_func``) against the
compiled ones. The whole claim against the generic code, and a planted second-order term FAILing on
this path: tests/test_kernels_claims.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from universality.engine import kernels

from .test_kernels import _random_layers
from .test_kernels_claims import _factors as _claims_factors

pytestmark = pytest.mark.skipif(not kernels.enabled(), reason="numba not importable or kernels disabled")


def _bits_equal(a, b) -> bool:
    """NaN exactly where NaN, and every other entry the same bits (the sign of every zero included).
    A NaN's own sign bit is not compared: IEEE 754 does not fix which NaN an operation on NaNs returns,
    and compilers may swap the operands of a commutative addition (the reference here and the kernel
    give NaNs of either sign at the same entries)."""
    a, b = np.asarray(a), np.asarray(b)
    na, nb = np.isnan(a), np.isnan(b)
    return bool(np.array_equal(na, nb) and np.array_equal(a[~na].view(np.uint64), b[~nb].view(np.uint64)))


def _factors(rng, N, D, G, special):
    """tests/test_kernels_claims.py's factors; ``special``: non-finite d entries (the NaN rule), a NaN
    h entry (counts as nonzero), signed zeros."""
    dfac, hfac = _claims_factors(rng, N, D, G)
    if special:
        for v in (np.inf, -np.inf, np.nan, -0.0, 0.0):
            if rng.random() < 0.5:
                dfac[rng.integers(N), rng.integers(D), rng.integers(G)] = v
        if rng.random() < 0.5:
            hfac[rng.integers(N), rng.integers(D), rng.integers(G)] = rng.choice([np.nan, np.inf, -0.0])
    return dfac, hfac


def _run(fn, f, N, dfac, hfac, B, q, p, coef, Ba, qa, pa, coefa, k_hi=None, k_lo=0):
    k_hi = N - 1 if k_hi is None else k_hi
    cur, out, cura, outa = B.copy(), np.empty_like(B), Ba.copy(), np.empty_like(Ba)
    fn(*f.args, k_hi, k_lo, dfac, hfac, cur, out, q, p, coef, cura, outa, qa, pa, coefa)
    return (out, outa) if (k_hi - k_lo + 1) % 2 else (cur, cura)


def _reference_layer(args, k, n, dfac, hfac, nzr, cur, out, q, p, coef, absolute):
    """One layer of one sweep in its first form: t = h_k^T [R | acc'] (a sequential sum over the rows
    nzr), every row's rank-one terms d_k t written (NaN for G > 1 where another sample's d entry at
    the unit is not finite: the block-diagonal product's d * 0), then out += W_k cur over all rows."""
    D = cur.shape[0]
    G = dfac.shape[2]
    w, nR = q + p, q + G * p
    T2 = np.zeros((2, G, w))
    for g in range(G):
        for j in range(w):
            tR = tA = np.float64(0.0)
            for i in nzr:
                h = abs(hfac[n, i, g]) if absolute else hfac[n, i, g]
                tR += h * (cur[i, j] if j < q else cur[i, q + g * p + (j - q)])
                tA += h * cur[i, nR + G * w + g * w + j]
            T2[0, g, j], T2[1, g, j] = tR, (tR + tA) * coef
    out[:, :nR] = 0.0
    with np.errstate(invalid="ignore"):
        for i in range(D):
            finite = np.isfinite(dfac[n, i])
            for g in range(G):
                dv = abs(dfac[n, i, g]) if absolute else dfac[n, i, g]
                acc = slice(nR + g * w, nR + (g + 1) * w)
                accp = slice(nR + G * w + g * w, nR + G * w + (g + 1) * w)
                out[i, acc], out[i, accp] = dv * T2[0, g], dv * T2[1, g]
                if G > 1 and int((~finite).sum()) - (0 if finite[g] else 1) > 0:
                    out[i, acc], out[i, accp] = np.nan, np.nan
    kernels.kernel("layer_apply")(*args, k, cur, out, absolute, True)


def _reference_sweep(*a):
    """so_sweep's arguments and results, in the first form (:func:`_reference_layer`)."""
    args, (k_hi, k_lo, dfac, hfac, cur, out, q, p, coef, cura, outa, qa, pa, coefa) = a[:11], a[11:]
    D = cur.shape[0]
    for k in range(k_hi, k_lo - 1, -1):
        n = k - k_lo
        nzr = [i for i in range(D) if np.any(hfac[n, i] != 0.0)]  # (NaN counts as nonzero)
        _reference_layer(args, k, n, dfac, hfac, nzr, cur, out, q, p, coef, False)
        _reference_layer(args, k, n, dfac, hfac, nzr, cura, outa, qa, pa, coefa, True)
        cur, out, cura, outa = out, cur, outa, cura


def _states(rng, D, G, q, p, qa, pa, special):
    B = rng.standard_normal((D, q + G * p + 2 * G * (q + p)))
    B[:, q + G * p:] *= rng.random() < 0.5  # acc, acc' entering the first layer: 0 (as the claim) or not
    Ba = np.abs(rng.standard_normal((D, qa + G * pa + 2 * G * (qa + pa))))
    if special and B.size:
        B.flat[rng.integers(B.size)] = rng.choice([np.inf, np.nan, -0.0])
    return B, Ba


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(1, 6), D=st.sampled_from([1, 2, 5, 9, 33]),
       G=st.integers(1, 4), shared=st.booleans(), q=st.integers(0, 3), p=st.integers(0, 3),
       coef=st.sampled_from([-0.3, 2.0, -1e-3]), special=st.booleans(), segment=st.booleans())
def test_compiled_sweep_is_the_reference_bit_for_bit(seed, N, D, G, shared, q, p, coef, special, segment):
    rng = np.random.default_rng(seed)
    L, _ = _random_layers(rng, N, D, shared, density=0.3, special=special)
    f = kernels.flat_of(L)
    dfac, hfac = _factors(rng, N, D, G, special)
    qa, pa = min(q, 1), p
    B, Ba = _states(rng, D, G, q, p, qa, pa, special)
    if segment and N > 1:  # a checkpoint segment k_lo..k_hi: the factors of those layers only
        k_lo = int(rng.integers(0, N - 1))
        k_hi = int(rng.integers(k_lo, N))
        dfac, hfac = np.ascontiguousarray(dfac[k_lo:k_hi + 1]), np.ascontiguousarray(hfac[k_lo:k_hi + 1])
    else:
        k_lo, k_hi = 0, N - 1
    want = _run(_reference_sweep, f, N, dfac, hfac, B, q, p, coef, Ba, qa, pa, abs(coef), k_hi, k_lo)
    got = _run(kernels.kernel("so_sweep"), f, N, dfac, hfac, B, q, p, coef, Ba, qa, pa, abs(coef), k_hi, k_lo)
    assert _bits_equal(got[0], want[0]) and _bits_equal(got[1], want[1])


def test_compiled_sweep_keeps_the_block_diagonal_nan_rule():
    """G > 1: a non-finite d entry of one sample makes the other samples' rank-one terms at that unit
    NaN (the generic code's block-diagonal product adds d * 0 for them), as in the reference."""
    rng = np.random.default_rng(5)
    L, _ = _random_layers(rng, 2, 4, True, density=0.5)
    f = kernels.flat_of(L)
    N, D, G, q, p = 2, 4, 3, 1, 1
    dfac, hfac = _factors(rng, N, D, G, False)
    hfac[:, 0, :] = 1.0
    dfac[1, 2, 0] = np.inf
    B, Ba = _states(rng, D, G, q, p, q, p, False)
    got = _run(kernels.kernel("so_sweep"), f, N, dfac, hfac, B, q, p, 0.5, Ba, q, p, 0.5)
    want = _run(_reference_sweep, f, N, dfac, hfac, B, q, p, 0.5, Ba, q, p, 0.5)
    assert _bits_equal(got[0], want[0]) and _bits_equal(got[1], want[1])
    assert np.isnan(got[0]).any()


@pytest.mark.parametrize("shared", [False, True])
def test_sweep_kernels_py_func_equal_the_compiled_ones(shared, monkeypatch):
    """Coverage: so_sweep's and so_layer's pure-Python bodies (the latter through the
    module global the former calls) against the compiled kernel, on tiny inputs with every branch
    (stored and reference rows, the NaN rule, |.|)."""
    rng = np.random.default_rng(3)
    L, _ = _random_layers(rng, 3, 4, shared, density=0.6)
    f = kernels.flat_of(L)
    N, D, G, q, p, qa, pa = 3, 4, 2, 1, 2, 0, 3
    dfac, hfac = _factors(rng, N, D, G, False)
    dfac[0, 1, 0] = np.inf
    hfac[1, 2, 1] = 0.5
    B, Ba = _states(rng, D, G, q, p, qa, pa, False)
    compiled = kernels.kernel("so_sweep")
    want = _run(compiled, f, N, dfac, hfac, B, q, p, -0.3, Ba, qa, pa, 0.3)
    monkeypatch.setattr(kernels, "_so_layer", kernels.kernel("so_layer").py_func)
    with np.errstate(invalid="ignore"):  # (inf - inf: the finiteness test, in Python)
        got = _run(compiled.py_func, f, N, dfac, hfac, B, q, p, -0.3, Ba, qa, pa, 0.3)
    assert _bits_equal(got[0], want[0]) and _bits_equal(got[1], want[1])
