"""Claims that cover every cell, not only the sampled ones, and values of the step's parameters.

* ``binning``: the feature map the network is fed (the builder's phi) at and around every cell edge,
  against exact rational bins (reference/bins.py).
* ``codes-injective``: the realised v of every (cell of x, cell of x*) pair, from the kernels and A_i
  recovered from the weights, separates every pair of distinct cells for both label signs.
* ``every-cell``: one real step per (cell of x, cell of x*) pair; the kernel and zbar* against the
  spec's codes, A_i and e_bar.
* ``theta-b-value``: theta_b' = -alpha r^N (prod wcheck_i) e_check(y) (spec erratum: r^N).
* ``update-values``: W_g' (= theta_g') equals W_g - alpha grad l(y, W_g z) z^T with the loss's own
  derivative; theta_ft (the error reaching the feature map) and theta_h stay exactly unchanged.

References: [1] Finn & Levine, ICLR 2018; [2] spec/construction.md (errata 2026-12-01).
"""
from __future__ import annotations

import math

import numpy as np

from ..reference import bins as ref_bins
from ..reference import formulas
from . import sides
from .base import Check, Verdict, claim, max_abs, worst

# Above this many estimated flops the every-cell claim is SKIPPED on the dense engine (it says so).
EVERY_CELL_FLOP_BUDGET = 4e9


def _axis_points(per_axis: int, dx: int):
    """(point, exact cell) at and around every edge of every axis; the other axes sit mid-cell 0."""
    out = []
    for axis in range(dx):
        for u, k in ref_bins.edge_points(per_axis):
            pt = [0.5 / per_axis] * dx
            pt[axis] = u
            out.append((tuple(pt), ref_bins.cell(tuple(pt), per_axis)))
    return out


@claim("binning", scope="construction",
       title="The feature map bins every input into its exact cell",
       paper_ref="App. A.1; App. C of the slides",
       statement=r"\mathrm{bin}_J(u) = \lfloor J u \rfloor \text{ (per axis, exact) at and around every cell edge}",
       method="the slot the network's feature map phi(u; theta_b) sets, at every cell edge k/J, the "
              "floats just below and above it and the extremes, for theta_b = 0 (x slots) and "
              "theta_b != 0 (x* slots), vs floor(u J) in exact rational arithmetic")
def binning(ctx) -> Check:
    """[1, App. A.1] discr(x) = e_{bin x}: the feature map's cell of u is floor(J u) (spec section 2:
    uniform cells, flattened grid for dx > 1).

    One function on every backend (``ctx.backend``). Executed: the input vector the network is fed
    (``con.phi``; exact: the exact construction's, with the switch theta_b == 0 decided). Claimed:
    reference/bins.py (exact rationals), and the rest of phi = [phi~; 0; theta_b] from the spec; the
    comparison is exact on both (float: bit for bit; exact: the canonical zero test)."""
    be = ctx.backend
    d, b = ctx.design, ctx.blocks
    bad, checked, first = 0, 0, ""
    for theta_b, per_axis, start in ((0.0, d.J, b.top_x.start), (1.0, d.L, b.top_star.start)):
        tb = be.scalar(theta_b)
        for u, k in _axis_points(per_axis, d.dx):
            got = be.vector(ctx.con.phi(u, tb))
            want = be.zeros(b.D)
            want[start + k] = be.scalar(1.0)
            want[b.bottom] = tb
            checked += 1
            if got.shape != want.shape or not be.same(got, want):
                bad += 1
                if not first:
                    slots = ([t for t in range(b.top.start, b.top.stop) if be.zero([got[t]]) != Verdict.PASS]
                             if got.shape == want.shape else [])
                    first = (f"u = {u!r} (theta_b = {theta_b:g}): feature map sets top slot(s) "
                             f"{list(map(int, slots))}, exact cell gives slot {start + k}")
    verdict = Verdict.PASS if bad == 0 else Verdict.FAIL
    return Check({"points": checked, "wrong": bad}, {"wrong": 0}, float(bad), 0.0, verdict,
                 first or f"{checked} points at and around every cell edge binned exactly")


