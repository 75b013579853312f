"""Compiled per-layer kernels for the sparse float64 backend (Numba).

The paper layout is deep and thin: at J = L = 32 each of the N = 1,026 layers has about 2,100
nonzeros, one per row, and a pass written as NumPy/SciPy calls makes about ten calls per layer, each
streaming the block through memory once. The kernels here run a whole *segment* of layers (a
checkpoint segment, or the whole pass) in one compiled call: the product, the ReLU, the per-unit
extremes and the copies into the stored per-layer arrays, in one traversal of the block per layer. A
forward pass of four samples at J = L = 32 takes about 14 ms against 21 ms warm; whole runs gain about
a third from J = L = 32 on (docs/benchmarks.md).

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
is False and the generic code runs (the same values within rounding). By default the kernels run from
a size on (:data:`KERNELS_FROM`); ``UNIVERSALITY_KERNELS=1`` runs them at every size.

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
    """Can the compiled kernels run? (numba importable and ``UNIVERSALITY_KERNELS`` not set to 0)."""
    if os.environ.get("UNIVERSALITY_KERNELS", "") == "0":
        return False
    return bool(_numba())


# The kernels run for layers of N * D >= KERNELS_FROM (the paper layout from J = L = 32: N D = 2.2e6).
# Below, the generic code is as fast or faster once Numba's import and the kernels' load (about 0.5 s
# per process) are counted: J = L = 16 (N D = 1.4e5) took 0.3-0.45 s more CPU with them (docs/engine.md).
# ``UNIVERSALITY_KERNELS=1`` runs them at every size (the test suite does), ``=0`` at none.
KERNELS_FROM = 1 << 20


def wanted(N: int, D: int) -> bool:
    """Do the kernels run for layers of N x D x D? (``UNIVERSALITY_KERNELS``: 1 always, 0 never,
    unset: from :data:`KERNELS_FROM`)."""
    mode = os.environ.get("UNIVERSALITY_KERNELS", "")
    if mode == "0":
        return False
    if mode != "1" and int(N) * int(D) < KERNELS_FROM:
        return False
    return enabled()


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
_csr_row = None


def _define():
    global _layer_apply, _layer_apply_T, _csr_row
    nb = _numba()
    njit = nb.njit(cache=True, nogil=True)

    @nb.njit(cache=True, nogil=True, inline="always")
    def csr_row(ix, dat, p0, p1, X, Y, i, absolute, accumulate):
        """Y[i, :] = sum_p dat[p] X[ix[p], :] over the entries p0..p1-1 (|dat| when ``absolute``;
        ``accumulate``: from Y[i, :]'s value, else from 0), each column's terms added in entry
        order, as SciPy's csr_matvecs adds them. A row of one entry (the paper layout's rows) in one
        pass over the columns. Inlined into its callers (a call per row would cost more than the
        row)."""
        G = Y.shape[1]
        iu = np.uint64(i)  # (unsigned indices: no negative-index wraparound test per access)
        if p1 - p0 == 1:
            pu = np.uint64(p0)
            a = dat[pu]
            if absolute:
                a = abs(a)
            j = np.uint64(ix[pu])
            for g in range(G):
                gu = np.uint64(g)
                Y[iu, gu] = (Y[iu, gu] if accumulate else 0.0) + a * X[j, gu]
        else:
            if not accumulate:
                for g in range(G):
                    Y[iu, np.uint64(g)] = 0.0
            for p in range(p0, p1):
                pu = np.uint64(p)
                a = dat[pu]
                if absolute:
                    a = abs(a)
                j = np.uint64(ix[pu])
                for g in range(G):
                    gu = np.uint64(g)
                    Y[iu, gu] += a * X[j, gu]

    _csr_row = csr_row

    @njit
    def layer_apply(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                    k, X, Y, absolute, accumulate):
        """Y = W_k X (``accumulate``: Y += W_k X, each row's sum starting from Y's value); |W_k| when
        ``absolute``. X, Y: (D, G) C-contiguous. Row by row, entry by entry, as SciPy's csr_matvecs."""
        D = Y.shape[0]
        s0 = sip0[k]
        d0 = doff[k]
        if whole[k]:
            for i in range(D):
                _csr_row(six, sdat, d0 + sip[s0 + i], d0 + sip[s0 + i + 1], X, Y, i, absolute, accumulate)
            return
        r = row0[k]
        r1 = row0[k + 1]
        nxt = rows[r] if r < r1 else D
        s = 0
        for i in range(D):
            if i == nxt:
                _csr_row(six, sdat, d0 + sip[s0 + s], d0 + sip[s0 + s + 1], X, Y, i, absolute, accumulate)
                s += 1
                r += 1
                nxt = rows[r] if r < r1 else D
            else:
                _csr_row(ref_ix, ref_dat, ref_ip[i], ref_ip[i + 1], X, Y, i, absolute, accumulate)

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

    _K.update(layer_apply=layer_apply, layer_apply_T=layer_apply_T, csr_row=csr_row)


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

    return type(layers) is SparseLayers and layers.dtype is np.float64 and wanted(layers.N, layers.D)


_DUMMY3 = np.zeros((1, 1, 1))
_DUMMY2 = np.zeros((1, 1))


