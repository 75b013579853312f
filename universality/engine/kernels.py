"""Compiled per-layer kernels for the sparse float64 backend (Numba).

The paper layout is deep and thin: at J = L = 32 each of the N = 1,026 layers has about 2,100
nonzeros, one per row, so a pass spends its time in the Python and NumPy call overhead of each layer
(about ten calls of a few microseconds per layer per pass), not in arithmetic. The kernels here run a
whole *segment* of layers (a checkpoint segment, or the whole pass) in one compiled call: the product,
the ReLU, the per-unit extremes and the copies into the stored per-layer arrays, in one traversal of
the block per layer. A forward pass at J = L = 32 (four samples) takes 38 ms instead of 400 ms; at
J = L = 64, 0.54 s instead of 6.3 s.

What the kernels read is :class:`FlatLayers`: every layer of a :class:`~.layers.SparseLayers` as flat
arrays (nothing assumed about which entries are nonzero: a corrupted entry anywhere is stored and
executed like any other). The generic engine code (written once against the layer algebra, and the
only code the dense and exact backends run) stays the reference: each kernel computes what the
generic code computes, and ``tests/test_kernels.py`` compares them on random sizes, layouts, stores
and corruptions. The base products are the same operations in the same order as SciPy's CSR kernels
(the values are equal bit for bit); the kernels never reassociate a sum (no ``fastmath``).

Numba compiles each kernel once per machine and caches the machine code (``cache=True``: in the
package's ``__pycache__``, or Numba's user cache where that is not writable), so a run loads it in
milliseconds. Without Numba, or with ``UNIVERSALITY_KERNELS=0`` in the environment, :func:`enabled`
is False and the generic code runs (the same values within rounding; slower).

Flat form of layer k (``FlatLayers``):

* ``whole[k]`` = 1: layer k is a CSR matrix of its own: row i's entries are positions
  ``doff[k] + sip[sip0[k] + i] .. doff[k] + sip[sip0[k] + i + 1]`` of ``six`` (columns) and ``sdat``
  (values);
* ``whole[k]`` = 0: layer k is the shared reference matrix (``ref_ip``, ``ref_ix``, ``ref_dat``) with
  its rows ``rows[row0[k] .. row0[k + 1]]`` (sorted) replaced by the stored rows, the s-th of which is
  read as row s of a CSR matrix at ``sip0[k]`` / ``doff[k]`` as above.
"""
from __future__ import annotations

import os

import numpy as np

_NB = None


def _numba():
    """numba, imported on first use (the dense engine never needs it), or False."""
    global _NB
    if _NB is None:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency
            numba = False
        _NB = numba
    return _NB


def enabled() -> bool:
    """Do the sparse float64 sweeps run through the compiled kernels? (numba importable and
    ``UNIVERSALITY_KERNELS`` not set to 0)."""
    if os.environ.get("UNIVERSALITY_KERNELS", "1") == "0":
        return False
    return bool(_numba())


class FlatLayers:
    """The layers of a SparseLayers as the flat arrays the kernels read (see the module docstring)."""

    __slots__ = ("N", "D", "ref_ip", "ref_ix", "ref_dat", "whole", "row0", "rows", "sip0", "sip", "doff",
                 "six", "sdat")

    @property
    def args(self) -> tuple:
        """The arrays, in the order every kernel takes them."""
        return (self.ref_ip, self.ref_ix, self.ref_dat, self.whole, self.row0, self.rows, self.sip0,
                self.sip, self.doff, self.six, self.sdat)

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.args))


