"""The experiments document, assembled from synthetic job results (no torch), and its section in the
HTML and LaTeX reports (``--report DIR --experiments FILE``)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import run_cli
from universality.experiments import suite
from universality.experiments.output import dumps, write_outputs
from universality.experiments.profiles import TINY
from universality.experiments.runs import Job


def _fake_results(profile=TINY, seed=0):
    """Job results shaped like runs.run_job's, with the paper's directions planted."""
    r = np.random.default_rng(seed)
    T, S = profile.test_tasks, profile.max_steps + 1
    steps = np.arange(S)
    out = []
    for s in range(profile.seeds):
        fall = 1.0 / (1 + steps) + 0.01 * r.random((T, S))
        rise = 0.5 + 0.1 * steps + 0.01 * r.random((T, S))
        shifts = np.asarray(profile.shifts)[:, None]
        res = {"params": {"maml": 100, "tc": 101, "snail": 99, "lstm": 100}, "seconds": 1.0,
               "train": {k: {"before": 2.0, "after": 1.0, "history": [2.0, 1.0]} for k in ("maml", "tc", "snail", "lstm")},
               "maml_steps": {"in": fall, "amplitude": fall + 1, "phase": fall + 0.5},
               "tc_steps": {"in": rise, "amplitude": rise + 1, "phase": rise + 0.5},
               "maml_shift": {a: 0.5 + shifts + 0.01 * r.random((len(shifts), T)) for a in ("amplitude", "phase")},
               "snail_shift": {a: 0.6 + 3 * shifts + 0.01 * r.random((len(shifts), T)) for a in ("amplitude", "phase")},
               "lstm_shift": {a: 0.6 + 2 * shifts + 0.01 * r.random((len(shifts), T)) for a in ("amplitude", "phase")}}
        out.append((Job("sinusoid", 0, s, profile, ("maml", "tc", "snail", "lstm")), res))
        for d in profile.depth_layers:
            out.append((Job("depth", 0, s, profile, depth=d), {
                "depth": d, "params": {"maml": 1500, "oracle": 1500}, "seconds": 1.0,
                "train": {k: {"before": 2.0, "after": 1.0, "history": []} for k in ("maml", "oracle")},
                "maml_err": 1.0 / d + 0.01 * r.random(profile.depth_test_tasks),
                "oracle_err": 0.1 + 0.001 * r.random(profile.depth_test_tasks)}))
    return out


@pytest.fixture(scope="module")
def doc():
    d = {"schema": suite.SCHEMA, "experiments": list(suite.EXPERIMENTS), "profile": TINY.as_dict(), "seed": 0,
         "seeds": list(range(TINY.seeds)), "workers": 1, "scheduler": None, "elapsed_s": 1.0}
    d.update(suite.assemble(list(suite.EXPERIMENTS), TINY, 0, _fake_results()))
    d["passed"] = all(c["verdict"] == "PASS" for c in d["claims"])
    return d


def test_assemble_planted_directions(doc):
    verdicts = {c["id"]: c["verdict"] for c in doc["claims"]}
    assert verdicts["exp-steps-maml-improves-in"] == "PASS"
    assert verdicts["exp-steps-taskcond-overfits-ood"] == "PASS"
    assert verdicts["exp-ood-maml-robust-amplitude"] == "PASS"
    assert verdicts["exp-depth-maml-improves"] == "PASS"
    assert verdicts["exp-depth-oracle-flat"] == "PASS"
    assert doc["summary"]["PASS"] == sum(v == "PASS" for v in verdicts.values())


def test_plan_covers_seeds_and_depths():
    jobs = suite.plan(["steps", "depth"], TINY, 3)
    assert [j.kind for j in jobs].count("sinusoid") == TINY.seeds
    assert [j.kind for j in jobs].count("depth") == TINY.seeds * len(TINY.depth_layers)
    assert all(j.learners == ("maml", "tc") for j in jobs if j.kind == "sinusoid")
    assert suite.plan(["ood"], TINY, 0, omniglot="/x")[-1].kind == "omniglot"


def test_write_outputs_is_atomic(doc, tmp_path, monkeypatch):
    from universality.experiments import output

    def boom(_doc):
        raise KeyboardInterrupt

    monkeypatch.setattr(output, "plots", boom)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(doc, str(tmp_path / "run"))
    assert list(tmp_path.iterdir()) == []


def test_write_outputs_creates_missing_parents(doc, tmp_path, monkeypatch):
    """--out a/b/run creates a and b (as the main command's output paths do); a failure removes them again."""
    from universality.errors import OutputError
    from universality.experiments import output

    target = tmp_path / "a" / "b" / "run"
    write_outputs(doc, str(target))
    assert (target / "experiments.json").is_file() and (target / "figures").is_dir()
    assert not [p for p in (tmp_path / "a" / "b").iterdir() if p.name.startswith(".")]

    def fail(_doc):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output, "plots", fail)
    with pytest.raises(OutputError, match="nothing was written"):
        write_outputs(doc, str(tmp_path / "c" / "d" / "run"))
    assert not (tmp_path / "c").exists()


