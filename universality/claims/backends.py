"""``backends-agree``: the exact and the float64 execution of the same step agree (``--backend both``).

The same engine code (:mod:`universality.engine.step`) runs twice on every sample (and every K-shot
task): on the float64 construction (dense or sparse layers) and on the exact one
(:mod:`universality.engine.exact`: SymPy-built weights in Q(sqrt p), alpha and the label as the exact
rationals of the run's decimals). The exact z-bar-star, theta_b' and every entry of every layer's
gradient, evaluated to 30 digits, must equal the float ones within the float run's forward-error
tolerances (Higham's bound with the operation count of :meth:`Context.tol`, componentwise for z-bar-star,
one tolerance per layer for the gradients).

The two executions share the step's code but not its arithmetic or its weights: the exact weights are
built by the exact field from the design, the float ones by the vectorised float builder, so a wrong
float weight, a float-only shortcut in the engine (a dense or sparse kernel, a cached pass) or an exact
value that is not the float one is caught here.

This claim is built outside the registry (it needs both backends); its text comes from the blueprint.
"""
from __future__ import annotations

import math

import numpy as np

from .base import Check, ClaimSpec, Context, Verdict, aggregate, compare_componentwise, spec_text, worst

METHOD = ("the engine's real step run on the exact backend (weights from the exact builder, alpha and y as "
          "the exact rationals of the run's decimals) and on the float backend, on the same samples and K-shot "
          "tasks; z-bar-star (componentwise), theta_b' and every entry of every layer's gradient (from the "
          "factors, one tolerance per layer) compared, the exact values evaluated to 30 digits, against the "
          "float run's forward-error tolerances")


def _exact_construction(con):
    """The exact construction of the float one's design, as the engine executes it (no symbols)."""
    from ..construction.fields import ExactField
    from ..construction.network import build
    from ..engine.exact import ExactConstruction, exact_ring_for

    sym = build(con.design, ExactField())
    F = exact_ring_for(sym)
    F.set_orthant({})
    return ExactConstruction(sym, F)


def _tolerances(ctx: Context, fs):
    """(theta_b' tolerance, per-layer gradient tolerances (N,)) of the float step ``fs``: the
    absolute-value backward pass from a bound on |dl/dz| (the head's own rounding included)."""
    from ..engine.layers import relu_grad

    layers, N, b = ctx.layers, ctx.N, ctx.blocks
    Wg = np.abs(np.asarray(ctx.con.Wg, dtype=float))
    K = fs.K
    gtol = np.zeros(N)
    tb = 0.0
    for p, e, y in zip(fs.passes, fs.errors, fs.ys):
        g = Wg.T @ (Wg @ np.abs(p.z) + np.abs(np.asarray(y, dtype=float))) + np.abs(e)
        habs = ctx.abs_pass(layers, p.phi)
        for k in range(N):
            d = g * np.abs(relu_grad(p.pre[k], fs.r))
            h = habs[k + 1] if k + 1 < N else np.abs(p.phi)
            gtol[k] += float(d.max(initial=0.0)) * float(h.max(initial=0.0))
            g = layers.abs_apply_T(k, d)
        tb += float(g[b.bottom])
    return ctx.tol(abs(fs.alpha) * tb / K), np.asarray(ctx.tol(gtol / K), dtype=float)


