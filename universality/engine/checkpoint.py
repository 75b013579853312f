"""Checkpointing: per-layer quantities kept as a few saved states and recomputed a segment at a time.

A pass through the N layers is a recurrence: a state (the block of vectors entering layer k) and a
step that applies layer k, writes that layer's outputs (pre-activation, input, error, ...) and
returns the next state. A :class:`Sweep` runs such a recurrence once from its start, keeping only the
state entering each *segment* of ``seg`` consecutive layers (the checkpoints), and gives any layer's
outputs on demand by re-running its segment from the checkpoint (:meth:`Sweep.fetch`). One segment's
outputs are held at a time (in two alternating sets of re-used buffers), so a sweep holds ``ceil(N / seg)`` states and ``seg``
layers' outputs instead of N layers' outputs: with seg ~ sqrt(N), O(sqrt(N) D G) instead of
O(N D G). With ``seg >= N`` the one segment is the whole pass, computed once and kept: the stored
mode, the same arrays as before checkpointing existed.

A recomputed segment runs the very operations of the first run, on the same states, in the same
order, so it reproduces every value bit for bit; nothing is assumed about the layers (a corrupted
entry is re-executed like any other). Sweeps may read each other's outputs inside their step (the
backprop sweep reads the forward sweep's pre-activations; the pass after the step reads both), and
then recompute each other's segments as needed.

:class:`LazyStack` presents one output of a sweep as the (N, D[, G]) array the claims index (and :class:`PostStack` a pass's N + 1 outputs):
``A[k]``, ``A[k, :, g]``, a column view ``A[:, :, g]`` (nothing computed), and anything else (a
gather over layers such as ``post[1:N + 1, top]``) layer by layer. :func:`segments` iterates several
stacks segment by segment (whole arrays for plain NumPy arrays), for reductions over all layers.
"""
from __future__ import annotations

import math
import sys

import numpy as np


def segment_length(N: int, seg: int | None = None) -> int:
    """Layers per segment: ``seg`` if given (>= N: stored, one segment), else ceil(sqrt(N))."""
    if seg is None:
        seg = math.isqrt(max(N - 1, 0)) + 1
    return int(max(1, min(seg, N)))


