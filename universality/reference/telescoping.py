"""A_i, B_i, prod wcheck_i and the kernels k_i recovered from given weights (paper App. A.3).

The paper defines, from the blocks of W_i = blockdiag(Wtilde_i, Wbar_i, wcheck_i),

    A_i := (Wbar_1 ... Wbar_{i-1}) (Wbar_1 ... Wbar_{i-1})^T   (output side, A_1 = I),
    B_i := Wtilde_{i+1} ... Wtilde_N                           (input side,  B_N = I),

and the kernel k_i(x, x*) = phi~(x)^T B_i^T B_i phi~(x*; theta_b'). Everything here is computed from
the weight array alone (the builder's chosen A_i and B_i are never read), so it serves the claims of a
construction built here and ``verify-construction --check`` for one built elsewhere.

The middle products stay diagonal vectors while every Wbar_i is diagonal (the construction's case) and
switch to dense matrices at the first off-diagonal entry, so a corrupted weight is still multiplied in.
The top products B_i are dense arrays up to width :data:`DENSE_TOP_MAX` and SciPy CSR matrices above
(a wide top block: the compact layout at large J, L); every stored entry of every block is multiplied
in either way, nothing is assumed about which are nonzero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


DENSE_TOP_MAX = 512  # top products up to this width as dense arrays, sparse (CSR) above


def _issparse(M) -> bool:
    return hasattr(M, "tocsr")


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


def _csr(M):
    """A block as a SciPy CSR matrix (the wide top block's products)."""
    if hasattr(M, "tocsr"):
        return M.tocsr()
    import scipy.sparse as sp

    return sp.csr_matrix(np.asarray(M, dtype=float))


@dataclass
class Telescoped:
    A: list  # A[i-1]: diag vector (1-D) or dense matrix (2-D) of A_i, i = 1..N
    A_abs: list  # the same products on |Wbar| (rounding magnitude), same shapes
    B: list  # B[i-1]: (dt, dt) product Wtilde_{i+1} ... Wtilde_N (dense, or CSR above DENSE_TOP_MAX)
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
    def B_sparse(self) -> bool:
        return bool(self.B) and _issparse(self.B[0])

    def kernels(self, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(k_i = (B_i p) . (B_i q) for i = 1..N, the same on |B_i| with |p|, |q|)."""
        if not self.B_sparse:
            B, Ba = self.B_stack, self.B_abs_stack
            return (np.einsum("ni,ni->n", B @ p, B @ q),
                    np.einsum("ni,ni->n", Ba @ np.abs(p), Ba @ np.abs(q)))
        if getattr(self, "_B_csc", None) is None:  # column access: B p = sum over p's nonzeros of p_j B e_j
            self._B_csc = [B.tocsc() for B in self.B]
            self._B_abs_csc = [Ba.tocsc() for Ba in self.B_abs]

        def apply(Bc, v):
            nz = np.flatnonzero(v)
            return Bc[:, nz] @ v[nz]

        pa, qa = np.abs(p), np.abs(q)
        k = np.array([float(apply(B, p) @ apply(B, q)) for B in self._B_csc])
        ka = np.array([float(apply(Ba, pa) @ apply(Ba, qa)) for Ba in self._B_abs_csc])
        return k, ka

    @property
    def B_stack(self) -> np.ndarray:
        """(N, dt, dt): every B_i at once (built on first use; dense products only)."""
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
    wide = b.dt > DENSE_TOP_MAX
    xs, ss = b.top_x, b.top_star
    if wide:
        import scipy.sparse as sp

        P = sp.identity(b.dt, format="csr")
        Pa = P.copy()
        for i in range(N, 0, -1):
            B[i - 1], B_abs[i - 1] = P, Pa
            Wt = _csr(block(i - 1, top, top))
            P, Pa = (Wt @ P).tocsr(), (abs(Wt) @ Pa).tocsr()
        # k_i(a, b) = (B_i e_a) . (B_i e_{x* slot b}): sparse products, one (cells_x, cells_star) array each
        K = np.stack([np.asarray((Bi[:, xs].T @ Bi[:, ss]).toarray()) for Bi in B])
        K_abs = np.stack([np.asarray((Ba[:, xs].T @ Ba[:, ss]).toarray()) for Ba in B_abs])
    else:
        P = np.eye(b.dt)
        Pa = np.eye(b.dt)
        for i in range(N, 0, -1):
            B[i - 1], B_abs[i - 1] = P, Pa
            Wt = _dense(block(i - 1, top, top))
            P, Pa = Wt @ P, np.abs(Wt) @ Pa
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
