"""The five known gaps of the paper (spec section 3), each demonstrated live on the run's sizes.

Every finding builds the variant of the construction it needs, runs the real step, and reports
what the execution produced; nothing here is a typed-in verdict. ``demonstrated`` is True when the
computation exhibits the counterexample.
"""
from __future__ import annotations

import numpy as np

from ..config import format_bytes
from ..construction.network import build
from ..decode import decode
from ..engine.step import single_step as one_step
from .base import Outcome, finding, max_abs

# A finding's extra construction may use at most FINDING_MEMORY_BYTES (universality.memory, where
# the run's memory model counts it); above it the finding is shown on a smaller grid and says so.
from ..memory import FINDING_FULL_SIZE_MAX, FINDING_MEMORY_BYTES, dense_run_bytes  # noqa: E402,F401


# Above this many entries per pass (N x D), or stored weights on the sparse engine, the findings that
# build a second construction of the run's size (r = 0, the other variant, N = J L) are shown on
# reference sizes instead, and say so: each gap is a property of the argument, not of the size, and at
# J = L = 64 those constructions took 112 s (at N = 6, J = L = 1024: 6 M weights, about 0.5 s a build).
# FINDING_FULL_SIZE_MAX (universality.memory, whose model counts the second constructions below it).


def _size(ctx) -> int:
    """max(entries per pass N x D, the weights' stored entries on the sparse engine): a wide top block
    (the compact layout at large J, L) has few units but about N J L weights, and a second construction
    of it costs what those weights cost."""
    n = ctx.N * ctx.D
    if getattr(ctx.layers, "kind", "") == "sparse":
        n = max(n, int(ctx.layers.nnz()))
    return n


def _small_context(ctx):
    """A Context on reference sizes of the run's design (J = L = min(., 4), the same layout kind,
    variant, loss, dy and r), or None when the run is small enough to show the finding itself."""
    if _size(ctx) <= FINDING_FULL_SIZE_MAX:
        return None
    from .base import Context

    d = ctx.design
    J, L = min(d.J, 4), min(d.L, 4)
    small = d.with_(J=J, L=L, dx=1, N=(J * L + 2) if d.layout == "paper" else 6,
                    layout="paper" if d.layout == "paper" else "compact")
    return Context(build(small, engine="dense"))


def _shown_small(ctx, samples, func):
    small = _small_context(ctx)
    if small is None:
        return None
    out = func(small, samples)
    d = small.design
    what = (f"N x D = {ctx.N * ctx.D:,}" if ctx.N * ctx.D > FINDING_FULL_SIZE_MAX
            else f"weight count (nonzeros) {_size(ctx):,}")
    out.counterexample["shown_on"] = (f"N = {d.N}, J = {d.J}, L = {d.L} (the run's {what} is "
                                      f"above {FINDING_FULL_SIZE_MAX:,}; the gap does not depend on the size)")
    return out


def _build_or_reuse(ctx, design):
    """The construction of ``design``: the run's own weights when they are the same numbers, else a
    fresh build. The builder divides A_i by r^i only for r != 0 and r != 1 (r = 0 cannot be
    compensated and is left as chosen), so designs that differ from the run's only in r, with r in
    {0, 1} on both sides, have the very same weights and W_g: the run's weight store is shared (never
    modified by a step) and only the design (the ReLU'(0) the step uses) differs."""
    from dataclasses import replace

    run = ctx.design
    if design == run:
        return ctx.con
    if (design.with_(relu_grad_at_zero=run.relu_grad_at_zero) == run
            and run.relu_grad_at_zero in (0.0, 1.0) and design.relu_grad_at_zero in (0.0, 1.0)
            and getattr(ctx.con, "field", None) is not None and ctx.con.field.name == "numeric"):
        return replace(ctx.con, design=design, extras={})
    return build(design, engine=ctx.engine)


def _reference(ctx, samples):
    """The first random sample with a label of ordinary size, else a fixed triple."""
    simplex = ctx.con.loss.domain == "simplex"
    for s in samples:
        if simplex:  # CE: a label whose centred code is of ordinary size (not the uniform label)
            if s.kind == "random" and np.max(np.abs(ctx.con.loss.label_code(s.y))) >= 0.25:
                return s.x, s.x_star, np.asarray(s.y, dtype=float)
        elif s.kind == "random" and np.all((np.abs(s.y) >= 0.5) & (np.abs(s.y) <= 5.0)):
            return s.x, s.x_star, np.asarray(s.y, dtype=float)
    dx, dy = ctx.design.dx, ctx.design.dy
    return (0.3,) * dx, (0.7,) * dx, (np.eye(dy)[0] if simplex else np.full(dy, 1.5))


