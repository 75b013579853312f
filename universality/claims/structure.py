"""Telescoping products of the real weight blocks, on sparse matrices, with structure certificates.

The construction-level claims (``boundary``, ``psd-argument``) multiply blocks of the executed
weights layer by layer. The sparse backend hands its blocks over as SciPy CSR matrices, so the
products cost what their nonzeros cost, whatever the layout; the dense backend as arrays. The same
code runs on both engines (every helper here takes either). Nothing assumes which entries are nonzero: a corrupted entry is
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

from ..engine.layers import issparse


def _sp():
    import scipy.sparse as sp

    return sp

def sp_identity(n: int):
    return _sp().identity(n, format="csr")


DENSE_EIG_MAX = 1024  # dense eigen/singular values up to this size, ARPACK above


def max_abs_sparse(M) -> float:
    if not issparse(M):  # (a CSR product minus a dense array is an np.matrix: read as an array)
        return float(np.abs(np.asarray(M)).max(initial=0.0))
    M = M.tocsr()
    return float(np.abs(M.data).max(initial=0.0))


def min_entry_sparse(M) -> float:
    """The smallest entry, counting the implicit zeros."""
    if not issparse(M):
        return float(np.min(M)) if M.size else 0.0
    M = M.tocsr()
    m = float(M.data.min(initial=math.inf))
    if M.nnz < M.shape[0] * M.shape[1]:
        m = min(m, 0.0)
    return m if math.isfinite(m) else 0.0


def is_diagonal(M) -> bool:
    if not issparse(M):
        return not np.any(M - np.diag(np.diag(M)))
    M = M.tocsr()
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    return bool(np.all((rows == M.indices) | (M.data == 0)))


def gershgorin_lower(S) -> float:
    """min_i (s_ii - sum_{j != i} |s_ij|): a lower bound on the smallest eigenvalue of symmetric S."""
    if not issparse(S):
        diag = np.diag(S)
        off = np.abs(S).sum(axis=1) - np.abs(diag)
        return float(np.min(diag - off)) if diag.size else math.inf
    S = S.tocsr()
    diag = S.diagonal()
    off = np.asarray(abs(S).sum(axis=1)).reshape(-1) - np.abs(diag)
    return float(np.min(diag - off)) if diag.size else math.inf


def min_eig_sym(S, tol: float) -> tuple[float, str]:
    """The smallest eigenvalue of symmetric S (or a certified lower bound above ``tol``) and how it
    was obtained."""
    if is_diagonal(S):
        return float(np.min(S.diagonal()) if S.shape[0] else math.inf), "diagonal"
    g = gershgorin_lower(S)
    if g > tol:
        return g, "Gershgorin bound"
    n = S.shape[0]
    if n <= DENSE_EIG_MAX:
        return float(np.linalg.eigvalsh(S.toarray() if issparse(S) else S).min()), "eigvalsh"
    from scipy.sparse.linalg import eigsh

    try:
        lam = eigsh(_sp().csr_matrix(S), k=1, which="SA", return_eigenvectors=False, tol=1e-10)
        return float(lam[0]), "ARPACK"
    except Exception:  # noqa: BLE001 - no convergence: fall back to the bound, said so
        return g, "Gershgorin bound (ARPACK did not converge)"


def min_eig_sym_part(P, tol: float) -> tuple[float, str, bool | None]:
    """(value, how, psd) for the symmetric part S = (P + P^T) / 2 of square P, psd True / False /
    None (undecided). Up to DENSE_EIG_MAX (or dense P): :func:`min_eig_sym` on S, decided by its value.
    Above, S is never formed: a diagonal P gives its smallest diagonal entry; Gershgorin's bound with
    the off-diagonal sums of S bounded by (row sum + column sum of |P|) / 2 certifies PSD when it is
    above -tol; otherwise a power iteration on sigma I - S (sigma Gershgorin's upper bound; S applied
    as (P x + P^T x) / 2, never formed) looks for a witness x whose Rayleigh quotient x^T S x / x^T x,
    an upper bound on the smallest eigenvalue, lies below -tol by more than its rounding (certified
    not PSD); else undecided, with the last quotient reported."""
    n = P.shape[0]
    if not issparse(P) or n <= DENSE_EIG_MAX:
        S = (P + P.T) / 2
        lam, how = min_eig_sym(S, tol)
        return lam, how, bool(lam >= -tol)
    P = P.tocsr()
    d = P.diagonal()
    if is_diagonal(P):
        lam = float(d.min(initial=math.inf))
        return lam, "diagonal", bool(lam >= -tol)
    A = abs(P)
    rows = np.asarray(A.sum(axis=1)).reshape(-1) - np.abs(d)
    cols = np.asarray(A.sum(axis=0)).reshape(-1) - np.abs(d)
    g = float(np.min(d - (rows + cols) / 2))
    if g >= -tol:
        return g, "Gershgorin bound", True
    PT = P.T.tocsr()
    k = int(np.diff(P.indptr).max(initial=0))
    sigma = float(np.max(d + (rows + cols) / 2))  # Gershgorin: every eigenvalue of S is <= sigma
    x = np.random.default_rng(0).standard_normal(n)
    rq = math.inf
    for _ in range(POWER_STEPS):  # power iteration on sigma I - S: towards the smallest eigenvalue
        xx = float(x @ x)
        Sx = (P @ x + PT @ x) / 2
        rq = float(x @ Sx) / xx
        # rounding of x^T S x: (k + n + 2) u |x|^T |S| |x|, |S| <= (|P| + |P|^T) / 2 entrywise
        ax = np.abs(x)
        err = (k + n + 2) * (np.finfo(float).eps / 2) * float(ax @ (A @ ax)) / xx
        if rq < -(tol + err):
            return rq, "Rayleigh quotient of a witness vector (certified < 0)", False
        x = sigma * x - Sx
        x /= np.linalg.norm(x)
    return rq, f"undecided (Gershgorin bound {g:.3g}; no witness in {POWER_STEPS} power steps)", None


POWER_STEPS = 40  # power-iteration steps when looking for a witness of a negative eigenvalue


def invertibility(P, tol: float) -> tuple[float, str, bool]:
    """(a nonzero-ness measure, how, decided) for square P: the smallest |diagonal entry| of a
    structurally lower-triangular P (exact certificate), else the smallest singular value."""
    if not issparse(P):
        if not np.any(np.triu(P, 1)):
            return float(np.abs(np.diag(P)).min(initial=math.inf)), "lower triangular: det = product of the diagonal", True
        return float(np.linalg.svd(P, compute_uv=False).min()), "singular values", True
    sp = _sp()
    P = P.tocsr()
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
    """Yield (i, M_i, |M|_i, d_i) for i = 1..N with M_i = Wbar_1 ... Wbar_{i-1} (middle blocks).

    While every block so far is (structurally) diagonal, d_i is the diagonal of M_i (multiplied entry
    by entry: the same floating-point operations as the product of diagonal matrices) and M_i, |M|_i
    are None; from the first off-diagonal entry on, d_i is None and the products are general sparse.
    """
    diag = np.ones(blocks.dm)
    M = Ma = None
    for i in range(1, layers.N + 1):
        yield (i, None, None, diag) if M is None else (i, M, Ma, None)
        if i == layers.N:
            break
        blk = layers.block(i - 1, blocks.mid, blocks.mid)
        if M is None and is_diagonal(blk):
            diag = diag * blk.diagonal()
            continue
        if M is None:
            M = _sp().diags(diag, format="csr") if issparse(blk) else np.diag(diag)
            Ma = abs(M)
        M = _tidy(M @ blk)
        Ma = _tidy(Ma @ abs(blk))


DENSE_TOP_MAX = 512  # top products up to this width are multiplied as dense arrays


def top_products(layers, blocks):
    """Yield (i, P_i, |P|_i) for i = N..1 with P_i = Wtilde_{i+1} ... Wtilde_N (top blocks; P_N = I):
    dense arrays up to width :data:`DENSE_TOP_MAX`, sparse matrices above."""
    dt = blocks.dt
    dense = dt <= DENSE_TOP_MAX
    P = np.eye(dt) if dense else _sp().identity(dt, format="csr")
    Pa = P.copy()
    for i in range(layers.N, 0, -1):
        yield i, P, Pa
        blk = top_block(layers, blocks, i - 1)
        P = blk @ P if dense else (blk @ P).tocsr()
        Pa = abs(blk) @ Pa if dense else (abs(blk) @ Pa).tocsr()


def top_block(layers, blocks, k):
    blk = layers.block(k, blocks.top, blocks.top)
    if blocks.dt <= DENSE_TOP_MAX:
        return blk.toarray() if issparse(blk) else np.array(blk)
    return blk.tocsr() if issparse(blk) else _sp().csr_matrix(blk)


def _tidy(M):
    """A product back in CSR form (sparse) or as it is (dense)."""
    return M.tocsr() if issparse(M) else M


def chosen_B(con, i: int):
    """The chosen B_i = [[I, 0], [G_i^T, I]] (the paper's definition): dense up to width
    :data:`DENSE_TOP_MAX`, sparse above."""
    b = con.blocks
    G = np.asarray(con.G[i - 1], dtype=float)
    if b.dt <= DENSE_TOP_MAX:
        out = np.eye(b.dt)
        out[b.top_star, b.top_x] = G.T
        return out
    sp = _sp()
    rows, cols = np.nonzero(G.T)
    off = sp.csr_matrix((G.T[rows, cols], (rows + b.cells_x, cols)), shape=(b.dt, b.dt))
    return (sp.identity(b.dt, format="csr") + off).tocsr()
