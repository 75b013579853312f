"""The claim catalogue of the one-shot construction (spec section 3), one function per claim.

Each function takes the shared :class:`Context`, one sample and the :class:`StepResult` of the real
step on it (or only the context, for construction-level claims), computes the left side from the
executed network and the right side from the paper's formula, and returns a :class:`Check`.

The right sides come from :mod:`.sides` (that is, :mod:`universality.reference`), never from the
builder's chosen objects; docs/claims.md gives the two sources of every claim and the bugs each can
catch. References: [1] Finn & Levine, "Meta-Learning and Universality", ICLR 2018 (arXiv 1710.11622);
[2] the project's spec (spec/construction.md, with its errata of 2026-12-01).
"""
from __future__ import annotations

import math

import numpy as np

from ..engine.batch import unit_max
from ..engine import kernels
from ..engine.checkpoint import is_lazy, reduce_columns, segments  # noqa: F401
from ..engine.layers import lowrank_max_abs, relu_grad, relu_grad_mul
from ..engine.step import row_abs_max
from ..tolerance import guard
from . import sides
from .base import (Check, Verdict, claim, column_of, decide_nonzero, max_abs, worst)
from .executed import error_at_z  # noqa: F401  (re-exported: tests and older callers import it here)
from .probes import probe_block, probe_note, shared_columns


def _abs_forward_max(ctx, layers, phi: np.ndarray, rows=slice(None)) -> float:
    """max |W_1|...|W_N||phi| over ``rows`` and over every layer: the rounding magnitude."""
    colmax = ctx.abs_extremes(layers, phi, rows=False)[0][rows]
    return float(np.max(colmax)) if colmax.size else 0.0


def _abs_forward_vec(ctx, layers, phi: np.ndarray, rows=slice(None)) -> np.ndarray:
    """Per unit of ``rows``: max over layers of |W_1|...|W_N||phi| (componentwise rounding magnitude)."""
    return ctx.abs_extremes(layers, phi, rows=False)[0][rows]


def _minus_alpha_v(ctx, s) -> np.ndarray:
    """-alpha v(x, x*, y) from the spec (reference codes, A_i, e_bar, exact bins; Lemma 4.1)."""
    return -ctx.design.alpha * sides.v_spec(ctx, s.x, s.x_star, s.y)[0]


def _signed(ctx) -> bool:
    return ctx.design.variant == "signed"


@claim("grad-rank-one",
       method="real reverse-mode backprop through the ReLU stack vs the paper's product formula "
              "(times r^i: every middle/bottom unit sits at the ReLU kink), with the error at z from "
              "the loss's formula differentiated by forward-mode AD (reference/lossdiff.py) through W_g "
              "(not the executed error); every entry of "
              "every full D x D gradient compared, from the factors, with a tolerance per layer")
def grad_rank_one(ctx, s, st) -> Check:
    """Every backprop gradient is the outer product r^i a_i b_{i-1}^T of [1, Sec. 4, "gradient of
    each factor"]: a_i = (prod_{j<i} W_j)^T e, b_{i-1} = (prod_{j>i} W_j) phi(x).

    One function on every backend (``ctx.backend``). Executed: the real backprop gradients, kept as
    their factors (``st.W_post``). Claimed: the product formula from the given weights and
    e = W_g^T grad l(y, W_g z) from the derivative of the loss's formula (float: forward-mode AD,
    reference/lossdiff.py; exact: the SymPy derivative of its value), not ``st.e``. The backend
    compares the factors layer by layer (float: one forward-error tolerance per layer; exact: every
    entry by the canonical zero test)."""
    be = ctx.backend
    layers, N, r = ctx.layers, ctx.N, st.r
    grp = getattr(st, "group", None)
    diffs = None
    if not be.exact and grp is not None and grp.layers is layers:  # the group's sweeps, one product per layer
        g = st.group_index
        compiled = (kernels.usable(layers) and column_of(st.W_post.Dfac, grp.dfac, g)
                    and column_of(st.W_post.Hfac, grp.hfac, g))
        if compiled and isinstance(grp.dfac, np.ndarray) and isinstance(grp.hfac, np.ndarray):
            # stored: the chain b and the comparison of every entry of every layer in one compiled
            # traversal, the group's samples together (the executed factors are this step's own: its
            # column of the group's)
            avec, amax, diffs = grp.cached(("grad-rank-one compared", id(ctx)), lambda G_: _grad_compared_group(ctx, G_))
            avec, amax, bvec, diffs = avec[:, :, g], amax[:, g], None, diffs[:, g]
        else:
            sides_ = grp.cached(("grad-rank-one", id(ctx)), lambda g: _grad_sides_group(ctx, g))
            if compiled:  # checkpointed: the comparison a segment at a time, the group's samples together
                diffs = grp.cached(("grad-rank-one diffs", id(ctx)),
                                   lambda G_: _outer_diffs_group(G_.dfac, G_.hfac, sides_[0], sides_[2], N))[:, g]
            avec, amax, bvec = sides_
            avec, amax, bvec = avec[:, :, g], amax[:, g], bvec[:, :, g]
    else:  # a lone step: vector sweeps (on the exact backend, in its ring; no magnitudes there)
        bvec = be.zeros((N, ctx.D))
        bvec[N - 1] = st.phi_x
        for k in range(N - 2, -1, -1):
            bvec[k] = layers.apply(k + 1, bvec[k + 1])
        e_ref = be.error(ctx, st.fwd_x.z, s.y)
        a = e_ref.copy()
        aabs = None if be.exact else np.abs(e_ref)
        avec = be.zeros((N, ctx.D))
        amax = None if be.exact else np.empty(N)
        for k in range(N):
            avec[k] = a * (r ** (k + 1))
            a = layers.apply_T(k, a)
            if aabs is not None:
                amax[k] = (r ** (k + 1)) * float(aabs.max(initial=0.0))
                aabs = layers.abs_apply_T(k, aabs)
    Dfac, Hfac = st.W_post.Dfac[:, :, 0], st.W_post.Hfac[:, :, 0]

    def tols():  # per layer: |W_{k+2}| ... |W_N| |phi| (the shared absolute-value pass, shifted by one)
        babs_max = np.append(ctx.abs_extremes(layers, st.phi_x)[1][1:], np.abs(st.phi_x).max(initial=0.0))
        return np.asarray(ctx.tol(amax * babs_max), dtype=float)

    if diffs is None:
        chk = be.outer_equal(ctx, Dfac, Hfac, avec, bvec, tols, what="grad W_i - r^i a_i b_{i-1}^T")
    else:
        chk = be.outer_equal(ctx, Dfac, Hfac, avec, bvec, tols, what="grad W_i - r^i a_i b_{i-1}^T", diffs=diffs)
    return be.guard(chk, lambda: st.grad_max_abs(), "max |grad W_i|")


# ---- grad-rank-one's mechanics (engine helper's part): how the executed factors and the formula's
# ---- sweeps are computed and reduced; stored whole, or checkpointed a segment at a time

def _grad_sides(ctx, PHI: np.ndarray, E: np.ndarray, r: float, seg: int | None = None):
    """grad-rank-one's product formula for a block of samples (columns of PHI and E, (D, G)):
    avec[k] = r^(k+1) (W_1 ... W_k)^T e, amax[k] = r^(k+1) max |W_1|^T ... |W_k|^T |e| (its rounding
    magnitude), bvec[k] = W_{k+2} ... W_N phi; (N, D, G), (N, G), (N, D, G).

    ``seg`` < N (the group's passes are checkpointed): avec and bvec are checkpointed sweeps of their
    own (:class:`~universality.engine.checkpoint.Sweep`, the formula's recurrences below), recomputed
    a segment at a time as the comparison reads them."""
    layers, N = ctx.layers, ctx.N
    D, G = PHI.shape
    a, aabs = np.array(E, dtype=float), np.abs(E)
    amax = np.empty((N, G))
    if kernels.usable(layers):
        return _grad_sides_kernels(ctx, PHI, a, aabs, r, seg, amax)
    if seg is not None and seg < N:
        from ..engine.checkpoint import Sweep

        def bstep(k, B, out):  # bvec[k] = B (what enters layer k + 1 of the linear network)
            if out is not None:
                out[0][...] = B
            return layers.apply(k, B) if k > 0 else B

        def astep(k, A, out):  # avec[k] = r^(k+1) a_k, a_{k+1} = W_k^T a_k
            if out is not None:
                np.multiply(A, r ** (k + 1), out=out[0])
            return layers.apply_T(k, A)

        bsw = Sweep(N, seg, bstep, ("b",), ((D, G),), upward=True)
        bsw.run(np.array(PHI, dtype=float))
        asw = Sweep(N, seg, astep, ("a",), ((D, G),), upward=False)
        asw.run(a)
        for k in range(N):
            amax[k] = (r ** (k + 1)) * unit_max(aabs)
            aabs = layers.abs_apply_T(k, aabs)
        return asw.stack("a"), amax, bsw.stack("b")
    bvec, avec = _grad_buffers(ctx, N, D, G)
    bvec[N - 1] = PHI
    sparse = layers.kind == "sparse"
    for k in range(N - 2, -1, -1):
        if sparse:  # accumulated in place from zero: the same sums as apply, without a copy
            bvec[k].fill(0.0)
            layers.apply_add(k + 1, bvec[k + 1], bvec[k])
        else:
            bvec[k] = layers.apply(k + 1, bvec[k + 1])
    for k in range(N):
        rk = r ** (k + 1)
        np.multiply(a, rk, out=avec[k])
        amax[k] = rk * unit_max(aabs)
        a, aabs = layers.apply_T(k, a), layers.abs_apply_T(k, aabs)
    return avec, amax, bvec


