"""The samples' steps and the one-step claims that read their passes, on the paper layout, with the
passes stored whole or checkpointed (engine/checkpoint.py): the evidence for J = L = 128's per-step
memory, and what checkpointing costs in time.

    python benchmarks/bench_steps.py --J 32                       # auto (stored below J = 128)
    python benchmarks/bench_steps.py --J 64 --samples 4 --checkpoint on
    python benchmarks/bench_steps.py --J 128 --samples 4          # auto: checkpointed
    python benchmarks/bench_steps.py --J 32 --kernels both        # compiled kernels on, then off

One process, one run: builds the network (N = J*L + 2, sparse engine), then runs ``check_claims`` for
the claims that read the steps' per-layer arrays (grad-rank-one, update-blocks, second-order-zero,
post-update-eq3, nonneg-linear-regime, e-linear, multiplexer, theta-b-value, update-values,
z-star-is-minus-alpha-v) on the default samples plus the corners. Prints the load average, the build
and claims wall times, the process's CPU time (user + system), its peak resident set size, the mode
(group size, layers per segment) and the memory model's per-step term, the resident set before the
claims and its peak during them (Linux: the peak is reset first), and each claim's verdict.
``--checkpoint on`` forces checkpointing (CHECKPOINT_ABOVE_BYTES = 0), ``off`` forbids it.
``--kernels off`` runs the generic sweeps (UNIVERSALITY_KERNELS=0, engine/kernels.py); ``both`` runs
the same process's claims with the kernels on (after one warm-up group, which loads or compiles
them), off, and on again, on the same network, and prints the wall times, the ratio of the last two
(the first run also pays the claims' own first-use costs) and whether every verdict agrees.
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


def _status(field: str):
    """A field of /proc/self/status in MiB (Linux; None elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _reset_peak() -> None:
    """Reset the process's peak resident set size (VmHWM), so that the claims' own peak is read
    afterwards (Linux: ``echo 5 > /proc/self/clear_refs``; nothing elsewhere)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--J", type=int, required=True, help="J = L")
    ap.add_argument("--samples", type=int, default=16, help="random samples (plus the 7 corners)")
    ap.add_argument("--checkpoint", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--kernels", choices=("on", "off", "both"), default="on",
                    help="the engine's compiled kernels (both: on, then off, in one process)")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    if a.kernels == "off":
        os.environ["UNIVERSALITY_KERNELS"] = "0"

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
    rss_before = _status("VmRSS")
    _reset_peak()
    compare = None
    with blas_single_thread():
        if a.kernels == "both":
            for _ in batch.single_steps(con, samples[:1]):  # load (or compile) the kernels first
                pass
        t_on = time.perf_counter()
        res = check_claims(con, samples, claim_ids=set(CLAIM_IDS))
        t2 = time.perf_counter()
        if a.kernels == "both":  # off, then on again (the first run pays the claims' own first-use costs)
            os.environ["UNIVERSALITY_KERNELS"] = "0"
            res_off = check_claims(con, samples, claim_ids=set(CLAIM_IDS))
            t3 = time.perf_counter()
            os.environ.pop("UNIVERSALITY_KERNELS")
            res_on = check_claims(con, samples, claim_ids=set(CLAIM_IDS))
            t4 = time.perf_counter()
            compare = {"claims_first_on_s": round(t2 - t_on, 2), "claims_off_s": round(t3 - t2, 2),
                       "claims_on_s": round(t4 - t3, 2), "off_over_on": round((t3 - t2) / max(t4 - t3, 1e-9), 2),
                       "same_verdicts": [c.verdict for c in res] == [c.verdict for c in res_off]
                       == [c.verdict for c in res_on]}
    claims_peak = _status("VmHWM")
    u = resource.getrusage(resource.RUSAGE_SELF)
    out = {"J": J, "N": con.N, "D": con.D, "samples": len(samples), "checkpointed": seg < con.N,
           "group": G, "segment_layers": seg, "load": [round(x, 2) for x in load],
           "build_s": round(t1 - t0, 2), "claims_s": round(t2 - t_on, 2),
           "cpu_s": round(u.ru_utime + u.ru_stime, 2), "user_s": round(u.ru_utime, 2), "sys_s": round(u.ru_stime, 2),
           "peak_rss_mib": round(u.ru_maxrss / 1024, 1),
           "rss_before_claims_mib": rss_before, "claims_peak_rss_mib": claims_peak,
           "model_per_step_mib": round(per_step_bytes(cfg) / 2**20, 1),
           "kernels": a.kernels, "verdicts": {c.id: c.verdict.value for c in res}}
    if compare is not None:
        out.update(compare)
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
