"""Property: the float64 construction is the exact (SymPy) construction rounded entrywise.

Both come from the same recipe through two number fields; a difference beyond a few units in the
last place would mean the numeric builder and the exact one disagree (e.g. a code or a square root).
"""
from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings, strategies as st

from universality import Config, build
from universality.construction.fields import ExactField, field_for

from .strategies import relu_grads


def to_float(M) -> np.ndarray:
    return np.array([[float(v) for v in M.row(i)] for i in range(M.rows)])


@settings(max_examples=6)
@given(st.integers(4, 6), st.integers(1, 2), st.integers(1, 3), st.sampled_from(["signed", "paper"]),
       st.sampled_from([0.1, 0.25, 1e-3]), relu_grads())
@example(4, 1, 2, "signed", 0.1, 1.0)  # the paper layout (N = J L + 2)
@example(6, 2, 2, "paper", 0.1, 2.0)
def test_numeric_is_exact_rounded(N, J, L, variant, eps, r):
    cfg = Config(N=N, J=J, L=L, variant=variant, eps=eps, relu_grad_at_zero=r)
    ex, nu = build(cfg, ExactField()), build(cfg)
    W = np.array([to_float(Wk) for Wk in ex.W])
    scale = max(1.0, float(np.max(np.abs(W))))
    assert np.max(np.abs(W - nu.W)) <= 8 * 2.0**-52 * scale
    assert np.array_equal(to_float(ex.Wg), nu.Wg)
    assert np.allclose(np.array(ex.codes, dtype=float), nu.codes, rtol=1e-15, atol=0)
    for i in range(1, N + 1):
        assert np.array_equal(to_float(ex.B(i)), nu.B(i))


def test_field_lookup():
    assert field_for("numeric").name == "numeric" and field_for("exact").name == "exact"
    f = ExactField()
    assert f.num(0.1) == f.sp.Rational(1, 10)  # the decimal typed, not the binary expansion
    assert f.vector([1, 2]).shape == (2, 1)
    try:
        field_for("quad")
    except ValueError as exc:
        assert "quad" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("unknown field accepted")
