"""The blueprint's dependency graph, coloured by the run's verdicts: DOT source, then SVG/PDF via
Graphviz ``dot`` (Debian package graphviz). Without ``dot`` the callers say so instead of crashing.

Edges go from an entry to the entries that use it (definitions at the top, results below).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import textwrap

# status -> (fill, border, legend text)
STATUS_STYLE = {
    "PASS": ("#c8e6c9", "#2e7d32", "claim PASS"),
    "FAIL": ("#ffcdd2", "#c62828", "claim FAIL"),
    "UNDECIDED": ("#fff59d", "#f9a825", "claim UNDECIDED"),
    "SKIPPED": ("#e0e0e0", "#757575", "claim SKIPPED"),
    "SHOWN": ("#ffe0b2", "#e65100", "gap demonstrated live"),
    "NOT SHOWN": ("#bbdefb", "#1565c0", "gap not shown on these sizes"),
    "NOT RUN": ("#ffffff", "#9e9e9e", "checker not run in this report"),
    "NONE": ("#ffffff", "#424242", "definition / consequence: no checker of its own"),
}
KIND_SHAPE = {
    "definition": ("box", ""),
    "equation": ("box", "rounded"),
    "lemma": ("box", "bold"),
    "theorem": ("box", "bold"),
    "condition": ("hexagon", ""),
    "step": ("ellipse", ""),
    "gap": ("octagon", ""),
    "experiment": ("note", ""),
}


class GraphUnavailable(RuntimeError):
    """Graphviz is missing or failed; the message is one line for the reader."""


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    """Text inside a DOT HTML-like label."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def _label(entry) -> str:
    from .typeset import plain

    title = textwrap.shorten(plain(entry.title), width=58, placeholder="...")
    return entry.id + "\n" + "\n".join(textwrap.wrap(title, width=24)[:3])


# the printed graph is split into these sections (one landscape page each), so that its text stays
# legible (>= 7 pt) on paper; each section's page shows the entries it uses from other sections by id
SECTIONS = (("Definitions and conditions", ("definition", "condition")),
            ("Equations, proof steps, lemmas and theorems", ("equation", "step", "lemma", "theorem")),
            ("Known gaps and the entries they break", ("gap",)),
            ("Empirical claims of Sec. 7", ("experiment",)))


def section_sources(blueprint, status: dict[str, str]) -> list[tuple[str, str]]:
    """[(title, DOT)] per section of :data:`SECTIONS` (for print)."""
    out = []
    for title, kinds in SECTIONS:
        only = {e.id for e in blueprint if e.kind in kinds}
        if only:
            src = dot_source(blueprint, status, only=only, legend=False,
                             rankdir="LR" if kinds == ("gap",) else "TB", print_=True)
            out.append((title, src))
    return out