def _grad_buffers(ctx, N: int, D: int, G: int):
    """grad-rank-one's two N x D x G sweeps reuse one pair of buffers per run (nothing of them outlives
    the claim's verdict), so a large network does not map fresh pages for every sample (flat, so a
    smaller last group reuses the first group's pages): (bvec, avec)."""
    bufs = ctx.cache.get("grad-rank-one buffers")
    if bufs is None or bufs[0].size < N * D * G:
        bufs = (np.empty(N * D * G), np.empty(N * D * G))
        ctx.cache["grad-rank-one buffers"] = bufs
    return tuple(b[:N * D * G].reshape(N, D, G) for b in bufs)


def _grad_sides_kernels(ctx, PHI, a, aabs, r: float, seg, amax):
    """:func:`_grad_sides` through the compiled kernels (engine/kernels.py: chain_segment,
    adjoint_segment, adjoint_pair: a and |a| in one traversal when stored): the same recurrences, the same products in the same order (the same values),
    each sweep one compiled call (stored) or one per segment (checkpointed)."""
    from ..engine.checkpoint import Sweep

    layers, N = ctx.layers, ctx.N
    D, G = PHI.shape
    f = kernels.flat_of(layers)
    chain, adjoint = kernels.kernel("chain_segment"), kernels.kernel("adjoint_segment")
    rpow = np.array([r ** (k + 1) for k in range(N)], dtype=np.float64)  # the generic code's r ** (k + 1)
    PHI = np.ascontiguousarray(PHI, dtype=np.float64)
    a = np.ascontiguousarray(a, dtype=np.float64)
    aabs = np.ascontiguousarray(aabs, dtype=np.float64)
    if seg is not None and seg < N:
        adjoint(*f.args, 0, N, aabs, rpow, _DUMMY3, False, True, amax, True)  # amax: the |W|^T chain

        def bseg(k0, k1, B, out):
            return chain(*f.args, k1 - 1, k0, np.ascontiguousarray(B, dtype=np.float64),
                         _DUMMY3 if out is None else out[0], out is not None)

        def aseg(k0, k1, A, out):
            return adjoint(*f.args, k0, k1, np.ascontiguousarray(A, dtype=np.float64), rpow,
                           _DUMMY3 if out is None else out[0], out is not None, False, _DUMMY2, False)

        bsw = Sweep(N, seg, None, ("b",), ((D, G),), upward=True, segment=bseg)
        bsw.run(PHI)
        asw = Sweep(N, seg, None, ("a",), ((D, G),), upward=False, segment=aseg)
        asw.run(a)
        return asw.stack("a"), amax, bsw.stack("b")
    bvec, avec = _grad_buffers(ctx, N, D, G)
    chain(*f.args, N - 1, 0, PHI, bvec, True)
    kernels.kernel("adjoint_pair")(*f.args, a, aabs, rpow, avec, amax)  # a and |a| in one traversal
    return avec, amax, bvec


_DUMMY3 = np.zeros((1, 1, 1))
_DUMMY2 = np.zeros((1, 1))


def _each_segment(stacks, N: int, descending: bool, fn) -> None:
    """``fn(k0, k1, [each stack's layers k0..k1-1 as C-contiguous float64 arrays])`` per segment, in
    descending (the forward direction) or ascending order: once, the whole stacks, when none is a
    checkpointed :class:`~universality.engine.checkpoint.LazyStack`; else per segment of the group,
    each recomputed at most once (the stacks share one segmentation). No view of a segment is held
    while the next one is fetched (a held view keeps a sweep's buffer set busy, and the sweep would
    allocate another)."""
    lazy = [s for s in stacks if is_lazy(s)]
    if not lazy:
        fn(0, N, [np.ascontiguousarray(s, dtype=np.float64) for s in stacks])
        return
    sw = lazy[0].sweep
    if any(s.sweep.seg != sw.seg or s.sweep.N != sw.N for s in lazy):  # pragma: no cover - defensive
        raise ValueError("lazy stacks with different segmentations")
    for j in (range(sw.nseg - 1, -1, -1) if descending else range(sw.nseg)):
        k0, k1 = sw.bounds(j)
        parts = []
        for s in stacks:
            if is_lazy(s):
                o = s.sweep.offsets[s.n]
                a = s.sweep.fetch(j)[s.n][o:o + k1 - k0]
                a = a if s.cols is None else a[..., s.cols]
            else:
                a = s[k0:k1]
            parts.append(np.ascontiguousarray(a, dtype=np.float64))
            del a
        fn(k0, k1, parts)
        del parts


def _outer_diffs_group(P, Q, A, B, N: int) -> np.ndarray:
    """For every layer and every sample of a group (N, G): max_ij |P_i Q_j - A_i B_j| of that sample's
    column, every entry (engine/kernels.py: outer_diff_group, what
    engine.layers.outer_diff_max_abs_all computes for one sample)."""
    run = kernels.kernel("outer_diff_group")
    G = P.shape[2]
    out = np.empty((N, G))
    _each_segment((P, Q, A, B), N, False, lambda k0, k1, parts: run(*parts, 16, out[k0:k1]))
    return out


def _grad_compared_group(ctx, grp):
    """grad-rank-one for a stored step group through the kernels: (avec, amax, the per-layer maxima of
    |executed gradient - formula| (N, G)), the formula's chain b never stored (engine/kernels.py:
    adjoint_pair for a and |a|, then chain_compare: b and the comparison in one traversal; the same
    values as :func:`_grad_sides` and :func:`_outer_diffs_group`)."""
    steps = grp.steps
    PHI = np.ascontiguousarray(np.column_stack([st.phi_x for st in steps]), dtype=np.float64)
    E = np.ascontiguousarray(np.column_stack([sides.error(ctx, st.fwd_x.z, st.y) for st in steps]), dtype=np.float64)
    layers, N = ctx.layers, ctx.N
    D, G = PHI.shape
    f = kernels.flat_of(layers)
    r = steps[0].r
    rpow = np.array([r ** (k + 1) for k in range(N)], dtype=np.float64)  # the generic code's r ** (k + 1)
    amax = np.empty((N, G))
    _, avec = _grad_buffers(ctx, N, D, G)
    kernels.kernel("adjoint_pair")(*f.args, E.copy(), np.abs(E), rpow, avec, amax)
    diffs = np.empty((N, G))
    kernels.kernel("chain_compare")(*f.args, PHI, np.ascontiguousarray(grp.dfac, dtype=np.float64),
                                    np.ascontiguousarray(grp.hfac, dtype=np.float64), avec, 16, diffs)
    return avec, amax, diffs


def _grad_sides_group(ctx, grp):
    steps = grp.steps
    PHI = np.column_stack([st.phi_x for st in steps])
    E = np.column_stack([sides.error(ctx, st.fwd_x.z, st.y) for st in steps])
    return _grad_sides(ctx, PHI, E, steps[0].r, getattr(grp, "seg", None))


@claim("update-blocks",
       method="difference of the real updated weights and the originals, block by block (from the "
              "gradient's factors: every entry of every full matrix); the error reaching the feature "
              "map and theta_h")