def flatten(layers) -> FlatLayers:
    """The flat form of a :class:`~.layers.SparseLayers` (plain or shared-row store). The stored
    matrices' value and column arrays are then re-pointed at views of the flat arrays (the same
    values; the separate arrays are released), so the two forms share their memory."""
    from .layers import _CSR

    N, D = layers.N, layers.D
    f = FlatLayers()
    f.N, f.D = N, D
    if layers._mats is not None:
        entries = [("whole", m) for m in layers._mats]
        ref = None
    else:
        entries = list(layers._store)
        ref = layers._ref
    if ref is None:
        f.ref_ip = np.zeros(D + 1, dtype=np.int32)
        f.ref_ix = np.zeros(0, dtype=np.int32)
        f.ref_dat = np.zeros(0)
    else:
        f.ref_ip = np.ascontiguousarray(ref.indptr, dtype=np.int32)
        f.ref_ix = np.ascontiguousarray(ref.indices, dtype=np.int32)
        f.ref_dat = np.ascontiguousarray(ref.data, dtype=np.float64)
    whole = np.zeros(N, dtype=np.uint8)
    row0 = np.zeros(N + 1, dtype=np.int64)
    sip0 = np.zeros(N + 1, dtype=np.int64)
    doff = np.zeros(N + 1, dtype=np.int64)
    parts = []  # per layer: (S, first, last) the CSR rows and the span of its value arrays they use
    rows_parts = []
    for k, e in enumerate(entries):
        if e[0] == "whole":
            S = e[1]
            whole[k] = 1
            nrows = D
        else:
            rows, S = e[1], e[2]
            rows_parts.append(np.asarray(rows, dtype=np.int32))
            nrows = int(rows.size)
        a, b = int(S.indptr[0]), int(S.indptr[-1])
        parts.append((S, a, b))
        row0[k + 1] = row0[k] + (0 if e[0] == "whole" else nrows)
        sip0[k + 1] = sip0[k] + nrows + 1
        doff[k + 1] = doff[k] + (b - a)
    f.whole, f.row0, f.sip0, f.doff = whole, row0, sip0, doff
    f.rows = np.concatenate(rows_parts) if rows_parts else np.zeros(0, dtype=np.int32)
    total = int(doff[N])
    f.six = np.empty(total, dtype=np.int32)
    f.sdat = np.empty(total, dtype=np.float64)
    f.sip = np.empty(int(sip0[N]), dtype=np.int32)
    for k, (S, a, b) in enumerate(parts):
        d0, d1 = int(doff[k]), int(doff[k + 1])
        f.six[d0:d1] = S.indices[a:b]
        f.sdat[d0:d1] = S.data[a:b]
        f.sip[int(sip0[k]):int(sip0[k + 1])] = np.asarray(S.indptr) - a
    # share the memory: each stored matrix now views the flat arrays
    for k, (S, a, b) in enumerate(parts):
        d0, d1 = int(doff[k]), int(doff[k + 1])
        view = _CSR(f.sdat[d0:d1], f.six[d0:d1], f.sip[int(sip0[k]):int(sip0[k + 1])], S.shape)
        if layers._mats is not None:
            layers._mats[k] = view
        else:
            e = layers._store[k]
            layers._store[k] = ("whole", view) if e[0] == "whole" else ("rows", e[1], view)
    if layers._mats is not None and layers._abs is not None:
        layers._abs = None  # |W|'s cached values are recomputed from the (equal) views on first use
    return f


# ---- the kernels ----------------------------------------------------------------------------------
# Each is compiled on first use (and cached on disk); _K holds the compiled dispatchers.
_K: dict = {}
# The products as module globals, for kernels to call: Numba's cache keys a kernel by its closure
# variables' pickled bytes, and a compiled dispatcher captured in a closure pickles differently in
# every process, so a kernel calling ``layer_apply`` through its define function's local name missed
# the cache and was compiled again (about 1 s) in every run. A global is resolved at compile time
# and keeps the cache valid (call ``_layer_apply(...)`` / ``_layer_apply_T(...)`` from any section).
_layer_apply = None
_layer_apply_T = None


