"""Build a report's context from a :class:`~universality.verify.Report` and render it with Jinja2.

The context is plain data (strings, numbers, lists, dicts). The HTML template autoescapes it; the
LaTeX template escapes every printed value (latex.finalize). LaTeX that we wrote ourselves (the
blueprint's statements, matrices built from numbers) passes through the ``tex`` filter (HTML: the
``math`` filter, pre-rendered SVG).
"""
from __future__ import annotations

import base64
import datetime as _dt
import math
import os
import platform
import shlex
from importlib import metadata

import numpy as np

from .. import __version__
from ..blueprint import load as load_blueprint
from . import graph as _graph
from . import latex as _latex
from . import plots as _plots
from . import typeset as _ts

MAX_MATRIX = 12  # rows / columns shown before eliding


def fmt(x) -> str:
    """A number for people: 4 significant digits, exact 0 as 0."""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    return f"{x:.4g}"


def elide(M, limit: int = MAX_MATRIX) -> list[list[str]]:
    """Rows of formatted entries; beyond ``limit`` rows/columns keep the first and last few and put
    ⋮ / ⋯ / ⋱ where entries were left out."""
    A = np.atleast_2d(np.asarray(M, dtype=float))
    r, c = A.shape

    def pick(n):
        if n <= limit:
            return list(range(n)), None
        head = limit - 3
        return list(range(head)) + list(range(n - 2, n)), head

    rows, rcut = pick(r)
    cols, ccut = pick(c)
    out = []
    for ri, i in enumerate(rows):
        if rcut is not None and ri == rcut:
            out.append(["⋮" if cj != ccut else "⋱" for cj in range(len(cols) + (ccut is not None))])
        row = []
        for cj, j in enumerate(cols):
            if ccut is not None and cj == ccut:
                row.append("⋯")
            row.append(fmt(A[i, j]))
        out.append(row)
    return out


def _num(x) -> str:
    return "$" + _latex.num(x) + "$"


def _leaf(v, limit: int = 12) -> str:
    """A value of a computed record as mixed text (numbers, vectors and matrices typeset)."""
    if v is None:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer, float, np.floating)):
        return _num(v)
    if isinstance(v, str):
        return _ts.prose(v)
    if isinstance(v, dict):
        return "; ".join(f"{_ts.key(k)}: {_leaf(t, limit)}" for k, t in list(v.items())[:limit])
    try:
        arr = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        items = list(v)
        more = f", … ({len(items)} entries)" if len(items) > limit else ""
        return "(" + ", ".join(_leaf(t, limit) for t in items[:limit]) + ")" + more
    if arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim == 2 and arr.size > 1:
        return "$" + _latex.matrix(elide(arr, limit)) + "$"
    flat = arr.reshape(-1)
    if flat.size == 1:
        return _num(flat[0])
    shown = r",\ ".join(_latex.num(t) for t in flat[:limit])
    more = r",\ \ldots" if flat.size > limit else ""
    note = f" ({flat.size} entries)" if flat.size > limit else ""
    return f"$({shown}{more})$" + note


def tree(value, limit: int = 12) -> list[dict]:
    """A nested value (counterexample, worst case) as [{key, value, children}] for the templates;
    keys and values are mixed text (``$...$`` typeset)."""
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, dict) and not v):
                continue  # an empty field says nothing
            if isinstance(v, dict):
                out.append({"key": _ts.key(k), "value": None, "children": tree(v, limit)})
            else:
                out.append({"key": _ts.key(k), "value": _leaf(v, limit), "children": []})
        return out
    return [{"key": "", "value": _leaf(value, limit), "children": []}]


def versions() -> list[tuple[str, str]]:
    out = [("universality", __version__), ("python", platform.python_version())]
    for pkg in ("numpy", "sympy", "matplotlib", "jinja2", "rich", "latex2mathml"):
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            out.append((pkg, "not installed"))
    out.append(("graphviz dot", _graph.dot_version() or "not installed"))
    return out


_NOT_REPRODUCED = {"--report", "--format", "--force", "--json", "--export"}


def _extra_options(args: list[str], canonical: list[str]) -> list[str]:
    """Options of the command as run that the canonical form does not spell out (e.g. --target)."""
    have = {a for a in canonical if a.startswith("--")}
    out, keep = [], False
    for a in args:
        if a.startswith("--"):
            name = a.split("=", 1)[0]
            keep = name not in have and name not in _NOT_REPRODUCED
        if keep:
            out.append(a)
    return out


