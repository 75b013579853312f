"""K-shot universality (paper Sec. 5): claims on real K-shot steps, and the K-shot findings.

The K-shot step is ``theta' = theta - alpha (1/K) sum_k grad l(y_k, f(x_k; theta))``, executed by
:func:`universality.execution.k_shot_step` (real forward passes, the loss's real gradient, real
backprop, the average, one step). Claims here have scope ``"task"``: :func:`verify.check_claims`
runs them once per K-shot task and only when the run has K > 1 (with K = 1 they are not selected,
so the default output is the one-shot catalogue; see docs/losses-and-kshot.md).

Findings (always run, each on its own small task, whatever the run's K):

* ``kshot-coincident-bins``: two x_k in one cell add their labels; different label sets with the same
  sum give the same theta' (information lost).
* ``kshot-balanced-ce``: in a class-balanced softmax-CE task (C-way 1-shot) the K gradients at
  yhat = 0 sum to the zero vector, so theta_b gets exactly zero gradient and the switch never flips.
* ``kshot-mse-null-space``: MSE with sum_k y_k in the kernel of e_check: the same switch failure.
* ``kshot-mixed-signs``: labels (or CE's centred labels) of both signs in one middle coordinate are
  clipped by intermediate ReLUs, so the ReLU network leaves the linear formula.

References in the claims' docstrings: [1] Finn & Levine, "Meta-Learning and Universality", ICLR 2018;
[2] spec/construction.md.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..construction.network import build
from ..decode import recover
from ..engine.step import forward, maml_step as k_shot_step
from ..samples import cell_point
from .base import Check, Outcome, Verdict, claim, finding, max_abs, worst

# Largest number of (x* cell, set of x cells) candidates the K-shot decoder tries.
MAX_DECODE_CANDIDATES = 20000


def _abs_forward_max(layers, phi: np.ndarray, rows=slice(None)) -> float:
    """max over every layer k and ``rows`` of |W_k| ... |W_N| |phi| (no ReLU; engine/step.py
    abs_forward's values): the rounding magnitude, reduced while the pass runs instead of holding the
    N x D pass (4.3 GB at J = L = 128: the K-shot findings' peak there)."""
    from ..engine.step import layers_of

    layers = layers_of(layers)
    h = layers.abs(layers.asarray(phi))
    out = 0.0
    for k in range(layers.N - 1, -1, -1):
        h = layers.abs_apply(k, h)
        part = h[rows]
        if part.size:
            out = max(out, float(np.max(part)))
    return out


def kshot_formula(con, xs, ys, x_star, theta_b_post: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """-(alpha/K) sum_i sum_k r^i A_i e_bar(y_k) k_i(x_k, x*) (paper Sec. 5), from reference/: A_i, B_i
    recovered from the weights by the telescoping products, k_i(x_k, x*) = phi~(x_k)^T B_i^T B_i
    phi~(x*; theta_b') with exact bins and the spec's switch at the real theta_b', e_bar(y_k) the middle
    block of W_g^T grad l(y_k, 0) from the AD derivative of the loss's formula. Returns (value, |terms| sum)."""
    from ..reference import design as ref_design
    from ..reference import formulas as ref
    from ..reference.telescoping import telescoped

    b, d = con.blocks, con.design
    K = len(xs)
    tel = telescoped(con)  # computed once per run, shared with the claims (claims/sides.py)
    q = ref_design.phi(x_star, float(theta_b_post), d.J, d.L, b)[b.top]
    total = np.zeros(b.dm)
    mag = np.zeros(b.dm)
    for x, y in zip(xs, ys):
        p = ref_design.phi(x, float(con.theta_b), d.J, d.L, b)[b.top]
        k, ka = ref.kernel(tel, p, q)
        e_mid = ref.error_at_z(con.Wg, np.zeros(b.D), y, con.loss)[b.mid]
        v, vm = ref.eq3(tel, e_mid, k, ka, -1.0, ref.effective_r(d.relu_grad_at_zero))  # alpha = -1: +sum
        total += v
        mag += vm
    return -alpha / K * total, abs(alpha) / K * mag


@claim("kshot-eq", scope="task",
       method="a real K-shot step (K forward passes, the loss's real gradients, backprop, the average); "
              "then (1) the updated weights' product applied to phi(x*) with no ReLU (the linear "
              "reading: no second-order term) and (2) the real ReLU forward pass at x* (signed "
              "variant: vs max(formula, 0)) against the formula from the chosen A_i, B_i")
def kshot_eq(ctx, t, kst) -> Check:
    """[1, Sec. 5] (eq. (3) for K shots): zbar* = -(alpha/K) sum_k sum_i A_i e_bar(y_k) k_i(x_k, x*) (times
    r^i), with no second-order term.

    One function on every backend (``ctx.backend``). Executed: the real K-shot step's updated product
    (no ReLU) and its ReLU pass at x*. Claimed: the K-shot formula (float: :func:`kshot_formula` from
    reference/; exact: the same sum with A_i, B_i telescoped from the exact weights and e_bar from the
    SymPy derivative of the loss's value): A_i, B_i from the weights, exact bins, the real theta_b'."""
    be, b = ctx.backend, ctx.blocks
    f, fmag = be.kshot_formula(ctx, t.xs, t.ys, t.x_star, kst.theta_b_post, kst.alpha)
    lin = forward(kst.W_post, kst.phi_star_post, relu=False).z[b.mid]
    relu = kst.z_star[b.mid]

    def mag():
        return _abs_forward_max(kst.W_post, kst.phi_star_post, b.mid) + max_abs(fmag)

    c_lin = be.equal(ctx, lin, f, mag, what="prod W' phi(x*) - formula (no ReLU)", claimed_text="formula")
    claimed_relu = be.clip(f) if ctx.design.variant == "signed" else f
    c_relu = be.equal(ctx, relu, claimed_relu, mag, what="zbar* - formula", claimed_text="formula")
    res = max(c_lin.residual, c_relu.residual)
    how = "exactly" if be.exact else f"({c_lin.residual:.3g})"
    note = ""
    if c_lin.verdict != Verdict.PASS:
        note = f"the linear product misses the formula by {c_lin.residual:.3g}" + (
            f": {c_lin.computed}" if be.exact else "")
    elif c_relu.verdict != Verdict.PASS:
        note = (f"the ReLU network misses the formula by {c_relu.residual:.3g} while the linear product "
                f"matches it {how}: intermediate ReLUs clip middle coordinates whose "
                f"contributions have both signs (finding kshot-mixed-signs)")
    return Check({"linear_residual": c_lin.residual, "relu_residual": c_relu.residual,
                  "zbar_star": be.record(relu)}, be.record(claimed_relu), res, max(c_lin.tolerance, c_relu.tolerance),
                 worst(c_lin.verdict, c_relu.verdict), note)


@claim("permutation-invariant", scope="task",
       method="the real K-shot step on the task reversed and on a seeded random permutation; every "
              "updated parameter (W', theta_b', W_g') and zbar* compared with the original order")
def permutation_invariant(ctx, t, kst) -> Check:
    """[1, Sec. 5]: the K-shot step is invariant under permutations of the K examples.

    One function on every backend (``ctx.backend``). Executed: the real K-shot step on the task reversed
    and on a random permutation. Claimed: the original order's W', theta_b', W_g' and zbar* (float:
    equal up to summation order; exact: every entry's difference the zero polynomial)."""
    be = ctx.backend
    K = t.K
    rng = np.random.default_rng([K, 7])
    perms = [list(range(K))[::-1], [int(v) for v in rng.permutation(K)]]

    def tol():  # summation order changes rounding only: K terms of size alpha*|grad|
        out = ctx.tol(abs(kst.alpha) * max(kst.grad_max_abs(), abs(kst.g_theta_b), max_abs(kst.g_Wg), 1e-300)) * K
        return max(out, ctx.tol(max_abs(kst.z_star)) * K)

    res, tolerance, verdict, bitwise, bad = 0.0, 0.0, Verdict.PASS, True, None
    for p in perms:
        other = k_shot_step(ctx.con, [t.xs[k] for k in p], [t.ys[k] for k in p], t.x_star,
                            alpha=kst.alpha, r=kst.r)
        c = be.steps_equal(ctx, other, kst, tol, what=f"theta'(perm {p}) - theta'")
        res, tolerance = max(res, c.residual), c.tolerance
        verdict = worst(verdict, c.verdict)
        bitwise = bitwise and c.computed is True
        if c.verdict != Verdict.PASS and bad is None:
            bad = c
    if be.exact:
        note = (f"exactly equal for the permutations {perms}" if verdict == Verdict.PASS else bad.note)
    else:
        note = "bit-identical" if bitwise else f"equal up to summation order ({res:.3g})"
    return Check({"max_difference": res, "bit_identical": bitwise, "permutations": perms},
                 "0", res, tolerance, verdict, note)


def decode_multiset(con, zbar: np.ndarray, alpha: float, K: int, tol: float):
    """All (x* cell, set of K distinct x cells, labels) that explain zbar* within ``tol``.

    zbar* = -(alpha/K) sum_k w(a_k, b) (x) u_k with w the cell gains (decode.spec_gains: the spec's tables) and u_k the
    label codes. With one channel per cell (paper layout) the gains form an invertible square matrix
    and one linear solve gives every cell's code (unique by invertibility). Otherwise every candidate
    (b, S) gets the least-squares labels. Returns (best, alternatives within tol, candidates tried or
    the method's name, smallest singular value of the chosen gain columns), or None when there are
    too many candidates.
    """
    from ..decode import spec_gains

    b = con.blocks
    U = recover(zbar, b) * (-K / alpha)  # (m, dy)
    Wc = spec_gains(con.design, b)  # (cells_x * cells_star, m), from the spec's codes and A_i
    n_x, n_s = b.cells_x, b.cells_star
    if K > n_x:
        return None
    if Wc.shape[0] == Wc.shape[1]:  # one channel per cell (paper layout): solve for every cell at once
        sv = np.linalg.svd(Wc, compute_uv=False)
        if sv.min() > 0:
            u_all = np.linalg.solve(Wc.T, U)  # (cells, dy): the label code of each cell
            noise = 4 * tol * math.sqrt(2) * K / abs(alpha) / float(sv.min())
            support = [c for c in range(Wc.shape[0]) if np.max(np.abs(u_all[c])) > noise]
            cols = sorted({c % n_s for c in support})
            l = cols[0] if len(cols) == 1 else -1
            S = (tuple(sorted(c // n_s for c in support)) if l >= 0
                 else tuple((c // n_s, c % n_s) for c in support[:8]))
            if l < 0 or len(S) != K:
                return (math.inf, l, S, np.zeros((0, U.shape[1]))), [], "one linear solve", 0.0
            Psi = u_all[[j * n_s + l for j in S]]
            Wm = np.stack([Wc[j * n_s + l] for j in S], axis=1)
            r = float(np.max(np.abs(Wm @ Psi - U))) * abs(alpha) / K
            smin = float(np.linalg.svd(Wm, compute_uv=False).min())
            return (r, l, S, Psi), [], "one linear solve (one channel per cell)", smin
    count = n_s * math.comb(n_x, K)
    if count > MAX_DECODE_CANDIDATES:
        return None
    scale = K / abs(alpha)
    fits = []
    for l in range(n_s):
        for S in itertools.combinations(range(n_x), K):
            Wm = np.stack([Wc[j * n_s + l] for j in S], axis=1)  # (m, K)
            Psi, *_ = np.linalg.lstsq(Wm, U, rcond=None)
            r = float(np.max(np.abs(Wm @ Psi - U))) / scale if U.size else 0.0
            fits.append((r, l, S, Psi))
    fits.sort(key=lambda f: f[0])
    best = fits[0]
    alts = [f for f in fits[1:] if f[0] <= tol]
    l, S = best[1], best[2]
    smin = float(np.linalg.svd(np.stack([Wc[j * n_s + l] for j in S], axis=1), compute_uv=False).min())
    return best, alts, count, smin


@claim("kshot-decodes", scope="task",
       method="decoder applied to the real zbar*: one linear solve for every cell's label code (paper "
              "layout: the cell gains are an invertible square matrix), else exhaustive least squares "
              "over every x* cell and every set of K distinct x cells; PASS when exactly one explanation "
              "fits zbar* within rounding and it is the truth (labels read back through the loss's "
              "label code)")
def kshot_decodes(ctx, t, kst) -> Check:
    """[1, Sec. 5, Lemma 4.1 for K shots]: zbar* determines bin x* and {(bin x_k, y_k)} when the x_k lie in
    distinct cells.

    Executed: the real K-shot zbar*. Claimed: the true cells (exact bins) and labels. One function on
    every backend: the exact backend reports it SKIPPED with the reason (the decoder has no exact form)."""
    if ctx.backend.exact:
        return Check("-", "-", 0.0, 0.0, Verdict.SKIPPED,
                     "the decoder is a least-squares search over every (x* cell, set of K x cells) candidate, a "
                     "float procedure with no exact form here; the exact run proves kshot-eq and "
                     "permutation-invariant on the same exact K-shot steps (what the decoder reads), and "
                     "backends-agree compares them with the float ones (--backend both)")
    con, b = ctx.con, ctx.blocks
    from . import sides

    cells = [sides.cells(ctx, x, t.x_star)[0] for x in t.xs]
    if len(set(cells)) < len(cells):
        return Check("coincident cells", "-", 0.0, 0.0, Verdict.SKIPPED,
                     "two x_k share a cell: labels add up (finding kshot-coincident-bins)")
    z = kst.z_star[b.mid]
    mag = _abs_forward_max(kst.W_post, kst.phi_star_post, b.mid)
    ztol = ctx.tol(mag) * math.sqrt(b.dm)
    out = decode_multiset(con, z, kst.alpha, t.K, ztol)
    if out is None:
        return Check("-", "-", 0.0, 0.0, Verdict.SKIPPED,
                     f"more than {MAX_DECODE_CANDIDATES} candidate cell sets (or K > cells)")
    (r, l, S, Psi), alts, tried, smin = out
    truth_star = sides.cells(ctx, t.xs[0], t.x_star)[1]
    decoded_labels = {j: con.loss.label_from_code(Psi[n]) for n, j in enumerate(S) if n < len(Psi)}
    computed = {"cell_star": l, "cells": list(S), "labels": [v.tolist() for v in decoded_labels.values()],
                "fit_residual": r, "other_explanations": len(alts), "candidates": tried}
    claimed = {"cell_star": truth_star, "cells": sorted(cells),
               "labels": [np.asarray(y).tolist() for _, y in sorted(zip(cells, t.ys), key=lambda p: p[0])]}
    if r > ztol:
        if isinstance(tried, str):
            where = f"x* cell {l}, x cells {list(S)}" if l >= 0 else f"(x cell, x* cell) {list(S)}"
            return Check(computed, claimed, r, ztol, Verdict.FAIL,
                         f"the cells carrying a label are {where}: not {t.K} x cells in one x* column")
        return Check(computed, claimed, r, ztol, Verdict.FAIL,
                     f"no candidate explains zbar* within rounding (best residual {r:.3g})")
    if alts:
        a = alts[0]
        if not np.any(z):
            why = "zbar* = 0: the step left no trace at x*"
        elif ctx.design.layout == "compact" and t.K >= b.m:
            why = (f"the compact layout's m = N - 2 = {b.m} code channels cannot separate K = {t.K} shots: "
                   f"it decodes K <= m - 1; use a deeper N or the paper layout")
        else:
            why = f"{b.m} code channels, {t.K} shots"
        return Check(computed, claimed, r, ztol, Verdict.FAIL,
                     f"ambiguous: x* cell {a[1]} with x cells {list(a[2])} also explains zbar* ({why})")
    if l != truth_star or sorted(S) != sorted(cells):
        return Check(computed, claimed, math.inf, ztol, Verdict.FAIL,
                     f"decoded x* cell {l}, x cells {list(S)}")
    # labels: each decoded label against the true one of its cell; rounding in zbar* is amplified
    # by the least-squares fit by at most 1/(smallest singular value of the gain columns)
    ytol = 2 * ztol * t.K / (abs(kst.alpha) * max(smin, 1e-300)) + ctx.tol(max(max_abs(y) for y in t.ys))
    res = max(max_abs(decoded_labels[c] - np.asarray(y)) for c, y in zip(cells, t.ys))
    how = tried if isinstance(tried, str) else f"unique among {tried} candidates"
    if res > ytol:
        return Check(computed, claimed, res, ytol, Verdict.FAIL,
                     f"right cells ({how}), but a decoded label is off by {res:.3g} (the loss's label code "
                     f"does not determine y)")
    return Check(computed, claimed, res, ytol, Verdict.PASS, how)


# ---- findings --------------------------------------------------------------------------------
def _small(ctx):
    """The run's design with a working ReLU'(0) (r = 0 would mask every other gap)."""
    d = ctx.design
    return d if d.relu_grad_at_zero != 0 else d.with_(relu_grad_at_zero=1.0)


def _con_for(ctx, design):
    """The run's construction when the design is the run's; else a new one, on a small grid of the
    same kind when the run's sizes would need more than FINDING_MEMORY_BYTES (it says so in
    ``con.extras['shown_on']``)."""
    if design == ctx.design:
        return ctx.con
    from ..memory import dense_run_bytes
    from .findings import FINDING_MEMORY_BYTES

    b = design.blocks
    if dense_run_bytes(design.N, b.D) > FINDING_MEMORY_BYTES:
        small = design.with_(N=6, J=min(design.J, 4), L=min(design.L, 4), dx=1, layout="compact")
        con = build(small, engine=ctx.engine)
        con.extras["shown_on"] = (f"shown on N = 6, J = {small.J}, L = {small.L} (the run's sizes would need "
                                  f"more than {FINDING_MEMORY_BYTES // 2**30} GiB for a second construction)")
        return con
    return build(design)


def _where(con) -> str:
    return con.extras.get("shown_on", "")


def _two_x_cells(d):
    """The design, or the same one with J = 2 when the run has a single x cell (a K-shot gap needs two)."""
    if d.J**d.dx >= 2:
        return d, ""
    return d.with_(J=2, N=max(d.N, 4), layout="compact"), "shown on J = 2 (the run has one x cell)"


def _centers(con, idx) -> list:
    return [cell_point(int(c), con.design.J, con.design.dx) for c in idx]


def _updates_diff_and_grad_max(a, b) -> tuple[float, float]:
    """(engine.step.updates_diff_max_abs(a, b), a.grad_max_abs()) for two steps from the same weights,
    in one traversal of their gradient factors: checkpointed (J = L = 128), each segment of the four
    stacks is recomputed once instead of once per reduction. The same searches as those two functions
    (every entry of the stacked corrections [c_a D_a, -c_b D_b][H_a, H_b]^T of each layer whose factors
    differ, on the supports; the factors' max per layer), vectorised over a few layers at a time."""
    from ..engine.checkpoint import segments
    from ..engine.layers import lowrank_max_abs_all
    from ..engine.step import factor_max

    Wa, Wb = a.W_post, b.W_post
    K = Wa.Dfac.shape[2]
    same_coef = Wa.coef == Wb.coef
    diff, gmax = 0.0, 0.0
    compiled = _pair_max_kernel(Wa, Wb)
    for k0, k1, (Da, Ha, Db, Hb) in segments(Wa.Dfac, Wa.Hfac, Wb.Dfac, Wb.Hfac):
        if compiled is not None and K > 1 and Da.shape[1]:
            gl, dl = compiled(Da, Ha, Db, Hb)
            gmax = max(gmax, float(gl.max(initial=0.0)) / K)
            for c0 in range(0, k1 - k0, DIFF_CHUNK_LAYERS):  # the same reduction as below, per chunk
                sl = slice(c0, min(c0 + DIFF_CHUNK_LAYERS, k1 - k0))
                differ = dl[sl] != 0 if same_coef else np.ones(dl[sl].shape, dtype=bool)
                if same_coef:  # (a zero from equal factors, or a searched zero: both add nothing)
                    differ |= np.isnan(dl[sl])
                if differ.any():
                    diff = max(diff, float(dl[sl][differ].max(initial=0.0)))
            continue
        if Da.shape[1]:
            gmax = max(gmax, factor_max(Da[:, :, 0], Ha[:, :, 0]) if K == 1
                       else float(lowrank_max_abs_all(Da, Ha).max(initial=0.0)) / K)
        for c0 in range(0, k1 - k0, DIFF_CHUNK_LAYERS):  # a few layers at a time, vectorised
            sl = slice(c0, min(c0 + DIFF_CHUNK_LAYERS, k1 - k0))
            da, ha, db, hb = Da[sl], Ha[sl], Db[sl], Hb[sl]
            differ = np.ones(da.shape[0], dtype=bool)
            if same_coef:  # the same factors: the same updated layer, bit for bit
                differ = ~(np.all(da == db, axis=(1, 2)) & np.all(ha == hb, axis=(1, 2)))
            if not differ.any():
                continue
            P = np.concatenate([Wa.coef * da[differ], -Wb.coef * db[differ]], axis=2)
            Q = np.concatenate([ha[differ], hb[differ]], axis=2)
            diff = max(diff, float(lowrank_max_abs_all(P, Q).max(initial=0.0)))
    return diff, gmax


# layers whose stacked corrections kshot-coincident-bins searches at once (D x 2K each)
DIFF_CHUNK_LAYERS = 16


def _grad_max(st) -> float:
    """Step.grad_max_abs() of a K-shot step: max |dl/dW_i| over every entry of every layer, for K > 1
    through the compiled search (one traversal of the factors; ``lowrank_pair_max`` of the step with
    itself, whose difference search ends at once on the equal factors), else the Step's own."""
    W = st.W_post
    K = W.Dfac.shape[2]
    search = _pair_max_kernel(W, W) if K > 1 else None
    if search is None:
        return st.grad_max_abs()
    from ..engine.checkpoint import segments

    gmax = 0.0
    for _, _, (Dm, Hm) in segments(W.Dfac, W.Hfac):
        if Dm.shape[1]:
            gmax = max(gmax, float(search(Dm, Hm, Dm, Hm)[0].max(initial=0.0)) / K)
    return gmax


def _pair_max_kernel(Wa, Wb):
    """(D_a, H_a, D_b, H_b) of a segment -> (per layer max |D_a H_a^T|, per layer max |c_a D_a H_a^T -
    c_b D_b H_b^T|) through the compiled search (engine/kernels.py ``lowrank_pair_max``: the same
    entries, each summed over the factor columns in order), or None where the kernels do not run the
    layers' products (dense or exact layers, kernels off) or the factors are not float64 (the NumPy
    search below then runs)."""
    from ..engine import kernels

    if not (kernels.usable(Wa.base) and kernels.usable(Wb.base)) or any(
            getattr(f, "dtype", None) != np.float64 for f in (Wa.Dfac, Wa.Hfac, Wb.Dfac, Wb.Hfac)):
        return None  # (a dense run never loads Numba)
    run = kernels.kernel("lowrank_pair_max")
    ca, cb = float(Wa.coef), float(Wb.coef)
    same = bool(Wa.coef == Wb.coef) and Wa.Dfac.shape == Wb.Dfac.shape

    def search(Da, Ha, Db, Hb):
        Da, Ha, Db, Hb = (np.ascontiguousarray(v, dtype=np.float64) for v in (Da, Ha, Db, Hb))
        gl, dl = np.empty(Da.shape[0]), np.empty(Da.shape[0])
        run(Da, Ha, Db, Hb, ca, cb, same, gl, dl)
        return gl, dl

    return search


@finding("kshot-coincident-bins", condition="two training inputs in the same x cell")
def kshot_coincident_bins(ctx, samples) -> Outcome:
    d = _small(ctx)
    shown_with = ""
    if d.loss in ("l1", "hinge"):  # their label code is sign(y): no two code sets share a sum
        d, shown_with = d.with_(loss="mse"), f"shown with mse: {d.loss} already maps labels to sign(y)"
    con = _con_for(ctx, d)
    d = con.design
    loss = con.loss
    x = _centers(con, [0])[0]
    x_star = _centers(con, [0])[0]
    sgn = -np.sign(d.alpha)
    if loss.domain == "simplex":  # two mixed labels vs two vertices with the same sum
        e = np.eye(d.dy)
        set_a = [0.9 * e[0] + 0.1 * e[1], 0.6 * e[0] + 0.4 * e[1]]
        set_b = [e[0], 0.5 * e[0] + 0.5 * e[1]]
    else:
        set_a = [np.full(d.dy, sgn * 0.25), np.full(d.dy, sgn * 0.75)]
        set_b = [np.full(d.dy, sgn * 0.5), np.full(d.dy, sgn * 0.5)]
    sa = k_shot_step(con, [x, x], set_a, x_star)
    sb = k_shot_step(con, [x, x], set_b, x_star)
    diff_w, grad_a = _updates_diff_and_grad_max(sa, sb)
    diff = max(diff_w, abs(sa.theta_b_post - sb.theta_b_post), max_abs(sa.Wg_post - sb.Wg_post))
    # does each task leave a trace at all (else the demonstration would be vacuous)?
    moved = abs(sa.alpha) * grad_a  # Step.update_max_abs()
    zdiff = max_abs(sa.z_star - sb.z_star)
    tol = ctx.tol(abs(d.alpha) * max(grad_a, 1.0)) * 2
    codes_differ = max(max_abs(loss.label_code(p) - loss.label_code(q)) for p, q in zip(set_a, set_b))
    demonstrated = diff <= tol and moved > tol and codes_differ > 0
    return Outcome(bool(demonstrated),
        {"x_both": x, "x_star": x_star, "labels_a": set_a, "labels_b": set_b,
         "max_abs_theta_post_difference": diff, "zbar_star_difference": zdiff,
         "theta_b_post": [sa.theta_b_post, sb.theta_b_post], "largest_weight_change": moved,
         "loss": d.loss, "note": shown_with, "sizes": _where(con)},
        "With the x_k in one cell the K gradients land in the same weight entries and only the sum of "
        "the labels survives the averaged step. Two different label sets with the same sum give the "
        "same theta', so no post-update network can tell them apart: the K-shot construction needs "
        "distinct cells (the paper's 'unique data points'); one-hot labels survive as class counts.",
        f"labels {_lbl(set_a)} vs {_lbl(set_b)} in one cell: max|theta'_a - theta'_b| = {diff:.3g} "
        f"(weights moved by {moved:.3g})")


def _lbl(ys) -> str:
    return "{" + ", ".join("[" + ", ".join(f"{v:g}" for v in np.asarray(y).reshape(-1)[:3]) + "]" for y in ys) + "}"


def _exact_gradient_sum(loss, C: int, labels) -> list:
    """sum_k grad_yhat l(y_k, 0), exactly: the loss's formula differentiated by forward-mode AD in
    rational arithmetic (reference/lossdiff.py) at the labels' exact binary values. NaNs when an
    evaluation left the rationals (the finding is then not demonstrated)."""
    from fractions import Fraction

    from ..reference import lossdiff

    total = [Fraction(0)] * C
    for y in labels:
        g, exact = lossdiff.exact_gradient_at_zero(loss, y)
        if not exact:
            return [math.nan] * C
        total = [t + v for t, v in zip(total, g)]
    return total


@finding("kshot-balanced-ce",
         condition="softmax CE and every class equally often in the task (e.g. C-way 1-shot)")
def kshot_balanced_ce(ctx, samples) -> Outcome:
    d = _small(ctx)
    if d.loss != "ce":
        d = d.with_(loss="ce", dy=max(d.dy, 3))
    con = _con_for(ctx, d)
    d = con.design
    C = d.dy
    cx = con.blocks.cells_x
    idx = [k % cx for k in range(C)]
    xs = _centers(con, idx)
    x_star = _centers(con, [cx - 1])[0]
    eye = np.eye(C)
    balanced = [eye[k] for k in range(C)]
    st = k_shot_step(con, xs, balanced, x_star)
    # executed: the K errors that reached z in the real K-shot step (W_g and loss.grad), summed
    e_sum = np.sum(np.asarray(st.errors, dtype=float), axis=0)
    st_theta, st_g_theta = st.theta_b_post, st.g_theta_b
    del st  # one K-shot step alive at a time (what is reported is read)
    unbalanced = [eye[0]] + [eye[k] for k in range(C - 1)]  # class 0 twice, last class missing
    su_theta = k_shot_step(con, xs, unbalanced, x_star).theta_b_post
    g_sum = sum(np.asarray(con.loss.grad(y, np.zeros(C)), dtype=float) for y in balanced)
    # exactly: the loss's formula differentiated in rationals at the labels (nothing typed in)
    exact = _exact_gradient_sum(con.loss, C, balanced)
    # any other bottom form w: w^T sum_k grad_k = 0 as well
    w = np.random.default_rng(3).standard_normal(C)
    g_other = float(w @ g_sum)
    # the errors are O(1) per class (no alpha in them); theta_b' carries alpha
    tol_e = ctx.tol(C * 2.0)
    tol = ctx.tol(abs(d.alpha) * C * 2)
    demonstrated = (all(q == 0 for q in exact) and max_abs(e_sum) <= tol_e and abs(st_theta) <= tol
                    and su_theta != 0 and abs(su_theta) > abs(st_theta))
    return Outcome(bool(demonstrated),
        {"C": C, "task": f"{C}-way 1-shot, one example per class", "x": xs, "x_star": x_star,
         "sizes": _where(con),
         "sum_of_gradients_at_0_exact": [str(q) for q in exact],
         "sum_of_gradients_at_0_executed": g_sum, "sum_of_errors_at_z_executed": e_sum,
         "theta_b_gradient": st_g_theta,
         "theta_b_post": st_theta, "other_bottom_form_times_sum": g_other,
         "unbalanced_task_theta_b_post": su_theta},
        "At yhat = 0 each CE gradient is 1/C - y_k; summed over a class-balanced task it is the zero "
        "vector (exactly, in rationals). theta_b's gradient is a linear form of that sum, so it is 0 "
        "for every choice of the bottom head w_g: theta_b' = 0, phi~ keeps writing x* into the training "
        "slots and the K-shot construction never switches to its test-time read-out.",
        f"{C}-way 1-shot: sum of gradients = ({', '.join(str(q) for q in exact)}) exactly, theta_b' = "
        f"{st_theta:.3g}; unbalanced task: theta_b' = {su_theta:.3g}")


@finding("kshot-mse-null-space", condition="MSE and e_check(sum_k y_k) = 0")
def kshot_mse_null_space(ctx, samples) -> Outcome:
    d = _small(ctx)
    if d.loss != "mse":
        d = d.with_(loss="mse")
    con = _con_for(ctx, d)
    d = con.design
    cx = con.blocks.cells_x
    x_star = _centers(con, [0])[0]
    if cx >= 2:  # y and -y in two cells
        xs = _centers(con, [0, 1])
        y1 = np.full(d.dy, 1.5)
        ys = [y1, -y1]
    elif d.dy >= 2:  # one cell: two copies of a label in the kernel of e_check
        xs = _centers(con, [0, 0])
        y1 = np.zeros(d.dy)
        y1[0], y1[1] = 1.5, -1.5
        ys = [y1, y1]
    else:  # one x cell and dy = 1: labels summing to 0 in one cell cancel; show it on J = 2
        d, note = _two_x_cells(d)
        con = build(d, engine=ctx.engine)
        con.extras["shown_on"] = note
        xs = _centers(con, [0, 1])
        x_star = _centers(con, [0])[0]
        y1 = np.full(d.dy, 1.5)
        ys = [y1, -y1]
    st = k_shot_step(con, xs, ys, x_star)
    other = [np.abs(y1), 2 * np.abs(y1)]  # same cells, labels off the kernel
    gmax = _grad_max(st)
    moved = abs(st.alpha) * gmax  # Step.update_max_abs()
    tol = ctx.tol(abs(d.alpha) * max(gmax, 1.0))
    theta_st = st.theta_b_post
    del st  # one K-shot step alive at a time (what is reported is read)
    su_theta = k_shot_step(con, xs, other, x_star).theta_b_post
    e_sum = con.e_check(y1) + con.e_check(-y1)
    demonstrated = theta_st == 0 and e_sum == 0 and moved > tol and su_theta != 0
    return Outcome(bool(demonstrated),
        {"x": xs, "x_star": x_star, "labels": ys, "e_check_of_sum": e_sum, "sizes": _where(con),
         "theta_b_post": theta_st, "largest_weight_change": moved,
         "other_task": {"labels": other, "theta_b_post": su_theta}},
        "theta_b' = -alpha (prod w_check) e_check(sum_k y_k) / K. Nonzero labels whose sum lies in the "
        "kernel of e_check (here y and -y) move W but leave theta_b at 0, so the switch never flips and "
        "the test input is read through the training slots.",
        f"labels {_lbl(ys)}: W moved by {moved:.3g} but theta_b' = {theta_st:.3g}; "
        f"labels {_lbl(other)}: theta_b' = {su_theta:.3g}")


def _intermediate_clipping(fwd, blocks, tol: float) -> list:
    """(layer i, middle unit) where the executed ReLU of an intermediate layer (i = 2..N) zeroed a
    pre-activation below -tol: read from the real forward pass (pre-activation and output)."""
    out = []
    N = fwd.pre.shape[0]
    mid = blocks.mid
    for k in range(1, N):  # pre[k] is layer k+1's input to its ReLU; k = 0 is the output layer
        pre, post = fwd.pre[k][mid], fwd.post[k][mid]
        hit = np.flatnonzero((pre < -tol) & (post == 0.0))
        out += [(k + 1, int(u)) for u in hit]
    return out


def _linear_and_magnitude(W, phi: np.ndarray, rows) -> tuple[np.ndarray, float]:
    """(rows of the linear product W_1 ... W_N phi with no ReLU, forward(W, phi, relu=False).z; the
    rounding magnitude :func:`_abs_forward_max`) in one traversal of the layers: on the updated
    layers of a checkpointed step their gradient factors are recomputed once for both passes."""
    from ..engine.step import layers_of

    layers = layers_of(W)
    h = layers.asarray(phi)
    a = layers.abs(h)
    mag = 0.0
    for k in range(layers.N - 1, -1, -1):
        h = layers.apply(k, h)
        a = layers.abs_apply(k, a)
        part = a[rows]
        if part.size:
            mag = max(mag, float(np.max(part)))
    return np.asarray(h)[rows], mag


# kshot-mixed-signs keeps at most this many (layer, unit) candidates for a clip while it runs the
# linear pass (a middle pre-activation below 0 with output 0); above, it reads the pass again
CLIP_CANDIDATES_MAX = 1 << 20


def _linear_magnitude_and_clipping(st, rows, tol_of):
    """(rows of the linear product through the step's updated layers, the rounding magnitude,
    :func:`_intermediate_clipping` of the step's pass at x* after the step at the tolerance
    ``tol_of(magnitude)``) in one traversal: each segment of the step's factors and of its pass at x*
    (checkpointed: recomputed from their checkpoints) is fetched once for the three. The clips are
    read from the executed pass as :func:`_intermediate_clipping` reads them: every middle unit whose
    pre-activation is below 0 and whose output is 0 is kept with its value while the magnitude (and
    so the tolerance) is not known yet, and those below -tol are reported."""
    from ..engine.checkpoint import is_lazy, segments
    from ..engine.step import layers_of

    W = layers_of(st.W_post)
    fwd = st.fwd_star_post
    if not (is_lazy(W.Hfac) and is_lazy(W.Dfac)):  # stored factors: nothing is recomputed
        lin, mag = _linear_and_magnitude(st.W_post, st.phi_star_post, rows)
        return lin, mag, _intermediate_clipping(fwd, st.con.blocks, tol_of(mag))
    from ..engine import kernels

    mid = st.con.blocks.mid
    h = W.asarray(st.phi_star_post)
    a = W.abs(h)
    mag = 0.0
    cand_k, cand_u, cand_v = [], [], []
    kept, overflow = 0, False
    # compiled: each segment's linear and magnitude products in one call each (kernels.pass_of: the
    # same products and corrections; the magnitudes' per-unit maxima folded as they run)
    compiled = kernels.pass_of(W)
    if compiled is not None:
        h, a = np.ascontiguousarray(h[:, None]), np.ascontiguousarray(a[:, None])
        colmax, rowmax = np.zeros((W.D, 1)), np.zeros((W.N, 1))
    # the forward sweep's order (Hfac is its input stack): layer N first, a segment at a time
    for k0, k1, _ in segments(W.Hfac, W.Dfac):
        if compiled is not None:
            h = compiled.sweep(k0, k1, h, use_relu=False)
            a = compiled.sweep(k0, k1, a, absolute=True, use_relu=False, reduce=(colmax, rowmax))
        for k in range(k1 - 1, k0 - 1, -1):
            if compiled is None:
                h = W.apply(k, h)
                a = W.abs_apply(k, a)
                part = a[rows]
                if part.size:
                    mag = max(mag, float(np.max(part)))
            if k >= 1 and not overflow:  # pre[k] is layer k+1's input to its ReLU (k = 0: the output)
                pre, post = fwd.pre[k][mid], fwd.post[k][mid]
                hit = np.flatnonzero((pre < 0) & (post == 0.0))
                if hit.size:
                    kept += hit.size
                    overflow = kept > CLIP_CANDIDATES_MAX
                    cand_k.append(np.full(hit.size, k))
                    cand_u.append(hit)
                    cand_v.append(pre[hit])
    if compiled is not None:
        h = h[:, 0]
        part = colmax[rows, 0]
        mag = float(np.max(part)) if part.size else 0.0
    tol = tol_of(mag)
    if overflow:
        return np.asarray(h)[rows], mag, _intermediate_clipping(fwd, st.con.blocks, tol)
    if not cand_k:
        return np.asarray(h)[rows], mag, []
    ks, us, vs = np.concatenate(cand_k), np.concatenate(cand_u), np.concatenate(cand_v)
    order = np.lexsort((us, ks))  # _intermediate_clipping's order: by layer, then by unit
    ks, us, vs = ks[order], us[order], vs[order]
    sel = vs < -tol
    return np.asarray(h)[rows], mag, [(int(k) + 1, int(u)) for k, u in zip(ks[sel], us[sel])]


def _mixed_sign_search(ctx, con, budget: int = 240):
    """Try label pairs of both signs, cell pairs and x* cells until the ReLU network leaves the
    K-shot formula while the linear product still matches it. Returns (found, details)."""
    d, b = con.design, con.blocks
    cx, cs = b.cells_x, b.cells_star
    if con.loss.domain == "simplex":  # not class-balanced, so theta_b moves
        e = np.eye(d.dy)
        mixed = 0.25 * e[0] + 0.75 * e[1]
        pairs = [[e[0], mixed], [mixed, e[0]], [e[1], 0.8 * e[0] + 0.2 * e[1]]]
    else:
        one = np.ones(d.dy)
        pairs = [[2 * one, -0.5 * one], [-0.5 * one, 2 * one], [4 * one, -one], [-one, 4 * one],
                 [one, -3 * one], [-3 * one, one]]
    cell_pairs = [(p, q) for p in range(min(cx, 4)) for q in range(min(cx, 4)) if p != q]
    tried, last = 0, None
    for ys in pairs:
        for cells in cell_pairs:
            for star in range(min(cs, 3)):
                tried += 1
                if tried > budget:
                    return False, last
                xs = _centers(con, list(cells))
                x_star = cell_point(star, d.L, d.dx)
                st = k_shot_step(con, xs, ys, x_star)
                f, fmag = kshot_formula(con, xs, ys, x_star, st.theta_b_post, st.alpha)
                fm = max_abs(fmag)
                lin, mag, clipped = _linear_magnitude_and_clipping(st, b.mid, lambda m: ctx.tol(m + fm))
                relu = st.z_star[b.mid]
                claimed = np.maximum(f, 0.0) if d.variant == "signed" else f
                tol = ctx.tol(mag + fm)
                gap_relu, gap_lin = max_abs(relu - claimed), max_abs(lin - f)
                last = {"x": xs, "x_star": x_star, "labels": ys, "relu_network_vs_formula": gap_relu,
                        "linear_product_vs_formula": gap_lin, "tolerance": tol, "zbar_star": relu,
                        "formula": claimed, "placements_tried": tried,
                        "clipped_units": clipped[:6], "clipped_count": len(clipped)}
                # demonstrated only by an actual clip: an intermediate layer's ReLU zeroed a negative
                # middle pre-activation (not the output layer's max(., 0), which the claim allows)
                if gap_relu > tol and gap_lin <= tol and clipped:
                    return True, last
    return False, last


@finding("kshot-mixed-signs",
         condition="K >= 2 with labels of both signs per component (always for multi-class CE)")
def kshot_mixed_signs(ctx, samples) -> Outcome:
    d = _small(ctx)
    notes = []
    if d.loss in ("l1", "hinge"):  # codes +/-1 of equal size: shown with MSE's real labels
        d = d.with_(loss="mse")
        notes.append(f"shown with mse ({ctx.design.loss}'s codes are sign(y))")
    d, note = _two_x_cells(d)
    notes += [note] if note else []
    con = _con_for(ctx, d)
    found, ce = _mixed_sign_search(ctx, con)
    if not found:  # the run's sizes admit no dip below 0 among the placements tried: reference sizes
        ref = con.design.with_(N=6, J=4, L=4, dx=1, layout="compact")
        if ref != con.design:
            notes.append(f"no placement on the run's sizes dips below 0 ({ce['placements_tried'] if ce else 0} "
                         f"tried); shown on N = 6, J = L = 4")
            con = build(ref, engine=ctx.engine)
            found, ce = _mixed_sign_search(ctx, con)
    d = con.design
    ce = dict(ce or {})
    ce.update(loss=d.loss, note="; ".join(notes), sizes=_where(con))
    gap_relu, gap_lin = ce.get("relu_network_vs_formula", 0.0), ce.get("linear_product_vs_formula", 0.0)
    return Outcome(bool(found), ce,
        "Each middle coordinate sums its K contributions layer by layer. When they have both signs a "
        "partial sum can be negative at an intermediate layer and the ReLU zeroes it, so the ReLU "
        "network leaves the linear formula (the product of the updated weights still matches it "
        "exactly). Softmax CE always mixes signs across classes (1/C - y_k), so its K-shot tasks "
        "with two classes or more hit this; real labels of one sign per component do not.",
        f"labels {_lbl(ce.get('labels', []))}: ReLU network off the formula by {gap_relu:.3g}, the linear "
        f"product by {gap_lin:.3g}; {ce.get('clipped_count', 0)} intermediate ReLU(s) clipped"
        + (f" ({'; '.join(notes)})" if notes else ""))
