"""A_i, B_i, prod wcheck_i and the kernels k_i recovered from given weights (paper App. A.3).

The paper defines, from the blocks of W_i = blockdiag(Wtilde_i, Wbar_i, wcheck_i),

    A_i := (Wbar_1 ... Wbar_{i-1}) (Wbar_1 ... Wbar_{i-1})^T   (output side, A_1 = I),
    B_i := Wtilde_{i+1} ... Wtilde_N                           (input side,  B_N = I),

and the kernel k_i(x, x*) = phi~(x)^T B_i^T B_i phi~(x*; theta_b'). Everything here is computed from
the weight array alone (the builder's chosen A_i and B_i are never read), so it serves the claims of a
construction built here and ``verify-construction --check`` for one built elsewhere.

The middle products stay diagonal vectors while every Wbar_i is diagonal (the construction's case) and
switch to dense matrices at the first off-diagonal entry, so a corrupted weight is still multiplied in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _is_diag(M: np.ndarray) -> bool:
    """Every nonzero of the square block M on its diagonal (one counting pass, no copy)."""
    return int(np.count_nonzero(M)) == int(np.count_nonzero(np.diagonal(M)))


def _diag_or_none(M):
    """The diagonal of the square block M (dense or SciPy sparse) when every nonzero entry of M is
    on it, else None. A sparse block is read from its stored entries (no densifying): an off-diagonal
    stored entry with a nonzero value anywhere makes it non-diagonal."""
    if hasattr(M, "tocoo"):
        c = M.tocoo()
        off = (c.row != c.col) & (c.data != 0)
        if np.any(off):
            return None
        d = np.zeros(min(M.shape))
        on = c.row == c.col
        np.add.at(d, c.row[on], c.data[on])
        return d
    return np.array(np.diagonal(M), dtype=float) if _is_diag(M) else None


def _dense(M) -> np.ndarray:
    return np.asarray(M.toarray() if hasattr(M, "toarray") else M, dtype=float)


@dataclass
class Telescoped:
    A: list  # A[i-1]: diag vector (1-D) or dense matrix (2-D) of A_i, i = 1..N
    A_abs: list  # the same products on |Wbar| (rounding magnitude), same shapes
    B: list  # B[i-1]: (dt, dt) product Wtilde_{i+1} ... Wtilde_N
    B_abs: list
    wcheck: np.ndarray  # (N,) the bottom entries wcheck_i
    K: np.ndarray  # (N, cells_x, cells_star): k_i(a, b) = (B_i e_a) . (B_i e_{x* slot b})
    K_abs: np.ndarray  # the same on |B_i|

    @property
    def N(self) -> int:
        return len(self.A)

    def A_dense(self, i: int) -> np.ndarray:
        a = self.A[i - 1]
        return np.diag(a) if a.ndim == 1 else a

    def A_apply(self, i: int, v: np.ndarray) -> np.ndarray:
        a = self.A[i - 1]
        return a * v if a.ndim == 1 else a @ v

    def A_abs_apply(self, i: int, v: np.ndarray) -> np.ndarray:
        a = self.A_abs[i - 1]
        return a * v if a.ndim == 1 else a @ v

    @property
    def wcheck_product(self) -> float:
        return float(np.prod(self.wcheck))

    @property
    def B_stack(self) -> np.ndarray:
        """(N, dt, dt): every B_i at once (built on first use)."""
        if getattr(self, "_B_stack", None) is None:
            self._B_stack = np.stack(self.B)
            self._B_abs_stack = np.stack(self.B_abs)
        return self._B_stack

    @property
    def B_abs_stack(self) -> np.ndarray:
        self.B_stack  # noqa: B018 - builds both stacks
        return self._B_abs_stack

    @property
    def A_diag_stack(self):
        """(N, dm) diagonals of every A_i (and of their magnitudes) when all are diagonal, else None."""
        if getattr(self, "_A_diag", None) is None:
            if all(a.ndim == 1 for a in self.A):
                self._A_diag = (np.stack(self.A), np.stack(self.A_abs))
            else:
                self._A_diag = (None, None)
        return self._A_diag


def _block_reader(W, blocks):
    """(N, block(k, rows, cols) -> dense array or SciPy sparse matrix) for an (N, D, D) array, or for a
    layer store with ``N`` and ``block(k, rows, cols)`` (sparse layers: a block stays sparse until the
    products need it dense; a diagonal middle block is never densified)."""
    if isinstance(W, np.ndarray) or not hasattr(W, "block"):
        arr = np.asarray(W, dtype=float)
        return arr.shape[0], (lambda k, rows, cols: arr[k][rows, cols])

    return int(W.N), W.block


def telescope(W, blocks) -> Telescoped:
    """Recover A_i, B_i, wcheck_i and k_i from the weights (W[k] = paper layer k+1): an (N, D, D)
    array or a layer store with ``N`` and ``block(k, rows, cols)``."""
    b = blocks
    N, block = _block_reader(W, b)
    mid, top = b.mid, b.top
    bottom = slice(b.bottom, b.bottom + 1)
    # output side: M_{i-1} = Wbar_1 ... Wbar_{i-1}; A_i = M M^T
    A, A_abs = [], []
    M = np.ones(b.dm)
    Ma = np.ones(b.dm)
    for i in range(1, N + 1):
        if M.ndim == 1:
            A.append(M * M)
            A_abs.append(Ma * Ma)
        else:
            A.append(M @ M.T)
            A_abs.append(Ma @ Ma.T)
        if i == N:
            break
        Wb = block(i - 1, mid, mid)
        d = _diag_or_none(Wb) if M.ndim == 1 else None
        if d is not None:
            M, Ma = M * d, Ma * np.abs(d)
        else:
            Wb = _dense(Wb)
            M = (np.diag(M) if M.ndim == 1 else M) @ Wb
            Ma = (np.diag(Ma) if Ma.ndim == 1 else Ma) @ np.abs(Wb)
    # input side: B_i = Wtilde_{i+1} ... Wtilde_N
    B = [None] * N
    B_abs = [None] * N
    P = np.eye(b.dt)
    Pa = np.eye(b.dt)
    for i in range(N, 0, -1):
        B[i - 1], B_abs[i - 1] = P, Pa
        Wt = _dense(block(i - 1, top, top))
        P, Pa = Wt @ P, np.abs(Wt) @ Pa
    xs, ss = b.top_x, b.top_star
    K = np.stack([Bi[:, xs].T @ Bi[:, ss] for Bi in B])
    K_abs = np.stack([Ba[:, xs].T @ Ba[:, ss] for Ba in B_abs])
    wcheck = np.array([float(_dense(block(k, bottom, bottom)).reshape(-1)[0]) for k in range(N)])
    return Telescoped(A, A_abs, B, B_abs, wcheck, K, K_abs)


def telescoped(con) -> Telescoped:
    """:func:`telescope` of a construction's weights, computed once per weight store and shared by
    every reader of the run (the claims' and the findings' contexts, the K-shot formula): cached in
    ``con.extras`` under the identity of ``con.W`` (a corrupted copy is a new store, so it is
    recomputed)."""
    W = con.W
    extras = getattr(con, "extras", None)
    if extras is None:
        return telescope(W, con.blocks)
    hit = extras.get("_telescoped")
    if hit is None or hit[0] is not W:
        hit = (W, telescope(W, con.blocks))
        extras["_telescoped"] = hit
    return hit[1]
