"""The exact backend of the engine (universality/engine/exact.py): the ring's canonical form, its sign
rule, the field operations the engine calls, and the loss's gradient brought into the ring."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

from universality import Config
from universality.construction.fields import ExactField
from universality.construction.network import build
from universality.engine.exact import (ExactConstruction, ExactLayers, ExactRing, NotInField, UndecidedSign,
                                       exact_ring_for, primes_of)
from universality.engine.step import backward, forward, maml_step

A, Y = sp.Symbol("alpha"), sp.Symbol("y0")


def ring(**signs):
    F = ExactRing((2, 3, 5), ("alpha", "y0", "rho"), ("rho",))
    F.set_orthant(signs or {"alpha": 1, "y0": -1, "rho": 1})
    return F


def test_canonical_form_and_arithmetic():
    F = ring()
    s2, s3, s6 = (F.from_sympy(sp.sqrt(n)) for n in (2, 3, 6))
    assert (s2 * s3 - s6).is_zero_poly() and (s2 * s2 - 2).is_zero_poly()
    a = F.from_sympy(A)
    x = (a + 1) * (a - 1) - a ** 2
    assert x == F.const(-1) and str(x) == "-1"
    assert (F.from_sympy(1 / sp.sqrt(5)) * 5 - F.from_sympy(sp.sqrt(5))).is_zero_poly()
    rho = F.from_sympy(sp.Symbol("rho"))
    assert (rho * F.from_sympy(1 / sp.Symbol("rho")) - 1).is_zero_poly()  # rho rho^-1 = 1
    assert F.const(0.1) == F.const(Fraction(1, 10)) and (F.const(3) / 4) == F.const(0.75)
    assert (2 - a) + a == 2 and (1 - (a - 1)) == F.from_sympy(2 - A)
    with pytest.raises(NotInField):
        _ = a / a
    with pytest.raises(ZeroDivisionError):
        _ = a / 0
    for bad in (sp.exp(A), sp.sqrt(7), sp.pi, 1 / Y):
        with pytest.raises(NotInField):
            F.from_sympy(bad)


def test_signs_on_the_orthant():
    F = ring()
    a, y = F.from_sympy(A), F.from_sympy(Y)
    assert F.sign(a * y)[0] == "-" and F.sign(-a * y + 3)[0] == "+" and F.sign(F.zero)[0] == "0"
    assert F.sign(a - 1)[0] == "?"  # changes sign on alpha > 0
    # one coefficient with roots of both signs: 3 - sqrt(10) < 0 decided by SymPy
    c = F.const(3) - F.from_sympy(sp.sqrt(2)) * F.from_sympy(sp.sqrt(5))
    assert F.sign(c * a)[0] == "-" and F.sign(c * a * y)[0] == "+"
    assert a > 0 and y < 0 and a * y <= 0 and a >= 0 and abs(y) == -y and not (a == 0) and bool(a)
    with pytest.raises(UndecidedSign, match="both signs"):
        bool(a - 1)
    F.set_orthant({"alpha": 1})
    assert F.sign(y)[0] == "?"  # no sign assumption for y0


def test_evaluate_and_to_sympy():
    F = ring()
    x = F.from_sympy(A * Y * sp.sqrt(6) / 3 - sp.sqrt(2))
    assert abs(F.evaluate(x, {"alpha": 0.3, "y0": -2.0, "rho": 1.0}) - (0.3 * -2 * 6**0.5 / 3 - 2**0.5)) < 1e-15
    assert sp.expand(F.to_sympy(x) - (A * Y * sp.sqrt(6) / 3 - sp.sqrt(2))) == 0
    with pytest.raises(NotInField):
        F.evaluate(x, {"alpha": 0.3})
    with pytest.raises(TypeError):
        float(x)
    assert float(F.from_sympy(sp.sqrt(2))) == pytest.approx(2**0.5, abs=0)
    M = F.to_sympy_matrix(F.array(sp.Matrix([[1, A], [Y, 0]])))
    assert M == sp.Matrix([[1, A], [Y, 0]])


def test_layers_are_the_engine_algebra():
    F = ring()
    W = [sp.Matrix([[1, 0, sp.sqrt(2)], [0, 2, 0], [0, 0, 1]]), sp.Matrix([[1, 1, 0], [0, 1, 0], [0, 0, 3]])]
    L = ExactLayers(W, F)
    assert L.kind == "exact" and L.N == 2 and L.D == 3 and list(L.row_nnz(0)) == [2, 1, 1]
    X = F.array(np.array([[1, 0], [A, 1], [0, Y]], dtype=object))
    got = F.to_sympy_matrix(L.apply(0, X))
    assert got == sp.Matrix([[1, sp.sqrt(2) * Y], [2 * A, 2], [0, Y]])
    assert F.to_sympy_matrix(L.apply_T(1, X[:, 0])) == sp.Matrix([1, 1 + A, 0])
    assert F.to_sympy_matrix(L.dense(0)) == W[0] and L.to_dense().shape == (2, 3, 3)
    assert F.to_sympy_matrix(L.block(0, slice(0, 2), slice(1, 3))) == W[0][0:2, 1:3]
    pre = F.array([A, -A, 0])
    assert [str(v) for v in L.relu(pre)] == ["alpha", "0", "0"]
    assert [str(v) for v in L.relu_grad(pre, sp.Rational(1, 2))] == ["1", "0", "1/2"]
    assert list(L.is_zero(pre)) == [False, False, True] and [str(v) for v in L.abs(pre)] == ["alpha", "alpha", "0"]
    fwd = forward(L, F.array([1, A, 1]))
    d, g = backward(L, fwd, F.array([1, 0, 0]), F.one)
    assert F.to_sympy_matrix(fwd.z) == sp.Matrix([1 + A + sp.sqrt(2) * 3, 2 * A, 3])
    assert F.to_sympy_matrix(g) == sp.Matrix([1, 1, 3 * sp.sqrt(2)])  # W_2^T W_1^T e, every ReLU open
    with pytest.raises(NotImplementedError):
        L.abs_apply(0, X)


def test_the_exact_step_is_the_float_step_at_the_runs_values():
    cfg = Config(N=5, J=2, L=3, dy=2, K=2, loss="ce")
    sym = build(cfg, ExactField())
    F = exact_ring_for(sym)
    assert F.primes == tuple(primes_of(list(sym.W)))
    ec = ExactConstruction(sym, F)
    xs, ys = [0.2, 0.7], [[0.25, 0.75], [1.0, 0.0]]
    es = maml_step(ec, xs, ys, 0.4)
    fs = maml_step(build(cfg), xs, ys, 0.4)
    ev = np.vectorize(lambda v: F.evaluate(v), otypes=[float])
    assert np.allclose(ev(es.z_star), fs.z_star, rtol=0, atol=1e-14)
    assert np.allclose(ev(es.W_post.Dfac), fs.W_post.Dfac, rtol=0, atol=1e-14)
    assert abs(F.evaluate(es.theta_b_post) - fs.theta_b_post) < 1e-15


def test_a_loss_gradient_outside_the_ring_is_an_undecided_sign():
    cfg = Config(N=4, J=2, L=2, dy=2, loss="ce")
    sym = build(cfg, ExactField())
    F = exact_ring_for(sym, ("y0", "y1"))
    F.set_orthant({"y0": 1, "y1": 1})
    ec = ExactConstruction(sym, F)
    with pytest.raises(UndecidedSign, match="gradient of the ce loss"):
        ec.loss.grad(F.array([Y, sp.Symbol("y1")]), F.array([Y, 0]))  # softmax at a symbolic output
    assert ec.loss.name == "ce"