def _isolated(ctx):
    """The run's design with a working ReLU'(0) (r = 0 would mask every other gap)."""
    d = ctx.design
    return d if d.relu_grad_at_zero != 0 else d.with_(relu_grad_at_zero=1.0)


def _kept_sign(alpha: float, y) -> np.ndarray:
    """A label whose middle copies survive the ReLUs in both variants: -alpha * y > 0."""
    return -np.sign(alpha) * np.abs(np.asarray(y, dtype=float))


def cell_center(index: int, per_axis: int, dx: int) -> tuple:
    """A point in the middle of the flattened cell ``index`` of a per_axis^dx grid."""
    digits = []
    for _ in range(dx):
        digits.append(index % per_axis)
        index //= per_axis
    return tuple((d + 0.5) / per_axis for d in reversed(digits))


def _fmt(v) -> str:
    v = np.asarray(v, dtype=float).reshape(-1)
    return "[" + ", ".join(f"{t:.3g}" for t in v[:4]) + (", ..." if v.size > 4 else "") + "]"


def _zbar(ctx, st):
    return st.z_star[ctx.blocks.mid]


@finding("relu-grad-at-zero",
         condition="relu_grad_at_zero = 0")
def relu_grad_at_zero(ctx, samples) -> Outcome:
    shown = _shown_small(ctx, samples, relu_grad_at_zero)
    if shown is not None:
        return shown
    x, xs, y = _reference(ctx, samples)
    d = ctx.design
    y = _kept_sign(d.alpha, y)
    con0 = _build_or_reuse(ctx, d.with_(relu_grad_at_zero=0.0))
    st0 = one_step(con0, x, y, xs)
    r1 = d.relu_grad_at_zero if d.relu_grad_at_zero != 0 else 1.0
    con1 = _build_or_reuse(ctx, d.with_(relu_grad_at_zero=r1))
    st1 = one_step(con1, x, y, xs)
    b = ctx.blocks
    from ..engine.layers import lowrank_max_abs

    mid_bottom_grad0 = max((lowrank_max_abs(*(f[b.dt:] if n == 0 else f for n, f in enumerate(st0.grad_factors(k))))
                            for k in range(con0.N)), default=0.0)
    collapsed = st0.theta_b_post == 0 and not np.any(_zbar(ctx, st0))
    works = st1.theta_b_post != 0 and bool(np.any(_zbar(ctx, st1)))
    return Outcome(bool(collapsed and works),
        {"x": x, "x_star": xs, "y": y,
         "with_r_0": {"theta_b_post": st0.theta_b_post, "max_abs_zbar_star": max_abs(_zbar(ctx, st0)),
                      "max_abs_grad_middle_bottom_rows": mid_bottom_grad0},
         f"with_r_{r1:g}": {"theta_b_post": st1.theta_b_post, "max_abs_zbar_star": max_abs(_zbar(ctx, st1))}},
        "Before the step every middle and bottom unit has pre-activation exactly 0. With ReLU'(0) = 0 "
        "no error crosses them: W's middle blocks and theta_b get zero gradient, theta_b' = 0, the "
        "switch never flips and zbar* = 0. Any r > 0 is compensated exactly by A_i / r^i.",
        f"r = 0: theta_b' = {st0.theta_b_post:.3g}, max|zbar*| = {max_abs(_zbar(ctx, st0)):.3g}; "
        f"r = {r1:g}: theta_b' = {st1.theta_b_post:.3g}, max|zbar*| = {max_abs(_zbar(ctx, st1)):.3g}")


@finding("sign-of-y",
         condition="variant = paper and alpha * y > 0")
