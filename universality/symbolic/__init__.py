"""Exact verification with SymPy: instance proofs (exact execution, exact claims) and the
schematic proof of eq. (1) and the telescoping products for every N."""
from .run import (BACKENDS, DEFAULT_BUDGET_S, QUICK_S, SymbolicOutcome, estimate_seconds,  # noqa: F401
                  instances_of, resolve_backend, run_symbolic)
