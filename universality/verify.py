"""Run the claims and findings for one Config: the only thing the CLI, JSON and reports call."""
from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import __version__
from .claims import CLAIMS, FINDINGS, ClaimResult, Context, Finding, Verdict, aggregate
from .claims.base import Check, run_finding
from .config import Config
from .errors import ConfigError
from .construction.codes import LAYOUT_DESCRIPTIONS
from .construction.network import Construction, Design, build
from .engine.batch import single_steps
from .engine.step import maml_step, single_step  # noqa: F401  (single_step: re-exported)
from .samples import Sample, Task, make_samples, make_tasks


@dataclass
class Report:
    """The outcome of one run: the claims' verdicts, the findings, the samples and timings.

    Attributes
    ----------
    config : Config
        What was run.
    claims : list of ClaimResult
        One per claim, each with verdict, residual, tolerance and worst case.
    findings : list of Finding
        The known gaps of the paper, demonstrated live.
    samples : list of Sample
        The (x, x*, y) triples checked.
    symbolic : SymbolicOutcome or None
        The exact backend's results when it ran.
    passed : bool
        True when every claim (numeric and exact) is PASS or SKIPPED: exit status 0.
    """
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
    steps: list = field(default_factory=list, repr=False)  # StepRecord per sample (for the export)
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
        # backends-agree compares the two backends: it is marked "both"
        out = [{**c.as_dict(), "backend": "both" if c.id == "backends-agree" else "numeric"} for c in self.claims]
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
        "engine": cfg.resolved_engine, "engine_requested": cfg.engine,
    }


@dataclass
class StepRecord:
    """What the export needs from the real step on one sample, kept so that it never re-runs it:
    the inputs (phi at x; phi~ at x* before and after the switch, bottom entry 0) and zbar*."""

    phi_x: np.ndarray
    phi_x_star_pre: np.ndarray
    phi_x_star_post: np.ndarray
    zbar_star: np.ndarray


def _record(con: Construction, st) -> StepRecord:
    b = con.blocks

    def top_only(phi):
        out = np.array(phi, dtype=float)
        out[b.bottom] = 0.0
        return out

    return StepRecord(np.array(st.phi_x, dtype=float), top_only(st.phi_star_pre), top_only(st.phi_star_post),
                      np.array(st.z_star[b.mid], dtype=float))
