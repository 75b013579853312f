"""One regression test per hostile input named in issue 14's "Why": each gets the documented exit
code (0 pass, 1 FAIL/UNDECIDED, 2 bad input, 3 internal/I-O error) with one line on stderr, never a
wrong verdict, and --json output is always valid JSON that matches the shipped schema."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from universality.errors import EXIT_ERROR, EXIT_USAGE

from .helpers import ROOT, run_cli
from .test_cli_fuzz import check_contract, run_in_process

SMALL = ["--N", "6", "--J", "4", "--L", "4", "--samples", "2", "--no-findings"]


def _refused(argv, *needles):
    rc, out, err = run_in_process(argv)
    check_contract(rc, out, err, argv)
    assert rc == EXIT_USAGE, (argv, rc, err)
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.mark.parametrize("value", ["1e300", "1e-300"])
def test_relu_grad_at_zero_out_of_float_range_is_refused_with_the_range(value):
    _refused([*SMALL, "--relu-grad-at-zero", value], "relu-grad-at-zero must be 0 or in [", "N = 6")


def test_deep_network_with_small_relu_grad_is_refused():
    _refused(["--N", "70", "--J", "2", "--L", "2", "--relu-grad-at-zero", "1e-5", "--no-findings"],
             "at N = 70")


def test_alpha_subnormal_is_refused():
    _refused([*SMALL, "--alpha", "1e-320"], "|alpha| must be in [")


def test_eps_huge_is_refused():
    _refused([*SMALL, "--eps", "1e300"], "eps must be in [")


@pytest.mark.parametrize("value", ["-inf", "inf", "nan", "-nan", "1e400"])
def test_non_finite_reals_get_a_clear_message(value):
    err = _refused([*SMALL, "--alpha", value], "--alpha")
    assert "expected one argument" not in err


def test_negative_N_names_the_real_minimum():
    _refused([*SMALL[:0], "--N", "-1", "--J", "4", "--L", "4"], "N must be >= 4")


@pytest.mark.parametrize("value", ["\u0663", "\u0663\u0663", "\uff16", "1_0", "\u00b2"])
def test_unicode_digits_are_rejected(value):
    _refused(["--N", value, "--J", "4", "--L", "4"], "ASCII digits")


def test_symbolic_relu_is_not_silently_ignored():
    _refused([*SMALL, "--backend", "numeric", "--symbolic-relu"], "--symbolic-relu")
    _refused([*SMALL, "--symbolic-relu"], "--symbolic-relu")  # auto picks numeric at these sizes


def test_sweep_out_of_order_is_refused():
    _refused([*SMALL, "--target", "copy", "--sweep", "4,2"], "--sweep 2,4")


def test_ce_with_target_is_refused_with_the_real_reason():
    err = _refused([*SMALL, "--loss", "ce", "--dy", "2", "--target", "copy"], "simplex")
    assert "sign gap" not in err


def test_ce_dy3_copy_is_refused_up_front():
    """It used to grow to 18.8 GB: refused now by the memory model or the loss check, in no time."""
    _refused([*SMALL, "--loss", "ce", "--dy", "3", "--target", "copy"])


def test_huge_sweep_refused_by_the_model_not_by_free_memory():
    err = _refused([*SMALL, "--target", "copy", "--sweep", "2,4,1000"])
    assert "sweep level" in err or "too large" in err


def test_memory_answer_does_not_depend_on_free_memory(monkeypatch):
    from universality import memory

    monkeypatch.setattr(memory, "total_memory_bytes", lambda: 64 * 2**30)
    from universality.config import Config

    cfg = Config(N=6, J=4, L=4)
    assert memory.limit_bytes() == 32 * 2**30
    parts = memory.components(cfg)
    # the engine's own model counts the weights, so there is no separate "construction" component
    assert set(parts) >= {"engine", "findings"}
    assert sum(parts.values()) < memory.limit_bytes()
    from universality.universal import UniversalOptions

    full = memory.components(cfg, universal=UniversalOptions(target="copy"), exact=True)
    assert set(full) >= {"h_post", "sweep", "exact"} and all(v > 0 for v in full.values())
    # the run's engine component is the engine's model of the engine that runs (dense here: auto, small)
    from universality.engine.memory import estimate_bytes

    assert cfg.resolved_engine == "dense"
    assert parts["engine"] == estimate_bytes(cfg, "dense")
    assert parts["engine"] == estimate_bytes(cfg.with_(engine="dense"), "dense") != estimate_bytes(cfg, "sparse")


# ---- targets -----------------------------------------------------------------------------------
TARGETS = """
import sys