def sign_of_y(ctx, samples) -> Outcome:
    shown = _shown_small(ctx, samples, sign_of_y)
    if shown is not None:
        return shown
    x, xs, y = _reference(ctx, samples)
    d = _isolated(ctx)
    if ctx.con.loss.domain == "simplex":  # a property of the variant: shown with MSE's real labels
        d = d.with_(loss="mse")
        y = np.abs(np.asarray(y, dtype=float)) + 0.5
    alpha = d.alpha
    con_p = _build_or_reuse(ctx, d.with_(variant="paper"))
    y_bad = np.sign(alpha) * np.abs(y)
    y_good = -y_bad
    st_bad = one_step(con_p, x, y_bad, xs)
    st_good = one_step(con_p, x, y_good, xs)
    tb, tg = -alpha * con_p.v(x, xs, y_bad), -alpha * con_p.v(x, xs, y_good)
    zb, zg = st_bad.z_star[con_p.blocks.mid], st_good.z_star[con_p.blocks.mid]
    tol = ctx.tol(max(max_abs(tb), max_abs(tg), 1.0))
    gap_bad = max_abs(zb - tb)
    gap_good = max_abs(zg - tg)
    con_s = _build_or_reuse(ctx, d.with_(variant="signed"))
    st_s = one_step(con_s, x, y_bad, xs)
    dec = decode(con_s, st_s.z_star[con_s.blocks.mid], alpha)
    demonstrated = gap_bad > tol and not np.any(zb) and gap_good <= tol
    return Outcome(bool(demonstrated),
        {"x": x, "x_star": xs, "alpha": alpha,
         "clipped_label": {"y": y_bad, "max_abs_zbar_star": max_abs(zb), "max_abs_minus_alpha_v": max_abs(tb)},
         "kept_label": {"y": y_good, "residual_vs_minus_alpha_v": gap_good},
         "signed_variant_decodes_clipped_label": {"y": dec.y, "cell": [dec.cell_x, dec.cell_star]}},
        "With e_bar(y) = copies of y, the middle channel after the step has the sign of -alpha*y. When "
        "alpha*y > 0 every middle pre-activation is negative, the ReLUs output 0 and zbar* = 0: the "
        "label is lost. The signed variant stacks [y; -y] so one copy of each pair survives.",
        f"paper variant, y = {_fmt(y_bad)}: max|zbar*| = {max_abs(zb):.3g} but max|-alpha v| = "
        f"{max_abs(tb):.3g}; signed variant decodes y = {_fmt(dec.y)}")


# psd-implication inverts and diagonalises one dense dt x dt matrix; above this width it is shown on
# the reference sizes (N = 6, J = L = 4) of the same variant, and says so.
PSD_FINDING_MAX_DT = 512


def _sym_min_eigenvalue(B: np.ndarray, seen: dict, compiled: bool = False) -> float:
    """The smallest eigenvalue of B's symmetric part S = (B + B^T) / 2 (what eigvalsh of S gives, up to
    its rounding), computed on the rows where S differs from the identity: a row (and, S being symmetric, its
    column) equal to e_u is an eigenvector of eigenvalue 1 decoupled from the rest, so the spectrum
    of S is that of S[U, U] (U: the other rows) plus 1 for each such row. ``seen`` memoises S[U, U]
    by value (the paper layout's layers repeat the same few code entries). ``compiled``: the rows U
    from one compiled pass over B (a sparse float64 run's; the same rows)."""
    n = B.shape[0]
    from ..engine import kernels

    if compiled and kernels.enabled() and B.dtype == np.float64:  # the same rows, one pass (no S, no copy)
        B = np.ascontiguousarray(B)
        mark = np.empty(n, dtype=np.uint8)
        kernels.kernel("sym_rows_off_identity")(B, mark)
        U = np.flatnonzero(mark)
        if U.size == 0:
            return 1.0
        Bu = B[np.ix_(U, U)]
        sub = np.ascontiguousarray((Bu + Bu.T) / 2)
    else:
        S = (B + B.T) / 2
        off = S.copy()
        off[np.diag_indices(n)] -= 1.0
        U = np.flatnonzero(np.any(off != 0, axis=1))
        if U.size == 0:
            return 1.0
        sub = np.ascontiguousarray(S[np.ix_(U, U)])
    key = (U.size, sub.tobytes())
    if key not in seen:
        seen[key] = float(np.linalg.eigvalsh(sub).min())
    return seen[key] if U.size == n else min(seen[key], 1.0)


def _min_sym_eigenvalue_over_layers(con) -> float:
    """min over i = 1..N of the smallest eigenvalue of sym(B_i), one B_i at a time (nothing kept: at
    J = L = 128 the N = 16,386 dense 256 x 256 B_i would be 8.6 GB)."""
    from ..engine import kernels
    from ..engine.step import layers_of

    seen: dict = {}
    compiled = kernels.usable(layers_of(con))  # a dense run never loads Numba
    return min(_sym_min_eigenvalue(np.asarray(con.B(k), dtype=float), seen, compiled) for k in range(1, con.N + 1))


@finding("psd-implication",
         condition="always (a property of the argument)")