def update_blocks(ctx, s, st) -> Check:
    """[1, eq. (2)]: the step moves only the (middle, top) and (bottom, top) blocks of every W_i; the
    error reaching phi~ (theta_ft) and theta_h's gradient are 0.

    One function on every backend (``ctx.backend``). Executed: W' - W from the real step (from the
    gradient's factors), the real error into the feature map, theta_h's gradient. Claimed: 0 outside
    the allowed blocks (the block structure of eq. (2)); the backend compares (float: the largest
    entry against the step's rounding bound; exact: every entry by the canonical zero test)."""
    be, b = ctx.backend, ctx.blocks
    outside, moved, labels = be.update_outside(ctx, st)
    computed = np.concatenate([outside, st.g_phi[b.top], [st.g_theta_h]])
    if labels is not None:
        labels = labels + [f"[dl/dphi, {t}]" for t in range(b.dt)] + ["[theta_h]"]
    chk = be.equal(ctx, computed, be.zeros(len(computed)), lambda: abs(st.alpha) * st.grad_max_abs(),
                   what="change outside the allowed blocks", claimed_text="0 outside (mid, top) and (bottom, top)",
                   labels=labels)
    note = (f"{moved} entries move, all in the (mid, top) and (bottom, top) blocks"
            if be.exact and chk.verdict == Verdict.PASS else chk.note)
    return Check({"outside_allowed_blocks": be.size(outside), "error_into_feature_map": be.size(st.g_phi[b.top]),
                  "theta_h_gradient": be.record([st.g_theta_h])[0], "largest_allowed_change": moved},
                 "0 outside (mid, top) and (bottom, top)", chk.residual, chk.tolerance, chk.verdict, note)


def update_outside(ctx, st):
    """update-blocks' mechanics on the float backend: ([max |W' - W| outside the allowed blocks], the
    largest allowed change, None), from the step's factors (every entry of every full matrix)."""
    b = ctx.blocks
    coef = abs(st.W_post.coef)
    outside = moved = 0.0
    parts = st.factor_block_max(b.dt) if hasattr(st, "factor_block_max") else None
    if parts is not None:  # the step's kept per-layer block maxima (the same reductions, computed once)
        o, m = _outside_moved(*parts)
        outside, moved = coef * o + 0.0, coef * m + 0.0
    elif st.W_post.Dfac.shape[2] == 1:
        outside, moved = _update_blocks_rank_one(b, coef, st.W_post.Dfac[:, :, 0], st.W_post.Hfac[:, :, 0])
    else:
        for k in range(ctx.N):  # W'_k - W_k = coef D_k H_k^T: rows top (any column), or columns not top
            Dk, Hk = st.grad_factors(k)
            outside = max(outside, coef * lowrank_max_abs(Dk[b.top], Hk),
                          coef * lowrank_max_abs(Dk[b.dt:], Hk[b.dt:]))
            moved = max(moved, coef * lowrank_max_abs(Dk[b.dt:], Hk[b.top]))
    return np.array([outside]), moved, None


def _outside_moved(d_top, d_rest, h_top, h_rest) -> tuple[float, float]:
    """From per-layer max |d|, max |h| over the top rows and the rest: (max |d_i h_j| outside the allowed
    blocks: top rows with any column, other rows with other columns; the largest allowed change: other
    rows with top columns), before the factor coef."""
    h_all = np.maximum(h_top, h_rest)
    return (float(max(np.max(d_top * h_all, initial=0.0), np.max(d_rest * h_rest, initial=0.0))),
            float(np.max(d_rest * h_top, initial=0.0)))


def _update_blocks_rank_one(b, coef: float, Dfac, Hfac):
    """update-blocks' mechanics for a rank-one step: (max |W' - W| outside the allowed blocks, the
    largest allowed change), from max |d_i h_j| over a block = max |d| * max |h|, vectorised over the
    layers of each segment (one segment, all layers, when the factors are stored whole)."""
    amax = row_abs_max  # per layer max |M| without an |M| copy

    def step(state, k0, k1, parts):
        outside, moved = state
        Dm, Hm = parts
        o, m = _outside_moved(amax(Dm[:, b.top]), amax(Dm[:, b.dt:]), amax(Hm[:, b.top]), amax(Hm[:, b.dt:]))
        return max(outside, o), max(moved, m)

    # (checkpointed: every sample of the group in one traversal)
    outside, moved = reduce_columns(("update-blocks", b.dt), (Dfac, Hfac), lambda: (0.0, 0.0), step)
    return coef * outside, coef * moved


@claim("second-order-zero",
       method="products of the real updated weights minus the originals, telescoped as sum_i "
              "(W'_1..W'_{i-1}) (W'_i - W_i) (W_{i+1}..W_N) (exact algebra, so rounding scales with alpha), vs "
              "the first-order expansion -alpha sum_i (W_1..W_{i-1}) grad W_i (W_{i+1}..W_N) with the real "
              "gradients (kept as factors), applied to the identity (D <= 128) or to 6 Gaussian probe "
              "vectors plus the sample's own inputs (Freivalds); a tolerance per probe entry (the 6 "
              "probes' rounding bounded by one majorant column, their entrywise max |x_j|: the magnitude "
              "sweep is monotone)")
def second_order_zero(ctx, s, st) -> Check:
    """[1, eq. (1)]: prod W_i' = prod W_i - alpha sum_i (prod_{j<i} W_j) grad W_i (prod_{j>i} W_j): the
    O(alpha^2) remainder the paper drops is exactly 0 here.

    One function on every backend (``ctx.backend``). Executed: prod W' - prod W from the real updated
    layers (float: telescoped, each layer's real update W'_i - W_i, held as the step's factors, between
    the updated layers on its left and the originals on its right, so that the comparison's rounding is
    of the size of the alpha term and not of prod W: a tiny alpha is still decided; exact: the N-fold
    products in Q(sqrt p)[alpha, y]). Claimed: the first-order expansion with the real gradients and the
    original weights (Horner), on the identity or on Freivalds probes (exact: the identity). The backend
    compares (float: a tolerance per probe entry; exact: the zero polynomial, every degree in alpha)."""
    X, lhs, fo, lhs_a, fo_a = ctx.backend.second_order_sides(ctx, st)
    return _second_order_verdict(ctx, X, lhs, fo, lhs_a, fo_a, st.alpha)


def second_order_sides(ctx, st):
    """second-order-zero's mechanics on the float backend: (probe block X, prod W' X - prod W X
    telescoped, the first-order sum on X, and their magnitudes), for the step's group in one sweep or
    for a lone step by Horner's rule."""
    layers, Wp, N = ctx.layers, st.W_post, ctx.N
    Dm, Hm = Wp.Dfac, Wp.Hfac
    K = Dm.shape[2]
    grp = getattr(st, "group", None)
    if grp is not None and K == 1 and grp.layers is layers:
        # the whole group of samples in one sweep (one product per layer): the same sums per column
        return grp.cached(("second-order-zero", id(ctx)), lambda g: _expand_group(ctx, g))[st.group_index]
    X = probe_block(ctx, st)

    def expand(X, absolute=False):
        """(sum_i (W'_1..W'_{i-1}) (W'_i - W_i) (W_{i+1}..W_N) X = prod W' X - prod W X exactly, with the
        real update W'_i - W_i of the step; sum_i (W_1..W_{i-1}) G_i (W_{i+1}..W_N) X) in one sweep
        from the input side (Horner's rule, nothing stored per layer); |.| throughout when absolute."""
        ap = layers.abs_apply if absolute else layers.apply
        app = Wp.abs_apply if absolute else Wp.apply

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

        def delta(k, Y):  # the step's real update (W'_k - W_k) Y = coef D_k H_k^T Y
            if absolute:
                return abs(Wp.coef) * K * g(k, Y)
            return Wp.delta_apply(k, Y)

        R = X
        acc = g(N - 1, R)
        accp = delta(N - 1, R)
        for k in range(N - 2, -1, -1):
            R = ap(k + 1, R)
            acc = g(k, R) + ap(k, acc)
            accp = delta(k, R) + app(k, accp)
        return accp, acc

    lhs, fo = expand(X)  # lhs: prod W' X - prod W X, telescoped through the real updated layers
    lhs_a, fo_a = expand(np.abs(X), True)
    return X, lhs, fo, lhs_a, fo_a