class Sweep:
    """One per-layer recurrence over the N layers, in the network's order (``upward``: layer N - 1
    first, the input side, as a forward pass; else layer 0 first, as backprop), kept as checkpoints.

    ``step(k, state, out)`` applies layer k to ``state`` and returns the next state; ``out`` is a
    tuple of arrays (one per output name, each of the per-layer shape in ``shapes``) for it to fill,
    or None while the first run passes a segment whose outputs are not kept. An output with offset 1
    (``offsets``) is stored one row down, and its row 0 receives the state leaving the segment: for a
    forward pass's inputs h_{k+1} that makes the segment's rows the pass's outputs post[k0 .. k1]
    (stored: the whole (N + 1, D, G) pass)."""

    def __init__(self, N: int, seg: int, step, names, shapes, *, upward: bool, alloc=None, offsets=None,
                 segment=None):
        self.N, self.seg, self.step, self.upward = N, int(seg), step, upward
        # ``segment(k0, k1, state, out)``: optional, runs layers k0..k1-1 in the sweep's order in one
        # call (a compiled kernel, engine/kernels.py) and returns the state leaving them; ``out`` as
        # for ``step`` but each array holding the segment's layers (index k - k0), or None. It must
        # compute what ``step`` computes layer by layer.
        self.segment = segment
        self.names = tuple(names)
        self.shapes = [tuple(s) for s in shapes]
        self.offsets = tuple(offsets or (0,) * len(self.names))
        self.nseg = -(-N // self.seg)
        self.ck: list = [None] * self.nseg
        self.final = None
        self._alloc = alloc or np.empty
        self._bufs = None  # one segment's output arrays, (seg, *shape) each
        self._sets: list = []  # checkpointed: the (at most two) sets of segment buffers
        self._held = -1  # which segment the buffers hold (-1: none)
        self.recomputed = 0  # segments re-run after the first run (the checkpointing's extra work)
        self.memo: dict = {}  # per-column reductions computed for every column in one traversal

    @property
    def stored(self) -> bool:
        return self.nseg == 1

    def bounds(self, j: int):
        return j * self.seg, min((j + 1) * self.seg, self.N)

    def order(self):
        """The segments in the sweep's own order."""
        return range(self.nseg - 1, -1, -1) if self.upward else range(self.nseg)

    def _layers(self, j: int):
        k0, k1 = self.bounds(j)
        return range(k1 - 1, k0 - 1, -1) if self.upward else range(k0, k1)

    def _buffers(self):
        """The segment buffers, re-used unless something outside still views them (then fresh ones:
        a caller holding a layer's array across a fetch of another segment keeps its values)."""
        if self.stored:  # the whole pass, once, from the caller's allocator (a pool of arrays)
            if self._bufs is None:
                self._bufs = tuple(self._alloc((self.seg + o,) + s) for s, o in zip(self.shapes, self.offsets))
            return self._bufs
        # two sets, alternating: a reduction over segments (``segments``) still holds the previous
        # segment's views while it fetches the next one
        for bufs in self._sets:
            # references: the set's tuple, the loop variable, getrefcount's argument
            if all(sys.getrefcount(a) <= 3 for a in bufs):
                break
        else:
            bufs = tuple(np.empty((self.seg + o,) + s) for s, o in zip(self.shapes, self.offsets))
            self._sets = (self._sets + [bufs])[-2:]
        self._bufs = bufs
        return bufs

    def _run_segment(self, j: int, state, keep: bool):
        k0, k1 = self.bounds(j)
        if keep:
            self._held = -1
            bufs = self._buffers()
            offs = self.offsets
            if self.segment is not None:
                state = self.segment(k0, k1, state, tuple(b[o:o + k1 - k0] for b, o in zip(bufs, offs)))
            else:
                for k in self._layers(j):
                    state = self.step(k, state, tuple(b[k - k0 + o] for b, o in zip(bufs, offs)))
            for b, o in zip(bufs, offs):
                if o:
                    b[0] = state
            self._held = j
        elif self.segment is not None:
            state = self.segment(k0, k1, state, None)
        else:
            for k in self._layers(j):
                state = self.step(k, state, None)
        return state

    def run(self, start):
        """The first run from ``start``: checkpoints every segment, keeps the last segment's outputs
        (the next sweep usually starts there), returns the final state."""
        state = start
        order = list(self.order())
        for n, j in enumerate(order):
            self.ck[j] = np.array(state, copy=True) if not self.stored else state
            state = self._run_segment(j, state, keep=n == len(order) - 1)
        self.final = state
        return state

    def fetch(self, j: int):
        """Segment j's outputs (arrays indexed by k - k0), recomputed from its checkpoint if needed."""
        if self._held != j:
            self._run_segment(j, self.ck[j], keep=True)
            self.recomputed += 1
        return self._bufs

    def layer(self, n: int, k: int):
        """Output ``n`` (an index into ``names``) of layer k."""
        j = k // self.seg
        return self.fetch(j)[n][k - j * self.seg + self.offsets[n]]

    def array(self, name: str) -> np.ndarray:
        """A stored sweep's whole output (N (+ offset), ...): the plain array."""
        assert self.stored
        return self._bufs[self.names.index(name)]

    def stack(self, name: str, cols=None) -> "LazyStack":
        return LazyStack(self, self.names.index(name), cols)

    def nbytes_held(self) -> int:
        """Bytes this sweep holds: its checkpoints and one segment's outputs."""
        ck = 0 if self.stored else sum(int(np.asarray(c).nbytes) for c in self.ck if c is not None)
        sets = [self._bufs] if self.stored else self._sets
        return ck + sum(int(b.nbytes) for bufs in sets if bufs is not None for b in bufs)


def _compose(cols, idx, width):
    """Column selection ``idx`` applied after ``cols`` (None: all ``width`` columns)."""
    if cols is None:
        return idx
    sel = range(width)[cols]
    if isinstance(sel, int):
        raise IndexError("too many indices for a column of a layer stack")
    sel = sel[idx]
    if isinstance(sel, int):
        return sel
    return slice(sel.start, sel.stop, sel.step)


class LazyStack:
    """Output ``n`` of a :class:`Sweep` as an (N, *shape) array, columns ``cols`` of its last axis."""

    def __init__(self, sweep: Sweep, n: int, cols=None):
        self.sweep, self.n, self.cols = sweep, n, cols
        shape = sweep.shapes[n]
        last = len(range(shape[-1])[cols]) if cols is not None and not isinstance(cols, int) else None
        if cols is None:
            self._shape = (sweep.N,) + shape
        elif isinstance(cols, int):
            self._shape = (sweep.N,) + shape[:-1]
        else:
            self._shape = (sweep.N,) + shape[:-1] + (last,)

    shape = property(lambda self: self._shape)
    ndim = property(lambda self: len(self._shape))
    stored_columns = False  # (a subclass could hold its columns apart)
    dtype = np.dtype(float)

    def __len__(self) -> int:
        return self._shape[0]

    def _layer(self, k: int):
        a = self.sweep.layer(self.n, k)
        return a if self.cols is None else a[..., self.cols]

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)):
            k = int(idx)
            if not -len(self) <= k < len(self):
                raise IndexError(k)
            return self._layer(k % len(self))
        if not isinstance(idx, tuple):
            idx = (idx,)
        first, rest = idx[0], idx[1:]
        if isinstance(first, (int, np.integer)):
            return self[first][rest] if rest else self[first]
        # (:, :, c) on a 3-d stack: a column view, nothing computed
        if (len(self._shape) == 3 and len(idx) == 3 and first == slice(None) and idx[1] == slice(None)
                and isinstance(idx[2], (int, np.integer, slice))):
            c = int(idx[2]) if isinstance(idx[2], (int, np.integer)) else idx[2]
            return LazyStack(self.sweep, self.n, _compose(self.cols, c, self.sweep.shapes[self.n][-1]))
        # anything else: gathered layer by layer (e.g. post[1:N + 1, top]: N x dt), each layer's part
        # copied at once (a list of views would keep every segment's buffers alive); for one sample's
        # column of a group, every column's gather is made in the same traversal and kept (the
        # group's other samples ask next)
        ks = range(len(self))[first]
        c = _column(self.cols)
        if c is not None and not self.stored_columns:
            key = ("gather", type(self).__name__, self.n, repr(idx))
            if key not in self.sweep.memo:
                whole = type(self)(self.sweep, self.n)
                parts = [np.array(whole._layer(k)[rest] if rest else whole._layer(k)) for k in ks]
                self.sweep.memo[key] = np.stack(parts) if parts else None
            got = self.sweep.memo[key]
            if got is not None:
                return got[..., c] if isinstance(self.cols, (int, np.integer)) else got[..., c:c + 1]
        parts = [np.array(self._layer(k)[rest] if rest else self._layer(k)) for k in ks]
        return np.stack(parts) if parts else np.empty((0,) + self._shape[1:])[(slice(None),) + rest]

    def __array__(self, dtype=None, copy=None):
        out = np.stack([np.array(self._layer(k)) for k in range(len(self))])
        return out if dtype is None else out.astype(dtype)

    def segments(self):
        """(k0, k1, array (k1 - k0, ...)) per segment, in the sweep's order."""
        for j in self.sweep.order():
            k0, k1 = self.sweep.bounds(j)
            o = self.sweep.offsets[self.n]
            a = self.sweep.fetch(j)[self.n][o:o + k1 - k0]
            yield k0, k1, (a if self.cols is None else a[..., self.cols])


