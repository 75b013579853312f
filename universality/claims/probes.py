"""Probe blocks for matrix identities (Freivalds).

A claim about a D x D product (second-order-zero, the telescoping products) is checked on a block of
probe vectors X: the identity when D is small (every column, so the check is the identity itself),
otherwise k Gaussian probes plus the sample's own inputs. For a nonzero error matrix E, (E x)_i is
N(0, |E_i|^2) for a Gaussian x, so one probe hides an entry error e of row i under the tolerance t
with probability at most 2t / (e sqrt(2 pi)) < 0.8 t / e, and k independent probes with at most
(0.8 t / e)^k: below 3e-7 for k = 6 at e = 10 t (below 3e-13 at e = 1000 t), and 0 in
exact arithmetic.
"""
from __future__ import annotations

import numpy as np

IDENTITY_MAX_D = 128  # at or below this width the probes are the whole identity
GAUSSIAN_PROBES = 6
PROBE_SEED = 12345


def probe_block(ctx, st=None) -> np.ndarray:
    D = ctx.D
    if D <= IDENTITY_MAX_D:
        return np.eye(D)
    rng = np.random.default_rng(PROBE_SEED)
    cols = [rng.standard_normal((D, GAUSSIAN_PROBES))]
    if st is not None:
        cols += [st.phi_star_post[:, None], st.phi_x[:, None]]
    return np.hstack(cols)


def false_pass_bound(k: int = GAUSSIAN_PROBES, ratio: float = 10.0) -> float:
    """Probability that k Gaussian probes all miss an entry error ``ratio`` times the tolerance."""
    return (0.8 / ratio) ** k


def probe_note(ctx, X) -> str:
    if X.shape[1] == ctx.D and ctx.D <= IDENTITY_MAX_D:
        return "identity basis, exact"
    k = GAUSSIAN_PROBES
    return (f"Freivalds: {k} Gaussian probes + the sample's 2 inputs; false-pass probability "
            f"<= (0.8 t/e)^{k} for an entry error e, {false_pass_bound(k):.1e} at e = 10 t")


def shared_columns(ctx) -> int:
    """How many leading columns of :func:`probe_block` are the same for every sample: the Gaussian
    probes (seeded with PROBE_SEED) above IDENTITY_MAX_D; 0 for the identity (it is not shared in
    the claims' group sweeps: every column is its own check there)."""
    return 0 if ctx.D <= IDENTITY_MAX_D else GAUSSIAN_PROBES

