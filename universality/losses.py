"""Losses l(y, yhat) with their gradient in yhat, and what the output head needs (paper Sec. 6).

Every loss object has

* ``value(y, yhat)`` and ``grad(y, yhat)``: the loss and its real gradient in yhat. Execution uses
  :meth:`grad` (NumPy arrays, or SymPy matrices for an exact run), never a matrix.
* ``head(dy, field)`` -> (H, u): the output head g_pre = W_g z is built as
  W_g = [0, +H, -H, +H, -H, ..., u] (signed variant; [0, H, H, ..., u] for the paper variant), so
  that the error reaching z at yhat = 0 is [0; e_bar(y); e_check(y)] with e_bar's unit
  H^T grad(y, 0) and e_check(y) = u^T grad(y, 0).
* ``label_code(y)``: the closed form of that unit, H^T grad(y, 0), as the paper's formulas use it
  (MSE: y; CE: y - mean(y), = y - 1/C on the simplex; L1 and hinge: sign(y); Huber: clip(y, -delta,
  delta)).
  The claims compare the executed network against it; nothing executes it.
* ``label_from_code(u)``: the label a decoder reads back from the unit (the inverse where there is
  one; CE: u + 1/C on the simplex; L1, hinge, Huber: u itself, i.e. what survives).
* ``domain``: "real" (labels in R^dy) or "simplex" (CE: probability vectors, one-hot by default).
* ``sympy_value(y, yhat)``: the loss as a SymPy expression of symbol lists, for the exact check of
  Theorems 6.1 / 6.2 (claims/loss_claims.py).
* ``sample_label(rng, dy)`` and ``zero_gradient_label(dy)``: labels of the loss's domain; the latter
  is the label whose gradient at yhat = 0 vanishes (MSE: 0; CE: the uniform vector 1/C).
  ``e_check_null_label(dy)``: a label with nonzero gradient but e_check = 0 (the switch stays off),
  or None where the bottom form has no such label.

Which loss recovers the label is never stated here: the claim ``loss-recovers-label`` computes it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _is_sympy(a) -> bool:
    mod = type(a).__module__
    return mod.startswith("sympy")


def _arr(a) -> np.ndarray:
    return np.asarray(a, dtype=float).reshape(-1)


def _real_label(rng: np.random.Generator, dy: int) -> np.ndarray:
    """Both signs, magnitudes from about 0.05 to 20; never exactly 0."""
    from .samples import log_uniform  # portable across CPUs (no SIMD exp)

    mag = log_uniform(rng, 0.05, 20.0, dy)
    return mag * rng.choice([-1.0, 1.0], size=dy)


@dataclass(frozen=True)
class MSE:
    name: str = "mse"
    formula: str = "l(y, yhat) = 1/2 * ||yhat - y||^2;  grad_yhat l = yhat - y"
    paper_ref: str = "Thm 6.1"
    domain: str = "real"

    def value(self, y, yhat):
        d = _arr(yhat) - _arr(y)
        return 0.5 * float(d @ d)

    def grad(self, y, yhat):
        """d l / d yhat (works for NumPy arrays and SymPy matrices alike)."""
        return yhat - y

    def sympy_value(self, y, yhat):
        return sum((a - b) ** 2 for a, b in zip(yhat, y)) / 2

    def grad_matrix_at_zero(self, dy: int, field):
        """Lambda with grad l(y, 0) = Lambda y: here -I."""
        return -field.eye(dy)

    def inverse_transpose_at_zero(self, dy: int, field):
        """Lambda^{-T}, used to build W_g; for MSE it is -I."""
        return -field.eye(dy)

    def head(self, dy: int, field):
        H = -field.eye(dy)
        return H, _col_sum(H, dy, field)

    def label_code(self, y):
        return _arr(y)

    def label_from_code(self, u):
        return _arr(u)

    def e_check(self, y) -> float:
        return float(np.sum(_arr(y)))

    def sample_label(self, rng, dy: int) -> np.ndarray:
        return _real_label(rng, dy)

    def zero_gradient_label(self, dy: int) -> np.ndarray:
        return np.zeros(dy)

    def e_check_null_label(self, dy: int):
        """A nonzero label with e_check = sum(y) = 0 (dy >= 2), else None."""
        if dy < 2:
            return None
        y = np.zeros(dy)
        y[0], y[1] = 1.0, -1.0
        return y


def _col_sum(H, dy: int, field):
    """H @ 1 as a length-dy vector of the field (e_check(y) = 1^T H^T grad = sum of the unit)."""
    if field.name == "numeric":
        return np.asarray(H, dtype=float) @ np.ones(dy)
    return H * field.sp.ones(dy, 1)


def _pow2(dy: int, field):
    """-(1, 2, 4, ..., 2^(dy-1)) as a vector of the field."""
    if field.name == "numeric":
        return -(2.0 ** np.arange(dy))
    return field.sp.Matrix([-field.num(2**d) for d in range(dy)])


def _softmax(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    e = np.exp(v - np.max(v))
    return e / e.sum()


@dataclass(frozen=True)
class CrossEntropy:
    """Softmax cross-entropy on logits yhat, labels y on the simplex (C = dy classes).

    ``grad`` is the exact derivative of ``value``: (sum y) softmax(yhat) - y. On the simplex this is
    the familiar softmax(yhat) - y; at yhat = 0 it is ((1/C) 1 1^T - I) y, linear on all of R^C but
    singular (y and y + t 1 give the same gradient), so the label is recoverable only on the simplex.
    """

    name: str = "ce"
    formula: str = ("l(y, yhat) = -sum_c y_c log softmax(yhat)_c;  grad_yhat l = (sum y) softmax(yhat) - y "
                    "(= softmax(yhat) - y on the simplex; at yhat = 0: ((1/C) 1 1^T - I) y, singular)")
    paper_ref: str = "Thm 6.2"
    domain: str = "simplex"

    def value(self, y, yhat):
        yhat = _arr(yhat)
        m = float(np.max(yhat))
        lse = m + float(np.log(np.sum(np.exp(yhat - m))))
        return float(-(_arr(y) @ (yhat - lse)))

    def grad(self, y, yhat):
        if _is_sympy(yhat) or _is_sympy(y):
            import sympy as sp

            ex = [sp.exp(v) for v in yhat]
            tot = sum(ex)
            ym = sp.Matrix(y)
            return sp.Matrix([e / tot for e in ex]) * sum(ym) - ym
        y = _arr(y)
        return float(np.sum(y)) * _softmax(_arr(yhat)) - y

    def sympy_value(self, y, yhat):
        import sympy as sp

        lse = sp.log(sum(sp.exp(v) for v in yhat))
        return -sum(yc * (v - lse) for yc, v in zip(y, yhat))

    def grad_matrix_at_zero(self, dy: int, field):
        """(1/C) 1 1^T - I = grad l(y, 0) / y. Singular: its kernel is span(1)."""
        C = field.num(dy)
        one = field.num(1)
        if field.name == "numeric":
            return np.full((dy, dy), 1.0 / dy) - np.eye(dy)
        return field.sp.ones(dy, dy) * (one / C) - field.eye(dy)

    def head(self, dy: int, field):
        """H = -I gives the unit y - mean(y) (on the simplex y - 1/C); u = -C e_0 gives
        e_check = C y_0 - sum(y) (on the simplex C y_0 - 1).

        The bottom form cannot be u = H 1 as for MSE: 1^T grad(y, 0) = 0 for every y.
        """
        H = -field.eye(dy)
        if field.name == "numeric":
            u = np.zeros(dy)
            u[0] = -float(dy)
        else:
            u = field.sp.zeros(dy, 1)
            u[0, 0] = -field.num(dy)
        return H, u

    def label_code(self, y):
        y = _arr(y)
        return y - float(np.sum(y)) / y.size

    def label_from_code(self, u):
        """The simplex label with this centred code (the code fixes y up to a multiple of 1)."""
        u = _arr(u)
        return u + 1.0 / u.size

    def e_check(self, y) -> float:
        y = _arr(y)
        return float(y.size * y[0] - np.sum(y))

    def sample_label(self, rng, dy: int) -> np.ndarray:
        """A point of the simplex: one-hot half of the time, else a Dirichlet draw."""
        if rng.random() < 0.5:
            y = np.zeros(dy)
            y[rng.integers(0, dy)] = 1.0
            return y
        return rng.dirichlet(np.full(dy, 0.7))

    def zero_gradient_label(self, dy: int) -> np.ndarray:
        return np.full(dy, 1.0 / dy)

    def e_check_null_label(self, dy: int):
        """A simplex label with e_check = C y_0 - 1 = 0 that is not the uniform one (C >= 3; for C = 2
        the only such label is the uniform one)."""
        if dy < 3:
            return None
        y = np.zeros(dy)
        y[0], y[1] = 1.0 / dy, 1.0 - 1.0 / dy
        return y


class _SignCoded:
    """What L1 and hinge share: at yhat = 0 their gradient only sees sign(y)."""

    def head(self, dy: int, field):
        """H = -I (unit sign(y)); u = -(1, 2, 4, ...): e_check = sum_d 2^d sign(y_d), nonzero for
        every label with nonzero components (a plain sum of signs vanishes for half the sign patterns)."""
        return -field.eye(dy), _pow2(dy, field)

    def label_code(self, y):
        return np.sign(_arr(y))

    def label_from_code(self, u):
        return _arr(u)

    def e_check(self, y) -> float:
        return float(np.sign(_arr(y)) @ 2.0 ** np.arange(_arr(y).size))

    def sample_label(self, rng, dy: int) -> np.ndarray:
        return _real_label(rng, dy)

    def zero_gradient_label(self, dy: int) -> np.ndarray:
        return np.zeros(dy)

    def e_check_null_label(self, dy: int):
        """None: sum_d 2^d s_d with s_d in {-1, 0, 1} vanishes only at s = 0 (the zero label)."""
        return None



@dataclass(frozen=True)
class L1(_SignCoded):
    name: str = "l1"
    formula: str = "l(y, yhat) = sum |yhat - y|;  grad_yhat l = sign(yhat - y) (at yhat = 0: -sign(y))"
    paper_ref: str = "Sec. 6 (negative case)"
    domain: str = "real"

    def value(self, y, yhat):
        return float(np.sum(np.abs(_arr(yhat) - _arr(y))))

    def grad(self, y, yhat):
        if _is_sympy(yhat) or _is_sympy(y):
            import sympy as sp

            return sp.Matrix([sp.sign(a - b) for a, b in zip(yhat, y)])
        return np.sign(_arr(yhat) - _arr(y))

    def sympy_value(self, y, yhat):
        import sympy as sp

        return sum(sp.Abs(a - b) for a, b in zip(yhat, y))


@dataclass(frozen=True)
class Hinge(_SignCoded):
    """Margin hinge per component on the class target t = sign(y) in {-1, 0, +1}.

    A hinge loss takes class targets; a real label reaches it only through its sign. (Fed a real y
    directly, max(0, 1 - y yhat) has gradient -y at yhat = 0, which is linear: the symbolic check
    reports that too.)
    """

    name: str = "hinge"
    formula: str = ("l(y, yhat) = sum max(0, 1 - t * yhat), t = sign(y);  grad_yhat l = -t * 1[t yhat < 1] "
                    "(at yhat = 0: -sign(y))")
    paper_ref: str = "Sec. 6 (negative case)"
    domain: str = "real"

    def value(self, y, yhat):
        t = np.sign(_arr(y))
        return float(np.sum(np.maximum(0.0, 1.0 - t * _arr(yhat))))

    def grad(self, y, yhat):
        if _is_sympy(yhat) or _is_sympy(y):
            import sympy as sp

            return sp.Matrix([sp.Piecewise((-sp.sign(b), sp.sign(b) * a < 1), (0, True))
                              for a, b in zip(yhat, y)])
        t = np.sign(_arr(y))
        return np.where(t * _arr(yhat) < 1.0, -t, 0.0)

    def sympy_value(self, y, yhat):
        import sympy as sp

        return sum(sp.Max(0, 1 - sp.sign(b) * a) for a, b in zip(yhat, y))


@dataclass(frozen=True)
class Huber:
    name: str = "huber"
    delta: float = 1.0
    formula: str = ("l(y, yhat) = sum h(yhat - y), h(r) = r^2/2 (|r| <= delta), delta (|r| - delta/2) "
                    "otherwise, delta = 1;  grad_yhat l = clip(yhat - y, -delta, delta)")
    paper_ref: str = "Sec. 6 (negative case)"
    domain: str = "real"

    def value(self, y, yhat):
        r = np.abs(_arr(yhat) - _arr(y))
        d = self.delta
        return float(np.sum(np.where(r <= d, 0.5 * r * r, d * (r - 0.5 * d))))

    def grad(self, y, yhat):
        if _is_sympy(yhat) or _is_sympy(y):
            import sympy as sp

            d = sp.Rational(repr(self.delta))
            return sp.Matrix([sp.Max(-d, sp.Min(d, a - b)) for a, b in zip(yhat, y)])
        return np.clip(_arr(yhat) - _arr(y), -self.delta, self.delta)

    def sympy_value(self, y, yhat):
        import sympy as sp

        d = sp.Rational(repr(self.delta))
        out = 0
        for a, b in zip(yhat, y):
            r = a - b
            out += sp.Piecewise((r**2 / 2, sp.Abs(r) <= d), (d * (sp.Abs(r) - d / 2), True))
        return out

    def head(self, dy: int, field):
        """H = -I (unit clip(y)); u = -(1, 2, 4, ...): e_check = sum_d 2^d clip(y_d), which saturated
        labels of mixed signs cannot cancel (a plain sum can: clip((2, -3)) sums to 0)."""
        return -field.eye(dy), _pow2(dy, field)

    def label_code(self, y):
        return np.clip(_arr(y), -self.delta, self.delta)

    def label_from_code(self, u):
        return _arr(u)

    def e_check(self, y) -> float:
        c = self.label_code(y)
        return float(c @ 2.0 ** np.arange(c.size))

    def sample_label(self, rng, dy: int) -> np.ndarray:
        return _real_label(rng, dy)

    def zero_gradient_label(self, dy: int) -> np.ndarray:
        return np.zeros(dy)

    def e_check_null_label(self, dy: int):
        """A nonzero label with sum_d 2^d clip(y_d) = 0 (dy >= 2): (1, -1/2, 0, ...), else None."""
        if dy < 2:
            return None
        y = np.zeros(dy)
        y[0], y[1] = 1.0, -0.5
        return y


LOSSES = {"mse": MSE(), "ce": CrossEntropy(), "l1": L1(), "hinge": Hinge(), "huber": Huber()}


def get_loss(name: str):
    return LOSSES[name]
