#!/usr/bin/env python3
"""Regenerate docs/example-report/: the report of the default run, as a reader would get it from

    verify-construction --N 6 --J 4 --L 4 --report docs/example-report --format html,tex --force

tests/test_docs_example.py regenerates it into a temporary folder and fails when the committed copy
is stale (timestamps, versions and timings are normalised away; pictures are compared by name).

Usage: python scripts/regenerate_example_report.py [OUT_DIR]   (default: docs/example-report)
"""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARGV = ["--N", "6", "--J", "4", "--L", "4", "--report", "docs/example-report", "--format", "html,tex"]
FIXED_TIME = dt.datetime(2018, 4, 30, 12, 0, 0, tzinfo=dt.timezone.utc)  # ICLR 2018


def generate(out_dir: Path) -> Path:
    from universality import Config, verify
    from universality.report import write_report

    report = verify(Config(N=6, J=4, L=4), report_data=True)
    return write_report(report, out_dir, formats=("html", "tex"), force=True, argv=ARGV, now=FIXED_TIME)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "example-report"
    path = generate(out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
