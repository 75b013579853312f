"""The code table c(j, l) from the spec's formulas (spec section 2, "Codes and layouts").

* paper:     one-hot, cell (j, l) -> channel j + J*l (App. A.1: layer i = 2 + j + J l);
* compact:   moment curve (1, t, t^2, ..., t^{m-1}), t = (1 + j L + l) / (J L);
* truncated: the paper's one-hot codes with only m < J*L channels (cells past m get the zero code).

Entries are exact rationals (``fractions.Fraction``); :func:`table` converts them to float64 once.
Written apart from :mod:`universality.construction.codes`.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np


def entry(layout: str, c: int, j: int, l: int, cells_x: int, cells_star: int) -> Fraction:
    """c_c(j, l) as the spec defines it."""
    if layout in ("paper", "truncated"):
        return Fraction(int(j + cells_x * l == c))
    if layout == "compact":
        return Fraction(1 + j * cells_star + l, cells_x * cells_star) ** c
    raise ValueError(f"unknown layout {layout!r}")


def table(layout: str, cells_x: int, cells_star: int, m: int) -> np.ndarray:
    """The table as float64, indexed [c, j, l] (each entry the float nearest the rational)."""
    out = np.zeros((m, cells_x, cells_star))
    if layout in ("paper", "truncated"):  # one-hot: one exact 1 per cell whose channel exists
        for j in range(cells_x):
            for l in range(cells_star):
                if j + cells_x * l < m:
                    out[j + cells_x * l, j, l] = 1.0
        return out
    if layout != "compact":
        raise ValueError(f"unknown layout {layout!r}")
    for j in range(cells_x):
        for l in range(cells_star):
            t = Fraction(1 + j * cells_star + l, cells_x * cells_star)
            p = Fraction(1)
            for c in range(m):  # exact powers, each rounded once
                out[c, j, l] = float(p)
                p *= t
    return out