def realised_v(ctx, y) -> np.ndarray:
    """v(a, b, y) = sum_i r^i k_i(a, b) A_i e(y) for every cell pair, from the weights (telescoping
    products) and the error e at z (loss derivative through W_g at z = 0): (cells_x, cells_star, dm)."""
    t = sides.tel(ctx)
    b, r = ctx.blocks, formulas.effective_r(ctx.design.relu_grad_at_zero)
    e_mid = formulas.error_at_z(ctx.con.Wg, np.zeros(b.D), y, ctx.con.loss)[b.mid]
    V = np.zeros((b.cells_x, b.cells_star, b.dm))
    for i in range(1, ctx.N + 1):
        Ki = t.K[i - 1]
        if not np.any(Ki):
            continue
        Ae = float(r) ** i * t.A_apply(i, e_mid)
        if np.all(np.isfinite(Ae)):
            # only the cell pairs where k_i is nonzero change (k_i = 0 adds exactly 0): O(nnz(k_i) dm)
            # per layer instead of a (cells x dm) temporary per layer (the paper layout's k_i is one-hot)
            a, c = np.nonzero(Ki)
            V[a, c] += Ki[a, c][:, None] * Ae[None, :]
        else:  # a non-finite A_i e: 0 * inf must reach every cell, as the dense sum gives it
            V += Ki[:, :, None] * Ae[None, None, :]
    return V


COORDS_MAX_TERMS = 64  # realised_v_coords above this many nonzero kernels falls back to realised_v


def realised_v_coords(ctx, y) -> np.ndarray:
    """The v(a, b, y) of :func:`realised_v` in the coordinates of an orthonormal basis of the span of
    the terms u_i = r^i A_i e (i with a nonzero kernel): with [u_i] = R^T Q^T (QR of the dm x N'
    matrix of the u_i), v(a, b) = k(a, b) [u_i] = (k(a, b) R^T) Q^T, and Q^T has orthonormal rows,
    so the coordinates k(a, b) R^T keep every norm and angle of the v's: (cells_x, cells_star, N').
    Costs cells x N'^2 instead of cells x dm x N (the wide top block of the compact layout)."""
    t = sides.tel(ctx)
    b, r = ctx.blocks, formulas.effective_r(ctx.design.relu_grad_at_zero)
    e_mid = formulas.error_at_z(ctx.con.Wg, np.zeros(b.D), y, ctx.con.loss)[b.mid]
    live = [i for i in range(1, ctx.N + 1) if np.any(t.K[i - 1])]
    if not live:
        return np.zeros((b.cells_x, b.cells_star, 1))
    if len(live) > COORDS_MAX_TERMS:  # many terms (the paper layout): the plain sum, sparse in k_i
        return realised_v(ctx, y)
    Umat = np.stack([float(r) ** i * t.A_apply(i, e_mid) for i in live])  # (N', dm)
    if not np.all(np.isfinite(Umat)):  # 0 * inf must reach every cell, as the plain sum gives it
        return realised_v(ctx, y)
    _, R = np.linalg.qr(Umat.T)  # Umat^T = Q R
    Krows = np.stack([t.K[i - 1].reshape(-1) for i in live])  # (N', cells)
    return np.ascontiguousarray((R @ Krows).T).reshape(b.cells_x, b.cells_star, -1)


# Above this many cell pairs the Gram matrix (n x n floats) is replaced by nearest-neighbour queries.
SEPARATION_GRAM_MAX = 4096


def _tall_matmul(X: np.ndarray, M: np.ndarray) -> np.ndarray:
    """X @ M for a tall X (n x a) and a small M (a x b), as (M^T X^T)^T: one wide product, which
    OpenBLAS runs several times faster than the tall-skinny one."""
    return np.ascontiguousarray((M.T @ X.T).T)


