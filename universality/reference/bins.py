"""Cells of x and x* in exact rational arithmetic (spec section 2: uniform cells, flattened grid).

Written apart from :mod:`universality.construction.features`: the float is converted to its exact
rational value p/q and the cell is the integer quotient (p * cells) // q, so a point on a cell edge
k/cells lands in cell k and the largest float below it in cell k - 1, with no rounding anywhere.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np


def axis_cell(u, cells: int) -> int:
    """floor(u * cells) for u in [0, 1), exactly; values outside are clamped into 0..cells-1."""
    q = u if isinstance(u, Fraction) else Fraction(float(u))
    k = (q.numerator * cells) // q.denominator
    return int(min(max(k, 0), cells - 1))


def cell(u, per_axis: int) -> int:
    """The flattened (row-major over the axes) cell of a point of [0, 1)^dx."""
    coords = [u] if np.isscalar(u) or isinstance(u, Fraction) else list(np.asarray(u, dtype=object).reshape(-1))
    out = 0
    for c in coords:
        out = out * per_axis + axis_cell(c, per_axis)
    return out


def edge_points(per_axis: int) -> list[tuple[float, int]]:
    """(u, cell) for points at and around every cell edge of one axis: the edge k/cells itself, the
    float just below and just above it, and the extremes 0 and the largest float below 1. The cell is
    decided exactly from the rational value of each float."""
    pts = {0.0, float(np.nextafter(1.0, 0.0))}
    for k in range(1, per_axis):
        e = k / per_axis  # the float nearest k/per_axis; its own cell is decided exactly below
        pts.update({e, float(np.nextafter(e, 0.0)), float(np.nextafter(e, 1.0))})
    return [(u, axis_cell(u, per_axis)) for u in sorted(pts)]


def cell_point(index: int, per_axis: int, dx: int, offset: float = 0.5) -> tuple:
    """A point of flattened cell ``index``: (digit + offset) / per_axis on every axis, with the cell
    asserted exactly (an offset that lands outside its cell by rounding is refused)."""
    digits = []
    k = index
    for _ in range(dx):
        digits.append(k % per_axis)
        k //= per_axis
    pt = tuple((d + offset) / per_axis for d in reversed(digits))
    if cell(pt, per_axis) != index:  # pragma: no cover - guards the offset choice
        raise ValueError(f"offset {offset} leaves cell {index}")
    return pt