def _expand_group(ctx, grp) -> list:
    """second-order-zero's two Horner sweeps (signed and on magnitudes) for every sample of a step
    group at once: column block g is sample g's probe block, pushed through the original layers and
    through sample g's own updated layers W_k + coef d_k^(g) h_k^(g)T (its real gradient's factors).
    Per sample: (X, prod W' X - prod W X telescoped, the first-order sum, and their magnitudes).

    Three ways this is cheaper than G separate sweeps of p columns each, none of which drops a product
    or an entry of the comparison:

    - the chain R = W_{k+1} .. W_N X of the probe columns that every sample shares (the Gaussian
      probes, claims/probes.py: the same seeded columns for every sample) is pushed once per group,
      not once per sample (the same product on the same column gives the same value);
    - h_k^T Y reads only the rows where some sample's h_k is nonzero (the others add exact zeros;
      found from the factors themselves, nothing assumed about the blocks), and the outer products
      d_k t^T are written in place (one sample: broadcasting; a group: one BLAS product with a
      block-diagonal right factor, the same products plus exact zeros);
    - the magnitude sweep (it only bounds the rounding, every matrix in it is non-negative, so it is
      monotone in its input) pushes, for the shared probes, one column: their entrywise maximum
      max_j |x_j| (a majorant: each probe's magnitude entries are at most that column's, entry by
      entry and layer by layer). The sample's own inputs keep their own magnitude columns. The
      tolerance stays one per probe entry, from a per-layer forward-error bound; only the shared
      probes' bound is the majorant's (at most max_j |x_j| / |x_i| times larger per entry).

    On float64 sparse layers (engine/kernels.py: so_sweep, unless UNIVERSALITY_KERNELS=0) both sweeps
    run compiled, in one traversal of the layers, a checkpoint segment per call: per layer the same
    rank-one terms written first (a row of d_k t per sample, the block-diagonal product's NaN where
    another sample's d_k entry is not finite) and the same product W_k B accumulated onto them; only
    h_k^T Y's few terms may be summed in another order than the BLAS / einsum calls below
    (tests/test_kernels_claims.py)."""
    layers, N = ctx.layers, ctx.N
    steps = grp.steps
    G = len(steps)
    Xs = [probe_block(ctx, st) for st in steps]
    p = Xs[0].shape[1]
    dfac, hfac = grp.dfac, grp.hfac  # (N, D, G): sample g's gradient of layer k is dfac[k, :, g] hfac[k, :, g]^T
    D = dfac.shape[1]
    q = shared_columns(ctx)  # the first q probe columns are the same for every sample
    if q and any(not np.array_equal(X[:, :q], Xs[0][:, :q]) for X in Xs[1:]):  # pragma: no cover - defensive
        q = 0
    hz = grp.updates  # .rows(k): the units where some sample's h_k is nonzero (kept per group)
    compiled = kernels.usable(layers)  # the sweep as one compiled call per segment (the same products)

    eye = np.arange(G)

    def start(S, P):
        """The state entering layer N - 1: [R | acc | accp] = [S | P | 0], and (q', p')."""
        q_, p_ = S.shape[1], P.shape[2]
        nR = q_ + G * p_
        B = np.zeros((D, nR + 2 * G * (q_ + p_)))
        B[:, :q_] = S
        B[:, q_:nR] = P.reshape(D, G * p_)
        return B, q_, p_

    def sweep(S, P, absolute, coef):
        """S (D, q'): columns shared by every sample; P (D, G, p'): each sample's own. Returns (accp,
        acc), (D, G, q' + p') each: per sample its shared then its own columns.

        The state entering layer k is one block B = [R_k | acc_{k+1} | accp_{k+1}] (R_k = W_{k+1}
        .. W_N X; acc, accp (D, G, w) per sample), so that W_k is applied to all three in one product
        per layer (R_{k-1} = W_k R_k is the next state's chain): acc_k = d_k h_k^T R_k + W_k acc_{k+1},
        accp_k = coef d_k h_k^T (R_k + accp_{k+1}) + W_k accp_{k+1}. The rank-one terms are written
        first and the layer's product is accumulated onto them."""
        B, q_, p_ = start(S, P)
        w = q_ + p_
        nR = q_ + G * p_  # the chain's columns: the shared ones once, each sample's own
        width = nR + 2 * G * w
        T2 = np.empty((2, G, w))  # (h_k^T R_k, coef h_k^T (R_k + accp_{k+1})) per sample
        M = np.zeros((G, 2, G, w))  # G > 1: blockdiag of T2's rows, so that d_k T2 is one BLAS product
        for k in range(N - 1, -1, -1):
            Dk, Hk = dfac[k], hfac[k]
            if absolute:
                Dk = np.abs(Dk)
            rows = hz.rows(k)  # h_k^T Y reads the rows where some sample's h_k is nonzero
            if rows.size:
                Hr, Br = Hk[rows], B[rows]  # (r, G), (r, width)
                if absolute:
                    Hr = np.abs(Hr)
                tR = T2[0]
                tR[:, :q_] = Hr.T @ Br[:, :q_]
                tR[:, q_:] = np.einsum("rg,rgj->gj", Hr, Br[:, q_:nR].reshape(-1, G, p_))
                tA = np.einsum("rg,rgj->gj", Hr, Br[:, nR + G * w:].reshape(-1, G, w))
                np.multiply(tR + tA, coef, out=T2[1])
            else:
                T2.fill(0.0)
            out = np.empty((D, width))
            out[:, :nR] = 0.0
            if G == 1:  # d_k t: one product per entry, written in place
                np.multiply(Dk, T2.reshape(1, 2 * w), out=out[:, nR:])
            else:  # one product per entry (plus exact zeros), about 5x faster than broadcasting
                M[eye, :, eye, :] = T2.transpose(1, 0, 2)
                np.matmul(Dk, M.reshape(G, 2 * G * w), out=out[:, nR:])
            layers.apply_add(k, B, out, absolute)  # out += W_k B
            B = out
        acc = B[:, nR:nR + G * w].reshape(D, G, w)
        accp = B[:, nR + G * w:].reshape(D, G, w)
        return accp, acc

    X = np.stack(Xs, axis=1)  # (D, G, p)
    # magnitudes: one majorant column for the shared probes, the sample's own columns as they are
    Xa = np.abs(X[:, :, q:])
    S = np.abs(Xs[0][:, :q]).max(axis=1, keepdims=True) if q else np.zeros((D, 0))
    if compiled:  # engine/kernels.py: so_sweep, both sweeps in one traversal of the layers, a segment per call
        (lhs, fo), (lhs_a, fo_a) = _so_sweep_compiled(layers, dfac, hfac, start(Xs[0][:, :q], X[:, :, q:]),
                                                      grp.coef, start(S, Xa), abs(grp.coef))
    else:
        lhs, fo = sweep(Xs[0][:, :q], X[:, :, q:], False, grp.coef)
        lhs_a, fo_a = sweep(S, Xa, True, abs(grp.coef))
    idx = np.r_[np.zeros(q, dtype=int), np.arange(1 if q else 0, (1 if q else 0) + p - q)]
    return [(Xs[g], lhs[:, g, :], fo[:, g, :], lhs_a[:, g, idx], fo_a[:, g, idx]) for g in range(G)]


def _so_sweep_compiled(layers, dfac, hfac, signed, coef: float, magnitude, coef_a: float):
    """``_expand_group``'s two sweeps (on the values and on magnitudes) through the compiled kernel
    (engine/kernels.py: so_sweep) in one traversal of the layers (each layer's matrix and factors
    read once for both; the same operations per sweep as apart), one call per segment. ``signed``,
    ``magnitude``: (the state entering layer N - 1, q, p) of each. Returns ((accp, acc), (accp, acc)),
    (D, G, w) each."""
    N, D = layers.N, layers.D
    G = dfac.shape[2]
    run = kernels.kernel("so_sweep")
    f = kernels.flat_of(layers)
    (B, q, p), (Ba, qa, pa) = signed, magnitude
    bufs = [np.ascontiguousarray(B, dtype=np.float64), np.empty(B.shape)]  # (the state, the other buffer)
    bufa = [np.ascontiguousarray(Ba, dtype=np.float64), np.empty(Ba.shape)]

    def seg(k0, k1, parts):
        run(*f.args, k1 - 1, k0, parts[0], parts[1], bufs[0], bufs[1], int(q), int(p), float(coef),
            bufa[0], bufa[1], int(qa), int(pa), float(coef_a))
        if (k1 - k0) % 2:  # the layers alternate between the two buffers
            bufs.reverse()
            bufa.reverse()

    _each_segment((dfac, hfac), N, True, seg)
    out = []
    for B, q_, p_ in ((bufs[0], q, p), (bufa[0], qa, pa)):
        w, nR = q_ + p_, q_ + G * p_
        out.append((B[:, nR + G * w:].reshape(D, G, w), B[:, nR:nR + G * w].reshape(D, G, w)))
    return out