def _row_space(unit: np.ndarray):
    """(Q, rho, q1): an orthonormal basis Q (dm x r) of the span of the unit rows (the eigenvectors of
    their Gram matrix with a non-negligible eigenvalue), rho = the largest norm of a row's part outside
    span(Q) (computed row by row, not assumed: distances in the coordinates unit @ Q are within 2 rho
    of the true ones), and q1 the dominant direction. Q is None (full space) when rho is not tiny."""
    lam, vec = np.linalg.eigh(unit.T @ unit)
    q1 = vec[:, -1]
    Q = vec[:, lam > lam.max(initial=0.0) * 1e-12]
    if Q.shape[1] == unit.shape[1]:
        return None, 0.0, q1
    coords = _tall_matmul(unit, Q)
    rho = float(np.linalg.norm(unit - _tall_matmul(coords, Q.T), axis=1).max(initial=0.0))
    if rho > 1e-13:
        return None, 0.0, q1
    return Q, rho, q1


# Every |u . q1| at least this (> 1/sqrt 2, with room for rounding): then for any two rows flipped to
# u . q1 > 0, u_p . u_q >= 0, so |u_p - u_q| <= |u_p + u_q| and one sign per line is enough.
_ONE_SIGN = 0.7072


def _nearest_lines(unit: np.ndarray):
    """Candidate pairs (arrays P, Q) for the smallest angle between the lines of the unit vectors: for each
    vector, its nearest neighbours among the lines' representatives (k-d tree; the chord |u_p -+ u_q|
    grows with the angle, so the closest line is among them). Representatives: +u and -u in general;
    one sign per line (flipped towards the dominant direction q1) when every row is within 45 degrees
    of the line of q1 (then the nearer representative is always the flipped one). The tree works in
    the coordinates of the rows' own span (fewer dimensions when the v's span fewer than dm, as with
    the +/- copies of the signed variant); returns the distortion bound rho of those coordinates too."""
    from scipy.spatial import cKDTree

    n = unit.shape[0]
    Qb, rho, q1 = _row_space(unit)
    pts = unit if Qb is None else _tall_matmul(unit, Qb)
    s = unit @ q1
    if np.abs(s).min(initial=1.0) >= _ONE_SIGN:
        pts = np.ascontiguousarray(pts * np.where(s < 0, -1.0, 1.0)[:, None])
        # an upper bound on the smallest chord: the closest of the neighbours in the order of the
        # first coordinate; every pair at least as close lies within it (slack for rounding)
        order = np.argsort(pts[:, 0], kind="stable")
        r = float(np.linalg.norm(pts[order[1:]] - pts[order[:-1]], axis=1).min()) * (1 + 1e-6) + 4 * rho + 1e-15
        # (query_pairs / count_neighbors within r took minutes on the moment curve's coordinates:
        # one bounded nearest-neighbour query per point stays linear)
        tree = cKDTree(pts, balanced_tree=False)
        _, idx = tree.query(pts, k=2, distance_upper_bound=r)  # itself (or a duplicate), the nearest other
        idx = np.where(idx >= n, np.arange(n)[:, None], idx)  # none within r: itself (dropped later)
    else:
        tree = cKDTree(np.vstack([pts, -pts]), balanced_tree=False)
        _, idx = tree.query(pts, k=3)  # itself, then the nearest others (its own -u is far)
    P = np.repeat(np.arange(n), idx.shape[1])
    Q = idx.reshape(-1) % n
    return P, Q, rho


def separation(V: np.ndarray, with_distortion: bool = False):
    """min over pairs of distinct cells and both label signs of the sine of the angle between their
    v's (0 for a zero v). Returns (separation, (cell p, cell q), exactly_zero), and with
    ``with_distortion`` also the bound by which the nearest-line search may have missed a closer pair
    (0 for the exhaustive Gram search)."""
    out = _separation(V)
    return out if with_distortion else out[:3]


