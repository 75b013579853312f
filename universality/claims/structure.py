"""Telescoping products of the real weight blocks, on sparse matrices, with structure certificates.

The construction-level claims (``boundary``, ``psd-argument``) multiply blocks of the executed
weights layer by layer. Both backends hand their blocks over as SciPy sparse matrices
(:meth:`Layers.block`), so the products cost what their nonzeros cost, whatever the layout, and the
same code runs on both engines. Nothing assumes which entries are nonzero: a corrupted entry is
multiplied like any other, and the certificates below fall back to dense linear algebra (small
blocks) or ARPACK (large ones) when the structure they look for is absent.

Certificates:

* invertibility of a product: a product whose strictly upper triangle is structurally empty is lower
  triangular, exactly so in exact arithmetic too (every product of the stored entries there is
  absent), and its determinant is the product of its diagonal: nonzero diagonal => invertible;
* the smallest eigenvalue of a symmetric matrix: Gershgorin's lower bound min_i (a_ii - sum |a_ij|),
  which decides "PSD" whenever it is positive; otherwise the eigenvalue is computed.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

DENSE_EIG_MAX = 1024  # dense eigen/singular values up to this size, ARPACK above


def max_abs_sparse(M) -> float:
    M = sp.csr_matrix(M)
    return float(np.abs(M.data).max(initial=0.0))


def min_entry_sparse(M) -> float:
    """The smallest entry, counting the implicit zeros."""
    M = sp.csr_matrix(M)
    m = float(M.data.min(initial=math.inf))
    if M.nnz < M.shape[0] * M.shape[1]:
        m = min(m, 0.0)
    return m if math.isfinite(m) else 0.0


def is_diagonal(M) -> bool:
    M = sp.coo_matrix(M)
    return bool(np.all((M.row == M.col) | (M.data == 0)))


def gershgorin_lower(S) -> float:
    """min_i (s_ii - sum_{j != i} |s_ij|): a lower bound on the smallest eigenvalue of symmetric S."""
    S = sp.csr_matrix(S)
    diag = S.diagonal()
    off = np.asarray(abs(S).sum(axis=1)).reshape(-1) - np.abs(diag)
    return float(np.min(diag - off)) if diag.size else math.inf


def min_eig_sym(S, tol: float) -> tuple[float, str]:
    """The smallest eigenvalue of symmetric S (or a certified lower bound above ``tol``) and how it
    was obtained."""
    S = sp.csr_matrix(S)
    if is_diagonal(S):
        return float(S.diagonal().min(initial=math.inf)), "diagonal"
    g = gershgorin_lower(S)
    if g > tol:
        return g, "Gershgorin bound"
    n = S.shape[0]
    if n <= DENSE_EIG_MAX:
        return float(np.linalg.eigvalsh(S.toarray()).min()), "eigvalsh"
    from scipy.sparse.linalg import eigsh

    try:
        lam = eigsh(S, k=1, which="SA", return_eigenvectors=False, tol=1e-10)
        return float(lam[0]), "ARPACK"
    except Exception:  # noqa: BLE001 - no convergence: fall back to the bound, said so
        return g, "Gershgorin bound (ARPACK did not converge)"


def invertibility(P, tol: float) -> tuple[float, str, bool]:
    """(a nonzero-ness measure, how, decided) for square P: the smallest |diagonal entry| of a
    structurally lower-triangular P (exact certificate), else the smallest singular value."""
    P = sp.csr_matrix(P)
    coo = P.tocoo()
    upper = coo.col > coo.row
    if not np.any(upper & (coo.data != 0)):
        d = np.abs(P.diagonal())
        return float(d.min(initial=math.inf)), "lower triangular: det = product of the diagonal", True
    n = P.shape[0]
    if n <= DENSE_EIG_MAX:
        return float(np.linalg.svd(P.toarray(), compute_uv=False).min()), "singular values", True
    from scipy.sparse.linalg import splu

    try:
        lu = splu(sp.csc_matrix(P))
        piv = np.abs(lu.U.diagonal())
        return float(piv.min()), "sparse LU pivots", True
    except Exception:  # noqa: BLE001 - exactly singular to working precision
        return 0.0, "sparse LU failed (singular)", True


def boundary_products(layers, blocks):
    """Yield (i, M_i, |M|_i) for i = 1..N with M_i = Wbar_1 ... Wbar_{i-1} (middle blocks)."""
    dm = blocks.dm
    M = sp.identity(dm, format="csr")
    Ma = sp.identity(dm, format="csr")
    for i in range(1, layers.N + 1):
        yield i, M, Ma
        blk = sp.csr_matrix(layers.block(i - 1, blocks.mid, blocks.mid))
        M = (M @ blk).tocsr()
        Ma = (Ma @ abs(blk)).tocsr()


def top_products(layers, blocks):
    """Yield (i, P_i, |P|_i) for i = N..1 with P_i = Wtilde_{i+1} ... Wtilde_N (top blocks; P_N = I)
    when ``inclusive`` is False, as the boundary claim needs."""
    dt = blocks.dt
    P = sp.identity(dt, format="csr")
    Pa = sp.identity(dt, format="csr")
    for i in range(layers.N, 0, -1):
        yield i, P, Pa
        blk = sp.csr_matrix(layers.block(i - 1, blocks.top, blocks.top))
        P = (blk @ P).tocsr()
        Pa = (abs(blk) @ Pa).tocsr()


def chosen_B(con, i: int):
    """The chosen B_i = [[I, 0], [G_i^T, I]] as a sparse matrix (the paper's definition)."""
    b = con.blocks
    G = np.asarray(con.G[i - 1], dtype=float)
    rows, cols = np.nonzero(G.T)
    off = sp.csr_matrix((G.T[rows, cols], (rows + b.cells_x, cols)), shape=(b.dt, b.dt))
    return (sp.identity(b.dt, format="csr") + off).tocsr()