# ---- krest: the build's chunk conversion and encoding, the findings' reductions --------------------
def _define_krest():
    nb = _numba()
    njit = nb.njit(cache=True, nogil=True)

    @njit
    def coo_chunk_to_csr(rows, cols, vals, counts, D, ip, ix, dat):
        """n = counts.size layers given as COO triplets (layer k's entries are the next counts[k] of
        rows, cols, vals: rows and columns in [0, D)) as one canonical CSR matrix (n D, D) of the
        stacked layers, as SciPy's ``csr_matrix((vals, (rows + k D, cols))).sum_duplicates()`` gives
        it: rows by counting sort (input order kept within a row), each row's entries stably sorted
        by column, duplicates summed in input order (explicit zeros kept). Writes ip (n D + 1),
        ix, dat (the entries' count at least); returns the entries kept, or -1 when an index is out
        of range (nothing valid written)."""
        n = counts.size
        R = n * D
        total = rows.size
        for r in range(R + 1):
            ip[r] = 0
        p = 0
        canonical = True  # every layer's entries in CSR order already (rows, then columns, ascending)
        for k in range(n):
            base = k * D
            pi, pj = -1, -1
            for _ in range(counts[k]):
                i = rows[p]
                j = cols[p]
                if i < 0 or i >= D or j < 0 or j >= D:
                    return -1
                if i < pi or (i == pi and j <= pj):
                    canonical = False
                pi, pj = i, j
                ip[base + i + 1] += 1
                p += 1
        for r in range(R):
            ip[r + 1] += ip[r]
        if canonical:  # input order is CSR order, no duplicates: the entries as given
            for q in range(total):
                ix[q] = cols[q]
                dat[q] = vals[q]
            return total
        nxt = ip[:R].copy()
        p = 0
        for k in range(n):
            base = k * D
            for _ in range(counts[k]):
                r = base + rows[p]
                q = nxt[r]
                ix[q] = cols[p]
                dat[q] = vals[p]
                nxt[r] = q + 1
                p += 1
        # per row: a stable sort by column (insertion sort while short, merge sort above), then the
        # duplicates summed into the first of their run, compacting in place
        out = 0
        start = 0
        for r in range(R):
            end = ip[r + 1]
            m = end - start
            if m <= 1:  # (most rows of a deep thin network: one entry)
                if m == 1:
                    ix[out] = ix[start]
                    dat[out] = dat[start]
                    out += 1
                start = end
                ip[r + 1] = out
                continue
            ordered = True
            for q in range(start + 1, end):
                if ix[q] < ix[q - 1]:
                    ordered = False
                    break
            if not ordered:
                if m <= 32:
                    for q in range(start + 1, end):
                        c = ix[q]
                        v = dat[q]
                        t = q - 1
                        while t >= start and ix[t] > c:
                            ix[t + 1] = ix[t]
                            dat[t + 1] = dat[t]
                            t -= 1
                        ix[t + 1] = c
                        dat[t + 1] = v
                else:
                    order = np.argsort(ix[start:end], kind="mergesort")
                    c2 = ix[start:end][order]
                    v2 = dat[start:end][order]
                    ix[start:end] = c2
                    dat[start:end] = v2
            q = start
            while q < end:
                c = ix[q]
                v = dat[q]
                q += 1
                while q < end and ix[q] == c:
                    v += dat[q]
                    q += 1
                ix[out] = c
                dat[out] = v
                out += 1
            start = end
            ip[r + 1] = out
        return out

    @njit
    def chunk_differing_rows(ip, ix, bits, ref_ip, ref_ix, ref_bits, D, differ):
        """For each row r of a stacked chunk (CSR ip, ix, values' bit patterns ``bits``; its rows
        n D): does row r differ from row r mod D of the reference (CSR ref_ip, ref_ix, ref_bits) in
        its length, a column or a value's bit pattern? Written to ``differ`` (uint8)."""
        R = ip.size - 1
        for r in range(R):
            i = r % D
            a, e = ip[r], ip[r + 1]
            b = ref_ip[i]
            if e - a != ref_ip[i + 1] - b:
                differ[r] = 1
                continue
            d = 0
            for t in range(e - a):
                if ix[a + t] != ref_ix[b + t] or bits[a + t] != ref_bits[b + t]:
                    d = 1
                    break
            differ[r] = d

    @njit
    def cross_gram(P, a0, a1, b0, b1, out):
        """out[a, b] = sum over the rows r of P[r, a0 + a] P[r, b0 + b] (P[:, a0:a1]^T P[:, b0:b1]),
        the rows in ascending order, the terms with a zero factor left out (they add exact zeros)
        while row r is finite; a row with an inf or NaN adds every term (0 * inf = NaN)."""
        n = P.shape[0]
        na = a1 - a0
        nb = b1 - b0
        for a in range(na):
            for b in range(nb):
                out[a, b] = 0.0
        ia = np.empty(na, dtype=np.int64)
        ib = np.empty(nb, dtype=np.int64)
        for r in range(n):
            finite = True
            ka = 0
            for a in range(na):
                v = P[r, a0 + a]
                if v != 0.0:
                    ia[ka] = a
                    ka += 1
                    if not (v - v == 0.0):
                        finite = False
            kb = 0
            for b in range(nb):
                v = P[r, b0 + b]
                if v != 0.0:
                    ib[kb] = b
                    kb += 1
                    if not (v - v == 0.0):
                        finite = False
            if not finite:
                for a in range(na):
                    pa = P[r, a0 + a]
                    for b in range(nb):
                        out[a, b] += pa * P[r, b0 + b]
                continue
            for s in range(ka):
                a = ia[s]
                pa = P[r, a0 + a]
                for t in range(kb):
                    b = ib[t]
                    out[a, b] += pa * P[r, b0 + b]

    @njit
    def changed_entries(a, prev, limit, pos, vals):
        """The positions where the int64 bit patterns a and prev differ, ascending, and a's values
        there (as float64 bits), into pos / vals; returns how many, or -1 as soon as there are more
        than ``limit``."""
        n = 0
        for p in range(a.size):
            if a[p] != prev[p]:
                if n == limit:
                    return -1
                pos[n] = p
                vals[n] = a[p]
                n += 1
        return n

    @njit
    def sym_rows_off_identity(B, mark):
        """mark[u] = 1 for the rows u of S = (B + B^T) / 2 that differ from the identity's row u
        (np.any(S - I != 0, axis=1), NaN counting as different), computed entry by entry as NumPy
        computes S (each (B[u, v] + B[v, u]) / 2); 0 for the others. Returns how many are marked."""
        n = B.shape[0]
        for u in range(n):
            mark[u] = 0
        for u in range(n):
            if not ((B[u, u] + B[u, u]) / 2 - 1.0 == 0.0):
                mark[u] = 1
            for v in range(u + 1, n):
                if not ((B[u, v] + B[v, u]) / 2 == 0.0):
                    mark[u] = 1
                    mark[v] = 1
        count = 0
        for u in range(n):
            count += mark[u]
        return count

    @njit
    def lowrank_pair_max(Da, Ha, Db, Hb, ca, cb, same, gmax, dmax):
        """Per layer l of a segment: gmax[l] = max over every entry (i, j) of |D_a H_a^T| (the
        K-example gradient's sum, before its 1/K), and dmax[l] = max |ca D_a H_a^T - cb D_b H_b^T|,
        the difference of two steps' updates (0 without a search when ``same`` (ca == cb) and the
        factors are equal entry for entry: the same layer). Each entry is the sum over the factor
        columns in order (P = [ca D_a, -cb D_b], Q = [H_a, H_b]: sum_t P[i, t] Q[j, t]); only the
        columns j where some Q[j, :] is not zero are searched (the others are exact zeros, or NaN
        where an inf meets a zero: those rows count as supported, so NaN propagates as in the
        dense product). NaN in an entry gives NaN, as np.max does."""
        n, D, Ka = Da.shape
        Kb = Db.shape[2]
        ja = np.empty(D, dtype=np.int64)
        jq = np.empty(D, dtype=np.int64)
        for l in range(n):
            na = 0  # the supported rows of H_a (an entry not zero; NaN counts)
            for j in range(D):
                for t in range(Ka):
                    if Ha[l, j, t] != 0.0 or Ha[l, j, t] != Ha[l, j, t]:
                        ja[na] = j
                        na += 1
                        break
            g = 0.0
            bad = False  # a NaN entry: the maximum is NaN (np.max's rule)
            for c in range(na):
                j = ja[c]
                for i in range(D):
                    v = 0.0
                    for t in range(Ka):
                        v += Da[l, i, t] * Ha[l, j, t]
                    v = abs(v)
                    bad |= v != v
                    g = v if v > g else g
            if bad:
                g = np.nan
            gmax[l] = g
            if same and Ka == Kb:
                equal = True
                for i in range(D):
                    for t in range(Ka):
                        if Da[l, i, t] != Db[l, i, t] or Ha[l, i, t] != Hb[l, i, t]:
                            equal = False
                            break
                    if not equal:
                        break
                if equal:
                    dmax[l] = 0.0
                    continue
            # the supported rows of Q = [H_a, H_b]
            nq = 0
            for j in range(D):
                hit = False
                for t in range(Ka):
                    if Ha[l, j, t] != 0.0 or Ha[l, j, t] != Ha[l, j, t]:
                        hit = True
                for t in range(Kb):
                    if Hb[l, j, t] != 0.0 or Hb[l, j, t] != Hb[l, j, t]:
                        hit = True
                if hit:
                    jq[nq] = j
                    nq += 1
            m = 0.0
            bad = False
            for c in range(nq):
                j = jq[c]
                for i in range(D):
                    v = 0.0
                    for t in range(Ka):
                        v += (ca * Da[l, i, t]) * Ha[l, j, t]
                    for t in range(Kb):
                        v += (-cb * Db[l, i, t]) * Hb[l, j, t]
                    v = abs(v)
                    bad |= v != v
                    m = v if v > m else m
            if bad:
                m = np.nan
            dmax[l] = m

    @njit
    def layer_blocks(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                     k, dt, dm, diag, tr, tc, tv):
        """The blocks of layer k that the telescoping reads, from one pass over its rows in order
        (each row's entries as stored): diag (dm) = the middle block's diagonal (each position's
        entries summed in stored order from 0), the top block's entries (row, column, value) in
        CSR order into tr, tc, tv, and the bottom entry (D - 1, D - 1) summed the same way.
        Returns (top entries, 1 when the middle block has an off-diagonal entry that is not 0
        (NaN counts) else 0, the bottom entry); (-1, 0, 0.0) when tr is too short."""
        D = ref_ip.size - 1
        for u in range(dm):
            diag[u] = 0.0
        ntop = 0
        off = 0
        w = 0.0
        s0 = sip0[k]
        d0 = doff[k]
        r = row0[k]
        r1 = row0[k + 1]
        nxt = rows[r] if r < r1 else D
        s = 0
        wk = whole[k] != 0
        # (the entries are read from the layer's own arrays or from the reference's in two copies of
        # one loop: an array variable reassigned per row costs a reference count update per row)
        for i in range(D):
            own = wk or i == nxt
            if wk:
                p0, p1 = d0 + sip[s0 + i], d0 + sip[s0 + i + 1]
            elif own:
                p0, p1 = d0 + sip[s0 + s], d0 + sip[s0 + s + 1]
                s += 1
                r += 1
                nxt = rows[r] if r < r1 else D
            else:
                p0, p1 = ref_ip[i], ref_ip[i + 1]
            if i < dt:  # top rows: the entries of the top block's columns
                if p1 - p0 > tr.size - ntop:
                    return -1, 0, 0.0
                for p in range(p0, p1):
                    j = six[p] if own else ref_ix[p]
                    if j < dt:
                        tr[ntop] = i
                        tc[ntop] = j
                        tv[ntop] = sdat[p] if own else ref_dat[p]
                        ntop += 1
            elif i < dt + dm:  # middle rows: the diagonal, and any other middle column's nonzero
                for p in range(p0, p1):
                    j = six[p] if own else ref_ix[p]
                    if j >= dt and j < dt + dm:
                        v = sdat[p] if own else ref_dat[p]
                        if j == i:
                            diag[i - dt] += v
                        elif v != 0.0:
                            off = 1
            elif i == D - 1:  # the bottom entry
                for p in range(p0, p1):
                    j = six[p] if own else ref_ix[p]
                    if j == D - 1:
                        w += sdat[p] if own else ref_dat[p]
        return ntop, off, w

    _K.update(layer_blocks=layer_blocks)
    _K.update(coo_chunk_to_csr=coo_chunk_to_csr, chunk_differing_rows=chunk_differing_rows,
              cross_gram=cross_gram, sym_rows_off_identity=sym_rows_off_identity, changed_entries=changed_entries,
              lowrank_pair_max=lowrank_pair_max)