def _separation(V: np.ndarray):
    n, dm = V.shape[0] * V.shape[1], V.shape[2]
    flat = V.reshape(n, dm)
    from ..decode import row_norms

    norms = row_norms(flat)  # (np.linalg.norm(flat, axis=1) without a cells x dm temporary)
    rho = 0.0
    if n < 2:
        return 1.0, (), False, rho
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        return 0.0, (int(zero[0]), int(zero[0])), True, rho
    if n <= SEPARATION_GRAM_MAX:
        # |cos| of every pair from the Gram matrix of the v's themselves, divided by the norms in place
        # (no unit copy of the n x dm rows: at J = L = 64 a 268 MB temporary, about 1 s to allocate and
        # fill on this machine); the candidates' unit rows are divided below, the same numbers as a
        # unit copy would hold
        if _GRAM_SAFE[0] < float(norms.min()) and float(norms.max()) < _GRAM_SAFE[1]:
            G = flat @ flat.T
            np.abs(G, out=G)
            G /= norms[:, None]
            G /= norms[None, :]
        else:  # products of the rows could overflow or underflow: the unit rows' Gram
            G = flat / norms[:, None]
            G = np.abs(G @ G.T)
        np.fill_diagonal(G, -1.0)
        # candidates: for every cell, the two cells closest to parallel to it (sign-insensitive; two
        # passes of argmax over the rows of G), then the exact test on them. The pair of the largest
        # |cos| is among them, as among the 2 n largest entries taken before (a sort of the n^2
        # entries, 1.2-1.6 s at 4,096 cells, where the paper layout's Gram has two distinct values and
        # the 2 n largest were an arbitrary choice among ties); this keeps every cell's nearest line,
        # as the k-d tree search above SEPARATION_GRAM_MAX does.
        rows = np.arange(n)
        Q1 = np.argmax(G, axis=1)
        G[rows, Q1] = -1.0
        Q2 = np.argmax(G, axis=1)
        P, Q = np.repeat(rows, 2), np.column_stack([Q1, Q2]).reshape(-1)
        del G
        unit = None
    else:
        unit = flat / norms[:, None]
        P, Q, rho = _nearest_lines(unit)

    def unit_rows(idx):
        return unit[idx] if unit is not None else flat[idx] / norms[idx][:, None]

    P, Q = np.minimum(P, Q), np.maximum(P, Q)
    keep = P != Q
    P, Q = P[keep], Q[keep]
    if P.size == 0:
        return math.inf, (), False, rho
    # exact test for identical or opposite v, then the sine of the angle, on the candidates a chunk at a
    # time (CANDIDATE_CHUNK pairs: 2 n candidate rows of dm floats each would be 4 copies of 2 n x dm)
    for s0 in range(0, P.size, CANDIDATE_CHUNK):
        p, q = P[s0:s0 + CANDIDATE_CHUNK], Q[s0:s0 + CANDIDATE_CHUNK]
        same = np.all(flat[p] == flat[q], axis=1) | np.all(flat[p] == -flat[q], axis=1)
        if np.any(same):
            k = int(np.argmax(same))
            return 0.0, (int(p[k]), int(q[k])), True, rho
    best, where = math.inf, (int(P[0]), int(Q[0]))
    for s0 in range(0, P.size, CANDIDATE_CHUNK):
        p, q = P[s0:s0 + CANDIDATE_CHUNK], Q[s0:s0 + CANDIDATE_CHUNK]
        up, uq = unit_rows(p), unit_rows(q)
        c = np.einsum("ij,ij->i", up, uq)
        rej = np.linalg.norm(up - c[:, None] * uq, axis=1)
        k = int(np.argmin(rej))
        if rej[k] < best:
            best, where = float(rej[k]), (int(p[k]), int(q[k]))
    return best, where, False, rho


CANDIDATE_CHUNK = 256  # candidate pairs tested at once by _separation
# _separation forms the Gram matrix of the v's themselves (not of their unit rows) while every norm lies
# in this range: no product of two entries overflows, and none that matters underflows
_GRAM_SAFE = (1e-100, 1e100)


