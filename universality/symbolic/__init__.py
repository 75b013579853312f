"""Exact verification with SymPy: instance proofs (exact execution, exact claims) and the
schematic proof of eq. (1) and the telescoping products for every N.

``budget`` (which backend runs, time estimates) imports no SymPy; ``run_symbolic`` does, lazily.
"""
from .budget import (BACKENDS, DEFAULT_BUDGET_S, QUICK_S, estimate_seconds, instance_bound,  # noqa: F401
                     resolve_backend)


def __getattr__(name):
    if name in ("run_symbolic", "SymbolicOutcome", "instances_of"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
