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


def tree(value, limit: int = 12) -> list[dict]:
    """A nested value (counterexample, worst case) as [{key, value, children}] for the templates."""
    def leaf(v) -> str:
        if isinstance(v, (list, tuple, np.ndarray)):
            items = list(np.asarray(v, dtype=object).reshape(-1)) if isinstance(v, np.ndarray) else list(v)
            shown = ", ".join(leaf(t) for t in items[:limit])
            return "[" + shown + (f", ... ({len(items)} entries)" if len(items) > limit else "") + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {leaf(t)}" for k, t in list(v.items())[:limit]) + "}"
        if isinstance(v, str) or v is None:
            return "-" if v is None else v
        return fmt(v)

    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if isinstance(v, dict):
                out.append({"key": str(k), "value": None, "children": tree(v, limit)})
            else:
                out.append({"key": str(k), "value": leaf(v), "children": []})
        return out
    return [{"key": "", "value": leaf(value), "children": []}]


def versions() -> list[tuple[str, str]]:
    out = [("universality", __version__), ("python", platform.python_version())]
    for pkg in ("numpy", "sympy", "matplotlib", "jinja2", "rich"):
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
    if not entry.checker:
        return "NONE"
    if entry.checker_kind == "claim":
        c = claims.get(entry.checker_id)
        return c.verdict.value if c is not None else "NOT RUN"
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
        out.append({"name": f"W~_{i}", "tex_name": rf"\tilde W_{{{i}}}",
                    "caption": f"top block of layer {i} ({b.dt} x {b.dt})",
                    "cells": elide(W[i - 1][b.top, b.top])})
    if N > 6:
        out.append({"name": "...", "tex_name": r"\cdots", "caption": f"layers 4..{N - 2} left out",
                    "cells": []})
    out.append({"name": "diag W-_i", "tex_name": r"\mathrm{diag}\,\bar W_i",
                "caption": f"middle blocks (diagonal), row i = 1..{N}, {b.dm} entries each",
                "cells": elide(np.array([np.diag(W[k][b.mid, b.mid]) for k in range(N)]))})
    out.append({"name": "w^_i", "tex_name": r"\check w_i", "caption": f"bottom entries, i = 1..{N}",
                "cells": elide(W[:, b.bottom, b.bottom][None, :])})
    out.append({"name": "diag A_i", "tex_name": r"\mathrm{diag}\,A_i",
                "caption": f"the chosen A_i (row i = 1..{N}; A_1 = I forced)",
                "cells": elide(np.array([np.asarray(a, dtype=float) for a in con.A]))})
    out.append({"name": "W_g", "tex_name": "W_g", "caption": f"the linear head g_pre ({con.design.dy} x {b.D})",
                "cells": elide(np.asarray(con.Wg, dtype=float))})
    return out