def reproduce_command(cfg, argv: list[str] | None = None) -> str:
    """Every option explicit: the same command gives the same report (up to timestamps)."""
    args = ["verify-construction", "--N", str(cfg.N), "--J", str(cfg.J), "--L", str(cfg.L),
            "--dx", str(cfg.dx), "--dy", str(cfg.dy), "--alpha", repr(cfg.alpha), "--eps", repr(cfg.eps),
            "--variant", cfg.variant, "--layout", cfg.layout,
            "--relu-grad-at-zero", repr(cfg.relu_grad_at_zero), "--samples", str(cfg.samples),
            "--seed", str(cfg.seed)]
    if getattr(cfg, "loss", "mse") != "mse":
        args += ["--loss", cfg.loss]
    if argv:
        args += _extra_options(list(argv), args)
    return shlex.join(args)


def entry_status(entry, claims: dict, findings: dict) -> str:
    """``claims``: id -> list of results (one per backend); the worst decides."""
    if not entry.checker:
        return "NONE"
    if entry.checker_kind == "claim":
        cs = claims.get(entry.checker_id)
        if not cs:
            return "NOT RUN"
        order = {"FAIL": 3, "UNDECIDED": 2, "PASS": 1, "SKIPPED": 0}
        return max((c.verdict.value for c in cs), key=order.__getitem__)
    f = findings.get(entry.checker_id)
    if f is None:
        return "NOT RUN"
    return "SHOWN" if f.demonstrated else "NOT SHOWN"


def _matrices(con) -> list[dict]:
    b, N = con.blocks, con.N
    W = np.asarray(con.W, dtype=float)
    shown = list(range(1, N + 1)) if N <= 6 else [1, 2, 3, N - 1, N]
    out = []
    for i in shown:
        out.append({"name": rf"$\tilde W_{{{i}}}$",
                    "caption": f"top block of layer ${i}$ (${b.dt} \\times {b.dt}$)",
                    "cells": elide(W[i - 1][b.top, b.top])})
    if N > 6:
        out.append({"name": r"$\cdots$", "caption": f"layers $4, \\ldots, {N - 2}$ left out", "cells": []})
    out.append({"name": r"$\mathrm{diag}\,\bar W_i$",
                "caption": f"middle blocks (diagonal), row $i = 1, \\ldots, {N}$, ${b.dm}$ entries each",
                "cells": elide(np.array([np.diag(W[k][b.mid, b.mid]) for k in range(N)]))})
    out.append({"name": r"$\check w_i$", "caption": f"bottom entries, $i = 1, \\ldots, {N}$",
                "cells": elide(W[:, b.bottom, b.bottom][None, :])})
    out.append({"name": r"$\mathrm{diag}\,A_i$",
                "caption": f"the chosen $A_i$ (row $i = 1, \\ldots, {N}$; $A_1 = I$ forced)",
                "cells": elide(np.array([np.asarray(a, dtype=float) for a in con.A]))})
    out.append({"name": "$W_g$", "caption": f"the linear head $g_{{pre}}$ (${con.design.dy} \\times {b.D}$)",
                "cells": elide(np.asarray(con.Wg, dtype=float))})
    return out