_DEFINES.append(_define_krest)


def coo_to_csr(triplets, D: int, out=None):
    """Layers given as (rows, cols, values) triplets, stacked as one canonical CSR matrix (n D, D):
    (indptr int64, indices int32, data float64), what SciPy's COO to CSR conversion with
    ``sum_duplicates`` gives (the same entries in the same order, bit for bit while no position
    holds three or more duplicates; those are summed in input order, SciPy's order is its sort's).
    ``out``: (indices, data) arrays to write into (views of their first entries are returned), at
    least as long as the entries given. Raises ValueError on an index out of range."""
    n = len(triplets)
    counts = np.array([len(v) for _, _, v in triplets], dtype=np.int64)
    rows = np.concatenate([np.asarray(r, dtype=np.int64).reshape(-1) for r, _, _ in triplets]) if n else \
        np.zeros(0, dtype=np.int64)
    cols = np.concatenate([np.asarray(c, dtype=np.int64).reshape(-1) for _, c, _ in triplets]) if n else \
        np.zeros(0, dtype=np.int64)
    vals = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for _, _, v in triplets]) if n else \
        np.zeros(0)
    if rows.size != vals.size or cols.size != vals.size:
        raise ValueError("row, column and value arrays of different lengths")
    ip = np.empty(n * D + 1, dtype=np.int64)
    if out is not None:  # (ix, dat) to write into: at least as long as the entries given
        ix, dat = out[0][:vals.size], out[1][:vals.size]
    else:
        ix = np.empty(vals.size, dtype=np.int32)
        dat = np.empty(vals.size)
    got = kernel("coo_chunk_to_csr")(rows, cols, vals, counts, int(D), ip, ix, dat)
    if got < 0:
        raise ValueError(f"a row or column index outside [0, {D})")
    return ip, ix[:got], dat[:got]


def differing_rows(ip, ix, data, ref, D: int) -> np.ndarray:
    """The rows (n D,) of a stacked canonical chunk that differ from the same row of the reference
    (a canonical CSR matrix): another length, a column or a value's bit pattern (uint8 flags)."""
    differ = np.empty(len(ip) - 1, dtype=np.uint8)
    kernel("chunk_differing_rows")(np.ascontiguousarray(ip, dtype=np.int64), np.ascontiguousarray(ix, dtype=np.int32),
                                   np.ascontiguousarray(data, dtype=np.float64).view(np.int64),
                                   np.ascontiguousarray(ref.indptr, dtype=np.int64),
                                   np.ascontiguousarray(ref.indices, dtype=np.int32),
                                   np.ascontiguousarray(ref.data, dtype=np.float64).view(np.int64), int(D), differ)
    return differ


def cross_gram(P: np.ndarray, a: slice, b: slice) -> np.ndarray:
    """P[:, a]^T P[:, b] for a dense float64 P (slices of its columns), skipping the zero terms of
    a sparse P (see the kernel): the same sums as the dense product up to their order of addition."""
    P = np.ascontiguousarray(P, dtype=np.float64)
    a0, a1, _ = a.indices(P.shape[1])
    b0, b1, _ = b.indices(P.shape[1])
    out = np.empty((a1 - a0, b1 - b0))
    kernel("cross_gram")(P, int(a0), int(a1), int(b0), int(b1), out)
    return out
# ---- kengine: the engine's other sweeps (backprop, the passes after the step, the magnitude passes) ----
# Every kernel here computes what the generic sweep in engine/batch.py or engine/step.py computes,
# layer by layer, for a run of layers: the same products (``_layer_apply`` / ``_layer_apply_T``, bit
# for bit SciPy's), the same elementwise operations in the same order, except where noted (a rank-one
# correction's sum over the units is accumulated in order, where the generic code calls a BLAS
# product; on the paper layout those sums have one or two nonzero terms, so the values agree). The
# elementwise steps are separate flat loops without branches (NumPy's NaN and signed-zero rules as
# selects), which the compiler vectorizes: written as one loop with the NaN tests as branches they
# cost more than the product.


