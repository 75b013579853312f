"""The spec's chosen objects (spec sections 1-2), written apart from the builder.

* A_i (diagonal): A_1 = I, A_N = eps I, A_i = eps I + E_{i-2} (E_c selects code channel c);
  the weights realise A_i / r^i for i >= 2 (r = ReLU'(0) != 0 compensated, spec section 1).
* e_bar(y): m stacked copies of [u; -u] (signed) or [u] (paper), u the loss's label code
  (MSE: u = y); e_check(y): the loss's closed bottom form (MSE: sum y).
* The switched feature map phi(u; theta_b) = [phi~(u; theta_b); 0; theta_b], phi~ one-hot in the
  x slots when theta_b == 0, in the x* slots otherwise, with the cells of :mod:`.bins`.
"""
from __future__ import annotations

import numpy as np

from . import bins


def A_diag(i: int, N: int, blocks, eps: float) -> np.ndarray:
    """diag(A_i), i = 1..N, as the spec chooses it."""
    if i == 1:
        return np.ones(blocks.dm)
    if i == N:
        return np.full(blocks.dm, float(eps))
    chan = np.arange(blocks.dm) // (blocks.s * blocks.dy)  # code channel of each middle coordinate
    return float(eps) + (chan == i - 2).astype(float)


def A_diag_at(i: int, N: int, blocks, eps: float, coords: np.ndarray) -> np.ndarray:
    """diag(A_i) at the middle coordinates ``coords`` only: :func:`A_diag`'s formula evaluated there
    (the same numbers as ``A_diag(i, N, blocks, eps)[coords]``, without the dm-long vector: the decoder
    reads one coordinate per channel of every A_i, N x dm work at J = L = 128)."""
    coords = np.asarray(coords, dtype=np.int64)
    if i == 1:
        return np.ones(coords.size)
    if i == N:
        return np.full(coords.size, float(eps))
    chan = coords // (blocks.s * blocks.dy)
    return float(eps) + (chan == i - 2).astype(float)


def A_realised_diag(i: int, N: int, blocks, eps: float, r: float) -> np.ndarray:
    """diag(A_i / r^i) for i >= 2 (A_1 = I): what the weights must realise (r = 0: A_i itself)."""
    a = A_diag(i, N, blocks, eps)
    return a if (i == 1 or r == 0) else a / float(r) ** i


def e_bar(y, blocks, loss) -> np.ndarray:
    """m stacked copies of [u; -u] (s = 2) or [u] (s = 1), u = loss.label_code(y)."""
    u = np.asarray(loss.label_code(np.asarray(y, dtype=float)), dtype=float).reshape(-1)
    unit = np.concatenate([u, -u]) if blocks.s == 2 else u
    return np.tile(unit, blocks.m)


def e_check(y, loss) -> float:
    return float(loss.e_check(np.asarray(y, dtype=float)))


def phi_tilde_slot(u, theta_b: float, J: int, L: int, blocks) -> int:
    """The one top slot the switched feature map sets to 1 (theta_b tested for == 0 exactly)."""
    if theta_b == 0:
        return blocks.top_x.start + bins.cell(u, J)
    return blocks.top_star.start + bins.cell(u, L)


def phi(u, theta_b: float, J: int, L: int, blocks) -> np.ndarray:
    """The full width-D input [phi~(u; theta_b); 0_dm; theta_b]."""
    out = np.zeros(blocks.D)
    out[phi_tilde_slot(u, theta_b, J, L, blocks)] = 1.0
    out[blocks.bottom] = float(theta_b)
    return out