def psd_implication(ctx, samples) -> Outcome:
    if ctx.blocks.dt > PSD_FINDING_MAX_DT:
        from .base import Context

        small = build(ctx.design.with_(N=6, J=4, L=4, dx=1, layout="compact"), engine="dense")
        out = psd_implication(Context(small), samples)
        out.counterexample["shown_on"] = (f"N = 6, J = L = 4 (the run's top block is {ctx.blocks.dt} wide; "
                                          f"the gap is a property of the argument, not of the size)")
        return out
    con, b = ctx.con, ctx.blocks
    i = next((i for i in range(2, con.N) if np.any(np.asarray(con.G[i - 1]) != 0)), 2)
    Binv = np.linalg.inv(ctx.B(i))
    M = Binv.T @ Binv  # symmetric positive definite: B_i is invertible
    eig = np.linalg.eigvalsh(M)
    p, q = np.unravel_index(int(np.argmin(M)), M.shape)
    u = np.zeros(b.dt)
    u[q] = 1.0
    Mu = M @ u
    # the slides' B_jl = [[E_jj, E_jl], [E_lj, 0]] + eps I for cell (0, 0)
    Bs = np.zeros((b.dt, b.dt))
    Bs[0, 0] = 1.0
    Bs[0, b.cells_x] = 1.0
    Bs[b.cells_x, 0] = 1.0
    Bs += ctx.design.eps * np.eye(b.dt)
    slides_eig = float(np.linalg.eigvalsh((Bs + Bs.T) / 2).min())
    own = _min_sym_eigenvalue_over_layers(con)
    demonstrated = eig.min() > 0 and Mu.min() < 0
    return Outcome(bool(demonstrated),
        {"matrix": f"M = B_{i}^-T B_{i}^-1 ({b.dt}x{b.dt}, symmetric)",
         "min_eigenvalue_M": float(eig.min()), "u": f"unit vector e_{q} (>= 0)",
         "min_entry_Mu": float(Mu.min()), "negative_entry_index": int(p),
         "M_entries": M, "u_vector": u, "Mu_vector": Mu,
         "slides_B00_min_eigenvalue": slides_eig,
         "construction_B_i_sym_part_min_eigenvalue": own},
        "A symmetric positive definite matrix can map a non-negative vector to one with a negative "
        "entry, so PSD products do not keep ReLU inputs non-negative. The slides' B_jl is not even "
        "PSD. The construction works because every top product B_i and every phi~ is entrywise >= 0.",
        f"M = B_{i}^-T B_{i}^-1 has min eigenvalue {eig.min():.3g} > 0, yet M e_{q} has entry "
        f"{Mu.min():.3g} < 0; slides' B_00 min eigenvalue {slides_eig:.3g}")


def _gradient_max_and_any(st) -> tuple[float, bool]:
    """(Step.grad_max_abs(), Step.has_gradient()) of a one-shot step in one traversal of its gradient
    factors (checkpointed: each segment of the passes recomputed once instead of twice)."""
    from ..engine.checkpoint import segments
    from ..engine.step import factor_max

    if st.K != 1:
        return st.grad_max_abs(), st.has_gradient()
    gmax, has = 0.0, False
    for _, _, (Dm, Hm) in segments(st.W_post.Dfac, st.W_post.Hfac):
        d, h = Dm[:, :, 0], Hm[:, :, 0]
        if d.shape[1]:
            gmax = max(gmax, factor_max(d, h))
        has = has or bool(np.any(np.any(d != 0, axis=1) & np.any(h != 0, axis=1)))
    return gmax, has


@finding("zero-label",
         condition="e_check(y) = 0, e.g. y = 0")
def zero_label(ctx, samples) -> Outcome:
    d = _isolated(ctx)
    con = _build_or_reuse(ctx, d)
    x, xs, _ = _reference(ctx, samples)
    x2 = cell_center((con.bin_x(x) + 1) % con.blocks.cells_x, d.J, d.dx)
    xs2 = cell_center((con.bin_star(xs) + 1) % con.blocks.cells_star, d.L, d.dx)
    y0 = con.loss.zero_gradient_label(d.dy)  # MSE: 0; CE: the uniform label 1/C
    # each step is released as soon as the scalars this finding reports are read from it: one lone
    # step alive at a time (at J = L = 128 a checkpointed lone step holds about 0.8 GB)
    st1 = one_step(con, x, y0, xs)
    theta1, out1 = st1.theta_b_post, st1.out_star_post
    grad1, has1 = _gradient_max_and_any(st1)
    del st1
    out2 = one_step(con, x2, y0, xs2).out_star_post
    demonstrated = (theta1 == 0 and not has1 and out1.branch == out2.branch
                    and np.array_equal(out1.yhat, out2.yhat))
    ce = {"y": y0, "pairs": [[x, xs], [x2, xs2]], "max_abs_gradient": grad1,
          "theta_b_post": theta1, "outputs": [out1.yhat, out2.yhat],
          "branch_after": out1.branch}
    y_null = con.loss.e_check_null_label(d.dy)  # MSE: (1, -1, 0, ...); None where there is none
    if y_null is not None:
        theta3 = one_step(con, x, y_null, xs).theta_b_post
        ce["nonzero_label_in_kernel_of_e_check"] = {"y": y_null, "theta_b_post": theta3}
        demonstrated = demonstrated and theta3 == 0
    return Outcome(bool(demonstrated), ce,
        "With MSE at yhat = 0 the error is -y: for y = 0 nothing moves, theta_b' = 0, the switch does not "
        "flip and the post-step output is the same for every (x, x*). More generally theta_b' is "
        "proportional to e_check(y) = sum(y), so any label with sum 0 leaves the switch off.",
        f"y = {_fmt(y0)}: max|grad| = {grad1:.3g}, theta_b' = {theta1:.3g}, the same "
        f"output {_fmt(out1.yhat)} for two different (x, x*)")


