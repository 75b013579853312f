#!/usr/bin/env python3
"""How long a proof report takes, by stage, for the default run and a larger one.

    python benchmarks/bench_report.py [--pdf]

Stages: verify (the checks themselves), context (pictures and data), html (math SVG, graph), tex,
and with --pdf latexmk. Numbers depend on the machine; the report is written to a temporary folder.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bench(cfg, pdf: bool) -> dict:
    from universality import verify
    from universality.report import render, write_report

    out = {}
    t = time.perf_counter()
    report = verify(cfg, report_data=True)
    out["verify"] = time.perf_counter() - t
    t = time.perf_counter()
    ctx = render.build_context(report)
    out["context"] = time.perf_counter() - t
    t = time.perf_counter()
    html = render.render_html(ctx)
    out["html"] = time.perf_counter() - t
    out["html_bytes"] = len(html.encode())
    t = time.perf_counter()
    render.render_tex(ctx, "figures/graph.pdf")
    out["tex"] = time.perf_counter() - t
    if pdf:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            write_report(report, Path(tmp) / "r", formats=("tex", "pdf"), context=ctx)
            out["tex+pdf written"] = time.perf_counter() - t
    return out


def main() -> int:
    from universality import Config

    pdf = "--pdf" in sys.argv
    for cfg in (Config(N=6, J=4, L=4), Config(N=102, J=10, L=10, samples=4)):
        res = bench(cfg, pdf)
        parts = ", ".join(f"{k} {v:.2f} s" if isinstance(v, float) else f"{k} {v:,}" for k, v in res.items())
        print(f"N={cfg.N} J={cfg.J} L={cfg.L} D={cfg.D}: {parts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
