"""The code table c(j, l) from the spec's formulas (spec section 2, "Codes and layouts").

* paper:     one-hot, cell (j, l) -> channel j + J*l (App. A.1: layer i = 2 + j + J l);
* compact:   moment curve (1, t, t^2, ..., t^{m-1}), t = (1 + j L + l) / (J L);
* truncated: the paper's one-hot codes with only m < J*L channels (cells past m get the zero code).

Entries are exact rationals (``fractions.Fraction``, :func:`entry`); the float64 forms (:func:`table`,
:func:`compact_channel`, :func:`column`) are each entry's nearest float, computed vectorised from exact
integer numerators and denominators (one rounding per entry; tested against :func:`entry`).
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


def _exact_quotients(num: np.ndarray, den: int) -> np.ndarray:
    """num / den for an int64 array of non-negative numerators: the float64 nearest each rational.

    One rounding per entry: when every numerator is below 2^53 (exact as a float) and den is a float,
    the IEEE division rounds once; when den is a power of two (and not tiny), the int -> float
    conversion rounds once and the division is exact; otherwise Python's int / int (correctly rounded)
    per entry."""
    if den == 1:
        return num.astype(np.float64)
    pow2 = den & (den - 1) == 0 and den.bit_length() < 1000
    if float(den) == den and (int(num.max(initial=0)) < 2**53 or pow2):
        return num.astype(np.float64) / float(den)
    return (num.astype(object) / den).astype(np.float64)  # pragma: no cover - huge sizes only


def compact_channel(c: int, cells_x: int, cells_star: int) -> np.ndarray:
    """Channel c of the moment-curve code, t^c with t = (1 + j L + l) / (J L), as a (cells_x,
    cells_star) float64 array, each entry the float nearest the exact rational (vectorised; the
    numerators are exact integers, see :func:`_exact_quotients`)."""
    n = 1 + np.arange(cells_x, dtype=np.int64)[:, None] * cells_star + np.arange(cells_star, dtype=np.int64)[None, :]
    d = cells_x * cells_star
    if c == 0:
        return np.ones((cells_x, cells_star))
    if c * int(n.max()).bit_length() <= 63:  # n < 2^bits, so n^c < 2^63: exact int64 powers
        return _exact_quotients(n ** c, d ** c)
    num = n.astype(object) ** c  # pragma: no cover - many channels at large sizes
    return (num / d ** c).astype(np.float64)


def onehot_channel(c: int, cells_x: int, cells_star: int):
    """Channel c of the one-hot code as the (j, l) cell it marks, or None (c >= J L): the channel is
    the indicator of that cell."""
    if c >= cells_x * cells_star:
        return None
    return c % cells_x, c // cells_x


def column(layout: str, a: int, b: int, cells_x: int, cells_star: int, m: int) -> np.ndarray:
    """The code c(a, b) of one cell (length m), each entry the float nearest the rational."""
    if layout in ("paper", "truncated"):
        out = np.zeros(m)
        if a + cells_x * b < m:
            out[a + cells_x * b] = 1.0
        return out
    if layout != "compact":
        raise ValueError(f"unknown layout {layout!r}")
    n, d = 1 + a * cells_star + b, cells_x * cells_star
    return np.array([(n ** c) / (d ** c) for c in range(m)], dtype=np.float64)  # int / int: correctly rounded


def column_exact(layout: str, a: int, b: int, cells_x: int, cells_star: int, m: int) -> list:
    """The code c(a, b) of one cell as exact rationals (:class:`fractions.Fraction`): the same
    definition as :func:`column` (whose entries are these rounded to the nearest float), for the exact
    backend's claimed sides."""
    from fractions import Fraction

    if layout in ("paper", "truncated"):
        out = [Fraction(0)] * m
        if a + cells_x * b < m:
            out[a + cells_x * b] = Fraction(1)
        return out
    if layout != "compact":
        raise ValueError(f"unknown layout {layout!r}")
    n, d = 1 + a * cells_star + b, cells_x * cells_star
    return [Fraction(n ** c, d ** c) for c in range(m)]


def channel(layout: str, c: int, cells_x: int, cells_star: int) -> np.ndarray:
    """Channel c as a dense (cells_x, cells_star) float64 array (small sizes)."""
    if layout in ("paper", "truncated"):
        out = np.zeros((cells_x, cells_star))
        cell = onehot_channel(c, cells_x, cells_star)
        if cell is not None:
            out[cell] = 1.0
        return out
    if layout != "compact":
        raise ValueError(f"unknown layout {layout!r}")
    return compact_channel(c, cells_x, cells_star)


def channel_sparse(layout: str, c: int, cells_x: int, cells_star: int):
    """Channel c as a SciPy CSR (cells_x, cells_star) matrix (one-hot: at most one entry)."""
    import scipy.sparse as sp

    if layout in ("paper", "truncated"):
        cell = onehot_channel(c, cells_x, cells_star)
        if cell is None:
            return sp.csr_matrix((cells_x, cells_star))
        return sp.csr_matrix(([1.0], ([cell[0]], [cell[1]])), shape=(cells_x, cells_star))
    if layout != "compact":
        raise ValueError(f"unknown layout {layout!r}")
    return sp.csr_matrix(compact_channel(c, cells_x, cells_star))


def channel_entries(layout: str, c: int, cells_x: int, cells_star: int):
    """(rows, cols, values) of channel c's nonzero entries in row-major order: the stored entries of
    :func:`channel_sparse` without a SciPy matrix per channel (the decoder's gains read every one of
    the paper layout's N - 2 channels: 8,192 SciPy constructions cost 1.2 s at J = L = 64)."""
    if layout in ("paper", "truncated"):
        cell = onehot_channel(c, cells_x, cells_star)
        if cell is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.array([cell[0]], dtype=np.int64), np.array([cell[1]], dtype=np.int64), np.ones(1)
    if layout != "compact":
        raise ValueError(f"unknown layout {layout!r}")
    M = np.asarray(compact_channel(c, cells_x, cells_star), dtype=float)
    r, q = np.nonzero(M)
    return r.astype(np.int64), q.astype(np.int64), M[r, q]


def table(layout: str, cells_x: int, cells_star: int, m: int) -> np.ndarray:
    """The table as float64, indexed [c, j, l] (each entry the float nearest the rational). Dense
    (m x cells): for small sizes; the claims read channels (:func:`compact_channel`,
    :func:`channel_sparse`) or cells (:func:`column`) at large ones."""
    out = np.zeros((m, cells_x, cells_star))
    if layout in ("paper", "truncated"):  # one-hot: one exact 1 per cell whose channel exists
        for c in range(min(m, cells_x * cells_star)):
            j, l = onehot_channel(c, cells_x, cells_star)
            out[c, j, l] = 1.0
        return out
    if layout != "compact":
        raise ValueError(f"unknown layout {layout!r}")
    for c in range(m):
        out[c] = compact_channel(c, cells_x, cells_star)
    return out


def table_fractions(layout: str, cells_x: int, cells_star: int, m: int) -> np.ndarray:
    """The table from :func:`entry` (exact Fractions rounded once, per entry): the slow reference the
    vectorised :func:`table` is tested against."""
    out = np.zeros((m, cells_x, cells_star))
    for c in range(m):
        for j in range(cells_x):
            for l in range(cells_star):
                out[c, j, l] = float(entry(layout, c, j, l, cells_x, cells_star))
    return out
