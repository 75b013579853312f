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
    cells = b.cells_x * b.cells_star
    if b.m * cells > SPEC_GAINS_DENSE_MAX:
        return _spec_gains_by_channel(design, b, first)
    gain = np.array([ref_design.A_diag(i, design.N, b, design.eps)[first] for i in range(2, design.N)])
    codes = np.asarray(formulas.code_table(design.layout, b), dtype=float).reshape(b.m, -1)
    return codes.T @ gain


# spec_gains forms the m x cells code table and the m x m gain table at once up to this many code
# entries (32 MiB), and above it adds one channel's codes times its gain row at a time (the paper
# layout at J = L = 128: two 2.1 GB tables and the cached code table not formed; the result, cells x m,
# is what the decoder reads)
SPEC_GAINS_DENSE_MAX = 1 << 22


def _spec_gains_by_channel(design, b, first) -> np.ndarray:
    """sum over channels c of codes[c]^T gain[c] (codes[c]: channel c's cells, sparse; gain[c] = diag
    A_{c+2} at each channel's first coordinate), the rows j * cells_star + l: the same sum as the
    dense product, one channel's nonzero cells at a time."""
    from .reference import codes as ref_codes
    from .reference import design as ref_design

    first = np.asarray(first, dtype=np.int64)
    out = np.zeros((b.cells_x * b.cells_star, b.m))
    for i in range(2, design.N):
        c = i - 2
        r, q, v = ref_codes.channel_entries(design.layout, c, b.cells_x, b.cells_star)
        keep = v != 0
        if not np.any(keep):
            continue
        rows = r[keep] * b.cells_star + q[keep]
        g = ref_design.A_diag_at(i, design.N, b, design.eps, first)
        out[rows] += v[keep][:, None] * g[None, :]
    return out


@dataclass
class Decoded:
    cell_x: int
    cell_star: int
    y: np.ndarray
    fit_residual: float
    margin: float  # sin of the angle to the nearest other cell's gain vector