def _second_order_verdict(ctx, X, lhs, fo, lhs_a, fo_a, alpha) -> Check:
    be = ctx.backend
    rhs = -alpha * fo
    chk = be.equal(ctx, lhs, rhs, lambda: lhs_a + abs(alpha) * fo_a, componentwise=True,
                   what="prod W' - [prod W - alpha sum first-order]", claimed_text="0 (no O(alpha^2) term)")
    if be.exact:  # the residual expression (or "= 0 (identically)") is the record; X: what the products covered
        chk.note = X if chk.verdict == Verdict.PASS else chk.note
    else:
        chk.computed = f"max |prod W' - prod W + alpha * first order| = {chk.residual:.3g} ({probe_note(ctx, X)})"
    chk.claimed = "0"
    return be.guard(chk, lambda: abs(alpha) * max_abs(fo), "max |alpha * first-order term|")


@claim("post-update-eq3",
       method="real ReLU forward pass at x* after the real step vs eq. (3) with A_i, B_i recovered from "
              "the weights (telescoping products), phi~(x*) from exact bins and the spec's switch at the "
              "real theta_b', e_bar from the loss's own derivative (paper variant); signed variant: vs "
              "max(eq. (3), 0), the ReLUs clip each +/- copy")
def post_update_eq3(ctx, s, st) -> Check:
    """[1, eq. (3)]: zbar* = -alpha sum_i A_i e_bar(y) phi~(x)^T B_i^T B_i phi~(x*; theta_b') (times
    r^i, the ReLU'(0) factor of backprop).

    One function on every backend (``ctx.backend``). Executed: the middle block of the real post-step
    forward pass at x*. Claimed: A_i and B_i by the paper's definitions from the given weights (App.
    A.3; float: reference/telescoping.py, exact: the same products in the exact ring), phi~ from exact
    rational bins and the switch at the executed theta_b', e_bar the middle block of W_g^T grad l
    (float: AD derivative; exact: the SymPy derivative of the loss's value). Eq. (3) is a statement
    about the network as built: a wrong middle gain moves both sides (z-star-is-minus-alpha-v and
    boundary catch it against the spec's A_i)."""
    be, b = ctx.backend, ctx.blocks
    e_mid = be.error(ctx, st.fwd_x.z, s.y)[b.mid]
    eq3, mag_formula = be.eq3(ctx, s.x, s.x_star, st.theta_b_post, e_mid, st.alpha, st.r)
    claimed = be.clip(eq3) if _signed(ctx) else eq3
    computed = st.z_star[b.mid]

    def mag():  # componentwise: each middle unit against its own rounding bound (diagonal middle channels)
        return _abs_forward_vec(ctx, st.W_post, st.phi_star_post, b.mid) + mag_formula

    chk = be.equal(ctx, computed, claimed, mag, what="zbar* - eq. (3)", claimed_text="eq. (3)", componentwise=True)
    return be.guard(chk, lambda: be.size(eq3), "max |eq. (3)|")


def _erratum_skip(ctx, s):
    """The spec's erratum (2026-12-01): the claim holds for labels with e_check(y) != 0."""
    be = ctx.backend
    if be.zero([be.e_check(ctx, s.y)]) == Verdict.PASS and be.zero(s.y) != Verdict.PASS:
        return Check("e_check(y) = 0", "-", 0.0, 0.0, Verdict.SKIPPED,
                     "e_check(y) = 0 with y != 0: theta_b' = 0, no switch; the claim is stated for "
                     "e_check(y) != 0 (spec erratum 2026-12-01; post-update-eq3 still checks this label)")
    return None


@claim("z-star-is-minus-alpha-v",
       method="real post-step forward pass at x* vs -alpha v, v from the spec's code table, A_i and "
              "e_bar with exact rational bins (never the builder's tables); signed variant also checks "
              "that the (+, -) pairs recover -alpha v")
def z_star_is_minus_alpha_v(ctx, s, st) -> Check:
    """[1, Lemma 4.1]: zbar* = -alpha v(x, x*, y), v = sum_{i=2}^{N-1} c_{i-2}(a, b) A_i e_bar(y);
    signed variant [2, Sec. 3]: max(-alpha v, 0) for every y with e_check(y) != 0 (erratum).

    One function on every backend (``ctx.backend``). Executed: the real post-step middle block.
    Claimed: v from the spec's definitions (float: reference/; exact: the same code table as exact
    rationals, eps as its decimal's rational, the loss's label code from the SymPy derivative)."""
    skip = _erratum_skip(ctx, s)
    if skip is not None:
        return skip
    be, b = ctx.backend, ctx.blocks
    v, vmag = be.v_claimed(ctx, s.x, s.x_star, s.y)
    alpha = st.alpha if be.exact else ctx.design.alpha
    target = -alpha * v
    computed = st.z_star[b.mid]

    def tolv():  # the float backend's componentwise magnitude (the exact one never asks)
        return _abs_forward_vec(ctx, st.W_post, st.phi_star_post, b.mid) + abs(ctx.design.alpha) * vmag

    if not _signed(ctx):
        return guard(be.equal(ctx, computed, target, tolv, what="zbar* + alpha v", claimed_text="-alpha v",
                              componentwise=True), be.size(target), "max |alpha v|")
    clipped = be.clip(target)
    direct = be.equal(ctx, computed, clipped, tolv, what="zbar* - max(-alpha v, 0)",
                      claimed_text="max(-alpha v, 0)", componentwise=True)
    z = computed.reshape(b.m, 2, b.dy)
    t = target.reshape(b.m, 2, b.dy)

    def tolp():
        tv = np.asarray(tolv()).reshape(b.m, 2, b.dy)
        return tv[:, 0] + tv[:, 1]

    pairs = be.equal(ctx, z[:, 0] - z[:, 1], t[:, 0], tolp, what="(z+ - z-) + alpha v_+", claimed_text="-alpha v",
                     componentwise=True)
    top = direct if direct.residual * max(pairs.tolerance, 1e-300) >= pairs.residual * max(direct.tolerance, 1e-300) \
        else pairs
    verdict = worst(direct.verdict, pairs.verdict)
    if be.exact:  # the residual expressions (or "= 0 (identically)") are the exact record
        shown = (direct if direct.verdict != Verdict.PASS else pairs)
        rec_computed, rec_claimed = shown.computed, shown.claimed
    else:
        rec_computed, rec_claimed = computed, clipped
    note = ("pairs z+ - z- recover -alpha v" + (" exactly" if be.exact else "") if pairs.verdict == Verdict.PASS
            else "pairs z+ - z- do not recover -alpha v")
    if direct.verdict != Verdict.PASS:
        note = f"zbar* misses max(-alpha v, 0); {note}"
    return guard(Check(rec_computed, rec_claimed, top.residual, top.tolerance, verdict, note),
                 be.size(target), "max |alpha v|")


def _kernel_check(ctx, computed, a: int, bb: int, mag) -> Check:
    """Executed kernel vector (k_1..k_N) against [0, c(a, b), 0] from the spec's code table; ``mag``:
    a callable giving the rounding magnitude (the float backend's; the exact one never calls it)."""
    N, be = ctx.N, ctx.backend
    claimed = be.kernel_claimed(ctx, a, bb)
    chk = guard(be.equal(ctx, computed, claimed, mag, what="k_i - c_{i-2}(a, b)", claimed_text="c(bin x, bin x*)"),
                max(be.size(claimed), 1.0), "max(|k|, 1)")
    if chk.verdict == Verdict.PASS and ctx.design.layout == "paper" and not ctx.external:
        ones = int(np.sum(be.close(computed, 1, chk.tolerance)))
        zeros = int(np.sum(be.close(computed, 0, chk.tolerance)))
        if ones != 1 or ones + zeros != N:
            return Check(be.record(computed), be.record(claimed), chk.residual, chk.tolerance, Verdict.FAIL,
                         "paper layout: k is not the indicator of one cell")
        chk.note = f"indicator of cell ({a}, {bb}): layer {int(np.argmax(be.close(computed, 1, chk.tolerance))) + 1}"
    return chk