def build_context(report, argv: list[str] | None = None, now: _dt.datetime | None = None,
                  figures: bool = True) -> dict:
    """Everything the templates show, as plain data (figures as PNG bytes; ``figures=False`` skips
    drawing them)."""
    from ..render import construction_lines
    from ..verify import sample_step

    bp = load_blueprint()
    cfg = report.config
    con = report.con
    if con is None:
        from ..construction.network import Design, build

        con = build(Design.from_config(cfg))
    claims = {c.id: c for c in report.claims}
    findings = {f.id: f for f in report.findings}
    if now is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():  # reproducible builds
        now = _dt.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), _dt.timezone.utc)
    now = now or _dt.datetime.now(_dt.timezone.utc)

    entries = []
    status = {}
    for e in bp:
        st = entry_status(e, claims, findings)
        status[e.id] = st
        entries.append({
            "id": e.id, "kind": e.kind, "title": e.title, "statement": e.statement,
            "paper_ref": e.paper_ref, "anchor": e.anchor, "explain": e.explain,
            "uses": [{"id": u, "anchor": bp.get(u).anchor} for u in e.uses],
            "used_by": [{"id": u, "anchor": bp.get(u).anchor} for u in bp.used_by(e.id)],
            "checker": e.checker, "checker_anchor": ("check-" + e.checker.replace(":", "-")) if e.checker else None,
            "status": st, "status_text": _graph.STATUS_STYLE[st][2],
        })

    def entry_of(kind, id):
        e = bp.for_checker(kind, id)
        return {"id": e.id, "anchor": e.anchor} if e else None

    claim_rows = []
    for c in report.claims:
        claim_rows.append({
            "id": c.id, "anchor": f"check-claim-{c.id}", "title": c.title, "statement": c.statement,
            "paper_ref": c.paper_ref, "method": c.method, "verdict": c.verdict.value,
            "residual": fmt(c.residual), "tolerance": fmt(c.tolerance),
            "residual_num": float(c.residual), "tolerance_num": float(c.tolerance),
            "checked": c.checked,
            "counts": ", ".join(f"{n} {k}" for k, n in c.counts.items() if n) or "-",
            "worst_case": tree(c.worst_case) if c.worst_case else [],
            "computed": tree(c.computed), "claimed": tree(c.claimed), "note": c.note,
            "entry": entry_of("claim", c.id),
        })
    finding_rows = []
    for f in report.findings:
        finding_rows.append({
            "id": f.id, "anchor": f"check-finding-{f.id}", "title": f.title, "paper_ref": f.paper_ref,
            "demonstrated": bool(f.demonstrated), "headline": f.headline, "condition": f.condition,
            "explanation": f.explanation, "counterexample": tree(f.counterexample),
            "entry": entry_of("finding", f.id),
        })

    step = sample_step(report)
    b = con.blocks
    draw = figures
    figures = [] if not draw else [
        {"key": "weights", "file": "figures/weights.png", "png": _plots.weights(step, b),
         "title": "The weight matrices before and after the step",
         "caption": (f"Heatmaps of W_i (top row), W_i' after one real gradient step on sample "
                     f"{step.index} (middle row) and their difference (bottom row), for layers "
                     f"{', '.join(map(str, _plots.layers_shown(con.N)))} of {con.N}. Black lines separate "
                     "the top, middle and bottom channels; the dashed box is where the step may write: "
                     "the (middle, top) and (bottom, top) blocks.")},
        {"key": "codes", "file": "figures/codes.png",
         "png": _plots.codes(con.codes, b.cells_x, b.cells_star),
         "title": "The code table c(j, l)",
         "caption": (f"{con.design.layout} layout: cell (j, l) of the {b.cells_x} x {b.cells_star} grid "
                     f"is written into code channel c with weight c_c(j, l); layer i = c + 2 carries "
                     "channel c.")},
        {"key": "zbar", "file": "figures/zbar.png",
         "png": _plots.zbar(step, b, con.design.variant, con.design.alpha),
         "title": "zbar* against -alpha v",
         "caption": ("The middle block after the step, from the real forward pass at x*, against the "
                     "paper's -alpha v for the same sample (cell "
                     f"{step.cell}). " + ("In the signed variant the ReLUs keep max(-alpha v, 0) and "
                                          "each (+, -) pair recovers -alpha v."
                                          if con.design.variant == "signed" else ""))},
    ]

    if draw and getattr(report, "universal", None) is not None:
        png = _convergence_png(report)
        if png:
            figures.append({
                "key": "convergence", "file": "figures/convergence.png", "png": png,
                "title": "Universality: error against f_target along the sweep",
                "caption": ("The post-update network's error against the requested target f(x, y, x*), "
                            "one real step per test triple, at each grid of the sweep (claim "
                            "universal-converges).")})

    n_bad = [c for c in report.claims if c.verdict.value in ("FAIL", "UNDECIDED")]
    summary = {
        "passed": report.passed,
        "claims": len(report.claims),
        "by_verdict": {v: sum(1 for c in report.claims if c.verdict.value == v)
                       for v in ("PASS", "FAIL", "UNDECIDED", "SKIPPED")},
        "bad": [f"{c.id} {c.verdict.value}" for c in n_bad],
        "findings": len(report.findings),
        "shown": sum(1 for f in report.findings if f.demonstrated),
        "exit_status": 0 if report.passed else 1,
    }
    ctx = {
        "title": "Proof report: Finn & Levine (ICLR 2018), one MAML step, verified by execution",
        "generated": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": ("verify-construction " + shlex.join(argv)) if argv is not None else None,
        "reproduce": reproduce_command(cfg, argv),
        "seed": cfg.seed,
        "versions": versions(),
        "timings": [(k, fmt(v)) for k, v in report.timings.items()],
        "construction_lines": construction_lines(report),
        "construction": [(k, fmt(v) if not isinstance(v, (dict, str)) else
                          (v if isinstance(v, str) else ", ".join(f"{a} {fmt(t)}" for a, t in v.items())))
                         for k, v in report.construction.items() if k != "layout_description"],
        "matrices": _matrices(con),
        "figures": figures,
        "sample": {"index": step.index, **step.sample.as_dict(), "cell": list(step.cell)},
        "claims": claim_rows,
        "findings": finding_rows,
        "entries": entries,
        "status": status,
        "legend": [{"status": k, "fill": f, "border": c, "text": t} for k, (f, c, t) in _graph.STATUS_STYLE.items()],
        "summary": summary,
        "dot": _graph.dot_source(bp, status),
    }
    return ctx


def _convergence_png(report) -> bytes | None:
    """The convergence plot of a run with --target (drawn by universality.universal)."""
    import tempfile

    from ..universal import plot_convergence

    with tempfile.TemporaryDirectory(prefix="conv-") as tmp:
        path = os.path.join(tmp, "convergence.png")
        try:
            plot_convergence(report, path)
        except ValueError:  # a sweep without levels: nothing to draw
            return None
        with open(path, "rb") as fh:
            return fh.read()


# ---- HTML ----------------------------------------------------------------------------------------
def _html_env():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("universality", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True)


def render_html(ctx: dict) -> str:
    """One self-contained HTML file: CSS inline, figures as data URIs, math and graph as inline SVG,
    no scripts, no external fonts."""
    from markupsafe import Markup

    from .mathsvg import MathSheet

    sheet = MathSheet()
    env = _html_env()
    def math(tex: str) -> Markup:
        try:
            return Markup(sheet.svg(tex))
        except Exception:  # noqa: BLE001 - outside mathtext's subset: show the LaTeX source instead
            return Markup('<code class="tex">') + tex + Markup("</code>")

    env.filters["math"] = math
    env.filters["datauri"] = lambda png: "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    try:
        graph_svg, graph_error = Markup(_graph.inline_svg(ctx["dot"])), None
    except _graph.GraphUnavailable as exc:
        graph_svg, graph_error = None, str(exc)
    html = env.get_template("report.html.j2").render(**ctx, graph_svg=graph_svg, graph_error=graph_error)
    return html.replace("<!--MATH-DEFS-->", sheet.defs(), 1)


# ---- LaTeX ---------------------------------------------------------------------------------------
def render_tex(ctx: dict, graph_file: str | None, graph_error: str | None = None) -> str:
    env = _latex.environment()
    env.filters["tex"] = lambda s: _latex.Tex(s)
    env.filters["texmatrix"] = lambda cells: _latex.matrix(cells)
    env.filters["texnum"] = lambda x: _latex.num(x)
    return env.get_template("report.tex.j2").render(**ctx, graph_file=graph_file, graph_error=graph_error)
