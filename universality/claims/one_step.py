"""The claim catalogue of the one-shot construction (spec section 3), one function per claim.

Each function takes the shared :class:`Context`, one sample and the :class:`StepResult` of the real
step on it (or only the context, for construction-level claims), computes the left side from the
executed network and the right side from the paper's formula, and returns a :class:`Check`.
"""
from __future__ import annotations

import math

import numpy as np

from ..decode import decode
from ..engine.layers import lowrank_max_abs, outer_diff_max_abs_all, relu_grad
from ..tolerance import guard
from .base import (Check, Verdict, claim, compare, compare_componentwise, decide_nonzero, max_abs, worst)
from .probes import probe_block, probe_note
from .structure import boundary_products, top_products


def _abs_forward_max(ctx, layers, phi: np.ndarray, rows=slice(None)) -> float:
    """max |W_1|...|W_N||phi| over ``rows`` and over every layer: the rounding magnitude."""
    a = ctx.abs_pass(layers, phi)
    return float(np.max(a[:, rows])) if a.size else 0.0


def _abs_forward_vec(ctx, layers, phi: np.ndarray, rows=slice(None)) -> np.ndarray:
    """Per unit of ``rows``: max over layers of |W_1|...|W_N||phi| (componentwise rounding magnitude)."""
    return np.max(ctx.abs_pass(layers, phi)[:, rows], axis=0)


def _stack(ctx, name: str) -> np.ndarray:
    """The chosen A_i diagonals (N, dm) or code matrices G_i (N, cells_x, cells_star) as one array."""
    src = ctx.con.A if name == "A" else ctx.con.G
    return ctx.cached(f"stack_{name}", lambda: np.asarray(src, dtype=float))


def _kernel_formula(ctx, st) -> np.ndarray:
    """k_i = phi~(x; 0)^T B_i^T B_i phi~(x*; theta_b') from the chosen B_i = [[I, 0], [G_i^T, I]]
    (paper's kernel, eq. (7)), for every i at once."""
    b = ctx.blocks
    px, ps = st.phi_x[b.top], st.phi_star_post[b.top]
    G = _stack(ctx, "G")  # (N, cells_x, cells_star)
    bx = np.einsum("ijl,j->il", G, px[b.top_x]) + px[b.top_star]  # star part of B_i px
    bs = np.einsum("ijl,j->il", G, ps[b.top_x]) + ps[b.top_star]
    return float(px[b.top_x] @ ps[b.top_x]) + np.einsum("il,il->i", bx, bs)


def _minus_alpha_v(ctx, s) -> np.ndarray:
    """-alpha v(x, x*, y) with v = sum_{i=2}^{N-1} c_{i-2}(a, b) A_i e_bar(y) (Lemma 4.1)."""
    return -ctx.con.design.alpha * ctx.con.v(s.x, s.x_star, s.y)


def _signed(ctx) -> bool:
    return ctx.design.variant == "signed"


@claim("grad-rank-one",
       method="real reverse-mode backprop through the ReLU stack vs the paper's product formula "
              "(times r^i: every middle/bottom unit sits at the ReLU kink); every entry of every full "
              "D x D gradient compared, from the factors, with a tolerance per layer")