@finding("depth-jl",
         condition="paper layout with N = J*L")
def depth_jl(ctx, samples) -> Outcome:
    shown = _shown_small(ctx, samples, depth_jl)
    if shown is not None:
        return shown
    d = _isolated(ctx)
    J, L = d.J, d.L
    note = ""
    while True:
        cells = J**d.dx * L**d.dx
        D = cells + (cells - 2) * (2 if d.variant == "signed" else 1) * d.dy + 1
        need = dense_run_bytes(cells, D) if ctx.engine == "dense" else 64 * (cells + 2) * (D + 2) * 8
        if need <= FINDING_MEMORY_BYTES or (J == 2 and L == 2):
            break
        J, L = max(2, J // 2), max(2, L // 2)
        note = (f"shown on the {J}x{L} grid (the requested one would need more than "
                f"{format_bytes(FINDING_MEMORY_BYTES)})")
    cells = J**d.dx * L**d.dx
    if cells < 3:
        return Outcome(False,
                       {"J": J, "L": L, "reason": "J*L < 3: a depth-J*L network has no code layer"},
                       "Not applicable to these sizes.", "not applicable: J*L < 3")
    short = build(d.with_(N=cells, J=J, L=L, layout="truncated"), engine=ctx.engine)
    b = short.blocks
    uncovered = [(c % b.cells_x, c // b.cells_x) for c in range(b.m, cells)]
    j, l = uncovered[-1]
    x, xs = cell_center(j, J, d.dx), cell_center(l, L, d.dx)
    y1 = _kept_sign(d.alpha, np.full(d.dy, 1.0))
    y2 = _kept_sign(d.alpha, np.full(d.dy, 2.5))
    if short.loss.domain == "simplex":  # CE: two different one-hot labels
        y1, y2 = np.eye(d.dy)[0], np.eye(d.dy)[1]
    s1, s2 = one_step(short, x, y1, xs), one_step(short, x, y2, xs)
    z1, z2 = s1.z_star[b.mid], s2.z_star[b.mid]
    full_design = d.with_(N=cells + 2, J=J, L=L, layout="paper")
    # the run's own construction when it is that network (the paper layout, r != 0): not built twice
    full = _build_or_reuse(ctx, full_design)
    f1 = one_step(full, x, y1, xs)
    dec = decode(full, f1.z_star[full.blocks.mid], d.alpha)
    demonstrated = not np.any(z1) and not np.any(z2) and (dec.cell_x, dec.cell_star) == (j, l)
    return Outcome(bool(demonstrated),
        {"N": cells, "J": J, "L": L, "cells_without_a_layer": uncovered, "x": x, "x_star": xs,
         "labels": [y1, y2], "max_abs_zbar_star": [max_abs(z1), max_abs(z2)],
         "with_N_plus_2": {"N": cells + 2, "decoded_cell": [dec.cell_x, dec.cell_star], "decoded_y": dec.y},
         "note": note},
        "Layer 1 has A_1 = I and layer N has B_N = I forced (empty products), so k_N = 0 and A_1 cannot "
        "select a channel: only N - 2 layers can answer for a cell. With N = J*L two cells get no layer; "
        "for x, x* in such a cell zbar* = 0 whatever the label, so different labels give the same "
        "post-update network. N = J*L + 2 covers every cell.",
        f"N = {cells}: cells {uncovered} get no layer; labels {_fmt(y1)} and {_fmt(y2)} both give "
        f"zbar* = 0; N = {cells + 2} decodes cell {(dec.cell_x, dec.cell_star)}")