def _define():
    global _layer_apply, _layer_apply_T
    nb = _numba()
    njit = nb.njit(cache=True, nogil=True)

    @njit
    def layer_apply(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                    k, X, Y, absolute, accumulate):
        """Y = W_k X (``accumulate``: Y += W_k X, each row's sum starting from Y's value); |W_k| when
        ``absolute``. X, Y: (D, G) C-contiguous. Row by row, entry by entry, as SciPy's csr_matvecs."""
        D, G = Y.shape
        s0 = sip0[k]
        d0 = doff[k]
        if whole[k]:
            for i in range(D):
                if not accumulate:
                    for g in range(G):
                        Y[i, g] = 0.0
                for p in range(d0 + sip[s0 + i], d0 + sip[s0 + i + 1]):
                    a = sdat[p]
                    if absolute:
                        a = abs(a)
                    j = six[p]
                    for g in range(G):
                        Y[i, g] += a * X[j, g]
            return
        r = row0[k]
        r1 = row0[k + 1]
        nxt = rows[r] if r < r1 else D
        s = 0
        for i in range(D):
            if not accumulate:
                for g in range(G):
                    Y[i, g] = 0.0
            if i == nxt:
                for p in range(d0 + sip[s0 + s], d0 + sip[s0 + s + 1]):
                    a = sdat[p]
                    if absolute:
                        a = abs(a)
                    j = six[p]
                    for g in range(G):
                        Y[i, g] += a * X[j, g]
                s += 1
                r += 1
                nxt = rows[r] if r < r1 else D
            else:
                for p in range(ref_ip[i], ref_ip[i + 1]):
                    a = ref_dat[p]
                    if absolute:
                        a = abs(a)
                    j = ref_ix[p]
                    for g in range(G):
                        Y[i, g] += a * X[j, g]

    @njit
    def layer_apply_T(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                      k, X, Y, absolute):
        """Y = W_k^T X (|W_k|^T when ``absolute``), Y zeroed first. The terms are added in the
        order of the generic product (layers.SparseLayers): the reference's rows (a stored row's
        input taken as 0 there), then the stored rows."""
        D, G = Y.shape
        for i in range(D):
            for g in range(G):
                Y[i, g] = 0.0
        s0 = sip0[k]
        d0 = doff[k]
        if whole[k]:
            for i in range(D):
                for p in range(d0 + sip[s0 + i], d0 + sip[s0 + i + 1]):
                    a = sdat[p]
                    if absolute:
                        a = abs(a)
                    j = six[p]
                    for g in range(G):
                        Y[j, g] += a * X[i, g]
            return
        r = row0[k]
        r1 = row0[k + 1]
        nxt = rows[r] if r < r1 else D
        for i in range(D):
            stored = i == nxt
            if stored:
                r += 1
                nxt = rows[r] if r < r1 else D
            for p in range(ref_ip[i], ref_ip[i + 1]):
                a = ref_dat[p]
                if absolute:
                    a = abs(a)
                j = ref_ix[p]
                if stored:
                    for g in range(G):
                        Y[j, g] += a * 0.0
                else:
                    for g in range(G):
                        Y[j, g] += a * X[i, g]
        for s in range(row0[k + 1] - row0[k]):
            i = rows[row0[k] + s]
            for p in range(d0 + sip[s0 + s], d0 + sip[s0 + s + 1]):
                a = sdat[p]
                if absolute:
                    a = abs(a)
                j = six[p]
                for g in range(G):
                    Y[j, g] += a * X[i, g]

    _layer_apply, _layer_apply_T = layer_apply, layer_apply_T

    @njit
    def forward_segment(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                        k_hi, k_lo, X, pre, inp, keep, use_relu, extremes, hi, lo):
        """The forward pass through layers k_hi, k_hi - 1, .., k_lo of the block X (D, G) (not
        modified): per layer the pre-activation Y = W_k X, stored in pre[k - k_lo] and its input in
        inp[k - k_lo] when ``keep``; per unit the largest and smallest pre-activation folded into
        hi and lo when ``extremes``; the next input ReLU(Y) (``use_relu``) or Y. Returns the state
        leaving layer k_lo (a new array)."""
        D, G = X.shape
        cur = X.copy()
        Y = np.empty((D, G))
        for k in range(k_hi, k_lo - 1, -1):
            _layer_apply(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                         k, cur, Y, False, False)
            n = k - k_lo
            for i in range(D):
                for g in range(G):
                    v = Y[i, g]
                    if keep:
                        pre[n, i, g] = v
                        inp[n, i, g] = cur[i, g]
                    if extremes:  # np.maximum / np.minimum: NaN propagates, a tie takes v
                        h = hi[i, g]
                        if h == h and (v != v or not h > v):
                            hi[i, g] = v
                        m = lo[i, g]
                        if m == m and (v != v or not m < v):
                            lo[i, g] = v
                    if use_relu:  # np.maximum(v, 0.0): NaN stays NaN, -0.0 gives +0.0
                        cur[i, g] = v if (v > 0.0 or v != v) else 0.0
                    else:
                        cur[i, g] = v
        return cur

    _K.update(layer_apply=layer_apply, layer_apply_T=layer_apply_T, forward_segment=forward_segment)