def grad_rank_one(ctx, s, st) -> Check:
    layers, N, r = ctx.layers, ctx.N, st.r
    bvec = np.empty((N, ctx.D))
    bvec[N - 1] = st.phi_x
    for k in range(N - 2, -1, -1):
        bvec[k] = layers.apply(k + 1, bvec[k + 1])
    # |W_{k+2}| ... |W_N| |phi|: the shared absolute-value pass, shifted by one layer
    babs = np.vstack([ctx.abs_pass(layers, st.phi_x)[1:], np.abs(st.phi_x)[None]])
    a, aabs = st.e.copy(), np.abs(st.e)
    avec = np.empty((N, ctx.D))
    amax = np.empty(N)
    for k in range(N):
        avec[k] = (r ** (k + 1)) * a
        amax[k] = (r ** (k + 1)) * float(aabs.max(initial=0.0))
        a, aabs = layers.apply_T(k, a), layers.abs_apply_T(k, aabs)
    Dfac, Hfac = st.W_post.Dfac[:, :, 0], st.W_post.Hfac[:, :, 0]
    diffs = outer_diff_max_abs_all(Dfac, Hfac, avec, bvec)
    tols = np.asarray(ctx.tol(amax * babs.max(axis=1, initial=0.0)), dtype=float)  # one per layer
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(diffs == 0, 0.0, np.where(tols > 0, diffs / np.where(tols > 0, tols, 1.0), np.inf))
    kw = int(np.argmax(ratios))
    res, tol, worst_i, worst_ratio = float(diffs[kw]), float(tols[kw]), kw + 1, float(ratios[kw])
    gmax = float(np.max(np.abs(Dfac).max(axis=1) * np.abs(Hfac).max(axis=1), initial=0.0))
    chk = Check(f"max |grad W_i - formula| = {res:.3g} (worst at i = {worst_i})", "0",
                res, tol, Verdict.PASS if worst_ratio <= 1 else Verdict.FAIL)
    return guard(chk, gmax, "max |grad W_i|")


@claim("update-blocks",
       method="difference of the real updated weights and the originals, block by block (from the "
              "gradient's factors: every entry of every full matrix); the error reaching the feature "
              "map and theta_h")
def update_blocks(ctx, s, st) -> Check:
    b = ctx.blocks
    coef = abs(st.W_post.coef)
    outside = moved = 0.0
    for k in range(ctx.N):  # W'_k - W_k = coef D_k H_k^T: rows top (any column), or columns not top
        Dk, Hk = st.grad_factors(k)
        outside = max(outside, coef * lowrank_max_abs(Dk[b.top], Hk),
                      coef * lowrank_max_abs(Dk[b.dt:], Hk[b.dt:]))
        moved = max(moved, coef * lowrank_max_abs(Dk[b.dt:], Hk[b.top]))
    feat = max_abs(st.g_phi[b.top])
    res = max(outside, feat, abs(st.g_theta_h))
    tol = ctx.tol(abs(st.alpha) * st.grad_max_abs())
    return Check({"outside_allowed_blocks": outside, "error_into_feature_map": feat,
                  "theta_h_gradient": st.g_theta_h, "largest_allowed_change": moved},
                 "0 outside (mid, top) and (bottom, top)", res, tol,
                 Verdict.PASS if res <= tol else Verdict.FAIL)


@claim("second-order-zero",
       method="products of the real updated weights vs the first-order expansion with the real "
              "gradients (kept as factors), applied to the identity (D <= 128) or to 6 Gaussian probe "
              "vectors plus the sample's own inputs (Freivalds); a tolerance per probe entry")
def second_order_zero(ctx, s, st) -> Check:
    layers, Wp, N, alpha = ctx.layers, st.W_post, ctx.N, st.alpha
    X = probe_block(ctx, st)
    Dm, Hm = Wp.Dfac, Wp.Hfac
    K = Dm.shape[2]

    def expand(X, absolute=False):
        """(W_1..W_N X, sum_i (W_1..W_{i-1}) G_i (W_{i+1}..W_N) X) in one sweep from the input side
        (Horner's rule, nothing stored per layer); |.| throughout when absolute."""
        ap = layers.abs_apply if absolute else layers.apply

        Df, Hf = (np.abs(Dm), np.abs(Hm)) if absolute else (Dm, Hm)
        if K == 1:
            Df, Hf = Df[:, :, 0], Hf[:, :, 0]
            nz = np.any(Hf != 0, axis=1) & np.any(Df != 0, axis=1)  # layers with a nonzero gradient

        def g(k, Y):
            if K == 1:
                if not nz[k]:
                    return np.zeros((Df.shape[1],) + Y.shape[1:])
                return np.multiply.outer(Df[k], Hf[k] @ Y)
            return (Df[k] @ (Hf[k].T @ Y)) / K

        R = X
        acc = g(N - 1, R)
        for k in range(N - 2, -1, -1):
            R = ap(k + 1, R)
            acc = g(k, R) + ap(k, acc)
        return ap(0, R), acc

    Xa = np.abs(X)
    lhs = Wp.chain(X)
    prod, fo = expand(X)
    rhs = prod - alpha * fo
    prod_a, fo_a = expand(Xa, True)
    mag = np.maximum(Wp.chain(Xa, absolute=True), prod_a + abs(alpha) * fo_a)
    chk = compare_componentwise(lhs, rhs, ctx.tol(1.0) * mag)
    chk.computed = f"max |prod W' - first order| = {chk.residual:.3g} ({probe_note(ctx, X)})"
    chk.claimed = "0"
    return guard(chk, abs(alpha) * max_abs(fo), "max |alpha * first-order term|")