def _define_kengine():
    global _np_max, _np_min, _update_cols, _update_shared, _finish_layer, _nonzero_rows
    nb = _numba()
    njit = nb.njit(cache=True, nogil=True)
    inline = nb.njit(cache=True, nogil=True, inline="always")

    @inline
    def np_max(a, b):
        """np.maximum(a, b) for two floats: NaN if either is NaN, b on a tie (NumPy's choice)."""
        return a if ((a != a) | ((b == b) & (a > b))) else b

    @inline
    def np_min(a, b):
        """np.minimum(a, b) for two floats: NaN if either is NaN, b on a tie."""
        return a if ((a != a) | ((b == b) & (a < b))) else b

    _np_max, _np_min = np_max, np_min

    @inline
    def nonzero_rows(Hk, rows):
        """The units (rows) where some column of Hk (D, G) is not zero (a NaN counts), ascending, into
        rows[:n]; returns n. Eight entries at a time (most of h is zero on the paper layout)."""
        D, G = Hk.shape
        m = D * G
        h = Hk.reshape(m)
        n = 0
        last = -1
        q0 = 0
        while q0 < m:
            q1 = min(q0 + 8, m)
            z = False
            for q in range(q0, q1):
                z |= h[q] != 0.0
            if z:
                for q in range(q0, q1):
                    if h[q] != 0.0:
                        i = q // G
                        if i != last:
                            rows[n] = i
                            n += 1
                            last = i
            q0 = q1
        return n

    _nonzero_rows = nonzero_rows

    @njit
    def update_cols(Y, X, Dk, Hk, coef, absolute, t, rows):
        """Column c = s G + g of Y (D, S G) += coef d^(g) (h^(g)T X[:, c]) for the per-column factors
        Dk, Hk (D, G) (batch.PerColumnUpdates: column g through sample g's updated layer); with
        ``absolute`` |coef| |d| (|h|^T X). h^T X reads the units where some column of Hk is not zero
        (NaN counts), in order, as the generic code does. One sample (G = 1, not absolute):
        coef (d (h^T x)); else d (coef (h^T x)), as the generic code's two forms order them.
        ``t`` (S G,), ``rows`` (D,): work arrays. Flat loops (indexing the blocks as 2-d arrays in
        short inner loops costs several times more)."""
        D, SG = Y.shape
        G = Hk.shape[1]
        S = SG // G
        y = Y.reshape(D * SG)
        x = X.reshape(D * SG)
        h = Hk.reshape(D * G)
        d = Dk.reshape(D * G)
        n = _nonzero_rows(Hk, rows)
        for c in range(SG):
            t[c] = 0.0
        for q in range(n):
            i = rows[q]
            for s in range(S):
                for g in range(G):
                    hv = h[i * G + g]
                    if absolute:
                        hv = abs(hv)
                    t[s * G + g] += hv * x[i * SG + s * G + g]
        if absolute:
            c0 = abs(coef)
            for c in range(SG):
                t[c] = c0 * t[c]
        elif G > 1:
            for c in range(SG):
                t[c] = coef * t[c]
        if G == 1 and S == 1:
            t0 = t[0]
            if absolute:
                for i in range(D):
                    y[i] += abs(d[i]) * t0
            else:
                for i in range(D):
                    y[i] += coef * (d[i] * t0)
        elif G == 1 and S == 2:
            t0, t1 = t[0], t[1]
            if absolute:
                for i in range(D):
                    dv = abs(d[i])
                    y[2 * i] += dv * t0
                    y[2 * i + 1] += dv * t1
            else:
                for i in range(D):
                    dv = d[i]
                    y[2 * i] += coef * (dv * t0)
                    y[2 * i + 1] += coef * (dv * t1)
        else:
            for s in range(S):
                for g in range(G):
                    c = s * G + g
                    tc = t[c]
                    if G == 1 and not absolute:
                        for i in range(D):
                            y[i * SG + c] += coef * (d[i] * tc)
                    elif absolute:
                        for i in range(D):
                            y[i * SG + c] += abs(d[i * G + g]) * tc
                    else:
                        for i in range(D):
                            y[i * SG + c] += d[i * G + g] * tc

    @njit
    def update_shared(Y, X, Dk, Hk, coef, absolute, t):
        """Y (D, C) += coef Dk (Hk^T X) for the factors Dk, Hk (D, K) of one updated layer
        (layers.UpdatedLayers: every column through the same layer W + coef D H^T); with ``absolute``
        |coef| |Dk| (|Hk|^T X). Every unit is read (as the generic product does). K = 1:
        (coef d) (h^T X); else coef (Dk (Hk^T X)), as the generic code's two forms order them.
        ``t``: a work array (K, C). Flat loops."""
        D, C = Y.shape
        K = Hk.shape[1]
        y = Y.reshape(D * C)
        x = X.reshape(D * C)
        h = Hk.reshape(D * K)
        d = Dk.reshape(D * K)
        tf = t.reshape(K * C)
        c0 = abs(coef) if absolute else coef
        if K == 1 and C == 1:  # one example, one column: the sum in a register
            acc = 0.0
            for i in range(D):
                hv = h[i]
                if absolute:
                    hv = abs(hv)
                acc += hv * x[i]
            tf[0] = acc
            if absolute:
                for i in range(D):
                    y[i] += (c0 * abs(d[i])) * acc
            else:
                for i in range(D):
                    y[i] += (c0 * d[i]) * acc
            return
        for q in range(K * C):
            tf[q] = 0.0
        if C == 1:
            for i in range(D):
                xv = x[i]
                for j in range(K):
                    hv = h[i * K + j]
                    if absolute:
                        hv = abs(hv)
                    tf[j] += hv * xv
        else:
            for i in range(D):
                for j in range(K):
                    hv = h[i * K + j]
                    if absolute:
                        hv = abs(hv)
                    for c in range(C):
                        tf[j * C + c] += hv * x[i * C + c]
        if K == 1:
            for i in range(D):
                dv = d[i]
                if absolute:
                    dv = abs(dv)
                cd = c0 * dv
                for c in range(C):
                    y[i * C + c] += cd * tf[c]
        else:
            for i in range(D):
                for c in range(C):
                    u = 0.0
                    for j in range(K):
                        dv = d[i * K + j]
                        if absolute:
                            dv = abs(dv)
                        u += dv * tf[j * C + c]
                    y[i * C + c] += c0 * u

    _update_cols, _update_shared = update_cols, update_shared

    @inline
    def finish_layer(Y, cur, n, k, keep_pre, pre, keep_inp, inp, extremes, hi, lo, reduce, colmax, rowmax,
                     use_relu):
        """What a pass does with layer k's output Y (D, C) (its input cur): store Y in pre[n] and cur
        in inp[n]; fold Y into hi/lo (np.maximum/np.minimum) and colmax (np.maximum), and its
        per-column maximum over the units (np.max) into rowmax[k]; then Y becomes the next state
        (ReLU'd in place with ``use_relu``: np.maximum(Y, 0.0), NaN kept, -0.0 to +0.0)."""
        D, C = Y.shape
        m = D * C
        y = Y.reshape(m)
        if keep_inp:
            x = cur.reshape(m)
            q = inp[n].reshape(m)
            for i in range(m):
                q[i] = x[i]
        if keep_pre:
            q = pre[n].reshape(m)
            for i in range(m):
                q[i] = y[i]
        if extremes:
            h = hi.reshape(m)
            lw = lo.reshape(m)
            for i in range(m):
                h[i] = _np_max(h[i], y[i])
                lw[i] = _np_min(lw[i], y[i])
        if reduce:
            cm = colmax.reshape(m)
            for i in range(m):
                cm[i] = _np_max(cm[i], y[i])
            if D == 0:
                for c in range(C):
                    rowmax[k, c] = 0.0
            elif C == 1:
                r0 = y[0]
                for i in range(D):
                    r0 = _np_max(r0, y[i])
                rowmax[k, 0] = r0
            else:
                rm = rowmax[k]
                for c in range(C):
                    rm[c] = y[c]
                for i in range(D):
                    for c in range(C):
                        rm[c] = _np_max(rm[c], y[i * C + c])
        if use_relu:
            for i in range(m):
                v = y[i]
                y[i] = v if ((v > 0.0) | (v != v)) else 0.0

    _finish_layer = finish_layer

    @njit
    def backward_segment(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                         k0, k1, pre, E, dout, keep, r):
        """Reverse mode through layers k0, k0 + 1, .., k1 - 1 from the error E (D, G) (not modified)
        entering layer k0: per layer d = E * ReLU'(pre[k - k0]) with ReLU'(p) = 0 (p < 0), 1 (p > 0),
        r otherwise (zero, and NaN) as layers.relu_grad_mul multiplies, stored in dout[k - k0] when
        ``keep``, and the next error W_k^T d. Returns the error leaving layer k1 - 1 (a new array)."""
        D, G = E.shape
        m = D * G
        cur = E.copy()
        d = np.empty((D, G))
        c = cur.reshape(m)
        dd = d.reshape(m)
        for k in range(k0, k1):
            n = k - k0
            p = pre[n].reshape(m)
            for i in range(m):
                v = p[i]
                f = 1.0 if v > 0.0 else r
                f = 0.0 if v < 0.0 else f
                dd[i] = c[i] * f
            if keep:
                q = dout[n].reshape(m)
                for i in range(m):
                    q[i] = dd[i]
            _layer_apply_T(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                           k, d, cur, False)
        return cur

    @njit
    def updated_segment(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                        k_hi, k_lo, X, mode, Dseg, Hseg, coef, absolute, use_relu,
                        keep_pre, pre, keep_inp, inp, extremes, hi, lo, reduce, colmax, rowmax):
        """A pass of the block X (D, C) (not modified) through layers k_hi, k_hi - 1, .., k_lo of the
        base layers (``mode`` 0), of the updated layers W_k + coef D_k H_k^T (1: layers.UpdatedLayers,
        every column through the same layer; ``Dseg``, ``Hseg`` (k_hi - k_lo + 1, D, K): the factors
        of layers k_lo..k_hi), or of each column's own updated layer (2: batch.PerColumnUpdates,
        column s G + g through sample g's; Dseg, Hseg (.., D, G)); with ``absolute`` the magnitudes
        |W_k| (and |coef| |D_k| |H_k|^T). Per layer the product Y, then ``finish_layer`` (stored
        pre-activation and input, extremes, reductions, ReLU). Returns the state leaving layer k_lo
        (a new array)."""
        D, C = X.shape
        cur = X.copy()
        Y = np.empty((D, C))
        K = Dseg.shape[2]
        t1 = np.empty(C)
        t2 = np.empty((K, C))
        nzr = np.empty(D, dtype=np.int64)
        for k in range(k_hi, k_lo - 1, -1):
            _layer_apply(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                         k, cur, Y, absolute, False)
            n = k - k_lo
            if mode == 1:
                _update_shared(Y, cur, Dseg[n], Hseg[n], coef, absolute, t2)
            elif mode == 2:
                _update_cols(Y, cur, Dseg[n], Hseg[n], coef, absolute, t1, nzr)
            _finish_layer(Y, cur, n, k, keep_pre, pre, keep_inp, inp, extremes, hi, lo, reduce, colmax, rowmax,
                          use_relu)
            cur, Y = Y, cur
        return cur

    @njit
    def post_step_segment(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                          k_hi, k_lo, X, A, Dseg, Hseg, coef, hi, lo, colmax):
        """batch._post_step_reductions for layers k_hi .. k_lo of each column's own updated layer
        (batch.PerColumnUpdates; Dseg, Hseg (k_hi - k_lo + 1, D, G)): the pass of X (D, G) (ReLU,
        its pre-activations' extremes into hi, lo) and the magnitude pass of A (D, S G) (column
        s G + g through sample g's |W_k'|; its per-unit maxima into colmax), both in place."""
        D, G = X.shape
        SG = A.shape[1]
        Y = np.empty((D, G))
        B = np.empty((D, SG))
        t = np.empty(SG)
        nzr = np.empty(D, dtype=np.int64)
        rm = np.empty((1, 1))
        cur = X.copy()
        Ac = A.copy()
        for k in range(k_hi, k_lo - 1, -1):
            n = k - k_lo
            _layer_apply(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                         k, cur, Y, False, False)
            _update_cols(Y, cur, Dseg[n], Hseg[n], coef, False, t, nzr)
            _finish_layer(Y, cur, n, k, False, Dseg, False, Dseg, True, hi, lo, False, colmax, rm, True)
            cur, Y = Y, cur
            _layer_apply(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                         k, Ac, B, True, False)
            _update_cols(B, Ac, Dseg[n], Hseg[n], coef, True, t, nzr)
            cm = colmax.reshape(D * SG)
            b = B.reshape(D * SG)
            for i in range(D * SG):
                cm[i] = _np_max(cm[i], b[i])
            Ac, B = B, Ac
        X[:, :] = cur
        A[:, :] = Ac

    @njit
    def factor_block_max(F, dt, out, which):
        """For F (n, D, G): per layer and column the largest |F| over the units [0, dt) into
        out[which] and over [dt, D) into out[which + 1] ((n, G) each), as step.row_abs_max computes
        it: max(max F, -min F) with 0 for no units, NaN propagating."""
        n, D, G = F.shape
        dt = min(max(dt, 0), D)
        mx = np.empty(G)
        mn = np.empty(G)
        for k in range(n):
            f = F[k].reshape(D * G)
            for part in range(2):
                a, b = (0, dt) if part == 0 else (dt, D)
                if G == 1:  # four independent running maxima (max is exact: any order, one value)
                    m0 = m1 = m2 = m3 = 0.0
                    i = a
                    while i + 4 <= b:
                        m0 = _np_max(m0, abs(f[i]))
                        m1 = _np_max(m1, abs(f[i + 1]))
                        m2 = _np_max(m2, abs(f[i + 2]))
                        m3 = _np_max(m3, abs(f[i + 3]))
                        i += 4
                    while i < b:
                        m0 = _np_max(m0, abs(f[i]))
                        i += 1
                    out[which + part, k, 0] = _np_max(_np_max(m0, m1), _np_max(m2, m3))
                    continue
                for g in range(G):
                    mx[g] = 0.0
                    mn[g] = 0.0
                for i in range(a, b):
                    for g in range(G):
                        v = f[i * G + g]
                        mx[g] = _np_max(mx[g], v)
                        mn[g] = _np_min(mn[g], v)
                for g in range(G):
                    out[which + part, k, g] = _np_max(mx[g], -mn[g])

    _K.update(backward_segment=backward_segment, updated_segment=updated_segment,
              post_step_segment=post_step_segment, factor_block_max=factor_block_max,
              kengine_np_max=np_max, kengine_np_min=np_min, kengine_update_cols=update_cols,
              kengine_update_shared=update_shared, kengine_finish_layer=finish_layer,
              kengine_nonzero_rows=nonzero_rows)


