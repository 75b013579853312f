"""The mutation tool (tools/mutation.py): the verifier catches >= 95% of meaningful mutants.

"Meaningful" is decided by execution (the outputs differ on some probe); see docs/mutation.md.
"""
from __future__ import annotations

import numpy as np
import pytest

from universality import Config, build
from tools.mutation import all_mutants, behaviour, main, probe_inputs, run
from universality.samples import make_samples


@pytest.mark.parametrize("cfg", [
    Config(N=4, J=2, L=1, samples=4),
    Config(N=4, J=1, L=2, dy=2, samples=4, alpha=-0.5, relu_grad_at_zero=0.5),
], ids=["N4-J2-L1", "N4-J1-L2-dy2-negalpha-r0.5"])
def test_kill_fraction_at_least_95_percent(cfg):
    report = run(cfg, per_block=1, explain_all=False)
    families = {r.family for r in report.results}
    # every block type of the weights and every structural family is exercised
    for fam in ("switch / feature map", "structure", "epsilon", "r compensation", "code table", "W_g sign",
                "binning", "code permutation", "code collision", "stale layer", "W_g / theta_b' scale"):
        assert fam in families
    by = report.by_family()
    for fam in ("binning", "code permutation", "code collision", "stale layer"):
        assert by[fam]["meaningful"] >= 1 and by[fam]["kill_rate"] == 1.0, (fam, by[fam])
    assert any(f.startswith("weight mid<-top") for f in families)
    assert any(f.startswith("head W_g") for f in families)
    assert len(report.meaningful) >= 50
    assert report.kill_fraction >= 0.95, [(r.id, r.behaviour_change) for r in report.survivors]
    for r in report.survivors:  # every survivor comes with an explanation found by execution
        assert r.explanation and "not yet explained" not in r.explanation


def test_equivalence_is_decided_by_execution():
    """An entry of W_1's top rows is never read: the outputs are bit-identical on every probe."""
    cfg = Config(N=5, J=2, L=2, samples=2)
    con = build(cfg)
    probes = probe_inputs(con.design, make_samples(2, 0, 2, 2))
    ref = behaviour(con, probes)
    W = con.W.copy()
    W[0, 0, 0] = 7.0  # W_1[top.x[0], top.x[0]]
    from dataclasses import replace

    same = behaviour(replace(con, W=W), probes)
    assert all(a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[3], b[3])
               for a, b in zip(ref, same))
    W2 = con.W.copy()
    W2[2, con.blocks.mid.start, con.blocks.mid.start] *= 1.5  # a middle weight of W_3: read
    other = behaviour(replace(con, W=W2), probes)
    assert any(not np.array_equal(a[3], b[3]) for a, b in zip(ref, other))


def test_every_block_type_has_mutants():
    con = build(Config(N=5, J=2, L=2))
    fams = {m.family for m in all_mutants(con, per_block=1)}
    for r in ("top.x", "top.star", "mid", "bottom"):
        for c in ("top.x", "top.star", "mid", "bottom"):
            assert any(f.startswith(f"weight {r}<-{c}") for f in fams), (r, c)


def test_cli_prints_kill_fraction(capsys):
    rc = main(["--N", "4", "--J", "1", "--L", "1", "--samples", "1", "--per-block", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "killed:" in out and "survivors:" in out


def test_cli_bad_input_exit_2(capsys):
    assert main(["--N", "3", "--J", "1", "--L", "2"]) == 2
    assert main(["--N", "5", "--J", "2", "--L", "2", "--relu-grad-at-zero", "0"]) == 2  # baseline fails
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_json_and_equivalent_listing():
    """The JSON report and the listing of equivalent mutants, each with an explanation found by execution."""
    import io
    import json

    from tools.mutation import render

    report = run(Config(N=4, J=1, L=1, samples=0), per_block=1, explain_all=True)
    data = json.loads(json.dumps(report.as_dict(), default=str))
    assert data["meaningful"] > 0 and data["kill_fraction"] >= 0.95
    assert data["equivalent"] > 0 and all(m["explanation"] for m in data["equivalent_mutants"])
    buf = io.StringIO()
    render(report, file=buf, show_equivalent=True)
    assert "equivalent mutants:" in buf.getvalue()


def test_new_families_are_killed_on_the_paper_layout():
    """Issue 11's bug classes on a paper-layout network: every meaningful binning, code permutation,
    code collision and stale-layer mutant is killed (every-cell on)."""
    report = run(Config(N=6, J=2, L=2, samples=4), per_block=1, explain_all=False)
    by = report.by_family()
    for fam in ("binning", "code permutation", "code collision", "stale layer"):
        assert by[fam]["meaningful"] >= 1, fam
        assert by[fam]["killed"] == by[fam]["meaningful"], (fam, by[fam], [r.id for r in report.survivors])
    # a stale layer in the post-step pass changes f(x*; theta') only for the cells of its layer
    assert by["stale layer"]["mutants"] == 6


def test_runs_as_a_script_outside_the_package():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert not (root / "universality" / "mutation.py").exists()
    out = subprocess.run([sys.executable, str(root / "tools" / "mutation.py"), "--N", "4", "--J", "1", "--L", "1",
                          "--samples", "0", "--per-block", "1"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "killed:" in out.stdout
