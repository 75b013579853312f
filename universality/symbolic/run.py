"""The symbolic backend: exact instance proofs for a run's samples, plus the all-N schematic proof.

An *instance* is (bin x, bin x*, the sign of each label component): with alpha and y symbols of a
stated sign, the exact run proves the claims for every alpha and y in that open orthant at once,
so samples that share cells and label signs share one proof. ``y="value"`` / ``alpha="value"`` use
the sample's label / the run's alpha as exact rationals instead (the decimal the float prints as).

Time guard: :func:`estimate_seconds` predicts the cost from the sizes before anything runs (the
caller refuses or falls back to numeric above its budget), and :func:`run_symbolic` stops at a
wall-clock budget with a one-line note instead of hanging (SIGALRM interrupts SymPy between
bytecodes in the main thread; elsewhere the budget is checked between instances).
"""
from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import sympy as sp

from ..claims.base import Check, Verdict, aggregate
from ..construction.fields import ExactField
from ..construction.network import Design, build
from ..engine.exact import ExactConstruction, exact_ring_for
from ..engine.step import maml_step, single_step
from .claims import SYMBOLIC_CLAIMS, ExactContext, StepView, TaskView
from .budget import DEFAULT_BUDGET_S
from .signs import Orthant, UndecidedSign

# Claims whose exact check reads only the training half of the step (the gradients and the updated
# parameters): an undecided sign after the step (at x*) leaves them decidable.
TRAINING_CLAIMS = ("grad-rank-one", "update-blocks", "second-order-zero")


def exact_step(ctx, x, x_star, y_syms, a_sym, r, orthant: Orthant):
    """The engine's real step (engine/step.py) on the exact backend, for one instance: the ring's
    orthant is the instance's, alpha and y its symbols (or exact rationals)."""
    F = ctx.F
    F.set_orthant({s.name: g for s, g in zip(orthant.symbols, orthant.signs)},
                  {s.name: s for s in orthant.symbols})
    return single_step(ctx.ec, x, [F.from_sympy(v) for v in y_syms], x_star, alpha=F.from_sympy(a_sym),
                       r=F.from_sympy(r))

class BudgetExceeded(Exception):
    pass


@dataclass
class Instance:
    x: tuple
    x_star: tuple
    y: tuple  # the first sample's label (floats)
    cell_x: int
    cell_star: int
    samples: list = field(default_factory=list)


@dataclass
class SymbolicOutcome:
    claims: list  # ClaimResult, same ids as the numeric catalogue
    schematic: list  # ProofStep
    instances: int
    instances_done: int
    note: str
    alpha: str
    y: str
    timings: dict = field(default_factory=dict)
    cut: bool = False
    relu: str = "value"  # "symbol": ReLU'(0) = rho^2 was a symbol

    @property
    def passed(self) -> bool:
        ok = (Verdict.PASS, Verdict.SKIPPED)
        return (not self.cut and all(c.verdict in ok for c in self.claims)
                and all(s.verdict in ok for s in self.schematic))

    def as_dict(self) -> dict:
        return {
            "alpha": self.alpha, "y": self.y, "relu_grad_at_zero": self.relu, "instances": self.instances,
            "instances_done": self.instances_done, "cut": self.cut, "note": self.note,
            "claims": [c.as_dict() for c in self.claims],
            "schematic": [s.as_dict() for s in self.schematic],
            "passed": self.passed,
        }


def _sign(v: float) -> int:
    return (v > 0) - (v < 0)


def instances_of(con, samples, y_mode: str = "symbol") -> list[Instance]:
    """Group the samples by what the exact proof depends on: the cell of x, the cell of x* in both of
    its slots (bin_L(x*) once the switch flips, bin_J(x*) where it does not: r = 0, e_check(y) = 0),
    and the label's sign pattern (or the label itself)."""
    out: dict = {}
    for n, s in enumerate(samples):
        a, b = con.bin_x(s.x), con.bin_star(s.x_star)
        slots = (a, b, con.bin_x(s.x_star))
        key = (*slots, tuple(_sign(v) for v in s.y)) if y_mode == "symbol" else (*slots, tuple(s.y))
        if key not in out:
            out[key] = Instance(s.x, s.x_star, tuple(s.y), a, b)
        out[key].samples.append(n)
    return list(out.values())


def _exact(v: float) -> sp.Rational:
    return ExactField().num(float(v))


RHO = sp.Symbol("rho", positive=True)  # a symbolic ReLU'(0) is r = rho^2, rho > 0


