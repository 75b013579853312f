"""The two universality claims (Lemma 4.1 end to end). They run only when a target is requested.

* ``universal-exact-on-grid``: at bin centres and grid labels (|y|_1 >= delta), the full network after
  one real step, f(x*; theta') = f_out(prod W_i' phi(x*; theta_b')) with h_post and the multiplexer
  realised as ReLU networks, equals f_target(x_j, y_g, x*_l) up to rounding (Higham's gamma_n times an
  absolute-value forward pass through the main network and h_post). The step itself is taken
  through the realised f_out: its error at z must equal W_g^T grad l and theta_h must get gradient 0.
* ``universal-converges``: on fixed random test triples, the RMS error against f_target(x, y, x*)
  decreases strictly at every refinement of the sweep (J = L and the y-grid together) until it
  reaches the rounding floor; the fitted rate error ~ h^p is stated.

Not registered in CLAIMS (the default run does not need a target): :func:`judge_universal` judges
a :class:`universality.universal.UniversalResult` handed to it (measured by
:func:`universality.universal.measure_universality`) and returns their :class:`ClaimResult` objects.
"""
from __future__ import annotations

import math

import numpy as np

from .base import SAFETY, Check, ClaimSpec, Verdict, aggregate, gamma, spec_text

def _spec(id: str, method: str, scope: str) -> ClaimSpec:
    """Title, paper reference and statement come from the blueprint (proofs/blueprint.toml)."""
    t = spec_text("claim", id)
    return ClaimSpec(id, t["title"], t["paper_ref"], t["statement"], method, scope, None)


EXACT = _spec(
    "universal-exact-on-grid",
    "real step through the full network (h_post and f_out realised as ReLU networks) at every cell centre "
    "pair and grid label with |y|_1 >= delta (or a seeded sample), vs the target evaluated there",
    "sample")

CONVERGES = _spec(
    "universal-converges",
    "the same random test triples (|y|_1 >= delta) run at each sweep level with one real step each; "
    "strict decrease until the rounding floor; least-squares slope of log RMS against log h",
    "construction")


def exact_on_grid(m) -> list[tuple[dict, Check]]:
    """One check per (centre, grid label) triple from :func:`universality.universal.measure_grid`."""
    out = []
    g = gamma(m.ops)
    for t in range(m.error.size):
        tol = SAFETY * g * float(m.magnitude[t])
        gtol = SAFETY * g * max(1.0, float(np.max(np.abs(m.y[t]))))
        res = float(m.error[t])
        v = Verdict.PASS if res <= tol else Verdict.FAIL
        note = f"branch after the step: {m.branch[t]}"
        if not (math.isfinite(tol) and math.isfinite(res)):
            v, note = Verdict.UNDECIDED, "the error or its tolerance is not a finite float64 number"
        if m.branch[t] != "h_post":
            note = ("zbar* = 0 after the step: the multiplexer answered with g_pre "
                    "(paper variant, -alpha y < 0: the label was clipped)")
        if v != Verdict.UNDECIDED and (m.grad_residual[t] > gtol or m.theta_h_grad[t] != 0):
            v = Verdict.FAIL
            note = (f"the realised f_out changed the step: |e - W_g^T grad| = {m.grad_residual[t]:.3g}, "
                    f"max|grad theta_h| = {m.theta_h_grad[t]:.3g}")
        where = {"x": m.x[t].tolist(), "y": m.y[t].tolist(), "x_star": m.x_star[t].tolist()}
        out.append((where, Check(m.yhat[t].tolist(), m.reference[t].tolist(), res, tol, v, note)))
    return out


def converges(sw) -> Check:
    """From a :class:`universality.universal.SweepResult`."""
    lv = sw.levels
    if len(lv) < 2:
        return Check("-", "-", 0.0, 0.0, Verdict.SKIPPED, "a sweep needs at least two levels")
    rms = [l.rms for l in lv]
    floors = [l.floor for l in lv]
    if not all(math.isfinite(v) for l in lv for v in (l.rms, l.sup, l.floor)):
        return Check({"rms": rms, "J": [l.J for l in lv]}, "decreasing", float("inf"), 0.0, Verdict.UNDECIDED,
                     "an error or its rounding floor is not a finite float64 number: the errors cannot be compared")
    worst_rise, where = 0.0, ""
    for a, b in zip(lv, lv[1:]):
        if a.rms <= a.floor and b.rms <= b.floor:
            continue  # both at rounding level: nothing left to decrease
        if not b.rms < a.rms:
            rise = b.rms - a.rms
            if rise >= worst_rise:
                worst_rise, where = rise, f"J={a.J} -> J={b.J}: RMS {a.rms:.3g} -> {b.rms:.3g}"
    rate = sw.rate_rms
    computed = {"rms": rms, "sup": [l.sup for l in lv], "J": [l.J for l in lv], "grid": [l.grid_size for l in lv],
                "rate_rms": rate, "rate_sup": sw.rate_sup}
    if all(l.rms <= l.floor for l in lv):
        return Check(computed, "decreasing", 0.0, max(floors), Verdict.PASS,
                     "exact at every level (errors at rounding level): the target lies in the network's class")
    collapsed = sum(l.collapsed for l in lv)
    if where:
        note = f"not decreasing at {where}"
        if collapsed:
            note += f"; {collapsed} test runs collapsed to zbar* = 0 (paper variant's sign gap)"
        return Check(computed, "strictly decreasing RMS", max(worst_rise, np.finfo(float).tiny), 0.0,
                     Verdict.FAIL, note)
    if collapsed:
        return Check(computed, "RMS decreasing towards 0", float(max(l.sup_flipped for l in lv)), 0.0,
                     Verdict.FAIL,
                     f"{collapsed} of {sum(l.points for l in lv)} test runs collapsed to zbar* = 0 (the paper "
                     f"variant clips labels with -alpha y < 0): their error does not decrease (sup "
                     + " -> ".join(f"{l.sup_flipped:.3g}" for l in lv) + "), although the RMS does ("
                     + " -> ".join(f"{l.rms:.3g}" for l in lv) + ")")
    rate_txt = f"RMS ~ h^{rate:.2f}" if rate is not None else "rate undefined"
    sup_txt = f", sup ~ h^{sw.rate_sup:.2f}" if sw.rate_sup is not None else ""
    return Check(computed, "strictly decreasing RMS", 0.0, 0.0, Verdict.PASS,
                 f"{rate_txt}{sup_txt} ({sw.variable})")


def judge_universal(res) -> list:
    """Judge a measured :class:`universality.universal.UniversalResult`: [exact-on-grid, converges]."""
    checks = exact_on_grid(res.grid)
    exact = aggregate(EXACT, checks)
    fails = [w for w, c in checks if c.verdict == Verdict.FAIL]
    if fails:
        kinds = {}
        for w, c in checks:
            if c.verdict == Verdict.FAIL:
                s = "y > 0" if w["y"][0] > 0 else "y < 0"
                kinds[s] = kinds.get(s, 0) + 1
        collapsed = sum(b != "h_post" for b in res.grid.branch)
        extra = (f"; {collapsed} collapsed to zbar* = 0 (those that pass have f_target = 0 there)"
                 if collapsed else "")
        exact.note = (f"{len(fails)} of {len(checks)} grid triples fail ("
                      + ", ".join(f"{v} with {k}" for k, v in sorted(kinds.items())) + f"){extra}; worst: "
                      + exact.note)
    conv = aggregate(CONVERGES, [(None, converges(res.sweep))])
    return [exact, conv]


__all__ = ["EXACT", "CONVERGES", "exact_on_grid", "converges", "judge_universal"]