# what each claim's two sides are, as formulas: (executed, claimed)
QUANTITIES = {
    "grad-rank-one": (r"\nabla_{W_i}\ell\ \text{(backprop)}", r"r^i \Big(\prod_{j<i} W_j\Big)^T e\,\phi^T \Big(\prod_{j>i} W_j\Big)^T"),
    "update-blocks": (r"W_i' - W_i \ \text{outside the update blocks}", r"0"),
    "second-order-zero": (r"\prod_i W_i'", r"\prod_i W_i - \alpha\sum_i \Big(\prod_{j<i} W_j\Big)\nabla_{W_i}\ell\Big(\prod_{j>i} W_j\Big)"),
    "post-update-eq3": (r"\bar z^\star\ \text{(forward pass after the step)}", r"-\alpha\sum_i A_i\,\bar e(y)\,\tilde\phi(x)^T B_i^T B_i\,\tilde\phi(x^\star;\theta_b')"),
    "z-star-is-minus-alpha-v": (r"\bar z^\star", r"-\alpha\, v(x, x^\star, y)"),
    "kernel-code": (r"\tilde\phi(x)^T B_i^T B_i\,\tilde\phi(x^\star;\theta_b')", r"c_{i-2}(a, b)"),
    "v-decodes": (r"\mathrm{decode}(\bar z^\star)", r"(\mathrm{bin}\,x,\ \mathrm{bin}\,x^\star,\ y)"),
    "boundary": (r"A_1,\ B_N,\ \text{telescoping products}", r"I,\ I,\ A_i / r^i,\ B_i"),
    "nonneg-linear-regime": (r"\text{pre-activations}", r"\geq 0\ \text{(or one sign per coordinate)}"),
    "psd-argument": (r"\min \prod_{i=j}^{N} \tilde W_i", r"\geq 0"),
    "e-linear": (r"e(a y + b y'),\ \theta_b'", r"a\,e(y) + b\,e(y'),\ \neq 0"),
    "multiplexer": (r"\text{branch of } f_{out}", r"g_{pre}\ \text{before},\ h_{post}\ \text{after}"),
    "loss-recovers-label": (r"\nabla_{\hat y}\ell(y, 0)", r"\Lambda y,\ \Lambda\ \text{invertible}"),
    "kshot-eq": (r"\bar z^\star\ \text{(K-shot step)}", r"-\frac{\alpha}{K}\sum_k\sum_i A_i\,\bar e(y_k)\,k_i(x_k, x^\star)"),
    "permutation-invariant": (r"\theta'(\pi(\text{data}))", r"\theta'(\text{data})"),
    "kshot-decodes": (r"\mathrm{decode}(\bar z^\star)", r"\Big(\mathrm{bin}\,x^\star,\ \big(\sum_{k:\,\mathrm{bin}\,x_k = j} y_k\big)_j\Big)"),
    "universal-exact-on-grid": (r"\hat f(x^\star;\theta')", r"f_{target}(x_j, y_g, x^\star_l)"),
    "universal-converges": (r"\mathrm{RMS}\,|\hat f - f_{target}|", r"\downarrow 0"),
}


def _claim_row(c, bp, backend: str) -> dict:
    e = bp.for_checker("claim", c.id)
    executed, claimed = QUANTITIES.get(c.id, (r"\text{executed}", r"\text{claimed}"))
    suffix = "" if backend == "numeric" else "-exact"
    return {
        "id": c.id, "anchor": f"check-claim-{c.id}{suffix}", "backend": backend,
        "title": c.title, "statement": c.statement, "paper_ref": c.paper_ref,
        "method": _ts.prose(c.method), "verdict": c.verdict.value,
        "residual": fmt(c.residual), "tolerance": fmt(c.tolerance),
        "residual_num": float(c.residual), "tolerance_num": float(c.tolerance),
        "checked": c.checked,
        "counts": ", ".join(f"{n} {k}" for k, n in c.counts.items() if n) or "none",
        "worst_case": tree(c.worst_case) if c.worst_case else [],
        "executed_tex": executed, "claimed_tex": claimed,
        "computed": tree(c.computed), "claimed": tree(c.claimed),
        "note": _ts.prose(c.note) if c.note and str(c.note).strip() else "",
        "entry": {"id": e.id, "anchor": e.anchor} if e else None,
    }


def _timings(timings: dict) -> list[tuple[str, str]]:
    out = []
    for k, v in timings.items():
        if isinstance(v, dict):
            out += [(f"{k} {a}", fmt(t)) for a, t in v.items() if not isinstance(t, dict)]
        else:
            out.append((k, fmt(v)))
    return out


def _symbolic(report, bp) -> dict | None:
    sym = getattr(report, "symbolic", None)
    if sym is None:
        return None
    return {
        "note": _ts.prose(sym.note), "instances": sym.instances, "instances_done": sym.instances_done,
        "alpha": sym.alpha, "y": sym.y, "relu": sym.relu, "cut": bool(sym.cut), "passed": bool(sym.passed),
        "claims": [_claim_row(c, bp, "symbolic") for c in sym.claims],
        "schematic": [{"id": s.id, "title": _ts.prose(s.title), "statement": _ts.formula(s.statement),
                       "method": _ts.prose(s.method), "verdict": s.verdict.value,
                       "residual": _ts.prose(str(s.residual)),
                       "note": _ts.prose(s.note) if s.note and str(s.note).strip() else ""}
                      for s in sym.schematic],
    }