def _symbols(cfg, inst: Instance, alpha_mode: str, y_mode: str, rho=None):
    syms, signs, point = [], [], {}
    if rho is not None:
        syms.append(rho)
        signs.append(1)
        point[rho] = math.sqrt(cfg.relu_grad_at_zero) if cfg.relu_grad_at_zero > 0 else 1.0
    if alpha_mode == "symbol":
        alpha = sp.Symbol("alpha", positive=cfg.alpha > 0, negative=cfg.alpha < 0)
        syms.append(alpha)
        signs.append(_sign(cfg.alpha))
        point[alpha] = cfg.alpha
    else:
        alpha = _exact(cfg.alpha)
    y = []
    for d, v in enumerate(inst.y):
        if y_mode == "symbol" and v != 0:
            s = sp.Symbol(f"y{d}", positive=v > 0, negative=v < 0)
            syms.append(s)
            signs.append(_sign(v))
            point[s] = v
            y.append(s)
        else:
            y.append(_exact(v) if v != 0 else sp.Integer(0))
    return alpha, y, Orthant(tuple(syms), tuple(signs)), point


def _prove_tasks(cfg, con, ctx0, task_specs, per, tasks, alpha, rho, r) -> None:
    """The K-shot claims on one exact K-shot step per task (alpha as in the run, labels as the exact
    rationals of their decimals: a K-shot task has K dy label components)."""
    from ..samples import make_tasks

    if tasks is None:
        tasks = make_tasks(max(cfg.samples, 1), cfg.seed, cfg.K, cfg.J, cfg.L, cfg.dx, cfg.dy, cfg.loss)
    F, ec = ctx0.F, ctx0.ec
    for n, t in enumerate(tasks):
        first = Instance(t.xs[0], t.x_star, tuple(t.ys[0]), 0, 0)
        a_sym, _, orthant, point = _symbols(cfg, first, alpha, "value", rho)
        ys = [[_exact(v) if v != 0 else sp.Integer(0) for v in y] for y in t.ys]
        ctx = ExactContext(con, a_sym, r, point, ctx0.cache, ctx0.extra, ec)
        F.set_orthant({s.name: g for s, g in zip(orthant.symbols, orthant.signs)},
                      {s.name: s for s in orthant.symbols})
        where = {"task": n, **t.as_dict(), "orthant": orthant.describe()}
        try:
            es = maml_step(ec, list(t.xs), [[F.from_sympy(v) for v in y] for y in ys], t.x_star,
                           alpha=F.from_sympy(a_sym), r=F.from_sympy(r))
            tv = TaskView(ctx, es, t, ys, orthant)
        except UndecidedSign as exc:
            for spec in task_specs:
                per[spec.id].append((where, Check("-", "-", math.nan, 0.0, Verdict.UNDECIDED, str(exc))))
            continue
        for spec in task_specs:
            try:
                per[spec.id].append((where, spec.func(ctx, tv)))
            except UndecidedSign as exc:
                per[spec.id].append((where, Check("-", "-", math.nan, 0.0, Verdict.UNDECIDED, str(exc))))


