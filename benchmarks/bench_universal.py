"""Cost of the universality sweep as J*L grows: time and peak memory per level.

Each level builds the construction, h_post (explicit ReLU network) and the realised multiplexer, then
runs T random test triples with one real step each through the full network. Peak memory is the
largest traced Python allocation (tracemalloc) during the level, which includes NumPy arrays.

    python benchmarks/bench_universal.py                       # compact (N = 6) and paper layouts
    python benchmarks/bench_universal.py --sizes 2,4,8,16,32 --test-points 100 --target cos
    python benchmarks/bench_universal.py --json out.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from universality import Config  # noqa: E402
from universality.construction.network import Design  # noqa: E402
from universality.universal import measure_random, prepare, random_triples  # noqa: E402


def level(layout: str, n: int, G: int, T: int, target: str, N_compact: int) -> dict:
    N = n * n + 2 if layout == "paper" else N_compact
    cfg = Config(N=N, J=n, L=n, layout=layout)
    triples = random_triples(T, 1, 1, 2.0, 0.1, 0)
    tracemalloc.start()
    t0 = time.perf_counter()
    prep = prepare(Design.from_config(cfg), target, grid_size=G, y_max=2.0, delta=0.1)
    t1 = time.perf_counter()
    m = measure_random(prep, triples)
    t2 = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"layout": layout, "J": n, "L": n, "JL": n * n, "N": N, "D": cfg.D, "grid": G,
            "hpost_parameters": prep.hpost.net.parameters, "hpost_MiB": prep.hpost.net.nbytes / 2**20,
            "build_s": t1 - t0, "eval_s": t2 - t1, "ms_per_triple": 1e3 * (t2 - t1) / T,
            "peak_MiB": peak / 2**20, "rms": float(np.sqrt(np.mean(m.error ** 2)))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="2,4,8,16,32", help="J = L values for the compact layout")
    p.add_argument("--paper-sizes", default="2,4,8", help="J = L values for the paper layout (N = J L + 2)")
    p.add_argument("--grid", type=int, default=17, help="y-grid size (default 17)")
    p.add_argument("--test-points", type=int, default=100)
    p.add_argument("--target", default="cos")
    p.add_argument("--N", type=int, default=6, help="depth of the compact layout (default 6)")
    p.add_argument("--json", default=None, help="also write the rows to this file")
    a = p.parse_args(argv)
    rows = []
    plan = [("compact", int(n)) for n in a.sizes.split(",") if n] + \
           [("paper", int(n)) for n in a.paper_sizes.split(",") if n]
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"NumPy {np.__version__}; target {a.target}, y-grid {a.grid}, {a.test_points} test triples")
    hdr = f"{'layout':8} {'J=L':>4} {'J*L':>5} {'N':>4} {'D':>5} {'h_post params':>14} {'build s':>8} " \
          f"{'eval s':>8} {'ms/triple':>10} {'peak MiB':>9} {'RMS err':>9}"
    print(hdr)
    for layout, n in plan:
        r = level(layout, n, a.grid, a.test_points, a.target, a.N)
        rows.append(r)
        print(f"{r['layout']:8} {r['J']:>4} {r['JL']:>5} {r['N']:>4} {r['D']:>5} {r['hpost_parameters']:>14,} "
              f"{r['build_s']:>8.3f} {r['eval_s']:>8.3f} {r['ms_per_triple']:>10.2f} {r['peak_MiB']:>9.1f} "
              f"{r['rms']:>9.3g}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