# ---- codes-injective at scale (mechanics; tables helper) ---------------------------------------------
# The search holds v of every cell pair (cells x dm floats, and two normalised copies) and, above
# SEPARATION_GRAM_MAX cells with more than COORDS_MAX_TERMS terms, a dm x dm eigenproblem for the
# span of the v's; above this many bytes it is SKIPPED with the sizes (the paper layout at J = L = 128:
# 16,384 cells x 32,768 coordinates, 4.3 GB per copy and a 32,768-wide eigenproblem).
CODES_INJECTIVE_MAX_BYTES = 2 << 30


def codes_injective_bytes(cells: int, dm: int, terms: int) -> int:
    """What the separation search of :func:`codes_injective` holds at once (bytes)."""
    held = 2 * 8 * cells * dm + 4 * 8 * CANDIDATE_CHUNK * dm  # V, its unit rows, a chunk of candidates
    if cells <= SEPARATION_GRAM_MAX:
        return held + 2 * 8 * cells * cells  # the Gram matrix (counted twice: a margin)
    if terms <= COORDS_MAX_TERMS:
        return 3 * 8 * cells * terms + 8 * dm * terms  # the coordinates in the terms' basis
    return held + 2 * 8 * dm * dm  # the rows' Gram matrix and its eigenvectors


def _codes_injective_too_large(ctx):
    """A SKIPPED Check with the sizes when the separation search would exceed
    CODES_INJECTIVE_MAX_BYTES, else None."""
    from ..memory import format_bytes

    b = ctx.blocks
    cells = b.cells_x * b.cells_star
    t = sides.tel(ctx)
    terms = sum(1 for i in range(1, ctx.N + 1) if np.any(t.K[i - 1]))
    need = codes_injective_bytes(cells, b.dm, terms)
    if need <= CODES_INJECTIVE_MAX_BYTES:
        return None
    return Check("-", "-", 0.0, 0.0, Verdict.SKIPPED,
                 f"the separation search over {cells:,} cells' v (in R^{b.dm:,}, {terms:,} nonzero kernel "
                 f"terms) would hold about {format_bytes(need)}, above {format_bytes(CODES_INJECTIVE_MAX_BYTES)}; "
                 "v-decodes still decodes every sample against every cell")


def _cell_name(ctx, flat: int) -> str:
    cs = ctx.blocks.cells_star
    return f"({flat // cs}, {flat % cs})"


@claim("codes-injective", scope="construction",
       title="Distinct cells give distinguishable v",
       paper_ref="Lemma 4.1; App. A.1",
       statement=r"\min_{(a,b) \neq (a',b'),\ \pm}\ \sin\angle\left(v(a,b,y), \pm v(a',b',y)\right) > 0",
       method="v(a, b, y) = sum_i r^i k_i(a, b) A_i e(y) for every pair of cells, with k_i and A_i "
              "recovered from the weights (telescoping products) and e from the loss's derivative "
              "through W_g; the smallest sine of the angle between two cells' v, either label sign "
              "(exact test for identical or opposite v): every pair up to 4096 cells, above that each "
              "cell's nearest line (k-d tree) with v in an orthonormal basis of the span of its terms")
