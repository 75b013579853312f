"""The CLI as a user runs it: a subprocess, exit codes, one-line errors, JSON, export."""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from tests.helpers import run_cli


def test_readme_command_passes_with_compact_layout():
    p = run_cli("--N", "6", "--J", "4", "--L", "4")
    assert p.returncode == 0, p.stderr
    assert "layout: compact (auto" in p.stdout
    assert re.search(r"all \d+ claims PASS", p.stdout)  # 12 one-shot claims + loss-recovers-label
    for fid in ("relu-grad-at-zero", "sign-of-y", "psd-implication", "zero-label", "depth-jl"):
        assert fid in p.stdout
    assert p.stderr == ""


def test_paper_layout_with_wrong_N_names_the_right_N():
    p = run_cli("--N", "6", "--J", "4", "--L", "4", "--layout", "paper")
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "N = 18" in lines[0]


def test_paper_layout_passes_at_N_18():
    p = run_cli("--N", "18", "--J", "4", "--L", "4", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["passed"] is True
    assert doc["construction"]["layout"] == "paper"


def test_paper_variant_fails_with_exit_1():
    p = run_cli("--N", "6", "--J", "4", "--L", "4", "--variant", "paper", "--json")
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    verdicts = {c["id"]: c["verdict"] for c in doc["claims"]}
    assert verdicts["z-star-is-minus-alpha-v"] == "FAIL"
    assert verdicts["grad-rank-one"] == "PASS"


@pytest.mark.parametrize("args", [
    ["--N", "3", "--J", "2", "--L", "2"],
    ["--N", "6", "--J", "0", "--L", "2"],
    ["--N", "6", "--J", "2", "--L", "-1"],
    ["--N", "six", "--J", "2", "--L", "2"],
    ["--N", "6.5", "--J", "2", "--L", "2"],
    ["--N", "6", "--J", "2", "--L", "2", "--alpha", "0"],
    ["--N", "6", "--J", "2", "--L", "2", "--alpha", "nan"],
    ["--N", "6", "--J", "2", "--L", "2", "--alpha", "inf"],
    ["--N", "6", "--J", "2", "--L", "2", "--eps", "0"],
    ["--N", "6", "--J", "2", "--L", "2", "--eps", "-0.1"],
    ["--N", "6", "--J", "2", "--L", "2", "--unknown"],
    ["--N", "6", "--J", "2"],
    ["--N", "100000", "--J", "50", "--L", "50"],
    ["--N", "6", "--J", "2", "--L", "2", "--variant", "nope"],
])
def test_bad_input_is_one_line_exit_2(args):
    p = run_cli(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert p.stdout == ""


def test_huge_sizes_refused_with_estimate():
    p = run_cli("--N", "5000", "--J", "40", "--L", "40", "--engine", "dense")
    assert p.returncode == 2
    assert "GiB" in p.stderr or "TiB" in p.stderr
    p = run_cli("--N", "100000", "--J", "40", "--L", "40")  # too big for the sparse engine as well
    assert p.returncode == 2
    assert ("GiB" in p.stderr or "TiB" in p.stderr) and "sparse engine" in p.stderr


def test_json_schema_fields():
    p = run_cli("--N", "5", "--J", "2", "--L", "3", "--dy", "2", "--samples", "3", "--seed", "7", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    c = doc["construction"]
    for key in ("N", "J", "L", "D", "dy", "layout", "variant", "eps", "alpha", "relu_grad_at_zero"):
        assert key in c
    assert {"id", "verdict", "residual", "tolerance", "paper_ref"} <= set(doc["claims"][0])
    assert {"id", "demonstrated", "counterexample"} <= set(doc["findings"][0])
    assert isinstance(doc["passed"], bool)
    assert len(doc["samples"]) == 3 + 7


def test_seed_reproducible():
    a = run_cli("--N", "5", "--J", "2", "--L", "2", "--samples", "4", "--seed", "3", "--json")
    b = run_cli("--N", "5", "--J", "2", "--L", "2", "--samples", "4", "--seed", "3", "--json")
    da, db = json.loads(a.stdout), json.loads(b.stdout)
    da.pop("timings_s"), db.pop("timings_s")
    assert da == db


def test_export_files_and_reload(tmp_path):
    out = tmp_path / "exp"
    p = run_cli("--N", "6", "--J", "2", "--L", "3", "--samples", "2", "--export", str(out))
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(out)) == ["construction.json", "construction.npz"]
    meta = json.loads((out / "construction.json").read_text())
    data = np.load(out / "construction.npz")
    assert data["W"].shape == (6, meta["D"], meta["D"])
    assert data["zbar_star"].shape == (9, meta["blocks"]["middle"][1] - meta["blocks"]["middle"][0])
    assert meta["loss"]["formula"]
    assert len(meta["code_table"]) == 4


def test_export_to_a_file_is_refused_without_writing(tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    p = run_cli("--N", "6", "--J", "2", "--L", "2", "--export", str(target))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert target.read_text() == "x"
    assert sorted(os.listdir(tmp_path)) == ["afile"]


def test_bad_input_with_export_writes_nothing(tmp_path):
    out = tmp_path / "exp"
    p = run_cli("--N", "3", "--J", "2", "--L", "2", "--export", str(out))
    assert p.returncode == 2
    assert not out.exists() and os.listdir(tmp_path) == []


def test_help_explains_every_option():
    p = run_cli("--help")
    assert p.returncode == 0
    for opt in ("--N", "--J", "--L", "--dx", "--dy", "--alpha", "--eps", "--variant", "--layout",
                "--relu-grad-at-zero", "--samples", "--seed", "--json", "--export", "--max-memory"):
        assert opt in p.stdout
    assert "exit status" in p.stdout
