"""How long a symbolic run will take, and which backend runs: no SymPy import here (cheap to ask).

The default backend ("auto") adds the exact run only when it is predicted quick (QUICK_S), so the
default example keeps its numeric speed; explicit "symbolic" / "both" are refused up front when the
prediction exceeds the wall-clock budget, and cut at the budget while running (see run.py).
"""
from __future__ import annotations

import math

# Seconds per instance = SECONDS_PER_INSTANCE + SECONDS_PER_ND2 * N D^2 + SECONDS_PER_D2 * D^2, fitted
# on this project's (shared, 2-core) machine for N = 4..18, D = 9..41 to stay above the measured
# times (by 1.1-2x, see docs/symbolic.md): the N-fold exact D x D products and the per-layer sign
# decisions dominate.
SECONDS_PER_INSTANCE = 0.05
SECONDS_PER_ND2 = 3.0e-5
SECONDS_PER_D2 = 6.0e-4
DEFAULT_BUDGET_S = 60.0
MAX_BUDGET_S = 86_400.0  # --symbolic-budget: at most a day
# "auto" adds the symbolic run only below this prediction: the default example (--N 6 --J 4 --L 4,
# about 4-5 s exact) keeps the core's 2 s wall target; ask for it with --backend both.
QUICK_S = 3.0
BACKENDS = ("auto", "numeric", "symbolic", "both")
SCHEMATIC_S = 1.0  # the schematic proof's cost (size-independent; measured 0.4-0.6 s)


def estimate_seconds(cfg, n_instances: int) -> float:
    """Predicted wall time of the instance proofs (the schematic proof is separate and fixed)."""
    d2 = cfg.D * cfg.D
    return n_instances * (SECONDS_PER_INSTANCE + SECONDS_PER_ND2 * cfg.N * d2 + SECONDS_PER_D2 * d2)


def instance_bound(cfg) -> int:
    """At most this many distinct instances: samples + 7 corners, and cells x label sign patterns."""
    return min(cfg.samples + 7, cfg.cells_x * cfg.cells_star * 2**cfg.dy)


def resolve_backend(cfg, backend: str, budget_s: float | None) -> tuple[str, str]:
    """Which backend runs, and the one-line note that says so; ConfigError when refused."""
    from ..errors import ConfigError

    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if budget_s is not None and not (0 < budget_s <= MAX_BUDGET_S):
        raise ConfigError(f"symbolic budget must be in (0, {MAX_BUDGET_S:g}] seconds, got {budget_s:g}")
    if backend == "numeric":
        return "numeric", ""
    est = estimate_seconds(cfg, instance_bound(cfg)) + SCHEMATIC_S
    limit = budget_s if budget_s is not None else math.inf
    if backend == "auto":
        if est <= min(QUICK_S, limit):
            return "both", f"backend: numeric + symbolic (symbolic estimated {est:.0f} s)"
        if est <= limit:
            hint = "run it with --backend both"
        elif est <= MAX_BUDGET_S:  # only suggest what the budget accepts
            hint = (f"over the {limit:g} s --symbolic-budget too: --backend both --symbolic-budget "
                    f"{math.ceil(est * 1.1):.0f} would run it")
        else:
            hint = "too slow for any --symbolic-budget at these sizes"
        return "numeric", (f"backend: numeric only (the exact run is estimated at {est:.1f} s, above the "
                           f"{min(QUICK_S, limit):g} s quick limit; {hint})")
    if est > limit:
        raise ConfigError(
            f"symbolic run of N={cfg.N}, D={cfg.D} with up to {instance_bound(cfg)} instances is estimated at "
            f"{est:.0f} s, over the --symbolic-budget of {limit:g} s; raise the budget, lower --samples, "
            f"or use --backend numeric")
    return backend, f"backend: {backend} (symbolic estimated {est:.0f} s, budget {limit:g} s)"

