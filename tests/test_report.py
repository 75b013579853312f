"""Proof reports: content, escaping, self-containment, the graph, atomic writes, the CLI options."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from hypothesis import given, strategies as st

from tests.conftest import require_tool
from tests.helpers import run_cli
from universality import Config, verify
from universality.blueprint import load as load_blueprint
from universality.report import ReportError, check_target, parse_formats, write_report
from universality.report import graph, latex, render, typeset

HOSTILE = ["--note", "<script>alert(1)</script>", r"\input{/etc/passwd} $x$ 100% & #1 _ ^ ~ {} é ★"]


@pytest.fixture(scope="module")
def report():
    return verify(Config(N=6, J=4, L=4), report_data=True)


@pytest.fixture(scope="module")
def context(report):
    return render.build_context(report, argv=HOSTILE)


@pytest.fixture(scope="module")
def html(context):
    return render.render_html(context)


@pytest.fixture(scope="module")
def tex(context):
    return render.render_tex(context, "figures/graph.pdf")


# ---- content ---------------------------------------------------------------------------------
def test_html_shows_every_claim_finding_and_entry(report, html):
    for c in report.claims:
        assert f'id="check-claim-{c.id}"' in html
        assert typeset.mathml(latex.num(c.residual)) in html and typeset.mathml(latex.num(c.tolerance)) in html
    for f in report.findings:
        assert f'id="check-finding-{f.id}"' in html
        # the counterexample computed in this run, its formulas typeset
        assert typeset.html(typeset.prose(f.headline)) in html
    for e in load_blueprint():
        assert f'id="{e.anchor}"' in html
    assert "verify-construction --N 6 --J 4 --L 4 --dx 1" in html
    assert html.count('display="block"><mrow>') >= len(load_blueprint()) + len(report.claims)


def test_tex_shows_every_claim_and_finding(report, tex):
    for c in report.claims:
        assert latex.escape(c.id) in tex
    for f in report.findings:
        assert latex.escape(f.id) in tex
    for e in load_blueprint():
        assert e.statement in tex  # our own LaTeX, verbatim
    assert r"\begin{document}" in tex and tex.rstrip().endswith(r"\end{document}")


def test_html_is_self_contained(html):
    # one inline script (the explore page) and its inline JSON; nothing loaded
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, flags=re.I)
    assert html.lower().count("<script") == 2
    assert "<link" not in html.lower()
    assert "@import" not in html and "url(" not in html
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'<img src="([^"]*)"', html))


def test_html_ids_are_unique(html):
    ids = Counter(re.findall(r'\sid="([^"]+)"', html))
    dup = [i for i, n in ids.items() if n > 1]
    assert not dup, dup[:5]


def test_user_strings_are_escaped(html, tex):
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert r"\input{/etc/passwd}" not in tex
    assert r"\textbackslash{}input\{/etc/passwd\}" in tex
    assert r"100\%" in tex and r"\$x\$" in tex and r"\&" in tex and r"\#1" in tex


def test_latex_escape_and_numbers():
    assert latex.escape(r"a_b^c%$&#{}~\ ") == (r"a\_b\textasciicircum{}c\%\$\&\#\{\}\textasciitilde{}"
                                               r"\textbackslash{} ")
    assert latex.escape("é") == r"\textsf{[U+00E9]}"
    assert latex.finalize(latex.Tex(r"\alpha")) == r"\alpha"
    assert latex.num(1.5e-16) == r"1.5\times10^{-16}"
    assert latex.num(0.0) == "0" and latex.num(float("inf")) == r"\infty"


def test_matrices_are_elided_for_big_sizes():
    big = verify(Config(N=18, J=4, L=4, samples=2), with_findings=False)
    ctx = render.build_context(big, figures=False)
    for m in ctx["matrices"]:
        assert len(m["cells"]) <= render.MAX_MATRIX + 1
        assert all(len(r) <= render.MAX_MATRIX + 1 for r in m["cells"])
    assert any("⋯" in r for m in ctx["matrices"] for r in m["cells"])
    assert r"\cdots" in latex.matrix(ctx["matrices"][-1]["cells"])


def test_elide_keeps_ends():
    import numpy as np

    cells = render.elide(np.arange(400).reshape(20, 20))
    assert cells[0][0] == "0" and cells[-1][-1] == "399" and cells[9][9] == "⋱"


# ---- the dependency graph ----------------------------------------------------------------------
def test_dot_source_has_one_node_per_entry(context):
    bp = load_blueprint()
    nodes = re.findall(r'^  "([^"]+)" \[label=', context["dot"], flags=re.M)
    assert sorted(nodes) == sorted(e.id for e in bp)
    assert len(re.findall(r"->", context["dot"])) == len(bp.edges())


def test_graph_svg_has_one_node_per_entry(context):
    require_tool("dot")
    svg = graph.inline_svg(context["dot"])
    import html as _html

    titles = [_html.unescape(t) for t in
              re.findall(r'<g id="node\d+" class="node">\s*<title>([^<]*)</title>', svg)]
    assert sorted(titles) == sorted(e.id for e in load_blueprint())
    assert svg.count('class="edge"') == len(load_blueprint().edges())
    assert "Legend" in svg


def test_graph_is_coloured_by_verdict(report, context):
    status = context["status"]
    bp = load_blueprint()
    for c in report.claims:
        assert status[bp.for_checker("claim", c.id).id] == c.verdict.value
    for f in report.findings:
        assert status[bp.for_checker("finding", f.id).id] == ("SHOWN" if f.demonstrated else "NOT SHOWN")
    assert status["def:network"] == "NONE"
    fill = graph.STATUS_STYLE["PASS"][0]
    assert re.search(rf'"eq:3" \[[^\]]*fillcolor="{fill}"', context["dot"])


def test_failing_claims_are_red():
    bad = verify(Config(N=6, J=4, L=4, variant="paper", samples=4), with_findings=False)
    ctx = render.build_context(bad, figures=False)
    assert not bad.passed
    failed = [c.id for c in bad.claims if c.verdict.value == "FAIL"]
    assert failed
    e = load_blueprint().for_checker("claim", failed[0])
    assert ctx["status"][e.id] == "FAIL"
    assert "checks not passed" in render.render_html(ctx)


def test_without_dot_the_html_says_so(context, monkeypatch):
    monkeypatch.setattr(graph, "dot_path", lambda: None)
    html = render.render_html(context)
    assert "Dependency graph not drawn" in html and "graphviz" in html


# ---- writing -----------------------------------------------------------------------------------
def test_write_creates_folder_atomically(report, context, tmp_path):
    out = write_report(report, tmp_path / "rep", formats=("html", "tex"), context=context)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["figures", "report.html", "report.json", "report.tex"]
    assert sorted(p.name for p in (out / "figures").iterdir()) == (
        ["codes.png", "delta.png", "graph-1.pdf", "graph-2.pdf", "graph-3.pdf", "graph-4.pdf", "weights.png", "zbar.png"]
            if graph.dot_path() else
        ["codes.png", "weights.png", "zbar.png"])
    data = json.loads((out / "report.json").read_text())
    assert data["report"]["blueprint_status"]["eq:3"] == "PASS"
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary folder left


def test_non_empty_folder_needs_force(report, context, tmp_path):
    target = tmp_path / "rep"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match="not empty"):
        write_report(report, target, formats=("html",), context=context)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    (target / "report.tex").write_text("old")
    write_report(report, target, formats=("html",), force=True, context=context)
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt", "report.html", "report.json"]
    assert (target / "notes.txt").read_text() == "mine"


def test_a_failed_render_leaves_nothing(report, context, tmp_path, monkeypatch):
    def boom(ctx):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(render, "render_html", boom)
    with pytest.raises(RuntimeError):
        write_report(report, tmp_path / "rep", formats=("html",), context=context)
    assert list(tmp_path.iterdir()) == []


def test_target_validation(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ReportError, match="not a folder"):
        check_target(f)
    with pytest.raises(ReportError, match="not a folder"):
        check_target(f / "below")  # a parent that is a file
    assert check_target(tmp_path / "no" / "such") == tmp_path / "no" / "such"  # parents are created on write
    with pytest.raises(ReportError, match="unknown report format"):
        parse_formats("html,docx")
    assert parse_formats("PDF, html") == ("html", "pdf")
    monkeypatch.setattr(latex.shutil, "which", lambda name: None)
    with pytest.raises(ReportError, match="latexmk"):
        check_target(tmp_path / "new", formats=("pdf",))


def test_cli_report(tmp_path):
    out = tmp_path / "rep"
    res = run_cli("--N", "6", "--J", "4", "--L", "4", "--samples", "4", "--no-findings", "--report", str(out))
    assert res.returncode == 0, res.stderr
    assert (out / "report.html").exists() and (out / "report.tex").exists()
    assert "--samples 4" in (out / "report.html").read_text()
    again = run_cli("--N", "6", "--J", "4", "--L", "4", "--samples", "4", "--report", str(out))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr


@pytest.mark.parametrize("args, message", [
    (["--report", "{tmp}/r", "--format", "html,nope"], "unknown report format"),
    (["--format", "html"], "needs --report"),
    (["--force"], "needs --report"),
    (["--report", ""], "empty path"),
])
def test_cli_bad_report_options(tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    res = run_cli("--N", "6", "--J", "4", "--L", "4", *args)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and message in res.stderr and "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []


@given(st.text())
def test_latex_escape_leaves_no_active_character(text):
    out = latex.escape(text)
    # remove the escapes we emit; what is left must hold no character TeX would act on
    rest = re.sub(r"\\(textbackslash|textasciicircum|textasciitilde|textless|textgreater|textbar|"
                  r"textquotedbl|textquotesingle|textasciigrave|dots|ensuremath\{\\[a-zA-Z|]+\}|"
                  r"textsf\{\[U\+[0-9A-F]{4,6}\]\})(\{\})?|\\[{}$&#_%]|\\\\ |-\{\}", "", out)
    rest = rest.replace(r"\ensuremath{\|}", "")
    assert not set(rest) & set("\\{}$&#^_%~"), (text, out, rest)
    assert all(32 <= ord(ch) < 127 for ch in rest)


def test_reproduce_command_spells_out_every_option():
    cmd = render.reproduce_command(Config(N=6, J=4, L=4, alpha=-0.25, seed=3),
                                   ["--N", "6", "--J", "4", "--L", "4", "--alpha", "-0.25", "--seed", "3",
                                    "--target", "cos", "--report", "out", "--force"])
    assert cmd.startswith("verify-construction --N 6 --J 4 --L 4 --dx 1 --dy 1 --alpha -0.25 --eps 0.1")
    assert "--seed 3" in cmd and cmd.endswith("--target cos")
    assert "--report" not in cmd and "--force" not in cmd


def test_statement_outside_the_converter_falls_back_to_source(context):
    import copy

    ctx = copy.deepcopy({k: v for k, v in context.items() if k != "figures"})
    ctx["figures"] = []
    ctx["claims"][0]["statement"] = r"\begin{cases} a & b<c"
    html = render.render_html(ctx)
    assert r'<code class="tex">\begin{cases} a &amp; b&lt;c' in html