@claim("post-update-eq3",
       method="real ReLU forward pass at x* after the real step vs eq. (3) from the chosen A_i, B_i "
              "(paper variant); signed variant: vs max(eq. (3), 0), the ReLUs clip each +/- copy")
def post_update_eq3(ctx, s, st) -> Check:
    con, b = ctx.con, ctx.blocks
    k = _kernel_formula(ctx, st)
    ebar = con.e_bar(st.y)
    A = _stack(ctx, "A")  # (N, dm)
    total = (k @ A) * ebar
    mag_formula = (np.abs(k) @ np.abs(A)) * np.abs(ebar)
    eq3 = -st.alpha * total
    claimed = np.maximum(eq3, 0.0) if _signed(ctx) else eq3
    computed = st.z_star[b.mid]
    # componentwise: each middle unit against its own rounding bound (diagonal middle channels)
    mag = _abs_forward_vec(ctx, st.W_post, st.phi_star_post, b.mid) + abs(st.alpha) * mag_formula
    chk = compare_componentwise(computed, claimed, ctx.tol(1.0) * mag)
    return guard(chk, max_abs(eq3), "max |eq. (3)|")


@claim("z-star-is-minus-alpha-v",
       method="real post-step forward pass at x* vs -alpha v from the code table; signed variant "
              "also checks that the (+, -) pairs recover -alpha v")
def z_star_is_minus_alpha_v(ctx, s, st) -> Check:
    b, con = ctx.blocks, ctx.con
    target = _minus_alpha_v(ctx, s)
    computed = st.z_star[b.mid]
    # componentwise magnitude of the formula side: every term of v has the sign of its e_bar copy
    code = np.asarray(con.code_vector(con.bin_x(s.x), con.bin_star(s.x_star)), dtype=float)
    ebar = np.abs(con.e_bar(s.y))
    fmag = abs(con.design.alpha) * (np.abs(code) @ np.abs(_stack(ctx, "A")[1:b.m + 1])) * ebar
    tolv = ctx.tol(1.0) * (_abs_forward_vec(ctx, st.W_post, st.phi_star_post, b.mid) + fmag)
    if not _signed(ctx):
        return guard(compare_componentwise(computed, target, tolv), max_abs(target), "max |alpha v|")
    direct = compare_componentwise(computed, np.maximum(target, 0.0), tolv)
    z = computed.reshape(b.m, 2, b.dy)
    t = target.reshape(b.m, 2, b.dy)
    tv = tolv.reshape(b.m, 2, b.dy)
    pairs = compare_componentwise(z[:, 0] - z[:, 1], t[:, 0], tv[:, 0] + tv[:, 1])
    top = direct if direct.residual * max(pairs.tolerance, 1e-300) >= pairs.residual * max(direct.tolerance, 1e-300) \
        else pairs
    return guard(Check(computed, np.maximum(target, 0.0), top.residual, top.tolerance,
                       worst(direct.verdict, pairs.verdict),
                       "pairs z+ - z- recover -alpha v" if pairs.verdict == Verdict.PASS else
                       "pairs z+ - z- do not recover -alpha v"), max_abs(target), "max |alpha v|")


@claim("kernel-code",
       method="inner products of the real top-channel activations entering each layer (at x before "
              "the step, at x* after it) vs the code table")