def dot_source(blueprint, status: dict[str, str], only: set | None = None, legend: bool = True,
               rankdir: str = "TB", print_: bool = False) -> str:
    """DOT for the blueprint; ``status`` maps entry id -> a key of STATUS_STYLE. ``only``: draw these
    entries in full and the entries they use outside it as small id-only boxes (a section's page).
    ``print_``: labels are the ids only, set at 14 pt with tight spacing, so that a section scaled to
    a landscape page keeps its text at 7 pt or more (the entries' titles follow the graph)."""
    fs, sep = (14, "nodesep=0.12, ranksep=0.3") if print_ else (9, "nodesep=0.25, ranksep=0.45")
    lines = [
        "digraph blueprint {",
        f'  graph [rankdir={rankdir}, {sep}, fontname="Helvetica", fontsize=10, '
        'labelloc=b, labeljust=l];',
        f'  node [fontname="Helvetica", fontsize={fs}, style=filled, penwidth=1.4, margin="0.08,0.04"];',
        '  edge [color="#607d8b", arrowsize=0.6];',
    ]
    shown = None
    if only is not None:
        shown = set(only)
        for used, user in blueprint.edges():
            # a section's page shows what its entries use from other sections; what uses them is
            # drawn on the users' own pages (keeps a page of widely used definitions legible)
            if user in only:
                shown.add(used)
    for e in blueprint:
        if shown is not None and e.id not in shown:
            continue
        st = status.get(e.id, "NONE")
        if only is not None and e.id not in only:
            fill, border, _ = STATUS_STYLE[st]
            lines.append(f"  {_q(e.id)} [label={_q(e.id)}, shape=box, style=\"filled,dashed\", "
                         f"fillcolor={_q(fill)}, color={_q(border)}];")
            continue
        fill, border, _ = STATUS_STYLE[st]
        shape, extra = KIND_SHAPE[e.kind]
        style = ",".join(s for s in ("filled", extra, "dashed" if st == "NOT RUN" else "") if s)
        tooltip = f"{e.id} ({e.kind}, {e.paper_ref}): {e.title} [{st.lower()}]"
        lines.append(
            f"  {_q(e.id)} [label={_q(e.id if print_ else _label(e))}, shape={shape}, style={_q(style)}, "
            f"fillcolor={_q(fill)}, color={_q(border)}, URL={_q('#' + e.anchor)}, tooltip={_q(tooltip)}];")
    for used, user in blueprint.edges():
        if shown is not None and user not in only:
            continue
        gap = blueprint.get(user).kind == "gap"
        attrs = ' [style=dashed, color="#e65100"]' if gap else ""
        lines.append(f"  {_q(used)} -> {_q(user)}{attrs};")
    if legend:
        lines.append(f"  label=<{legend_html()}>;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def legend_html() -> str:
    """The legend as a Graphviz HTML-like table (the graph's own label, so it is not a node)."""
    cells = "".join(
        f'<TR><TD BGCOLOR="{fill}" BORDER="1" COLOR="{border}" WIDTH="18"> </TD>'
        f'<TD ALIGN="LEFT">{_html(text)}</TD></TR>' for fill, border, text in STATUS_STYLE.values())
    kinds = ["box: definition; rounded: equation", "bold: lemma, theorem; hexagon: condition",
             "ellipse: proof step; octagon: known gap", "note: empirical claim (Sec. 7)", "(dashed edge: what a gap breaks)"]
    br = '<BR ALIGN="LEFT"/>'
    lines = br.join(_html(k) for k in kinds) + br
    return (f'<TABLE BORDER="0" CELLSPACING="2" CELLPADDING="2"><TR><TD COLSPAN="2" ALIGN="LEFT">'
            f'<B>Legend</B></TD></TR>{cells}<TR><TD COLSPAN="2" ALIGN="LEFT">{lines}</TD></TR></TABLE>')


def dot_path() -> str | None:
    return shutil.which("dot")


def dot_version() -> str | None:
    exe = dot_path()
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"version\s+(\S+)", out.stderr + out.stdout)
    return m.group(1) if m else None


def render(source: str, fmt: str) -> bytes:
    """Run ``dot -T<fmt>``; raises GraphUnavailable (one line) when dot is missing or fails."""
    exe = dot_path()
    if exe is None:
        raise GraphUnavailable("graphviz 'dot' is not installed (Debian: apt-get install graphviz), "
                               "so the dependency graph could not be drawn")
    try:
        out = subprocess.run([exe, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True,
                             timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise GraphUnavailable(f"graphviz 'dot' failed: {exc}") from None
    if out.returncode != 0:
        msg = out.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GraphUnavailable(f"graphviz 'dot' failed: {msg[0] if msg else out.returncode}")
    return out.stdout


def inline_svg(source: str) -> str:
    """SVG for embedding in HTML: without the XML prolog, doctype and comments."""
    svg = render(source, "svg").decode("utf-8")
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    return svg.replace("<svg ", '<svg class="graph" role="img" aria-label="dependency graph" ', 1)
