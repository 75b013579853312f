"""A_i, B_i, prod wcheck_i and the kernels k_i recovered from given weights (paper App. A.3).

The paper defines, from the blocks of W_i = blockdiag(Wtilde_i, Wbar_i, wcheck_i),

    A_i := (Wbar_1 ... Wbar_{i-1}) (Wbar_1 ... Wbar_{i-1})^T   (output side, A_1 = I),
    B_i := Wtilde_{i+1} ... Wtilde_N                           (input side,  B_N = I),

and the kernel k_i(x, x*) = phi~(x)^T B_i^T B_i phi~(x*; theta_b'). Everything here is computed from
the weight array alone (the builder's chosen A_i and B_i are never read), so it serves the claims of a
construction built here and ``verify-construction --check`` for one built elsewhere.

The middle products stay diagonal vectors while every Wbar_i is diagonal (the construction's case) and
switch to dense matrices at the first off-diagonal entry, so a corrupted weight is still multiplied in.
The top products B_i are dense arrays up to width :data:`DENSE_TOP_MAX` and SciPy CSR matrices above
(a wide top block: the compact layout at large J, L); every stored entry of every block is multiplied
in either way, nothing is assumed about which are nonzero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


DENSE_TOP_MAX = 512  # top products up to this width as dense arrays, sparse (CSR) above


def _issparse(M) -> bool:
    return hasattr(M, "tocsr")


def _is_diag(M: np.ndarray) -> bool:
    """Every nonzero of the square block M on its diagonal (one counting pass, no copy)."""
    return int(np.count_nonzero(M)) == int(np.count_nonzero(np.diagonal(M)))


def _diag_or_none(M):
    """The diagonal of the square block M (dense or SciPy sparse) when every nonzero entry of M is
    on it, else None. A sparse block is read from its stored entries (no densifying): an off-diagonal
    stored entry with a nonzero value anywhere makes it non-diagonal."""
    if hasattr(M, "tocoo"):
        c = M.tocoo()
        off = (c.row != c.col) & (c.data != 0)
        if np.any(off):
            return None
        d = np.zeros(min(M.shape))
        on = c.row == c.col
        np.add.at(d, c.row[on], c.data[on])
        return d
    return np.array(np.diagonal(M), dtype=float) if _is_diag(M) else None


def _dense(M) -> np.ndarray:
    return np.asarray(M.toarray() if hasattr(M, "toarray") else M, dtype=float)


def _csr(M):
    """A block as a SciPy CSR matrix (the wide top block's products)."""
    if hasattr(M, "tocsr"):
        return M.tocsr()
    import scipy.sparse as sp

    return sp.csr_matrix(np.asarray(M, dtype=float))


class Chain:
    """A sequence of same-kind arrays produced one after another (the telescoping products), stored
    as differences: each element either whole or as the entries (flat positions and values, compared
    bit for bit) where it differs from the element produced before it, with a whole element every
    :attr:`CHECKPOINT` elements. Reading element i replays at most CHECKPOINT - 1 differences from
    the checkpoint before it (one, when the elements are read in production order). Nothing is
    assumed about the arrays: an element that differs from its predecessor in more than a quarter of
    its entries, or has another shape or kind (a SciPy sparse product, a product turned dense at a
    corrupted off-diagonal entry), is stored whole. The paper layout's products change in a few
    entries per layer, so at J = L = 128 (16,386 products of 32,768 or 256 x 256 entries: 4.3 and
    8.6 GB held as arrays) the chain holds about 1/CHECKPOINT of that.

    ``chain[i]`` is element i (index order, whatever the production order was): a fresh array.
    """

    CHECKPOINT = 128

    def __init__(self, n: int, reverse: bool = False, sparse_out: bool = False, compiled: bool = False):
        self._n, self._reverse, self._sparse_out = int(n), reverse, sparse_out
        self._compiled = compiled  # differences through the compiled kernel (a sparse float64 run's chains)
        self._items: list = []  # production order: ("whole", arr) | ("diff", positions, values)
        self._last = None  # (production position, array) of the last element read or produced
        self._prev = None

    def __len__(self) -> int:
        return self._n

    def _pos(self, i: int) -> int:
        i = int(i)
        if not -self._n <= i < self._n:
            raise IndexError(i)
        i %= self._n
        return self._n - 1 - i if self._reverse else i

    def append(self, arr) -> None:
        """The next element in production order."""
        prev = self._prev
        p = len(self._items)
        whole = (p % self.CHECKPOINT == 0 or prev is None or _issparse(arr) or _issparse(prev)
                 or np.shape(arr) != np.shape(prev))
        if not whole:
            a = np.ascontiguousarray(arr, dtype=float).reshape(-1)
            b = np.ascontiguousarray(prev, dtype=float).reshape(-1)
            diff = _changed_entries(a, b, a.size // 4, self._compiled)
            if diff is not None:
                self._items.append(("diff",) + diff)
            else:
                whole = True
        if whole:
            self._items.append(("whole", arr.copy() if hasattr(arr, "copy") else arr))
        self._prev = arr

    def finish(self) -> "Chain":
        self._prev = None
        return self

    def _at(self, p: int, reuse: bool = False):
        """Element p as a fresh array; ``reuse``: the last element read (``_last``, an array no
        caller holds) may be advanced in place instead of copied, and is then returned itself."""
        item = self._items[p]
        if item[0] == "whole":
            cur = item[1]
            return cur.copy()
        last = self._last
        if reuse and last is not None and last[0] == p:
            return last[1]
        if last is not None and last[0] < p and all(self._items[q][0] == "diff" for q in range(last[0] + 1, p + 1)):
            q0, cur = last[0], (last[1] if reuse else last[1].copy())
        else:
            q0 = p
            while self._items[q0][0] == "diff":
                q0 -= 1
            cur = self._items[q0][1].copy()
        flat = cur.reshape(-1)
        for q in range(q0 + 1, p + 1):
            _, pos, vals = self._items[q]
            flat[pos] = vals
        return cur

    def __getitem__(self, i):
        if isinstance(i, tuple):
            if i[0] == slice(None) and all(isinstance(j, (int, np.integer)) for j in i[1:]):
                return self.column(i[1:])
            return np.asarray(self)[i]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        p = self._pos(i)
        out = self._at(p, reuse=True)
        if not _issparse(out):
            self._last = (p, out)  # kept by the chain; the caller gets a copy
            out = out.copy()
            if self._sparse_out:
                import scipy.sparse as sp

                return sp.csr_matrix(out)
        return out

    def column(self, index) -> np.ndarray:
        """(element_1[index], ..., element_n[index]) for one entry ``index`` of the elements (all dense
        arrays of one shape), read from the stored differences without forming the elements."""
        n = self._n
        out = np.empty(n)
        val = None
        flat_pos = None
        for p, item in enumerate(self._items):
            if item[0] == "whole":
                a = np.asarray(item[1])
                flat_pos = int(np.ravel_multi_index(tuple(int(j) for j in index), a.shape))
                val = float(a.reshape(-1)[flat_pos])
            else:
                pos, vals = item[1], item[2]
                k = int(np.searchsorted(pos, flat_pos))
                if k < pos.size and pos[k] == flat_pos:
                    val = float(vals[k])
            out[n - 1 - p if self._reverse else p] = val
        return out

    @property
    def shape(self) -> tuple:
        first = self._items[0][1]
        return (self._n,) + tuple(first.shape)

    def __array__(self, dtype=None, copy=None):
        out = np.stack([np.asarray(self._at(self._pos(i)) if not _issparse(self._at(self._pos(i)))
                                   else self._at(self._pos(i)).toarray()) for i in range(self._n)])
        return out if dtype is None else out.astype(dtype)

    def __iter__(self):
        return (self[k] for k in range(self._n))

    @property
    def nbytes(self) -> int:
        total = 0
        for item in self._items:
            if item[0] == "whole":
                a = item[1]
                total += a.nbytes if hasattr(a, "nbytes") else a.data.nbytes + a.indices.nbytes + a.indptr.nbytes
            else:
                total += item[1].nbytes + item[2].nbytes
        return int(total)


def _changed_entries(a: np.ndarray, prev: np.ndarray, limit: int, compiled: bool = True):
    """(positions, values) where the float arrays a and prev (flat, one size) differ bit for bit,
    positions ascending, or None where there are more than ``limit``: one compiled pass when
    ``compiled`` and the kernels are enabled (engine/kernels.py), else NumPy's comparison (the same
    entries)."""
    from ..engine import kernels

    if compiled and kernels.enabled() and a.dtype == np.float64 and prev.dtype == np.float64:
        pos = np.empty(min(limit, a.size), dtype=np.int64)
        vals = np.empty(pos.size, dtype=np.int64)
        n = kernels.kernel("changed_entries")(a.view(np.int64), prev.view(np.int64), int(limit), pos, vals)
        return None if n < 0 else (pos[:n].copy(), vals[:n].view(np.float64).copy())
    changed = np.flatnonzero(a.view(np.int64) != prev.view(np.int64))
    return (changed, a[changed].copy()) if changed.size <= limit else None


class _TopBlock:
    """One layer's top block W~_i as its CSR arrays (no SciPy object kept: N of them at J = L = 128),
    applied to a few columns with SciPy's CSR kernel, |W~_i| from the same arrays."""

    __slots__ = ("data", "indices", "indptr", "n")

    def __init__(self, m):
        m = m.tocsr()
        self.data, self.n = np.asarray(m.data, dtype=float), m.shape[0]
        self.indices, self.indptr = m.indices.astype(np.int32), m.indptr.astype(np.int32)

    def apply(self, X: np.ndarray, absolute: bool = False) -> np.ndarray:
        import scipy.sparse as sp

        data = np.abs(self.data) if absolute else self.data
        X = np.ascontiguousarray(X, dtype=float)
        try:
            from scipy.sparse import _sparsetools as st

            Y = np.zeros((self.n, X.shape[1]))
            st.csr_matvecs(self.n, self.n, X.shape[1], self.indptr, self.indices, data, X.ravel(), Y.ravel())
            return Y
        except (ImportError, AttributeError, TypeError):  # pragma: no cover - another SciPy
            return sp.csr_matrix((data, self.indices, self.indptr), shape=(self.n, self.n)) @ X


@dataclass
class Telescoped:
    A: list  # A[i-1]: diag vector (1-D) or dense matrix (2-D) of A_i, i = 1..N (a list or a Chain)
    A_abs: list  # the same products on |Wbar| (rounding magnitude), same shapes
    B: list  # B[i-1]: (dt, dt) product Wtilde_{i+1} ... Wtilde_N (dense, or CSR above DENSE_TOP_MAX)
    B_abs: list
    wcheck: np.ndarray  # (N,) the bottom entries wcheck_i
    K: np.ndarray  # (N, cells_x, cells_star): k_i(a, b) = (B_i e_a) . (B_i e_{x* slot b}) (or a Chain)
    K_abs: np.ndarray  # the same on |B_i|
    top_blocks: list | None = None  # streamed: Wtilde_i's CSR arrays, i = 1..N (the kernels' recursion)

    @property
    def N(self) -> int:
        return len(self.A)

    def A_dense(self, i: int) -> np.ndarray:
        a = self.A[i - 1]
        return np.diag(a) if a.ndim == 1 else a

    def A_apply(self, i: int, v: np.ndarray) -> np.ndarray:
        a = self.A[i - 1]
        return a * v if a.ndim == 1 else a @ v

    def A_abs_apply(self, i: int, v: np.ndarray) -> np.ndarray:
        a = self.A_abs[i - 1]
        return a * v if a.ndim == 1 else a @ v

    @property
    def wcheck_product(self) -> float:
        return float(np.prod(self.wcheck))

    @property
    def B_sparse(self) -> bool:
        return bool(self.B) and _issparse(self.B[0])

    def kernels(self, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(k_i = (B_i p) . (B_i q) for i = 1..N, the same on |B_i| with |p|, |q|)."""
        if self.top_blocks is not None:  # streamed: B_i p = Wtilde_{i+1} (B_{i+1} p), i = N .. 1
            return self._kernels_streamed(p, q)
        if not self.B_sparse:
            B, Ba = self.B_stack, self.B_abs_stack
            return (np.einsum("ni,ni->n", B @ p, B @ q),
                    np.einsum("ni,ni->n", Ba @ np.abs(p), Ba @ np.abs(q)))
        if getattr(self, "_B_csc", None) is None:  # column access: B p = sum over p's nonzeros of p_j B e_j
            self._B_csc = [B.tocsc() for B in self.B]
            self._B_abs_csc = [Ba.tocsc() for Ba in self.B_abs]

        def apply(Bc, v):
            nz = np.flatnonzero(v)
            return Bc[:, nz] @ v[nz]

        pa, qa = np.abs(p), np.abs(q)
        k = np.array([float(apply(B, p) @ apply(B, q)) for B in self._B_csc])
        ka = np.array([float(apply(Ba, pa) @ apply(Ba, qa)) for Ba in self._B_abs_csc])
        return k, ka

    def _kernels_streamed(self, p, q):
        """k_i = (B_i p) . (B_i q) by the telescoping recursion on vectors (B_N = I, B_i p =
        Wtilde_{i+1} (B_{i+1} p)): the top blocks' every stored entry multiplied in, O(nnz) per layer,
        no product B_i formed; the magnitudes on |Wtilde| and |p|, |q| the same way."""
        N = len(self.top_blocks)
        P = np.column_stack([p, q, np.abs(p), np.abs(q)]).astype(float)
        k, ka = np.empty(N), np.empty(N)
        for i in range(N, 0, -1):
            k[i - 1] = float(P[:, 0] @ P[:, 1])
            ka[i - 1] = float(P[:, 2] @ P[:, 3])
            if i > 1:
                Wt = self.top_blocks[i - 1]
                P = np.column_stack([Wt.apply(P[:, :2]), Wt.apply(P[:, 2:], absolute=True)])
        return k, ka

    @property
    def B_stack(self) -> np.ndarray:
        """(N, dt, dt): every B_i at once (built on first use; dense products only)."""
        if getattr(self, "_B_stack", None) is None:
            self._B_stack = np.stack(self.B)
            self._B_abs_stack = np.stack(self.B_abs)
        return self._B_stack

    @property
    def B_abs_stack(self) -> np.ndarray:
        self.B_stack  # noqa: B018 - builds both stacks
        return self._B_abs_stack

    @property
    def A_diag_stack(self):
        """(N, dm) diagonals of every A_i (and of their magnitudes) when all are diagonal, else None."""
        if getattr(self, "_A_diag", None) is None:
            if isinstance(self.A, Chain):  # streamed: never stacked (N x dm, twice); readers loop over i
                self._A_diag = (None, None)
            elif all(a.ndim == 1 for a in self.A):
                self._A_diag = (np.stack(self.A), np.stack(self.A_abs))
            else:
                self._A_diag = (None, None)
        return self._A_diag


def _block_reader(W, blocks):
    """(N, block(k, rows, cols) -> dense array or SciPy sparse matrix) for an (N, D, D) array, or for a
    layer store with ``N`` and ``block(k, rows, cols)`` (sparse layers: a block stays sparse until the
    products need it dense; a diagonal middle block is never densified)."""
    if isinstance(W, np.ndarray) or not hasattr(W, "block"):
        arr = np.asarray(W, dtype=float)
        return arr.shape[0], (lambda k, rows, cols: arr[k][rows, cols])

    return int(W.N), W.block


def _entry_sum(values: np.ndarray) -> float:
    """The value of one matrix position from the stored entries at it (duplicates add, in stored order,
    as np.add.at does for the blocks' diagonals): 0 when none is stored."""
    out = np.zeros(1)
    np.add.at(out, np.zeros(values.size, dtype=np.int64), values)
    return float(out[0])


class _RowBlocks:
    """The blocks of a layer store's layers read from one read of each layer (``layer_csr(k)``, then
    the stored entries of each block picked out with NumPy): the same entries as
    ``block(k, rows, cols)``, explicit zeros and all, without SciPy's column slicing (three SciPy
    slices a layer cost the telescoping 2.3 s of its 4.8 s at J = L = 64)."""

    def __init__(self, W, blocks):
        self._W, self._b = W, blocks
        self._ref = None  # (the shared reference, its blocks) of a shared-row store, read once
        self._compiled = None  # (the compiled kernels' flat form of W, the kernel, the buffers), or False

    @staticmethod
    def usable(W) -> bool:
        return hasattr(W, "layer_csr") and not isinstance(W, np.ndarray)

    @staticmethod
    def _entries(ip, indices, values, row_of):
        """(row, col, value) of CSR arrays (indptr ``ip`` may start past 0), rows mapped by ``row_of``."""
        ip = np.asarray(ip, dtype=np.int64)
        a, e = int(ip[0]), int(ip[-1])
        rows = np.repeat(np.asarray(row_of, dtype=np.int64), np.diff(ip))
        return rows, np.asarray(indices[a:e], dtype=np.int64), np.asarray(values[a:e], dtype=float)

    def _flat_reader(self):
        """The compiled reader of a layer's blocks (engine/kernels.py ``layer_blocks``) when the
        kernels run W's products, else None."""
        if self._compiled is None:
            from ..engine import kernels

            self._compiled = False
            if kernels.usable(self._W):
                dt = self._b.dt
                cap = max(4 * dt, 64)
                self._compiled = [kernels.flat_of(self._W), kernels.kernel("layer_blocks"), np.empty(self._b.dm),
                                  np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64), np.empty(cap)]
        return self._compiled or None

    def layer(self, k: int):
        """:meth:`layer_read`, through the compiled reader where the kernels run W's products: one
        pass over the layer's rows in order gives the same entries (the middle block's diagonal and
        the bottom entry summed in stored order, the top block in CSR order); a middle block with an
        off-diagonal nonzero is read by :meth:`layer_read`."""
        c = self._flat_reader()
        if c is None:
            return self.layer_read(k)
        flat, run, diag, tr, tc, tv = c
        b = self._b
        while True:
            n, off, wb = run(*flat.args, int(k), int(b.dt), int(b.dm), diag, tr, tc, tv)
            if n >= 0:
                break
            c[3], c[4], c[5] = (np.empty(2 * tr.size, dtype=np.int64), np.empty(2 * tr.size, dtype=np.int64),
                                np.empty(2 * tr.size))
            _, _, _, tr, tc, tv = c
        if off:
            return self.layer_read(k)
        tb = self._top_block(tr[:n].copy(), tc[:n].copy(), tv[:n].copy())
        return diag.copy(), (lambda: self.layer_read(k)[1]()), float(wb), tb

    def layer_read(self, k: int):
        """(diagonal of the middle block or None when it has an off-diagonal nonzero, a function giving
        the dense middle block, the bottom entry wcheck, the top block as a :class:`_TopBlock`) of
        layer k. A layer held as the shared reference with some rows replaced (``row_diff``) is read
        from the reference's blocks (once per run) and its stored rows: the same entries as the whole
        layer, at the cost of the stored rows (the whole layer costs O(D) a layer: 12 s at J = L = 96);
        any other layer from one read of the whole layer (``layer_csr(k)``)."""
        diff = self._W.row_diff(k) if hasattr(self._W, "row_diff") else None
        if diff is not None:
            return self._from_reference(*diff)
        b = self._b
        arrays = self._W.layer_arrays(k) if hasattr(self._W, "layer_arrays") else None
        if arrays is None:
            m = self._W.layer_csr(k)
            arrays = (m.indptr, m.indices, m.data)
        rows, idx, data = self._entries(*arrays, np.arange(b.D))
        return self._split(rows, idx, data)

    def _from_reference(self, ref, R, S):
        b = self._b
        dt, dm, D = b.dt, b.dm, b.D
        if self._ref is None or self._ref[0] is not ref:
            rr, rc, rd = self._entries(ref.indptr, ref.indices, ref.data, np.arange(D))
            top = (rr < dt) & (rc < dt)
            mid = (rr >= dt) & (rr < dt + dm) & (rc >= dt) & (rc < dt + dm)
            mr, mc, md = rr[mid] - dt, rc[mid] - dt, rd[mid]
            diag = np.zeros(dm)
            on = mr == mc
            np.add.at(diag, mr[on], md[on])
            off_rows = np.unique(mr[(mr != mc) & (md != 0)])  # reference rows with an off-diagonal nonzero
            wb = _entry_sum(rd[(rr == D - 1) & (rc == D - 1)])
            self._ref = (ref, (rr[top], rc[top], rd[top]), diag, off_rows, wb)
        _, (tr, tc, td), ref_diag, ref_off, ref_wb = self._ref
        R = np.asarray(R, dtype=np.int64)
        sr, sc, sd = self._entries(S.indptr, S.indices, S.data, R)
        # the middle block: diagonal iff no kept reference row and no stored row has an off-diagonal
        # nonzero in it; then its diagonal is the reference's with the stored rows' entries
        if ref_off.size and not np.all(np.isin(ref_off + dt, R)):
            return self._whole(R, sr, sc, sd)
        mid = (sr >= dt) & (sr < dt + dm) & (sc >= dt) & (sc < dt + dm)
        mr, mc, md = sr[mid] - dt, sc[mid] - dt, sd[mid]
        if np.any((mr != mc) & (md != 0)):
            return self._whole(R, sr, sc, sd)
        diag = ref_diag.copy()
        mrows = R[(R >= dt) & (R < dt + dm)] - dt
        diag[mrows] = 0.0
        on = mr == mc
        np.add.at(diag, mr[on], md[on])
        # the bottom entry
        if R.size and R[-1] == D - 1:
            wcheck = _entry_sum(sd[(sr == D - 1) & (sc == D - 1)])
        else:
            wcheck = ref_wb
        # the top block: the reference's rows not replaced, then the stored ones, in row order
        keep = ~np.isin(tr, R)
        st = (sr < dt) & (sc < dt)
        rows = np.concatenate([tr[keep], sr[st]])
        order = np.argsort(rows, kind="stable")  # each row from one source, its columns as stored
        tb = self._top_block(rows[order], np.concatenate([tc[keep], sc[st]])[order],
                             np.concatenate([td[keep], sd[st]])[order])
        return diag, (lambda: self._whole(R, sr, sc, sd)[1]()), wcheck, tb

    def _whole(self, R, sr, sc, sd):
        """The layer's entries (the reference's rows not replaced, then the stored ones), split."""
        ref = self._ref[0]
        rr, rc, rd = self._entries(ref.indptr, ref.indices, ref.data, np.arange(self._b.D))
        keep = ~np.isin(rr, R)
        rows = np.concatenate([rr[keep], sr])
        order = np.argsort(rows, kind="stable")
        return self._split(rows[order], np.concatenate([rc[keep], sc])[order], np.concatenate([rd[keep], sd])[order])

    def _top_block(self, r, c, d):
        dt = self._b.dt
        tb = _TopBlock.__new__(_TopBlock)
        tb.data, tb.n, tb.indices = d, dt, c.astype(np.int32)
        tip = np.zeros(dt + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=dt), out=tip[1:])
        tb.indptr = tip.astype(np.int32)
        return tb

    def _split(self, rows, idx, data):
        """The blocks of a layer given as its entries (row, col, value) in CSR order."""
        b = self._b
        dt, dm, D = b.dt, b.dm, b.D
        # the top block: rows and columns 0..dt-1 (CSR order kept: rows ascending, columns as stored)
        t = (rows < dt) & (idx < dt)
        tb = self._top_block(rows[t], idx[t], data[t])
        # the bottom entry (row and column D - 1)
        wb = _entry_sum(data[(rows == D - 1) & (idx == D - 1)])
        # the middle block
        inside = (rows >= dt) & (rows < dt + dm) & (idx >= dt) & (idx < dt + dm)
        r, c, d = rows[inside] - dt, idx[inside] - dt, data[inside]

        def dense():
            out = np.zeros((dm, dm))
            np.add.at(out, (r, c), d)
            return out

        if np.any((r != c) & (d != 0)):
            return None, dense, wb, tb
        diag = np.zeros(dm)
        on = r == c
        np.add.at(diag, r[on], d[on])
        return diag, dense, wb, tb


# the products and kernels are streamed (held as Chains) when the stored lists would
# exceed this many bytes (the paper layout from J = L = 32 on: N x dm and N x dt x dt floats, twice)
STREAM_ABOVE_BYTES = 64 << 20


def _gram_of(xs: slice, ss: slice, dt: int, compiled: bool):
    """P -> P[:, xs]^T P[:, ss] (the kernel table k_i(a, b) = (B_i e_a) . (B_i e_{x* slot b}) of a
    product P = B_i): a compiled sum over P's nonzero terms on a sparse float64 run (B_i is the
    identity plus the few code entries the layers accumulated: about dt of its dt^2 entries, where
    the dense product costs dt^3 / 4 flops a layer, 6 s of the telescoping at J = L = 128), else
    the dense product (and below GRAM_KERNEL_MIN_DT, where BLAS is as fast). The same terms either
    way, added in another order (the paper layout's products hold small integers, so their sums are
    exact in any order)."""
    from ..engine import kernels

    if compiled and dt >= GRAM_KERNEL_MIN_DT and isinstance(xs, slice) and isinstance(ss, slice):
        return lambda P: kernels.cross_gram(P, xs, ss)
    return lambda P: P[:, xs].T @ P[:, ss]


# the compiled kernel table from this top width on (single-threaded, measured: 0.16 ms against 0.36 ms
# for BLAS at dt = 256; the same 0.025 ms at dt = 128)
GRAM_KERNEL_MIN_DT = 192


def telescope(W, blocks, stream: bool | None = None) -> Telescoped:
    """Recover A_i, B_i, wcheck_i and k_i from the weights (W[k] = paper layer k+1): an (N, D, D)
    array or a layer store with ``N`` and ``block(k, rows, cols)``.

    ``stream`` (default: by size, :data:`STREAM_ABOVE_BYTES`) keeps the products and the kernels as
    :class:`Chain` sequences instead of lists and stacked arrays: the same products, computed in the
    same order, held as differences (|B_i| fills its code block as i decreases, so at J = L = 128 the
    magnitudes alone would be N x 16,384 numbers per table held whole)."""
    from ..engine import kernels

    b = blocks
    N, block = _block_reader(W, b)
    compiled = kernels.usable(W)  # a sparse float64 store with the kernels enabled (a dense one never loads Numba)
    if stream is None:
        stream = 16 * N * (b.dm + b.dt * b.dt) > STREAM_ABOVE_BYTES
    mid, top = b.mid, b.top
    bottom = slice(b.bottom, b.bottom + 1)
    # output side: M_{i-1} = Wbar_1 ... Wbar_{i-1}; A_i = M M^T
    if stream:
        A, A_abs = Chain(N, compiled=compiled), Chain(N, compiled=compiled)
    else:
        A, A_abs = [], []
    rb = _RowBlocks(W, b) if _RowBlocks.usable(W) else None
    wcheck = np.empty(N) if rb is not None else None
    read_tops = [None] * N if rb is not None else None  # the top blocks, read with the middle ones
    M = np.ones(b.dm)
    Ma = np.ones(b.dm)
    for i in range(1, N + 1):
        if M.ndim == 1:
            A.append(M * M)
            A_abs.append(Ma * Ma)
        else:
            A.append(M @ M.T)
            A_abs.append(Ma @ Ma.T)
        if rb is not None:  # the middle block and wcheck_i from one row range of layer i
            d, dense_mid, wcheck[i - 1], read_tops[i - 1] = rb.layer(i - 1)
        if i == N:
            break
        if rb is None:
            Wb = block(i - 1, mid, mid)
            d = _diag_or_none(Wb) if M.ndim == 1 else None
            dense_mid = (lambda Wb=Wb: _dense(Wb))
        elif M.ndim != 1:
            d = None
        if d is not None:
            M, Ma = M * d, Ma * np.abs(d)
        else:
            Wb = dense_mid()
            M = (np.diag(M) if M.ndim == 1 else M) @ Wb
            Ma = (np.diag(Ma) if Ma.ndim == 1 else Ma) @ np.abs(Wb)
    if stream:
        A.finish()
        A_abs.finish()
    # input side: B_i = Wtilde_{i+1} ... Wtilde_N
    wide = b.dt > DENSE_TOP_MAX
    xs, ss = b.top_x, b.top_star
    tops = None
    if stream:
        # dense products held as differences (read back dense, as the stored products: the structure
        # certificates read dense and CSR alike, and a CSR copy per read cost boundary and psd-argument
        # 4 x N SciPy conversions, 2.4 s at J = L = 64), the
        # kernels as chains of (cells_x, cells_star) arrays (read k_i(a, b) over i as a column), the
        # top blocks as CSR arrays for the kernels' recursion; wide tops keep the CSR products whole
        B = Chain(N, reverse=True, compiled=compiled)
        B_abs = Chain(N, reverse=True, compiled=compiled)
        K, K_abs = Chain(N, reverse=True, compiled=compiled), Chain(N, reverse=True, compiled=compiled)
        tops = [None] * N
    else:
        B, B_abs = [None] * N, [None] * N
    if wide:
        import scipy.sparse as sp

        P = sp.identity(b.dt, format="csr")
        Pa = P.copy()
        for i in range(N, 0, -1):
            Wt = _csr(block(i - 1, top, top))
            if stream:
                B.append(P)
                B_abs.append(Pa)
                tops[i - 1] = _TopBlock(Wt)
                K.append(np.asarray((P[:, xs].T @ P[:, ss]).toarray()))
                K_abs.append(np.asarray((Pa[:, xs].T @ Pa[:, ss]).toarray()))
            else:
                B[i - 1], B_abs[i - 1] = P, Pa
            P, Pa = (Wt @ P).tocsr(), (abs(Wt) @ Pa).tocsr()
        if not stream:
            # k_i(a, b) = (B_i e_a) . (B_i e_{x* slot b}): sparse products, one (cells_x, cells_star) array each
            K = np.stack([np.asarray((Bi[:, xs].T @ Bi[:, ss]).toarray()) for Bi in B])
            K_abs = np.stack([np.asarray((Ba[:, xs].T @ Ba[:, ss]).toarray()) for Ba in B_abs])
    else:
        P = np.eye(b.dt)
        Pa = np.eye(b.dt)
        gram = _gram_of(xs, ss, b.dt, compiled) if stream else None
        for i in range(N, 0, -1):
            tb = read_tops[i - 1] if rb is not None else _TopBlock(_csr(block(i - 1, top, top)))
            if stream:
                B.append(P)
                B_abs.append(Pa)
                tops[i - 1] = tb
                K.append(gram(P))
                K_abs.append(gram(Pa))
            else:
                B[i - 1], B_abs[i - 1] = P, Pa
            # Wtilde_i P over the block's stored entries (SciPy's CSR kernel; every stored entry, zeros and
            # corrupted ones included, multiplied in): O(nnz dt) instead of a dense dt^3 product per layer,
            # 3 of the 4.8 s at J = L = 64. The sums run over a row's stored entries in column order
            # (the dense product summed the same terms plus exact zeros, in BLAS's order): within the
            # rounding of the forward-error bounds the claims use.
            P, Pa = tb.apply(P), tb.apply(Pa, absolute=True)
        if not stream:
            K = np.stack([Bi[:, xs].T @ Bi[:, ss] for Bi in B])
            K_abs = np.stack([Ba[:, xs].T @ Ba[:, ss] for Ba in B_abs])
    if stream:
        for ch in (B, B_abs, K, K_abs):
            ch.finish()
    if wcheck is None:
        wcheck = np.array([float(_dense(block(k, bottom, bottom)).reshape(-1)[0]) for k in range(N)])
    return Telescoped(A, A_abs, B, B_abs, wcheck, K, K_abs, tops if stream else None)


def telescoped(con) -> Telescoped:
    """:func:`telescope` of a construction's weights, computed once per weight store and shared by
    every reader of the run (the claims' and the findings' contexts, the K-shot formula): cached in
    ``con.extras`` under the identity of ``con.W`` (a corrupted copy is a new store, so it is
    recomputed)."""
    W = con.W
    extras = getattr(con, "extras", None)
    if extras is None:
        return telescope(W, con.blocks)
    hit = extras.get("_telescoped")
    if hit is None or hit[0] is not W:
        hit = (W, telescope(W, con.blocks))
        extras["_telescoped"] = hit
    return hit[1]
