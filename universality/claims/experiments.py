"""Empirical claims of the paper's Sec. 7, judged from experiment curves by a paired bootstrap.

Each claim reduces the experiment's per-seed, per-test-task errors to paired differences (or a
ratio of means) and asks whether the paper's direction holds:

- *directional* claims (``direction``): the statistic is the mean paired difference, oriented so the
  paper's direction is > 0. PASS when the bootstrap confidence interval lies above 0, FAIL when it
  lies below 0 (the opposite holds), UNDECIDED when it straddles 0.
- *equivalence* claims (``similar``): the statistic is |log| of a ratio of mean errors; PASS when the
  whole interval lies inside (-margin, margin), FAIL when it lies wholly outside, else UNDECIDED.
- *at-most* claims (``at_most``): "gains nothing": PASS when the interval's upper end is below the
  margin, FAIL when its lower end is above it, else UNDECIDED.

The bootstrap is two-level and paired: each replicate resamples seeds with replacement and then
test tasks within each chosen seed, with the same indices for every array (learners and
conditions are evaluated on the same test tasks). Percentile intervals (Efron & Tibshirani 1993,
ch. 13). Only NumPy; no torch. The records are :class:`~universality.claims.base.ClaimResult` with
residual = the statistic's estimate and tolerance = the threshold it is compared with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .base import ClaimResult, ClaimSpec, Verdict, spec_text

CONFIDENCE = 0.95
N_BOOT = 2000
SIMILAR_MARGIN = math.log(2.0)   # "similar": mean errors within a factor 2 of each other
FLAT_MARGIN = 0.2                # "gains nothing": deeper nets cut the error by less than 20 %
FINETUNE_MARGIN = 0.05           # "no drop in accuracy": less than 5 accuracy points


def _spec(id: str, method: str) -> ClaimSpec:
    t = spec_text("claim", id)
    return ClaimSpec(id, t["title"], t["paper_ref"], t["statement"], method, "experiment", None)


STEPS_MAML_IN = _spec("exp-steps-maml-improves-in",
                      "paired difference err(5 steps) - err(20 steps) of MAML (trained with 5 inner steps) "
                      "on in-distribution test tasks; > 0 is the paper's direction")
STEPS_MAML_OOD = _spec("exp-steps-maml-improves-ood",
                       "paired difference err(5 steps) - err(20 steps) of MAML on out-of-distribution test "
                       "tasks (amplitude and phase shifts pooled); > 0 is the paper's direction")
STEPS_TC_OOD = _spec("exp-steps-taskcond-overfits-ood",
                     "paired difference err(20 steps) - err(0 steps) of the task-conditioned model fine-tuned "
                     "on the same 5 points, out of distribution; > 0 (error rises) is the paper's direction")
OOD_SIMILAR = _spec("exp-ood-similar-in-distribution",
                    "|log(mean err SNAIL / mean err MAML)| in distribution; inside log 2 is 'similar'")
OOD_AMPLITUDE = _spec("exp-ood-maml-robust-amplitude",
                      "paired difference of degradations [err(shift 1) - err(shift 0)] of SNAIL minus that of "
                      "MAML along the amplitude axis; > 0 means MAML degrades less")
OOD_PHASE = _spec("exp-ood-maml-robust-phase",
                  "paired difference of degradations [err(shift 1) - err(shift 0)] of SNAIL minus that of "
                  "MAML along the phase axis; > 0 means MAML degrades less")
OMNI_SIMILAR = _spec("exp-omniglot-similar-in-distribution",
                     "|log(mean error rate SNAIL / mean error rate MAML)| on unshifted 5-way 1-shot Omniglot "
                     "test tasks; inside log 2 is 'similar'")
OMNI_ROBUST = _spec("exp-omniglot-maml-robust",
                    "paired difference of degradations [error rate shifted - error rate unshifted, averaged over "
                    "the shear and scale shifts] of SNAIL minus that of MAML; > 0 means MAML degrades less")
OMNI_NO_OVERFIT = _spec("exp-omniglot-finetune-no-drop",
                        "paired difference err(after the last fine-tuning step) - err(after the trained number of "
                        "inner steps) of MAML's initialisation on plain Omniglot test tasks, fine-tuned on the "
                        "same support set; below 0.05 (5 accuracy points) means no drop")
DEPTH_MAML = _spec("exp-depth-maml-improves",
                   "minus the least-squares slope of MAML's post-update error against the number of hidden "
                   "layers (parameters held fixed), per test task; > 0 means error falls with depth")
DEPTH_ORACLE = _spec("exp-depth-oracle-flat",
                     "relative gain 1 - mean err(2..5 hidden layers) / err(1 hidden layer) of the "
                     "task-conditioned oracle; below 0.2 means it gains nothing past one hidden layer")


@dataclass
class Bootstrap:
    estimate: float
    low: float
    high: float
    replicates: int


def bootstrap(arrays: list[np.ndarray], statistic: Callable, rng: np.random.Generator,
              n_boot: int = N_BOOT, confidence: float = CONFIDENCE, seeds: bool = True) -> Bootstrap:
    """Paired two-level bootstrap of ``statistic`` over arrays shaped (seeds, tasks).

    ``statistic(*arrays)`` reduces the last two axes (and keeps any leading replicate axis). With
    ``seeds=False`` only the tasks are resampled (used per seed, on arrays of one row)."""
    arrs = [np.asarray(a, dtype=float) for a in arrays]
    s, t = arrs[0].shape
    if any(a.shape != (s, t) for a in arrs):
        raise ValueError("bootstrap arrays must share their (seeds, tasks) shape")
    est = float(statistic(*(a[None] for a in arrs))[0])
    i_s = rng.integers(0, s, size=(n_boot, s)) if seeds else np.broadcast_to(np.arange(s), (n_boot, s))
    i_t = rng.integers(0, t, size=(n_boot, s, t))
    reps = np.asarray(statistic(*(a[i_s[:, :, None], i_t] for a in arrs)), dtype=float)
    reps = reps[np.isfinite(reps)]
    if not reps.size:
        return Bootstrap(est, math.nan, math.nan, 0)
    q = (1 - confidence) / 2
    return Bootstrap(est, float(np.quantile(reps, q)), float(np.quantile(reps, 1 - q)), int(reps.size))


def mean_stat(d):
    return d.mean(axis=(-2, -1))


def log_ratio_stat(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(a.mean(axis=(-2, -1)) / b.mean(axis=(-2, -1)))


def relative_gain_stat(first, rest):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - rest.mean(axis=(-2, -1)) / first.mean(axis=(-2, -1))


def decide(kind: str, b: Bootstrap, margin: float = 0.0) -> Verdict:
    """The verdict of one interval (see the module docstring)."""
    lo, hi = b.low, b.high
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return Verdict.UNDECIDED
    if kind == "direction":
        return Verdict.PASS if lo > 0 else Verdict.FAIL if hi < 0 else Verdict.UNDECIDED
    if kind == "similar":
        if -margin < lo and hi < margin:
            return Verdict.PASS
        return Verdict.FAIL if (lo > margin or hi < -margin) else Verdict.UNDECIDED
    if kind == "at_most":
        return Verdict.PASS if hi < margin else Verdict.FAIL if lo > margin else Verdict.UNDECIDED
    raise ValueError(f"unknown claim kind {kind!r}")


def judge(spec: ClaimSpec, kind: str, arrays: list[np.ndarray], statistic: Callable, seed: int,
          margin: float = 0.0, baseline: np.ndarray | None = None, note: str = "",
          n_boot: int = N_BOOT) -> ClaimResult:
    """One claim's record: the pooled two-level bootstrap decides; per-seed task-only bootstraps
    are counted in ``counts``; effect sizes go into ``computed``."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    if any(not np.all(np.isfinite(a)) for a in arrays):
        return ClaimResult(spec.id, spec.title, spec.paper_ref, spec.statement, spec.method,
                           Verdict.UNDECIDED, math.nan, margin, int(arrays[0].size), {},
                           computed={"estimate": math.nan},
                           claimed=_claimed(kind, margin), note="non-finite errors (training diverged)")
    pooled = bootstrap(arrays, statistic, rng, n_boot)
    verdict = decide(kind, pooled, margin)
    counts = {v.value: 0 for v in Verdict}
    per_seed = []
    for i in range(arrays[0].shape[0]):
        b = bootstrap([a[i:i + 1] for a in arrays], statistic, rng, n_boot, seeds=False)
        v = decide(kind, b, margin)
        counts[v.value] += 1
        per_seed.append({"estimate": b.estimate, "ci": [b.low, b.high], "verdict": v.value})
    computed = {"estimate": pooled.estimate, "ci_low": pooled.low, "ci_high": pooled.high,
                "confidence": CONFIDENCE, "replicates": pooled.replicates, "per_seed": per_seed}
    if kind == "direction":
        d = arrays[0]
        sd = float(d.std(ddof=1)) if d.size > 1 else math.nan
        computed["effect_size_dz"] = float(d.mean() / sd) if sd and math.isfinite(sd) and sd > 0 else math.nan
        if baseline is not None:
            base = float(np.mean(baseline))
            computed["relative_effect"] = float(d.mean() / base) if base else math.nan
    else:
        computed["effect_size"] = pooled.estimate
    return ClaimResult(spec.id, spec.title, spec.paper_ref, spec.statement, spec.method, verdict,
                       pooled.estimate, margin, int(arrays[0].size), counts, None, computed,
                       _claimed(kind, margin), note)