@claim("kernel-code",
       method="inner products of the real top-channel activations entering each layer (at x before "
              "the step, at x* after it) vs the spec's code table at the exact rational cells")
def kernel_code(ctx, s, st) -> Check:
    """[1, App. A.1, eq. (7)]: k_i(x, x*) = phi~(x)^T B_i^T B_i phi~(x*; theta_b') = c_{i-2}(a, b),
    k_1 = k_N = 0; the indicator of one cell in the paper layout.

    One function on every backend (``ctx.backend``). Executed: inner products of the real top
    activations. Claimed: reference/codes.py's table at the cells of reference/bins.py (exact
    rationals), not the builder's table or binning."""
    skip = _erratum_skip(ctx, s)
    if skip is not None:
        return skip
    b, N = ctx.blocks, ctx.N
    computed = ctx.backend.row_dots(st.fwd_x.post[1:N + 1, b.top], st.fwd_star_post.post[1:N + 1, b.top])
    a, bb = sides.cells(ctx, s.x, s.x_star)

    def mag():
        return max(_abs_forward_max(ctx, ctx.layers, st.phi_x, b.top), 1.0) * max(
            _abs_forward_max(ctx, st.W_post, st.phi_star_post, b.top), 1.0) * b.dt

    return _kernel_check(ctx, computed, a, bb, mag)


@claim("v-decodes",
       method="least-squares decoder over all cells (gains from the spec's codes and A_i) applied to "
              "the real zbar*; compares the decoded cells (exact rational bins) and label with the "
              "truth and reports the separation margin")
def v_decodes(ctx, s, st) -> Check:
    """[1, Lemma 4.1]: v(x, x*, y) determines (bin x, bin x*, y) for y != 0.

    One function on every backend (``ctx.backend``). Executed: the real zbar*. Claimed: the truth
    (exact rational cells, the label); the cell gains w(j, l) come from the spec's codes and A_i
    (float: reference/; exact: the same as exact rationals), not from the builder. The backend decodes
    (float: least squares over every cell, separation against the rounding of zbar*; exact: the cell
    whose gains explain U identically, every other cell's residual decided nonzero on the orthant) and
    compares the decoded label with y."""
    be, b = ctx.backend, ctx.blocks
    if be.zero(s.y) == Verdict.PASS:
        return Check("y = 0", "-", 0.0, 0.0, Verdict.SKIPPED, "y = 0 carries no label (finding zero-label)")
    skip = _erratum_skip(ctx, s)
    if skip is not None:
        return skip
    a, bb = sides.cells(ctx, s.x, s.x_star)
    dec = be.decode(ctx, st, s.y, a * b.cells_star + bb)
    computed = {"cell_x": dec.cell_x, "cell_star": dec.cell_star, "y": be.record(dec.y), "margin": dec.margin}
    claimed = {"cell_x": a, "cell_star": bb, "y": be.record(s.y)}
    if (dec.cell_x, dec.cell_star) != (a, bb):
        verdict = Verdict.UNDECIDED if dec.separation == Verdict.UNDECIDED else Verdict.FAIL
        return Check(computed, claimed, math.inf, dec.ytol, verdict,
                     f"decoded cell ({dec.cell_x}, {dec.cell_star}) instead of ({a}, {bb})" +
                     (f": {dec.why}" if dec.why else ""))
    if dec.separation != Verdict.PASS:
        return Check(computed, claimed, dec.residual, dec.ytol, dec.separation, dec.why)
    lab = be.equal(ctx, dec.y, be.label_values(s.y), lambda: dec.ymag, what="decoded label - y", claimed_text="y")
    if lab.verdict != Verdict.PASS:
        return Check(computed, claimed, lab.residual, lab.tolerance, lab.verdict,
                     f"right cell, but the decoded label {be.short(dec.y)} is not y = {be.short(s.y)}")
    return Check(computed, claimed, lab.residual, lab.tolerance, Verdict.PASS,
                 f"separation margin (sin of angle to nearest cell) = {dec.margin:.3g}" +
                 ("; y recovered exactly" if be.exact else ""))


@claim("boundary",
       scope="construction",
       method="A_i, B_i recovered from the real weight blocks by the paper's telescoping products vs "
              "the spec's design (A_i = eps I + E_{i-2} divided by r^i, B_i = [[I, 0], [G_i^T, I]] from "
              "the spec's codes), with a tolerance per layer; SPD by eigenvalues (diagonal products, "
              "Gershgorin, or computed), invertibility by a triangular certificate or singular values")
def boundary(ctx) -> Check:
    """[1, App. A.3]: A_1 = I and B_N = I are forced; A_i SPD, B_i invertible; the telescoping
    products (Wbar_1...Wbar_{i-1})(...)^T and Wtilde_{i+1}...Wtilde_N equal the chosen A_i / r^i, B_i.

    One function on every backend (``ctx.backend``). Executed: the products of the weights' blocks
    (float: reference/telescoping.py, reading the engine's layer store; exact: the same products in the
    exact ring). Claimed: the spec's A_i and B_i (float: reference/design.py, reference/codes.py; exact:
    the same as exact rationals), never the builder's ``A_built`` or ``G``. The backend compares each
    product (float: a tolerance per layer from its own magnitude; exact: the canonical zero test) and
    certifies SPD / invertibility (float: eigenvalues, Gershgorin, triangular structure, singular
    values; exact: signs decided on the orthant, triangular structure, an exact determinant)."""
    from ..tolerance import GUARD_FRACTION
    from .structure import max_abs_sparse, sp_identity

    be = ctx.backend
    b, N = ctx.blocks, ctx.N
    t = be.tel(ctx)

    def size(M):
        return be.size(np.asarray(M, dtype=object).reshape(-1)) if be.exact else max_abs_sparse(M)

    # Each layer's product is compared with a tolerance from its own magnitude: with r != 1 the
    # A_i / r^i span many orders of magnitude, and one tolerance for all layers would let an error
    # in a small product hide under the largest one (a wrong PASS).
    res, tol, worst_ratio, worst_what, worst_mag = 0.0, 0.0, -1.0, "", 0.0
    loose = []  # layers whose tolerance exceeds GUARD_FRACTION of the product it guards
    tel_v = Verdict.PASS
    shown = None  # the exact backend's first nonzero residual expression

    def record(chk: Check, guarded: float, what: str) -> None:
        nonlocal res, tol, worst_ratio, worst_what, worst_mag, tel_v, shown
        r_i, t_i = chk.residual, chk.tolerance
        ratio = r_i / t_i if t_i > 0 else (math.inf if r_i > 0 else 0.0)
        if chk.verdict != Verdict.PASS:
            tel_v = worst(tel_v, chk.verdict)
            if shown is None:
                shown = chk.computed
        if ratio > worst_ratio:
            res, tol, worst_ratio, worst_what, worst_mag = r_i, t_i, ratio, what, guarded
        if not t_i <= GUARD_FRACTION * guarded:
            loose.append(what)

    min_eig = math.inf
    eig_how = set()
    spd = Verdict.PASS
    for i in range(1, N + 1):
        Ai = t.A[i - 1]
        if ctx.external:  # built elsewhere: only A_1 = I is forced; the other A_i are free (SPD)
            target = np.ones(b.dm)
            free = i != 1
        else:
            target = be.A_target(ctx, i)
            free = False
        claimed = target if Ai.ndim == 1 else be.diag(target)
        guarded = size(Ai) if free else size(target)
        if free:
            chk = Check(0.0, 0.0, 0.0, ctx.tol(max(max_abs(t.A_abs[i - 1]), max_abs(target))), Verdict.PASS)
        else:
            chk = be.equal(ctx, Ai, claimed, lambda: max(max_abs(t.A_abs[i - 1]), max_abs(target)),
                           what=f"A_{i} - spec", claimed_text="A_i")
        record(chk, guarded, f"A_{i}")
        v, lam, how = be.definite(ctx, Ai)
        eig_how.add(how)
        spd = worst(spd, v)
        min_eig = min(min_eig, lam)
    min_sv = math.inf
    inv = Verdict.PASS
    inv_how = set()
    for i in range(N, 0, -1):
        Bp = t.B[i - 1]
        if ctx.external:  # only B_N = I is forced
            Bi = (sp_identity(b.dt) if t.B_sparse else np.eye(b.dt)) if i == N else Bp
        else:
            Bi = be.B_target(ctx, i)
        chk = be.equal(ctx, Bp, Bi, lambda: max(max_abs_sparse(t.B_abs[i - 1]), max_abs_sparse(Bi)),
                       what=f"B_{i} - spec", claimed_text="B_i")
        record(chk, size(Bi), f"B_{i}")
        v, sv, how = be.invertible(ctx, Bp, chk.tolerance)
        inv_how.add(how)
        min_sv = min(min_sv, sv)
        inv = worst(inv, v)
    if tel_v == Verdict.PASS and loose:
        tel_v = Verdict.UNDECIDED
    verdict = worst(tel_v, spd, inv)
    note = ""
    if verdict != Verdict.PASS:
        parts = []
        if loose:
            parts.append(f"the tolerance of {', '.join(loose[:4])}{' ...' if len(loose) > 4 else ''} exceeds "
                         f"{GUARD_FRACTION:g} x the product it guards")
        if tel_v == Verdict.FAIL:
            parts.append(f"telescoping product {worst_what} off the spec's design by {res:.3g} "
                         f"(tolerance {tol:.3g})" + (f": {shown}" if be.exact else ""))
        if spd != Verdict.PASS:
            why = (f"{'not positive' if spd == Verdict.FAIL else 'undecided'}, exact signs" if be.exact else
                   f"{'negative' if spd == Verdict.FAIL else 'within rounding of 0'}, bound {ctx.tol(1.0):.3g}")
            parts.append(f"smallest relative eigenvalue of an A_i product {min_eig:.3g} ({why})")
        if inv != Verdict.PASS:
            parts.append(f"smallest singular value (or pivot) of a B_i product {min_sv:.3g} "
                         f"({'exactly 0' if inv == Verdict.FAIL else 'within rounding of 0'})")
        note = "; ".join(parts)
    elif be.exact:
        note = ("A_i = M M^T with M the weights' middle products: " + ", ".join(sorted(eig_how)) +
                "; B_i invertible: " + ", ".join(sorted(inv_how)))
    computed = ({"telescoping_residual": res, "worst": worst_what, "worst_layer_magnitude": worst_mag,
                 "relative_residual": res / worst_mag if worst_mag > 0 else res, "min_eig_A_relative": min_eig,
                 "min_singular_B": min_sv, "spd_by": sorted(eig_how), "invertible_by": sorted(inv_how)})
    return Check(computed, "residual 0, eigenvalues > 0, singular values > 0", res, tol, verdict, note)