def kernel_code(ctx, s, st) -> Check:
    con, b, N = ctx.con, ctx.blocks, ctx.N
    computed = np.einsum("ij,ij->i", st.fwd_x.post[1:N + 1, b.top], st.fwd_star_post.post[1:N + 1, b.top])
    a, bb = con.bin_x(s.x), con.bin_star(s.x_star)
    claimed = np.concatenate([[0.0], con.code_vector(a, bb), [0.0]])
    mag = max(_abs_forward_max(ctx, ctx.layers, st.phi_x, b.top), 1.0) * max(
        _abs_forward_max(ctx, st.W_post, st.phi_star_post, b.top), 1.0) * b.dt
    chk = guard(compare(computed, claimed, ctx.tol(mag)), max(max_abs(claimed), 1.0), "max(|k|, 1)")
    if chk.verdict == Verdict.PASS and ctx.design.layout == "paper":
        ones = int(np.sum(np.isclose(computed, 1.0, rtol=0, atol=chk.tolerance)))
        zeros = int(np.sum(np.abs(computed) <= chk.tolerance))
        if ones != 1 or ones + zeros != N:
            return Check(computed, claimed, chk.residual, chk.tolerance, Verdict.FAIL,
                         "paper layout: k is not the indicator of one cell")
        chk.note = f"indicator of cell ({a}, {bb}): layer {int(np.argmax(computed)) + 1}"
    return chk


@claim("v-decodes",
       method="least-squares decoder over all cells applied to the real zbar*; compares the decoded "
              "cells and label with the truth and reports the separation margin")
def v_decodes(ctx, s, st) -> Check:
    con, b = ctx.con, ctx.blocks
    y = np.asarray(s.y, dtype=float)
    if not np.any(y != 0):
        return Check("y = 0", "-", 0.0, 0.0, Verdict.SKIPPED, "y = 0 carries no label (finding zero-label)")
    dec = decode(con, st.z_star[b.mid], st.alpha)
    a, bb = con.bin_x(s.x), con.bin_star(s.x_star)
    from ..decode import cell_gains

    w = cell_gains(con)[a * b.cells_star + bb]
    wn = float(np.linalg.norm(w))
    mag = _abs_forward_max(ctx, st.W_post, st.phi_star_post, b.mid)
    ztol = ctx.tol(mag) * math.sqrt(b.dm)
    ytol = (ztol / (abs(st.alpha) * wn) if wn > 0 else math.inf) + ctx.tol(max_abs(y))
    res = max_abs(dec.y - y)
    computed = {"cell_x": dec.cell_x, "cell_star": dec.cell_star, "y": dec.y.tolist(), "margin": dec.margin}
    claimed = {"cell_x": a, "cell_star": bb, "y": y.tolist()}
    signal = abs(st.alpha) * wn * float(np.linalg.norm(y)) * dec.margin
    if (dec.cell_x, dec.cell_star) != (a, bb):
        verdict = Verdict.UNDECIDED if signal <= ztol else Verdict.FAIL
        return Check(computed, claimed, math.inf, ytol, verdict,
                     f"decoded cell ({dec.cell_x}, {dec.cell_star}) instead of ({a}, {bb})")
    if signal <= ztol:
        return Check(computed, claimed, res, ytol, Verdict.UNDECIDED,
                     f"separation {signal:.3g} below rounding {ztol:.3g}")
    if res > ytol:
        return Check(computed, claimed, res, ytol, Verdict.FAIL,
                     f"right cell, but the decoded label {_short(dec.y)} is not y = {_short(y)}")
    return Check(computed, claimed, res, ytol, Verdict.PASS,
                 f"separation margin (sin of angle to nearest cell) = {dec.margin:.3g}")


def _short(v) -> str:
    v = np.asarray(v, dtype=float).reshape(-1)
    return "[" + ", ".join(f"{t:.4g}" for t in v[:4]) + (", ..." if v.size > 4 else "") + "]"


@claim("boundary",
       scope="construction",
       method="telescoping products of the real weight blocks (sparse) vs the chosen A_i (divided by "
              "r^i) and B_i, with a tolerance per layer; SPD by eigenvalues (diagonal products, "
              "Gershgorin, or computed), invertibility by a triangular certificate or singular values")
