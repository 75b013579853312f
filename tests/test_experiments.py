"""The Sec. 7 experiments on the tiny profile (seconds): shapes, determinism, learning, the Dask and
process-pool paths, the CLI. Skipped when PyTorch (or Dask, for its test) is absent."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from universality.cli import main as cli_main  # noqa: E402
from universality.experiments import suite  # noqa: E402
from universality.experiments.engine import run_jobs  # noqa: E402
from universality.experiments.profiles import TINY  # noqa: E402
from universality.experiments.runs import Job, run_job  # noqa: E402

ALL = ["steps", "ood", "depth"]
CLAIM_IDS = {"exp-steps-maml-improves-in", "exp-steps-maml-improves-ood", "exp-steps-taskcond-overfits-ood",
             "exp-ood-similar-in-distribution", "exp-ood-maml-robust-amplitude", "exp-ood-maml-robust-phase",
             "exp-depth-maml-improves", "exp-depth-oracle-flat"}


@pytest.fixture(scope="module")
def doc():
    return suite.run_suite(ALL, TINY, root_seed=1, workers=1)


def test_result_shapes(doc):
    p = TINY
    s = doc["results"]["steps"]
    assert s["steps"] == list(range(p.max_steps + 1))
    for key in ("maml_in", "maml_ood", "tc_in", "tc_ood"):
        c = s["curves"][key]
        assert np.shape(c["per_seed"]) == (p.seeds, p.max_steps + 1)
        assert np.shape(c["mean"]) == np.shape(c["std"]) == (p.max_steps + 1,)
    o = doc["results"]["ood"]
    assert o["shifts"] == list(p.shifts)
    for name in ("maml", "snail", "lstm"):
        for axis in ("amplitude", "phase"):
            assert np.shape(o["curves"][name][axis]["per_seed"]) == (p.seeds, len(p.shifts))
    d = doc["results"]["depth"]
    assert d["layers"] == list(p.depth_layers)
    for name in ("maml", "oracle"):
        assert np.shape(d["curves"][name]["per_seed"]) == (p.seeds, len(p.depth_layers))
    assert {c["id"] for c in doc["claims"]} == CLAIM_IDS
    for c in doc["claims"]:
        assert c["verdict"] in {"PASS", "FAIL", "UNDECIDED"}
        assert c["checked"] > 0 and sum(c["counts"].values()) == p.seeds
        assert {"estimate", "ci_low", "ci_high"} <= set(c["computed"])
    assert sum(doc["summary"].values()) == len(CLAIM_IDS)
    json.loads(json.dumps(doc, default=float))  # plain data


def test_parameter_counts_are_matched(doc):
    counts = doc["params"]
    assert set(counts) == {"maml", "tc", "snail", "lstm"}
    for n in counts.values():
        assert abs(n - counts["maml"]) <= 0.1 * counts["maml"], counts
    for layers, c in doc["results"]["depth"]["params"].items():
        for n in c.values():
            assert abs(n - TINY.depth_params) <= 0.1 * TINY.depth_params, (layers, c)


def test_each_learner_improves_on_its_training_tasks(doc):
    seen = set()
    for t in doc["training"]:
        for name, rec in t.items():
            if isinstance(rec, dict) and "before" in rec:
                seen.add(name)
                assert rec["after"] < rec["before"], (t["job"], name, rec["before"], rec["after"])
    assert seen == {"maml", "tc", "snail", "lstm", "oracle"}


def test_deterministic_under_a_seed():
    job = Job("sinusoid", 5, 0, TINY, ("maml", "snail"))
    a, b = run_job(job), run_job(job)
    np.testing.assert_allclose(a["maml_steps"]["in"], b["maml_steps"]["in"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a["snail_shift"]["phase"], b["snail_shift"]["phase"], rtol=1e-5, atol=1e-6)
    c = run_job(Job("sinusoid", 6, 0, TINY, ("maml",)))
    assert not np.allclose(a["maml_steps"]["in"], c["maml_steps"]["in"])


def test_second_order_differs_from_first_order():
    """The meta-gradient goes through the inner steps: FOMAML's differs (but both are finite)."""
    from universality.experiments.learners import MAML, BiasTransformMLP

    torch.manual_seed(0)
    net = BiasTransformMLP(hidden=8, layers=2)
    x, y = torch.randn(3, 5, 1), torch.randn(3, 5, 1)
    params = dict(net.named_parameters())
    g2 = MAML(net, alpha=0.1, steps=2).meta_grad(params, x, y, x, y)
    g1 = MAML(net, alpha=0.1, steps=2, first_order=True).meta_grad(params, x, y, x, y)
    assert all(torch.isfinite(v).all() for v in g2.values())
    assert any(not torch.allclose(g1[k], g2[k]) for k in g1)


