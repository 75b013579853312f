"""Reading (bin x, bin x*, y) back out of the middle block zbar* (Lemma 4.1's "v determines...").

zbar* = -alpha v (paper variant, right sign of y) or max(-alpha v, 0) (signed variant). In channel c,
v holds w_c(a, b) * [y; -y] with the channel gains w(j, l) = sum_i c_{i-2}(j, l) diag(A_i)|_c.
The decoder recovers U = v per channel and component (U = (z+ - z-)/(-alpha) for the signed
variant, z/(-alpha) for the paper variant), then picks the cell whose gain vector w(j, l) explains
U best in least squares, and reads y off that fit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def recover(zbar: np.ndarray, blocks) -> np.ndarray:
    """The m x dy matrix of signed channel values: z+ - z- (signed) or z (paper)."""
    z = np.asarray(zbar, dtype=float).reshape(blocks.m, blocks.s, blocks.dy)
    return z[:, 0, :] - z[:, 1, :] if blocks.s == 2 else z[:, 0, :]


def cell_gains(con) -> np.ndarray:
    """w(j, l) for every cell, as a (cells_x * cells_star, m) matrix (row = j * cells_star + l).

    Computed once per construction (cached in ``con.extras``, keyed by the code table and the A_i);
    the code table is multiplied as a sparse matrix, so one-hot layouts cost what their nonzeros cost.
    """
    cached = con.extras.get("_cell_gains")
    if cached is not None and cached[0] is con.codes and cached[1] is con.A:
        return cached[2]
    b = con.blocks
    # gain of term i = c'+2 on channel c: (A_i) on any coordinate of channel c
    first = np.array([b.channel_local(c).start for c in range(b.m)], dtype=int)
    gain = np.asarray(con.A[1:con.N - 1], dtype=float)[:, first]  # (m', m)
    codes = np.asarray(con.codes, dtype=float).reshape(b.m, -1)  # (m', cells)
    if codes.size > 1_000_000:  # large one-hot tables: multiply only their nonzeros
        import scipy.sparse as sp

        codes = sp.csr_matrix(codes)
    out = np.asarray(codes.T @ gain)
    con.extras["_cell_gains"] = (con.codes, con.A, out)
    return out


@dataclass
class Decoded:
    cell_x: int
    cell_star: int
    y: np.ndarray
    fit_residual: float
    margin: float  # sin of the angle to the nearest other cell's gain vector


def decode(con, zbar: np.ndarray, alpha: float) -> Decoded:
    b = con.blocks
    U = recover(zbar, b) / (-alpha)  # (m, dy)
    Wc = cell_gains(con)  # (cells, m)
    norms2 = np.einsum("cm,cm->c", Wc, Wc)
    proj = Wc @ U  # (cells, dy)
    safe = np.where(norms2 > 0, norms2, 1.0)
    resid2 = float(np.sum(U * U)) - np.sum(proj * proj, axis=1) / safe
    resid2 = np.where(norms2 > 0, resid2, np.sum(U * U))
    best = int(np.argmin(resid2))
    y = con.loss.label_from_code(proj[best] / safe[best])  # MSE: the code itself; CE: + 1/C
    return Decoded(best // b.cells_star, best % b.cells_star, y, float(np.sqrt(max(resid2[best], 0.0))),
                   separation_margin(Wc, best))


def separation_margin(Wc: np.ndarray, index: int) -> float:
    """min over other cells of sin(angle(w(index), w(other))); 0 when two cells share a direction."""
    n = np.linalg.norm(Wc, axis=1)
    if n[index] == 0:
        return 0.0
    unit = Wc / np.where(n > 0, n, 1.0)[:, None]
    cos = unit @ unit[index]
    cos = np.delete(cos, index)
    if cos.size == 0:
        return 1.0
    return float(np.sqrt(max(0.0, 1.0 - float(np.max(cos * cos)))))