def boundary(ctx) -> Check:
    from .structure import chosen_B, invertibility, max_abs_sparse, min_eig_sym

    con, b, N = ctx.con, ctx.blocks, ctx.N
    layers = ctx.layers
    # Each layer's product is compared with a tolerance from its own magnitude: with r != 1 the
    # A_i / r^i span many orders of magnitude, and one tolerance for all layers would let an error
    # in a small product hide under the largest one (a wrong PASS).
    res, tol, worst_ratio, worst_mag = 0.0, 0.0, -1.0, 0.0
    loose = []  # layers whose tolerance exceeds GUARD_FRACTION of the product it guards

    def record(r_i: float, t_i: float, guarded: float, name: str) -> None:
        nonlocal res, tol, worst_ratio, worst_mag
        ratio = r_i / t_i if t_i > 0 else (math.inf if r_i > 0 else 0.0)
        if ratio > worst_ratio:
            res, tol, worst_ratio, worst_mag = r_i, t_i, ratio, guarded
        if not t_i <= GUARD_FRACTION * guarded:
            loose.append(name)

    from ..tolerance import GUARD_FRACTION
    from .structure import _sp

    class _LazySp:  # scipy.sparse only if a product turns out non-diagonal on the sparse engine
        def __getattr__(self, name):
            return getattr(_sp(), name)

    sp = _LazySp()

    min_eig = math.inf
    eig_how = set()
    for i, M, Ma, d in boundary_products(layers, b):
        target = np.asarray(con.A_built[i - 1], dtype=float)
        if d is not None:  # a diagonal product: A_i = M M^T is diag(d^2)
            Ai = d * d
            record(max_abs(Ai - target), ctx.tol(max(max_abs(Ai), max_abs(target))), max_abs(target), f"A_{i}")
            scale = max(max_abs(Ai), 1e-300)
            lam, how = float(np.min(Ai)) if Ai.size else math.inf, "diagonal"
        else:
            Ai = M @ M.T
            diff = (Ai.tocsr() - sp.diags(target)) if hasattr(Ai, "tocsr") else Ai - np.diag(target)
            record(max_abs_sparse(diff), ctx.tol(max(max_abs_sparse(Ma @ Ma.T), max_abs(target))),
                   max_abs(target), f"A_{i}")
            scale = max(max_abs_sparse(Ai), 1e-300)
            lam, how = min_eig_sym((Ai + Ai.T) / 2, ctx.tol(scale))
        eig_how.add(how)
        min_eig = min(min_eig, lam / scale)
    min_sv = math.inf
    inv = Verdict.PASS
    inv_how = set()
    for i, Bp, Bpa in top_products(layers, b):
        Bi = chosen_B(con, i)
        t_i = ctx.tol(max(max_abs_sparse(Bpa), max_abs_sparse(Bi)))
        record(max_abs_sparse(Bp - Bi), t_i, max_abs_sparse(Bi), f"B_{i}")
        sv, how, _ = invertibility(Bp, t_i)
        inv_how.add(how)
        min_sv = min(min_sv, sv)
        # |fl(B) - B| <= t_i entrywise moves a singular value (or a pivot) by at most dt * t_i
        inv = worst(inv, decide_nonzero(sv, b.dt * t_i))
    rel = ctx.tol(1.0)
    spd = Verdict.PASS if min_eig > rel else (Verdict.FAIL if min_eig < -rel else Verdict.UNDECIDED)
    tel = Verdict.PASS if res <= tol else Verdict.FAIL
    if tel == Verdict.PASS and loose:
        tel = Verdict.UNDECIDED
    verdict = worst(tel, spd, inv)
    note = ""
    if verdict != Verdict.PASS:
        parts = []
        if loose:
            parts.append(f"the tolerance of {', '.join(loose[:4])}{' ...' if len(loose) > 4 else ''} exceeds "
                         f"{GUARD_FRACTION:g} x the product it guards")
        if tel == Verdict.FAIL:
            parts.append(f"telescoping residual {res:.3g} above tolerance {tol:.3g}")
        if spd != Verdict.PASS:
            parts.append(f"smallest relative eigenvalue of an A_i product {min_eig:.3g} "
                         f"({'negative' if spd == Verdict.FAIL else 'within rounding of 0'}, bound {rel:.3g})")
        if inv != Verdict.PASS:
            parts.append(f"smallest singular value (or pivot) of a B_i product {min_sv:.3g} "
                         f"({'exactly 0' if inv == Verdict.FAIL else 'within rounding of 0'})")
        note = "; ".join(parts)
    return Check({"telescoping_residual": res, "worst_layer_magnitude": worst_mag,
                  "relative_residual": res / worst_mag if worst_mag > 0 else res, "min_eig_A_relative": min_eig, "min_singular_B": min_sv,
                  "spd_by": sorted(eig_how), "invertible_by": sorted(inv_how)},
                 "residual 0, eigenvalues > 0, singular values > 0", res, tol, verdict, note)