@claim("nonneg-linear-regime",
       method="pre-activations of every layer in four real forward passes (x and x*, before and after "
               "the step)")
def nonneg_linear_regime(ctx, s, st) -> Check:
    """[1, App. D] (the linear regime behind eq. (3)): every ReLU input is >= 0 (paper variant) or keeps
    one sign per unit (signed variant) in the passes at x and x*, before and after the step.

    One function on every backend (``ctx.backend``). Executed: the pre-activations of four real forward
    passes, per unit the largest positive and the largest negative one over the layers (float: values,
    within the passes' rounding bound; exact: each sign decided on the orthant). Claimed: the sign
    condition."""
    be = ctx.backend
    passes = {"x, before": lambda: st.fwd_x, "x*, before": lambda: st.fwd_star_pre,
              "x, after": lambda: st.fwd_x_post, "x*, after": lambda: st.fwd_star_post}
    tol = be.tol(ctx, lambda: max(_abs_forward_max(ctx, ctx.layers, st.phi_x),
                                  _abs_forward_max(ctx, st.W_post, st.phi_star_post),
                                  _abs_forward_max(ctx, st.W_post, st.phi_x_post)))
    res, where = 0.0, ""
    extremes = getattr(st, "pre_extremes", {})
    for name in passes:
        # per unit, over the layers: the largest positive and the largest negative pre-activation
        if name in extremes:  # reduced while the step's group ran the pass
            top, bottom = extremes[name]
        else:
            got = None if be.exact else _group_unit_extremes(st, name, passes[name]().pre)
            top, bottom = got if got is not None else be.unit_extremes(passes[name]().pre)
        hi = np.maximum(top, 0.0)
        lo = np.maximum(-bottom, 0.0)
        bad = np.minimum(hi, lo) if _signed(ctx) else lo
        if bad.size and float(bad.max()) > res:
            res = float(bad.max())
            where = f"{name}, unit {ctx.con.blocks.names()[int(np.argmax(bad))]}"
    claimed = "sign-consistent per coordinate" if _signed(ctx) else "all >= 0"
    return Check(f"worst violation {res:.3g}" + (f" at {where}" if where else ""), claimed, res, tol,
                 Verdict.PASS if res <= tol else Verdict.FAIL, where)


def _group_unit_extremes(st, name: str, pre):
    """Per unit, over the layers, the largest and the smallest pre-activation of the pass ``pre`` (N, D)
    when it is the step's column of its group's stored pass (x before the step, or x* after it):
    reduced for every sample of the group at once over the contiguous (N, D x G) array (the same
    maxima and minima as the sample's own reduction), else None."""
    grp = getattr(st, "group", None)
    if grp is None or not isinstance(pre, np.ndarray) or pre.ndim != 2:
        return None
    whole = None
    if name == "x, before":
        whole = grp.pre_x
    elif name == "x*, after" and len(grp.sweeps) > 2 and grp.sweeps[2].stored:
        whole = grp.sweeps[2].array("pre")
    g = st.group_index
    if whole is None or not column_of(pre[:, :, None], whole, g) or not whole.flags.c_contiguous:
        return None

    def make(G_):
        N, D, G = whole.shape
        flat = whole.reshape(N, D * G)
        if kernels.usable(grp.layers) and flat.dtype == np.float64:  # engine/kernels.py: column_extremes, one pass
            hi, lo = np.empty(D * G), np.empty(D * G)
            kernels.kernel("column_extremes")(flat, hi, lo)
            return hi.reshape(D, G), lo.reshape(D, G)
        return (flat.max(axis=0, initial=-np.inf).reshape(D, G), flat.min(axis=0, initial=np.inf).reshape(D, G))

    hi, lo = grp.cached(("unit extremes", name), make)
    return hi[:, g], lo[:, g]


@claim("psd-argument",
       scope="construction",
       method="products of the real top blocks Wtilde_j ... Wtilde_N for j = 1..N (the telescoping "
              "products B_{j-1}; dense, or sparse for a wide top block): smallest entry (the working "
              "condition, and the activations for every one-hot input) and smallest eigenvalue of the "
              "symmetric part (the paper's premise, reported only: dense eigenvalues up to 1024 wide; above, "
              "a Gershgorin certificate for PSD or the Rayleigh quotient of an ARPACK eigenvector "
              "certifying not PSD, else undecided)")
def psd_argument(ctx) -> Check:
    """[1, App. D]: the paper argues "products PSD => activations >= 0"; what works is entrywise
    non-negativity of Wtilde_j ... Wtilde_N = B_{j-1} (the PSD count is reported, not relied on).

    One function on every backend (``ctx.backend``). Executed: the products of the real top blocks
    (float: dense or CSR; exact: in the exact ring). Claimed: smallest entry >= 0 (float: within the
    product's rounding bound; exact: every entry's sign decided). PSD-ness of the symmetric part is
    reported (float: eigenvalues or certificates; exact: SymPy's tri-state is_positive_semidefinite)."""
    from .structure import max_abs_sparse

    be = ctx.backend
    N = ctx.N
    min_entry, min_sym, psd_count, undecided, hows, min_how = math.inf, math.inf, 0, 0, set(), ""
    tol = 0.0
    t = be.tel(ctx)  # B_i = Wtilde_{i+1} ... Wtilde_N from the weights
    for j in range(N, 0, -1):
        prod, prod_abs = be.top_product(ctx, t, j)  # Wtilde_j ... Wtilde_N
        min_entry = min(min_entry, be.min_entry(ctx, prod))
        t_j = be.tol(ctx, lambda: max_abs_sparse(prod_abs))
        tol = max(tol, t_j)
        lam, how, psd = be.psd(ctx, prod, t_j)
        hows.add(how)
        if lam < min_sym or not min_how:
            min_sym, min_how = lam, how
        psd_count += psd is True
        undecided += psd is None
    res = max(0.0, -min_entry)
    premise = f"PSD premise holds for {psd_count}/{N} products" + (
        f" ({undecided} undecided: no certificate either way)" if undecided else "")
    bound = ("at most " if "witness" in min_how else "") + f"{min_sym:.3g}"
    note = (f"{premise} (min eigenvalue of the symmetric part {bound}); the activations are "
            f"non-negative because every product is entrywise >= 0, not because of PSD-ness")
    if res > tol:
        note = f"a top product has a negative entry ({min_entry:.3g}); {premise}"
    return Check({"min_entry": min_entry, "min_eig_sym_part": min_sym, "psd_products": psd_count,
                  "psd_undecided": undecided, "products": N, "psd_by": sorted(hows)}, "min_entry >= 0", res,
                 tol, Verdict.PASS if res <= tol else Verdict.FAIL, note)