class PostStack(LazyStack):
    """A forward pass's outputs post[0 .. N] (post[k] = h_{k+1}, post[N] = phi) from its sweep's
    offset output "inp": N + 1 layers."""

    def __init__(self, sweep: Sweep, n: int, cols=None):
        super().__init__(sweep, n, cols)
        self._shape = (sweep.N + 1,) + self._shape[1:]

    def _layer(self, k: int):
        sw = self.sweep
        j = min(k // sw.seg, sw.nseg - 1)
        a = sw.fetch(j)[self.n][k - j * sw.seg]
        return a if self.cols is None else a[..., self.cols]

    def __getitem__(self, idx):
        if (isinstance(idx, tuple) and len(self._shape) == 3 and len(idx) == 3 and idx[0] == slice(None)
                and idx[1] == slice(None) and isinstance(idx[2], (int, np.integer, slice))):
            c = int(idx[2]) if isinstance(idx[2], (int, np.integer)) else idx[2]
            return PostStack(self.sweep, self.n, _compose(self.cols, c, self.sweep.shapes[self.n][-1]))
        return super().__getitem__(idx)

    def segments(self):  # pragma: no cover - nothing reduces over a whole pass's outputs
        raise TypeError("segments() of a pass's outputs")


def _column(cols):
    """The one column a view selects (an int, or a slice of width one), else None."""
    if isinstance(cols, (int, np.integer)):
        return int(cols)
    if isinstance(cols, slice) and cols.start is not None and cols.stop == cols.start + 1 and cols.step in (None, 1):
        return int(cols.start)
    return None


def reduce_columns(key, stacks, start, step):
    """A reduction over the layers of one sample's column of a group's stacks: ``state = start()``,
    then ``state = step(state, k0, k1, parts)`` for every segment (``parts``: each stack's layers
    k0..k1-1 of that column). When the stacks are one-column views of checkpointed group sweeps, the
    reduction is run for every column of the group in one traversal (each segment recomputed once,
    not once per sample) and kept on the sweep under ``key``; otherwise directly."""
    lazy = [s for s in stacks if isinstance(s, LazyStack)]
    cols = {_column(s.cols) for s in lazy}
    if not lazy or len(cols) != 1 or None in cols or any(not isinstance(s, LazyStack) for s in stacks):
        state = start()
        for k0, k1, parts in segments(*stacks):
            state = step(state, k0, k1, parts)
        return state
    (c,) = cols
    width = stacks[0].sweep.shapes[stacks[0].n][-1]
    memo_key = (key, tuple((id(s.sweep), s.n, isinstance(s.cols, (int, np.integer))) for s in stacks))
    memo = stacks[0].sweep.memo
    if memo_key not in memo:
        whole = [LazyStack(s.sweep, s.n) for s in stacks]
        states = [start() for _ in range(width)]
        for k0, k1, parts in segments(*whole):
            for g in range(width):
                sel = [p[..., g] if isinstance(s.cols, (int, np.integer)) else p[..., g:g + 1]
                       for p, s in zip(parts, stacks)]
                states[g] = step(states[g], k0, k1, sel)
        memo[memo_key] = states
    return memo[memo_key][c]


def is_lazy(a) -> bool:
    return isinstance(a, LazyStack)


def segments(*stacks):
    """Iterate ``stacks`` (each an (N, ...) NumPy array or a :class:`LazyStack`) together, segment by
    segment: yields (k0, k1, [each stack's layers k0..k1-1]). Plain arrays give one segment, the
    whole stack; lazy stacks must share one segmentation (the group's), and their segments are
    visited in the first lazy stack's sweep order, each recomputed at most once."""
    lazy = [s for s in stacks if isinstance(s, LazyStack)]
    if not lazy:
        yield 0, len(stacks[0]), list(stacks)
        return
    sw = lazy[0].sweep
    if any(s.sweep.seg != sw.seg or s.sweep.N != sw.N for s in lazy):
        raise ValueError("lazy stacks with different segmentations")
    for j in sw.order():
        k0, k1 = sw.bounds(j)
        out = []
        for s in stacks:
            if isinstance(s, LazyStack):
                o = s.sweep.offsets[s.n]
                a = s.sweep.fetch(j)[s.n][o:o + k1 - k0]
                out.append(a if s.cols is None else a[..., s.cols])
            else:
                out.append(s[k0:k1])
        yield k0, k1, out
