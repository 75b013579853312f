"""The losses' formulas as the spec and the paper state them, differentiated by forward-mode AD.

Written apart from :mod:`universality.losses` (the code under test: the execution calls its hand-written
``grad``). Each loss value l(y, yhat) is written here once more from its definition, over a tiny
dual-number type, and d l / d yhat comes out of the arithmetic (forward mode: one tangent per component
of yhat), so no derivative is typed in anywhere:

* MSE: l = 1/2 ||yhat - y||^2 (Thm 6.1);
* softmax cross-entropy: l = -sum_c y_c (yhat_c - log sum_k exp yhat_k) (Thm 6.2);
* L1: l = sum |yhat - y|;
* hinge on the class target t = sign(y): l = sum max(0, 1 - t yhat);
* Huber (delta): l = sum h(yhat - y), h(r) = r^2 / 2 for |r| <= delta, delta (|r| - delta / 2) else.

At a kink (|u| at u = 0, max(0, u) at u = 0) the derivative taken is 0 (the subgradient NumPy's and
SymPy's sign(0) = 0 give).

Two evaluations:

* :func:`gradient`: float64, at any (y, yhat) (the claimed side of the claims that need the error at z);
* :func:`exact_gradient_at_zero`: at yhat = 0 in exact rational arithmetic (``fractions``; the labels'
  binary values), for ``loss-recovers-label`` and the K-shot findings. Every operation on the tangents
  stays in the rationals there (exp(0) = 1, d log u = du / u); the function says so when one did not.

A loss whose name is not listed here falls back to SymPy's derivative of its ``sympy_value``.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np


class Dual:
    """value + sum_k tangent[k] eps_k (eps_j eps_k = 0): forward-mode derivative in every direction."""

    __slots__ = ("v", "d")

    def __init__(self, v, d):
        self.v, self.d = v, d

    @staticmethod
    def _lift(o, n):
        return o if isinstance(o, Dual) else Dual(o, [0] * n)

    def __add__(self, o):
        o = self._lift(o, len(self.d))
        return Dual(self.v + o.v, [a + b for a, b in zip(self.d, o.d)])

    __radd__ = __add__

    def __neg__(self):
        return Dual(-self.v, [-a for a in self.d])

    def __sub__(self, o):
        return self + (-self._lift(o, len(self.d)))

    def __rsub__(self, o):
        return self._lift(o, len(self.d)) - self

    def __mul__(self, o):
        if not isinstance(o, Dual):
            return Dual(self.v * o, [a * o for a in self.d])
        return Dual(self.v * o.v, [a * o.v + self.v * b for a, b in zip(self.d, o.d)])

    __rmul__ = __mul__

    def __truediv__(self, o):
        if not isinstance(o, Dual):
            return Dual(self.v / o, [a / o for a in self.d])
        q = self.v / o.v
        return Dual(q, [(a - q * b) / o.v for a, b in zip(self.d, o.d)])


def _sign(v) -> int:
    return (v > 0) - (v < 0)


def d_exp(u: Dual) -> Dual:
    e = Fraction(1) if (isinstance(u.v, Fraction) and u.v == 0) else math.exp(u.v)
    return Dual(e, [a * e for a in u.d])


def d_log(u: Dual) -> Dual:
    return Dual(math.log(u.v), [a / u.v for a in u.d])


def d_abs(u: Dual) -> Dual:
    s = _sign(u.v)
    return Dual(abs(u.v), [a * s for a in u.d])


def d_max0(u: Dual) -> Dual:
    """max(0, u); derivative 0 at u = 0."""
    return u if u.v > 0 else Dual(0 * u.v, [0 * a for a in u.d])


# ---- the formulas ------------------------------------------------------------------------------

def _mse(y, yh, loss):
    return sum(((a - b) * (a - b) for a, b in zip(yh, y)), Dual(0, [0] * len(yh))) / 2


def _ce(y, yh, loss):
    m = max(v.v for v in yh)  # log-sum-exp shifted by a constant (the derivative does not see it)
    lse = d_log(sum((d_exp(v - m) for v in yh), Dual(0, [0] * len(yh)))) + m
    return -sum(((v - lse) * c for c, v in zip(y, yh)), Dual(0, [0] * len(yh)))


def _l1(y, yh, loss):
    return sum((d_abs(a - b) for a, b in zip(yh, y)), Dual(0, [0] * len(yh)))


def _hinge(y, yh, loss):
    return sum((d_max0(1 - a * _sign(b)) for a, b in zip(yh, y)), Dual(0, [0] * len(yh)))


def _huber(y, yh, loss):
    delta = loss.delta
    exact = isinstance(yh[0].v, Fraction) if yh else False
    if exact:
        delta = Fraction(delta)
    out = Dual(0, [0] * len(yh))
    for a, b in zip(yh, y):
        r = a - b
        out = out + (r * r / 2 if abs(r.v) <= delta else (d_abs(r) - delta / 2) * delta)
    return out


FORMULAS = {"mse": _mse, "ce": _ce, "l1": _l1, "hinge": _hinge, "huber": _huber}


def _seed(yhat) -> list:
    n = len(yhat)
    zero, one = (Fraction(0), Fraction(1)) if yhat and isinstance(yhat[0], Fraction) else (0.0, 1.0)
    return [Dual(v, [one if k == j else zero for k in range(n)]) for j, v in enumerate(yhat)]


def differentiate(loss, y, yhat) -> list:
    """d l / d yhat at (y, yhat) as a list, by forward-mode AD of the formula above."""
    f = FORMULAS[loss.name]
    return list(f(list(y), _seed(list(yhat)), loss).d)


def differentiate_margin_hinge(y) -> list:
    """d/dyhat sum max(0, 1 - y yhat) at yhat = 0 for a real label y fed directly (exact rationals)."""
    ys = [v if isinstance(v, Fraction) else Fraction(float(v)) for v in y]
    yh = _seed([Fraction(0)] * len(ys))
    total = sum((d_max0(1 - a * b) for a, b in zip(yh, ys)), Dual(0, [0] * len(ys)))
    return list(total.d)


def gradient(loss, y, yhat) -> np.ndarray:
    """grad_yhat l(y, yhat) in float64."""
    y = np.asarray(y, dtype=float).reshape(-1)
    yhat = np.asarray(yhat, dtype=float).reshape(-1)
    if loss.name not in FORMULAS:
        return np.array([float(v) for v in _sympy_grad_fn(loss, y.size)(list(y), list(yhat))], dtype=float)
    return np.array([float(v) for v in differentiate(loss, [float(v) for v in y], [float(v) for v in yhat])],
                    dtype=float)


def exact_gradient_at_zero(loss, y) -> tuple[list, bool]:
    """(grad_yhat l(y, 0) as Fractions, exact): the labels taken at their exact binary values."""
    ys = [v if isinstance(v, Fraction) else Fraction(float(v)) for v in np.asarray(y, dtype=object).reshape(-1)]
    if loss.name not in FORMULAS:
        return _sympy_exact_at_zero(loss, ys)
    g = differentiate(loss, ys, [Fraction(0)] * len(ys))
    exact = all(isinstance(v, (int, Fraction)) for v in g)
    return [Fraction(v) if exact else v for v in g], exact


@functools.lru_cache(maxsize=None)
def _sympy_grad_fn(loss, dy: int):  # pragma: no cover - only for losses not listed in FORMULAS
    import sympy as sp

    ys = sp.symbols(f"y0:{dy}", real=True)
    yh = sp.symbols(f"yh0:{dy}", real=True)
    ell = loss.sympy_value(list(ys), list(yh))
    return sp.lambdify((ys, yh), [sp.diff(ell, v) for v in yh], modules="numpy")


def _sympy_exact_at_zero(loss, ys):  # pragma: no cover - only for losses not listed in FORMULAS
    import sympy as sp

    C = len(ys)
    s = sp.symbols(f"y0:{C}", real=True)
    yh = sp.symbols(f"yh0:{C}", real=True)
    ell = loss.sympy_value(list(s), list(yh))
    sub = {**{v: 0 for v in yh}, **{s[c]: sp.Rational(ys[c].numerator, ys[c].denominator) for c in range(C)}}
    out = [sp.simplify(sp.diff(ell, v).subs(sub)) for v in yh]
    if all(v.is_Rational for v in out):
        return [Fraction(int(v.p), int(v.q)) for v in out], True
    return [float(v) for v in out], False