@claim("nonneg-linear-regime",
       method="pre-activations of every layer in four real forward passes (x and x*, before and after "
               "the step)")
def nonneg_linear_regime(ctx, s, st) -> Check:
    passes = {"x, before": st.fwd_x, "x*, before": st.fwd_star_pre, "x, after": st.fwd_x_post,
              "x*, after": st.fwd_star_post}
    mag = max(_abs_forward_max(ctx, ctx.layers, st.phi_x), _abs_forward_max(ctx, st.W_post, st.phi_star_post),
              _abs_forward_max(ctx, st.W_post, st.phi_x_post))
    tol = ctx.tol(mag)
    res, where = 0.0, ""
    for name, f in passes.items():
        # per unit, over the layers: the largest positive and the largest negative pre-activation
        hi = np.maximum(f.pre.max(axis=0, initial=-np.inf), 0.0)
        lo = np.maximum(-f.pre.min(axis=0, initial=np.inf), 0.0)
        bad = np.minimum(hi, lo) if _signed(ctx) else lo
        if bad.size and float(bad.max()) > res:
            res = float(bad.max())
            where = f"{name}, unit {ctx.con.blocks.names()[int(np.argmax(bad))]}"
    claimed = "sign-consistent per coordinate" if _signed(ctx) else "all >= 0"
    return Check(f"worst violation {res:.3g}" + (f" at {where}" if where else ""), claimed, res, tol,
                 Verdict.PASS if res <= tol else Verdict.FAIL, where)


@claim("psd-argument",
       scope="construction",
       method="products of the real top blocks for j = 1..N (sparse): smallest entry (the working "
              "condition, and the activations for every one-hot input) and smallest eigenvalue of the "
              "symmetric part (the paper's premise; Gershgorin certificate or computed)")
def psd_argument(ctx) -> Check:
    from .structure import max_abs_sparse, min_eig_sym, min_entry_sparse

    b, N = ctx.blocks, ctx.N
    min_entry, min_sym, psd_count = math.inf, math.inf, 0
    tol = 0.0
    from .structure import top_block

    for j, prod, prod_abs in top_products(ctx.layers, b):
        blk = top_block(ctx.layers, b, j - 1)
        prod = blk @ prod
        prod_abs = abs(blk) @ prod_abs
        min_entry = min(min_entry, min_entry_sparse(prod))
        t_j = ctx.tol(max_abs_sparse(prod_abs))
        tol = max(tol, t_j)
        lam, _ = min_eig_sym((prod + prod.T) / 2, t_j)
        min_sym = min(min_sym, lam)
        psd_count += lam >= -t_j
    res = max(0.0, -min_entry)
    note = (f"PSD premise holds for {psd_count}/{N} products (min eigenvalue of the symmetric part "
            f"{min_sym:.3g}); the activations are non-negative because every product is entrywise >= 0, "
            f"not because of PSD-ness")
    if res > tol:
        note = f"a top product has a negative entry ({min_entry:.3g}); PSD premise holds for {psd_count}/{N}"
    return Check({"min_entry": min_entry, "min_eig_sym_part": min_sym, "psd_products": psd_count,
                  "products": N}, "min_entry >= 0", res, tol, Verdict.PASS if res <= tol else Verdict.FAIL,
                 note)


def error_at_z(con, z: np.ndarray, y) -> np.ndarray:
    """dl/dz at the pre-update point, executed through g_pre and the loss."""
    yhat = con.Wg @ z
    return con.Wg.T @ np.asarray(con.loss.grad(np.asarray(y, dtype=float), yhat), dtype=float)