_DEFINES.append(_define_kengine)


def _plain(layers) -> bool:
    """Do the kernels compute what ``layers``' own operations compute? A float64 SparseLayers whose
    products, ReLU and ReLU' are the class's own (one whose operations were replaced, such as a
    planted backprop bug in a test, runs the generic code, which calls them), kernels enabled."""
    if not usable(layers):
        return False
    from .layers import KERNEL_OPS

    cls = type(layers)
    return all(name not in layers.__dict__ and getattr(cls, name) is KERNEL_OPS[name] for name in KERNEL_OPS)


def _base_of(layers):
    """(base SparseLayers, mode, D factors, H factors, coef) for the kernels' passes through
    ``layers`` (mode 0: the layers themselves; 1: a layers.UpdatedLayers; 2: a batch.PerColumnUpdates),
    or None where the kernels do not run them (another backend, exact factors, kernels off)."""
    if _plain(layers):
        return layers, 0, None, None, 0.0
    from .batch import PerColumnUpdates
    from .layers import UpdatedLayers

    from .batch import PER_COLUMN_OPS
    from .layers import UPDATED_OPS

    if type(layers) is UpdatedLayers:
        mode, Dg, Hg, ops = 1, layers.Dfac, layers.Hfac, UPDATED_OPS
    elif type(layers) is PerColumnUpdates:
        mode, Dg, Hg, ops = 2, layers.Dg, layers.Hg, PER_COLUMN_OPS
    else:
        return None
    if any(name in layers.__dict__ or getattr(type(layers), name) is not op for name, op in ops.items()):
        return None
    if not _plain(layers.base) or getattr(Dg, "dtype", None) != np.float64 or getattr(Hg, "dtype", None) != np.float64:
        return None
    if len(Dg.shape) != 3 or len(Hg.shape) != 3:
        return None
    return layers.base, mode, Dg, Hg, float(layers.coef)


