"""The layer algebra every execution is written against.

A :class:`Layers` object is the stack W_1 .. W_N of full D x D parameter matrices (index k = paper
layer k + 1, so layer ``N - 1`` acts first). It offers only what the engine and the claims need:

* ``apply(k, X)``: W_k X for a vector (D,) or a block of vectors (D, p);
* ``apply_T(k, X)``: W_k^T X (reverse mode);
* ``abs_apply(k, X)`` / ``abs_apply_T(k, X)``: |W_k| X and |W_k|^T X, the magnitudes that bound
  rounding (Higham, Sec. 3.5);
* ``row_nnz(k)``: how many additions each row of W_k performs (its nonzeros), for the per-row gamma_n
  of :mod:`universality.tolerance`;
* ``block(k, rows, cols)``: one block of W_k: a dense array on the dense backend, a SciPy CSR matrix on
  the sparse one (the telescoping products handle both);
* ``dense(k)``: W_k as a dense array (small sizes only: the reference backend and the figures).

Backends:

* :class:`DenseLayers`: a NumPy float64 N x D x D stack (the reference at small sizes);
* :class:`SparseLayers`: one general ``scipy.sparse`` CSR matrix per layer holding whatever entries the
  builder produced. Nothing here assumes which blocks are nonzero: a corrupted entry anywhere is stored
  and executed like any other.
* :class:`UpdatedLayers`: W_i' = W_i - alpha G_i for a gradient kept as its factors
  G_i = (1/K) sum_k d_i^(k) h_{i+1}^(k)T (the chain rule of a linear layer), applied as
  ``W_i u - alpha D_i (H_i^T u) / K``: the real step on every entry of every full matrix, never
  materialised.

ReLU with the ReLU'(0) = r convention: :func:`relu` and :func:`relu_grad`.

The number field: :mod:`.step` never calls NumPy's arithmetic on values directly; it asks the layers
(``layers.relu``, ``layers.relu_grad``, ``layers.zeros``, ``layers.empty``, ``layers.asarray``,
``layers.abs``, ``layers.scalar``, ``layers.maximum``). The defaults are NumPy float64; an exact
backend subclasses :class:`Layers` and overrides them (e.g. SymPy object arrays), so the same forward
pass, backprop and step run on it.
"""
from __future__ import annotations

import numpy as np


def _sp():
    """scipy.sparse, imported on first use: the dense engine (the default example) never needs it."""
    import scipy.sparse as sp

    return sp


def issparse(x) -> bool:
    """A SciPy sparse matrix? (without importing SciPy for dense arrays)"""
    return hasattr(x, "tocsr")


def relu(pre: np.ndarray) -> np.ndarray:
    return np.maximum(pre, 0.0)


def relu_grad(pre: np.ndarray, r: float) -> np.ndarray:
    """ReLU'(u) = 1 (u > 0), 0 (u < 0), r (u == 0)."""
    return np.where(pre > 0, 1.0, np.where(pre < 0, 0.0, r))


def relu_grad_mul(pre: np.ndarray, G: np.ndarray, r: float) -> np.ndarray:
    """G * relu_grad(pre, r), the same values bit for bit (signed zeros, and NaN where G or pre is
    NaN, included: a NaN pre-activation takes r, as in relu_grad) in fewer passes: backprop's
    per-layer product (about 7x faster at r = 1, where it is G * (pre >= 0 or NaN))."""
    neg = pre < 0
    if r == 1.0:
        return G * ~neg
    g = np.where(neg, 0.0, r)
    np.copyto(g, 1.0, where=pre > 0)
    return G * g


