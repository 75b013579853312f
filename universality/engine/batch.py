"""The samples' steps run together: one sparse (or dense) product per layer for a block of samples.

:func:`single_steps` computes, for a group of G samples at once, what :func:`.step.single_step`
computes for one: the forward pass at x, the real error at z, reverse-mode backprop, the one-shot step
on every parameter (each sample's gradient kept as its own two factors), the passes at x* after the
step, and the passes the claims read on first use (x* before the step, x after it) together with the
absolute-value passes that bound their rounding. Each layer is applied once to a D x G block instead
of G times to a vector: the same arithmetic per column (a CSR mat-mat product computes each column as
the mat-vec would), so every sample's quantities are those of its own single step within rounding.

After the step the G networks differ (sample g's layer is W_i + coef d_i^(g) h_{i+1}^(g)T); a block is
pushed through them all at once as ``W_i X + coef D_i^T * (H_i . X)`` column by column
(:class:`PerColumnUpdates`), still without forming any D x D matrix.

On float64 sparse layers every sweep here (the forward passes, backprop, the passes through the
updated layers, the reductions) runs a segment of layers per call of a compiled kernel
(engine/kernels.py: the same values; bit for bit except where a rank-one correction's sum is
accumulated in order instead of by BLAS), instead of a few NumPy calls per layer; the generic loops
below stay the reference, and run on the dense and exact backends, with ``UNIVERSALITY_KERNELS=0``,
and for layers whose operations were replaced.

The group size is bounded by memory and by cache (:func:`group_size`): each sample keeps 5 N x D float64 arrays
(the pre-activations and outputs at x before the step and at x* after it, the errors at each layer);
of the other passes only their reductions are kept (per unit over the layers, per layer over the
units: all the claims read of them). The groups run one after another and a group's arrays are
released when its steps have been checked.
"""
from __future__ import annotations

import numpy as np

from .heads import head
from .layers import Layers, UpdatedLayers
from .checkpoint import LazyStack, PostStack, Sweep, segment_length
from .step import Pass, Step, _kernel_pass, layers_of  # noqa: E402 (step imports this module lazily)

PER_SAMPLE_ARRAYS = 5  # N x D arrays a sample of a group keeps alive (see the module docstring)
# Small groups: the per-layer call overhead is already shared by a few samples, and fresh pages cost
# (a first touch is a page fault: about 1 GB/s on the project's VM), so a group's arrays are sized to
# be reused by the next group from the allocator's heap (:func:`retain_freed_memory`).
GROUP_BUDGET_BYTES = 384 << 20
HEAP_ARRAY_BYTES = 32 << 20
# ... and narrow groups: a group's per-layer blocks (D x G, and second-order-zero's D x G x 8 probe
# block, the widest) stay in a core's cache when D * G <= BLOCK_COLUMNS (D x G x 8 float64: 256 KiB).
# Measured at J = L = 16 (D = 545): groups of 5-8 samples take about 0.4 s less CPU than one group
# of 23 (the same products, streamed through memory on every layer); below 4 the per-layer call
# overhead wins again (docs/benchmarks.md).
BLOCK_COLUMNS = 4096
# ... but never below MIN_GROUP samples where memory allows: a lone sample's passes are mat-vecs, one
# Python-level call per layer and pass for one column (J = L = 32, D = 2,113: groups of 3 took 16% less
# CPU than samples one by one)
MIN_GROUP = 4
_RETAINED = []