def test_report_with_experiments_section(doc, tmp_path):
    src = tmp_path / "exp"
    write_outputs(doc, str(src))
    out = tmp_path / "rep"
    res = run_cli("--N", "6", "--J", "4", "--L", "4", "--samples", "2", "--no-findings", "--report", str(out),
                  "--format", "html,tex", "--experiments", str(src / "experiments.json"))
    assert res.returncode == 0, res.stderr
    html = (out / "report.html").read_text()
    tex = (out / "report.tex").read_text()
    assert 'id="experiments"' in html and "Experiments (paper Sec. 7)" in html
    for c in doc["claims"]:
        assert c["id"] in html and c["id"].replace("-", "-{}") in tex
    assert html.count('id="fig-experiments-') == 3
    assert (out / "figures" / "expsteps.png").exists()
    assert "\\includegraphics" in tex and "expdepth.png" in tex


def test_report_without_experiments_has_no_section(tmp_path):
    from universality import Config, verify
    from universality.report import render

    html = render.render_html(render.build_context(verify(Config(N=6, J=4, L=4, samples=2)), argv=[], figures=False))
    assert 'id="experiments"' not in html


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"), ("not json", "cannot read"), ('{"schema": "other"}', "not an experiments document"),
    ('{"schema": "universality-experiments/1", "claims": [{"id": 1}]}', "malformed"),
])
def test_bad_experiments_file(tmp_path, content, message):
    from universality.experiments.section import load_section

    f = tmp_path / "e.json"
    if content is not None:
        f.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_section(f)


def test_bad_experiments_file_cli(tmp_path):
    f = tmp_path / "e.json"
    f.write_text("[]")
    res = run_cli("--N", "6", "--J", "4", "--L", "4", "--report", str(tmp_path / "r"), "--experiments", str(f))
    assert res.returncode == 2 and "not an experiments document" in res.stderr and res.stderr.count("\n") == 1
    assert not (tmp_path / "r").exists()
    res = run_cli("--N", "6", "--J", "4", "--L", "4", "--experiments", str(f))
    assert res.returncode == 2 and "needs --report" in res.stderr


def test_section_in_rendered_html_and_tex(doc, tmp_path):
    from universality import Config, verify
    from universality.experiments.output import write_outputs as write
    from universality.experiments.section import load_section
    from universality.report import render

    write(doc, str(tmp_path / "exp"))
    ctx = render.build_context(verify(Config(N=6, J=4, L=4, samples=2)), argv=[], figures=False)
    ctx["experiments"] = load_section(tmp_path / "exp" / "experiments.json")
    html = render.render_html(ctx)
    tex = render.render_tex(ctx, [])
    assert 'id="experiments"' in html and "Experiments (paper Sec.~7)" in tex
    for c in doc["claims"]:
        assert c["id"] in html


