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
    assert (out / "figures" / "graph.pdf").exists()
    tex = (out / "report.tex").read_text()
    assert r"{figures/graph.pdf}" in tex and r"\begin{landscape}" in tex
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