def test_maml_curve_matches_a_plain_autograd_loop():
    """The vmapped torch.func inner loop equals an inner loop written with torch.autograd.grad."""
    from universality.experiments.learners import MAML, BiasTransformMLP

    torch.manual_seed(1)
    net = BiasTransformMLP(hidden=6, layers=2, bt_dim=3)
    maml = MAML(net, alpha=0.05, steps=1)
    xs, ys, xq, yq = (torch.randn(2, 4, 1) for _ in range(4))
    curve = maml.curve(xs, ys, xq, yq, 3)
    for t in range(2):
        ps = [p.detach().clone().requires_grad_(True) for p in net.parameters()]
        names = [n for n, _ in net.named_parameters()]
        want = []
        for step in range(4):
            out = torch.func.functional_call(net, dict(zip(names, ps)), (xq[t],))
            want.append(float(((out - yq[t]) ** 2).mean().detach()))
            loss = ((torch.func.functional_call(net, dict(zip(names, ps)), (xs[t],)) - ys[t]) ** 2).mean()
            gs = torch.autograd.grad(loss, ps)
            ps = [(p - 0.05 * g).detach().requires_grad_(True) for p, g in zip(ps, gs)]
        np.testing.assert_allclose(curve[t].numpy(), want, rtol=1e-4, atol=1e-6)


def test_dask_local_cluster_path(capsys):
    distributed = pytest.importorskip("distributed")
    jobs = [Job("depth", 2, 0, TINY, depth=1), Job("depth", 2, 0, TINY, depth=2)]
    local = run_jobs(jobs, workers=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        seen = []
        remote = run_jobs(jobs, scheduler=cluster, on_done=lambda j, r: seen.append(j.depth))
        # the CLI's --scheduler ADDRESS path, against the same cluster
        rc = cli_main(["experiments", "depth", "--profile", "tiny", "--seeds", "1", "--seed", "2",
                       "--scheduler", cluster.scheduler_address, "--json"])
        printed = json.loads(capsys.readouterr().out)
    assert rc in (0, 1) and printed["scheduler"] == cluster.scheduler_address
    np.testing.assert_allclose(printed["results"]["depth"]["curves"]["maml"]["per_seed"][0],
                               [r["maml_err"].mean() for _, r in local], rtol=1e-5)
    assert sorted(seen) == [1, 2]
    for (ja, a), (jb, b) in zip(local, remote):
        assert ja == jb
        np.testing.assert_allclose(a["maml_err"], b["maml_err"], rtol=1e-5)


def test_process_pool_path():
    jobs = [Job("depth", 3, 0, TINY, depth=1), Job("depth", 3, 1, TINY, depth=1)]
    pooled = run_jobs(jobs, workers=2)
    inline = run_jobs(jobs[:1], workers=1)
    np.testing.assert_allclose(pooled[0][1]["oracle_err"], inline[0][1]["oracle_err"], rtol=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["experiments"], "experiment"),
    (["experiments", "bogus"], "invalid choice"),
    (["experiments", "steps", "--profile", "huge"], "invalid choice"),
    (["experiments", "steps", "--seeds", "0"], "must be >= 1"),
    (["experiments", "steps", "--seed", "-3"], "must be >= 0"),
    (["experiments", "steps", "--seed", "x"], "must be an integer"),
    (["experiments", "steps", "--workers", "2", "--scheduler", "tcp://h:1"], "--workers"),
    (["experiments", "steps", "--omniglot", "/nonexistent"], "--omniglot"),
])
def test_cli_bad_input_exit_2(argv, message, capsys):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_cli_out_under_a_file_is_bad_input(tmp_path, capsys):
    f = tmp_path / "a-file"
    f.write_text("x")
    assert cli_main(["experiments", "steps", "--out", str(f / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a folder" in err and "\n" not in err and "Traceback" not in err
    assert cli_main(["experiments", "steps", "--out", str(f)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_cli_missing_torch_is_one_line(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)
    assert cli_main(["experiments", "steps", "--profile", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install -e '.[experiments]'" in err and "\n" not in err


def test_cli_out_and_json(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli_main(["experiments", "depth", "--profile", "tiny", "--seeds", "2", "--workers", "1",
                   "--out", str(out), "--json"])
    assert rc in (0, 1)
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((out / "experiments.json").read_text())
    assert printed["claims"] == written["claims"] and written["experiments"] == ["depth"]
    assert (rc == 0) == all(c["verdict"] == "PASS" for c in written["claims"])
    assert (out / "figures" / "expdepth.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    # the existing folder is refused now (not empty): bad input
    assert cli_main(["experiments", "depth", "--profile", "tiny", "--out", str(out)]) == 2


def test_cli_interrupt_leaves_nothing(tmp_path, monkeypatch, capsys):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(suite, "run_suite", boom)
    out = tmp_path / "run"
    assert cli_main(["experiments", "steps", "--profile", "tiny", "--out", str(out)]) == 130
    assert list(tmp_path.iterdir()) == []
    assert "nothing written" in capsys.readouterr().err


def test_json_has_no_nan_literals(doc):
    from universality.experiments.output import dumps

    d = dict(doc)
    d["claims"] = [dict(doc["claims"][0], residual=math.nan)]
    text = dumps(d)
    assert "NaN" not in text and json.loads(text)["claims"][0]["residual"] == "nan"


def test_plots(doc):
    from universality.experiments.output import plots

    figs = plots(doc)
    assert [f["key"] for f in figs] == ["steps", "ood", "depth"]
    assert all(f["png"][:4] == b"\x89PNG" and f["file"].startswith("figures/") for f in figs)
