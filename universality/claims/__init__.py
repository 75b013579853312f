"""Claims (one function per claim of the catalogue) and findings (the paper's known gaps)."""
from .base import (CLAIMS, FINDINGS, Check, ClaimResult, ClaimSpec, Context, Finding, Verdict,
                   aggregate)
from . import one_step as _one_step  # noqa: F401  (registers the one-shot claims)
from . import findings as _findings  # noqa: F401  (registers the findings)

__all__ = ["CLAIMS", "FINDINGS", "Check", "ClaimResult", "ClaimSpec", "Context", "Finding", "Verdict",
           "aggregate"]