def _claimed(kind: str, margin: float) -> str:
    return {"direction": "statistic > 0 (interval clear of 0)",
            "similar": f"|statistic| < {margin:.4g} (whole interval)",
            "at_most": f"statistic < {margin:.4g} (whole interval)"}[kind]


def _slope(errors: np.ndarray, depths) -> np.ndarray:
    """Least-squares slope of errors (seeds, depths, tasks) against depth: (seeds, tasks)."""
    x = np.asarray(depths, dtype=float)
    xc = x - x.mean()
    return np.einsum("d,sdt->st", xc, errors) / float(xc @ xc)


# ---- the claims of each experiment --------------------------------------------------------------
def judge_steps(curves: dict, train_steps: int, seed: int, note: str = "") -> list[ClaimResult]:
    """``curves``: maml_in, maml_ood, tc_ood, each (seeds, tasks, max_steps+1) query errors."""
    last = curves["maml_in"].shape[-1] - 1
    out = []
    for spec, key in ((STEPS_MAML_IN, "maml_in"), (STEPS_MAML_OOD, "maml_ood")):
        c = curves[key]
        out.append(judge(spec, "direction", [c[..., train_steps] - c[..., last]], mean_stat, seed,
                         baseline=c[..., train_steps], note=note))
    c = curves["tc_ood"]
    out.append(judge(STEPS_TC_OOD, "direction", [c[..., last] - c[..., 0]], mean_stat, seed + 1,
                     baseline=c[..., 0], note=note))
    return out