def exits(x, y, xs):
    sys.exit(0)

def prints(x, y, xs):
    print("hello from the target")
    return y

def huge(x, y, xs):
    return 1e300 * (1 + 0 * y)
"""


@pytest.mark.parametrize("name, needle", [("exits", "sys.exit"), ("prints", "printed"), ("huge", "2^100")])
def test_bad_targets_are_reported_as_bad_targets(tmp_path, name, needle):
    (tmp_path / "hostile_targets.py").write_text(TARGETS)
    p = run_cli(*SMALL, "--target", f"hostile_targets:{name}", "--json", "--sweep", "2,4", "--test-points", "5",
                cwd=tmp_path)
    assert p.returncode == EXIT_USAGE, (p.returncode, p.stderr)
    assert p.stdout == "" and p.stderr.count("\n") == 1 and needle in p.stderr, p.stderr


def test_converges_with_an_infinite_rms_is_undecided_not_pass():
    from types import SimpleNamespace

    from universality.claims.base import Verdict
    from universality.claims.universal import converges

    lv = [SimpleNamespace(J=2, rms=float("inf"), sup=float("inf"), floor=float("inf"), collapsed=0, points=1,
                          grid_size=3, sup_flipped=0.0),
          SimpleNamespace(J=4, rms=float("inf"), sup=float("inf"), floor=float("inf"), collapsed=0, points=1,
                          grid_size=5, sup_flipped=0.0)]
    sw = SimpleNamespace(levels=lv, rate_rms=None, rate_sup=None, variable="h")
    assert converges(sw).verdict == Verdict.UNDECIDED


# ---- files -------------------------------------------------------------------------------------
def test_report_creates_missing_parents(tmp_path):
    rc, out, err = run_in_process([*SMALL, "--report", str(tmp_path / "out" / "report")])
    assert rc == 0, err
    assert (tmp_path / "out" / "report" / "report.html").exists()


def test_export_needs_force_to_replace(tmp_path):
    target = tmp_path / "exp"
    assert run_in_process([*SMALL, "--export", str(target)])[0] == 0
    _refused([*SMALL, "--export", str(target)], "--force")
    assert run_in_process([*SMALL, "--export", str(target), "--force"])[0] == 0


def test_export_folder_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert run_in_process([*SMALL, "--export", str(tmp_path / "a" / "exp")])[0] == 0
    finally:
        os.umask(old)
    for p in (tmp_path / "a", tmp_path / "a" / "exp"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o755, oct(p.stat().st_mode)


@pytest.mark.parametrize("option", ["--export", "--report"])
def test_empty_paths_are_refused(option):
    _refused([*SMALL, option, ""], "empty path")


@pytest.mark.parametrize("option", ["--export", "--report"])
def test_dangling_symlink_is_refused(tmp_path, option):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    _refused([*SMALL, option, str(link)], "dangling")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link"]


def test_latex_failure_is_exit_3_not_1(tmp_path, monkeypatch):
    from universality.report import latex

    def broken(tex, timeout=300, keep_log=False):
        raise latex.LatexError("LaTeX failed on report.tex: ! Undefined control sequence.")

    monkeypatch.setattr(latex, "build_pdf", broken)
    monkeypatch.setattr(latex, "toolchain_missing", lambda: None)
    target = tmp_path / "rep"
    rc, out, err = run_in_process([*SMALL, "--report", str(target), "--format", "html,pdf"])
    assert rc == EXIT_ERROR and err.count("\n") == 1 and "LaTeX" in err, (rc, err)
    assert list(tmp_path.iterdir()) == []


def test_debug_shows_the_traceback_on_exit_3(tmp_path, monkeypatch):
    from universality import export

    def boom(*a, **k):
        raise RuntimeError("planted")

    monkeypatch.setattr(export, "arrays", boom)
    rc, out, err = run_in_process([*SMALL, "--export", str(tmp_path / "e")])
    assert rc == EXIT_ERROR and err.count("\n") == 1 and "planted" in err
    rc, out, err = run_in_process([*SMALL, "--export", str(tmp_path / "e"), "--debug"])
    assert rc == EXIT_ERROR and "Traceback" in err


# ---- no process-wide side effects ---------------------------------------------------------------
def test_import_changes_no_environment_variable():
    code = ("import os; before = dict(os.environ); import universality, universality.cli; "
            "assert dict(os.environ) == before, set(os.environ) ^ set(before)")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_verify_limits_blas_threads_only_while_it_runs():
    from threadpoolctl import threadpool_info

    from universality import Config, verify

    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    seen = []
    verify(Config(N=5, J=2, L=2, samples=1), with_findings=False,
           progress=lambda d, t: seen.append([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]))
    after = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    assert before == after
    assert seen and all(all(n == 1 for n in s) for s in seen)


# ---- --json always valid, always the schema ------------------------------------------------------
def test_json_output_matches_the_shipped_schema():
    from .schema import validate

    for argv in ([*SMALL], [*SMALL, "--K", "2"], [*SMALL, "--loss", "ce", "--dy", "2"],
                 [*SMALL, "--variant", "paper"]):
        rc, out, err = run_in_process([*argv, "--json"])
        assert rc in (0, 1), err
        validate(json.loads(out))


def test_public_api_has_numpy_style_docstrings():
    import universality

    for name in universality.__all__:
        if name == "__version__":
            continue
        doc = getattr(universality, name).__doc__ or ""
        assert len(doc.strip()) > 20, name
    for name in ("Config", "build", "verify", "Design", "Construction", "Report"):
        doc = getattr(universality, name).__doc__
        assert "Parameters\n" in doc or "Attributes\n" in doc, name


# ---- progress and hints -------------------------------------------------------------------------
def test_every_phase_reports_progress():
    from universality import Config, verify

    phases = []

    def tick(done, total, phase=None):
        phases.append(phase)

    verify(Config(N=5, J=2, L=2, samples=1), progress=tick, backend="symbolic",
           symbolic_budget=120)
    assert "proving exact instances" in phases  # the bar moves under --backend symbolic
    assert any(p and p.startswith("demonstrating findings") for p in phases)
    from universality.universal import UniversalOptions

    phases.clear()
    verify(Config(N=5, J=2, L=2, samples=1), progress=tick, with_findings=False, backend="numeric",
           universal=UniversalOptions(target="copy", sweep=(2, 3), test_points=3, grid_checks=3))
    assert "checking samples" in phases and "universality: sweep levels" in phases


def test_hints_only_suggest_runs_the_budget_accepts():
    from universality.config import Config
    from universality.symbolic.budget import resolve_backend

    ran, note = resolve_backend(Config(N=146, J=12, L=12), "auto", 60.0)
    assert ran == "numeric"
    assert "run it with --backend both" not in note
    assert "--symbolic-budget" in note or "too slow" in note


def test_result_line_counts_skipped_claims_apart():
    """A run with a SKIPPED claim never says "all N claims PASS": the result line counts the SKIPPED ones
    apart (J = L = 128 printed "all 18 claims PASS" with codes-injective and every-cell SKIPPED)."""
    import io
    import dataclasses

    from universality.claims.base import Verdict
    from universality.config import Config
    from universality.console import text
    from universality.verify import verify

    report = verify(Config(N=5, J=2, L=2, samples=1), with_findings=False, backend="numeric")
    buf = io.StringIO()
    text(report, file=buf)
    assert f"all {len(report.claims)} claims PASS" in buf.getvalue()
    skipped = dataclasses.replace(report.claims[0], verdict=Verdict.SKIPPED)
    report.claims = [skipped] + list(report.claims[1:])
    buf = io.StringIO()
    text(report, file=buf)
    out = buf.getvalue()
    n = len(report.claims)
    assert f"all {n} claims PASS" not in out
    assert f"{n - 1} of {n} claims PASS, 1 SKIPPED" in out
