"""Forward-error tolerances (docs/tolerances.md).

A quantity computed as fl(W_1 ... W_N u) differs from its exact value by at most
gamma_n |W_1| ... |W_N| |u| componentwise (Higham, Accuracy and Stability of Numerical Algorithms,
2nd ed., Sec. 3.5), with gamma_n = n u / (1 - n u), u = 2^-53, and n the number of additions along the
way. Here n is counted from the network itself: every layer contributes the largest number of
nonzeros in one of its rows (the additions a row actually performs; :meth:`Layers.row_nnz`) plus two
(the ReLU and the store), and after a step every updated layer adds the additions of its rank-K
correction ``d (h^T u)`` (the nonzeros of h plus K). This replaces the blanket n = N (D + 2) + 8 of
the first version, which at J = L = 128 gave a tolerance of about 2e-2 in the Freivalds check.

Magnitudes are per layer and per block (per entry where the claim compares vectors): a tolerance is
never one maximum pooled over layers. :func:`guard` turns a PASS whose tolerance is larger than a
stated fraction of the quantity it guards into UNDECIDED with that reason: a check that could not
have failed is not evidence.
"""
from __future__ import annotations

import math

import numpy as np

UNIT_ROUNDOFF = 2.0**-53
SAFETY = 4.0
# A claim whose tolerance exceeds this fraction of the quantity it guards decides nothing.
GUARD_FRACTION = 1e-3
HEAD_OPS = 8  # the head, the loss and the label maps: a few more roundings


def gamma(n: int) -> float:
    nu = n * UNIT_ROUNDOFF
    return nu / (1.0 - nu) if nu < 1 else math.inf


def ops_count(N: int, D: int) -> int:
    """The blanket count of the first version (dense rows of width D): an upper bound on
    :func:`layer_ops` for any network of N layers of width D."""
    return N * (D + 2) + 8


def tolerance(magnitude: float, N: int, D: int) -> float:
    """The rounding tolerance under the blanket count (kept for callers without a network)."""
    return SAFETY * gamma(ops_count(N, D)) * float(magnitude)


def layer_ops(layers) -> int:
    """Additions along one pass through ``layers``: per layer its largest row's nonzeros + 2."""
    return int(sum(int(layers.row_nnz(k).max(initial=0)) + 2 for k in range(layers.N)))


def step_ops(step) -> int:
    """The extra additions of the updated layers of ``step``: per layer nnz(h) + K (the rank-K
    correction d (h^T u) of :class:`~universality.engine.layers.UpdatedLayers`)."""
    from .engine.checkpoint import segments

    H = step.W_post.Hfac  # (N, D, K); checkpointed: a segment at a time
    return sum(int(np.count_nonzero(h, axis=1).max(axis=1).sum()) for _, _, (h,) in segments(H)) + H.shape[0] * H.shape[2]


def bound(n: int, magnitude):
    """SAFETY * gamma_n * magnitude (scalar or per entry)."""
    return SAFETY * gamma(n) * (np.asarray(magnitude, dtype=float) if np.ndim(magnitude) else float(magnitude))


def guard(check, guarded: float, what: str, fraction: float = GUARD_FRACTION):
    """A PASS whose tolerance exceeds ``fraction * guarded`` becomes UNDECIDED with the reason.

    ``guarded``: the size of the quantity the claim protects (e.g. max |zbar*|); ``what`` names it.
    An exact zero on both sides (guarded = 0 and residual = 0) is kept. Other verdicts are returned
    unchanged (a FAIL above a loose tolerance is still a FAIL).
    """
    from .claims.base import Verdict

    if check.verdict != Verdict.PASS:
        return check
    guarded = abs(float(guarded))
    if guarded == 0 and check.residual == 0:
        return check  # nothing to guard and nothing off: an exact zero
    if not math.isfinite(check.tolerance) or check.tolerance > fraction * guarded:
        check.verdict = Verdict.UNDECIDED
        reason = (f"tolerance {check.tolerance:.3g} exceeds {fraction:g} x {what} = {fraction * guarded:.3g}: "
                  f"rounding could hide an error of that size (the products are too ill-conditioned here)")
        check.note = f"{check.note}; {reason}" if check.note else reason
    return check
