"""Plan the jobs of the requested experiments, run them, assemble curves, judge the claims.

``run_suite`` returns the run's JSON document (plain data): config, seeds, per-seed curves,
statistics and claim records (:class:`~universality.claims.base.ClaimResult.as_dict`). Presentation
(:mod:`.output`) only reads it.
"""
from __future__ import annotations

import math
import platform
import time
from typing import Callable

import numpy as np

from ..claims import experiments as X
from ..claims.base import Verdict
from .profiles import Profile
from .runs import Job

EXPERIMENTS = ("steps", "ood", "depth")
SCHEMA = "universality-experiments/1"


def plan(experiments: list[str], profile: Profile, root_seed: int, omniglot: str | None = None) -> list[Job]:
    """The jobs: one sinusoid job per seed (it trains what ``steps`` and ``ood`` need), one depth job
    per seed and depth, one Omniglot job per seed when ``omniglot`` is given with ``ood``."""
    jobs = []
    learners = set()
    if "steps" in experiments:
        learners |= {"maml", "tc"}
    if "ood" in experiments:
        learners |= {"maml", "snail", "lstm"}
    order = ("maml", "tc", "snail", "lstm")
    for s in range(profile.seeds):
        if learners:
            jobs.append(Job("sinusoid", root_seed, s, profile, tuple(x for x in order if x in learners)))
        if "depth" in experiments:
            jobs += [Job("depth", root_seed, s, profile, depth=d) for d in profile.depth_layers]
        if omniglot and "ood" in experiments:
            jobs.append(Job("omniglot", root_seed, s, profile, data=omniglot))
    return jobs


def _per_seed(arr: np.ndarray) -> dict:
    """(seeds, tasks, ...) -> per-seed means over tasks, and their mean and std over seeds."""
    m = arr.mean(axis=1)
    return {"per_seed": m.tolist(), "mean": m.mean(axis=0).tolist(),
            "std": (m.std(axis=0, ddof=1) if m.shape[0] > 1 else np.zeros_like(m[0])).tolist()}