def residuals(Wc: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|U - w^ (w^T U)|_F per cell, the least-squares label code w^T U / |w|^2 per cell)."""
    norms, unit = _unit_rows(Wc)
    safe = np.where(norms > 0, norms, 1.0)
    out = np.empty(Wc.shape[0])
    codes = np.zeros((Wc.shape[0], U.shape[1]))
    for s0 in range(0, Wc.shape[0], _CHUNK):
        out[s0:s0 + _CHUNK], codes[s0:s0 + _CHUNK] = _stable_rows(unit[s0:s0 + _CHUNK], safe[s0:s0 + _CHUNK], U)
    zero = norms == 0
    out[zero] = np.linalg.norm(U)
    codes[zero] = 0.0
    return out, codes


def _stable_rows(u: np.ndarray, safe: np.ndarray, U: np.ndarray, p: np.ndarray | None = None):
    if p is None:
        p = u @ U  # (c, dy): coordinates along each unit gain
    R = U[None, :, :] - u[:, :, None] * p[:, None, :]
    return np.sqrt(np.einsum("cmd,cmd->c", R, R)), p / safe[:, None]


_UNIT_CACHE: list = [None, None, None, None]  # (gain matrix, norms, unit rows, {cell: margin}) of the last call


def _unit_rows(Wc: np.ndarray):
    """(row norms, unit rows; zero rows stay 0) of a gain matrix, cached for the last matrix seen (the
    claims decode every sample against the same cached gains). Above UNIT_ROWS_HELD_MAX bytes the
    unit rows are not held: a :class:`_UnitRows` forms the rows a product or an index asks for, a chunk
    at a time, with the same division (the paper layout at J = L = 128: a second 2.1 GB table)."""
    if _UNIT_CACHE[0] is not Wc:
        norms = row_norms(Wc)
        safe = np.where(norms > 0, norms, 1.0)
        unit = _UnitRows(Wc, safe) if Wc.nbytes > UNIT_ROWS_HELD_MAX else Wc / safe[:, None]
        _UNIT_CACHE[:] = [Wc, norms, unit, {}]
    return _UNIT_CACHE[1], _UNIT_CACHE[2]


UNIT_ROWS_HELD_MAX = 256 << 20


def row_norms(W: np.ndarray, chunk: int = 256) -> np.ndarray:
    """``np.linalg.norm(W, axis=1)``, ``chunk`` rows at a time: each row's norm is computed alone, so
    the same numbers bit for bit, without NumPy's full-size temporary of the squares (680 MB for the
    J = L = 96 gains, 2.1 GB at 128: about 2 s of page faults on this machine)."""
    W = np.asarray(W)
    out = np.empty(W.shape[0])
    for s0 in range(0, W.shape[0], chunk):
        out[s0:s0 + chunk] = np.linalg.norm(W[s0:s0 + chunk], axis=1)
    return out


class _UnitRows:
    """The unit rows Wc / |row| of a large gain matrix, formed on demand (``unit @ M`` a chunk of rows
    at a time, ``unit[index]`` for the rows asked for); the same numbers as the held table."""

    CHUNK = 256  # rows divided at once (a 4096-row chunk of the J = 64 table was a 256 MiB temporary)

    def __init__(self, Wc: np.ndarray, safe: np.ndarray):
        self._W, self._safe = Wc, safe
        self.shape = Wc.shape

    def __getitem__(self, index):
        if isinstance(index, slice) or np.ndim(index) > 0:
            return self._W[index] / self._safe[index][:, None]
        return self._W[index] / self._safe[index]

    def __matmul__(self, M):
        M = np.asarray(M, dtype=float)
        n = self.shape[0]
        out = np.empty((n,) + M.shape[1:])
        for s0 in range(0, n, self.CHUNK):
            out[s0:s0 + self.CHUNK] = self[s0:s0 + self.CHUNK] @ M
        return out


_U = float(np.finfo(float).eps) / 2  # unit roundoff


def best_cell(Wc: np.ndarray, U: np.ndarray) -> tuple[int, float, np.ndarray]:
    """(cell, stable residual, label code) minimising the residual |U - w^ (w^T U)|_F over all cells.

    Every cell is screened with |U|^2 - |w^T U|^2 (cheap, but it cancels), with a bound on its
    rounding error; only the cells that the bound cannot exclude (and cells with a zero gain) get the
    stable residual, and the smallest of those is the answer, the same cell as the stable residual of
    every cell would pick. Where every gain is nearly parallel (large eps) the bound excludes little
    and most cells get the stable computation, as before."""
    norms, unit = _unit_rows(Wc)
    m, dy = U.shape
    P = unit @ U
    u2 = float(np.sum(U * U))
    approx = u2 - np.einsum("cd,cd->c", P, P)
    # |fl(approx) - approx| <= err for a unit row (|w^|^2 = 1 up to (m + 2) u): p to (2m + 4) u |U|,
    # its square to 3 (2m + 4) u |U|^2, |U|^2 to m dy u |U|^2, the difference u |U|^2; doubled
    err = 2.0 * (6 * m + 12 + m * dy + 1) * _U * u2
    keep = (approx <= float(approx.min(initial=np.inf)) + 2 * err) | (norms == 0)
    cand = np.flatnonzero(keep)
    safe = np.where(norms[cand] > 0, norms[cand], 1.0)
    res = np.empty(cand.size)
    codes = np.empty((cand.size, dy))
    for s0 in range(0, cand.size, _CAND_CHUNK):  # (nearly parallel gains keep most cells: a chunk at a time)
        c = cand[s0:s0 + _CAND_CHUNK]
        res[s0:s0 + _CAND_CHUNK], codes[s0:s0 + _CAND_CHUNK] = _stable_rows(unit[c], safe[s0:s0 + _CAND_CHUNK], U, P[c])
    zero = norms[cand] == 0
    res[zero] = np.sqrt(u2)
    codes[zero] = 0.0
    k = int(np.argmin(res))
    return int(cand[k]), float(res[k]), codes[k]


_CAND_CHUNK = 4096  # candidate cells whose stable residual or sine is computed at once


def decode_gains(Wc: np.ndarray, blocks, loss, zbar: np.ndarray, alpha: float) -> Decoded:
    """Decode with the given cell gains (rows j * cells_star + l)."""
    U = recover(zbar, blocks) / (-alpha)  # (m, dy)
    best, res, code = best_cell(Wc, U)
    y = loss.label_from_code(code)  # MSE: the code itself; CE: + 1/C
    return Decoded(best // blocks.cells_star, best % blocks.cells_star, y, res,
                   separation_margin(Wc, best))


def decode(con, zbar: np.ndarray, alpha: float) -> Decoded:
    return decode_gains(cell_gains(con), con.blocks, con.loss, zbar, alpha)


def separation_margin(Wc: np.ndarray, index: int) -> float:
    """min over other cells of sin(angle(w(index), w(other))); 0 when two cells share a direction.

    The sine is the norm of the rejection of each other unit vector from this one (stable). Every
    cell is screened with 1 - (w^ . w^_index)^2 (cheap; it cancels for near-parallel gains) and a
    bound on its rounding; the stable sine is computed for the cells the bound cannot exclude and for
    the zero gains (sine 0), :data:`_SINE_CHUNK` rows at a time (every row's sine is computed alone,
    so the chunk does not change a bit; the paper layout's gains tie, and at J = L = 64 every one of
    4,096 cells is a candidate).

    The margin depends on the gain matrix and the cell only, not on the sample: it is cached per cell
    for the matrix :func:`_unit_rows` holds (the claims decode every sample against the same gains)."""
    norms, unit = _unit_rows(Wc)
    memo = _UNIT_CACHE[3]
    index = int(index)
    if index not in memo:
        memo[index] = _separation_margin(Wc, norms, unit, index)
    return memo[index]


_SINE_CHUNK = 64  # candidate rows whose stable sine is computed at once (cache-sized temporaries)
# at or above this many candidate entries the sines run compiled (engine/kernels.py: rejection_min); below
# it NumPy is as fast, and a small run (the dense default example) never loads Numba
KERNEL_MIN_ENTRIES = 1 << 16


def _separation_margin(Wc: np.ndarray, norms: np.ndarray, unit, index: int) -> float:
    if norms[index] == 0:
        return 0.0
    if Wc.shape[0] < 2:
        return 1.0
    m = Wc.shape[1]
    p = unit @ unit[index]
    approx = 1.0 - p * p
    approx[index] = np.inf
    approx[norms == 0] = -np.inf  # a zero gain: sine 0 (kept as a candidate)
    err = 2.0 * (3 * (2 * m + 4) + 2) * _U
    cand = np.flatnonzero(approx <= float(approx.min()) + 2 * err)
    cand = cand[cand != index]
    if (cand.size * m >= KERNEL_MIN_ENTRIES and isinstance(unit, np.ndarray) and unit.dtype == np.float64
            and unit.flags.c_contiguous):
        from .engine import kernels

        if kernels.enabled():  # engine/kernels.py: rejection_min, the same sines in one pass
            return float(kernels.kernel("rejection_min")(unit, cand.astype(np.int64), index))
    ui = unit[index]
    best = np.inf
    for s0 in range(0, cand.size, _SINE_CHUNK):
        others = unit[cand[s0:s0 + _SINE_CHUNK]]
        q = others @ ui
        rej = others - q[:, None] * ui[None, :]
        best = min(best, float(np.min(np.linalg.norm(rej, axis=1))))
    return best