class Layers:
    """The abstract stack; subclasses supply storage."""

    kind = "abstract"
    N: int
    D: int

    # storage hooks ----------------------------------------------------------------------------
    def apply(self, k: int, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def apply_T(self, k: int, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def abs_apply(self, k: int, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def abs_apply_T(self, k: int, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def row_nnz(self, k: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def block(self, k: int, rows: slice, cols: slice):  # pragma: no cover - abstract
        raise NotImplementedError

    def dense(self, k: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply_add(self, k: int, X, out, absolute: bool = False):
        """out += W_k X (|W_k| X when ``absolute``), in place; returns out. Backends that can
        accumulate into ``out`` directly (sparse) skip the temporary."""
        out += self.abs_apply(k, X) if absolute else self.apply(k, X)
        return out

    # the number field (overridable; default NumPy float64) -----------------------------------------
    dtype = np.float64

    def relu(self, pre):
        """ReLU(pre), entrywise."""
        return relu(pre)

    def relu_grad(self, pre, r):
        """ReLU'(pre) with ReLU'(0) = r, entrywise."""
        return relu_grad(pre, r)

    def relu_grad_mul(self, pre, G, r):
        """G * ReLU'(pre) entrywise (backprop's per-layer product); float64: :func:`relu_grad_mul`."""
        if type(self).relu_grad is Layers.relu_grad and self.dtype is np.float64:
            return relu_grad_mul(pre, G, r)
        return G * self.relu_grad(pre, r)

    def zeros(self, shape):
        """A zero-filled array of field elements."""
        return np.zeros(shape, dtype=self.dtype)

    def empty(self, shape):
        """An array of field elements to be filled."""
        return np.empty(shape, dtype=self.dtype)

    def asarray(self, x):
        """x as an array of field elements (a copy is not guaranteed)."""
        return np.asarray(x, dtype=self.dtype)

    def abs(self, x):
        """|x|, entrywise."""
        return np.abs(x)

    def scalar(self, c):
        """One field element (the step size, the 1/K of a K-shot step)."""
        return float(c)

    def is_zero(self, x):
        """Entrywise x == 0 (a boolean array; an exact field may decide it symbolically)."""
        return np.asarray(x) == 0

    # derived ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.N

    def to_dense(self) -> np.ndarray:
        out = np.empty((self.N, self.D, self.D))
        for k in range(self.N):
            out[k] = self.dense(k)
        return out

    def chain(self, X, upto: int = 0, absolute: bool = False):
        """W_{upto+1} ... W_N X (no ReLU), i.e. layers N-1 .. upto applied in order."""
        f = self.abs_apply if absolute else self.apply
        out = self.abs(X) if absolute else X
        for k in range(self.N - 1, upto - 1, -1):
            out = f(k, out)
        return out

    def __getitem__(self, k: int) -> np.ndarray:
        """Layer k as a dense D x D array (small sizes: interop, figures)."""
        if not isinstance(k, (int, np.integer)):
            raise TypeError("Layers are indexed by one layer number; use block() or dense()")
        if not -self.N <= k < self.N:
            raise IndexError(k)
        return self.dense(int(k) % self.N)

    def __iter__(self):
        return (self.dense(k) for k in range(self.N))

    def __array__(self, dtype=None, copy=None):
        """The dense N x D x D stack (small sizes only; tests and figures)."""
        out = self.to_dense()
        return out if dtype is None else out.astype(dtype)

    def max_row_nnz(self) -> int:
        return max((int(self.row_nnz(k).max(initial=0)) for k in range(self.N)), default=0)

    @property
    def nbytes(self) -> int:  # pragma: no cover - overridden
        return 0


class DenseLayers(Layers):
    """A dense float64 N x D x D stack (the reference backend)."""

    kind = "dense"

    def __init__(self, W: np.ndarray):
        self.W = np.asarray(W, dtype=float)
        self.N, self.D = int(self.W.shape[0]), int(self.W.shape[1])
        self._abs = None
        self._nnz = None

    @property
    def Wabs(self) -> np.ndarray:
        if self._abs is None:
            self._abs = np.abs(self.W)
        return self._abs

    def apply(self, k, X):
        return self.W[k] @ X

    def apply_T(self, k, X):
        return self.W[k].T @ X

    def abs_apply(self, k, X):
        return self.Wabs[k] @ X

    def abs_apply_T(self, k, X):
        return self.Wabs[k].T @ X

    def row_nnz(self, k):
        if self._nnz is None:
            self._nnz = np.count_nonzero(self.W, axis=2)
        return self._nnz[k]

    def block(self, k, rows, cols):
        return self.W[k][rows, cols]

    def dense(self, k):
        return self.W[k]

    def to_dense(self):
        return self.W

    @property
    def nbytes(self) -> int:
        return int(self.W.nbytes)


_st = None


def _sparsetools():
    """SciPy's own compiled CSR kernels (called without the per-call checks of ``csr_matrix @ x``),
    or None where this SciPy does not have them (the public operator is used then)."""
    global _st
    if _st is None:
        try:
            from scipy.sparse import _sparsetools as st
        except ImportError:  # pragma: no cover
            st = False
        _st = st
    return _st or None


def _csr_apply(m, X, transpose: bool, data=None, out=None):
    """m @ X (or m.T @ X) for a canonical CSR matrix m, X (n,) or (n, p) float64; with ``out`` (a
    C-contiguous float64 array of the result's shape) the product is added into it instead.

    The CSR arrays of m read as CSC arrays are m^T, so the transpose needs no copy.
    """
    data = m.data if data is None else data
    _st = _sparsetools()
    if _st is None or m.indices.dtype != np.int32 or m.indptr.dtype != np.int32 or (
            out is not None and not (out.flags.c_contiguous and out.dtype == np.float64)):
        mat = _sp().csr_matrix((data, m.indices, m.indptr), shape=m.shape)
        Y = (mat.T @ X) if transpose else (mat @ X)
        if out is None:
            return Y
        out += Y
        return out
    X = np.ascontiguousarray(X, dtype=np.float64)
    n_row, n_col = m.shape
    out_rows = n_col if transpose else n_row
    if X.ndim == 1:
        Y = np.zeros(out_rows) if out is None else out
        (_st.csc_matvec if transpose else _st.csr_matvec)(n_col if transpose else n_row,
                                                          n_row if transpose else n_col,
                                                          m.indptr, m.indices, data, X, Y)
        return Y
    p = X.shape[1]
    Y = np.zeros((out_rows, p)) if out is None else out
    if transpose:
        _st.csc_matvecs(n_col, n_row, p, m.indptr, m.indices, data, X.ravel(), Y.ravel())
    else:
        _st.csr_matvecs(n_row, n_col, p, m.indptr, m.indices, data, X.ravel(), Y.ravel())
    return Y


# _encode_chunk compares a layer run by run (slices) when at most this many of its rows have another
# length than the reference's, entry by entry (gathers) above
_RUNS_MAX = 64


def _bits(a: np.ndarray) -> np.ndarray:
    """float64 values as their bit patterns (so -0.0 != 0.0 and a NaN equals only itself)."""
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


# SparseLayers holds one plain CSR matrix per layer while they take at most this many bytes (fastest:
# one compiled product per call, |W|'s values cached), and the shared-row store above (J = L = 128's
# 8.7 GB of CSR arrays; J = L = 64's 0.55 GB stays plain)
SHARE_ROWS_ABOVE_BYTES = 1 << 30


def csr_bytes(N: int, D: int, nnz: int) -> int:
    """Bytes of N plain CSR layers of width D with ``nnz`` nonzeros in all (int32 indices): 8 + 4
    per nonzero, 4 per row pointer, plus |W|'s cached values (8 per nonzero)."""
    return 20 * int(nnz) + 4 * N * (D + 1)


class _CSR:
    """The three arrays of a canonical CSR matrix, without SciPy's per-object checks (a layer's stored
    rows; :func:`_csr_apply` reads nothing else). ``csr()`` makes the SciPy matrix."""

    __slots__ = ("data", "indices", "indptr", "shape")

    def __init__(self, data, indices, indptr, shape):
        self.data, self.indices, self.indptr, self.shape = data, indices, indptr, shape

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1] - self.indptr[0])

    def csr(self):
        ip = self.indptr
        a = int(ip[0])
        out = _sp().csr_matrix((self.data[a:int(ip[-1])], self.indices[a:int(ip[-1])], ip - a), shape=self.shape)
        out.has_canonical_format = True
        return out


def _rows_csr(m, rows: np.ndarray) -> _CSR:
    """The rows ``rows`` (sorted) of the canonical CSR matrix m as a canonical CSR (len(rows), n)."""
    ip = m.indptr
    starts, ends = ip[rows], ip[rows + 1]
    lens = (ends - starts).astype(np.int64)
    sub_ip = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(lens, out=sub_ip[1:])
    total = int(sub_ip[-1])
    # entry positions: starts[r] + 0 .. lens[r] - 1 for every row r, concatenated
    pos = np.arange(total, dtype=np.int64) - np.repeat(sub_ip[:-1] - starts, lens)
    return _CSR(m.data[pos], m.indices[pos].astype(np.int32, copy=False), sub_ip.astype(np.int32),
                (rows.size, m.shape[1]))


def _differing_rows(m, ref) -> np.ndarray:
    """The rows of the canonical CSR matrix m that differ from the same rows of ``ref`` in their
    pattern or in any value's bit pattern (so every entry of m outside these rows equals ref's)."""
    la, lb = np.diff(m.indptr), np.diff(ref.indptr)
    same_len = la == lb
    # compare entry by entry where the rows have the same length: entry p of row j against ref's
    lens = np.where(same_len, la, 0).astype(np.int64)
    rows = np.repeat(np.arange(m.shape[0]), lens)
    off = np.arange(int(lens.sum()), dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    pa = m.indptr[rows].astype(np.int64) + off
    pb = ref.indptr[rows].astype(np.int64) + off
    bad = (m.indices[pa] != ref.indices[pb]) | (_bits(m.data)[pa] != _bits(ref.data)[pb])
    differ = ~same_len
    if bad.any():
        differ[rows[bad]] = True
    return np.flatnonzero(differ).astype(np.int32)


class _LayerList:
    """``layers.mats``: layer k as a canonical CSR matrix (formed from the store on access: a copy, so
    edit it and assign it back), ``layers.mats[k] = m`` to replace a layer (any entries)."""

    def __init__(self, owner):
        self._o = owner

    def __len__(self):
        return self._o.N

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self._o.N))]
        return self._o.layer_csr(int(k) % self._o.N)

    def __setitem__(self, k, m):
        self._o.set_layer(int(k) % self._o.N, m)

    def __iter__(self):
        return (self[k] for k in range(self._o.N))


class SparseLayers(Layers):
    """One general sparse D x D matrix per layer (whatever entries the builder produced), stored
    against a shared reference matrix.

    Storage (nothing assumed about the entries): one canonical CSR *reference* matrix R (a layer of
    the stack), and per layer k the sorted list of rows in which W_k differs from R (pattern or the
    bit pattern of any value) with those rows of W_k as a small CSR matrix; a layer that differs from
    R in more than half of its rows is stored whole. Every entry of every layer is stored exactly: a
    corrupted entry anywhere makes its row a stored row and is executed like any other. A deep
    network whose layers repeat most of their rows (the paper layout: the identity on the top and
    bottom channels, the same Wbar entries away from the two channels a layer switches) costs its
    reference plus a few rows per layer, instead of N full matrices (at J = L = 128: about 8.7 GB of
    CSR arrays against a few MB).

    Products: ``W_k X`` is R X with the stored rows replaced by the stored rows' products (the same
    operations, in the same order, as W_k's own CSR product: the same values bit for bit); ``W_k^T X``
    is R^T X' + S_k^T X[rows] with X' = X zeroed on the stored rows (the same terms, another order of
    addition). |W_k| is never stored: |R|'s values once (D-ish numbers), a stored row's absolute values
    on the fly.
    """

    kind = "sparse"

    #: a layer differing from the reference in more than this fraction of its rows is stored whole
    WHOLE_FRACTION = 0.5

    def __init__(self, mats, D: int | None = None, *, _canonical: bool = False, reference: int | None = None,
                 shared: bool | None = None):
        sp = _sp()
        canon = []
        for m in mats:
            if not _canonical:  # (from_triplets hands over canonical float64 CSR matrices it owns)
                m = sp.csr_matrix(m, dtype=float)
                m.sum_duplicates()  # canonical: sorted, no duplicate entries
            canon.append(m)
        self.N = len(canon)
        self.D = int(D if D is not None else canon[0].shape[0])
        self._ref = None
        self._store: list = []
        self._mats = None  # plain mode: one canonical CSR matrix per layer
        self._abs = None
        self._flat = None  # the compiled kernels' flat form (engine/kernels.py), built on first use
        if shared is None:
            shared = csr_bytes(self.N, self.D, sum(m.nnz for m in canon)) > SHARE_ROWS_ABOVE_BYTES
        if not shared:
            self._mats = [_light(_as_int32(m)) for m in canon]
            return
        if canon:
            self._set_reference(canon[self.N // 2 if reference is None else reference])
        for m in canon:
            self._store.append(self._encode(_as_int32(m)))

    @property
    def shared(self) -> bool:
        """Whether the layers are held as the shared-row store (else one CSR matrix per layer)."""
        return self._mats is None

    # ---- storage ---------------------------------------------------------------------------------
    def _set_reference(self, m):
        sp = _sp()
        a, b = int(m.indptr[0]), int(m.indptr[-1])
        ref = sp.csr_matrix((np.array(m.data[a:b], dtype=float), np.array(m.indices[a:b], dtype=np.int32),
                             np.array(m.indptr, dtype=np.int64) - a), shape=(self.D, self.D))
        ref = _as_int32(ref)
        ref.has_canonical_format = True
        self._ref = ref
        self._ref_abs = np.abs(ref.data)
        self._ref_row_nnz = np.diff(ref.indptr)

    def _encode(self, m):
        """A layer's stored form: ("rows", rows, S) with S its rows that differ from the reference, or
        ("whole", m)."""
        rows = _differing_rows(m, self._ref)
        if rows.size > self.WHOLE_FRACTION * self.D:
            a, b = int(m.indptr[0]), int(m.indptr[-1])
            return ("whole", _CSR(np.array(m.data[a:b], dtype=float), np.array(m.indices[a:b], dtype=np.int32),
                                  (m.indptr - a).astype(np.int32), (self.D, self.D)))
        return ("rows", rows, _rows_csr(m, rows))

    def _encode_chunk(self, big, n: int):
        """Encode n layers stacked as one tall canonical CSR (n D, D) at once (the builder's chunks)."""
        D, ref = self.D, self._ref
        ip = big.indptr
        from . import kernels

        if getattr(self, "_compiled_build", False):  # the same rows, from one compiled pass over the chunk
            differ = kernels.differing_rows(ip, big.indices, big.data, ref, D).view(bool)
            return self._store_chunk(big, n, differ)
        la = np.diff(ip)
        lb = np.tile(self._ref_row_nnz, n)
        same = la == lb
        # A layer with few rows of another length than the reference's (the paper layout: a handful) is
        # compared a run of equal-length rows at a time: their entries are contiguous and aligned in
        # both arrays, so one slice comparison covers the run (no per-entry gather: 11 of the build's
        # 19 s at J = L = 96). Layers with many such rows take the per-entry comparison below. The same
        # rows differ either way: those of another length, and those with an entry whose column or
        # bits differ.
        fast = np.zeros(n, dtype=bool)
        differ_fast: list = []
        mism = np.flatnonzero(~same)
        cut = np.searchsorted(mism, np.arange(n + 1) * D)
        big_bits, ref_bits = _bits(big.data), _bits(ref.data)
        rip = ref.indptr
        for k in range(n):
            rows_k = mism[cut[k]:cut[k + 1]] - k * D
            if rows_k.size > _RUNS_MAX:
                continue
            fast[k] = True
            found = [rows_k]
            for s0, s1 in zip(np.concatenate([[0], rows_k + 1]), np.concatenate([rows_k, [D]])):
                if s1 <= s0:
                    continue
                a0, a1 = int(ip[k * D + s0]), int(ip[k * D + s1])
                if a1 == a0:
                    continue
                b0 = int(rip[s0])
                bad = np.flatnonzero((big.indices[a0:a1] != ref.indices[b0:b0 + a1 - a0])
                                     | (big_bits[a0:a1] != ref_bits[b0:b0 + a1 - a0]))
                if bad.size:
                    found.append(np.searchsorted(ip[k * D + s0:k * D + s1 + 1], a0 + bad, side="right") - 1 + s0)
            differ_fast.append(k * D + np.unique(np.concatenate(found)))
        slow_rows = np.repeat(~fast, D)
        lens = np.where(same & slow_rows, la, 0).astype(np.int64)
        rows_e = np.repeat(np.arange(n * D), lens)
        off = np.arange(int(lens.sum()), dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
        pa = ip[rows_e].astype(np.int64) + off
        pb = ref.indptr[rows_e % D].astype(np.int64) + off
        bad = (big.indices[pa] != ref.indices[pb]) | (_bits(big.data)[pa] != _bits(ref.data)[pb])
        differ = ~same
        differ[rows_e[bad]] = True
        del rows_e, off, pa, pb, bad
        if differ_fast:
            differ[np.concatenate(differ_fast)] = True
        self._store_chunk(big, n, differ)

    def _store_chunk(self, big, n: int, differ: np.ndarray):
        """Append the n layers of the stacked chunk ``big`` to the store, given which of its rows
        differ from the reference."""
        D, ip = self.D, big.indptr
        drows = np.flatnonzero(differ)
        cuts = np.searchsorted(drows, np.arange(n + 1) * D)
        S_all = _rows_csr(big, drows)
        for k in range(n):
            c0, c1 = int(cuts[k]), int(cuts[k + 1])
            if c1 - c0 > self.WHOLE_FRACTION * D:
                a, b = int(ip[k * D]), int(ip[(k + 1) * D])
                self._store.append(("whole", _CSR(np.array(big.data[a:b]), np.array(big.indices[a:b]),
                                                  (ip[k * D:(k + 1) * D + 1] - a).astype(np.int32), (D, D))))
            else:
                self._store.append(("rows", (drows[c0:c1] - k * D).astype(np.int32),
                                    _CSR(S_all.data, S_all.indices, S_all.indptr[c0:c1 + 1], (c1 - c0, D))))

    def set_layer(self, k: int, m):
        """Replace layer k by the matrix m (any entries; dense or sparse)."""
        m = _sp().csr_matrix(m, dtype=float)
        m.sum_duplicates()
        self._flat = None
        if self._mats is not None:
            self._mats[k] = _light(_as_int32(m))
            self._abs = None
            return
        self._store[k] = self._encode(_as_int32(m))

    def layer_csr(self, k: int, a: int = 0, b: int | None = None):
        """Rows a..b-1 of layer k (default: all of it) as one canonical CSR matrix (formed from the
        store: a fresh copy)."""
        b = self.D if b is None else b
        if self._mats is not None:
            m = self._mats[k].csr()
            return m.copy() if (a, b) == (0, self.D) else m[a:b]
        s = self._store[k]
        if s[0] == "whole":
            return s[1].csr()[a:b] if (a, b) != (0, self.D) else s[1].csr().copy()
        _, rows, S = s
        lo, hi = np.searchsorted(rows, [a, b])
        ref = self._ref if (a, b) == (0, self.D) else self._ref[a:b]
        if lo == hi:
            return ref.copy()
        rows = rows[lo:hi] - a
        S = _CSR(S.data, S.indices, S.indptr[lo:hi + 1], (hi - lo, self.D))
        n = b - a
        lens = np.diff(ref.indptr).astype(np.int64)
        lens[rows] = np.diff(S.indptr)
        ip = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=ip[1:])
        keep = np.ones(n, dtype=bool)
        keep[rows] = False
        data = np.empty(int(ip[-1]))
        idx = np.empty(int(ip[-1]), dtype=np.int32)
        kr = _rows_csr(ref, np.flatnonzero(keep))
        # scatter: the kept rows' entries, then the stored rows' entries, at their row's offsets
        for part, where in ((kr, np.flatnonzero(keep)), (S, rows)):
            plen = np.diff(part.indptr).astype(np.int64)
            dst = np.repeat(ip[where], plen) + (np.arange(part.nnz) + int(part.indptr[0])
                                                - np.repeat(part.indptr[:-1].astype(np.int64), plen))
            p0, p1 = int(part.indptr[0]), int(part.indptr[-1])
            data[dst], idx[dst] = part.data[p0:p1], part.indices[p0:p1]
        out = _sp().csr_matrix((data, idx, ip.astype(np.int32) if ip[-1] < 2**31 else ip), shape=(n, self.D))
        out.has_canonical_format = True
        return out

    def row_diff(self, k: int):
        """(reference, rows, S) when layer k is held as the shared reference (a canonical SciPy CSR
        matrix shared by every such layer: read only) with its rows ``rows`` (sorted) replaced by the
        rows of S (a canonical ``_CSR`` of len(rows) rows whose indptr may start past 0), else None
        (held whole, or plain mode). For readers that walk every layer once (the telescoping), at the
        cost of the stored rows rather than of D."""
        if self._mats is not None:
            return None
        s = self._store[k]
        if s[0] != "rows":
            return None
        return self._ref, s[1], s[2]

    def layer_arrays(self, k: int):
        """(indptr, indices, data) of layer k when it is held as one CSR (plain mode, or stored whole;
        indptr indexes into the two arrays, possibly from past 0): read only; else None."""
        m = self._mats[k] if self._mats is not None else (self._store[k][1] if self._store[k][0] == "whole" else None)
        return None if m is None else (m.indptr, m.indices, m.data)

    @property
    def mats(self) -> _LayerList:
        return _LayerList(self)

    def stored_rows(self, k: int) -> int:
        """How many rows of layer k are stored apart from the reference (D when stored whole)."""
        if self._mats is not None:
            return self.D
        s = self._store[k]
        return self.D if s[0] == "whole" else int(s[1].size)

    @classmethod
    def from_triplets(cls, triplets, D: int, chunk_entries: int = 1 << 21, shared: bool | None = None,
                      expected_nnz: int | None = None, N: int | None = None) -> "SparseLayers":
        """Layers from (rows, cols, values) per layer (duplicates summed, as a COO matrix would):
        the layers are stacked into one tall (n D) x D COO matrix per chunk of about
        ``chunk_entries`` entries and converted once, then split by rows and encoded against the
        reference (the middle layer of the first chunk), so that a deep network pays SciPy's
        conversion per chunk rather than per layer and never holds more than one chunk's full CSR
        arrays. Nothing is assumed about the entries.

        ``shared``: the shared-row store (True) or one plain CSR matrix per layer (False); default:
        shared when ``expected_nnz`` (the builder's count) in plain CSR would exceed
        :data:`SHARE_ROWS_ABOVE_BYTES`, plain without a count. ``N``: the number of layers, when known:
        the conversion and encoding are compiled where the kernels will run the layers
        (engine/kernels.py ``wanted``), else wherever Numba is enabled."""
        sp = _sp()
        out = cls([], D, shared=True)
        if shared is None:
            shared = expected_nnz is not None and csr_bytes(0, D, expected_nnz) > SHARE_ROWS_ABOVE_BYTES
        plain: list | None = None if shared else []
        buf: list = []

        from . import kernels

        # the compiled conversion where the kernels will run the layers (N given: engine/kernels.py's
        # size rule; else wherever Numba is enabled)
        compiled = kernels.wanted(N, D) if N is not None else kernels.enabled()
        out._compiled_build = compiled
        # a plain store converted by the kernels is written into one flat form (the compiled kernels'
        # FlatLayers, engine/kernels.py) sized by the builder's count: its layers are views of it and
        # nothing is copied when the kernels first run (a copy of J = L = 64's 0.4 GB of CSR arrays
        # cost 1-2 s, mostly page faults); where the count is short the layers keep their chunks' arrays
        direct = {"pos": 0, "doff": [0], "sip": []} if (compiled and plain is not None and expected_nnz) else None
        if direct is not None:
            direct["dat"] = np.empty(int(expected_nnz))
            direct["ix"] = np.empty(int(expected_nnz), dtype=np.int32)

        def flush_direct(n) -> bool:
            pos, cap = direct["pos"], direct["dat"].size
            entries = sum(len(v) for _, _, v in buf)
            if pos + entries > cap:
                return False
            ip, _, _ = kernels.coo_to_csr(buf, D, out=(direct["ix"][pos:], direct["dat"][pos:]))
            starts = ip[:-1:D] if n else ip[:0]
            rel = ip[(np.arange(n) * D)[:, None] + np.arange(D + 1)[None, :]] - starts[:, None]
            direct["sip"].append(rel.astype(np.int32).reshape(-1))
            direct["doff"].extend((pos + ip[D::D]).tolist())
            direct["pos"] = pos + int(ip[-1])
            buf.clear()
            return True

        def direct_layers():
            """The layers written so far into the flat form, as views of it: (doff, sip)."""
            doff = np.asarray(direct["doff"], dtype=np.int64)
            sip = np.concatenate(direct["sip"]) if direct["sip"] else np.zeros(0, dtype=np.int32)
            sdat, six = direct["dat"][:int(doff[-1])], direct["ix"][:int(doff[-1])]
            ends = doff.tolist()
            for k in range(len(ends) - 1):
                a, b = ends[k], ends[k + 1]
                plain.append(_CSR(sdat[a:b], six[a:b], sip[k * (D + 1):(k + 1) * (D + 1)], (D, D)))
            return sdat, six, sip, doff

        def flush():
            if not buf:
                return
            n = len(buf)
            if direct is not None and not direct.get("off"):
                if flush_direct(n):
                    return
                direct_layers()  # the builder's count was short: the rest as chunks of their own
                direct["off"] = True
            if compiled:  # the same canonical CSR arrays from one compiled pass (engine/kernels.py)
                ip, idx32, data = kernels.coo_to_csr(buf, D)
                big = _CSR(data, idx32, ip, (n * D, D))
            else:
                off = [k * D for k in range(n)]
                big = sp.csr_matrix((np.concatenate([v for _, _, v in buf]).astype(float, copy=False),
                                     (np.concatenate([np.asarray(r) + o for (r, _, _), o in zip(buf, off)]),
                                      np.concatenate([c for _, c, _ in buf]))), shape=(n * D, D))
                big.sum_duplicates()
            ip = big.indptr
            idx32 = big.indices.astype(np.int32, copy=False)
            if plain is not None:
                ip32 = ip.astype(np.int32, copy=False)
                for k in range(n):  # rows of a summed, sorted CSR matrix: canonical (views of the chunk)
                    a, b = int(ip[k * D]), int(ip[(k + 1) * D])
                    plain.append(_CSR(big.data[a:b], idx32[a:b], ip32[k * D:(k + 1) * D + 1] - a, (D, D)))
                buf.clear()
                return
            if out._ref is None:
                h = n // 2
                out._set_reference(_CSR(big.data, idx32, ip[h * D:(h + 1) * D + 1], (D, D)))
            out._encode_chunk(_CSR(big.data, idx32, ip, (n * D, D)), n)
            buf.clear()

        count = 0
        for r, c, v in triplets:
            buf.append((r, c, v))
            count += len(v)
            if count >= chunk_entries:
                flush()
                count = 0
        flush()
        if plain is not None:
            out = cls([], D, shared=False)
            if direct is not None and not direct.get("off"):
                out._flat = kernels.plain_flat(D, *direct_layers())
            out._mats, out.N = plain, len(plain)
            return out
        out.N = len(out._store)
        return out

    @classmethod
    def from_dense(cls, W) -> "SparseLayers":
        W = np.asarray(W, dtype=float)
        return cls([_sp().csr_matrix(W[k]) for k in range(W.shape[0])], W.shape[1])

    # ---- products --------------------------------------------------------------------------------
    def _absdata(self, k):
        """|W_k|'s values (plain mode: cached, sharing W_k's index arrays)."""
        if self._abs is None:
            self._abs = [None] * self.N
        a = self._abs[k]
        if a is None:
            a = self._abs[k] = np.abs(self._mats[k].data)
        return a

    def _product(self, k, X, transpose: bool, absolute: bool, out=None):
        s = self._store[k]
        if s[0] == "whole":
            m = s[1]
            return _csr_apply(m, X, transpose, np.abs(m.data) if absolute else None, out=out)
        _, rows, S = s
        ref = self._ref
        rdata = self._ref_abs if absolute else None
        sdata = np.abs(S.data) if absolute else None
        if rows.size == 0:
            return _csr_apply(ref, X, transpose, rdata, out=out)
        if transpose:
            Xm = np.array(X, dtype=np.float64, order="C")
            Xr = np.ascontiguousarray(Xm[rows])
            Xm[rows] = 0.0
            Y = _csr_apply(ref, Xm, True, rdata, out=out)
            return _csr_apply(S, Xr, True, sdata, out=Y)
        if out is None:
            Y = _csr_apply(ref, X, False, rdata)
            Y[rows] = _csr_apply(S, X, False, sdata)
            return Y
        keep = np.ascontiguousarray(out[rows])  # the stored rows start from out's own values
        _csr_apply(ref, X, False, rdata, out=out)
        out[rows] = _csr_apply(S, X, False, sdata, out=keep)
        return out

    def apply(self, k, X):
        if self._mats is not None:
            return _csr_apply(self._mats[k], X, False)
        return self._product(k, X, False, False)

    def apply_T(self, k, X):
        if self._mats is not None:
            return _csr_apply(self._mats[k], X, True)
        return self._product(k, X, True, False)

    def abs_apply(self, k, X):
        if self._mats is not None:
            return _csr_apply(self._mats[k], X, False, self._absdata(k))
        return self._product(k, X, False, True)

    def abs_apply_T(self, k, X):
        if self._mats is not None:
            return _csr_apply(self._mats[k], X, True, self._absdata(k))
        return self._product(k, X, True, True)

    def apply_add(self, k, X, out, absolute=False):
        if self._mats is not None:
            return _csr_apply(self._mats[k], X, False, self._absdata(k) if absolute else None, out=out)
        if not (out.flags.c_contiguous and out.dtype == np.float64):
            out += self._product(k, X, False, absolute)
            return out
        return self._product(k, X, False, absolute, out=out)

    def row_nnz(self, k):
        if self._mats is not None:
            return np.diff(self._mats[k].indptr)
        s = self._store[k]
        if s[0] == "whole":
            return np.diff(s[1].indptr)
        _, rows, S = s
        if rows.size == 0:
            return self._ref_row_nnz
        out = self._ref_row_nnz.copy()
        out[rows] = np.diff(S.indptr)
        return out

    def block(self, k, rows, cols):
        if self._mats is not None:
            return self._mats[k].csr()[rows, cols]
        if isinstance(rows, slice):
            a, b, step = rows.indices(self.D)
            if step == 1:
                return self.layer_csr(k, a, max(a, b))[:, cols]
        return self.layer_csr(k)[rows, cols]

    def dense(self, k):
        return self.layer_csr(k).toarray()

    @property
    def nbytes(self) -> int:
        if self._mats is not None:
            return int(sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in self._mats)
                       + sum(a.nbytes for a in (self._abs or []) if a is not None))
        ref = self._ref
        total = 0 if ref is None else ref.data.nbytes * 2 + ref.indices.nbytes + ref.indptr.nbytes * 2
        for s in self._store:  # (a chunk's stored rows share one array: count each layer's part)
            m = s[1] if s[0] == "whole" else s[2]
            total += 12 * m.nnz + 4 * len(m.indptr) + (0 if s[0] == "whole" else s[1].nbytes)
        return int(total)

    def nnz(self) -> int:
        if self._mats is not None:
            return int(sum(m.nnz for m in self._mats))
        total = 0
        for s in self._store:
            if s[0] == "whole":
                total += s[1].nnz
            else:
                total += self._ref.nnz - int(self._ref_row_nnz[s[1]].sum()) + s[2].nnz
        return int(total)


# SparseLayers' own operations as the class defines them: the compiled kernels (engine/kernels.py)
# compute what these compute, and run only while a layer stack's operations are still these (a
# replaced one, such as a test's planted backprop bug, is run by the generic code that calls it)
KERNEL_OPS = {name: getattr(SparseLayers, name) for name in
              ("apply", "apply_T", "abs_apply", "abs_apply_T", "apply_add", "relu", "relu_grad", "relu_grad_mul")}


def _light(m) -> "_CSR":
    """A canonical int32 SciPy CSR matrix as a :class:`_CSR` (its own arrays, indptr from 0)."""
    return _CSR(m.data, m.indices, m.indptr, m.shape)


def _as_int32(m):
    """m with int32 index arrays (the compiled kernels' type) when its entries allow."""
    if m.indices.dtype == np.int32 and m.indptr.dtype == np.int32:
        return m
    if m.nnz >= 2**31:  # pragma: no cover - beyond any layer here
        return m
    out = _sp().csr_matrix((m.data, m.indices.astype(np.int32), m.indptr.astype(np.int32)), shape=m.shape)
    out.has_canonical_format = True
    return out


class UpdatedLayers(Layers):
    """W_i' = W_i + coef * D_i H_i^T with the gradient's factors D_i, H_i (D x K each).

    ``coef`` is -alpha / K: the step averages the K rank-one gradients d_i h_{i+1}^T of the K examples.
    |W_i'| is bounded entrywise by |W_i| + |coef| |D_i| |H_i|^T, which is what ``abs_apply`` returns
    (an upper bound on the rounding magnitude, so the tolerances stay valid).
    """

    def __init__(self, base: Layers, Dfac: list, Hfac: list, coef: float):
        self.base, self.Dfac, self.Hfac, self.coef = base, Dfac, Hfac, base.scalar(coef)
        self.N, self.D = base.N, base.D
        self.kind = base.kind
        self.dtype = base.dtype

    # the number field is the base layers' field
    def relu(self, pre):
        return self.base.relu(pre)

    def relu_grad(self, pre, r):
        return self.base.relu_grad(pre, r)

    def zeros(self, shape):
        return self.base.zeros(shape)

    def empty(self, shape):
        return self.base.empty(shape)

    def asarray(self, x):
        return self.base.asarray(x)

    def abs(self, x):
        return self.base.abs(x)

    def scalar(self, c):
        return self.base.scalar(c)

    def is_zero(self, x):
        return self.base.is_zero(x)

    def delta_apply(self, k, X):
        """(W_k' - W_k) X = coef * D_k (H_k^T X)."""
        if self.Dfac.shape[2] == 1:
            return np.multiply.outer(self.coef * self.Dfac[k, :, 0], self.Hfac[k, :, 0] @ X)
        return self.coef * (self.Dfac[k] @ (self.Hfac[k].T @ X))

    def apply(self, k, X):
        return self.base.apply(k, X) + self.delta_apply(k, X)

    def apply_T(self, k, X):
        return self.base.apply_T(k, X) + self.coef * (self.Hfac[k] @ (self.Dfac[k].T @ X))

    def abs_apply(self, k, X):
        if self.Dfac.shape[2] == 1:
            return self.base.abs_apply(k, X) + np.multiply.outer(abs(self.coef) * np.abs(self.Dfac[k, :, 0]),
                                                                np.abs(self.Hfac[k, :, 0]) @ X)
        return self.base.abs_apply(k, X) + abs(self.coef) * (np.abs(self.Dfac[k]) @ (np.abs(self.Hfac[k]).T @ X))

    def abs_apply_T(self, k, X):
        return self.base.abs_apply_T(k, X) + abs(self.coef) * (np.abs(self.Hfac[k]) @ (np.abs(self.Dfac[k]).T @ X))

    def row_nnz(self, k):
        return self.base.row_nnz(k) + self.Dfac[k].shape[1]

    def grad(self, k) -> np.ndarray:
        """The dense gradient G_k = D_k H_k^T / K (small sizes only)."""
        return (self.Dfac[k] @ self.Hfac[k].T) / self.Dfac[k].shape[1]

    def dense(self, k):
        return self.base.dense(k) + self.coef * (self.Dfac[k] @ self.Hfac[k].T)


# UpdatedLayers' own operations (the compiled passes through updated layers compute these; one whose
# operations were replaced runs the generic code)
UPDATED_OPS = {name: getattr(UpdatedLayers, name) for name in
               ("apply", "abs_apply", "delta_apply", "relu", "abs", "asarray")}


def as_layers(W) -> Layers:
    """The Layers view of a construction's weights (a dense stack or already a Layers object)."""
    if isinstance(W, Layers):
        return W
    return DenseLayers(W)


def to_sparse(W) -> SparseLayers:
    if isinstance(W, SparseLayers):
        return W
    if isinstance(W, Layers):
        return SparseLayers([_sp().csr_matrix(W.dense(k)) for k in range(W.N)], W.D)
    return SparseLayers.from_dense(W)


def lowrank_max_abs(P: np.ndarray, Q: np.ndarray, chunk: int = 1 << 22) -> float:
    """max |(P Q^T)_ij| over every entry, exactly, for P (D, K) and Q (D', K).

    Only rows of P and Q with a nonzero entry can give a nonzero product, so the dense block
    P[rows] Q[cols]^T is formed on those supports alone, in chunks of at most ``chunk`` entries:
    the gradient of a full D x D layer is searched entry by entry without being held.
    """
    P = np.asarray(P, dtype=float).reshape(P.shape[0], -1)
    Q = np.asarray(Q, dtype=float).reshape(Q.shape[0], -1)
    if P.shape[1] == 1:  # an outer product: max |p_i q_j| = max|p| max|q|
        return float(np.abs(P).max(initial=0.0) * np.abs(Q).max(initial=0.0))
    rows = np.flatnonzero(np.any(P != 0, axis=1))
    cols = np.flatnonzero(np.any(Q != 0, axis=1))
    if rows.size == 0 or cols.size == 0:
        return 0.0
    Pr, Qc = P[rows], Q[cols]
    step = max(1, chunk // max(cols.size, 1))
    out = 0.0
    for s in range(0, rows.size, step):
        out = max(out, float(np.abs(Pr[s:s + step] @ Qc.T).max(initial=0.0)))
    return out


def lowrank_max_abs_all(P: np.ndarray, Q: np.ndarray, max_cols: int = 16, chunk: int = 1 << 20) -> np.ndarray:
    """For every layer k: max |(P[k] Q[k]^T)_ij| (N,), exactly, for P (N, D, K) and Q (N, D', K).

    What :func:`lowrank_max_abs` computes layer by layer, vectorised over the layers whose Q has at
    most ``max_cols`` nonzero rows (a layer's input is mostly zero in the construction: only those
    columns of the gradient can be nonzero); the others one by one."""
    P = np.asarray(P, dtype=float)
    Q = np.asarray(Q, dtype=float)
    N, D = P.shape[0], P.shape[1]
    out = np.zeros(N)
    supp = np.any(Q != 0, axis=2)
    ncols = supp.sum(axis=1)
    small = np.flatnonzero((ncols > 0) & (ncols <= max_cols))
    if small.size:
        c = int(ncols[small].max())
        cols = np.empty((small.size, c), dtype=np.intp)
        for n, k in enumerate(small):  # padded: repeat the first supported column to width c
            idx = np.flatnonzero(supp[k])
            cols[n, :idx.size] = idx
            cols[n, idx.size:] = idx[0]
        step = max(1, chunk // max(D * c, 1))
        for s0 in range(0, small.size, step):
            ks = small[s0:s0 + step]
            Qc = np.take_along_axis(Q[ks], cols[s0:s0 + step, :, None], axis=1)  # (n, c, K)
            prod = np.matmul(P[ks], Qc.transpose(0, 2, 1))  # (n, D, c): the supported columns
            np.abs(prod, out=prod)
            out[ks] = prod.max(axis=(1, 2), initial=0.0)
    for k in np.flatnonzero(ncols > max_cols):
        out[k] = lowrank_max_abs(P[k], Q[k])
    return out


def outer_diff_max_abs(p, q, a, b) -> float:
    """max |p_i q_j - a_i b_j| over every entry of the two outer products, exactly."""
    return lowrank_max_abs(np.column_stack([p, -np.asarray(a, dtype=float)]), np.column_stack([q, b]))


def outer_diff_max_abs_all(P, Q, A, B, max_cols: int = 16, chunk: int = 1 << 20) -> np.ndarray:
    """For every layer k: max_ij |P[k,i] Q[k,j] - A[k,i] B[k,j]| (N,), exactly.

    P, A: (N, D) output-side factors; Q, B: (N, D) input-side factors. Only columns j where Q or B is
    nonzero can contribute; layers with at most ``max_cols`` such columns are done together
    (vectorised over layers), the others one by one with :func:`outer_diff_max_abs`.
    """
    from .checkpoint import is_lazy, reduce_columns

    if any(is_lazy(v) for v in (P, Q, A, B)):  # checkpointed: a segment at a time, the group's samples together
        def step(out, k0, k1, parts):
            out[k0:k1] = outer_diff_max_abs_all(*parts, max_cols=max_cols, chunk=chunk)
            return out

        return reduce_columns(("outer diff", max_cols, chunk), (P, Q, A, B), lambda: np.zeros(len(P)), step)
    P, Q, A, B = (np.asarray(v, dtype=float) for v in (P, Q, A, B))
    N, D = P.shape
    out = np.zeros(N)
    # a layer whose two factor pairs are equal entry for entry has every difference exactly 0: only
    # the other layers are searched (the search below is exact; this only skips proven zeros)
    differ = np.flatnonzero(np.any(P != A, axis=1) | np.any(Q != B, axis=1))
    if differ.size < N:
        if differ.size:
            out[differ] = outer_diff_max_abs_all(P[differ], Q[differ], A[differ], B[differ], max_cols, chunk)
        return out
    supp = (Q != 0) | (B != 0)
    ncols = supp.sum(axis=1)
    small = np.flatnonzero(ncols <= max_cols)
    c = int(ncols[small].max(initial=0)) if small.size else 0
    if small.size and c > 0:
        # padded column lists: repeat the first supported column (or column 0) to width c
        cols = np.zeros((small.size, c), dtype=np.intp)
        for n, k in enumerate(small):
            idx = np.flatnonzero(supp[k])
            if idx.size:
                cols[n, :idx.size] = idx
                cols[n, idx.size:] = idx[0]
        step = max(1, chunk // max(D * c, 1))
        for s0 in range(0, small.size, step):
            ks = small[s0:s0 + step]
            cc = cols[s0:s0 + step]
            Qc = np.take_along_axis(Q[ks], cc, axis=1)
            Bc = np.take_along_axis(B[ks], cc, axis=1)
            diff = P[ks][:, :, None] * Qc[:, None, :]
            diff -= A[ks][:, :, None] * Bc[:, None, :]
            np.abs(diff, out=diff)
            out[ks] = diff.max(axis=(1, 2))
    for k in np.flatnonzero(ncols > max_cols):
        out[k] = outer_diff_max_abs(P[k], Q[k], A[k], B[k])
    return out