def _comparison(report) -> list[dict]:
    sym = getattr(report, "symbolic", None)
    if sym is None or not report.claims:
        return []
    exact = {c.id: c for c in sym.claims}
    rows = []
    for c in report.claims:
        e = exact.get(c.id)
        rows.append({"id": c.id, "numeric": c.verdict.value, "numeric_residual": float(c.residual),
                     "numeric_tolerance": float(c.tolerance),
                     "exact": e.verdict.value if e else "NOT RUN",
                     "exact_residual": float(e.residual) if e else None,
                     "agree": (e is not None and e.verdict == c.verdict)})
    return rows


def _summary(report, claim_rows, sym) -> dict:
    allrows = claim_rows + (sym["claims"] + [dict(s, id=s["id"]) for s in sym["schematic"]] if sym else [])
    bad = [f"{r['id']}{' (exact)' if r.get('backend') == 'symbolic' else ''} {r['verdict']}"
           for r in allrows if r["verdict"] in ("FAIL", "UNDECIDED")]
    if sym and sym["cut"]:
        bad.append("exact run cut at its time budget")
    parts = []
    if claim_rows:
        parts.append(f"{len(claim_rows)} numeric claim{'s' if len(claim_rows) != 1 else ''}")
    if sym:
        parts.append(f"{len(sym['claims'])} exact instance claim{'s' if len(sym['claims']) != 1 else ''}")
        parts.append(f"{len(sym['schematic'])} steps of the schematic all-N proof")
    return {
        "passed": report.passed, "checks": len(allrows), "what": ", ".join(parts) or "no claims",
        "by_verdict": {v: sum(1 for r in allrows if r["verdict"] == v) for v in ("PASS", "FAIL", "UNDECIDED", "SKIPPED")},
        "bad": bad, "findings": len(report.findings),
        "shown": sum(1 for f in report.findings if f.demonstrated),
        "exit_status": 0 if report.passed else 1,
    }


def build_context(report, argv: list[str] | None = None, now: _dt.datetime | None = None,
                  figures: bool = True) -> dict:
    """Everything the templates show, as plain data (figures as PNG bytes; ``figures=False`` skips
    drawing them). Reads results only: the pictures' data comes from ``report.report_data``
    (verify(..., report_data=True)); nothing here executes the network."""
    from ..console import construction_lines

    bp = load_blueprint()
    cfg = report.config
    con = report.con
    data = getattr(report, "report_data", None)
    if figures and data is None:
        from . import ReportError

        raise ReportError("this Report carries no picture data: run verify(..., report_data=True) "
                          "before writing a report")
    claims: dict = {}
    for c in report.claims + (list(report.symbolic.claims) if getattr(report, "symbolic", None) else []):
        claims.setdefault(c.id, []).append(c)
    findings = {f.id: f for f in report.findings}
    if now is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():  # reproducible builds
        now = _dt.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), _dt.timezone.utc)
    now = now or _dt.datetime.now(_dt.timezone.utc)

    entries = []
    status = {}
    for e in bp:
        st = entry_status(e, claims, findings)
        status[e.id] = st
        chk = None
        if e.checker and st != "NOT RUN":
            if e.checker_kind == "claim":
                chk = f"check-claim-{e.checker_id}" + ("" if any(c in report.claims for c in claims[e.checker_id])
                                                        else "-exact")
            else:
                chk = f"check-finding-{e.checker_id}"
        entries.append({
            "id": e.id, "kind": e.kind, "title": e.title, "statement": e.statement,
            "paper_ref": e.paper_ref, "anchor": e.anchor, "explain": e.explain,
            "uses": [{"id": u, "anchor": bp.get(u).anchor} for u in e.uses],
            "used_by": [{"id": u, "anchor": bp.get(u).anchor} for u in bp.used_by(e.id)],
            "checker": e.checker, "checker_anchor": chk,
            "status": st, "status_text": _graph.STATUS_STYLE[st][2],
        })

    claim_rows = [_claim_row(c, bp, "numeric") for c in report.claims]
    finding_rows = []
    for f in report.findings:
        e = bp.for_checker("finding", f.id)
        finding_rows.append({
            "id": f.id, "anchor": f"check-finding-{f.id}", "title": f.title, "paper_ref": f.paper_ref,
            "demonstrated": bool(f.demonstrated), "headline": _ts.prose(f.headline),
            "condition": _ts.prose(f.condition), "explanation": _ts.prose(f.explanation),
            "counterexample": tree(f.counterexample),
            "entry": {"id": e.id, "anchor": e.anchor} if e else None,
        })
    sym = _symbolic(report, bp)

    figs = _figures(report, con, data) if figures else []
    step = data.step if data is not None else None
    ctx = {
        "title": "Proof report: Finn & Levine (ICLR 2018), one MAML step, verified by execution",
        "generated": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": ("verify-construction " + shlex.join(argv)) if argv is not None else None,
        "reproduce": reproduce_command(cfg, argv),
        "seed": cfg.seed,
        "versions": versions(),
        "timings": _timings(report.timings),
        "construction_lines": [_ts.prose(line) for line in construction_lines(report)],
        "construction": [(k, fmt(v) if not isinstance(v, (dict, str)) else
                          (v if isinstance(v, str) else ", ".join(f"{a} {fmt(t)}" for a, t in v.items())))
                         for k, v in report.construction.items() if k != "layout_description"],
        "matrices": _matrices(con),
        "figures": figs,
        "sample": ({"index": step.index, **step.sample.as_dict(), "cell": list(step.cell)}
                   if step is not None else None),
        "claims": claim_rows,
        "symbolic": sym,
        "comparison": _comparison(report),
        "backend": {"ran": getattr(report, "backend", "numeric"), "note": _ts.prose(getattr(report, "backend_note", "") or "")},
        "findings": finding_rows,
        "entries": entries,
        "status": status,
        "legend": [{"status": k, "fill": f, "border": c, "text": t} for k, (f, c, t) in _graph.STATUS_STYLE.items()],
        "summary": _summary(report, claim_rows, sym),
        "dot": _graph.dot_source(bp, status),
        "dot_sections": _graph.section_sources(bp, status),
        "explore": (data.explore if data is not None and data.explore else None),
    }
    return ctx


