"""CLI fuzzing: Hypothesis-generated argument vectors (valid, out of range, wrong types, huge).

The CLI must always exit 0, 1 or 2, never print a traceback or an 'internal error', and on exit 2
print exactly one line on stderr and nothing on stdout. Most examples call
``universality.cli.main(argv)`` in-process (fast); a few run the real subprocess via run_cli().
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile

from hypothesis import example, given, strategies as st

from universality.cli import main

from .helpers import run_cli

HUGE = ["99999999999999999999", "10000000", "1e400", "340282366920938463463374607431768211457"]
BAD_INT = ["five", "", " ", "2.5", "1e3", "0x10", "-", "--", "NaN", "\u0663\u0663", "1_0", "\x00"]
BAD_REAL = ["nan", "inf", "-inf", "1e309", "abc", "", "1,5", "--1", "0x1p3"]


def ints(lo: int, hi: int):
    """(valid, hostile) argv texts: small valid values; out of range, wrong types and huge ones."""
    hostile = st.one_of(st.integers(-5, lo - 1).map(str), st.sampled_from(BAD_INT), st.text(max_size=4),
                        st.sampled_from(HUGE))
    return st.integers(lo, hi).map(str), hostile


def reals(lo: float, hi: float):
    valid = st.one_of(st.floats(lo, hi, allow_nan=False).map(repr), st.sampled_from([repr(lo), repr(hi)]))
    hostile = st.one_of(st.sampled_from(BAD_REAL), st.sampled_from(["-0.0", "0", "1e-320", "1e300", "-1"]),
                        st.text(max_size=4), st.floats().map(repr))
    return valid, hostile


OPTIONS = {
    "--N": ints(4, 8), "--J": ints(1, 3), "--L": ints(1, 3), "--dx": ints(1, 2), "--dy": ints(1, 2),
    "--alpha": reals(-10.0, 10.0), "--eps": reals(1e-12, 1e3), "--relu-grad-at-zero": reals(0.0, 10.0),
    "--variant": (st.sampled_from(["signed", "paper"]), st.sampled_from(["Signed", "", "both"])),
    "--layout": (st.sampled_from(["auto", "compact", "paper"]), st.sampled_from(["truncated", "x", ""])),
    "--samples": (st.integers(0, 2).map(str), st.sampled_from(["-1", "x", "1000000", "99999999999", "1.5"])),
    "--seed": ints(0, 10**6), "--max-memory": reals(1e-3, 1e300),
    "--loss": (st.sampled_from(["mse", "l1", "hinge", "huber"]), st.sampled_from(["ce", "CE", "", "mse2"])),
    "--K": (st.integers(1, 2).map(str), st.sampled_from(["0", "-1", "10000000", "k"])),
    "--backend": (st.sampled_from(["numeric", "auto"]), st.sampled_from(["", "exact", "Both"])),
    "--target": (st.sampled_from(["copy", "cos"]), st.sampled_from(["", "nosuch", "os:system", ":", "a:"])),
    "--sweep": (st.sampled_from(["2", "2,3"]), st.sampled_from(["4,2", "", ",", "0", "2,,3", "9999999"])),
    "--y-max": reals(0.5, 4.0), "--y-min": reals(0.01, 0.4),
    "--test-points": (st.integers(1, 5).map(str), st.sampled_from(["0", "-3", "10000000"])),
    "--export": (st.sampled_from(["out", "a/b/out"]), st.sampled_from(["", " ", "/proc/version", "/dev/null/x"])),
    "--report": (st.sampled_from(["rep", "x/rep"]), st.sampled_from(["", "/proc/version", "/dev/null/r"])),
}
FLAGS = ["--json", "--no-findings", "--bogus", "-x", "--N", "--export", "--force", "--debug", "--symbolic-relu"]


@st.composite
def argvs(draw):
    """Mostly well-formed vectors with the odd hostile value, flag or missing size."""
    argv: list = []
    present = draw(st.lists(st.sampled_from(list(OPTIONS)[3:]), max_size=6, unique=True))
    for req in ("--N", "--J", "--L"):
        if draw(st.integers(0, 19)) > 0:
            present.append(req)
    for key in present:
        valid, hostile = OPTIONS[key]
        value = draw(valid if draw(st.integers(0, 19)) < 18 else hostile)
        argv += [key, value] if draw(st.integers(0, 9)) > 0 else [f"{key}={value}"]
    if draw(st.integers(0, 4)) == 0:
        argv += draw(st.lists(st.sampled_from(FLAGS), min_size=1, max_size=2))
    if draw(st.integers(0, 3)) > 0:
        argv.append("--no-findings")  # keeps the valid runs short; findings are exercised below
    if "--target" in argv and "--sweep" not in argv:
        argv += ["--sweep", "2", "--test-points", "3"]  # keeps a universality run short
    return draw(st.permutations(argv)) if draw(st.integers(0, 4)) == 0 else argv


def run_in_process(argv: list) -> tuple:
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        cwd = os.getcwd()
        os.chdir(tmp)  # --export without a value, or a relative DIR, stays inside the temporary folder
        try:
            rc = main([str(a) for a in argv])
        finally:
            os.chdir(cwd)
    return rc, out.getvalue(), err.getvalue()


def check_contract(rc: int, out: str, err: str, argv) -> None:
    """0/1 with valid output (--json: valid JSON matching the shipped schema), or 2 with exactly one
    line on stderr and nothing on stdout. Exit 3 (internal/I-O error) never comes from input."""
    assert rc in (0, 1, 2), (rc, argv, err)
    assert "Traceback" not in out + err, (argv, err)
    assert "internal error" not in err, (argv, err)
    if rc == 2:
        assert err.count("\n") == 1 and err.startswith("verify-construction: error: "), (argv, err)
        assert out == "", (argv, out[:200])
    elif "--json" in [str(a) for a in argv] and "--help" not in argv:
        import json

        from .schema import validate

        validate(json.loads(out))


@given(argvs())
@example(["--N", "6", "--J", "4", "--L", "4"])  # the README's command
@example(["--N", "6", "--J", "4", "--L", "4", "--variant", "paper", "--no-findings"])
@example(["--N", "6", "--J", "4", "--L", "4", "--dx", "99999999999999999999"])  # used to hang on J**dx
@example(["--N", "6", "--J", "4", "--L", "4", "--max-memory", "1e300", "--no-findings", "--samples", "0"])
@example(["--N", "4", "--J", "1", "--L", "1", "--samples", "99999999999"])
@example(["--N", "16", "--J", "4", "--L", "4", "--layout", "paper"])
@example(["--N", "6", "--J", "4", "--L", "4", "--relu-grad-at-zero", "0", "--json"])
@example(["--N", "6", "--J", "4", "--L", "4", "--eps", "1e-320", "--no-findings"])
@example(["--N=5", "--J=2", "--L=2", "--json", "--json"])
@example(["--N", "5", "--J", "2", "--L", "2", "--export"])
@example([])
def test_cli_contract_in_process(argv):
    check_contract(*run_in_process(argv), argv)


def test_help_and_version_exit_0():
    for argv in (["--help"], ["--version"]):
        rc, out, err = run_in_process(argv)
        assert rc == 0 and out and "Traceback" not in err


def test_subprocess_contract():
    """A few real runs of `python -m universality` (the user's view)."""
    cases = [
        (["--N", "5", "--J", "2", "--L", "2", "--samples", "1"], 0),
        (["--N", "5", "--J", "2", "--L", "2", "--samples", "1", "--variant", "paper", "--no-findings"], 1),
        (["--N", "3", "--J", "2", "--L", "2"], 2),
        (["--N", "5", "--J", "2", "--L", "2", "--alpha", "nan"], 2),
        (["--N", "5", "--J", "two", "--L", "2"], 2),
        (["--N", "6", "--J", "4", "--L", "4", "--dx", "99999999999999999999"], 2),
    ]
    for argv, want in cases:
        p = run_cli(*argv)
        assert p.returncode == want, (argv, p.returncode, p.stderr)
        check_contract(p.returncode, p.stdout, p.stderr, argv)


def test_export_contract_in_process():
    """--export writes both files on success (creating missing parents); a bad target is one line,
    exit 2, nothing written; existing output needs --force."""
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, "out")
        small = ["--N", "5", "--J", "2", "--L", "2", "--samples", "1", "--no-findings"]
        rc, out, err = run_in_process([*small, "--export", target])
        assert rc == 0, err
        assert sorted(os.listdir(target)) == ["construction.json", "construction.npz"]
        blocker = os.path.join(tmp, "file")
        open(blocker, "w").close()
        for bad in (blocker, os.path.join(blocker, "out"), "", target):
            rc, out, err = run_in_process([*small, "--export", bad])
            check_contract(rc, out, err, bad)
            assert rc == 2, (bad, err)
        assert sorted(os.listdir(tmp)) == ["file", "out"]
        rc, out, err = run_in_process([*small, "--export", target, "--force"])
        assert rc == 0, err
        nested = os.path.join(tmp, "missing", "deeper", "out")
        rc, out, err = run_in_process([*small, "--export", nested])
        assert rc == 0, err
        assert sorted(os.listdir(nested)) == ["construction.json", "construction.npz"]


def test_python_dash_m_entry_point(monkeypatch):
    """`python -m universality` runs cli.main and exits with its status (in-process via runpy)."""
    import runpy
    import sys

    import pytest

    monkeypatch.setattr(sys, "argv", ["universality", "--N", "3", "--J", "1", "--L", "1"])
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        runpy.run_module("universality", run_name="__main__")
    assert exc.value.code == 2 and err.getvalue().count("\n") == 1


def test_negative_scientific_values_are_values():
    """argparse took `--alpha -1e-8` for an option; negative numbers in any notation are values."""
    for value in ("-1e-8", "-2.5E3", "-0.3", "-3"):
        rc, out, err = run_in_process(["--N", "5", "--J", "2", "--L", "2", "--alpha", value, "--samples", "0",
                                       "--no-findings"])
        assert rc == 0, (value, err)