@claim("e-linear",
       method="the error at z executed through g_pre and the loss for y, a second label, their "
              "combination, 0 and the unit labels; theta_b' from the real step")
def e_linear(ctx, s, st) -> Check:
    """[1, Sec. 6, Thm 6.1] and [1, eq. (2)]: e_bar(y), e_check(y) are linear (not affine) and injective
    in y, and theta_b' != 0 (the switch flips).

    One function on every backend (``ctx.backend``). Executed: the error at z through the real head and
    the loss's executed gradient (float: ``loss.grad``; exact: the engine's exact loss gradient) for the
    sample's label, a second label, their combination, 0 and the unit labels; theta_b' of the real
    step. Claimed: linearity, injectivity (float: smallest singular value; exact: exact rank), a
    nonzero theta_b'. On the exact backend the sample's label stays symbolic where the loss's gradient
    is polynomial in it (MSE: linearity along the line through y for every y of the orthant) and is
    its exact rational otherwise (a sign or clip of a combination of labels is not fixed on the orthant)."""
    be = ctx.backend
    if ctx.con.loss.domain == "simplex":  # CE: linear on the simplex only (claims/loss_claims.py)
        if be.exact:
            return Check("-", "-", 0.0, 0.0, Verdict.SKIPPED,
                         "CE is linear on the simplex only: the simplex check (vertices, mixtures, sum-zero "
                         "directions) is the float run's; loss-recovers-label proves CE's gradient map exactly")
        from .loss_claims import simplex_e_linear

        return simplex_e_linear(ctx, s, st)
    con, b = ctx.con, ctx.blocks
    z = st.fwd_x.z
    y1 = be.label(ctx, s.y)
    y2 = be.asarray(np.linspace(-1.5, 2.0, b.dy) + 0.25)
    ca, cb = be.scalar(0.75), be.scalar(-1.25)

    def E(y):
        e = be.executed_error(ctx, z, y)
        return np.concatenate([e[b.mid], [e[b.bottom]]])

    lin = be.size(E(ca * y1 + cb * y2) - ca * E(y1) - cb * E(y2))
    aff = be.size(E(be.zeros(b.dy)))
    eye = [be.zeros(b.dy) for _ in range(b.dy)]
    for d in range(b.dy):
        eye[d][d] = be.scalar(1.0)
    basis = np.column_stack([E(eye[d]) for d in range(b.dy)])[:-1]  # middle rows only
    smin = be.min_singular(ctx, basis)

    def mag():
        Wa = np.abs(con.Wg)
        return max(max_abs(Wa.T @ (Wa @ np.abs(z) + np.abs(0.75 * y1) + np.abs(-1.25 * y2))), max_abs(y1), 1.0)

    tol = be.tol(ctx, mag)

    def tb_mag():
        grp = getattr(st, "group", None)
        if grp is not None and grp.layers is ctx.layers:
            g_bottom = grp.cached("e-linear", lambda g: _abs_backward(ctx, g.errors, g.pre_x, st.r)[b.bottom])
            g_bottom = float(g_bottom[st.group_index])
        else:  # a lone step: the vector sweep
            g_abs = np.abs(st.e)
            for k in range(ctx.N):
                g_abs = ctx.layers.abs_apply_T(k, g_abs * np.abs(relu_grad(st.fwd_x.pre[k], st.r)))
            g_bottom = float(g_abs[b.bottom])
        return abs(st.alpha) * g_bottom

    res = max(lin, aff)
    tb_zero = be.zero([st.theta_b_post]) == Verdict.PASS
    v = worst(Verdict.PASS if res <= tol else Verdict.FAIL, decide_nonzero(smin, tol),
              be.nonzero(ctx, [st.theta_b_post], tb_mag))
    note = "" if v == Verdict.PASS else (
        "theta_b' = 0: the switch does not flip" if tb_zero else
        f"linearity residual {lin:.3g}, affine offset {aff:.3g}, smallest singular value {smin:.3g}, "
        f"|theta_b'| = {be.size([st.theta_b_post]):.3g}")
    return Check({"linearity_residual": lin, "value_at_zero": aff, "min_singular_value": smin,
                  "theta_b_post": be.record([st.theta_b_post])[0]}, "linear, injective, theta_b' != 0", res, tol, v,
                 note)


def _abs_backward(ctx, E: np.ndarray, pre: np.ndarray, r: float) -> np.ndarray:
    """The absolute-value backward pass |W_N|^T (... |W_1|^T (|e| * |ReLU'(pre_1)|) ...) for a block of
    samples (E (D, G), pre (N, D, G)): |ReLU'| is exactly what backprop multiplied by (r at the
    kink); a max(r, 1) here would inflate the bound by r^-N for small r (spurious UNDECIDED)."""
    g_abs = np.abs(E)
    if kernels.usable(ctx.layers):  # engine/kernels.py: abs_backward_segment, the same operations
        run = kernels.kernel("abs_backward_segment")
        f = kernels.flat_of(ctx.layers)
        state = [np.ascontiguousarray(g_abs, dtype=np.float64)]

        def seg(k0, k1, parts):
            state[0] = run(*f.args, k0, k1, state[0], parts[0], float(abs(r)))

        _each_segment((pre,), ctx.N, False, seg)
        return state[0]
    for k in range(ctx.N):
        g_abs = ctx.layers.abs_apply_T(k, relu_grad_mul(pre[k], g_abs, abs(r)))  # = g_abs |ReLU'(pre)|
    return g_abs


@claim("multiplexer",
       method="the multiplexer's branch and output in the real forward passes before and after the step")
def multiplexer(ctx, s, st) -> Check:
    """[1, eqs. (4)-(5)]: before the step zbar = 0 selects g_pre with yhat = 0 and no error reaches the
    top channel; after it zbar* != 0 selects h_post.

    One function on every backend (``ctx.backend``). Executed: the branch and output of the real head
    before and after. Claimed: g_pre / h_post, yhat = 0 and a zero top error before (float: within
    rounding; exact: identically), zbar* != 0 after (float: beyond rounding; exact: not the zero
    polynomial)."""
    be, b = ctx.backend, ctx.blocks
    zero_before = list(st.out_x.yhat) + list(st.e[b.top])
    yhat0, etop, zstar = be.size(st.out_x.yhat), be.size(st.e[b.top]), be.size(st.z_star[b.mid])
    chk0 = be.equal(ctx, np.array(zero_before, dtype=object if be.exact else float),
                    be.zeros(len(zero_before)),
                    lambda: max_abs(np.abs(ctx.con.Wg) @ np.abs(st.fwd_x.z)), what="yhat, top error before",
                    claimed_text="0")
    before = Verdict.PASS if (st.out_x.branch == "g_pre" and chk0.verdict == Verdict.PASS) else Verdict.FAIL
    after = be.nonzero(ctx, st.z_star[b.mid], lambda: _abs_forward_max(ctx, st.W_post, st.phi_star_post, b.mid))
    if after == Verdict.PASS and st.out_star_post.branch != "h_post":
        after = Verdict.FAIL
    note = f"before: {st.out_x.branch}; after: {st.out_star_post.branch}"
    if after == Verdict.FAIL:
        note += " (zbar* = 0: the step left no trace at x*)"
    return Check({"yhat_before": yhat0, "top_error": etop, "branch_before": st.out_x.branch,
                  "max_abs_zbar_star": zstar, "branch_after": st.out_star_post.branch},
                 {"yhat_before": 0, "top_error": 0, "branch_before": "g_pre", "branch_after": "h_post"},
                 chk0.residual, chk0.tolerance, worst(before, after), note)
