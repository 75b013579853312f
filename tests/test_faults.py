"""File-system faults: a full disk (ENOSPC), read-only folders, dangling links, Ctrl-C.

Each case gets exactly the documented exit code (3 for an I/O failure while writing, 2 for a path
refused up front, 130 for an interrupt), one line on stderr, and leaves no partial file behind.
A full disk is a real 256 KiB tmpfs where this process may mount one (root, mount allowed);
otherwise the write is patched to fail with ENOSPC. Read-only folders are a read-only tmpfs
(root) or chmod 0555 (anyone else: root ignores permission bits).
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from universality.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE

from .helpers import ROOT
from .test_cli_fuzz import check_contract, run_in_process

# W alone is 20 x 45 x 45 float64 = 324 KB: more than the small tmpfs holds
BIG = ["--N", "20", "--J", "4", "--L", "4", "--samples", "1", "--no-findings"]
SMALL = ["--N", "5", "--J", "2", "--L", "2", "--samples", "1", "--no-findings"]


def _mount(path: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return p.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def small_disk(tmp_path: Path):
    """(folder, real): a 256 KiB tmpfs when mountable, else a plain folder (real = False)."""
    disk = tmp_path / "disk"
    if _mount(disk, "size=256k,mode=0777"):
        try:
            yield disk, True
        finally:
            _umount(disk)
    else:
        disk.mkdir()
        yield disk, False


def _cli(argv, cwd=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-m", "universality", *argv], capture_output=True, text=True, env=env,
                       cwd=cwd, timeout=300)
    return p.returncode, p.stdout, p.stderr


def _one_line_error(rc, err, want):
    assert rc == want, (rc, err)
    assert err.count("\n") == 1 and err.startswith("verify-construction: error: "), err
    assert "Traceback" not in err


@pytest.mark.parametrize("option", ["--export", "--report"])
def test_full_disk_is_exit_3_and_leaves_nothing(tmp_path, option, monkeypatch):
    with small_disk(tmp_path) as (disk, real):
        target = disk / "deep" / "out"
        if real:
            rc, out, err = _cli([*BIG, option, str(target)])
        else:
            def full(*a, **k):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(np, "savez", full)
            from universality.report import render as report_render

            monkeypatch.setattr(report_render, "render_html", full)
            rc, out, err = run_in_process([*BIG, option, str(target)])
        _one_line_error(rc, err, EXIT_ERROR)
        assert "No space left" in err, err
        assert list(disk.iterdir()) == [], list(disk.rglob("*"))


def test_plot_on_a_full_disk_leaves_nothing(tmp_path, monkeypatch):
    import matplotlib.figure

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    rc, out, err = run_in_process([*SMALL, "--target", "copy", "--sweep", "2,3", "--test-points", "3",
                                   "--plot", str(tmp_path / "p" / "conv.png")])
    _one_line_error(rc, err, EXIT_ERROR)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--export", "--report"])
def test_read_only_folder_is_refused_up_front(tmp_path, option):
    ro = tmp_path / "ro"
    mounted = False
    if os.geteuid() == 0:
        mounted = _mount(ro, "ro,size=64k")
        if not mounted:
            pytest.skip("root ignores permission bits and no read-only tmpfs can be mounted here")
    else:
        ro.mkdir()
        ro.chmod(0o555)
    try:
        rc, out, err = run_in_process([*SMALL, option, str(ro / "sub" / "out")])
        check_contract(rc, out, err, option)
        _one_line_error(rc, err, EXIT_USAGE)
        assert "not writable" in err
        assert list(ro.iterdir()) == []
    finally:
        if mounted:
            _umount(ro)
        else:
            ro.chmod(0o755)


@pytest.mark.parametrize("option", ["--export", "--report", "--plot"])
def test_dangling_links_are_refused(tmp_path, option):
    link = tmp_path / ("conv.png" if option == "--plot" else "link")
    link.symlink_to(tmp_path / "nowhere")
    extra = ["--target", "copy", "--sweep", "2"] if option == "--plot" else []
    for path in (link, link / "below"):
        rc, out, err = run_in_process([*SMALL, *extra, option, str(path)])
        _one_line_error(rc, err, EXIT_USAGE)
    assert [p.name for p in tmp_path.iterdir()] == [link.name]


def test_ctrl_c_is_exit_130_and_leaves_nothing(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "universality", "--N", "6", "--J", "4", "--L", "4",
                             "--samples", "5000", "--export", str(out / "export"), "--report", str(out / "rep")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # a shell without job control starts background jobs with SIGINT ignored, and
                            # Python then keeps it ignored: give the child the default disposition, as a
                            # terminal's Ctrl-C would find it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(6)  # past start-up (imports), well inside the 5000-sample run
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, (proc.returncode, stderr)
    assert stderr.strip().count("\n") == 0 and "interrupted" in stderr, stderr
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_writing_leaves_no_partial_export(tmp_path, monkeypatch):
    from universality import export

    real = np.savez

    def interrupted(path, **arrays):
        real(path, **arrays)  # the file exists in the temporary folder, then Ctrl-C arrives
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    target = tmp_path / "a" / "b"
    rc, out, err = run_in_process([*SMALL, "--export", str(target)])
    assert rc == EXIT_INTERRUPTED, err
    assert list(tmp_path.iterdir()) == []
    assert export.OUTPUTS  # the names an export writes