def assemble(experiments: list[str], profile: Profile, root_seed: int,
             results: list[tuple[Job, dict]]) -> dict:
    """Curves, statistics and claims from the jobs' results (no training here)."""
    sin = sorted(((j, r) for j, r in results if j.kind == "sinusoid"), key=lambda jr: jr[0].seed_index)
    dep = [(j, r) for j, r in results if j.kind == "depth"]
    omni = sorted(((j, r) for j, r in results if j.kind == "omniglot"), key=lambda jr: jr[0].seed_index)
    out: dict = {"results": {}, "claims": [], "params": {}, "training": []}
    note = (f"profile {profile.name}: {profile.seeds} seeds; see docs/experiments.md for what a "
            "verdict at this scale does and does not say")
    for j, r in sin:
        out["params"].update(r["params"])
        out["training"].append({"job": j.label, "seconds": r["seconds"], **{
            k: dict(v) for k, v in r["train"].items()}})
    if "steps" in experiments:
        curves = {
            "maml_in": np.stack([r["maml_steps"]["in"] for _, r in sin]),
            "maml_ood": np.stack([np.concatenate([r["maml_steps"]["amplitude"], r["maml_steps"]["phase"]]) for _, r in sin]),
            "tc_in": np.stack([r["tc_steps"]["in"] for _, r in sin]),
            "tc_ood": np.stack([np.concatenate([r["tc_steps"]["amplitude"], r["tc_steps"]["phase"]]) for _, r in sin]),
        }
        out["results"]["steps"] = {"steps": list(range(profile.max_steps + 1)), "train_steps": profile.train_steps,
                                   "curves": {k: _per_seed(v) for k, v in curves.items()}}
        out["claims"] += [c.as_dict() for c in X.judge_steps(curves, profile.train_steps, root_seed, note)]
    if "ood" in experiments:
        errors = {name: {axis: np.stack([r[f"{name}_shift"][axis] for _, r in sin]) for axis in ("amplitude", "phase")}
                  for name in ("maml", "snail", "lstm")}
        out["results"]["ood"] = {
            "shifts": list(profile.shifts),
            "amplitude_range": [[5.0 * s + 0.1 * (1 - s), 5.0 + 5.0 * s] for s in profile.shifts],
            "phase_range": [[math.pi * s, math.pi * (1 + s)] for s in profile.shifts],
            "curves": {name: {axis: _per_seed(np.swapaxes(a, 1, 2)) for axis, a in d.items()}
                       for name, d in errors.items()}}
        out["claims"] += [c.as_dict() for c in X.judge_ood(errors, root_seed + 10, note)]
        for j, r in omni:
            out["training"].append({"job": j.label, "seconds": r["seconds"], **r["train"]})
        if omni:
            out["results"]["omniglot"] = {
                "transforms": omni[0][1]["transforms"],
                "curves": {name: _per_seed(np.stack([r["acc"][name] for _, r in omni]).swapaxes(1, 2))
                           for name in omni[0][1]["acc"]},
                "params": omni[0][1]["params"]}
            err = {name: 1.0 - np.stack([r["acc"][name] for _, r in omni]) for name in ("maml", "snail")}
            out["claims"] += [c.as_dict() for c in X.judge_omniglot(err, root_seed + 30, note)]
            if all("finetune" in r for _, r in omni):
                ft = {k: np.stack([r["finetune"][k] for _, r in omni]) for k in omni[0][1]["finetune"]}
                out["results"]["omniglot_finetune"] = {
                    "steps": list(range(ft["maml"].shape[1])), "trained_steps": profile.omni_steps,
                    "curves": {k: _per_seed(np.swapaxes(v, 1, 2)) for k, v in ft.items()}}
                out["claims"].append(X.judge_omniglot_finetune(1.0 - ft["maml"], profile.omni_steps,
                                                               root_seed + 40, note).as_dict())
    if dep:
        layers = list(profile.depth_layers)
        by = {(j.seed_index, j.depth): r for j, r in dep}
        seeds = sorted({s for s, _ in by})
        maml = np.stack([np.stack([by[s, d]["maml_err"] for d in layers]) for s in seeds])
        oracle = np.stack([np.stack([by[s, d]["oracle_err"] for d in layers]) for s in seeds])
        out["results"]["depth"] = {
            "layers": layers,
            "params": {str(d): by[seeds[0], d]["params"] for d in layers},
            "curves": {"maml": _per_seed(np.swapaxes(maml, 1, 2)), "oracle": _per_seed(np.swapaxes(oracle, 1, 2))}}
        for j, r in sorted(dep, key=lambda jr: (jr[0].seed_index, jr[0].depth)):
            out["training"].append({"job": j.label, "seconds": r["seconds"], **{
                k: dict(v) for k, v in r["train"].items()}})
        out["claims"] += [c.as_dict() for c in X.judge_depth(maml, oracle, layers, root_seed + 20, note)]
    counts = {v.value: 0 for v in Verdict}
    for c in out["claims"]:
        counts[c["verdict"]] += 1
    out["summary"] = counts
    return out


def run_suite(experiments: list[str], profile: Profile, root_seed: int = 0, workers: int = 1,
              scheduler=None, omniglot: str | None = None,
              on_done: Callable | None = None, jobs_hook: Callable | None = None) -> dict:
    """Run the experiments; the JSON document of the run."""
    from .engine import run_jobs, threads_per_worker, with_threads

    jobs = plan(experiments, profile, root_seed, omniglot)
    threads = 1 if scheduler is not None else threads_per_worker(workers)
    jobs = with_threads(jobs, threads)
    if jobs_hook is not None:
        jobs_hook(jobs)
    t0 = time.perf_counter()
    results = run_jobs(jobs, workers=workers, scheduler=scheduler, on_done=on_done)
    elapsed = time.perf_counter() - t0
    doc = {"schema": SCHEMA, "experiments": list(experiments), "profile": profile.as_dict(),
           "seed": root_seed, "seeds": list(range(profile.seeds)), "workers": workers,
           "scheduler": scheduler if isinstance(scheduler, str) else (None if scheduler is None else "dask"),
           "torch_threads_per_job": threads, "elapsed_s": elapsed,
           "environment": _environment(), "omniglot": omniglot}
    doc.update(assemble(experiments, profile, root_seed, results))
    doc["passed"] = bool(doc["claims"]) and all(c["verdict"] == "PASS" for c in doc["claims"])
    return doc


def _environment() -> dict:
    env = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine()}
    try:
        import torch

        env["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - run_suite needs torch
        pass
    return env
