"""Section 6: does the loss's gradient at yhat = 0 carry the label? (Theorems 6.1, 6.2, negative cases)

``loss-recovers-label`` is checked twice, independently:

* by execution: the error reaching z at the pre-update point, computed through the real forward
  pass, the real g_pre head W_g and the loss's real gradient (``loss.grad``), for many labels of the
  loss's domain: linear on the domain, injective on the domain, and a search for two different
  labels with the same error. A collision is then replayed as two real one-shot steps, which give
  the same post-update network (the live counterexample).
* exactly: the loss's formula (written again in reference/lossdiff.py, apart from losses.py)
  differentiated at yhat = 0 by forward-mode AD in rational arithmetic, at the unit labels and a set
  of probe labels (Theorem 6.1: MSE gives -y, linear and invertible; Theorem 6.2: softmax CE gives
  ((1/C) 1 1^T - I) y on R^C, = 1/C - y on the simplex, whose matrix is singular; L1, hinge, Huber:
  exact collisions). Linearity is checked on the probes (g(y) = M y exactly), not proved for every
  label; :func:`symbolic_gradient_map` is the SymPy proof over all labels, kept off the default path
  (tests compare the two). An evaluation that leaves the rationals -> UNDECIDED.

The label domain is the loss's (``loss.domain``): R^dy, or the probability simplex for CE, where
"invertible" in Theorem 6.2 can only mean injective on the simplex.

References in the claims' docstrings: [1] Finn & Levine, "Meta-Learning and Universality", ICLR 2018;
[2] spec/construction.md.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from ..engine.step import forward, single_step as one_step
from ..reference import lossdiff
from .base import Check, Verdict, claim, decide_nonzero, max_abs, worst
from .executed import error_at_z

# Probe values for the collision search along one label component (real-label losses).
PROBES = (0.05, 0.5, 1.0, 1.5, 2.0, 3.0, 7.0)
SYMBOLIC_MAX_DIM = 3  # the exact check uses min(dy, this) label components (cost grows fast)


def _E(con, z, y) -> np.ndarray:
    """[e_bar; e_check] executed at the pre-update point for label y."""
    b = con.blocks
    e = error_at_z(con, z, y)
    return np.concatenate([e[b.mid], [e[b.bottom]]])


def _probe_labels(loss, dy: int) -> list[np.ndarray]:
    if loss.domain == "simplex":
        eye = np.eye(dy)
        out = [eye[c] for c in range(dy)]
        out += [0.5 * eye[0] + 0.5 * eye[1], 0.25 * eye[0] + 0.75 * eye[dy - 1], 0.9 * eye[1] + 0.1 * eye[0]]
        return out
    base = np.full(dy, 0.3)
    out = []
    for v in PROBES:
        for s in (1.0, -1.0):
            y = base.copy()
            y[0] = s * v
            out.append(y)
    return out


def execute_gradient_map(ctx, z) -> dict:
    """Linearity, injectivity and collisions of the executed label map E(y) = [e_bar; e_check] on the
    loss's domain, on either backend (``ctx.backend``): the images through the real head and the loss's
    own gradient (float: ``loss.grad``; exact: the engine's exact loss gradient, the probe labels as
    exact rationals). The backend supplies the arithmetic: sizes (float: max |.|; exact: the size of a
    nonzero residual, 0 for the zero polynomial), the smallest singular value (exact: 0 below full
    rank), exact equality for the collision search, and a basis of the sum-zero directions (float:
    orthonormal; exact: e_c - e_{c+1}, no square roots)."""
    be, b = ctx.backend, ctx.blocks
    loss, dy = ctx.con.loss, ctx.design.dy

    def E(y):
        e = be.executed_error(ctx, z, y)
        return np.concatenate([e[b.mid], [e[b.bottom]]])

    eye = [be.asarray(np.eye(dy)[d]) for d in range(dy)]
    cols = np.column_stack([E(u) for u in eye])  # images of the unit labels
    probes = [be.asarray(y) for y in _probe_labels(loss, dy)]
    images = [E(y) for y in probes]
    out: dict = {}

    def M_at(y):  # M y, M the images of the unit labels (a sum that needs no zero of the field)
        return sum((cols[:, c] * y[c] for c in range(1, dy)), cols[:, 0] * y[0])

    if loss.domain == "simplex":
        # linear on the simplex: E(y) = M y with M the images of the vertices
        lin = max(be.size(im - M_at(y)) for im, y in zip(images, probes))
        # injective on the simplex: M on the sum-zero directions
        V = be.sum_zero_basis(dy)
        smin = be.min_singular(ctx, cols[:-1] @ V) if dy > 1 else 0.0
        # off the simplex: y and y + 1 (the kernel direction) give the same error
        off = (eye[0], eye[0] + be.scalar(1))
        out.update(linearity_residual_on_simplex=lin, min_singular_on_simplex=smin,
                   value_at_y_0=be.size(E(be.zeros(dy))),
                   min_singular_on_R_C=be.min_singular(ctx, cols[:-1]),
                   off_simplex_pair=[be.record(off[0]), be.record(off[1])],
                   off_simplex_pair_error_difference=be.size(E(off[0]) - E(off[1])))
    else:
        y1, y2 = probes[3], probes[8]
        ca, cb = be.scalar(0.75), be.scalar(-1.25)
        lin = max(be.size(E(ca * y1 + cb * y2) - ca * E(y1) - cb * E(y2)), be.size(E(be.zeros(dy))))
        smin = be.min_singular(ctx, cols[:-1])
        out.update(linearity_residual=lin, min_singular_value=smin)
    collision = None
    for i in range(len(probes)):
        for j in range(i + 1, len(probes)):
            if not be.same(probes[i], probes[j]) and be.same(images[i], images[j]):
                collision = (probes[i], probes[j])
                break
        if collision:
            break
    out["collision"] = collision
    # the rounding magnitude of the images (the exact comparator has no tolerance, so it never asks)
    out["magnitude"] = 0.0 if be.exact else be.size(np.concatenate([np.concatenate(images), cols.reshape(-1)]))
    out["linear"] = lin
    out["smin"] = smin
    return out


def _rank(rows: list[list[Fraction]]) -> int:
    """The rank of a matrix of Fractions by exact Gaussian elimination."""
    m = [list(r) for r in rows]
    rank, cols = 0, len(m[0]) if m else 0
    for c in range(cols):
        piv = next((i for i in range(rank, len(m)) if m[i][c] != 0), None)
        if piv is None:
            continue
        m[rank], m[piv] = m[piv], m[rank]
        for i in range(len(m)):
            if i != rank and m[i][c] != 0:
                f = m[i][c] / m[rank][c]
                m[i] = [a - f * b for a, b in zip(m[i], m[rank])]
        rank += 1
    return rank


def _det(rows: list[list[Fraction]]) -> Fraction:
    m = [list(r) for r in rows]
    n, det = len(m), Fraction(1)
    for c in range(n):
        piv = next((i for i in range(c, n) if m[i][c] != 0), None)
        if piv is None:
            return Fraction(0)
        if piv != c:
            m[c], m[piv] = m[piv], m[c]
            det = -det
        det *= m[c][c]
        for i in range(c + 1, n):
            f = m[i][c] / m[c][c]
            if f:
                m[i] = [a - f * b for a, b in zip(m[i], m[c])]
    return det


def _fmt(v) -> str:
    return "[" + ", ".join(str(x) for x in v) + "]"


def _exact_probe_labels(domain: str, C: int) -> list[list[Fraction]]:
    """The probe labels as exact rationals: the unit labels, the collision probes along y_0 (others
    3/10), a few mixed combinations; for the simplex, its vertices and mixtures."""
    F = Fraction
    eye = [[F(int(r == c)) for c in range(C)] for r in range(C)]
    if domain == "simplex":
        out = [list(e) for e in eye]
        mix = [(F(1, 2), 0, F(1, 2), 1), (F(1, 4), 0, F(3, 4), C - 1), (F(9, 10), 1, F(1, 10), 0)]
        for a, i, b, j in mix:
            out.append([a * eye[i][c] + b * eye[j][c] for c in range(C)])
        out.append([F(1, C)] * C)
        return out
    out = []
    for v in PROBES:
        for s in (1, -1):
            y = [F(3, 10)] * C
            y[0] = s * F(str(v))
            out.append(y)
    y1, y2 = out[3], out[8]
    out.append([F(3, 4) * a - F(5, 4) * b for a, b in zip(y1, y2)])
    out.append([F(c + 1, 3) * (-1) ** c for c in range(C)])
    return out


def exact_gradient_map(loss, dy: int) -> dict:
    """grad_yhat l(y, 0) in exact rational arithmetic (reference/lossdiff.py: forward-mode AD of the
    loss's formula) at the unit labels and the probe labels: linear (g(0) = 0 and g(y) = M y on every
    probe, M = the images of the unit labels), injective (det M != 0; on the simplex: rank C - 1 on the
    sum-zero directions), and an exact collision search. A value that is not an exact rational (an
    operation left the rationals) makes the verdicts None (UNDECIDED)."""
    return dict(_exact_map(loss, dy))


@functools.lru_cache(maxsize=None)
def _exact_map(loss, C: int) -> dict:
    F = Fraction
    exact_all = True

    def g(y):
        nonlocal exact_all
        v, ok = lossdiff.exact_gradient_at_zero(loss, y)
        exact_all = exact_all and ok
        return v

    eye = [[F(int(r == c)) for c in range(C)] for r in range(C)]
    cols = [g(e) for e in eye]
    M = [[cols[c][r] for c in range(C)] for r in range(C)]  # M[r][c] = g(e_c)_r
    g0 = g([F(0)] * C)
    probes = _exact_probe_labels(loss.domain, C)
    images = [g(y) for y in probes]
    My = lambda y: [sum((M[r][c] * y[c] for c in range(C)), F(0)) for r in range(C)]  # noqa: E731
    on_probes = all(im == My(y) for im, y in zip(images, probes))
    out: dict = {"dims": C, "grad_at_0_of_unit_labels": [_fmt(c) for c in cols], "value_at_0": _fmt(g0),
                 "probe_labels": len(probes)}
    det = _det(M)
    if loss.domain == "simplex":
        reals = _exact_probe_labels("real", C)
        linear_on_R = g0 == [0] * C and all(g(y) == My(y) for y in reals)
        textbook = all(im == [F(1, C) - v for v in y] for im, y in zip(images, probes))
        V = [[F(1 if r == c else (-1 if r == c + 1 else 0)) for c in range(C - 1)] for r in range(C)]
        MV = [[sum((M[r][k] * V[k][c] for k in range(C)), F(0)) for c in range(C - 1)] for r in range(C)]
        out.update(jacobian=[[str(v) for v in row] for row in M], linear_on_R_C=linear_on_R,
                   equals_softmax_minus_y_on_simplex=textbook, det_jacobian=str(det), det_is_zero=det == 0,
                   rank=_rank(M), kernel_contains_ones=all(sum(row) == 0 for row in M),
                   rank_on_sum_zero_directions=_rank(MV) if C > 1 else 0)
        out["linear_on_domain"] = bool(on_probes and textbook)
        out["injective_on_domain"] = out["rank_on_sum_zero_directions"] == C - 1
        out["collision"] = None
    else:
        linear = bool(on_probes and g0 == [0] * C)
        out["det_jacobian"] = str(det)
        out["linear_on_domain"] = linear
        out["injective_on_domain"] = bool(linear and det != 0)
        collision = None
        for i in range(len(probes)):
            for j in range(i + 1, len(probes)):
                if probes[i] != probes[j] and images[i] == images[j]:
                    collision = (str(probes[i][0]), str(probes[j][0]), _fmt(images[i]))
                    break
            if collision:
                break
        out["collision"] = collision
        if loss.name == "hinge":  # what the margin formula max(0, 1 - y yhat) would give fed a real label
            margin = [lossdiff.differentiate_margin_hinge(y) for y in probes]
            out["margin_hinge_with_real_label_grad_at_0"] = (
                "-y" if all(m == [-v for v in y] for m, y in zip(margin, probes)) else str(margin[0]))
    if not exact_all:
        out["linear_on_domain"] = out["injective_on_domain"] = None
        out["not_exact"] = "an evaluation left the rationals"
    return out


def symbolic_gradient_map(loss, dy: int) -> dict:
    """Exact SymPy gradient of the loss at yhat = 0 and what it says about linearity/invertibility
    (a proof over all labels, for dy <= SYMBOLIC_MAX_DIM; not on the claim's path, which uses
    :func:`exact_gradient_map`; tests cross-check the two)."""
    return dict(_symbolic(loss, min(dy, SYMBOLIC_MAX_DIM)))


@functools.lru_cache(maxsize=None)
def _symbolic(loss, C: int) -> dict:
    import sympy as sp

    ys = sp.symbols(f"y0:{C}", real=True)
    yh = sp.symbols(f"yh0:{C}", real=True)
    ell = loss.sympy_value(list(ys), list(yh))
    g = sp.Matrix([sp.diff(ell, v) for v in yh]).subs({v: 0 for v in yh})
    g = sp.simplify(g)
    out = {"dims": C, "grad_at_0": str(list(g))}
    if loss.domain == "simplex":
        J = g.jacobian(ys)
        g0 = g.subs({v: 0 for v in ys})
        const = not any(J.has(v) for v in ys)
        linear_on_R = bool(const and g0 == sp.zeros(C, 1))
        ones = sp.ones(C, 1)
        # the textbook form softmax(0) - y = 1/C - y is affine; it agrees with g on sum(y) = 1
        textbook = sp.Matrix([sp.Rational(1, C) - v for v in ys])
        agrees = sp.simplify((g - textbook).subs(ys[-1], 1 - sum(ys[:-1]))) == sp.zeros(C, 1)
        det = sp.simplify(J.det())
        V = sp.Matrix([[1 if r == c else (-1 if r == c + 1 else 0) for c in range(C - 1)] for r in range(C)])
        out.update(jacobian=str(J.tolist()), jacobian_constant=const, value_at_0=str(list(g0)),
                   linear_on_R_C=linear_on_R, equals_softmax_minus_y_on_simplex=agrees,
                   det_jacobian=str(det), det_is_zero=det.is_zero, rank=J.rank(),
                   kernel_contains_ones=sp.simplify(J * ones) == sp.zeros(C, 1),
                   rank_on_sum_zero_directions=(J * V).rank())
        out["linear_on_domain"] = bool(linear_on_R and agrees)
        out["injective_on_domain"] = (None if det.is_zero is None
                                      else out["rank_on_sum_zero_directions"] == C - 1)
        out["collision"] = None
        return out
    g0 = g.subs({v: 0 for v in ys})
    try:
        J = g.jacobian(ys)
        const = not any(J.has(v) for v in ys) and not J.has(sp.DiracDelta)
    except Exception:  # noqa: BLE001 - a derivative SymPy cannot take counts as "not linear"
        J, const = None, False
    linear = bool(const and g0 == sp.zeros(C, 1))
    out["jacobian_constant"] = const
    out["value_at_0"] = str(list(g0))
    if linear:
        det = sp.simplify(J.det())
        out["det_jacobian"] = str(det)
        out["injective_on_domain"] = None if det.is_zero is None else (not det.is_zero)
    else:
        out["injective_on_domain"] = False
    out["linear_on_domain"] = linear
    # exact collision search along the first component (others fixed at 3/10)
    collision = None
    vals = [sp.Rational(str(v)) * s for v in PROBES for s in (1, -1)]
    rest = {v: sp.Rational(3, 10) for v in ys[1:]}
    imgs = [(v, g.subs({ys[0]: v, **rest})) for v in vals]
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            if imgs[i][1] == imgs[j][1]:
                collision = (str(imgs[i][0]), str(imgs[j][0]), str(list(imgs[i][1])))
                break
        if collision:
            break
    out["collision"] = collision
    if loss.name == "hinge":  # what the margin formula would give if fed the real label directly
        y, h = sp.symbols("y yhat", real=True)
        out["margin_hinge_with_real_label_grad_at_0"] = str(sp.diff(sp.Max(0, 1 - y * h), h).subs(h, 0))
    return out


def _tri(v) -> Verdict:
    return Verdict.UNDECIDED if v is None else (Verdict.PASS if v else Verdict.FAIL)


@claim("loss-recovers-label", scope="construction",
       method="executed: the error at z through the real forward pass, W_g and loss.grad for many "
              "labels (linearity, injectivity, collision search; a collision is replayed as two real "
              "steps); exact: the derivative of the loss's formula at yhat = 0 by forward-mode AD in "
              "rational arithmetic (reference/lossdiff.py) at the unit and probe labels: g(0) = 0, "
              "g(y) = M y on every probe, det M (rank on the simplex), collision search")
def loss_recovers_label(ctx) -> Check:
    """[1, Sec. 6, Thms 6.1-6.2]: grad_yhat l(y, 0) recovers the label: linear and injective on the
    label domain (MSE: R^dy; CE: the simplex).

    Executed: the error at z through W_g and ``loss.grad`` for many labels (a collision is replayed as
    two real steps). Claimed: linear and injective; the loss's formula differentiated exactly (forward-
    mode AD in rationals, reference/lossdiff.py) at the unit and probe labels."""
    be = ctx.backend
    con, d = ctx.con, ctx.design
    loss = con.loss
    x = (0.3,) * d.dx
    z = forward(con.W, con.phi(x, con.theta_b)).z
    num = execute_gradient_map(ctx, z)
    tol = be.tol(ctx, lambda: max(num["magnitude"], 1.0) * 4)
    sym = exact_gradient_map(loss, d.dy)
    computed = {"executed": {k: v for k, v in num.items() if k not in ("linear", "smin", "magnitude")},
                "exact": sym}
    domain = "the simplex" if loss.domain == "simplex" else f"R^{d.dy}"
    claimed = f"linear and injective on {domain}"
    notes = []
    if num["collision"] is not None:
        ya, yb = num["collision"]
        xs = (0.7,) * d.dx
        sa, sb = one_step(con, x, ya, xs), one_step(con, x, yb, xs)
        c = be.steps_equal(ctx, sa, sb, lambda: 0.0, what="theta'(y_a) - theta'(y_b)")
        same = c.computed is True
        wdiff = c.residual
        computed["counterexample"] = {"y_a": be.record(ya), "y_b": be.record(yb), "same_post_update_network": same,
                                      "theta_b_post": be.record([sa.theta_b_post, sb.theta_b_post]),
                                      "max_abs_W_post_difference": wdiff}
        notes.append(f"labels {be.short(ya)} and {be.short(yb)} give the same gradient and the same "
                     f"post-update network (max|W'_a - W'_b| = {wdiff:.3g})")
        num_v = Verdict.FAIL
        res = math.inf
    else:
        num_v = worst(Verdict.PASS if num["linear"] <= tol else Verdict.FAIL, decide_nonzero(num["smin"], tol))
        res = num["linear"]
    sym_v = worst(_tri(sym.get("linear_on_domain")), _tri(sym.get("injective_on_domain")))
    if sym.get("collision"):
        sym_v = Verdict.FAIL
        notes.append(f"exact: y0 = {sym['collision'][0]} and {sym['collision'][1]} both give "
                     f"{sym['collision'][2]}")
    if loss.domain == "simplex":
        notes.append(f"gradient at 0 (exact rationals, C = {sym['dims']}) = {sym.get('jacobian')} y, the matrix "
                     f"(1/C)11^T - I, det {sym.get('det_jacobian')}, rank {sym.get('rank')}: singular on all "
                     f"of R^C, so 'invertible' (Thm 6.2) holds only on the simplex, where it is injective "
                     f"(rank {sym.get('rank_on_sum_zero_directions')} on the sum-zero directions) and equals "
                     f"softmax(0) - y = 1/C - y. Executed: smallest singular value {num['min_singular_on_R_C']:.2g} "
                     f"on R^C, {num['smin']:.3g} on the simplex; y = e_0 and e_0 + 1 give errors differing by "
                     f"{num['off_simplex_pair_error_difference']:.2g}")
    if "margin_hinge_with_real_label_grad_at_0" in sym:
        notes.append("hinge sees only the class sign(y); fed a real y directly, max(0, 1 - y yhat) would "
                     f"have gradient {sym['margin_hinge_with_real_label_grad_at_0']} at 0 (exact, on every probe)")
    verdict = worst(num_v, sym_v)
    if verdict == Verdict.PASS and not notes:
        notes.append(f"linear and injective on {domain} (executed, and exactly in rationals on "
                     f"{sym['probe_labels']} probe labels)")
    return Check(computed, claimed, res, tol, verdict, "; ".join(notes))


def simplex_e_linear(ctx, s, st) -> Check:
    """e-linear for a simplex-label loss (CE): linear and injective on the simplex, theta_b' != 0.

    The error at z is linear on R^C but singular (kernel span(1)); injectivity is checked on the
    sum-zero directions, i.e. on the simplex. Linearity on the sample's label, vertices and mixtures.
    """
    con, b = ctx.con, ctx.blocks
    z = st.fwd_x.z
    num = execute_gradient_map(ctx, z)
    y = np.asarray(s.y, dtype=float)
    eye = np.eye(b.dy)
    cols = np.column_stack([_E(con, z, eye[c]) for c in range(b.dy)])
    lin_sample = max_abs(_E(con, z, y) - cols @ y)
    lin = max(num["linear"], lin_sample)
    tol = ctx.tol(max(num["magnitude"], 1.0) * 4)
    tb = abs(st.theta_b_post)
    g_abs = np.abs(st.e)
    for k in range(ctx.N):
        g_abs = ctx.layers.abs_apply_T(k, g_abs * max(st.r, 1.0))
    tb_tol = ctx.tol(abs(st.alpha) * float(g_abs[b.bottom]))
    v = worst(Verdict.PASS if lin <= tol else Verdict.FAIL, decide_nonzero(num["smin"], tol),
              decide_nonzero(tb, tb_tol))
    note = (f"simplex labels: linear, singular on R^C (smallest singular value "
            f"{num['min_singular_on_R_C']:.2g}), injective on the simplex ({num['smin']:.3g})")
    if v != Verdict.PASS:
        note = ("theta_b' = 0: the switch does not flip" if tb == 0 else
                f"linearity residual on the simplex {lin:.3g}, smallest singular value {num['smin']:.3g}")
    return Check({"linearity_residual_on_simplex": lin, "value_at_zero": num["value_at_y_0"],
                  "min_singular_value_on_simplex": num["smin"], "theta_b_post": st.theta_b_post},
                 "linear and injective on the simplex, theta_b' != 0", lin, tol, v, note)