def judge_ood(errors: dict, seed: int, note: str = "") -> list[ClaimResult]:
    """``errors[learner][axis]``: (seeds, shifts, tasks) errors at shifts 0..1 for learner in
    {maml, snail}, axis in {amplitude, phase}; shift index 0 is in distribution."""
    m, s = errors["maml"], errors["snail"]
    out = [judge(OOD_SIMILAR, "similar",
                 [s["amplitude"][:, 0], m["amplitude"][:, 0]],
                 lambda a, b: np.abs(log_ratio_stat(a, b)), seed, margin=SIMILAR_MARGIN, note=note)]
    for spec, axis in ((OOD_AMPLITUDE, "amplitude"), (OOD_PHASE, "phase")):
        deg_s = s[axis][:, -1] - s[axis][:, 0]
        deg_m = m[axis][:, -1] - m[axis][:, 0]
        out.append(judge(spec, "direction", [deg_s - deg_m], mean_stat, seed + 1,
                         baseline=deg_s, note=note))
    return out


def judge_omniglot(errors: dict, seed: int, note: str = "") -> list[ClaimResult]:
    """``errors[learner]``: (seeds, transforms, tasks) error rates (1 - accuracy) for learner in
    {maml, snail}; transform index 0 is the unshifted one."""
    m, s = errors["maml"], errors["snail"]
    out = [judge(OMNI_SIMILAR, "similar", [s[:, 0], m[:, 0]], lambda a, b: np.abs(log_ratio_stat(a, b)),
                 seed, margin=SIMILAR_MARGIN, note=note)]
    if m.shape[1] > 1:
        deg_s = s[:, 1:].mean(axis=1) - s[:, 0]
        deg_m = m[:, 1:].mean(axis=1) - m[:, 0]
        out.append(judge(OMNI_ROBUST, "direction", [deg_s - deg_m], mean_stat, seed + 1, baseline=deg_s, note=note))
    return out


def judge_omniglot_finetune(err: np.ndarray, trained_steps: int, seed: int, note: str = "") -> ClaimResult:
    """``err``: (seeds, steps+1, tasks) error rates of MAML's initialisation fine-tuned 0..steps times."""
    d = err[:, -1] - err[:, trained_steps]
    res = judge(OMNI_NO_OVERFIT, "at_most", [d], mean_stat, seed, margin=FINETUNE_MARGIN, note=note)
    if np.all(err == err[:, :1]):  # fine-tuning changed no prediction: "no drop" would be vacuous
        res.verdict = Verdict.UNDECIDED
        res.note = (note + "; " if note else "") + "fine-tuning changed no test error: nothing to judge"
    return res


def judge_depth(maml: np.ndarray, oracle: np.ndarray, depths, seed: int, note: str = "") -> list[ClaimResult]:
    """``maml``, ``oracle``: (seeds, depths, tasks) query errors; ``depths`` the hidden-layer counts."""
    depths = list(depths)
    out = [judge(DEPTH_MAML, "direction", [-_slope(maml, depths)], mean_stat, seed,
                 baseline=maml[:, 0], note=note)]
    if len(depths) > 1 and depths[0] == 1:
        out.append(judge(DEPTH_ORACLE, "at_most", [oracle[:, 0], oracle[:, 1:].mean(axis=1)],
                         relative_gain_stat, seed + 1, margin=FLAT_MARGIN, note=note))
    return out
