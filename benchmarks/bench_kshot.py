"""Wall time of the real K-shot step and of a K-shot verification run, per loss.

    python benchmarks/bench_kshot.py               # K = 1, 2, 4, 8, 16 on --N 6 --J 4 --L 4 and --N 18 --J 4 --L 4
    python benchmarks/bench_kshot.py --json out.json

The K-shot step costs K forward and backward passes plus one step, so its time should grow linearly
in K; verify with K > 1 runs it three times per task (the task, its reversal, a random permutation).
Target: `verify-construction --N 6 --J 4 --L 4 --K 8` under 5 s on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from universality import Config, build, verify  # noqa: E402
from universality.execution import k_shot_step  # noqa: E402
from universality.samples import make_tasks  # noqa: E402


def time_step(cfg: Config, repeats: int = 5) -> float:
    con = build(cfg)
    t = make_tasks(1, 0, cfg.K, cfg.J, cfg.L, cfg.dx, cfg.dy, cfg.loss)[0]
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        k_shot_step(con, t.xs, t.ys, t.x_star)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    rows = []
    for N, J, L in ((6, 4, 4), (18, 4, 4)):
        for loss, dy in (("mse", 1), ("ce", 3)):
            for K in (1, 2, 4, 8, 16):
                cfg = Config(N=N, J=J, L=L, loss=loss, dy=dy, K=K, samples=4)
                step = time_step(cfg)
                t0 = time.perf_counter()
                rep = verify(cfg, with_findings=False)
                total = time.perf_counter() - t0
                rows.append({"N": N, "J": J, "L": L, "loss": loss, "dy": dy, "K": K,
                             "step_s": step, "verify_s": total, "passed": rep.passed})
                print(f"N={N:3d} J={J} L={L} {loss:5s} K={K:3d}: step {step * 1e3:8.2f} ms, "
                      f"verify (4 tasks) {total:6.2f} s, passed={rep.passed}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
