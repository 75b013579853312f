"""The paper's own layout (N = J*L + 2), all claims and findings, through the CLI.

    python benchmarks/bench_paper.py                          # J = L = 8, 16, 24, 32, default samples
    python benchmarks/bench_paper.py --sizes 16,32,64 --samples 4
    python benchmarks/bench_paper.py --repeat 3 --json out.json
    python benchmarks/bench_paper.py --limit-kb 14000000      # cap each run's address space (ulimit -v)

Each run is ``python -m universality --N J*L+2 --J J --L J --json`` in a fresh process (so the wall time
includes start-up and imports, what a user waits for), one at a time. Per size it prints the wall time
(best of ``--repeat``), that run's CPU time (user + system, from the child's resource usage), whether
its passes were stored or checkpointed (engine/batch.py's plan, docs/engine.md), its peak
resident set size, the phases the JSON reports (build, claims, findings), and whether every claim
passed. The load average is printed before every run: on a shared machine, CPU time is the steadier
figure. At the end, the exponent of wall time and of CPU time against J*L is fitted by least squares on
log-log over the sizes with J >= 16 (the floor is 2: every nonzero of the N ~ J*L layers of width
~2 J*L is touched a few times per sample). Figures: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHILD = ("import resource, sys\n"
         "from universality.cli import main\n"
         "rc = main(sys.argv[1:])\n"
         "u = resource.getrusage(resource.RUSAGE_SELF)\n"
         "print('usage', u.ru_maxrss, u.ru_utime, u.ru_stime, file=sys.stderr)\n"
         "sys.exit(rc)\n")


def passes_mode(j: int, samples: int | None) -> str:
    """How the samples' passes run at this size (engine/batch.py's plan): stored whole, or
    checkpointed every ``seg`` layers; and the group size."""
    sys.path.insert(0, str(ROOT))
    from universality.engine.batch import plan

    N, D = j * j + 2, 2 * j + 2 * (j * j) + 1  # D = J + L + 2 (N - 2) dy + 1, dy = 1
    G, seg = plan(N, D, (16 if samples is None else samples) + 7, reuse=True)
    return f"stored, G={G}" if seg >= N else f"checkpointed every {seg} layers, G={G}"


def run_once(j: int, samples: int | None, limit_kb: int | None, max_memory: str | None = None) -> dict:
    args = ["--N", str(j * j + 2), "--J", str(j), "--L", str(j), "--json"]
    if samples is not None:
        args += ["--samples", str(samples)]
    if max_memory is not None:
        args += ["--max-memory", max_memory]
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def cap():  # ulimit -v in the child only
        if limit_kb:
            resource.setrlimit(resource.RLIMIT_AS, (limit_kb * 1024, limit_kb * 1024))

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env,
                       preexec_fn=cap)
    wall = time.perf_counter() - t0
    usage = [ln for ln in p.stderr.splitlines() if ln.startswith("usage ")]
    if p.returncode not in (0, 1) or not usage:
        return {"J": j, "error": (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1],
                "wall_s": wall, "load": load}
    rss_kib, utime, stime = usage[-1].split()[1:]
    doc = json.loads(p.stdout)
    return {"J": j, "N": j * j + 2, "D": doc["construction"]["D"], "engine": doc["construction"]["engine"],
            "wall_s": round(wall, 3), "cpu_s": round(float(utime) + float(stime), 3),
            "user_s": round(float(utime), 3), "sys_s": round(float(stime), 3),
            "peak_rss_mib": round(int(rss_kib) / 1024, 1), "phases_s": doc["timings_s"],
            "passed": doc["passed"], "load": round(load, 2)}


def fit_exponent(xs, ys) -> float:
    if len(xs) < 2:
        return math.nan
    return float(np.polyfit(np.log(np.asarray(xs, dtype=float)), np.log(np.asarray(ys, dtype=float)), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="8,16,24,32", help="comma-separated J = L values")
    ap.add_argument("--samples", type=int, default=None, help="--samples of each run (default: the CLI's)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per size; the best wall time is kept")
    ap.add_argument("--limit-kb", type=int, default=None, help="address-space cap of each run (ulimit -v)")
    ap.add_argument("--max-memory", default=None, help="--max-memory of each run (GiB; J = L = 64 needs about 13)")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    rows = []
    print(f"{'J=L':>4} {'N':>6} {'D':>6} {'wall s':>8} {'user+sys s':>12} {'peak MiB':>9} {'load':>5}  phases (s)  "
          f"passed  passes")
    for j in (int(v) for v in a.sizes.split(",")):
        runs = [run_once(j, a.samples, a.limit_kb, a.max_memory) for _ in range(max(a.repeat, 1))]
        ok = [r for r in runs if "error" not in r]
        if not ok:
            print(f"{j:>4}  failed: {runs[-1]['error']}", flush=True)
            rows.append(runs[-1])
            continue
        best = min(ok, key=lambda r: r["wall_s"])
        best["walls_s"] = [r["wall_s"] for r in ok]
        best["passes"] = passes_mode(j, a.samples)
        rows.append(best)
        cpu = f"{best['user_s']:.2f}+{best['sys_s']:.2f}"
        print(f"{j:>4} {best['N']:>6} {best['D']:>6} {best['wall_s']:>8.2f} {cpu:>12} "
              f"{best['peak_rss_mib']:>9.0f} {best['load']:>5.2f}  {best['phases_s']}  {best['passed']}  "
              f"{best['passes']}", flush=True)
    big = [r for r in rows if "error" not in r and r["J"] >= 16]
    exp_wall = fit_exponent([r["J"] ** 2 for r in big], [r["wall_s"] for r in big])
    exp_cpu = fit_exponent([r["J"] ** 2 for r in big], [r["cpu_s"] for r in big])
    print(f"fitted exponent against J*L (J >= 16): wall {exp_wall:.2f}, cpu {exp_cpu:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "exponent_wall_vs_JL": exp_wall,
                                            "exponent_cpu_vs_JL": exp_cpu}, indent=2) + "\n")


if __name__ == "__main__":
    main()