@claim("e-linear",
       method="the error at z executed through g_pre and the loss for y, a second label, their "
              "combination, 0 and the unit labels; theta_b' from the real step")
def e_linear(ctx, s, st) -> Check:
    if ctx.con.loss.domain == "simplex":  # CE: linear on the simplex only (claims/loss_claims.py)
        from .loss_claims import simplex_e_linear

        return simplex_e_linear(ctx, s, st)
    con, b = ctx.con, ctx.blocks
    z = st.fwd_x.z
    y1 = np.asarray(s.y, dtype=float)
    y2 = np.linspace(-1.5, 2.0, b.dy) + 0.25
    ca, cb = 0.75, -1.25

    def E(y):
        e = error_at_z(con, z, y)
        return np.concatenate([e[b.mid], [e[b.bottom]]])

    lin = max_abs(E(ca * y1 + cb * y2) - ca * E(y1) - cb * E(y2))
    aff = max_abs(E(np.zeros(b.dy)))
    basis = np.column_stack([E(np.eye(b.dy)[d]) for d in range(b.dy)])[:-1]  # middle rows only
    smin = float(np.linalg.svd(basis, compute_uv=False).min())
    mag = max_abs(np.abs(con.Wg).T @ (np.abs(con.Wg) @ np.abs(z) + np.abs(ca * y1) + np.abs(cb * y2)))
    tol = ctx.tol(max(mag, max_abs(y1), 1.0))
    tb = abs(st.theta_b_post)
    g_abs = np.abs(st.e)
    for k in range(ctx.N):
        # the absolute-value backward pass: |ReLU'| is exactly what backprop multiplied by (r at the
        # kink); a max(r, 1) here would inflate the bound by r^-N for small r (spurious UNDECIDED)
        g_abs = ctx.layers.abs_apply_T(k, g_abs * np.abs(relu_grad(st.fwd_x.pre[k], st.r)))
    tb_tol = ctx.tol(abs(st.alpha) * float(g_abs[b.bottom]))
    res = max(lin, aff)
    v = worst(Verdict.PASS if res <= tol else Verdict.FAIL, decide_nonzero(smin, tol),
              decide_nonzero(tb, tb_tol))
    note = "" if v == Verdict.PASS else (
        "theta_b' = 0: the switch does not flip" if tb == 0 else
        f"linearity residual {lin:.3g}, affine offset {aff:.3g}, smallest singular value {smin:.3g}, "
        f"|theta_b'| = {tb:.3g}")
    return Check({"linearity_residual": lin, "value_at_zero": aff, "min_singular_value": smin,
                  "theta_b_post": st.theta_b_post}, "linear, injective, theta_b' != 0", res, tol, v, note)


@claim("multiplexer",
       method="the multiplexer's branch and output in the real forward passes before and after the step")
def multiplexer(ctx, s, st) -> Check:
    b = ctx.blocks
    yhat0 = max_abs(st.out_x.yhat)
    etop = max_abs(st.e[b.top])
    zstar = max_abs(st.z_star[b.mid])
    mag = _abs_forward_max(ctx, st.W_post, st.phi_star_post, b.mid)
    tol = ctx.tol(max_abs(np.abs(ctx.con.Wg) @ np.abs(st.fwd_x.z)))
    before = Verdict.PASS if (st.out_x.branch == "g_pre" and max(yhat0, etop) <= tol) else Verdict.FAIL
    after = decide_nonzero(zstar, ctx.tol(mag))
    if after == Verdict.PASS and st.out_star_post.branch != "h_post":
        after = Verdict.FAIL
    note = f"before: {st.out_x.branch}; after: {st.out_star_post.branch}"
    if after == Verdict.FAIL:
        note += " (zbar* = 0: the step left no trace at x*)"
    return Check({"yhat_before": yhat0, "top_error": etop, "branch_before": st.out_x.branch,
                  "max_abs_zbar_star": zstar, "branch_after": st.out_star_post.branch},
                 {"yhat_before": 0, "top_error": 0, "branch_before": "g_pre", "branch_after": "h_post"},
                 max(yhat0, etop), tol, worst(before, after), note)