@contextmanager
def _deadline(seconds: float | None):
    """Raise BudgetExceeded after ``seconds`` of wall time (main thread only; else a no-op)."""
    usable = (seconds is not None and math.isfinite(seconds) and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def _raise(signum, frame):
        raise BudgetExceeded()

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_symbolic(cfg, samples, *, budget_s: float | None = DEFAULT_BUDGET_S, alpha: str = "symbol",
                 y: str = "symbol", relu: str = "value", schematic: bool = True, claim_ids=None,
                 con=None, progress=None, tasks=None) -> SymbolicOutcome:
    """Exact proofs of the claim catalogue on the samples' instances, and the schematic proof.

    ``relu="symbol"`` makes ReLU'(0) the symbol r = rho^2 (rho > 0) in the construction (A_i / r^i)
    and in backprop, so the proofs hold for every r > 0 at once (the run's r = 0 is not in that
    family: it stays a value, and the note says so). ``progress(done, total)`` is called after
    every instance.
    """
    from .schematic import schematic_proof

    t0 = time.perf_counter()
    rho = RHO if (relu == "symbol" and cfg.relu_grad_at_zero > 0) else None
    if con is None:
        design = Design.from_config(cfg)
        con = build(design if rho is None else design.with_(relu_grad_at_zero=rho**2), ExactField())
    r = ExactField().num(cfg.relu_grad_at_zero) if rho is None else rho**2
    insts = instances_of(con, samples, y)
    specs = [s for s in SYMBOLIC_CLAIMS.values() if claim_ids is None or s.id in claim_ids]
    # every claim of the numeric catalogue gets an exact record, in its order: the exact ones, and
    # SKIPPED with the reason for the ones the exact run does not prove (K-shot ones only when K > 1)
    from ..claims.base import CLAIMS
    from .claims import EXACT_SKIP_REASONS

    order = [c for c in CLAIMS.values() if (claim_ids is None or c.id in claim_ids)
             and (c.scope != "task" or cfg.K > 1) and (c.id in SYMBOLIC_CLAIMS or c.id in EXACT_SKIP_REASONS)]
    per: dict[str, list] = {s.id: [] for s in specs}
    done, cut, note = 0, False, ""
    t1 = time.perf_counter()
    deadline = None if budget_s is None else t0 + budget_s
    try:
        with _deadline(None if budget_s is None else budget_s - (t1 - t0)):
            extra = () if rho is None else (rho,)
            names = (("alpha",) if alpha == "symbol" else ()) + tuple(f"y{d}" for d in range(cfg.dy)) + \
                (("rho",) if rho is not None else ())
            F = exact_ring_for(con, names, ("rho",) if rho is not None else ())
            ec = ExactConstruction(con, F)
            ctx0 = ExactContext(con, None, r, {}, extra=extra, ec=ec)
            if rho is not None:  # the construction-level claims decide signs with rho > 0 alone
                F.set_orthant({"rho": 1}, {"rho": rho})
                ctx0.point = {rho: math.sqrt(cfg.relu_grad_at_zero)}
            for spec in specs:
                if spec.scope == "construction":
                    per[spec.id].append(({"construction": True}, spec.func(ctx0)))
            if progress:
                progress(0, len(insts))
            for n, inst in enumerate(insts):
                if deadline is not None and time.perf_counter() > deadline:
                    raise BudgetExceeded()
                base = {"instance": n, "cell_x": inst.cell_x, "cell_star": inst.cell_star}
                jobs = [(dict(base, samples=inst.samples), inst, y)]
                while jobs:
                    where, job, mode = jobs.pop(0)
                    a_sym, y_syms, orthant, point = _symbols(cfg, job, alpha, mode, rho)
                    ctx = ExactContext(con, a_sym, r, point, ctx0.cache, extra, ec)
                    where["orthant"] = orthant.describe()
                    try:
                        st = StepView(ctx, exact_step(ctx, job.x, job.x_star, y_syms, a_sym, r, orthant),
                                      job.x, job.x_star, y_syms, orthant)
                        # the passes the claims read after the step (decided now, inside the try)
                        st.st.fwd_star_pre, st.st.fwd_x_post  # noqa: B018
                    except UndecidedSign as exc:
                        if mode == "symbol":
                            # the sign orthant is too coarse (e.g. sum(y) changes sign on it): prove each
                            # sample of the group with its exact label instead
                            for k in job.samples:
                                smp = samples[k]
                                jobs.append((dict(base, samples=[k], y_note=f"exact label; on the orthant: {exc}"),
                                             Instance(smp.x, smp.x_star, tuple(smp.y), job.cell_x, job.cell_star,
                                                      [k]), "value"))
                            continue
                        # only the claims that depend on the undecided sign become UNDECIDED: when the
                        # training half (gradients, updated parameters) is decided, the claims on it run
                        # (the same step evaluated at x* = x: its training half does not read x*)
                        try:
                            pst = StepView(ctx, exact_step(ctx, job.x, job.x, y_syms, a_sym, r, orthant),
                                           job.x, job.x_star, y_syms, orthant, partial=True)
                        except UndecidedSign:
                            pst = None
                        for spec in specs:
                            if spec.scope != "sample":
                                continue
                            if pst is not None and spec.id in TRAINING_CLAIMS:
                                per[spec.id].append((where, spec.func(ctx, pst)))
                            else:
                                per[spec.id].append((where, Check("-", "-", math.nan, 0.0, Verdict.UNDECIDED,
                                                                  str(exc))))
                        continue
                    for spec in specs:
                        if spec.scope == "sample":
                            per[spec.id].append((where, spec.func(ctx, st)))
                done += 1
                if progress:
                    progress(done, len(insts))
            task_specs = [s for s in specs if s.scope == "task"]
            if cfg.K > 1 and task_specs:
                _prove_tasks(cfg, con, ctx0, task_specs, per, tasks, alpha, rho, r)
    except BudgetExceeded:
        cut = True
        note = (f"symbolic run cut at the {budget_s:g} s budget after {done} of {len(insts)} instances "
                f"(raise --symbolic-budget, or use fewer --samples)")
    t2 = time.perf_counter()
    out = []
    for c in order:
        if c.id in per:
            out.append(aggregate(SYMBOLIC_CLAIMS[c.id], per[c.id]))
        else:
            out.append(aggregate(c, [(None, Check("-", "-", 0.0, 0.0, Verdict.SKIPPED, EXACT_SKIP_REASONS[c.id]))]))
    if cut:
        for c in out:
            if c.verdict == Verdict.PASS and c.checked:
                c.note = (c.note + "; " if c.note else "") + f"proved on {done} of {len(insts)} instances (cut)"
    steps = []
    if schematic:
        steps = schematic_proof()
    t3 = time.perf_counter()
    if not note:
        rnote = "ReLU'(0) = rho^2 symbolic" if rho is not None else (
            "ReLU'(0) = 0 kept as a value" if relu == "symbol" else f"ReLU'(0) = {sp.sstr(r)}")
        note = (f"symbolic: {len(insts)} exact instances (alpha {alpha}, y {y}, {rnote}) from {len(samples)} samples; "
                f"schematic proof for every N: {len(steps)} steps")
    return SymbolicOutcome(out, steps, len(insts), done, note, alpha, y,
                           {"build": round(t1 - t0, 4), "instances": round(t2 - t1, 4),
                            "schematic": round(t3 - t2, 4)}, cut, "symbol" if rho is not None else "value")
