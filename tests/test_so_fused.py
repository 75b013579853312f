"""second-order-zero's group sweep with each row's product fused (engine/kernels.py, ksob section:
so_sweep_fused, the kernel claims/one_step.py runs) against so_sweep (the kclaims kernel it replaces,
kept as the reference): the same values bit for bit (the same operations per entry, in the same
order; NaN equal to NaN, the sign of zero compared too), on random layers of both stores, G = 1..4,
special values in the layers and in the factors (the block-diagonal product's NaN rule for G > 1),
and the pure-Python bodies (``.py_func``) against the compiled ones. The whole claim against the
generic code, and a planted second-order term FAILing on this path: tests/test_kernels_claims.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from universality.engine import kernels

from .test_kernels import _random_layers
from .test_kernels_claims import _factors as _claims_factors

pytestmark = pytest.mark.skipif(not kernels.enabled(), reason="numba not importable or kernels disabled")


def _bits_equal(a, b) -> bool:
    """Equal values, NaN where NaN, and the same sign of every zero."""
    a, b = np.asarray(a), np.asarray(b)
    return bool(np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b)))


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
def test_fused_sweep_is_so_sweep_bit_for_bit(seed, N, D, G, shared, q, p, coef, special, segment):
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
    want = _run(kernels.kernel("so_sweep"), f, N, dfac, hfac, B, q, p, coef, Ba, qa, pa, abs(coef), k_hi, k_lo)
    got = _run(kernels.kernel("so_sweep_fused"), f, N, dfac, hfac, B, q, p, coef, Ba, qa, pa, abs(coef), k_hi, k_lo)
    assert _bits_equal(got[0], want[0]) and _bits_equal(got[1], want[1])


def test_fused_sweep_keeps_the_block_diagonal_nan_rule():
    """G > 1: a non-finite d entry of one sample makes the other samples' rank-one terms at that unit
    NaN (the generic code's block-diagonal product adds d * 0 for them): so_sweep's rule, kept."""
    rng = np.random.default_rng(5)
    L, _ = _random_layers(rng, 2, 4, True, density=0.5)
    f = kernels.flat_of(L)
    N, D, G, q, p = 2, 4, 3, 1, 1
    dfac, hfac = _factors(rng, N, D, G, False)
    hfac[:, 0, :] = 1.0
    dfac[1, 2, 0] = np.inf
    B, Ba = _states(rng, D, G, q, p, q, p, False)
    got = _run(kernels.kernel("so_sweep_fused"), f, N, dfac, hfac, B, q, p, 0.5, Ba, q, p, 0.5)
    want = _run(kernels.kernel("so_sweep"), f, N, dfac, hfac, B, q, p, 0.5, Ba, q, p, 0.5)
    assert _bits_equal(got[0], want[0]) and _bits_equal(got[1], want[1])
    assert np.isnan(got[0]).any()


@pytest.mark.parametrize("shared", [False, True])
def test_fused_kernels_py_func_equal_the_compiled_ones(shared, monkeypatch):
    """Coverage: so_sweep_fused's and so_layer_fused's pure-Python bodies (the latter through the
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
    compiled = kernels.kernel("so_sweep_fused")
    want = _run(compiled, f, N, dfac, hfac, B, q, p, -0.3, Ba, qa, pa, 0.3)
    monkeypatch.setattr(kernels, "_so_layer_fused", kernels.kernel("so_layer_fused").py_func)
    with np.errstate(invalid="ignore"):  # (inf - inf: the finiteness test, in Python)
        got = _run(compiled.py_func, f, N, dfac, hfac, B, q, p, -0.3, Ba, qa, pa, 0.3)
    assert _bits_equal(got[0], want[0]) and _bits_equal(got[1], want[1])