def _cuts(F, k0: int, k1: int) -> set:
    """Where a factor stack F's storage splits the layers k0..k1-1 (a checkpointed stack: its
    sweep's segment bounds; a plain array: nowhere)."""
    from .checkpoint import LazyStack

    if not isinstance(F, LazyStack):
        return set()
    s = F.sweep.seg
    return set(range((k0 // s + 1) * s, k1, s))


def _block(F, a: int, b: int) -> np.ndarray:
    """Layers a..b-1 of a factor stack F (an (N, D, K) array, or a LazyStack whose segments do not
    split a..b-1: its segment recomputed if needed) as a C-contiguous float64 (b - a, D, K) array."""
    from .checkpoint import LazyStack

    if isinstance(F, LazyStack):
        sw = F.sweep
        j = a // sw.seg
        base = j * sw.seg - sw.offsets[F.n]
        A = sw.fetch(j)[F.n][a - base:b - base]
        if F.cols is not None:
            A = A[..., F.cols]
    else:
        A = F[a:b]
    A = np.ascontiguousarray(A, dtype=np.float64)
    return A[:, :, None] if A.ndim == 2 else A


def _chunks(Dg, Hg, k0: int, k1: int):
    """The layers k0..k1-1 as runs [a, b), from the top (the pass's order), that split neither
    factor stack's storage."""
    if Dg is None:
        return [(k0, k1)]
    cuts = sorted(_cuts(Dg, k0, k1) | _cuts(Hg, k0, k1) | {k0, k1})
    return [(cuts[i], cuts[i + 1]) for i in range(len(cuts) - 2, -1, -1)]


class _Pass:
    """One pass through ``layers`` (plain, UpdatedLayers or PerColumnUpdates over float64 sparse
    layers) run through ``updated_segment``, a run of layers per call."""

    def __init__(self, spec):
        self.base, self.mode, self.Dg, self.Hg, self.coef = spec
        self.f = flat_of(self.base)
        self.run = kernel("updated_segment")

    def sweep(self, k0, k1, X, *, absolute=False, use_relu=True, pre=None, inp=None, extremes=None,
              reduce=None):
        """Layers k1 - 1 .. k0 from the state X (D, C); ``pre``/``inp``: arrays (k1 - k0, D, C) to
        fill (index k - k0), or None; ``extremes`` (hi, lo), ``reduce`` (colmax, rowmax (N, C)) to
        fold into, or None. Returns the state leaving layer k0."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        hi, lo = extremes if extremes is not None else (_DUMMY2, _DUMMY2)
        colmax, rowmax = reduce if reduce is not None else (_DUMMY2, _DUMMY2)
        for a, b in _chunks(self.Dg, self.Hg, k0, k1):
            if self.mode:
                Ds, Hs = _block(self.Dg, a, b), _block(self.Hg, a, b)
            else:
                Ds = Hs = _DUMMY3
            X = self.run(*self.f.args, b - 1, a, X, self.mode, Ds, Hs, self.coef, bool(absolute), bool(use_relu),
                         pre is not None, _DUMMY3 if pre is None else pre[a - k0:b - k0],
                         inp is not None, _DUMMY3 if inp is None else inp[a - k0:b - k0],
                         extremes is not None, hi, lo, reduce is not None, colmax, rowmax)
        return X


def pass_of(layers):
    """A :class:`_Pass` through ``layers``, or None where the kernels do not run them."""
    spec = _base_of(layers)
    return None if spec is None else _Pass(spec)


def sweep_segment(layers, use_relu: bool, extremes):
    """batch.forward_sweep's ``segment`` callable for ``layers`` (plain sparse layers, or updated
    ones: UpdatedLayers, PerColumnUpdates) through ``updated_segment``; None where the kernels do
    not apply."""
    p = pass_of(layers)
    if p is None:
        return None

    def segment(k0, k1, X, out):
        pre, inp = (None, None) if out is None else out
        return p.sweep(k0, k1, X, use_relu=use_relu, pre=pre, inp=inp, extremes=extremes)

    return segment


def _stack_block(stack, k0: int, k1: int) -> np.ndarray:
    """Layers k0..k1-1 of a stored (N, ...) array or of a LazyStack whose sweep's segment is k0..k1."""
    return _block(stack, k0, k1)


def backward_segment(layers, pre, r: float):
    """A :class:`~.checkpoint.Sweep` ``segment`` callable for batch.backward_sweep (reverse mode
    through ``layers`` from the pre-activations ``pre``: an (N, D, G) array, or a LazyStack of the
    forward sweep, segmented like the backward sweep), or None where the kernels do not apply."""
    if not _plain(layers):
        return None
    f = flat_of(layers)
    run = kernel("backward_segment")

    def segment(k0, k1, E, out):
        E = np.ascontiguousarray(E, dtype=np.float64)
        for a, b in reversed(_chunks(pre, pre, k0, k1)):
            P = _stack_block(pre, a, b)
            d = _DUMMY3 if out is None else out[0][a - k0:b - k0]
            E = run(*f.args, a, b, P, E, d, out is not None, float(r))
        return E

    return segment


def post_step_reductions(upd, N: int, PHI: np.ndarray, ABS: np.ndarray):
    """batch._post_step_reductions through a PerColumnUpdates ``upd`` in one kernel call per run of
    layers its factors are stored in, or None where the kernels do not apply."""
    spec = _base_of(upd)
    if spec is None or spec[1] != 2:
        return None
    base, _, Dg, Hg, coef = spec
    f = flat_of(base)
    run = kernel("post_step_segment")
    D, G = PHI.shape
    hi = np.full(PHI.shape, -np.inf)
    lo = np.full(PHI.shape, np.inf)
    X = np.array(PHI, dtype=np.float64, order="C")
    A = np.ascontiguousarray(np.abs(ABS), dtype=np.float64)
    colmax = np.zeros(A.shape)
    A2, cm2 = A.reshape(D, -1), colmax.reshape(D, -1)
    for a, b in _chunks(Dg, Hg, 0, N):
        run(*f.args, b - 1, a, X, A2, _block(Dg, a, b), _block(Hg, a, b), coef, hi, lo, cm2)
    return (hi, lo), colmax


def factor_block_max(F: np.ndarray, dt: int, out: np.ndarray, which: int) -> None:
    """step.Step.factor_block_max's two per-layer maxima of |F| (F (n, D, G)) for every column."""
    kernel("factor_block_max")(np.ascontiguousarray(F, dtype=np.float64), int(dt), out, int(which))


# ---- kclaims: the claims' per-layer sweeps (claims/one_step.py) ------------------------------------
# Each computes what the generic claim code computes layer by layer with the layer algebra (kept, and
# the only path of the dense and exact backends and of UNIVERSALITY_KERNELS=0): the same layer
# products (layer_apply / layer_apply_T, bit for bit SciPy's), the same elementwise operations; only
# the short dot products h_k^T Y of second-order-zero's rank-one terms may sum in another order than
# BLAS / einsum (tests/test_kernels_claims.py: rtol 1e-12 there, bit for bit elsewhere).

_so_layer = None
_pair_apply_T = None
_outer_diff_one = None


def _define_kclaims():
    global _so_layer, _pair_apply_T, _outer_diff_one
    nb = _numba()
    njit = nb.njit(cache=True, nogil=True)
    # (the products through the module globals _layer_apply / _layer_apply_T: see _DEFINES)

    @nb.njit(cache=True, nogil=True, inline="always")
    def so_layer(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                 k, n, dfac, hfac, nzr, nr, cur, out, q, p, coef, absolute, T2, dvs):
        """Layer k of one of second-order-zero's sweeps (see so_sweep): t = h_k^T [R | acc'] on the
        rows nzr[:nr]; then row by row the rank-one terms d_k t written into ``out`` and row i of
        W_k cur accumulated onto them at once (layer_apply's rows are independent of one another, so
        each row's operations are those of writing every row's terms first and then running
        layer_apply over all rows: the same values; about 5-12% less time, the row read back while
        it is still in cache)."""
        D, width = cur.shape
        G = dfac.shape[2]
        w = q + p
        nR = q + G * p
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
        s0 = sip0[k]
        d0 = doff[k]
        wh = whole[k]
        r = row0[k]
        r1 = row0[k + 1]
        nxt = rows[r] if r < r1 else D
        srow = 0
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
                if G > 1 and bad - (0 if dv - dv == 0.0 else 1) > 0:
                    for j in range(w):
                        o0[j] = np.nan
                        o1[j] = np.nan
            if wh:
                _csr_row(six, sdat, d0 + sip[s0 + i], d0 + sip[s0 + i + 1], cur, out, i, absolute, True)
            elif i == nxt:
                _csr_row(six, sdat, d0 + sip[s0 + srow], d0 + sip[s0 + srow + 1], cur, out, i, absolute, True)
                srow += 1
                r += 1
                nxt = rows[r] if r < r1 else D
            else:
                _csr_row(ref_ix, ref_dat, ref_ip[i], ref_ip[i + 1], cur, out, i, absolute, True)

    _so_layer = so_layer

    @njit
    def so_sweep(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                       k_hi, k_lo, dfac, hfac, cur, out, q, p, coef, cura, outa, qa, pa, coefa):
        """second-order-zero's two group sweeps (claims/one_step.py, ``_expand_group.sweep``), on the
        values (cur, out; q, p, coef) and on magnitudes (cura, outa; qa, pa, coefa; |d_k|, |h_k|,
        |W_k|), through layers k_hi, k_hi - 1, .., k_lo in one traversal (each layer's matrix and
        factors read once for both; each sweep's operations as when run alone): dfac, hfac (n, D, G)
        hold those layers' gradient factors at index k - k_lo; ``cur`` (D, width) is a sweep's state
        [R | acc | acc'] entering layer k_hi, R = q shared columns then p per sample, acc and acc'
        w = q + p columns per sample; ``out`` a buffer of its shape. Per layer: the units where some
        sample's h_k is nonzero (NaN counts), t = h_k^T [R | acc'] on them, the rank-one terms d_k t
        written first and W_k B accumulated onto them. Layer by layer each state alternates between
        its two arrays: it leaves layer k_lo in ``cur`` after an even number of layers, else in
        ``out``."""
        D = cur.shape[0]
        G = dfac.shape[2]
        T2 = np.zeros((2, G, q + p))
        T2a = np.zeros((2, G, qa + pa))
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
            _so_layer(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                      k, n, dfac, hfac, nzr, nr, cur, out, q, p, coef, False, T2, dvs)
            _so_layer(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                      k, n, dfac, hfac, nzr, nr, cura, outa, qa, pa, coefa, True, T2a, dvs)
            tmp = cur
            cur = out
            out = tmp
            tmp = cura
            cura = outa
            outa = tmp

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

    @nb.njit(cache=True, nogil=True, inline="always")
    def pair_apply_T(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat, k, X, Y, Xa, Ya):
        """Y = W_k^T X and Ya = |W_k|^T Xa in one traversal of layer k's entries: each output's terms
        added in layer_apply_T's order (the same values as its two calls)."""
        D, G = Y.shape
        for i in range(D):
            for g in range(G):
                Y[i, g] = 0.0
                Ya[i, g] = 0.0
        s0 = sip0[k]
        d0 = doff[k]
        if whole[k]:
            for i in range(D):
                for p in range(d0 + sip[s0 + i], d0 + sip[s0 + i + 1]):
                    a = sdat[p]
                    b = abs(a)
                    j = six[p]
                    for g in range(G):
                        Y[j, g] += a * X[i, g]
                        Ya[j, g] += b * Xa[i, g]
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
                b = abs(a)
                j = ref_ix[p]
                if stored:
                    for g in range(G):
                        Y[j, g] += a * 0.0
                        Ya[j, g] += b * 0.0
                else:
                    for g in range(G):
                        Y[j, g] += a * X[i, g]
                        Ya[j, g] += b * Xa[i, g]
        for s in range(row0[k + 1] - row0[k]):
            i = rows[row0[k] + s]
            for p in range(d0 + sip[s0 + s], d0 + sip[s0 + s + 1]):
                a = sdat[p]
                b = abs(a)
                j = six[p]
                for g in range(G):
                    Y[j, g] += a * X[i, g]
                    Ya[j, g] += b * Xa[i, g]

    _pair_apply_T = pair_apply_T

    @njit
    def adjoint_pair(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                     X, Xa, rpow, out, amax):
        """grad-rank-one's two adjoint chains (``_grad_sides``, stored) in one traversal of the layers:
        what adjoint_segment computes for a (keep: out[k] = rpow[k] a_k) and for |a| (fold_max:
        amax[k]) apart, layer k's W_k^T and |W_k|^T applied in one pass over its entries
        (pair_apply_T: the same operations in the same order per chain)."""
        D, G = X.shape
        N = out.shape[0]
        cur = X.copy()
        nxt = np.empty((D, G))
        cura = Xa.copy()
        nxta = np.empty((D, G))
        for k in range(N):
            rk = rpow[k]
            o = out[k]
            for i in range(D):
                for g in range(G):
                    o[i, g] = cur[i, g] * rk
            for g in range(G):
                m = 0.0
                if D > 0:
                    m = cura[0, g]
                    for i in range(1, D):
                        v = cura[i, g]
                        if m != m:
                            break
                        if v != v or v > m:
                            m = v
                amax[k, g] = rk * m
            _pair_apply_T(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                          k, cur, nxt, cura, nxta)
            tmp = cur
            cur = nxt
            nxt = tmp
            tmp = cura
            cura = nxta
            nxta = tmp

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

    @nb.njit(cache=True, nogil=True, inline="always")
    def outer_diff_one(P, Q, A, B, g, max_cols, cols):
        """max_ij |P_i Q_j - A_i B_j| of column g of one layer's factors (D, G) each (see
        outer_diff_group)."""
        D = P.shape[0]
        same = True
        for i in range(D):
            if not (P[i, g] == A[i, g] and Q[i, g] == B[i, g]):
                same = False
                break
        if same:
            return 0.0
        nc = 0
        for j in range(D):
            if Q[j, g] != 0.0 or B[j, g] != 0.0:
                cols[nc] = j
                nc += 1
        m = 0.0
        if nc <= max_cols:
            if nc == 0:
                cols[0] = 0
                nc = 1
            for i in range(D):
                p_ = P[i, g]
                a_ = A[i, g]
                for s in range(nc):
                    j = cols[s]
                    v = abs(p_ * Q[j, g] - a_ * B[j, g])
                    if v != v or v > m:
                        m = v
                if m != m:
                    break
        else:
            for i in range(D):
                p_ = P[i, g]
                a_ = -A[i, g]
                if p_ == 0.0 and a_ == 0.0:
                    continue
                for s in range(nc):
                    j = cols[s]
                    v = abs(p_ * Q[j, g] + a_ * B[j, g])
                    if v != v or v > m:
                        m = v
                if m != m:
                    break
        return m

    _outer_diff_one = outer_diff_one

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
                out[k, g] = _outer_diff_one(P[k], Q[k], A[k], B[k], g, max_cols, cols)

    @njit
    def chain_compare(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                      X, P, Q, A, max_cols, out):
        """grad-rank-one's formula chain b (chain_segment) and the comparison (outer_diff_group) in
        one traversal, b never stored: from X = phi (the block entering layer N - 1), per layer k =
        N - 1, .., 0 out[k, g] = max_ij |P[k]_i Q[k]_j - A[k]_i b_j| of each sample g with b the
        block entering layer k (bvec[k]), then b <- W_k b. The same values as the two kernels."""
        D, G = X.shape
        N = P.shape[0]
        cols = np.empty(max(D, 1), dtype=np.int64)
        cur = X.copy()
        nxt = np.empty((D, G))
        for k in range(N - 1, -1, -1):
            for g in range(G):
                out[k, g] = _outer_diff_one(P[k], Q[k], A[k], cur, g, max_cols, cols)
            if k > 0:
                _layer_apply(ref_ip, ref_ix, ref_dat, whole, row0, rows, sip0, sip, doff, six, sdat,
                             k, cur, nxt, False, False)
                tmp = cur
                cur = nxt
                nxt = tmp

    @njit
    def column_extremes(A, hi, lo):
        """Per column of A (n, M): its largest and smallest entry over the rows, into hi and lo (M,)
        (from -inf / inf; a NaN propagates, as NumPy's max and min reduce), in one pass over A:
        nonneg-linear-regime's per-unit extremes of a group's stored pass (claims/one_step.py)."""
        n, M = A.shape
        for m in range(M):
            hi[m] = -np.inf
            lo[m] = np.inf
        for k in range(n):
            for m in range(M):
                v = A[k, m]
                h = hi[m]
                if h == h and (v != v or v > h):
                    hi[m] = v
                l_ = lo[m]
                if l_ == l_ and (v != v or v < l_):
                    lo[m] = v

    @njit
    def rejection_min(unit, cand, index):
        """v-decodes' separation margin (decode.py, ``_separation_margin``): min over the candidate
        rows c of |u_c - (u_c . u_i) u_i| (the sine of the angle between unit rows c and i, i =
        ``index``), each a dot product and a sum of squares in index order (the generic code's BLAS
        dot and NumPy's norm may sum in another order: the same value within rounding)."""
        m = unit.shape[1]
        best = np.inf
        for t in range(cand.size):
            c = cand[t]
            q = 0.0
            for j in range(m):
                q += unit[c, j] * unit[index, j]
            ss = 0.0
            for j in range(m):
                r = unit[c, j] - q * unit[index, j]
                ss += r * r
            v = np.sqrt(ss)
            if v < best:
                best = v
        return best

    @njit
    def nonzero_per_column(A, counts):
        """counts[g] = the number of nonzero entries (a NaN counts) of A[:, g], A (n, G): the
        tolerance's operation count of a step group's samples (claims/base.py, _group_step_ops)."""
        n, G = A.shape
        for g in range(G):
            counts[g] = 0
        flat = A.reshape(n * G)
        if G == 1:
            c = 0
            for e in range(n):
                if flat[e] != 0.0:
                    c += 1
            counts[0] = c
            return
        g = 0
        for e in range(n * G):
            if flat[e] != 0.0:
                counts[g] += 1
            g += 1
            if g == G:
                g = 0

    _K.update(pair_apply_T=pair_apply_T, nonzero_per_column=nonzero_per_column, rejection_min=rejection_min,
              column_extremes=column_extremes, so_layer=so_layer, so_sweep=so_sweep, chain_segment=chain_segment,
              adjoint_segment=adjoint_segment, adjoint_pair=adjoint_pair, abs_backward_segment=abs_backward_segment,
              outer_diff_one=outer_diff_one, outer_diff_group=outer_diff_group, chain_compare=chain_compare)


_DEFINES.append(_define_kclaims)


def plain_flat(D: int, sdat: np.ndarray, six: np.ndarray, sip: np.ndarray, doff: np.ndarray) -> FlatLayers:
    """The FlatLayers of N = len(doff) - 1 layers each held whole as CSR arrays laid end to end:
    layer k's entries at positions doff[k] .. doff[k + 1] of sdat / six, its row pointers (from 0)
    at sip[k (D + 1) .. (k + 1) (D + 1)] (what :func:`flatten` makes of a plain store; the
    builder's store is written in this form directly, so nothing is copied)."""
    N = len(doff) - 1
    f = FlatLayers()
    f.N, f.D = N, D
    f.ref_ip = np.zeros(D + 1, dtype=np.int32)
    f.ref_ix = np.zeros(0, dtype=np.int32)
    f.ref_dat = np.zeros(0)
    f.whole = np.ones(N, dtype=np.uint8)
    f.row0 = np.zeros(N + 1, dtype=np.int64)
    f.rows = np.zeros(0, dtype=np.int32)
    f.sip0 = np.arange(N + 1, dtype=np.int64) * (D + 1)
    f.sip = sip
    f.doff = np.asarray(doff, dtype=np.int64)
    f.six = six
    f.sdat = sdat
    return f


