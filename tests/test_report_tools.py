"""Reports through the external tools: the PDF compiles (latexmk) and its text has every claim id;
the HTML opens in headless Chromium with no console errors and no network requests and renders
something (a non-blank screenshot)."""
from __future__ import annotations

import io
import subprocess

import numpy as np
import pytest

from tests.cdp import chromium_path, load_page
from tests.conftest import require_tool
from universality import Config, verify
from universality.blueprint import load as load_blueprint
from universality.report import write_report

HOSTILE = ["--note", r"\input{/etc/passwd} $x$ 100% & #1 _ ^ ~ {} <b>"]


@pytest.fixture(scope="module")
def report():
    return verify(Config(N=6, J=4, L=4), report_data=True)


@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    """One report in every format the machine can make (rendering is shared by the tests)."""
    from universality.report.latex import toolchain_missing

    formats = ("html", "tex") if toolchain_missing() else ("html", "tex", "pdf")
    return write_report(report, tmp_path_factory.mktemp("rep") / "rep", formats=formats, argv=HOSTILE)


def test_pdf_compiles_and_has_every_claim_id(report, written):
    for tool in ("latexmk", "pdflatex", "pdftotext"):
        require_tool(tool)
    out = written
    pdf = out / "report.pdf"
    assert pdf.stat().st_size > 10_000
    assert not list(out.glob("*.aux")) and not list(out.glob("*.log"))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    flat = " ".join(text.split())
    for c in report.claims:
        assert c.id in flat, c.id
    for f in report.findings:
        assert f.id in flat, f.id
    assert "PASS" in flat and "SHOWN" in flat
    # the hostile command line was escaped, so it is printed literally rather than executed
    assert r"\input{/etc/passwd}" in flat and "100%" in flat


def test_html_in_headless_chromium(written):
    if chromium_path() is None:
        require_tool("chromium")
    out = written
    url = (out / "report.html").resolve().as_uri()
    page = load_page(url)
    assert page.loaded
    assert page.console_errors == [] and page.exceptions == [] and page.log_errors == []
    outside = [u for u in page.requests if u != url and not u.startswith("data:")]
    assert outside == [], outside
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(page.screenshot), format="png")[..., :3]
    assert img.shape[0] > 500 and img.shape[1] > 500
    non_white = float(np.mean(np.any(img < 0.9, axis=-1)))
    assert 0.01 < non_white < 0.9, non_white  # text and a banner, not a blank or a solid page
    assert float(img.std()) > 0.05


def test_every_blueprint_entry_is_a_node_of_the_pdf_graph(written):
    require_tool("dot")
    out = written
    from universality.report import graph

    status = {e.id: "NONE" for e in load_blueprint()}
    sections = graph.section_sources(load_blueprint(), status)
    tex = (out / "report.tex").read_text()
    drawn = set()
    for n, (title, src) in enumerate(sections, 1):
        assert (out / "figures" / f"graph-{n}.pdf").exists()
        assert f"{{figures/graph-{{}}{n}.pdf}}" in tex or f"{{figures/graph-{n}.pdf}}" in tex
        drawn |= {e.id for e in load_blueprint() if f'"{e.id}" [label="{e.id}", shape=' in src
                  and 'style="filled,dashed"' not in src.split(f'"{e.id}" [', 1)[1].split("]", 1)[0]}
    assert drawn == {e.id for e in load_blueprint()}  # every entry in full on one section's page
    assert tex.count(r"\begin{landscape}") == len(sections)
    assert tex.count(r"\subsection*{\texorpdfstring{\cid{") >= len(load_blueprint())


def test_latex_failure_is_one_clear_line(tmp_path):
    require_tool("latexmk")
    from universality.report.latex import LatexError, build_pdf

    tex = tmp_path / "broken.tex"
    tex.write_text("\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n")
    with pytest.raises(LatexError) as err:
        build_pdf(tex, timeout=120)
    msg = str(err.value)
    assert "\n" not in msg and "Undefined control sequence" in msg


def test_pdf_reads_like_an_appendix(report, tmp_path):
    """No overfull box over 5 pt (latexmk's log), a table of contents, hyperlinks from each claim to
    its blueprint entry, and a dependency graph whose node text is printed at 7 pt or more."""
    import re

    for tool in ("latexmk", "pdflatex", "pdfinfo", "dot"):
        require_tool(tool)
    from universality.report import render_into

    render_into(tmp_path, report, ("tex", "pdf"), keep_log=True)
    log = (tmp_path / "report.log").read_text(errors="replace")
    over = [float(x) for x in re.findall(r"Overfull \\[hv]box \(([\d.]+)pt too", log)]
    assert max(over, default=0.0) <= 5.0, over
    tex = (tmp_path / "report.tex").read_text()
    assert r"\tableofcontents" in tex
    for c in report.claims:
        e = load_blueprint().for_checker("claim", c.id)
        if e is not None:  # the card links to its entry, which carries the label
            assert rf"\hyperref[{e.anchor}]" in tex and rf"\label{{{e.anchor}}}" in tex
    # landscape text area 257 mm x 0.85 * 170 mm; the graph's node text is set at 14 pt
    width, height = 257 / 25.4 * 72, 0.85 * 170 / 25.4 * 72
    for pdf in sorted((tmp_path / "figures").glob("graph-*.pdf")):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        w, h = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
        assert 14 * min(width / w, height / h, 1.0) >= 7.0, (pdf.name, w, h)
