"""Claims (one function per claim of the catalogue) and findings (the paper's known gaps)."""
from .base import (CLAIMS, FINDINGS, Check, ClaimResult, ClaimSpec, Context, Finding, Verdict,
                   aggregate)
from . import one_step as _one_step  # noqa: F401  (registers the one-shot claims)
from . import findings as _findings  # noqa: F401  (registers the findings)
from . import loss_claims as _loss_claims  # noqa: F401  (Sec. 6: loss-recovers-label)
from . import kshot as _kshot  # noqa: F401  (Sec. 5: K-shot claims and findings)
from . import coverage as _coverage  # noqa: F401  (every cell, codes-injective, binning, step values)

__all__ = ["CLAIMS", "FINDINGS", "Check", "ClaimResult", "ClaimSpec", "Context", "Finding", "Verdict",
           "aggregate"]
