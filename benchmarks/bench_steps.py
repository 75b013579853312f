"""The samples' steps and the one-step claims that read their passes, on the paper layout, with the
passes stored whole or checkpointed (engine/checkpoint.py): the evidence for J = L = 128's per-step
memory, and what checkpointing costs in time.

    python benchmarks/bench_steps.py --J 32                       # auto (stored below J = 128)
    python benchmarks/bench_steps.py --J 64 --samples 4 --checkpoint on
    python benchmarks/bench_steps.py --J 128 --samples 4          # auto: checkpointed

One process, one run: builds the network (N = J*L + 2, sparse engine), then runs ``check_claims`` for
the claims that read the steps' per-layer arrays (grad-rank-one, update-blocks, second-order-zero,
post-update-eq3, nonneg-linear-regime, e-linear, multiplexer, theta-b-value, update-values,
z-star-is-minus-alpha-v) on the default samples plus the corners. Prints the load average, the build
and claims wall times, the process's CPU time (user + system), its peak resident set size, the mode
(group size, layers per segment) and the memory model's per-step term, and each claim's verdict.
``--checkpoint on`` forces checkpointing (CHECKPOINT_ABOVE_BYTES = 0), ``off`` forbids it.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLAIM_IDS = ("grad-rank-one", "update-blocks", "second-order-zero", "post-update-eq3", "nonneg-linear-regime",
             "e-linear", "multiplexer", "theta-b-value", "update-values", "z-star-is-minus-alpha-v")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--J", type=int, required=True, help="J = L")
    ap.add_argument("--samples", type=int, default=16, help="random samples (plus the 7 corners)")
    ap.add_argument("--checkpoint", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()

    from universality import Config, build
    from universality.engine import batch
    from universality.engine.memory import per_step_bytes
    from universality.samples import make_samples
    from universality.verify import blas_single_thread, check_claims

    if a.checkpoint == "on":
        batch.CHECKPOINT_ABOVE_BYTES = 0
    elif a.checkpoint == "off":
        batch.CHECKPOINT_ABOVE_BYTES = 1 << 62
    J = a.J
    load = os.getloadavg()
    t0 = time.perf_counter()
    cfg = Config(N=J * J + 2, J=J, L=J, samples=a.samples, engine="sparse", max_memory_bytes=1 << 50)
    con = build(cfg, engine="sparse")
    t1 = time.perf_counter()
    samples = make_samples(cfg.samples, cfg.seed, J, J, cfg.dx, cfg.dy)
    G, seg = batch.plan(con.N, con.D, len(samples), reuse=True)
    with blas_single_thread():
        res = check_claims(con, samples, claim_ids=set(CLAIM_IDS))
    t2 = time.perf_counter()
    u = resource.getrusage(resource.RUSAGE_SELF)
    out = {"J": J, "N": con.N, "D": con.D, "samples": len(samples), "checkpointed": seg < con.N,
           "group": G, "segment_layers": seg, "load": [round(x, 2) for x in load],
           "build_s": round(t1 - t0, 2), "claims_s": round(t2 - t1, 2),
           "cpu_s": round(u.ru_utime + u.ru_stime, 2), "user_s": round(u.ru_utime, 2), "sys_s": round(u.ru_stime, 2),
           "peak_rss_mib": round(u.ru_maxrss / 1024, 1),
           "model_per_step_mib": round(per_step_bytes(cfg) / 2**20, 1),
           "verdicts": {c.id: c.verdict.value for c in res}}
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
