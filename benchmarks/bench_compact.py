"""Wall time of the compact layout against the width of its top block (issue 10).

    python benchmarks/bench_compact.py                       # N = 6, J = L = 128, 256, 512, 1024
    python benchmarks/bench_compact.py --widths 256 1024 --repeats 3 --json out.json

The compact layout needs only N = 6 layers whatever J and L, but its top block is J + L wide and its
code table has J L cells, every one with a nonzero code (the moment curve): the top blocks of the
middle layers hold about J L weights each. This measures `python -m universality --N 6 --J w --L w`
(all claims and findings, default samples) in a fresh process per run, so wall time includes start-up
and imports, and reports the process's user + system CPU time and peak resident set size beside it.
It fits the exponent of wall time against the top-block width J + L (least squares on log-log over the
measured widths): the floor is 2 (every one of the J L code entries is touched a few times); the first
version grew with the cube (dense SVD and eigenvalues of (J + L)-wide products, dense code tables
from exact Fractions). Target: `--N 6 --J 1024 --L 1024` <= 10 s on the 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the CLI in a child process that reports its own CPU time and peak RSS on its last stderr line
CHILD = ("import resource, sys\n"
         "from universality.cli import main\n"
         "rc = main(sys.argv[1:])\n"
         "ru = resource.getrusage(resource.RUSAGE_SELF)\n"
         "print('usage', ru.ru_utime + ru.ru_stime, ru.ru_maxrss, file=sys.stderr)\n"
         "sys.exit(rc)\n")


def measure(width: int, N: int) -> dict:
    args = ["--N", str(N), "--J", str(width), "--L", str(width), "--json"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise SystemExit(f"benchmark run failed: {' '.join(args)}: {p.stderr.strip()[-500:]}")
    doc = json.loads(p.stdout)
    cpu, rss_kib = p.stderr.strip().splitlines()[-1].split()[1:]
    bad = [c["id"] for c in doc["claims"] if c["verdict"] not in ("PASS", "SKIPPED")]
    return {"J": width, "L": width, "N": N, "top_width": 2 * width, "cells": width * width,
            "wall_s": round(wall, 3), "cpu_s": round(float(cpu), 3), "peak_rss_mib": round(int(rss_kib) / 1024, 1),
            "passed": doc["passed"], "not_passed": bad, "phases_s": doc["timings_s"]}


def fit_exponent(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / den if den else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", type=int, nargs="+", default=[128, 256, 512, 1024], help="J = L values")
    ap.add_argument("--N", type=int, default=6, help="layers (default 6: m = 4 code channels)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per width (the best is reported)")
    ap.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    a = ap.parse_args()
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platform without getloadavg
        load = float("nan")
    print(f"compact layout, N = {a.N}; load average {load:.2f} at start; best of {a.repeats}")
    print(f"{'J=L':>5} {'J+L':>5} {'cells':>9} {'wall s':>8} {'cpu s':>7} {'peak MiB':>9}  claims/findings s  passed")
    rows = []
    for w in a.widths:
        runs = [measure(w, a.N) for _ in range(a.repeats)]
        r = min(runs, key=lambda t: t["wall_s"])
        r["walls_s"] = [t["wall_s"] for t in runs]
        rows.append(r)
        ph = r["phases_s"]
        print(f"{w:>5} {2 * w:>5} {w * w:>9,} {r['wall_s']:>8.2f} {r['cpu_s']:>7.2f} {r['peak_rss_mib']:>9.1f}  "
              f"{ph.get('claims', 0):.2f}/{ph.get('findings', 0):.2f}  {r['passed']}"
              + (f" (not passed: {', '.join(r['not_passed'])})" if r["not_passed"] else ""))
    out = {"load_average_at_start": load, "rows": rows}
    if len(rows) >= 2:
        xs = [r["top_width"] for r in rows]
        out["exponent_wall_vs_top_width"] = round(fit_exponent(xs, [r["wall_s"] for r in rows]), 2)
        out["exponent_cpu_vs_top_width"] = round(fit_exponent(xs, [r["cpu_s"] for r in rows]), 2)
        tail = rows[-2:]
        out["exponent_last_two_widths"] = round(fit_exponent([r["top_width"] for r in tail],
                                                             [r["wall_s"] for r in tail]), 2)
        print(f"fitted exponent of wall time against the top-block width J + L: {out['exponent_wall_vs_top_width']} "
              f"(CPU: {out['exponent_cpu_vs_top_width']}; last two widths: {out['exponent_last_two_widths']}; "
              f"floor 2, the first version 3)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