def _detach(value):
    """A NumPy view copied out of the array it views (in a dict or list too): a sample's Check is kept
    until its claim is aggregated, and a view of a step's pass (e.g. zbar* = a row of an N x D pass)
    would keep the whole pass, or the whole group's, alive for the rest of the run."""
    if isinstance(value, np.ndarray):
        return value.copy() if value.base is not None else value
    if isinstance(value, dict):
        return {k: _detach(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_detach(v) for v in value]
    return value


def _kept(check: Check) -> Check:
    check.computed, check.claimed = _detach(check.computed), _detach(check.claimed)
    return check


def phased(progress):
    """``progress`` as a callable ``(done, total, phase=...)``; a two-argument callable gets the
    counts only. None stays None."""
    if progress is None:
        return None
    try:
        params = inspect.signature(progress).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        params = {}
    if "phase" in params or any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return progress
    return lambda done, total, phase=None: progress(done, total)


def check_claims(con: Construction, samples: list[Sample], *, claim_ids=None,
                 progress: Callable[[int, int], None] | None = None, h_post=None,
                 tasks: list[Task] | None = None, records: list | None = None) -> list[ClaimResult]:
    """Run every (selected) claim: construction-level once, sample-level on every sample's real step,
    task-level (K-shot, scope "task") on every task's real K-shot step. Task-level claims are selected
    only when ``tasks`` is given (verify passes them when K > 1). ``records``: a list that receives one
    :class:`StepRecord` per sample (the export reads them)."""
    progress = phased(progress)
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
    # the samples' steps run a group at a time on the sparse engine (one product per layer for the
    # group: engine/batch.py); the dense engine (small sizes: the default example) steps each sample
    # alone, as it always did, so its figures do not move by a rounding
    steps = None
    if sample_specs or records is not None:
        from .engine.step import layers_of

        steps = (single_steps(con, samples, h_post=h_post, reuse=True) if layers_of(con).kind == "sparse" else
                 (single_step(con, s.x, s.y, s.x_star, h_post=h_post) for s in samples))
    for n, s in enumerate(samples):
        if steps is not None:
            st = next(steps)
            if records is not None:
                records.append(_record(con, st))
            ctx.step = st
            where = {"sample": n, **s.as_dict()}
            for spec in sample_specs:
                per[spec.id].append((where, _kept(spec.func(ctx, s, st))))
            ctx.step = None
        if progress:
            progress(n + 1, len(samples), phase="checking samples")
    task_specs = [s for s in specs if s.scope == "task" and s.id not in skipped]
    task_list = (tasks or []) if task_specs else []
    for n, t in enumerate(task_list):
        if progress:
            progress(n, len(task_list), phase="checking K-shot tasks")
        kst = maml_step(con, t.xs, t.ys, t.x_star, h_post=h_post)
        ctx.step = kst
        for spec in task_specs:
            per[spec.id].append(({"task": n, **t.as_dict()}, _kept(spec.func(ctx, t, kst))))
        ctx.step = None
    out = []
    for spec in specs:
        if spec.id in skipped:
            out.append(aggregate(spec, [(None, Check("-", "-", 0.0, 0.0, Verdict.SKIPPED, skipped[spec.id]))]))
        else:
            out.append(aggregate(spec, per[spec.id]))
    if con.design.loss == "ce":  # softmax cross-entropy is Theorem 6.2's case, not 6.1's (MSE)
        for c in out:
            if "Thm 6.1" in c.paper_ref:
                c.paper_ref = c.paper_ref.replace("Thm 6.1", "Thm 6.2")
    return out


def resolve_backend_for_loss(cfg: Config, backend: str, budget_s: float | None) -> tuple[str, str]:
    """symbolic.budget.resolve_backend (every loss: the exact backend runs the loss's own gradient in
    exact arithmetic and the claims use its label code u(y) = H^T grad l(y, 0))."""
    from .symbolic.budget import resolve_backend

    return resolve_backend(cfg, backend, budget_s)


_BLAS = {"controller": None, "depth": 0}


@contextlib.contextmanager
def blas_single_thread():
    """Limit the BLAS thread pools to one thread while a run executes (restored afterwards): the
    matrices are small, and multithreaded OpenBLAS spin-waits badly on a busy machine (85 x 85
    products measured 80x slower with two threads under load). Re-entrant: only the outermost
    call changes anything, and it looks up the loaded libraries afresh (under a millisecond): one
    loaded since an earlier run (SciPy's own OpenBLAS, which Numba's first kernel loads through
    scipy.linalg) is limited too."""
    if _BLAS["depth"]:
        _BLAS["depth"] += 1
        try:
            yield
        finally:
            _BLAS["depth"] -= 1
        return
    from threadpoolctl import ThreadpoolController

    _BLAS["controller"] = ThreadpoolController()
    _BLAS["depth"] += 1
    try:
        with _BLAS["controller"].limit(limits=1, user_api="blas"):
            yield
    finally:
        _BLAS["depth"] -= 1


def verify(cfg: Config | None = None, /, *, progress=None, claim_ids=None, with_findings: bool = True,
           universal=None, backend: str = "numeric", symbolic_budget: float | None = None,
           symbolic_relu: str = "value", report_data: bool = False, **kwargs) -> Report:
    """Build the construction for ``cfg`` (or ``Config(**kwargs)``), run the claims and findings.

    Parameters
    ----------
    cfg : Config, optional
        What to build and check; without it, ``Config(**kwargs)``.
    claim_ids : collection of str, optional
        Run only these claims (default: all that apply).
    with_findings : bool
        Also demonstrate the paper's known gaps (default True).

    Returns
    -------
    Report
        Every verdict with residual and tolerance; ``report.passed`` decides the exit status.

    Other parameters:

    ``universal``: a :class:`universality.universal.UniversalOptions` (or a target name / callable):
    also run the universality claims for that target learning algorithm.
    ``backend``: "numeric" (float64, default here), "symbolic" (exact SymPy proofs only), "both",
    or "auto" (both when the symbolic run is predicted quick for the sizes, numeric otherwise).
    ``symbolic_budget``: wall-clock seconds for the symbolic run (refused above, cut at it).
    ``symbolic_relu``: "value" (the run's ReLU'(0) as an exact rational) or "symbol" (r = rho^2 > 0).
    ``report_data``: also run what a proof report pictures (universality.report_data), so that the
    report itself executes nothing.
    ``progress``: ``progress(done, total, phase=...)`` (or ``progress(done, total)``), called as
    every phase advances: build, samples, K-shot tasks, exact instances, findings, universality.

    Raises
    ------
    ConfigError
        Bad input or an unsupported combination, before any work is done.
    """
    if cfg is None:
        cfg = Config(**kwargs)
    with blas_single_thread():
        return _verify(cfg, progress=progress, claim_ids=claim_ids, with_findings=with_findings,
                       universal=universal, backend=backend, symbolic_budget=symbolic_budget,
                       symbolic_relu=symbolic_relu, report_data=report_data)


def _verify(cfg: Config, *, progress, claim_ids, with_findings, universal, backend, symbolic_budget,
            symbolic_relu, report_data) -> Report:
    from .symbolic.budget import DEFAULT_BUDGET_S

    progress = phased(progress)
    budget = DEFAULT_BUDGET_S if symbolic_budget is None else symbolic_budget
    ran, backend_note = resolve_backend_for_loss(cfg, backend, budget)
    if symbolic_relu not in ("value", "symbol"):
        raise ConfigError(f"symbolic_relu must be 'value' or 'symbol', got {symbolic_relu!r}")
    if symbolic_relu == "symbol" and ran == "numeric":
        raise ConfigError("--symbolic-relu applies to the exact run, which does not run here "
                          f"({backend_note or 'backend numeric'}); add --backend both or --backend symbolic")
    opts = None
    if universal is not None:
        from .universal import UniversalOptions, check_sizes

        opts = universal if isinstance(universal, UniversalOptions) else UniversalOptions(target=universal)
        check_sizes(cfg, opts)
    from . import memory

    memory.check(cfg, findings=with_findings, universal=opts, exact=ran != "numeric")
    if progress:
        progress(0, 1, phase="building the construction")
    t0 = time.perf_counter()
    con = build(Design.from_config(cfg), engine=cfg.resolved_engine)
    t1 = time.perf_counter()
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy, loss=cfg.loss)
    tasks = (make_tasks(max(cfg.samples, 1), cfg.seed, cfg.K, cfg.J, cfg.L, cfg.dx, cfg.dy, cfg.loss)
             if cfg.K > 1 else None)
    claims = []
    records: list = []
    if ran != "symbolic":
        claims = check_claims(con, samples, claim_ids=claim_ids, progress=progress, tasks=tasks, records=records)
    symbolic = None
    if ran != "numeric":
        from .symbolic.run import run_symbolic

        symbolic = run_symbolic(cfg, samples, budget_s=budget, claim_ids=claim_ids, relu=symbolic_relu, tasks=tasks,
                                progress=None if progress is None else
                                (lambda d, t: progress(d, t, phase="proving exact instances")))
        backend_note = f"{backend_note}; {symbolic.note}" if backend_note else symbolic.note
    if ran == "both" and (claim_ids is None or "backends-agree" in claim_ids):
        # the exact and the float step on the same samples and tasks (claims/backends.py)
        from .claims.backends import backends_agree

        claims.append(backends_agree(con, samples, tasks))
    t2 = time.perf_counter()
    findings = []
    if with_findings:
        ctx = Context(con)
        specs = list(FINDINGS.values())
        for n, spec in enumerate(specs):
            if progress:
                progress(n, len(specs), phase=f"demonstrating findings ({spec.id})")
            findings.append(run_finding(spec, ctx, samples))
    t3 = time.perf_counter()
    timings = {"build": round(t1 - t0, 4), "claims": round(t2 - t1, 4), "findings": round(t3 - t2, 4)}
    if symbolic is not None:
        timings["symbolic"] = symbolic.timings
    uni = None
    if opts is not None:
        from .claims.universal import judge_universal
        from .universal import measure_universality

        uni = measure_universality(cfg, con, opts, progress=None if progress is None else
                                   (lambda phase, d, t: progress(d, t, phase=phase)))
        claims = claims + judge_universal(uni)
        timings["universality"] = round(time.perf_counter() - t3, 4)
    report = Report(cfg, summary(cfg, con), claims, findings, samples, timings, con, uni,
                    symbolic=symbolic, backend=ran, backend_note=backend_note)
    report.tasks = tasks or []
    report.steps = records
    if report_data:
        from .report_data import collect

        t4 = time.perf_counter()
        report.report_data = collect(report)
        timings["report_data"] = round(time.perf_counter() - t4, 4)
    return report
