"""The engine's memory model: what a numeric run keeps alive at once, per backend.

* dense: the weights, their absolute values and one more N x D x D float64 stack (the updated
  weights a report pictures, or a mutant's copy): three stacks. Gradients are kept as factors on both
  engines, so the first version's six stacks (with the gradients and |W'|) are no longer alive; the
  per-step arrays are those of the sparse model.
* sparse: the CSR weights (8-byte value + 4-byte column index per nonzero, plus the row pointers) and
  the values of |W| (8 bytes per nonzero); the chosen A_i, A_i / r^i (N x dm each) and code matrices
  G_i (N x cells); per step the gradient factors and passes at x (4K arrays of N x D) and about 36
  more N x D arrays at the peak (see :func:`estimate_bytes`); above engine/batch.py's checkpointing
  threshold (one sample's five N x D pass arrays over 4 GiB: J = L = 128) the passes are checkpointed
  and the per-step term is what the checkpointed sweeps allocate, O(sqrt(N) D) per sample.
"""
from __future__ import annotations

from ..config import ENGINES  # noqa: E402,F401 - the choices live with the Config field
DENSE_STACKS_ALIVE = 3
# auto: dense while one N x D x D stack has at most this many entries (under 1 MiB: the default example
# and the smallest paper layouts, where both engines take the same time); sparse above, where it is
# faster (measured: J = L = 8, paper layout, 0.83 s CPU sparse against 1.60 s dense).
AUTO_DENSE_MAX_ENTRIES = 100_000


def sparse_nnz(cfg) -> int:
    """Nonzeros the builder stores: the diagonal of every layer plus its (star, x) code block."""
    layout = cfg.resolved_layout
    per_layer_codes = 2 if layout in ("paper", "truncated") else cfg.cells_x * cfg.cells_star
    return cfg.N * (cfg.D + per_layer_codes)


def estimate_bytes(cfg, engine: str) -> int:
    """Bytes a run of ``cfg`` keeps alive at its peak on ``engine`` ("dense" or "sparse")."""
    N, D = cfg.N, cfg.D
    K = max(cfg.K, 1)
    per_step = 8 * N * D * (4 * K + 36)  # see the sparse model below
    if engine == "dense":
        return DENSE_STACKS_ALIVE * N * D * D * 8 + per_step
    if engine != "sparse":
        raise ValueError(f"unknown engine {engine!r}")
    nnz = sparse_nnz(cfg)
    dm = cfg.m * cfg.signs * cfg.dy
    cells = cfg.cells_x * cfg.cells_star
    weights = 20 * nnz + 8 * (N + 1)
    chosen = 8 * (3 * N * dm + 3 * N * cells)  # A, A / r^i, G, and the claims' stacked copies
    # per step: the factors and the K passes at x (4K N x D arrays), and about 36 more N x D arrays alive
    # at the peak: the passes after the step, the claims' formula sides and magnitude bounds, and a
    # finding's second construction with its own step. Calibrated on the paper layout (measured peak
    # RSS: 0.99 GiB at J = L = 32, 10.1 GiB at J = L = 64 with --samples 4; this model gives 0.8 and 12.8).
    # Re-measured with the samples' steps in groups (engine/batch.py, 5 N x D arrays per sample, one
    # sample per group from J = L = 32 on): 0.88 GiB at J = L = 32, 12.5 GiB at J = L = 64 with
    # --samples 4 (the reference telescoping products, about 1.9 GB there, now live through the
    # findings too); the model (0.76 and 11.9 GiB) is kept: within 15 %.
    # Groups of G > 1 samples (batch.group_size: 7 at J = L = 16, 4 at J = L = 32, 1 from 64 on) keep
    # the pass arrays of G - 1 more samples and grad-rank-one's two group sweeps (7 N x D arrays per
    # extra sample): measured 1.10 GiB at J = L = 32 (groups of 4), this model 1.10 GiB.
    return int(weights + chosen + per_step_bytes(cfg))


# lone steps alive at once next to the samples' group (a K-shot task's step, findings comparing steps)
LONE_STEPS_ALIVE = 3
# N x D arrays' worth of memory alive besides the group's and the lone steps' while the passes are
# stored: the claims' magnitude passes computed whole (Context.abs_pass), their sweeps' transients, and
# what the terms above leave out (the reference telescoping products B_i, |B_i|, v-decodes' tables).
# Calibrated on measured peaks (docs/benchmarks.md, 2026-12-02, --samples 4): J = L = 64 full CLI run
# 7.7 GiB (lone steps checkpointed; this model 7.9 GiB), J = L = 48 4.0 GiB (the K-shot findings' stored
# lone steps; model 4.8 GiB), J = L = 32 1.1 GiB (model 1.3 GiB).
STORED_REST_ARRAYS = 16


def per_step_bytes(cfg) -> int:
    """The per-step part of the sparse estimate: what the passes allocate in the mode engine/batch.py
    chooses. The samples' group: stored, 7 N x D arrays per sample (5 of the passes, grad-rank-one's
    two formula sweeps); checkpointed, ``checkpoint_bytes`` per sample. LONE_STEPS_ALIVE lone steps:
    stored, 4K + 6 N x D arrays each (the K passes and factors, the errors, the pass at x* after the
    step and the two passes computed on first use); checkpointed (from a lower size:
    ``LONE_CHECKPOINT_ABOVE_BYTES``), ``lone_step_bytes``. Compared with tracemalloc in
    tests/test_checkpoint.py; the measured peaks are in docs/benchmarks.md."""
    from .batch import PER_SAMPLE_ARRAYS, checkpoint_bytes, checkpointed, lone_step_bytes, plan
    from .checkpoint import segment_length

    N, D = cfg.N, cfg.D
    K = max(cfg.K, 1)
    nd = 8 * N * D
    G, seg = plan(N, D, 1 << 30, reuse=True)
    group = G * checkpoint_bytes(N, D, seg) if seg < N else nd * (PER_SAMPLE_ARRAYS + 2) * G
    lone_one = (lone_step_bytes(N, D, segment_length(N), K) if checkpointed(N, D, K, lone=True)
                else nd * (4 * K + 6))
    rest = 0 if seg < N else nd * STORED_REST_ARRAYS
    return int(group + LONE_STEPS_ALIVE * lone_one + rest)


def resolve(cfg, engine: str | None = None) -> str:
    """The engine a run uses: the requested one, or for "auto" dense while its stack is small."""
    engine = engine or getattr(cfg, "engine", "auto")
    if engine != "auto":
        return engine
    return "dense" if cfg.N * cfg.D * cfg.D <= AUTO_DENSE_MAX_ENTRIES else "sparse"