# Each section of kernels is one function that defines them (after the products above, which it may
# call as the module globals ``_layer_apply`` / ``_layer_apply_T``, or through other globals it sets
# the same way: never a dispatcher captured in a closure, which defeats Numba's on-disk cache) and
# adds them to _K. All kernels live in this one file: Numba's cache is keyed by the file, so a kernel
# calling another is never run from a stale cache after an edit.
_DEFINES = [_define]


def kernel(name: str):
    """The compiled kernel ``name`` (compiled, or loaded from Numba's cache, on first use)."""
    if not _K:
        for define in _DEFINES:
            define()
    return _K[name]


def flat_of(layers) -> FlatLayers:
    """The FlatLayers of a SparseLayers, built once and kept on it (``set_layer`` drops it)."""
    f = getattr(layers, "_flat", None)
    if f is None:
        f = layers._flat = flatten(layers)
    return f


def apply(layers, k: int, X: np.ndarray, *, transpose: bool = False, absolute: bool = False) -> np.ndarray:
    """W_k X (or W_k^T X, |W_k| X, |W_k|^T X) through the kernels, X (D,) or (D, G): what the layer
    algebra's product computes (tests; the sweeps call the kernels directly)."""
    f = flat_of(layers)
    X = np.asarray(X, dtype=np.float64)
    vec = X.ndim == 1
    X2 = np.ascontiguousarray(X.reshape(X.shape[0], -1))
    Y = np.empty((layers.D, X2.shape[1]))
    if transpose:
        kernel("layer_apply_T")(*f.args, int(k), X2, Y, bool(absolute))
    else:
        kernel("layer_apply")(*f.args, int(k), X2, Y, bool(absolute), False)
    return Y[:, 0] if vec else Y


def usable(layers) -> bool:
    """Do the compiled kernels run the products of ``layers``? (a float64 SparseLayers, kernels enabled)"""
    from .layers import SparseLayers

    return type(layers) is SparseLayers and layers.dtype is np.float64 and enabled()


_DUMMY3 = np.zeros((1, 1, 1))
_DUMMY2 = np.zeros((1, 1))


def forward_segment(layers, use_relu: bool, extremes):
    """A :class:`~.checkpoint.Sweep` ``segment`` callable running batch.forward_sweep's layers in one
    kernel call, or None where the kernels do not apply to ``layers``. ``extremes``: the sweep's
    (hi, lo) arrays, or None."""
    if not usable(layers):
        return None
    f = flat_of(layers)
    run = kernel("forward_segment")
    hi, lo = extremes if extremes is not None else (_DUMMY2, _DUMMY2)

    def segment(k0, k1, X, out):
        X = np.ascontiguousarray(X, dtype=np.float64)
        if out is None:
            pre = inp = _DUMMY3
        else:
            pre, inp = out
        return run(*f.args, k1 - 1, k0, X, pre, inp, out is not None, bool(use_relu), extremes is not None,
                   hi, lo)

    return segment


# ---- kclaims: the claims' per-layer sweeps (claims/one_step.py) ------------------------------------
# Each computes what the generic claim code computes layer by layer with the layer algebra (kept, and
# the only path of the dense and exact backends and of UNIVERSALITY_KERNELS=0): the same layer
# products (layer_apply / layer_apply_T, bit for bit SciPy's), the same elementwise operations; only
# the short dot products h_k^T Y of second-order-zero's rank-one terms may sum in another order than
# BLAS / einsum (tests/test_kernels_claims.py: rtol 1e-12 there, bit for bit elsewhere).