def compare_steps(ctx: Context, fs, es) -> Check:
    """One float step ``fs`` against the exact step ``es`` of the same inputs."""
    F = es.W_post.base.F
    b, N = ctx.blocks, ctx.N
    ev = np.vectorize(lambda v: F.evaluate(v), otypes=[float])
    # z-bar-star, componentwise against the post-step pass's own rounding bound
    z_ex = ev(es.z_star[b.mid])
    z_fl = np.asarray(fs.z_star[b.mid], dtype=float)
    zmag = np.max(ctx.abs_pass(fs.W_post, fs.phi_star_post)[:, b.mid], axis=0)
    zc = compare_componentwise(z_fl, z_ex, ctx.tol(1.0) * zmag)
    # theta_b'
    tb_tol, g_tols = _tolerances(ctx, fs)
    tb_ex = F.evaluate(es.theta_b_post)
    tb_res = abs(float(fs.theta_b_post) - tb_ex)
    # every entry of every layer's gradient (1/K) sum_k d_k h_k^T
    Kf, Ke = fs.W_post.Dfac.shape[2], es.W_post.Dfac.shape[2]
    g_res = np.zeros(N)
    gmax = 0.0
    for k in range(N):
        Gf = (fs.W_post.Dfac[k] @ fs.W_post.Hfac[k].T) / Kf
        Ge = (ev(es.W_post.Dfac[k]) @ ev(es.W_post.Hfac[k]).T) / Ke
        g_res[k] = float(np.max(np.abs(Gf - Ge), initial=0.0))
        gmax = max(gmax, float(np.max(np.abs(Ge), initial=0.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(g_res == 0, 0.0, np.where(g_tols > 0, g_res / np.where(g_tols > 0, g_tols, 1.0), np.inf))
    kw = int(np.argmax(ratios)) if N else 0
    parts = {
        "zbar_star": (zc.residual, zc.tolerance, zc.verdict),
        "theta_b_post": (tb_res, tb_tol, Verdict.PASS if tb_res <= tb_tol else Verdict.FAIL),
        f"grad W_{kw + 1}": (float(g_res[kw]), float(g_tols[kw]),
                             Verdict.PASS if ratios[kw] <= 1 else Verdict.FAIL),
    }
    v = worst(*(p[2] for p in parts.values()))

    def ratio(p):
        return 0.0 if p[0] == 0 else (math.inf if p[1] == 0 else p[0] / p[1])

    what, (res, tol, _) = max(parts.items(), key=lambda kv: ratio(kv[1]))
    bad = [k for k, p in parts.items() if p[2] != Verdict.PASS]
    note = (f"the exact and the float step differ in {', '.join(bad)} beyond rounding" if bad else
            f"z-bar-star, theta_b' and every gradient entry agree within rounding (worst: {what})")
    chk = Check({"zbar_star": zc.residual, "theta_b_post": tb_res, "grad_max_by_layer": float(g_res.max(initial=0.0)),
                 "worst": what},
                {"zbar_star": [float(v) for v in z_ex[:8]], "theta_b_post": tb_ex}, res, tol, v, note)
    if v == Verdict.PASS:
        from ..tolerance import guard

        guarded = {"zbar_star": float(np.max(np.abs(z_ex), initial=0.0)), "theta_b_post": abs(tb_ex)}.get(what, gmax)
        chk = guard(chk, guarded, f"max |{what}|")
    return chk


def backends_agree(con, samples, tasks=None, *, exact=None, h_post=None):
    """The ``backends-agree`` ClaimResult for the float construction ``con`` on ``samples`` (and the
    K-shot ``tasks``). ``exact``: an ExactConstruction to compare with (default: built from
    ``con.design`` by the exact builder)."""
    from ..engine.exact import UndecidedSign
    from ..engine.step import maml_step, single_step

    ec = exact if exact is not None else _exact_construction(con)
    ctx = Context(con)
    checks = []
    items = [({"sample": n, **s.as_dict()}, [s.x], [s.y], s.x_star) for n, s in enumerate(samples)]
    items += [({"task": n, **t.as_dict()}, list(t.xs), list(t.ys), t.x_star) for n, t in enumerate(tasks or [])]
    for where, xs, ys, x_star in items:
        fs = (single_step(con, xs[0], ys[0], x_star, h_post=h_post) if len(xs) == 1
              else maml_step(con, xs, ys, x_star, h_post=h_post))
        try:
            es = maml_step(ec, xs, [list(y) for y in ys], x_star)
        except UndecidedSign as exc:
            checks.append((where, Check("-", "-", math.nan, 0.0, Verdict.UNDECIDED, str(exc))))
            continue
        ctx.step = fs
        checks.append((where, compare_steps(ctx, fs, es)))
        ctx.step = None
    return aggregate(SPEC, checks)


# the claim's record (module level: tests/test_blueprint.py finds claims built outside the registry here)
SPEC = ClaimSpec("backends-agree", **spec_text("claim", "backends-agree"), method=METHOD, scope="sample",
                 func=backends_agree)