def codes_injective(ctx) -> Check:
    """[1, Lemma 4.1]: v determines the cell pair, so no two (cell of x, cell of x*) pairs may give
    parallel v for any label (signs included).

    One function on every backend (``ctx.backend``). Computed: v of every cell pair from the weights
    alone (float: reference/telescoping.py; exact: the same products in the exact ring). Claimed: a
    positive separation. FAIL when exactly 0 (a shared or missing code: float, identical or opposite
    v; exact, every 2 x 2 minor of [v, v'] the zero polynomial), UNDECIDED within rounding (float)."""
    be = ctx.backend
    b = ctx.blocks
    n = b.cells_x * b.cells_star
    skipped = be.codes_injective_skip(ctx)  # float: the separation search's memory above its cap
    if skipped is not None:
        return skipped
    sep, pair, exact, rho, search = be.cell_separation(ctx, sides.label_for_every_cell(ctx))
    # rounding of a sine computed from float64 unit vectors of length dm (generous: the products
    # behind V are bounded through ctx.tol), plus what the reduced coordinates of the nearest-line
    # search may distort (a closer pair missed by at most 4 rho in the sine)
    tol = be.tol(ctx, lambda: math.sqrt(b.dm)) + 4 * rho
    where = (f"cells {_cell_name(ctx, pair[0])} and {_cell_name(ctx, pair[1])}" if pair and pair[0] != pair[1]
             else (f"cell {_cell_name(ctx, pair[0])} has v = 0 (no code)" if pair else ""))
    if sep == 0.0:
        verdict, note = Verdict.FAIL, f"separation exactly 0: {where}"
    elif sep <= tol:
        verdict, note = Verdict.UNDECIDED, f"separation {sep:.3g} within rounding ({tol:.3g}): {where}"
    else:
        verdict, note = Verdict.PASS, f"min separation {sep:.3g} over {n * (n - 1) // 2} cell pairs ({where})"
    # residual: how far the separation falls short of the claim (0 when it is decided positive)
    return Check({"min_separation": sep, "cells": n, "closest": where, "search": search}, "> 0",
                 0.0 if verdict == Verdict.PASS else sep, tol, verdict, note)


def _every_cell_cost(ctx) -> float:
    """Estimated flops of the every-cell sweep on the run's engine: dense layers cost D^2 per layer
    and pass; sparse ones their nonzeros plus a per-call overhead (about 2e5 flops' worth per layer
    and step at this size of kernel call)."""
    b = ctx.blocks
    layers = ctx.layers
    if layers.kind == "sparse":
        per_step = 12.0 * (float(layers.nnz()) + ctx.N * ctx.D) + ctx.N * 2e5
    else:
        per_step = ctx.N * ctx.D * ctx.D * 12.0
    return float(b.cells_x * b.cells_star) * per_step


def _point(per_axis: int, dx: int, index: int, offset: float) -> tuple:
    return ref_bins.cell_point(index, per_axis, dx, offset)


@claim("every-cell", scope="construction",
       title="Every cell pair: kernel and zbar* after a real step",
       paper_ref="App. A.1, eq. (7); Lemma 4.1",
       statement=r"\forall (a,b):\ k_i = c_{i-2}(a,b),\ \bar z^\star = \max(-\alpha v, 0)\ (\text{signed})\ /\ -\alpha v",
       method="one real step (forward, backprop, update, post-step pass) for one point in every (cell "
              "of x, cell of x*) pair; the executed kernel and zbar* vs the spec's codes, A_i and e_bar "
              "with exact bins")
