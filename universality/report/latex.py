"""LaTeX output: escaping every string for its target, the Jinja environment, and the PDF build.

Everything a template prints is escaped (the environment's ``finalize``) unless it is a :class:`Tex`:
LaTeX we wrote ourselves (statements from the blueprint, matrices built from numbers).
"""
from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "^": r"\textasciicircum{}", "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", '"': r"\textquotedbl{}",
    "'": r"\textquotesingle{}", "`": r"\textasciigrave{}", "-": "-{}",
}
# non-ASCII characters that may appear in computed text, in a form pdflatex (T1, lmodern) can set
_UNICODE = {
    "−": "-", "–": "--", "—": "---", "…": r"\dots{}", "⋯": r"\ensuremath{\cdots}",
    "⋮": r"\ensuremath{\vdots}", "★": r"\ensuremath{\star}", "≠": r"\ensuremath{\neq}",
    "≥": r"\ensuremath{\geq}", "≤": r"\ensuremath{\leq}", "×": r"\ensuremath{\times}",
    "α": r"\ensuremath{\alpha}", "ε": r"\ensuremath{\varepsilon}", "θ": r"\ensuremath{\theta}",
    "φ": r"\ensuremath{\phi}", "±": r"\ensuremath{\pm}", "·": r"\ensuremath{\cdot}",
    "→": r"\ensuremath{\to}", "⇒": r"\ensuremath{\Rightarrow}", "‖": r"\ensuremath{\|}",
    "“": "``", "”": "''", "‘": "`", "’": "'", "\u00a0": " ", "\t": " ",
}


class Tex(str):
    """A string that is already LaTeX (not escaped again)."""


def escape(text) -> str:
    """Escape arbitrary text for LaTeX's text mode (pdflatex, T1)."""
    out = []
    for ch in str(text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif ch == "\n":
            out.append(r"\\ ")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(" ")
        elif ord(ch) > 126:
            out.append(rf"\textsf{{[U+{ord(ch):04X}]}}")
        else:
            out.append(ch)
    return "".join(out)


def num(x) -> Tex:
    """A number as math-mode LaTeX: 1.5e-16 -> 1.5\\times10^{-16}."""
    if isinstance(x, str):
        return Tex(escape(x))
    x = float(x)
    if math.isnan(x):
        return Tex(r"\mathrm{nan}")
    if math.isinf(x):
        return Tex(r"\infty" if x > 0 else r"-\infty")
    if x == 0:
        return Tex("0")
    s = f"{x:.3g}"
    m = re.fullmatch(r"(-?[\d.]+)e([+-])0*(\d+)", s)
    if m:
        mant, sign, exp = m.groups()
        exp = ("-" if sign == "-" else "") + exp
        return Tex(rf"{mant}\times10^{{{exp}}}" if mant not in ("1", "-1") else
                   rf"{'-' if mant == '-1' else ''}10^{{{exp}}}")
    return Tex(s)


def matrix(cells: list[list[str]]) -> Tex:
    """A pmatrix from pre-formatted numbers and the elision marks of render.elide."""
    marks = {"⋯": r"\cdots", "⋮": r"\vdots", "⋱": r"\ddots", "": ""}
    rows = []
    for row in cells:
        rows.append(" & ".join(marks[c] if c in marks else str(num(float(c))) for c in row))
    return Tex(r"\begin{pmatrix}" + r" \\ ".join(rows) + r"\end{pmatrix}")


def label(text) -> str:
    """A LaTeX \\label / hyperref key for an id (letters, digits, ':', '.', '-')."""
    return re.sub(r"[^A-Za-z0-9:.-]", "-", str(text))


def finalize(value):
    if isinstance(value, Tex):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"${num(value)}$"
    return escape(value)


def environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("universality", "templates"),
        block_start_string=r"\BLOCK{", block_end_string="}",
        variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}",
        line_comment_prefix="%#", trim_blocks=True, lstrip_blocks=True, autoescape=False,
        keep_trailing_newline=True, finalize=finalize, undefined=jinja2.StrictUndefined)


def toolchain_missing() -> str | None:
    """None when latexmk and pdflatex are installed, else a one-line explanation."""
    missing = [t for t in ("latexmk", "pdflatex") if shutil.which(t) is None]
    if missing:
        return (f"--format pdf needs {' and '.join(missing)} (Debian: apt-get install latexmk "
                "texlive-latex-recommended texlive-fonts-recommended lmodern); use --format html,tex")
    return None


from ..errors import ToolError


class LatexError(ToolError):
    """LaTeX failed on the report the package wrote: an internal/tool error (exit 3)."""


def build_pdf(tex_file: Path, timeout: float = 300, keep_log: bool = False) -> Path:
    """Compile ``tex_file`` with latexmk -pdf in its folder; remove the auxiliary files."""
    problem = toolchain_missing()
    if problem:
        raise LatexError(problem)
    folder = tex_file.parent
    cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
           "-quiet", tex_file.name]
    try:
        out = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise LatexError(f"latexmk did not finish within {timeout:.0f} s") from None
    pdf = folder / (tex_file.stem + ".pdf")
    log = folder / (tex_file.stem + ".log")
    if out.returncode != 0 or not pdf.exists():
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else out.stdout
        first = next((ln for ln in text.splitlines() if ln.startswith("!") or ": error" in ln.lower()
                      or re.match(r"^[^:]+:\d+:", ln)), "see the LaTeX log")
        raise LatexError(f"LaTeX failed on {tex_file.name}: {first.strip()}")
    for ext in (".aux", ".log", ".fls", ".fdb_latexmk", ".out", ".toc"):
        if ext == ".log" and keep_log:
            continue
        (folder / (tex_file.stem + ext)).unlink(missing_ok=True)
    return pdf