def retain_freed_memory() -> None:
    """Ask glibc to keep freed arrays of up to 32 MiB in the process's heap instead of returning them
    to the OS at once, so the next group's (or sample's) arrays reuse pages already touched instead of
    faulting in fresh ones. Process-wide and harmless elsewhere: a no-op where there is no glibc."""
    if _RETAINED:
        return
    _RETAINED.append(True)
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 256 << 20)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def group_size(N: int, D: int, count: int, budget: int = GROUP_BUDGET_BYTES, reuse: bool = False) -> int:
    """How many samples run together: as many as fit ``budget`` bytes of per-sample arrays; without
    ``reuse``, no array above the allocator's 32 MiB heap limit (a larger one is mapped fresh, page
    by page, for every group; with ``reuse`` the groups share one set of arrays) unless one sample
    alone needs more; and a per-layer block of at most ``BLOCK_COLUMNS`` columns of D
    (cache-resident), or ``MIN_GROUP`` samples where that is fewer; at least 1."""
    per = PER_SAMPLE_ARRAYS * 8 * N * D
    by_heap = count if reuse else HEAP_ARRAY_BYTES // max(8 * N * D, 1)
    by_cache = max(MIN_GROUP, BLOCK_COLUMNS // max(D, 1))
    return int(max(1, min(count, budget // max(per, 1), by_heap, by_cache)))


class PerColumnUpdates:
    """Column g of a block goes through sample g's updated layers W_i + coef D[g, i] H[g, i]^T.

    ``D``: (N, D, G) errors at each layer's output; ``H``: (N, D, G) its inputs (h_{i+1}); both are the
    step's gradient factors (views, nothing copied).

    h^T X reads only the rows where some sample's h_{i+1} is not zero (found from the factor itself,
    once per layer, and kept: nothing is assumed about which units they are; a NaN or inf counts as
    nonzero): the other rows add exact zeros. On the paper layout h_{i+1} has one or two nonzero
    entries of D, so this saves a pass over the D x G block per product."""

    def __init__(self, base: Layers, Dg: np.ndarray, Hg: np.ndarray, coef: float, rows: dict | None = None):
        self.base, self.Dg, self.Hg, self.coef = base, Dg, Hg, float(coef)
        self.N, self.D = base.N, base.D
        self.kind = base.kind
        self._rows = {} if rows is None else rows

    def rows(self, k: int) -> np.ndarray:
        """The units where some column of H[k] is not zero (computed once per layer)."""
        r = self._rows.get(k)
        if r is None:
            r = self._rows[k] = np.flatnonzero(self.Hg[k].any(axis=1))
        return r

    def _t(self, k: int, X: np.ndarray, absolute: bool) -> np.ndarray:
        rows = self.rows(k)
        H = self.Hg[k][rows]
        if absolute:
            H = np.abs(H)
        if X.ndim == 3:
            return np.einsum("dg,dsg->sg", H, X[rows])
        return np.einsum("dg,dg->g", H, X[rows])

    def apply(self, k: int, X: np.ndarray) -> np.ndarray:
        t = self._t(k, X, False)
        out = self.base.apply(k, X)
        if X.shape[1] == 1:
            out += self.coef * (self.Dg[k] * t)
        else:  # D_k diag(coef t): one product per entry (plus exact zeros), as one BLAS product
            out += self.Dg[k] @ np.diag(self.coef * t)
        return out

    def abs_apply(self, k: int, X: np.ndarray) -> np.ndarray:
        """|W_k + coef d h^T| X column by column; X (D, G), or (D, S, G): S blocks, block s's column g
        through sample g's layer (one product for all S blocks)."""
        t = self._t(k, X, True)
        c = abs(self.coef)
        A = np.abs(self.Dg[k])
        if X.ndim == 3:
            D_, S, G = X.shape
            out = self.base.abs_apply(k, X.reshape(D_, -1)).reshape(X.shape)
            if G == 1:  # one sample: block by block (a D-long inner loop, not a 1-long one)
                for s in range(S):
                    out[:, s, :] += A * (c * t[s])
                return out
            # |D_k| blockdiag: entry (d, s, g) = |D_k[d, g]| c t[s, g], one BLAS product (about 6x faster
            # than broadcasting over the short last axis at D = 2,113, G = 4)
            M = np.zeros((G, S, G))
            idx = np.arange(G)
            M[idx, :, idx] = (c * t).T
            out += (A @ M.reshape(G, S * G)).reshape(D_, S, G)
            return out
        out = self.base.abs_apply(k, X)
        if X.shape[1] == 1:
            out += c * (A * t)
        else:
            out += A @ np.diag(c * t)
        return out


# PerColumnUpdates' own operations (the compiled passes compute these; replaced ones run the generic code)
PER_COLUMN_OPS = {name: getattr(PerColumnUpdates, name) for name in ("apply", "abs_apply", "rows", "_t")}


def _pre_extremes(apply, relu, N: int, PHI: np.ndarray, layers=None):
    """A forward pass of the block PHI (D, G) that keeps only, per unit, the largest and smallest
    pre-activation over the layers ((D, G) each): what the sign claims read of the passes nobody
    else needs, without holding N x D per sample. ``layers``: the Layers ``apply`` is the product
    of (``relu`` their ReLU): where the compiled kernels run them, the pass is one kernel call."""
    hi = np.full(PHI.shape, -np.inf)
    lo = np.full(PHI.shape, np.inf)
    kp = _kernel_pass(layers) if PHI.ndim == 2 else None
    if kp is not None:
        kp.sweep(0, N, PHI, extremes=(hi, lo))
        return hi, lo
    X = PHI
    for k in range(N - 1, -1, -1):
        Y = apply(k, X)
        np.maximum(hi, Y, out=hi)
        np.minimum(lo, Y, out=lo)
        X = relu(Y)
    return hi, lo


def _post_step_reductions(upd, relu, N: int, PHI: np.ndarray, ABS: np.ndarray):
    """:func:`_pre_extremes` of the block PHI (D, G) and :func:`_abs_extremes`' per-unit maxima of the
    block ABS (D, S, G) through the same layers ``upd``, in one loop over the layers (the same
    products, in the same order, as the two loops would run); through the compiled kernels where
    they run ``upd`` (one call per run of layers the factors are stored in)."""
    if getattr(upd, "kind", None) == "sparse" and PHI.ndim == 2 and ABS.ndim == 3:
        from . import kernels

        got = kernels.post_step_reductions(upd, N, PHI, ABS)
        if got is not None:
            return got
    hi = np.full(PHI.shape, -np.inf)
    lo = np.full(PHI.shape, np.inf)
    X = PHI
    A = np.abs(ABS)
    colmax = np.zeros(ABS.shape)
    for k in range(N - 1, -1, -1):
        Y = upd.apply(k, X)
        np.maximum(hi, Y, out=hi)
        np.minimum(lo, Y, out=lo)
        X = relu(Y)
        A = upd.abs_apply(k, A)
        np.maximum(colmax, A, out=colmax)
    return (hi, lo), colmax


def unit_max(X: np.ndarray) -> np.ndarray:
    """max over the units (axis 0) of a block X (D, ...) of non-negative values, 0 when D = 0: the
    transposed copy makes each column's maximum a contiguous reduction (NumPy's axis-0 maximum of a
    (D, G) block with a few columns runs an inner loop of G elements per unit, about 8x slower at
    D = 2,113, G = 4). The maximum is exact, so the value is the same."""
    D = X.shape[0]
    if D == 0:
        return np.zeros(X.shape[1:])
    return np.ascontiguousarray(X.reshape(D, -1).T).max(axis=1).reshape(X.shape[1:])


def _abs_extremes(abs_apply, N: int, PHI: np.ndarray, rows: bool = True, layers=None):
    """The magnitude pass |W_k| ... |W_N| |phi| of the block PHI (D, G) (or (D, S, G)), kept as its
    reductions: per unit the largest value over the layers (colmax, PHI's shape) and per layer the
    largest over the units (rowmax (N, G) or (N, S, G); None without ``rows``); that is all the
    claims' rounding bounds read of it. ``layers``: the Layers ``abs_apply`` belongs to: where the
    compiled kernels run them, the pass is one kernel call (the same values)."""
    X = np.abs(PHI)
    colmax = np.zeros(PHI.shape)
    rowmax = np.empty((N,) + PHI.shape[1:]) if rows else None
    kp = _kernel_pass(layers)
    if kp is not None:
        D = PHI.shape[0]
        cm = colmax.reshape(D, -1)
        rm = rowmax.reshape(N, -1) if rows else np.empty((N, cm.shape[1]))
        kp.sweep(0, N, X.reshape(D, -1), absolute=True, use_relu=False, reduce=(cm, rm))
        return colmax, rowmax
    for k in range(N - 1, -1, -1):
        X = abs_apply(k, X)
        np.maximum(colmax, X, out=colmax)
        if rows:
            rowmax[k] = unit_max(X)
    return colmax, rowmax


# Checkpointing (engine/checkpoint.py): while one group's pass arrays (PER_SAMPLE_ARRAYS N x D float64
# per sample) fit CHECKPOINT_ABOVE_BYTES they are stored whole (one segment); above it each pass keeps
# a state every ~sqrt(N) layers and recomputes a segment when a layer of it is read. J = L = 64: 1.4 GB
# per sample, stored; J = L = 128: 21.6 GB per sample, checkpointed (about 0.4 GB per sample).
CHECKPOINT_ABOVE_BYTES = 4 << 30
# per-layer arrays a checkpointed sample holds per segment layer: the pass at x (pre-activation and
# input), its errors, the pass at x* after the step (pre-activation and input), and grad-rank-one's two
# formula sweeps; and the checkpointed sweeps (one D-vector per segment each): the four passes and
# grad-rank-one's two
SEGMENT_ARRAYS = 7
CHECKPOINTED_SWEEPS = 6


# Lone steps (step.maml_step: K-shot tasks and the findings' own steps, which keep several steps
# alive at once and allocate theirs fresh) checkpoint from a lower size: one step's stored arrays
# (about PER_SAMPLE_ARRAYS N x D per example) above LONE_CHECKPOINT_ABOVE_BYTES. J = L = 64: 1.4 GB per
# example, checkpointed (the K-shot findings had held the run's peak there: docs/benchmarks.md).
LONE_CHECKPOINT_ABOVE_BYTES = 1 << 30


def checkpointed(N: int, D: int, G: int = 1, lone: bool = False) -> bool:
    """Do G samples' steps (``lone``: a lone step of G examples) keep checkpoints instead of their
    whole passes?"""
    limit = min(CHECKPOINT_ABOVE_BYTES, LONE_CHECKPOINT_ABOVE_BYTES) if lone else CHECKPOINT_ABOVE_BYTES
    return PER_SAMPLE_ARRAYS * 8 * N * D * max(G, 1) > limit


# second-order-zero's probe sweep for a group: about this many (D, G, p) blocks alive at once (the probe
# block, the state block [R | acc | acc'] entering a layer and the one leaving it, about 2.25 p columns
# per sample each, and the results), p = 8 probes (6 Gaussian + the sample's two inputs,
# claims/probes.py) above D = 128
PROBE_BLOCK_ARRAYS, PROBES = 8, 8


def checkpoint_bytes(N: int, D: int, seg: int) -> int:
    """Bytes one sample of a checkpointed group holds: ceil(N / seg) states of each checkpointed
    sweep, two sets of ``seg`` layers of each segment array (engine/checkpoint.py alternates two
    buffer sets), and its columns of second-order-zero's probe blocks (D float64 each)."""
    return 8 * D * (CHECKPOINTED_SWEEPS * (-(-N // seg)) + 2 * SEGMENT_ARRAYS * seg + PROBE_BLOCK_ARRAYS * PROBES)


def lone_step_bytes(N: int, D: int, seg: int, K: int = 1) -> int:
    """Bytes a checkpointed lone step (step.maml_step, K examples) holds with the passes a claim may
    ask of it: the K passes at x and their errors (three segment arrays of K columns), the pass at x*
    after the step and the two passes computed on first use (two segment arrays each), two buffer
    sets each, and their checkpoints; and the compiled kernels' contiguous copies of one segment of
    the two factors (engine/kernels.py: a step's factors viewed as a column of a group's sweeps)."""
    return 8 * D * (2 * seg * (3 * K + 6) + (-(-N // seg)) * (2 * K + 3) + 2 * seg * K)


def plan(N: int, D: int, count: int, *, reuse: bool = False, seg: int | None = None):
    """(group size, layers per segment) for ``count`` samples: stored passes (seg = N) while they fit
    CHECKPOINT_ABOVE_BYTES, else checkpoints every ~sqrt(N) layers (``seg`` forces a segment length:
    tests run checkpointed passes at small sizes)."""
    if seg is None and not checkpointed(N, D):
        return group_size(N, D, count, reuse=reuse), N
    seg = segment_length(N, seg)
    per = checkpoint_bytes(N, D, seg)
    by_cache = max(MIN_GROUP, BLOCK_COLUMNS // max(D, 1))
    return int(max(1, min(count, GROUP_BUDGET_BYTES // max(per, 1), by_cache))), seg


def single_steps(con, samples, *, h_post=None, group: int | None = None, reuse: bool = False,
                 seg: int | None = None):
    """The one-shot step of every sample (x, y, x*), run a group of samples at a time; yields one
    :class:`~.step.Step` per sample, in order, each with its passes before and after the step and the
    reductions of the other passes already computed (``Step.pre_extremes``, ``Step.abs_extremes``).

    ``reuse=True``: the next group's arrays overwrite the previous group's (no fresh pages per group:
    above 32 MiB an array is mapped anew, a page fault per 4 KiB). Only for a caller that is done
    with a group's steps, and keeps nothing that views their arrays, before it asks for the next
    step (``verify.check_claims``: a Check keeps copies).

    ``seg``: layers per checkpoint segment (default: :func:`plan`, whole passes while they fit);
    the steps' per-layer arrays are then :class:`~.checkpoint.LazyStack` views recomputed from
    checkpoints, with the same values."""
    retain_freed_memory()
    samples = list(samples)
    layers = layers_of(con)
    N, D = layers.N, layers.D
    G, seg = plan(N, D, len(samples), reuse=reuse, seg=seg)
    G = group or G
    pool: dict = {}
    for s0 in range(0, len(samples), G):
        yield from _group(con, layers, samples[s0:s0 + G], h_post, pool if reuse else None, seg)


def _allocator(pool):
    """np.empty, or with a pool: one flat buffer per call order, handed out again to the next group
    as the first prod(shape) entries (contiguous), so that a smaller last group reuses the pages the
    first group touched instead of faulting in fresh ones (J = L = 32: 23 samples in groups of
    4, 4, 4, 4, 4, 3)."""
    if pool is None:
        return np.empty
    count = [0]

    def alloc(shape):
        key = count[0]
        count[0] += 1
        n = int(np.prod(shape))
        if key not in pool or pool[key].size < n:
            pool[key] = np.empty(n)
        return pool[key][:n].reshape(shape)

    return alloc


def forward_sweep(apply, relu, N: int, seg: int, PHI: np.ndarray, alloc=None, extremes: bool = False,
                  apply_add=None, layers=None, use_relu: bool = True) -> Sweep:
    """The forward pass of the block PHI (D, G) through ``apply(k, X)`` as a :class:`Sweep` with
    outputs "pre" (the pre-activation of layer k) and "inp" (its input h_{k+1}, stored one row down
    so that a segment's rows are the pass's outputs post[k0 .. k1]); ``final`` is z. ``extremes``:
    also keep, per unit, the largest and smallest pre-activation over the layers (``sw.extremes``;
    max and min are idempotent, so a recomputed segment leaves them as they are). ``apply_add(k, X,
    out)`` (out += W_k X, optional): the stored pre-activation is then accumulated in place from
    zero, the same sums as ``apply`` (a sparse product starts from zero too), without a copy.
    ``layers``: the Layers ``apply`` is the product of (``use_relu``: ``relu`` is its ReLU, else the
    identity); where the compiled kernels apply to them (engine/kernels.py) a segment runs in one
    call."""
    shape = PHI.shape
    hi = np.full(shape, -np.inf) if extremes else None
    lo = np.full(shape, np.inf) if extremes else None

    def step(k, X, out):
        if out is None:
            Y = apply(k, X)
        else:
            pre, inp = out
            inp[...] = X
            Y = pre
            if apply_add is not None and pre.flags.c_contiguous:
                pre.fill(0.0)
                apply_add(k, X, pre)
            else:
                pre[...] = apply(k, X)
        if extremes:
            np.maximum(hi, Y, out=hi)
            np.minimum(lo, Y, out=lo)
        return relu(Y)

    segment = None
    if layers is not None and PHI.ndim == 2 and layers.kind == "sparse":  # the compiled kernels, where
        from . import kernels  # they apply (the same values)

        segment = kernels.sweep_segment(layers, use_relu, (hi, lo) if extremes else None)
    sw = Sweep(N, seg, step, ("pre", "inp"), (shape, shape), upward=True, alloc=alloc, offsets=(0, 1),
               segment=segment)
    sw.extremes = (hi, lo)
    sw.run(PHI)
    return sw


def backward_sweep(layers, pre: LazyStack, r: float, N: int, seg: int, E: np.ndarray, alloc=None) -> Sweep:
    """Reverse mode from the errors at z E (D, G) through the forward pass whose pre-activations are
    ``pre``: output "d" (the error at layer k's pre-activation: its gradient is d h_{k+1}^T);
    ``final`` is dl/dphi. Where the compiled kernels run ``layers`` a segment is one kernel call
    (the same values)."""

    def step(k, Gr, out):
        d = layers.relu_grad_mul(pre[k], Gr, r)
        if out is not None:
            out[0][...] = d
        return layers.apply_T(k, d)

    segment = None
    if layers.kind == "sparse" and E.ndim == 2:
        from . import kernels

        segment = kernels.backward_segment(layers, pre, r)
    sw = Sweep(N, seg, step, ("d",), (E.shape,), upward=False, alloc=alloc, segment=segment)
    sw.run(E)
    return sw


def _group(con, layers, samples, h_post, pool=None, seg=None):
    d, b = con.design, con.blocks
    r = float(d.relu_grad_at_zero)
    alpha = float(d.alpha)
    N, D = layers.N, layers.D
    seg = N if seg is None else seg
    G = len(samples)
    Wg, theta_b = con.Wg, float(con.theta_b)
    loss = con.loss
    relu = layers.relu
    # the passes at x before the step
    PHI = np.column_stack([layers.asarray(con.phi(s.x, theta_b)) for s in samples])
    alloc = _allocator(pool)
    # (sparse: the product accumulates into the stored row from zero, exactly as apply computes it)
    fx = forward_sweep(layers.apply, relu, N, seg, PHI, alloc, extremes=seg < N,
                       apply_add=layers.apply_add if layers.kind == "sparse" else None, layers=layers)
    stored = fx.stored  # one segment: the plain (N, D, G) arrays, as without checkpointing
    pre, post = (fx.array("pre"), fx.array("inp")) if stored else (fx.stack("pre"), PostStack(fx, 1))
    inp = post[1:] if stored else fx.stack("inp")
    Z = fx.final
    ys, outs, errors, gWgs = [], [], [], []
    E = np.zeros((D, G))
    for g, s in enumerate(samples):
        y = np.asarray(s.y, dtype=float).reshape(-1)
        z = Z[:, g]
        out = head(z, Wg, b.mid, h_post)
        if out.branch == "g_pre":
            gy = np.asarray(loss.grad(y, out.yhat), dtype=float)
            E[:, g] = Wg.T @ gy
            gWgs.append(np.outer(gy, z))
        else:  # the gate is already open before the step: no error reaches z (see step.maml_step)
            gWgs.append(np.zeros_like(Wg, dtype=float))
        ys.append(y)
        outs.append(out)
        errors.append(E[:, g].copy())
    # reverse mode, all samples at once
    bx = backward_sweep(layers, pre, r, N, seg, E, alloc)
    dfac = bx.array("d") if stored else bx.stack("d")
    gphi = bx.final  # (D, G): dl/dphi per sample
    hfac = inp  # the inputs of each layer: the gradient's second factor
    coef = -alpha
    theta_post = [theta_b - alpha * float(gphi[b.bottom, g]) for g in range(G)]
    h_rows: dict = {}
    upd = PerColumnUpdates(layers, dfac, hfac, coef, h_rows)
    # after the step: x* and x through each sample's own updated layers; x* before it
    PHI_sp = np.column_stack([layers.asarray(con.phi(s.x_star, theta_post[g])) for g, s in enumerate(samples)])
    PHI_xp = np.column_stack([layers.asarray(con.phi(s.x, theta_post[g])) for g, s in enumerate(samples)])
    PHI_s0 = np.column_stack([layers.asarray(con.phi(s.x_star, theta_b)) for s in samples])
    fsp = forward_sweep(upd.apply, relu, N, seg, PHI_sp, alloc, extremes=seg < N, layers=upd)
    pre_sp, post_sp = (fsp.array("pre"), fsp.array("inp")) if stored else (fsp.stack("pre"), PostStack(fsp, 1))
    # the other passes through the updated layers, kept as their reductions, in one loop over the
    # layers (checkpointed, each segment of the factors is then recomputed once for all of them): the
    # pass at x after the step (its pre-activations' extremes) and the magnitude passes at x* and x
    # after the step, one (D, 2, G) block (only their per-unit maxima: no claim reads these passes'
    # per-layer maxima; Context.abs_extremes reduces the pass again if one asks)
    ext_xp, cm = _post_step_reductions(upd, relu, N, PHI_xp, np.stack([PHI_sp, PHI_xp], axis=1))
    abs_sp, abs_xp = (cm[:, 0], None), (cm[:, 1], None)
    ext_s0 = _pre_extremes(layers.apply, relu, N, PHI_s0, layers=layers)
    # the magnitude pass at x the claims bound their rounding with (its reductions)
    abs_x = _abs_extremes(layers.abs_apply, N, PHI, layers=layers)
    grp = StepGroup(layers, dfac, hfac, coef)
    grp.h_rows = h_rows
    grp.seg, grp.sweeps = seg, (fx, bx, fsp)
    grp.pre_x, grp.errors = pre, E  # the passes at x before the step and the errors at z, (N, D, G), (D, G)
    for g, s in enumerate(samples):
        W_post = UpdatedLayers(layers, dfac[:, :, g:g + 1], hfac[:, :, g:g + 1], coef)
        Wg_post = Wg - alpha * gWgs[g]
        fwd_x = Pass(phi=PHI[:, g], pre=pre[:, :, g], post=post[:, :, g])
        fwd_sp = Pass(phi=PHI_sp[:, g], pre=pre_sp[:, :, g], post=post_sp[:, :, g])
        out_sp = head(fwd_sp.z, Wg_post, b.mid, h_post)
        st = Step(con=con, xs=[s.x], ys=[ys[g]], x_star=s.x_star, alpha=alpha, r=r, passes=[fwd_x],
                  outs=[outs[g]], errors=[errors[g]], g_feature=gphi[:, g].copy(),
                  g_theta_b=float(gphi[b.bottom, g]), g_Wg=gWgs[g], g_theta_h=0.0, W_post=W_post,
                  theta_b_post=theta_post[g], Wg_post=Wg_post, phi_star_post=fwd_sp.phi,
                  fwd_star_post=fwd_sp, out_star_post=out_sp)
        # the inputs of the passes a lone Step computes on first use (the passes themselves are then
        # computed only if something asks: the claims read their extremes below)
        phi_xp = PHI_xp[:, g]
        st.__dict__["phi_star_pre"] = PHI_s0[:, g]
        st.__dict__["phi_x_post"] = phi_xp
        st.pre_extremes = {"x*, before": (ext_s0[0][:, g], ext_s0[1][:, g]),
                           "x, after": (ext_xp[0][:, g], ext_xp[1][:, g])}
        if not stored:  # checkpointed: the stored passes' extremes too (reduced during their sweeps)
            st.pre_extremes["x, before"] = (fx.extremes[0][:, g], fx.extremes[1][:, g])
            st.pre_extremes["x*, after"] = (fsp.extremes[0][:, g], fsp.extremes[1][:, g])
        st.abs_extremes = [(layers, fwd_x.phi, (abs_x[0][:, g], abs_x[1][:, g])),
                           (W_post, fwd_sp.phi, (abs_sp[0][:, g], None)),
                           (W_post, phi_xp, (abs_xp[0][:, g], None))]
        st.group, st.group_index = grp, g
        grp.steps.append(st)
    yield from grp.steps
    grp.release()


class StepGroup:
    """The samples' steps of one group, with their gradient factors side by side, so that a claim can
    compute a quantity for the whole group in one sweep (one product per layer) the first time one
    of its samples asks (:meth:`cached`).

    ``dfac``, ``hfac``: (N, D, G), sample g's gradient of layer k is coef^-1 (W_k' - W_k) =
    dfac[k, :, g] hfac[k, :, g]^T; ``coef`` = -alpha."""

    def __init__(self, layers: Layers, dfac: np.ndarray, hfac: np.ndarray, coef: float):
        self.layers, self.dfac, self.hfac, self.coef = layers, dfac, hfac, float(coef)
        self.steps: list = []
        self._cache: dict = {}
        self.seg = layers.N  # layers per checkpoint segment (N: the passes are stored whole)
        self.sweeps: tuple = ()
        self.h_rows: dict = {}  # layer -> the units where some sample's hfac[k] is nonzero

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def updates(self) -> PerColumnUpdates:
        return PerColumnUpdates(self.layers, self.dfac, self.hfac, self.coef, self.h_rows)

    def release(self) -> None:
        """Drop the group's references to its steps and results (called once all were checked), so
        that no reference cycle keeps a group's arrays alive until the garbage collector runs."""
        self.steps = []
        self._cache = {}
        self.sweeps = ()
        self.h_rows = {}

    def cached(self, key, make):
        """``make(group)``, computed once per group (a list or array indexed by the sample's position)."""
        if key not in self._cache:
            self._cache[key] = make(self)
        return self._cache[key]
