"""Our full verification against a naive anchor: the same network as dense PyTorch layers.

    python benchmarks/bench_anchor.py                    # J = L = 4, 8, 12, 16 (paper layout)
    python benchmarks/bench_anchor.py --sizes 4,8,16,32  # other sizes (the anchor is skipped where its
                                                         # dense N x D x D stack would not fit)
    python benchmarks/bench_anchor.py --json out.json

The anchor is what someone who writes the paper's network by hand would time: N dense D x D float64
``torch`` tensors, one forward pass at x, the MSE loss through W_g, one ``loss.backward()`` (autograd),
the step on every parameter and one forward pass at x* (no claims, no findings). Beside it, in the same
process, our complete run: ``verify(Config(N=J*L+2, J, L))`` with the default samples (16 random + 7
corners), every claim and every finding. The ratio ours / anchor is printed per size, and the exponent
of our wall time against J*L is fitted by least squares on log-log (the floor is 2: every nonzero of
the N layers of width ~2JL is touched a few times per sample).

Skipped (anchor column empty) when torch is not installed. Figures: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from universality import Config, build, verify  # noqa: E402

ANCHOR_MAX_BYTES = 4 * 2**30  # one dense stack of weights plus its gradients


def anchor_step(cfg: Config) -> float | None:
    """Seconds for one autograd step of the dense PyTorch network (None without torch / too big)."""
    try:
        import torch
    except ImportError:
        return None
    if 2 * cfg.N * cfg.D * cfg.D * 8 > ANCHOR_MAX_BYTES:
        return None
    from universality.interop import relu_with_grad_at_zero

    torch.set_num_threads(1)  # as our run (one BLAS thread): on a shared 2-core machine torch's thread
    # pool spin-waits (J = L = 8 measured 1.96 s with its default threads under load, 0.03 s idle)

    con = build(cfg, engine="sparse")
    dt = torch.float64
    t0 = time.perf_counter()
    W = []
    for k in range(con.N):  # the dense layers, as the anchor's author would hold them
        W.append(torch.tensor(con.W.dense(k), dtype=dt, requires_grad=True))
    Wg = torch.tensor(np.asarray(con.Wg), dtype=dt, requires_grad=True)
    t_build = time.perf_counter() - t0
    act = relu_with_grad_at_zero(cfg.relu_grad_at_zero)
    theta_b = torch.zeros((), dtype=dt, requires_grad=True)
    bottom = torch.zeros(con.D, dtype=dt)
    bottom[con.blocks.bottom] = 1.0

    def net(weights, phi, tb):
        h = phi + tb * bottom
        for Wk in reversed(weights):
            h = act(Wk @ h)
        return h

    t0 = time.perf_counter()
    z = net(W, torch.tensor(con.phi(0.3, 0.0), dtype=dt), theta_b)
    loss = 0.5 * torch.sum((Wg @ z - torch.tensor([-1.3], dtype=dt)) ** 2)
    loss.backward()
    with torch.no_grad():
        W_post = [Wk - cfg.alpha * Wk.grad for Wk in W]
        tb = theta_b - cfg.alpha * theta_b.grad
        net(W_post, torch.tensor(con.phi(0.7, 1.0), dtype=dt), tb)
    del t_build
    return time.perf_counter() - t0


def ours(cfg: Config) -> tuple[float, bool, dict]:
    t0 = time.perf_counter()
    rep = verify(cfg)
    return time.perf_counter() - t0, rep.passed, rep.timings


def fit_exponent(xs, ys) -> float:
    lx, ly = np.log(np.asarray(xs, dtype=float)), np.log(np.asarray(ys, dtype=float))
    return float(np.polyfit(lx, ly, 1)[0]) if len(xs) >= 2 else math.nan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4,8,12,16", help="comma-separated J = L values (paper layout)")
    ap.add_argument("--samples", type=int, default=16, help="random samples of our run (default 16, + 7 corners)")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    rows = []
    print(f"{'J=L':>4} {'N':>6} {'D':>6} {'engine':>7} {'anchor s':>9} {'ours s':>8} {'ratio':>7} {'peak MiB':>9}  passed")
    for j in (int(v) for v in a.sizes.split(",")):
        cfg = Config(N=j * j + 2, J=j, L=j, samples=a.samples)
        t_anchor = anchor_step(cfg)
        t_ours, passed, timings = ours(cfg)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ratio = t_ours / t_anchor if t_anchor else math.nan
        rows.append({"J": j, "N": cfg.N, "D": cfg.D, "engine": cfg.resolved_engine, "anchor_s": t_anchor,
                     "ours_s": round(t_ours, 3), "ratio": ratio, "passed": passed, "phases_s": timings,
                     "process_peak_rss_mib": round(peak, 1)})
        print(f"{j:>4} {cfg.N:>6} {cfg.D:>6} {cfg.resolved_engine:>7} "
              f"{'-' if t_anchor is None else f'{t_anchor:.3f}':>9} {t_ours:>8.2f} "
              f"{'-' if math.isnan(ratio) else f'{ratio:.1f}':>7} {peak:>9.0f}  {passed}", flush=True)
    big = [r for r in rows if r["J"] >= 8] or rows
    exp = fit_exponent([r["J"] ** 2 for r in big], [r["ours_s"] for r in big])
    print(f"fitted exponent of our wall time against J*L (J >= 8): {exp:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "exponent_vs_JL": exp}, indent=2) + "\n")


if __name__ == "__main__":
    main()
