"""Codes and layouts: which layer (code channel) answers for which cell (j, l).

Layer i = 2..N-1 is code channel c = i - 2. A layout is a code table c(j, l) in R^m_{>=0}; the
kernel of layer i is then k_i(x, x*) = c_{i-2}(bin x, bin x*) (spec section 2).

* ``paper``   (App. A.1): one-hot codes, one channel per cell, so N = J*L + 2; cell (j, l) is
  channel j + J*l (the paper's i = 2 + j + J l).
* ``compact`` (ours): the moment curve c(j, l) = (1, t, ..., t^{m-1}) with t = (1 + j L + l)/(J L).
  Distinct cells give non-parallel codes whenever m >= 2.
* ``truncated`` (used to demonstrate the depth gap): the paper's one-hot codes with only m < J*L
  channels; the cells numbered m and above have the zero code.
"""
from __future__ import annotations

from fractions import Fraction

LAYOUT_DESCRIPTIONS = {
    "paper": "one-hot codes, one layer per cell (App. A.1); needs N = J*L + 2",
    "compact": "moment-curve codes (1, t, ..., t^(m-1)), t = (1 + jL + l)/(JL); any N >= 4",
    "truncated": "one-hot codes with fewer channels than cells; the last cells get no layer",
}


def cell_channel(j: int, l: int, cells_x: int) -> int:
    """The paper layout's channel for cell (j, l): j + J*l."""
    return j + cells_x * l


def code_entry(layout: str, c: int, j: int, l: int, cells_x: int, cells_star: int, m: int) -> Fraction:
    """c_c(j, l) as an exact rational (the field converts it)."""
    if layout in ("paper", "truncated"):
        return Fraction(1 if cell_channel(j, l, cells_x) == c else 0)
    if layout == "compact":
        t = Fraction(1 + j * cells_star + l, cells_x * cells_star)
        return t**c
    raise ValueError(f"unknown layout {layout!r}")


def compact_channel(c: int, cells_x: int, cells_star: int):
    """Channel c of the numeric moment-curve table: t(j, l)^c for every cell, (cells_x, cells_star)."""
    import numpy as np

    j = np.arange(cells_x)[:, None]
    l = np.arange(cells_star)[None, :]
    t = (1 + j * cells_star + l) / (cells_x * cells_star)
    return t ** np.full(t.shape, c, dtype=np.int64)


def code_table(layout: str, cells_x: int, cells_star: int, m: int, field):
    """The full table as field numbers, indexed [c][j][l] (NumPy array for the numeric field)."""
    import numpy as np

    if field.name == "numeric":  # vectorised over cells: the same numbers as the loop over (j, l)
        out = np.zeros((m, cells_x, cells_star))
        j = np.arange(cells_x)[:, None]
        l = np.arange(cells_star)[None, :]
        if layout == "compact":
            for c in range(m):  # channel by channel: the very numbers construction.network.CodeTable reads
                out[c] = compact_channel(c, cells_x, cells_star)
        elif layout in ("paper", "truncated"):
            ch = cell_channel(j, l, cells_x) + 0 * l  # (cells_x, cells_star)
            jj, ll = np.nonzero(ch < m)
            out[ch[jj, ll], jj, ll] = 1.0
        else:
            raise ValueError(f"unknown layout {layout!r}")
        return out
    return [
        [[field.num(code_entry(layout, c, j, l, cells_x, cells_star, m)) for l in range(cells_star)]
         for j in range(cells_x)]
        for c in range(m)
    ]
