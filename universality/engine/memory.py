"""The engine's memory model: what a numeric run keeps alive at once, per backend.

* dense: the weights, their absolute values and one more N x D x D float64 stack (the updated
  weights a report pictures, or a mutant's copy): three stacks. Gradients are kept as factors on both
  engines, so the first version's six stacks (with the gradients and |W'|) are no longer alive; the
  per-step arrays are those of the sparse model.
* sparse: the layer store and the other terms that are not passes (:func:`weights_bytes`,
  :func:`non_pass_bytes`: builder tables, telescoping products, decoder gains, the codes-injective
  search), and per step what the passes allocate (:func:`per_step_bytes`); above engine/batch.py's checkpointing
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
    per_step = 8 * N * D * (4 * K + 36)  # dense: the stored passes (4K passes and factors, ~36 more N x D)
    if engine == "dense":
        return DENSE_STACKS_ALIVE * N * D * D * 8 + per_step
    if engine != "sparse":
        raise ValueError(f"unknown engine {engine!r}")
    # the weights and the other terms that are not passes (:func:`non_pass_bytes`), and the passes in
    # the mode engine/batch.py chooses (:func:`per_step_bytes`); the calibration against measured peaks
    # is in docs/benchmarks.md
    parts = non_pass_bytes(cfg)
    weights = parts["weights"]
    chosen = sum(v for k, v in parts.items() if k != "weights")  # tables, telescoping, decoder, coverage
    return int(weights + chosen + per_step_bytes(cfg))


# ---- the terms that are not passes (tables helper, issue 10) -----------------------------------------
# Every formula below is what the code allocates (see the docstrings of the named structures);
# calibrated on the paper layout with the shared-row store and the streamed products forced on at
# J = L = 16, 32, 48 (tests/test_streamed.py checks the model against a measured run).
STORED_ROW_BYTES = 24  # a stored row of the shared-row store: ~1.5 entries (12 B each) + its row number
CHAIN_DIFF_BYTES = 400  # one stored difference of a telescoping Chain: a few entries, two arrays and a tuple
TOP_BLOCK_OVERHEAD = 500  # a streamed top block's Python objects (three arrays)
STORED_LAYER_OVERHEAD = 600  # a layer's Python objects in the shared-row store (tuple, row list, 3 array views)


def weights_bytes(cfg) -> int:
    """The sparse layer store (engine/layers.py): plain CSR per layer (values, int32 indices, row
    pointers, |W|'s cached values) while that is at most SHARE_ROWS_ABOVE_BYTES; above, the shared-row
    store: the reference matrix (and |R|), one layer stored whole (the first, whose Wbar differs
    everywhere), and per layer the rows that differ from the reference: the code rows and the rows of
    the two channels the layer switches (4 s dy + 2 in the builder's layouts)."""
    from .layers import SHARE_ROWS_ABOVE_BYTES, csr_bytes

    N, D = cfg.N, cfg.D
    plain = csr_bytes(N, D, sparse_nnz(cfg))
    if plain <= SHARE_ROWS_ABOVE_BYTES:
        return plain
    rows = 4 * cfg.signs * cfg.dy + 2
    per_layer_codes = 2 if cfg.resolved_layout in ("paper", "truncated") else cfg.cells_x * cfg.cells_star
    return 3 * 20 * (D + 1) + N * (STORED_ROW_BYTES * rows + 12 * per_layer_codes + STORED_LAYER_OVERHEAD)


def non_pass_bytes(cfg) -> dict:
    """What a sparse run holds besides its passes (bytes per named term): the weights, the builder's
    code table (held as one array only up to STREAM_TABLES_ABOVE entries; the per-layer diagonals are
    computed when read; the build's chunk, one tall CSR of about 2 M entries, is freed before the
    steps and stays below their peak), the reference
    telescoping products (lists while small, difference chains and a sparse kernel table above
    STREAM_ABOVE_BYTES), v-decodes' cell gains (cells x m, and the decoder's unit rows) and the
    codes-injective search (within its budget, else SKIPPED)."""
    from ..claims.coverage import CODES_INJECTIVE_MAX_BYTES, codes_injective_bytes
    from ..construction.network import STREAM_TABLES_ABOVE
    from ..reference.telescoping import STREAM_ABOVE_BYTES, Chain

    N, D = cfg.N, cfg.D
    dm = cfg.m * cfg.signs * cfg.dy
    dt = cfg.cells_x + cfg.cells_star
    cells = cfg.cells_x * cfg.cells_star
    out = {"weights": weights_bytes(cfg)}
    out["builder_tables"] = 8 * cfg.m * cells if cfg.m * cells <= STREAM_TABLES_ABOVE else 8 * cells
    if 16 * N * (dm + dt * dt) > STREAM_ABOVE_BYTES:
        checkpoints = -(-N // Chain.CHECKPOINT)
        # six chains (A, |A|, B, |B|, K, |K|): a whole product every CHECKPOINT, and per product its
        # differences (a few entries: CHAIN_DIFF_BYTES with the arrays' objects); the top blocks' CSR
        # arrays for the kernels' recursion
        out["telescoping"] = (2 * 8 * (dm + dt * dt + cells) * (checkpoints + 1) + 6 * N * CHAIN_DIFF_BYTES
                              + N * (16 * dt + 16 + TOP_BLOCK_OVERHEAD))
    else:
        out["telescoping"] = 16 * N * (dm + dt * dt) + 16 * N * cells
    from ..decode import UNIT_ROWS_HELD_MAX

    gains = 8 * cells * cfg.m  # v-decodes' cell gains (cells x m), and the decoder's unit rows while small
    out["decoder_gains"] = 2 * gains if gains <= UNIT_ROWS_HELD_MAX else gains + 8 * 4096 * cfg.m
    terms = N if cfg.resolved_layout in ("paper", "truncated") else cfg.m
    ci = codes_injective_bytes(cells, dm, terms)
    out["codes_injective"] = ci if ci <= CODES_INJECTIVE_MAX_BYTES else 0
    return out


# lone steps alive at once next to the samples' group (a K-shot task's step, a finding comparing two steps)
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


# ---- the findings (findings helper, issue 10) ---------------------------------------------------------
# The findings run after the claims, one at a time, on the run's weights (claims/findings.py,
# claims/kshot.py); each releases its steps once it has read what it reports. The largest holds two
# K-shot steps of FINDING_K examples at once (kshot-coincident-bins compares two tasks' updated
# networks) and then traverses their gradient factors segment by segment; kshot-mixed-signs holds one
# step and a linear pass through its updated layers.
FINDING_K = 2
FINDING_STEPS_ALIVE = 2
# stored (not checkpointed) lone steps: N x D arrays per K-shot step a finding keeps (K passes at x,
# pre and post each; the factors D, H: 2 per example; the pass at x* after the step: 2)
FINDING_STORED_STEP_ARRAYS = 4 * FINDING_K + 2
# ... and about six more while the second step is built next to the first (its backprop's error stack
# before it is copied into the factors, the reductions' temporaries): measured with tracemalloc at
# J = L = 16 and 24, 24 and 23 N x D arrays in all against this model's 26 (tests/test_findings_memory.py)
FINDING_STORED_EXTRA_ARRAYS = 6


def findings_step_bytes(cfg) -> int:
    """What the findings' own steps hold at their peak, besides the run's weights and the terms of
    :func:`non_pass_bytes` (which the findings share: the telescoping products kshot_formula reads):
    FINDING_STEPS_ALIVE K-shot steps of FINDING_K examples, checkpointed above engine/batch.py's lone
    threshold (``lone_step_bytes`` each, which also counts two passes the findings never ask for: the
    margin), else stored. Compared with tracemalloc in tests/test_findings_memory.py; the J = L = 64
    and 128 peaks are in docs/benchmarks.md."""
    from .batch import checkpointed, lone_step_bytes
    from .checkpoint import segment_length

    N, D = cfg.N, cfg.D
    nd = 8 * N * D
    if checkpointed(N, D, FINDING_K, lone=True):
        return int(FINDING_STEPS_ALIVE * lone_step_bytes(N, D, segment_length(N), FINDING_K))
    return int(nd * (FINDING_STEPS_ALIVE * FINDING_STORED_STEP_ARRAYS + FINDING_STORED_EXTRA_ARRAYS))


def resolve(cfg, engine: str | None = None) -> str:
    """The engine a run uses: the requested one, or for "auto" dense while its stack is small."""
    engine = engine or getattr(cfg, "engine", "auto")
    if engine != "auto":
        return engine
    return "dense" if cfg.N * cfg.D * cfg.D <= AUTO_DENSE_MAX_ENTRIES else "sparse"
