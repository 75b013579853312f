"""Reading (bin x, bin x*, y) back out of the middle block zbar* (Lemma 4.1's "v determines...").

zbar* = -alpha v (paper variant, right sign of y) or max(-alpha v, 0) (signed variant). In channel c,
v holds w_c(a, b) * [y; -y] with the channel gains w(j, l) = sum_i c_{i-2}(j, l) diag(A_i)|_c.
The decoder recovers U = v per channel and component (U = (z+ - z-)/(-alpha) for the signed
variant, z/(-alpha) for the paper variant), then picks the cell whose gain vector w(j, l) explains
U best in least squares, and reads y off that fit.

The residual of a cell is computed stably, as the norm of U minus its projection on the cell's unit
gain vector (never as |U|^2 - |proj|^2, which cancels when every gain is nearly parallel, e.g. for a
large eps, and then picks a wrong cell).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# cells per chunk of the residual computation (bounds the (cells, m, dy) temporary)
_CHUNK = 512


def recover(zbar: np.ndarray, blocks) -> np.ndarray:
    """The m x dy matrix of signed channel values: z+ - z- (signed) or z (paper)."""
    z = np.asarray(zbar, dtype=float).reshape(blocks.m, blocks.s, blocks.dy)
    return z[:, 0, :] - z[:, 1, :] if blocks.s == 2 else z[:, 0, :]


def cell_gains(con) -> np.ndarray:
    """w(j, l) for every cell from the builder's chosen tables, as a (cells_x * cells_star, m) matrix
    (row = j * cells_star + l). The claims use :func:`spec_gains` (the spec's tables) instead.

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


def spec_gains(design, blocks) -> np.ndarray:
    """w(j, l) from the spec's code table and A_i (universality.reference), same layout as
    :func:`cell_gains`."""
    from .reference import design as ref_design
    from .reference import formulas

    b = blocks
    first = [b.channel_local(c).start for c in range(b.m)]
    gain = np.array([ref_design.A_diag(i, design.N, b, design.eps)[first] for i in range(2, design.N)])
    codes = np.asarray(formulas.code_table(design.layout, b), dtype=float).reshape(b.m, -1)
    return codes.T @ gain


@dataclass
class Decoded:
    cell_x: int
    cell_star: int
    y: np.ndarray
    fit_residual: float
    margin: float  # sin of the angle to the nearest other cell's gain vector


_UNIT: list = []  # [(Wc, norms, unit)]: the last gain table's unit rows (one run decodes every sample with it)


def _unit_rows(Wc: np.ndarray):
    """(norms, unit rows) of the gain table Wc, kept for the table last asked about: a run decodes all
    its samples with one table, and at J = L = 64 the table is 268 MB (it was divided anew per sample)."""
    if _UNIT and _UNIT[0][0] is Wc:
        return _UNIT[0][1], _UNIT[0][2]
    norms = np.linalg.norm(Wc, axis=1)
    unit = Wc / np.where(norms > 0, norms, 1.0)[:, None]
    _UNIT[:] = [(Wc, norms, unit)]
    return norms, unit


def residuals(Wc: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|U - w^ (w^T U)|_F per cell, the least-squares label code w^T U / |w|^2 per cell)."""
    norms, unit = _unit_rows(Wc)
    safe = np.where(norms > 0, norms, 1.0)
    out = np.empty(Wc.shape[0])
    codes = np.zeros((Wc.shape[0], U.shape[1]))
    for s0 in range(0, Wc.shape[0], _CHUNK):
        u = unit[s0:s0 + _CHUNK]  # (c, m)
        p = u @ U  # (c, dy): coordinates along each unit gain
        R = U[None, :, :] - u[:, :, None] * p[:, None, :]
        out[s0:s0 + _CHUNK] = np.sqrt(np.einsum("cmd,cmd->c", R, R))
        codes[s0:s0 + _CHUNK] = p / safe[s0:s0 + _CHUNK, None]
    zero = norms == 0
    out[zero] = np.linalg.norm(U)
    codes[zero] = 0.0
    return out, codes


def decode_gains(Wc: np.ndarray, blocks, loss, zbar: np.ndarray, alpha: float) -> Decoded:
    """Decode with the given cell gains (rows j * cells_star + l)."""
    U = recover(zbar, blocks) / (-alpha)  # (m, dy)
    res, codes = residuals(Wc, U)
    best = int(np.argmin(res))
    y = loss.label_from_code(codes[best])  # MSE: the code itself; CE: + 1/C
    return Decoded(best // blocks.cells_star, best % blocks.cells_star, y, float(res[best]),
                   separation_margin(Wc, best))


def decode(con, zbar: np.ndarray, alpha: float) -> Decoded:
    return decode_gains(cell_gains(con), con.blocks, con.loss, zbar, alpha)


def separation_margin(Wc: np.ndarray, index: int) -> float:
    """min over other cells of sin(angle(w(index), w(other))); 0 when two cells share a direction."""
    n, unit = _unit_rows(Wc)
    if n[index] == 0:
        return 0.0
    if unit.shape[0] <= 1:
        return 1.0
    # stable sine: the norm of the rejection of each other unit vector from this one (in chunks of
    # rows, with no copy of the table)
    u = unit[index]
    best = np.inf
    for s0 in range(0, unit.shape[0], _CHUNK):
        rows = unit[s0:s0 + _CHUNK]
        p = rows @ u
        rej = np.linalg.norm(rows - p[:, None] * u[None, :], axis=1)
        if s0 <= index < s0 + rows.shape[0]:
            rej[index - s0] = np.inf  # not against itself
        best = min(best, float(rej.min(initial=np.inf)))
    return best