def _define_kclaims():
    nb = _numba()
    njit = nb.njit(cache=True, nogil=True)
    # (the products through the module globals _layer_apply / _layer_apply_T: see _DEFINES)

    @njit
    def so_sweep(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                 k_hi, k_lo, dfac, hfac, cur, out, q, p, coef, absolute):
        """second-order-zero's group sweep (claims/one_step.py, ``_expand_group.sweep``) through layers
        k_hi, k_hi - 1, .., k_lo: dfac, hfac (n, D, G) hold those layers' gradient factors at index
        k - k_lo; ``cur`` (D, width) is the state [R | acc | acc'] entering layer k_hi, R = q shared
        columns then p per sample, acc and acc' w = q + p columns per sample; ``out`` a buffer of
        its shape. Per layer: the units where some sample's h_k is nonzero (NaN counts), t = h_k^T
        [R | acc'] on them, the rank-one terms d_k t written first (|d_k|, |h_k| when ``absolute``)
        and W_k B (|W_k|) accumulated onto them. Layer by layer the state alternates between the two
        arrays: it leaves layer k_lo in ``cur`` after an even number of layers, else in ``out``."""
        D, width = cur.shape
        G = dfac.shape[2]
        w = q + p
        nR = q + G * p
        T2 = np.zeros((2, G, w))
        nzr = np.empty(D, dtype=np.int64)
        dvs = np.empty(G)
        for k in range(k_hi, k_lo - 1, -1):
            n = k - k_lo
            nr = 0
            for i in range(D):
                for g in range(G):
                    if hfac[n, i, g] != 0.0:
                        nzr[nr] = i
                        nr += 1
                        break
            for g in range(G):
                for j in range(w):
                    tR = 0.0
                    tA = 0.0
                    for s in range(nr):
                        i = nzr[s]
                        h = hfac[n, i, g]
                        if absolute:
                            h = abs(h)
                        if j < q:
                            tR += h * cur[i, j]
                        else:
                            tR += h * cur[i, q + g * p + (j - q)]
                        tA += h * cur[i, nR + G * w + g * w + j]
                    T2[0, g, j] = tR
                    T2[1, g, j] = (tR + tA) * coef
            for i in range(D):
                orow = out[i]
                for c in range(nR):
                    orow[c] = 0.0
                bad = 0
                for g in range(G):
                    dv = dfac[n, i, g]
                    dvs[g] = abs(dv) if absolute else dv
                    if not (dv - dv == 0.0):
                        bad += 1
                for g in range(G):
                    dv = dvs[g]
                    t0 = T2[0, g]
                    t1 = T2[1, g]
                    o0 = orow[nR + g * w:nR + g * w + w]
                    o1 = orow[nR + G * w + g * w:nR + G * w + g * w + w]
                    for j in range(w):
                        o0[j] = dv * t0[j]
                        o1[j] = dv * t1[j]
                    # G > 1: the generic code forms d_k t as one product with a block-diagonal right
                    # factor, adding the exact zeros d_k[i, g'] * 0 of the other samples: NaN where one
                    # of those is inf or NaN
                    if G > 1 and bad - (0 if dv - dv == 0.0 else 1) > 0:
                        for j in range(w):
                            o0[j] = np.nan
                            o1[j] = np.nan
            _layer_apply(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                         k, cur, out, absolute, True)
            tmp = cur
            cur = out
            out = tmp

    @njit
    def chain_segment(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                      k_hi, k_lo, X, out, keep):
        """grad-rank-one's formula chain b (claims/one_step.py, ``_grad_sides``) through layers k_hi,
        .., k_lo: out[k - k_lo] = the block entering layer k (bvec[k]) when ``keep``, then W_k of it
        (k > 0). Returns the block leaving layer k_lo (a new array)."""
        D, G = X.shape
        cur = X.copy()
        nxt = np.empty((D, G))
        for k in range(k_hi, k_lo - 1, -1):
            if keep:
                o = out[k - k_lo]
                for i in range(D):
                    for g in range(G):
                        o[i, g] = cur[i, g]
            if k > 0:
                _layer_apply(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                            k, cur, nxt, False, False)
                tmp = cur
                cur = nxt
                nxt = tmp
        return cur

    @njit
    def adjoint_segment(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                        k0, k1, X, rpow, out, keep, absolute, amax, fold_max):
        """grad-rank-one's formula chain a (``_grad_sides``) through layers k0, .., k1 - 1: per layer
        out[k - k0] = rpow[k] a_k (avec[k]) when ``keep``, amax[k] = rpow[k] * (per column max over
        the units of a_k) when ``fold_max`` (NaN propagates), then a_{k+1} = W_k^T a_k (|W_k|^T when
        ``absolute``). Returns a_{k1} (a new array)."""
        D, G = X.shape
        cur = X.copy()
        nxt = np.empty((D, G))
        for k in range(k0, k1):
            rk = rpow[k]
            if keep:
                o = out[k - k0]
                for i in range(D):
                    for g in range(G):
                        o[i, g] = cur[i, g] * rk
            if fold_max:
                for g in range(G):
                    m = 0.0
                    if D > 0:
                        m = cur[0, g]
                        for i in range(1, D):
                            v = cur[i, g]
                            if m != m:
                                break
                            if v != v or v > m:
                                m = v
                    amax[k, g] = rk * m
            _layer_apply_T(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                          k, cur, nxt, absolute)
            tmp = cur
            cur = nxt
            nxt = tmp
        return cur

    @njit
    def abs_backward_segment(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                             k0, k1, X, pre, r):
        """e-linear's magnitude backward pass (claims/one_step.py, ``_abs_backward``) through layers
        k0, .., k1 - 1: g <- |W_k|^T (g * |ReLU'(pre_k)|), pre (n, D, G) holding layer k at k - k0;
        |ReLU'(u)| = 0 (u < 0), 1 (u > 0), r otherwise (0, -0, NaN) as engine.layers.relu_grad_mul.
        Returns the block leaving layer k1 - 1 (a new array)."""
        D, G = X.shape
        cur = X.copy()
        tmp = np.empty((D, G))
        nxt = np.empty((D, G))
        for k in range(k0, k1):
            n = k - k0
            for i in range(D):
                for g in range(G):
                    u = pre[n, i, g]
                    f = 0.0 if u < 0.0 else (1.0 if u > 0.0 else r)
                    tmp[i, g] = cur[i, g] * f
            _layer_apply_T(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                          k, tmp, nxt, True)
            t2 = cur
            cur = nxt
            nxt = t2
        return cur

    @njit
    def outer_diff_group(P, Q, A, B, max_cols, out):
        """grad-rank-one's comparison (engine.layers.outer_diff_max_abs_all) for every sample g (the
        last axis) of layers (n, D, G) at once: out[k, g] = max_ij |P_i Q_j - A_i B_j| of layer k's
        column g, every entry: 0 where the two factor pairs are equal entry for entry; else over the
        columns j where Q or B is nonzero (column 0 when none) and every row i, |fl(P_i Q_j) -
        fl(A_i B_j)|; above ``max_cols`` such columns over the rows where P or A is nonzero,
        |P_i Q_j + (-A_i) B_j| (the generic code's BLAS product of the stacked factors). A NaN
        propagates."""
        n, D, G = P.shape
        cols = np.empty(max(D, 1), dtype=np.int64)
        for k in range(n):
            for g in range(G):
                same = True
                for i in range(D):
                    if not (P[k, i, g] == A[k, i, g] and Q[k, i, g] == B[k, i, g]):
                        same = False
                        break
                if same:
                    out[k, g] = 0.0
                    continue
                nc = 0
                for j in range(D):
                    if Q[k, j, g] != 0.0 or B[k, j, g] != 0.0:
                        cols[nc] = j
                        nc += 1
                m = 0.0
                if nc <= max_cols:
                    if nc == 0:
                        cols[0] = 0
                        nc = 1
                    for i in range(D):
                        p_ = P[k, i, g]
                        a_ = A[k, i, g]
                        for s in range(nc):
                            j = cols[s]
                            v = abs(p_ * Q[k, j, g] - a_ * B[k, j, g])
                            if v != v or v > m:
                                m = v
                        if m != m:
                            break
                else:
                    for i in range(D):
                        p_ = P[k, i, g]
                        a_ = -A[k, i, g]
                        if p_ == 0.0 and a_ == 0.0:
                            continue
                        for s in range(nc):
                            j = cols[s]
                            v = abs(p_ * Q[k, j, g] + a_ * B[k, j, g])
                            if v != v or v > m:
                                m = v
                        if m != m:
                            break
                out[k, g] = m

    _K.update(so_sweep=so_sweep, chain_segment=chain_segment, adjoint_segment=adjoint_segment,
              abs_backward_segment=abs_backward_segment, outer_diff_group=outer_diff_group)


_DEFINES.append(_define_kclaims)
