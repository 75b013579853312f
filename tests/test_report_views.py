"""Every kind of report as a reader sees it: the default, --variant paper, --K 3, --target cos and
--backend both reports open in headless Chromium with no console errors and no network requests, are
not blank, carry no Python repr and no empty field; the explore page's slider moves its plot."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

from tests.cdp import chromium_path, load_page
from tests.conftest import require_tool
from universality import Config, verify
from universality.report import render, write_report

SMALL = dict(N=6, J=2, L=2, samples=2)
VIEWS = {
    "default": (dict(), {}),
    "paper": (dict(variant="paper"), {}),
    "K3": (dict(K=3), {}),
    "target-cos": (dict(), {"universal": "cos"}),
    "both": (dict(), {"backend": "both"}),
    "symbolic": (dict(), {"backend": "symbolic"}),
}
REPR = re.compile(r"\['|\[&#39;|\{'|\{&#39;|<dt>(note|sizes)</dt><dd>\s*</dd>|</strong>:\s*</li>|All 0 claims"
                  r"|\\item\[note\]\s*\\item|\}:\s*\\item|array\(|np\.float|<class |\\textsf\{\[U\+")


@pytest.fixture(scope="module", params=list(VIEWS))
def view(request, tmp_path_factory):
    cfg, kw = VIEWS[request.param]
    rep = verify(Config(**SMALL, **cfg), report_data=True, **kw)
    out = write_report(rep, tmp_path_factory.mktemp(request.param) / "rep", formats=("html", "tex"))
    return request.param, rep, out


def _image(png: bytes):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(png), format="png")[..., :3]


def test_report_text_has_no_python_repr_and_no_empty_field(view):
    name, rep, out = view
    for f in ("report.html", "report.tex"):
        text = (out / f).read_text()
        bad = REPR.search(text)
        assert bad is None, (name, f, text[max(bad.start() - 80, 0):bad.end() + 80])
    # every formula went through the converter (no LaTeX source shown instead)
    assert '<code class="tex">' not in (out / "report.html").read_text(), name


def test_report_shows_what_the_run_computed(view):
    name, rep, out = view
    html = (out / "report.html").read_text()
    if name == "paper":
        assert 'id="fig-zbar-failing"' in html
    if name == "K3":
        assert 'id="fig-kshot"' in html
    if name == "target-cos":
        assert 'id="fig-convergence"' in html
    if name == "symbolic":  # the exact verdicts are the report's claims: never "0 claims"
        assert rep.claims == [] and 'id="exact"' in html and "No claims were run" not in html
        assert f"{len(rep.symbolic.claims)} exact instance claims" in html
    if name == "both":
        assert 'id="exact"' in html and 'id="schematic"' in html and 'id="comparison"' in html
        for c in rep.symbolic.claims:
            assert f'id="check-claim-{c.id}-exact"' in html
    assert 'id="fig-delta"' in html and 'id="explore"' in html


def test_report_in_headless_chromium(view):
    if chromium_path() is None:
        require_tool("chromium")
    name, rep, out = view
    url = (out / "report.html").resolve().as_uri()
    move = ("(function(){var s=document.getElementById('ex-x'); s.value=s.max; "
            "s.dispatchEvent(new Event('input')); var t=document.getElementById('ex-s'); t.value=t.max; "
            "t.dispatchEvent(new Event('input')); document.getElementById('explore').scrollIntoView(); "
            "return document.getElementById('ex-plot').innerHTML;})()")
    before = "(function(){document.getElementById('explore').scrollIntoView(); return document.getElementById('ex-plot').innerHTML;})()"
    page = load_page(url, evaluate=[before, move])
    assert page.loaded
    assert page.console_errors == [] and page.exceptions == [] and page.log_errors == [], name
    outside = [u for u in page.requests if u != url and not u.startswith("data:")]
    assert outside == [], outside
    img = _image(page.screenshot)
    assert img.shape[0] > 500 and img.shape[1] > 500
    assert 0.01 < float(np.mean(np.any(img < 0.9, axis=-1))) < 0.9
    # the explore page: drawn, and moving the x and x* sliders redraws a different plot
    drawn, moved = page.results
    assert drawn and "<rect" in drawn and "<path" in drawn
    assert moved != drawn
    assert float(_image(page.shots[1]).std()) > 0.02


def test_explore_grid_is_precomputed_real_steps():
    from universality.execution import one_step

    rep = verify(Config(**SMALL), report_data=True, with_findings=False)
    ex = rep.report_data.explore
    assert ex["steps"] == len(ex["x"]) * len(ex["x_star"]) * len(ex["y"]) > 1
    con = rep.con
    i, j, k = len(ex["x"]) - 1, 0, len(ex["y"]) - 1
    st = one_step(con, ex["x"][i], np.full(con.design.dy, ex["y"][k]), ex["x_star"][j])
    z = np.asarray(st.z_star[con.blocks.mid], dtype=float)
    assert np.allclose(ex["grid"][i][j][k]["z"], z, rtol=1e-5, atol=1e-12)


def test_a_report_without_picture_data_is_refused():
    from universality.report import ReportError

    rep = verify(Config(**SMALL), with_findings=False)
    with pytest.raises(ReportError, match="report_data=True"):
        render.build_context(rep)


def test_undecided_exact_claim_shows_the_undecided_sign():
    import dataclasses

    from universality.claims.base import Verdict
    from universality.report import typeset

    rep = verify(Config(**SMALL), backend="symbolic", with_findings=False, report_data=True)
    c = rep.symbolic.claims[0]
    rep.symbolic.claims[0] = dataclasses.replace(
        c, verdict=Verdict.UNDECIDED, residual=float("nan"), note="sign of y0 - 3*y1 undecided on the orthant")
    ctx = render.build_context(rep, figures=False)
    assert ctx["summary"]["passed"] is False and any("(exact) UNDECIDED" in b for b in ctx["summary"]["bad"])
    html = render.render_html(ctx)
    card = html.split(f'id="check-claim-{c.id}-exact"', 1)[1].split('<div class="card', 1)[0]
    assert "UNDECIDED" in card and "not decided" in card
    assert typeset.mathml(r"y_{0} - 3\, y_{1}") in card  # the undecided expression, typeset
    tex = render.render_tex(ctx, [])
    assert "not decided" in tex and r"$y_{0} - 3\, y_{1}$" in tex


def test_presentation_executes_nothing():
    """The report package reads results only: it imports nothing that builds or steps the network
    and calls no such function (the pictures' data is computed in the verify phase,
    universality.report_data)."""
    import ast
    from pathlib import Path

    import universality.report as pkg

    banned_modules = ("execution", "construction", "verify", "symbolic", "claims", "report_data", "engine")
    banned_calls = {"one_step", "k_shot_step", "build", "sample_step", "verify", "collect", "run_symbolic"}
    for path in Path(pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:  # from ..x import y
                assert not (node.module or "").startswith(banned_modules), (path.name, node.module)
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                assert name not in banned_calls, (path.name, name)