def _figures(report, con, data) -> list[dict]:
    b = con.blocks
    step = data.step
    d = con.design
    out = [
        {"key": "weights", "file": "figures/weights.png", "png": _plots.weights(step, b),
         "title": "The weight matrices before and after the step",
         "caption": (f"Heatmaps of $W_i$ (top row) and $W_i'$ after one real gradient step on sample "
                     f"${step.index}$ (bottom row), for layers "
                     f"${', '.join(map(str, _plots.layers_shown(con.N)))}$ of ${con.N}$. Black lines "
                     "separate the top, middle and bottom channels.")},
        {"key": "delta", "file": "figures/delta.png", "png": _plots.delta(step, b),
         "title": r"What the step writes: $\Delta W_i = W_i' - W_i$",
         "caption": ("The change of every layer's weights in one real gradient step, on its own colour "
                     "scale per layer. The dashed box is where the paper says the step writes: the "
                     "(middle, top) and (bottom, top) blocks; everything outside it is exactly $0$ "
                     "(claim update-blocks).")},
        {"key": "codes", "file": "figures/codes.png",
         "png": _plots.codes(con.codes, b.cells_x, b.cells_star),
         "title": "The code table $c(j, l)$",
         "caption": (f"{d.layout} layout: cell $(j, l)$ of the ${b.cells_x} \\times {b.cells_star}$ grid "
                     "is written into code channel $c$ with weight $c_c(j, l)$; layer $i = c + 2$ "
                     "carries channel $c$.")},
        {"key": "zbar", "file": "figures/zbar.png",
         "png": _plots.zbar(step, b, d.variant, d.alpha),
         "title": r"$\bar z^\star$ against $-\alpha v$" + (" (a label the ReLUs keep)" if d.variant == "paper" else ""),
         "caption": ("The middle block after the step, from the real forward pass at $x^\\star$, against "
                     f"the paper's $-\\alpha v$ for the same sample (cell ${tuple(step.cell)}$). "
                     + (r"In the signed variant the ReLUs keep $\max(-\alpha v, 0)$ and each $(+, -)$ "
                        r"pair recovers $-\alpha v$." if d.variant == "signed" else ""))},
    ]
    if data.failing is not None:
        f = data.failing
        out.append({
            "key": "zbar-failing", "file": "figures/zbar-failing.png",
            "png": _plots.zbar(f, b, d.variant, d.alpha, failing=True),
            "title": r"Where the paper variant fails: $\alpha y > 0$ and $\bar z^\star = 0 \neq -\alpha v$",
            "caption": (f"Sample ${f.index}$ has $\\alpha y > 0$: every middle pre-activation after the "
                        "step is negative, the ReLUs output $0$ and the label is lost (finding sign-of-y, "
                        "claim z-star-is-minus-alpha-v FAIL). The signed variant stacks $[y;\\ -y]$ so one "
                        "copy of each pair survives.")})
    if data.kshot is not None:
        k = data.kshot
        out.append({
            "key": "kshot", "file": "figures/kshot.png", "png": _plots.kshot(k, b, d.variant),
            "title": rf"The ${len(k.xs)}$ shots' contributions to $\bar z^\star$",
            "caption": (r"Each shot's term $-\frac{\alpha}{K} v(x_k, x^\star, y_k)$ of the paper's K-shot "
                        r"formula (stacked bars) against $\bar z^\star$ from the real K-shot step "
                        r"(markers), on the first task. Shots in different cells write different code "
                        r"channels.")})
    if getattr(report, "universal", None) is not None:
        png = _plots.convergence(report.universal.sweep.as_dict())
        if png:
            out.append({
                "key": "convergence", "file": "figures/convergence.png", "png": png,
                "title": "Universality: error against $f_{target}$ along the sweep",
                "caption": ("The post-update network's error against the requested target "
                            "$f(x, y, x^\\star)$, one real step per test triple, at each grid of the sweep "
                            "(claim universal-converges).")})
    return out


