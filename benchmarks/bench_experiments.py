"""Time of the Sec. 7 experiments: per-iteration costs, the extrapolated quick / paper profiles, and
their scaling with workers (local processes or a Dask cluster).

    python benchmarks/bench_experiments.py                    # per-iteration times, extrapolations
    python benchmarks/bench_experiments.py --iters 50 --json out.json
    python benchmarks/bench_experiments.py --run-quick        # also run the whole quick profile once (minutes)

Per-iteration times are measured by running each job kind once through the real job code
(universality.experiments.runs.run_job) with ``--iters`` training iterations at the profile's sizes;
the jobs time their own training loops, the rest of a job is its fixed cost (evaluation). A profile's time is
then sum(jobs) / workers, bounded below by the longest job (jobs are indivisible), computed by list
scheduling in submission order (what ProcessPoolExecutor and Dask do with equal workers).
Target (docs/experiments.md): ``--profile quick`` with 3 seeds in <= 15 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from universality.experiments.profiles import PROFILES, Profile  # noqa: E402
from universality.experiments.runs import Job, run_job  # noqa: E402
from universality.experiments.suite import plan  # noqa: E402


def per_iteration(profile: Profile, iters: int) -> dict:
    """Seconds per training iteration of each learner / depth (the jobs' own timers around their
    training loops), and each job's fixed cost (evaluation, set-up) = job time - training time."""
    out = {}
    small = profile.with_(maml_iters=iters, baseline_iters=iters, depth_iters=iters)
    r = run_job(Job("sinusoid", 0, 0, small, ("maml", "tc", "snail", "lstm")))
    fixed = (r["seconds"] - sum(v["seconds"] for v in r["train"].values())) / 4
    for name, v in r["train"].items():
        out[f"sinusoid/{name}"] = {"per_iter": v["seconds"] / v["iterations"], "fixed": fixed}
    for d in profile.depth_layers:
        r = run_job(Job("depth", 0, 0, small, depth=d))
        train = sum(v["seconds"] for v in r["train"].values())
        out[f"depth/{d}"] = {"per_iter": train / iters, "fixed": r["seconds"] - train}
    return out


def job_seconds(job: Job, t: dict) -> float:
    p = job.profile
    if job.kind == "sinusoid":
        return sum(t[f"sinusoid/{n}"]["fixed"] + t[f"sinusoid/{n}"]["per_iter"] *
                   (p.maml_iters if n == "maml" else p.baseline_iters) for n in job.learners)
    if job.kind == "depth":
        c = t[f"depth/{job.depth}"]
        return c["fixed"] + c["per_iter"] * p.depth_iters
    return 0.0


def schedule(durations: list[float], workers: int) -> float:
    """Makespan of list scheduling in submission order on ``workers`` equal workers."""
    free = [0.0] * workers
    heapq.heapify(free)
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


def extrapolate(profile: Profile, t: dict, workers=(1, 2, 4, 8, 16)) -> dict:
    jobs = plan(["steps", "ood", "depth"], profile, 0)
    d = [job_seconds(j, t) for j in jobs]
    return {"jobs": len(jobs), "core_seconds": sum(d), "longest_job_s": max(d),
            "wall_s": {w: schedule(d, w) for w in workers}}


def run_quick() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "universality", "experiments", "all", "--profile", "quick",
                        "--out", str(Path(tmp) / "run")], cwd=ROOT, check=False)
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=30, help="training iterations per measurement (default 30)")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--run-quick", action="store_true", help="also run the quick profile end to end once")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    results = {"cores": os.cpu_count(), "load_1min_at_start": load}
    for name in ("quick", "paper"):
        p = PROFILES[name]
        t = per_iteration(p, args.iters)
        ex = extrapolate(p, t)
        results[name] = {"per_iteration": t, **ex}
        print(f"{name}: {ex['jobs']} jobs, {ex['core_seconds'] / 60:.1f} core-minutes, longest job "
              f"{ex['longest_job_s'] / 60:.1f} min")
        for k, v in t.items():
            print(f"  {k:16s} {1e3 * v['per_iter']:8.2f} ms/iteration  (+{v['fixed']:.1f} s fixed)")
        print("  expected wall time by workers: " + ", ".join(
            f"{w}: {s / 60:.1f} min" if s < 7200 else f"{w}: {s / 3600:.1f} h" for w, s in ex["wall_s"].items()))
    if args.run_quick:
        results["quick_measured_s"] = run_quick()
        print(f"quick profile measured end to end: {results['quick_measured_s'] / 60:.1f} min")
    results["load_1min_at_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min): {load:.1f} at start, {results['load_1min_at_end']:.1f} at end, "
          f"on {os.cpu_count()} cores")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
