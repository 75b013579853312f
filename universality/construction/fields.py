"""Two number fields for one recipe: float64 NumPy arrays, or exact SymPy numbers.

The builders in :mod:`universality.construction` only call the methods below, so the same code
produces the numeric and the exact construction.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


class NumericField:
    name = "numeric"

    def num(self, q):
        """A number of this field from an int, Fraction or float."""
        return float(q)

    def sqrt(self, x):
        return math.sqrt(x)

    def stack(self, n: int, rows: int, cols: int):
        """n zero matrices of shape rows x cols (a 3-D array)."""
        return np.zeros((n, rows, cols))

    def zeros(self, rows: int, cols: int):
        return np.zeros((rows, cols))

    def eye(self, n: int):
        return np.eye(n)

    def vector(self, values):
        return np.array([float(v) for v in values], dtype=float)


class ExactField:
    name = "exact"

    def __init__(self):
        import sympy

        self.sp = sympy

    def num(self, q):
        sp = self.sp
        if isinstance(q, sp.Basic):
            return q
        if isinstance(q, Fraction):
            return sp.Rational(q.numerator, q.denominator)
        if isinstance(q, float):
            # the decimal the user typed (0.1 -> 1/10), not the binary float's expansion
            return sp.Rational(repr(float(q)))  # float(): NumPy 2 reprs np.float64 as "np.float64(...)"
        return sp.Integer(q)

    def sqrt(self, x):
        return self.sp.sqrt(x)

    def stack(self, n: int, rows: int, cols: int):
        return [self.sp.zeros(rows, cols) for _ in range(n)]

    def zeros(self, rows: int, cols: int):
        return self.sp.zeros(rows, cols)

    def eye(self, n: int):
        return self.sp.eye(n)

    def vector(self, values):
        return self.sp.Matrix([self.num(v) for v in values])


NUMERIC = NumericField()


def field_for(name: str):
    if name == "numeric":
        return NUMERIC
    if name == "exact":
        return ExactField()
    raise ValueError(f"unknown number field {name!r}")
