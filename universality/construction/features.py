"""The switched feature map (App. C of the slides) and the binning of inputs.

phi~(u; theta_b) = [onehot_J(bin_J(u)); 0_L] if theta_b == 0, else [0_J; onehot_L(bin_L(u))], and
phi(u; theta_b) = [phi~(u; theta_b); 0_dm; theta_b]. The training input goes into the first J slots,
the test input (after theta_b has moved) into the last L. The switch tests theta_b == 0 exactly.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def axis_bin(u: float, cells: int) -> int:
    """floor(u * cells) computed exactly on the float's rational value, clamped into range."""
    q = Fraction(u) if not isinstance(u, Fraction) else u
    b = math.floor(q * cells)
    return min(max(b, 0), cells - 1)


def cell(u, cells_per_axis: int) -> int:
    """Flattened cell index of a point of [0, 1)^dx (row-major over the axes)."""
    coords = np.atleast_1d(np.asarray(u, dtype=object))
    idx = 0
    for value in coords:
        idx = idx * cells_per_axis + axis_bin(value if isinstance(value, Fraction) else float(value),
                                              cells_per_axis)
    return idx


def phi_tilde_index(u, theta_b_is_zero: bool, J: int, L: int, blocks) -> int:
    """The one top slot phi~(u; theta_b) sets to 1."""
    if theta_b_is_zero:
        return blocks.top_x.start + cell(u, J)
    return blocks.top_star.start + cell(u, L)


def phi(u, theta_b, J: int, L: int, blocks, field):
    """The full width-D input phi(u; theta_b) in the given number field (a vector)."""
    is_zero = theta_b == 0
    k = phi_tilde_index(u, bool(is_zero), J, L, blocks)
    if field.name == "numeric":
        out = np.zeros(blocks.D)
        out[k] = 1.0
        out[blocks.bottom] = float(theta_b)
        return out
    out = field.zeros(blocks.D, 1)
    out[k, 0] = field.num(1)
    out[blocks.bottom, 0] = theta_b
    return out
