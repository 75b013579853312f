"""Benchmark of the exact (SymPy) backend: the three targets of the symbolic issue.

    python benchmarks/bench_symbolic.py

1. symbolic instance proof of --N 6 --J 4 --L 4 (default samples)     target < 10 s
2. the paper layout J = L = 3 (N = 11)                                  target < 30 s
3. the schematic proof for every N (computed afresh, not cached)       target < 30 s

Each figure is the wall time of one run in a fresh process state for that part (the schematic
cache is bypassed); the machine's load is printed alongside, since the figures scale with it.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from universality import Config  # noqa: E402
from universality.samples import make_samples  # noqa: E402
from universality.symbolic.run import run_symbolic  # noqa: E402
from universality.symbolic.schematic import UPDATE_BLOCKS, _steps  # noqa: E402

TARGETS = {"N=6 J=4 L=4": 10.0, "paper layout N=11 J=L=3": 30.0, "schematic proof (every N)": 30.0}


def instance_proof(cfg: Config):
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy)
    t = time.perf_counter()
    out = run_symbolic(cfg, samples, schematic=False, budget_s=None)
    dt = time.perf_counter() - t
    verdicts = {c.verdict.value for c in out.claims}
    return dt, f"{out.instances} instances from {len(samples)} samples, verdicts {sorted(verdicts)}"


def main() -> int:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f}")
    rows = []
    dt, what = instance_proof(Config(N=6, J=4, L=4))
    rows.append(("N=6 J=4 L=4", dt, what))
    dt, what = instance_proof(Config(N=11, J=3, L=3))
    rows.append(("paper layout N=11 J=L=3", dt, what))
    t = time.perf_counter()
    steps = _steps(tuple(sorted(UPDATE_BLOCKS)))
    dt = time.perf_counter() - t
    rows.append(("schematic proof (every N)", dt,
                 f"{len(steps)} steps, verdicts {sorted({s.verdict.value for s in steps})}"))
    ok = True
    for name, dt, what in rows:
        target = TARGETS[name]
        ok &= dt < target
        print(f"{name:28s} {dt:7.2f} s  (target < {target:g} s: {'met' if dt < target else 'MISSED'})  {what}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