# ---- HTML ----------------------------------------------------------------------------------------
def _html_env():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("universality", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True)


def render_html(ctx: dict) -> str:
    """One self-contained HTML file: CSS inline, figures as data URIs, math as MathML, the graph as
    inline SVG, one small inline script for the explore page; nothing loaded from the network."""
    import json

    from markupsafe import Markup

    env = _html_env()

    def math(tex: str) -> Markup:
        return Markup(_ts.mathml(str(tex), True))

    env.filters["math"] = math
    env.filters["imath"] = lambda tex: Markup(_ts.mathml(str(tex)))
    env.filters["mixed"] = lambda text: Markup(_ts.html(str(text)))
    env.filters["datauri"] = lambda png: "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    env.filters["num"] = lambda x: Markup(_ts.mathml(_latex.num(x)))
    try:
        graph_svg, graph_error = Markup(_graph.inline_svg(ctx["dot"])), None
    except _graph.GraphUnavailable as exc:
        graph_svg, graph_error = None, str(exc)
    explore_json = None
    if ctx.get("explore"):
        explore_json = Markup(json.dumps(ctx["explore"], separators=(",", ":")).replace("</", "<\\/"))
    return env.get_template("report.html.j2").render(**ctx, graph_svg=graph_svg, graph_error=graph_error,
                                                    explore_json=explore_json)


# ---- LaTeX ---------------------------------------------------------------------------------------
def render_tex(ctx: dict, graph_files, graph_error: str | None = None) -> str:
    """``graph_files``: [(section title, PDF file)] of the dependency graph, one landscape page each
    (a single file name is one page for the whole graph)."""
    if isinstance(graph_files, str):
        graph_files = [("The whole argument", graph_files)]
    env = _latex.environment()
    env.filters["tex"] = lambda s: _latex.Tex(s)
    env.filters["mixed"] = lambda s: _latex.Tex(_ts.tex(s))

    def fit(text) -> _latex.Tex:  # a formula alone is shrunk to the line if wider; prose wraps
        parts = _ts.split(str(text))
        if len(parts) == 1 and parts[0][0]:
            return _latex.Tex(r"\fitinline{$" + parts[0][1] + "$}")
        return _latex.Tex(_ts.tex(text))

    env.filters["fit"] = fit
    env.filters["texmatrix"] = lambda cells: _latex.matrix(cells)
    env.filters["texnum"] = lambda x: _latex.num(x)
    env.filters["label"] = lambda s: _latex.Tex(_latex.label(s))
    return env.get_template("report.tex.j2").render(**ctx, graph_files=graph_files or [], graph_error=graph_error)