def every_cell(ctx) -> Check:
    """[1, App. A.1, eq. (7)] and [1, Lemma 4.1] on every cell pair, not only the sampled ones.

    One function on every backend (``ctx.backend``). Executed: one real step per pair (J^dx * L^dx
    steps; float: ``execution.one_step``, exact: the engine's exact step with alpha and the label as
    exact rationals). Claimed: the spec's code table, A_i, e_bar, exact bins (float: reference/; exact:
    the same as exact rationals), as in kernel-code and z-star-is-minus-alpha-v. SKIPPED, saying why,
    above the backend's budget (float: flops; exact: EXACT_EVERY_CELL_MAX cell pairs)."""
    from .one_step import _abs_forward_max, _abs_forward_vec, _kernel_check

    be = ctx.backend
    d, b = ctx.design, ctx.blocks
    skip = be.every_cell_skip(ctx)
    if skip:
        return Check("-", "-", 0.0, 0.0, Verdict.SKIPPED, skip)
    y = be.asarray(sides.label_for_every_cell(ctx))
    signed = d.variant == "signed"
    checks = []
    saved_step = ctx.step
    try:
        for a in range(b.cells_x):
            x = _point(d.J, d.dx, a, 0.7)
            for c in range(b.cells_star):
                xs = _point(d.L, d.dx, c, 0.3)
                st = be.one_step(ctx, x, y, xs)
                ctx.step = st  # the tolerances count this step's rank-one corrections
                k = be.row_dots(st.fwd_x.post[1:ctx.N + 1, b.top], st.fwd_star_post.post[1:ctx.N + 1, b.top])

                def mag(st=st):
                    return max(_abs_forward_max(ctx, ctx.layers, st.phi_x, b.top), 1.0) * max(
                        _abs_forward_max(ctx, st.W_post, st.phi_star_post, b.top), 1.0) * b.dt

                kc = _kernel_check(ctx, k, a, c, mag)
                v, vmag = be.v_claimed(ctx, x, xs, y)
                target = -(st.alpha if be.exact else d.alpha) * v

                def tolv(st=st, vmag=vmag):
                    return _abs_forward_vec(ctx, st.W_post, st.phi_star_post, b.mid) + abs(d.alpha) * vmag

                zc = be.equal(ctx, st.z_star[b.mid], be.clip(target) if signed else target, tolv,
                              what="zbar* - spec", claimed_text="-alpha v", componentwise=True)
                checks.append(((a, c), kc, zc))
    finally:
        ctx.step = saved_step
    bad = [(cell, kc, zc) for cell, kc, zc in checks if worst(kc.verdict, zc.verdict) != Verdict.PASS]
    verdict = worst(*(worst(kc.verdict, zc.verdict) for _, kc, zc in checks))
    ratio = lambda ch: (ch.residual / ch.tolerance) if ch.tolerance > 0 else (math.inf if ch.residual else 0.0)
    cell, kc, zc = max(checks, key=lambda t: max(ratio(t[1]), ratio(t[2])))
    top = kc if ratio(kc) >= ratio(zc) else zc
    note = (f"{len(checks)} cell pairs, one real step each" + (" (exact)" if be.exact else "") if not bad else
            f"{len(bad)} of {len(checks)} cell pairs fail, e.g. cell {bad[0][0]}: "
            + ("kernel " + (bad[0][1].note or f"off by {bad[0][1].residual:.3g}")
               if bad[0][1].verdict != Verdict.PASS else f"zbar* off by {bad[0][2].residual:.3g}"))
    return Check({"cell_pairs": len(checks), "failing": [c for c, _, _ in bad][:8], "worst_cell": cell},
                 "kernel = code, zbar* = spec's value, in every cell pair", top.residual, top.tolerance,
                 verdict, note)


@claim("theta-b-value",
       title="theta_b' = -alpha r^N (prod wcheck_i) e_check(y)",
       paper_ref="Sec. 4 (eq. (2) consequences); spec erratum 2026-12-01",
       statement=r"\theta_b' = -\alpha\, r^N \left(\prod_i \check w_i\right) \check e(y)",
       method="theta_b' from the real step vs -alpha r^N (product of the weights' bottom entries) times "
              "the spec's e_check(y)")
def theta_b_value(ctx, s, st) -> Check:
    """[2, Sec. 3]: theta_b' = -alpha r^N (prod_i wcheck_i) e_check(y), r = ReLU'(0) (the erratum adds
    r^N: every bottom unit sits at the kink before the step).

    One function on every backend (``ctx.backend``: float64 or exact). Executed: theta_b' of the real
    step. Claimed: prod wcheck_i read from the weights, e_check from the spec (float: the loss's closed
    form, MSE sum y; exact: u^T grad l(y, 0) from the SymPy derivative of the loss's value), so a wrong
    sign or scale of wcheck_g is caught. The backend compares: a residual within the forward-error
    tolerance, or the exact canonical zero test."""
    be, N = ctx.backend, ctx.N
    wprod, wabs = be.wcheck_product(ctx)
    e = be.e_check(ctx, s.y)
    theta_b = ctx.con.theta_b if be.exact else float(ctx.con.theta_b)
    claimed = theta_b - st.alpha * st.r ** N * wprod * e

    def mag():
        return abs(float(ctx.con.theta_b)) + abs(st.alpha) * abs(st.r) ** N * wabs * (
            abs(e) + max_abs(np.abs(ctx.con.Wg[:, ctx.blocks.bottom])) * max(max_abs(s.y), 1.0))

    chk = be.equal(ctx, st.theta_b_post, claimed, mag, what="theta_b' + alpha r^N (prod wcheck_i) e_check(y)",
                   claimed_text="-alpha r^N (prod wcheck_i) e_check(y)")
    if chk.verdict == Verdict.FAIL:
        chk.note = (f"theta_b' = {be.show(st.theta_b_post)}, the spec gives {be.show(claimed)} "
                    f"(-alpha r^N prod wcheck e_check(y), e_check = {be.show(e)})")
    elif chk.verdict == Verdict.PASS and be.exact:
        chk.note = f"theta_b' = {be.show(st.theta_b_post)}"
    return chk


