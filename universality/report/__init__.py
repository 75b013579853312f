"""Proof reports of one verification run: a self-contained HTML file and a standalone LaTeX file
(optionally compiled to PDF), with the claims, the live findings, pictures and the blueprint's
dependency graph coloured by verdict.

    from universality import Config, verify
    from universality.report import write_report
    write_report(verify(Config(N=6, J=4, L=4), report_data=True), "out/report", formats=("html", "tex"))

Writes are atomic: everything is rendered in a temporary folder beside DIR and then moved in;
missing parents are created (and removed again on failure). A non-empty DIR is refused unless
``force``; then only the report's own files in it are replaced. Bad paths raise ReportError
(exit 2); I/O and LaTeX failures while writing raise OutputError / ToolError (exit 3).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

FORMATS = ("html", "tex", "pdf")
DEFAULT_FORMATS = ("html", "tex")
# what a report folder holds; with force these (and only these) are replaced
OUTPUTS = ("report.html", "report.tex", "report.pdf", "report.json", "figures")


from ..errors import ReportError  # noqa: E402 - one home for every user-facing error
from ..files import atomic_folder, check_path, io_error  # noqa: E402


def parse_formats(text: str | None) -> tuple[str, ...]:
    """'html,tex,pdf' -> ('html', 'tex', 'pdf'); unknown or empty -> ReportError."""
    if text is None:
        return DEFAULT_FORMATS
    items = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ReportError("--format needs at least one of html, tex, pdf")
    bad = [t for t in items if t not in FORMATS]
    if bad:
        raise ReportError(f"unknown report format {bad[0]!r}; choose from {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in items)


def check_target(path, force: bool = False, formats=DEFAULT_FORMATS) -> Path:
    """Validate DIR (and the toolchain for pdf) before any work is done."""
    p = check_path(path, option="--report", force=force, error=ReportError)
    if "pdf" in formats:
        from .latex import toolchain_missing

        problem = toolchain_missing()
        if problem:
            raise ReportError(problem)
    return p


def render_into(folder: Path, report, formats=DEFAULT_FORMATS, argv=None, now=None, context=None,
                keep_log: bool = False) -> list[str]:
    """Render the report's files into ``folder`` (which exists). Returns the names written.
    ``context``: a prebuilt render.build_context(report, ...) to reuse."""
    from . import graph as _graph
    from .latex import build_pdf
    from .render import build_context, render_html, render_tex

    ctx = context if context is not None else build_context(report, argv=argv, now=now)
    written = []
    data = report.as_dict()
    data["report"] = {"command": ctx["command"], "reproduce": ctx["reproduce"],
                      "generated": ctx["generated"], "versions": dict(ctx["versions"]),
                      "blueprint_status": ctx["status"]}
    (folder / "report.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    written.append("report.json")
    if "html" in formats:
        (folder / "report.html").write_text(render_html(ctx), encoding="utf-8")
        written.append("report.html")
    if "tex" in formats or "pdf" in formats:
        figs = folder / "figures"
        figs.mkdir(exist_ok=True)
        for f in ctx["figures"] + list((ctx.get("experiments") or {}).get("figures", [])):
            (folder / f["file"]).write_bytes(f["png"])
        graph_files, graph_error = [], None
        try:
            for n, (title, src) in enumerate(ctx["dot_sections"], 1):
                name = f"figures/graph-{n}.pdf"
                (folder / name).write_bytes(_graph.render(src, "pdf"))
                graph_files.append((title, name))
        except _graph.GraphUnavailable as exc:
            graph_files, graph_error = [], str(exc)
        tex = folder / "report.tex"
        tex.write_text(render_tex(ctx, graph_files, graph_error), encoding="utf-8")
        written += ["report.tex", "figures"]
        if "pdf" in formats:
            build_pdf(tex, keep_log=keep_log)
            written.append("report.pdf")
            if "tex" not in formats:
                tex.unlink()
                shutil.rmtree(figs)
                written = [w for w in written if w not in ("report.tex", "figures")]
    return written


def write_report(report, target, formats=DEFAULT_FORMATS, force: bool = False, argv=None, now=None,
                 context=None) -> Path:
    """Render into a temporary folder beside ``target``, then move the files in (atomic per file;
    a new folder appears whole). Raises ReportError (one line) when it cannot."""
    formats = parse_formats(",".join(formats)) if not isinstance(formats, str) else parse_formats(formats)
    target = check_target(target, force=force, formats=formats)
    with atomic_folder(target, prefix=".report-") as tmp:
        written = render_into(tmp, report, formats, argv=argv, now=now, context=context)
    try:
        for name in OUTPUTS:  # a previous report's files that this one does not replace
            old = target / name
            if name not in written and (old.exists() or old.is_symlink()):
                shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    except OSError as exc:
        raise io_error(exc, target) from exc
    return target