def _fake_cli(monkeypatch, doc):
    pytest.importorskip("torch")
    from universality.experiments import suite as s

    monkeypatch.setattr(s, "run_suite", lambda *a, **k: doc)


def test_cli_text_output_and_exit_status(doc, tmp_path, monkeypatch, capsys):
    from universality.cli import main

    _fake_cli(monkeypatch, doc)
    rc = main(["experiments", "all", "--profile", "tiny", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == (0 if doc["passed"] else 1)
    assert "written:" in out and all(c["id"][:12] in out for c in doc["claims"])


def test_cli_write_error_is_exit_3(doc, tmp_path, monkeypatch, capsys):
    from universality.cli import main
    from universality.experiments import output

    _fake_cli(monkeypatch, doc)

    def fail(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(output, "write_outputs", fail)
    assert main(["experiments", "all", "--profile", "tiny", "--out", str(tmp_path / "o")]) == 3
    err = capsys.readouterr().err.strip()
    assert "cannot write" in err and "\n" not in err


def test_cli_scheduler_without_distributed(monkeypatch, capsys):
    import sys

    from universality.cli import main

    pytest.importorskip("torch")
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(["experiments", "steps", "--profile", "tiny", "--scheduler", "tcp://x:1"]) == 2
    assert "Dask distributed" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["experiments", "steps", "--scheduler", " "]) == 2
    assert main(["experiments", "steps", "--omniglot", "."]) == 2


def test_dumps_round_trips(doc):
    assert json.loads(dumps(doc))["claims"][0]["id"] == doc["claims"][0]["id"]


def test_assemble_with_omniglot_results():
    r = np.random.default_rng(3)
    ts = [{"name": "none", "kind": "none", "value": 0.0}, {"name": "shear 0.5", "kind": "shear", "value": 0.5}]
    results = [(Job("omniglot", 0, s, TINY, data="/x"), {
        "seconds": 1.0, "transforms": ts, "params": {"maml": 10, "snail": 11},
        "train": {"omniglot-maml": {"before": 1.6, "after": 1.0, "history": []}},
        "finetune": {"maml": np.array([[0.7], [0.8], [0.8], [0.8]]) + np.zeros((4, 8)), "maml_support": np.ones((4, 8)),
                     "random": np.full((4, 8), 0.3), "random_support": np.ones((4, 8))},
        "acc": {"maml": 0.9 - 0.05 * np.array([[0.0], [1.0]]) + 0.01 * r.random((2, 8)),
                "snail": 0.9 - 0.5 * np.array([[0.0], [1.0]]) + 0.01 * r.random((2, 8))}})
        for s in range(TINY.seeds)]
    sinusoid = [jr for jr in _fake_results() if jr[0].kind == "sinusoid"]
    doc = suite.assemble(["ood"], TINY, 0, sinusoid + results)
    got = {c["id"]: c["verdict"] for c in doc["claims"]}
    assert got["exp-omniglot-maml-robust"] == "PASS" and got["exp-omniglot-similar-in-distribution"] == "PASS"
    assert got["exp-omniglot-finetune-no-drop"] == "PASS"
    assert np.shape(doc["results"]["omniglot"]["curves"]["maml"]["per_seed"]) == (TINY.seeds, 2)
    from universality.experiments.output import plots

    figs = plots({"results": {k: doc["results"][k] for k in ("omniglot", "omniglot_finetune")}})
    assert [f["key"] for f in figs] == ["omniglot", "finetune"]


def test_text_summary_lists_every_claim(doc):
    from rich.console import Console

    from universality.experiments.output import text_summary

    console = Console(record=True, width=200)
    text_summary(doc, console)
    out = console.export_text()
    for c in doc["claims"]:
        assert c["id"] in out
    assert "parameters:" in out and "depth study parameters" in out