@claim("update-values",
       title="W_g' follows its gradient; theta_ft and theta_h do not move",
       paper_ref="eqs. (2), (4)-(5)",
       statement=r"W_g' = W_g - \alpha\,\nabla_{\hat y}\ell\ z^T,\quad \theta_{ft}' = \theta_{ft},\quad \theta_h' = \theta_h",
       method="W_g' of the real step vs W_g - alpha grad l(y, W_g z) z^T with the derivative of "
              "the loss's formula (forward-mode AD, reference/lossdiff.py); the real error reaching the feature map (theta_ft) and theta_h's gradient "
              "vs exactly 0")
def update_values(ctx, s, st) -> Check:
    """[1, eq. (4)] g_pre(z) = W_g z with theta_g = W_g: theta_g' = W_g - alpha grad_yhat l z^T (it
    moves, but is never used after the step); [1, eq. (2)]: the error reaching phi~ is 0, so theta_ft
    does not move; theta_h sits behind the closed gate and gets gradient 0.

    One function on every backend (``ctx.backend``). Executed: W_g', the error into the feature map's
    top block, theta_h's gradient. Claimed: the gradient of the loss's formula (float: forward-mode AD,
    reference/lossdiff.py; exact: the SymPy derivative of the loss's value); exact zeros."""
    be, b = ctx.backend, ctx.blocks
    z = st.fwd_x.z
    Wg = ctx.con.Wg
    if be.gate_open(ctx, z):
        g = be.zeros(Wg.shape)
    else:
        g = np.outer(be.loss_gradient(ctx, s.y, Wg @ z), z)
    claimed = Wg - st.alpha * g
    head = be.equal(ctx, st.Wg_post, claimed,
                    lambda: np.abs(Wg) + abs(st.alpha) * np.abs(g) + np.abs(st.Wg_post),
                    what="W_g' - [W_g - alpha grad l z^T]", claimed_text="W_g - alpha grad l z^T",
                    componentwise=True)
    untouched = list(st.g_phi[b.top]) + [st.g_theta_h]
    feat = be.size(st.g_phi[b.top])
    th = be.size([st.g_theta_h])
    frozen = be.zero(untouched)
    verdict = worst(head.verdict, frozen)
    note = ""
    if head.verdict != Verdict.PASS:
        note = (f"W_g' off its gradient step by {head.residual:.3g}" if not be.exact else
                f"W_g' off its gradient step: {head.computed}")
    if verdict == Verdict.PASS and be.exact:
        note = f"{head.computed}; the error into the feature map and theta_h's gradient are identically 0"
    if frozen != Verdict.PASS:
        note = (note + "; " if note else "") + (f"theta_ft would move (error into the feature map {feat:.3g})"
                                                 if feat else f"theta_h gradient {th:.3g}")
    return Check({"W_g_residual": head.residual, "error_into_feature_map": feat, "theta_h_gradient": th},
                 {"W_g_residual": 0, "error_into_feature_map": 0, "theta_h_gradient": 0},
                 max(head.residual, feat, th), head.tolerance, verdict, note)
