"""Run the claims and findings for one Config: the only thing the CLI, JSON and reports call."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import __version__
from .claims import CLAIMS, FINDINGS, ClaimResult, Context, Finding, Verdict, aggregate
from .claims.base import Check, run_finding
from .config import Config
from .construction.codes import LAYOUT_DESCRIPTIONS
from .construction.network import Construction, Design, build
from .execution import k_shot_step, one_step
from .samples import Sample, Task, make_samples, make_tasks


@dataclass
class Report:
    config: Config
    construction: dict
    claims: list[ClaimResult]
    findings: list[Finding]
    samples: list[Sample]
    timings: dict = field(default_factory=dict)
    con: Construction | None = field(default=None, repr=False)
    universal: object = field(default=None, repr=False)  # universal.UniversalResult when a target ran
    # exact backend (universality.symbolic): instance proofs + schematic proof; None when not run
    symbolic: object | None = None
    backend: str = "numeric"
    backend_note: str = ""
    tasks: list = field(default_factory=list)  # the K-shot tasks checked (K > 1)
    # what a proof report pictures (report_data.ReportData), computed when verify(report_data=True)
    report_data: object | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return (all(c.verdict in (Verdict.PASS, Verdict.SKIPPED) for c in self.claims)
                and (self.symbolic is None or self.symbolic.passed))

    def claim(self, id: str) -> ClaimResult:
        return next(c for c in self.claims if c.id == id)

    def finding(self, id: str) -> Finding:
        return next(f for f in self.findings if f.id == id)

    def claim_records(self) -> list[dict]:
        """Every claim verdict of the run, one schema whatever the backend: the numeric claims,
        then the exact (SymPy) ones, each marked with its ``backend``."""
        out = [{**c.as_dict(), "backend": "numeric"} for c in self.claims]
        if self.symbolic is not None:
            out += [{**c.as_dict(), "backend": "symbolic"} for c in self.symbolic.claims]
        return out

    def as_dict(self) -> dict:
        return {
            "tool": "universality",
            "version": __version__,
            "construction": self.construction,
            "samples": [s.as_dict() for s in self.samples],
            "claims": self.claim_records(),
            "findings": [f.as_dict() for f in self.findings],
            "tasks": [t.as_dict() for t in self.tasks],
            "passed": self.passed,
            "timings_s": self.timings,
            **({"universality": self.universal.as_dict()} if self.universal is not None else {}),
            "backend": {"ran": self.backend, "note": self.backend_note},
            "symbolic": None if self.symbolic is None else self.symbolic.as_dict(),
        }


def summary(cfg: Config, con: Construction) -> dict:
    d, b = con.design, con.blocks
    return {
        "N": d.N, "J": d.J, "L": d.L, "dx": d.dx, "dy": d.dy, "D": b.D,
        "channels": {"top": b.dt, "middle": b.dm, "bottom": 1},
        "m": b.m, "layout": d.layout, "layout_requested": cfg.layout,
        "layout_description": LAYOUT_DESCRIPTIONS[d.layout],
        "variant": d.variant, "eps": d.eps, "alpha": d.alpha,
        "relu_grad_at_zero": d.relu_grad_at_zero, "loss": d.loss,
        "parameters": cfg.parameter_count, "samples": cfg.samples, "seed": cfg.seed,
        "memory_estimate_bytes": cfg.memory_estimate_bytes(),
        "K": cfg.K,
    }


def check_claims(con: Construction, samples: list[Sample], *, claim_ids=None,
                 progress: Callable[[int, int], None] | None = None, h_post=None,
                 tasks: list[Task] | None = None) -> list[ClaimResult]:
    """Run every (selected) claim: construction-level once, sample-level on every sample's real step,
    task-level (K-shot, scope "task") on every task's real K-shot step. Task-level claims are selected
    only when ``tasks`` is given (verify passes them when K > 1)."""
    ctx = Context(con)
    specs = [s for s in CLAIMS.values() if (claim_ids is None or s.id in claim_ids)
             and (s.scope != "task" or tasks)]
    per: dict[str, list] = {s.id: [] for s in specs}
    skipped: dict[str, str] = {}
    for spec in specs:
        reason = spec.applies(ctx) if spec.applies else None
        if reason:
            skipped[spec.id] = reason
        elif spec.scope == "construction":
            per[spec.id].append((None, spec.func(ctx)))
    sample_specs = [s for s in specs if s.scope == "sample" and s.id not in skipped]
    for n, s in enumerate(samples):
        if sample_specs:
            st = one_step(con, s.x, s.y, s.x_star, h_post=h_post)
            where = {"sample": n, **s.as_dict()}
            for spec in sample_specs:
                per[spec.id].append((where, spec.func(ctx, s, st)))
            ctx.cache.pop("abs_post", None)
            ctx.cache.pop("abs_post_of", None)
        if progress:
            progress(n + 1, len(samples))
    task_specs = [s for s in specs if s.scope == "task" and s.id not in skipped]
    for n, t in enumerate((tasks or []) if task_specs else []):
        kst = k_shot_step(con, t.xs, t.ys, t.x_star, h_post=h_post)
        for spec in task_specs:
            per[spec.id].append(({"task": n, **t.as_dict()}, spec.func(ctx, t, kst)))
    out = []
    for spec in specs:
        if spec.id in skipped:
            out.append(aggregate(spec, [(None, Check("-", "-", 0.0, 0.0, Verdict.SKIPPED, skipped[spec.id]))]))
        else:
            out.append(aggregate(spec, per[spec.id]))
    return out


def resolve_backend_for_loss(cfg: Config, backend: str, budget_s: float | None) -> tuple[str, str]:
    """symbolic.budget.resolve_backend, restricted to the losses the exact backend covers: its claims
    use MSE's label channel (e_bar(y) = copies of y), so other losses run numerically ("auto") or are
    refused with one line ("symbolic" / "both")."""
    from .config import ConfigError
    from .symbolic.budget import resolve_backend

    if cfg.loss != "mse" and backend in ("symbolic", "both"):
        raise ConfigError(f"--backend {backend} covers --loss mse only (its exact claims use MSE's label "
                          f"channel); use --backend numeric or auto with --loss {cfg.loss}")
    ran, note = resolve_backend(cfg, backend, budget_s)
    if cfg.loss != "mse" and ran != "numeric":
        return "numeric", f"backend: numeric only (the exact backend covers --loss mse; this run uses --loss {cfg.loss})"
    return ran, note


def verify(cfg: Config | None = None, /, *, progress=None, claim_ids=None, with_findings: bool = True,
           universal=None, backend: str = "numeric", symbolic_budget: float | None = None,
           symbolic_relu: str = "value", report_data: bool = False, **kwargs) -> Report:
    """Build the construction for ``cfg`` (or ``Config(**kwargs)``), run the claims and findings.

    ``universal``: a :class:`universality.universal.UniversalOptions` (or a target name / callable):
    also run the universality claims for that target learning algorithm.
    ``backend``: "numeric" (float64, default here), "symbolic" (exact SymPy proofs only), "both",
    or "auto" (both when the symbolic run is predicted quick for the sizes, numeric otherwise).
    ``symbolic_budget``: wall-clock seconds for the symbolic run (refused above, cut at it).
    ``symbolic_relu``: "value" (the run's ReLU'(0) as an exact rational) or "symbol" (r = rho^2 > 0).
    ``report_data``: also run what a proof report pictures (universality.report_data), so that the
    report itself executes nothing.
    """
    if cfg is None:
        cfg = Config(**kwargs)
    from .symbolic.budget import DEFAULT_BUDGET_S

    budget = DEFAULT_BUDGET_S if symbolic_budget is None else symbolic_budget
    ran, backend_note = resolve_backend_for_loss(cfg, backend, budget)
    t0 = time.perf_counter()
    con = build(Design.from_config(cfg))
    t1 = time.perf_counter()
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy, loss=cfg.loss)
    tasks = (make_tasks(max(cfg.samples, 1), cfg.seed, cfg.K, cfg.J, cfg.L, cfg.dx, cfg.dy, cfg.loss)
             if cfg.K > 1 else None)
    claims = []
    if ran != "symbolic":
        claims = check_claims(con, samples, claim_ids=claim_ids, progress=progress, tasks=tasks)
    symbolic = None
    if ran != "numeric":
        from .symbolic.run import run_symbolic

        symbolic = run_symbolic(cfg, samples, budget_s=budget, claim_ids=claim_ids, relu=symbolic_relu)
        backend_note = f"{backend_note}; {symbolic.note}" if backend_note else symbolic.note
    t2 = time.perf_counter()
    findings = []
    if with_findings:
        ctx = Context(con)
        findings = [run_finding(spec, ctx, samples) for spec in FINDINGS.values()]
    t3 = time.perf_counter()
    timings = {"build": round(t1 - t0, 4), "claims": round(t2 - t1, 4), "findings": round(t3 - t2, 4)}
    if symbolic is not None:
        timings["symbolic"] = symbolic.timings
    uni = None
    if universal is not None:
        from .claims.universal import run_universal
        from .universal import UniversalOptions

        opts = universal if isinstance(universal, UniversalOptions) else UniversalOptions(target=universal)
        uclaims, uni = run_universal(cfg, con, opts)
        claims = claims + uclaims
        timings["universality"] = round(time.perf_counter() - t3, 4)
    report = Report(cfg, summary(cfg, con), claims, findings, samples, timings, con, uni,
                    symbolic=symbolic, backend=ran, backend_note=backend_note)
    report.tasks = tasks or []
    if report_data:
        from .report_data import collect

        t4 = time.perf_counter()
        report.report_data = collect(report)
        timings["report_data"] = round(time.perf_counter() - t4, 4)
    return report
