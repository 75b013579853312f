"""The docs build as a site: `mkdocs build --strict` from mkdocs.yml (docs/ is the source), so a
broken link or a page missing from the navigation fails the suite."""
from __future__ import annotations

import subprocess
import sys

import pytest

from .helpers import ROOT


def test_docs_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs")
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                        str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "options" / "index.html").exists()


def test_every_docs_page_is_in_the_navigation():
    import re

    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    listed = set(re.findall(r":\s*([\w.-]+\.md)\s*$", nav, flags=re.MULTILINE))
    assert pages == listed, pages ^ listed
