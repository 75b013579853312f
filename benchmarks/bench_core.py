"""Wall time and peak memory of the core verifier.

    python benchmarks/bench_core.py                 # default example + paper-layout sweep J = L = 2..16
    python benchmarks/bench_core.py --max-j 8       # a shorter sweep
    python benchmarks/bench_core.py --json out.json

Each measurement runs `python -m universality ...` in a fresh subprocess, so the wall time includes
interpreter start-up and imports (what a user waits for), and the peak memory is that process's
maximum resident set size. Target: the default example (--N 6 --J 4 --L 4) under 2 s wall on a
2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the CLI in a child process that reports its own peak resident set size (KiB) on its last stderr line
CHILD = ("import resource, sys\n"
         "from universality.cli import main\n"
         "rc = main(sys.argv[1:])\n"
         "print('peak_rss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
         "sys.exit(rc)\n")


def measure(args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, *args, "--json"], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise SystemExit(f"benchmark run failed: {' '.join(args)}: {p.stderr.strip()}")
    doc = json.loads(p.stdout)
    peak_kib = int(p.stderr.strip().splitlines()[-1].split()[-1])
    return {"args": " ".join(args), "exit": p.returncode, "passed": doc["passed"], "wall_s": round(wall, 3),
            "peak_rss_mib": round(peak_kib / 1024, 1), "D": doc["construction"]["D"],
            "N": doc["construction"]["N"], "phases_s": doc["timings_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="repeats of the default example (median reported)")
    ap.add_argument("--max-j", type=int, default=16, help="largest J = L of the paper-layout sweep")
    ap.add_argument("--samples", type=int, default=4, help="random samples per sweep point (+7 corners)")
    ap.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    a = ap.parse_args()

    default = [measure(["--N", "6", "--J", "4", "--L", "4"]) for _ in range(a.repeats)]
    med = statistics.median(r["wall_s"] for r in default)
    print(f"default example --N 6 --J 4 --L 4: median wall {med:.2f} s over {a.repeats} runs, "
          f"peak RSS {default[0]['peak_rss_mib']} MiB, all PASS: {default[0]['passed']}")
    print(f"{'J=L':>4} {'N':>5} {'D':>5} {'wall s':>8} {'peak MiB':>9} {'claims s':>9}  passed")
    sweep = []
    for j in range(2, a.max_j + 1, 2):
        r = measure(["--N", str(j * j + 2), "--J", str(j), "--L", str(j), "--samples", str(a.samples)])
        sweep.append(r)
        print(f"{j:>4} {r['N']:>5} {r['D']:>5} {r['wall_s']:>8.2f} {r['peak_rss_mib']:>9.1f} "
              f"{r['phases_s']['claims']:>9.2f}  {r['passed']}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"default": default, "sweep": sweep}, indent=2))


if __name__ == "__main__":
    main()
