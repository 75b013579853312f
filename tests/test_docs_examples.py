"""The Python examples in README.md and docs/*.md run and do what they say."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def test_readme_api_example_runs():
    (block,) = python_blocks(ROOT / "README.md")
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    assert namespace["report"].passed


def test_api_doc_example_catches_the_corruption(capsys):
    blocks = python_blocks(ROOT / "docs" / "api.md")
    exec(compile(blocks[-1], "docs/api.md", "exec"), {})  # noqa: S102
    assert capsys.readouterr().out.startswith("FAIL before: h_post")


def _run_block(code: str, cwd) -> str:
    """Run a docs block in a fresh interpreter (the loader imports PyTorch and JAX where installed;
    JAX's threads in the test process would make later fork()s unsafe). Returns its stdout."""
    import os
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def test_export_doc_recipe_reproduces_zbar(tmp_path, monkeypatch):
    from tests.helpers import run_cli

    monkeypatch.chdir(tmp_path)
    assert run_cli("--N", "6", "--J", "3", "--L", "2", "--samples", "1", "--export", "out",
                   "--no-findings", cwd=tmp_path).returncode == 0
    loader, recipe = python_blocks(ROOT / "docs" / "export.md")
    exec(compile(recipe, "docs/export.md", "exec"), {})  # noqa: S102  (asserts inside)
    _run_block(loader, tmp_path)  # dense form
    assert run_cli("--N", "6", "--J", "3", "--L", "2", "--samples", "1", "--export", "out2",
                   "--engine", "sparse", "--no-findings", cwd=tmp_path).returncode == 0
    assert '"W_format": "coo"' in (tmp_path / "out2" / "construction.json").read_text()
    _run_block(loader.replace('"out/', '"out2/'), tmp_path)  # COO form


def test_export_doc_jax_loader_both_forms(tmp_path, monkeypatch):
    """The JAX part of docs/export.md's loader (BCOO per layer and the dense stack) reproduces the
    forward pass on a dense and on a COO export; skipped without JAX."""
    import importlib.util

    if importlib.util.find_spec("jax") is None:  # not imported here: the loader runs in a subprocess
        pytest.skip("JAX is not installed (pip install -e '.[experiments]')")
    from tests.helpers import run_cli

    monkeypatch.chdir(tmp_path)
    loader, _ = python_blocks(ROOT / "docs" / "export.md")
    assert "jsparse.BCOO" in loader and 'find_spec("jax")' in loader
    for out, engine in (("out", "dense"), ("out2", "sparse")):
        assert run_cli("--N", "6", "--J", "3", "--L", "2", "--samples", "1", "--export", out, "--engine", engine,
                       "--no-findings", cwd=tmp_path).returncode == 0
        probe = loader.replace('"out/', f'"{out}/') + '\nprint("JAX ran", "hj" in dir() and "hd" in dir())\n'
        assert "JAX ran True" in _run_block(probe, tmp_path)  # its asserts compare with the NumPy pass
        fmt = json.loads((tmp_path / out / "construction.json").read_text())["W_format"]
        assert fmt == ("coo" if engine == "sparse" else "dense")


@pytest.mark.parametrize("name", ["json.md", "export.md", "api.md", "tolerances.md"])
def test_docs_exist(name):
    assert (ROOT / "docs" / name).stat().st_size > 200
