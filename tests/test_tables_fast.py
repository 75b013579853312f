"""The fast paths of the run's fixed costs (issue 10's Performance table, the tables helper) against
the plain computations they replace: the same values (bit for bit where the order of operations is
kept), and planted corruptions still caught on the fast path."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import universality.decode as decode


def _plain_margin(W: np.ndarray, index: int) -> float:
    """min over the other cells of the stable sine |w^ - (w^ . w^_i) w^_i|, every cell, no screening."""
    norms = np.linalg.norm(W, axis=1)
    if norms[index] == 0:
        return 0.0
    if W.shape[0] < 2:
        return 1.0
    safe = np.where(norms > 0, norms, 1.0)
    unit = W / safe[:, None]
    ui = unit[index]
    best = np.inf
    for c in range(W.shape[0]):
        if c == index:
            continue
        o = unit[c:c + 1]
        q = o @ ui
        best = min(best, float(np.linalg.norm(o - q[:, None] * ui[None, :], axis=1)[0]))
    return best


@st.composite
def gain_matrices(draw):
    n = draw(st.integers(1, 40))
    m = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["random", "ties", "parallel", "zero rows", "duplicates"]))
    W = rng.standard_normal((n, m))
    if kind == "ties":  # orthogonal-ish one-hot rows: every cell ties (the paper layout's case)
        W = np.eye(max(n, m))[:n, :m] * rng.uniform(0.5, 2.0)
    elif kind == "parallel":  # nearly parallel gains (a large eps): the screen cancels
        W = np.outer(rng.uniform(0.5, 2.0, n), rng.standard_normal(m)) + 1e-9 * W
    elif kind == "zero rows":
        W[rng.random(n) < 0.3] = 0.0
    elif kind == "duplicates":
        W[rng.integers(0, n, n // 2)] = W[0]
    return W


@settings(max_examples=60, deadline=None)
@given(gain_matrices(), st.data(), st.booleans())
def test_separation_margin_equals_the_plain_stable_sine(W, data, on_demand):
    """The screened, chunked and cached margin is the plain stable minimum over every other cell, bit
    for bit (each row's sine computed alone), with the unit rows held or formed on demand."""
    index = data.draw(st.integers(0, W.shape[0] - 1))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(decode, "_SINE_CHUNK", data.draw(st.sampled_from([1, 3, 64])))
        if on_demand:
            mp.setattr(decode, "UNIT_ROWS_HELD_MAX", -1)
            mp.setattr(decode._UnitRows, "CHUNK", 3)
        W = W.copy()  # a new matrix: never the cached one
        got = decode.separation_margin(W, index)
        again = decode.separation_margin(W, index)  # from the per-cell cache
    want = _plain_margin(W, index)
    assert got == again
    assert got == want or abs(got - want) <= 1e-15, (got, want)


def test_the_margin_cache_is_per_matrix():
    """A corrupted copy of the gains (two cells sharing a direction) is a new matrix: its margin is
    computed again (0), never read from the cache of the clean matrix."""
    W = np.eye(6)
    assert decode.separation_margin(W, 2) == 1.0
    bad = W.copy()
    bad[4] = 3.0 * bad[2]
    assert decode.separation_margin(bad, 2) == 0.0
    assert decode.separation_margin(W, 2) == 1.0


# ---- the streamed telescoping products read back dense (boundary, psd-argument) ----------------------

def _forced(mp):
    import universality.construction.network as network
    import universality.engine.layers as layers_mod
    import universality.reference.telescoping as telescoping

    mp.setattr(layers_mod, "SHARE_ROWS_ABOVE_BYTES", -1)
    mp.setattr(network, "STREAM_TABLES_ABOVE", -1)
    mp.setattr(telescoping, "STREAM_ABOVE_BYTES", -1)


def _construction_checks(con, ids=("boundary", "psd-argument")):
    import universality.claims  # noqa: F401 - registers the claims
    from universality.claims.base import CLAIMS, Context

    ctx = Context(con)
    return {i: CLAIMS[i].func(ctx) for i in ids}


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([(18, 4, 4), (11, 3, 3), (6, 4, 4), (10, 2, 4)]), st.sampled_from(["paper", "signed"]))
def test_streamed_products_give_the_same_boundary_and_psd_checks(size, variant):
    """With the products streamed (held as differences, read back dense) boundary and psd-argument
    give the same verdict, residual, tolerance and computed figures as with the stored products."""
    from universality import Config
    from universality.construction.network import build

    N, J, L = size
    cfg = Config(N=N, J=J, L=L, variant=variant)
    plain = _construction_checks(build(cfg, engine="sparse"))
    with pytest.MonkeyPatch.context() as mp:
        _forced(mp)
        con = build(cfg, engine="sparse")
        from universality.reference.telescoping import Chain, telescoped

        t = telescoped(con)
        assert isinstance(t.B, Chain) and not hasattr(t.B[0], "tocsr")  # the fast path is taken
        streamed = _construction_checks(con)
    for cid, chk in plain.items():
        got = streamed[cid]
        assert (got.verdict, got.residual, got.tolerance, got.computed) == \
            (chk.verdict, chk.residual, chk.tolerance, chk.computed), cid


def test_a_negative_top_entry_fails_psd_argument_with_the_products_streamed():
    from universality import Config
    from universality.construction.network import build

    with pytest.MonkeyPatch.context() as mp:
        _forced(mp)
        con = build(Config(N=18, J=4, L=4), engine="sparse")
        b = con.blocks
        m = con.W.mats[9].tolil()
        m[b.top_star.start + 1, b.top_x.start + 2] = -0.5
        con.W.mats[9] = m.tocsr()
        res = _construction_checks(con)
    assert res["psd-argument"].verdict.value == "FAIL", res["psd-argument"].note
    assert res["boundary"].verdict.value == "FAIL"


# ---- codes-injective's Gram search: every cell's two nearest lines -----------------------------------

def _plain_separation(V: np.ndarray) -> float:
    """min over every pair of distinct cells of the stable sine between their v (sign-insensitive)."""
    flat = V.reshape(-1, V.shape[-1])
    unit = flat / np.linalg.norm(flat, axis=1)[:, None]
    best = np.inf
    for p in range(flat.shape[0]):
        for q in range(p + 1, flat.shape[0]):
            c = float(unit[p] @ unit[q])
            best = min(best, float(np.linalg.norm(unit[p] - c * unit[q])))
    return best


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 6), st.integers(0, 2**32 - 1),
       st.sampled_from(["random", "near", "opposite", "same", "ties"]))
def test_gram_search_finds_the_smallest_sine_of_every_pair(cx, cs, dm, seed, plant):
    """The Gram path's candidates (each cell's two nearest lines) give the smallest sine over every
    pair, within the sine's rounding; an identical or opposite v is exactly 0 (the planted bugs)."""
    import universality.claims.coverage as coverage

    rng = np.random.default_rng(seed)
    V = rng.standard_normal((cx, cs, dm))
    n = cx * cs
    if plant == "ties":  # the paper layout's case: a common part plus one bump per cell, all pairs tie
        V = np.broadcast_to(rng.standard_normal(dm), (cx, cs, dm)).copy()
        V.reshape(n, dm)[np.arange(n), np.arange(n) % dm] += 1.0
    if n >= 2 and plant != "random":
        p, q = rng.choice(n, 2, replace=False)
        flat = V.reshape(n, dm)
        if plant == "near":
            flat[p] = -2.5 * flat[q] + 1e-9 * rng.standard_normal(dm)
        elif plant == "opposite":
            flat[p] = -flat[q]
        elif plant == "same":
            flat[p] = flat[q]
    got, pair, exact = coverage.separation(V)
    if n < 2:
        assert got == 1.0
        return
    want = _plain_separation(V)
    if plant in ("opposite", "same"):
        assert got == 0.0 and len(pair) == 2
        assert exact or dm == 1  # (dm = 1: every pair is parallel, any of them may be the one found)
        return
    assert abs(got - want) <= 64 * dm * 2.0**-53 * max(1.0, want), (got, want)


# ---- the telescoping's blocks read from one read of each layer, the top products over stored entries --

def _tel_arrays(t):
    N = t.N
    dense = lambda M: M.toarray() if hasattr(M, "toarray") else np.asarray(M)  # noqa: E731
    return ([np.asarray(t.A[i]) for i in range(N)], [np.asarray(t.A_abs[i]) for i in range(N)],
            [dense(t.B[i]) for i in range(N)], [dense(t.B_abs[i]) for i in range(N)],
            np.asarray(t.K), np.asarray(t.K_abs), t.wcheck)


def _plant(con, rng, kind):
    """One corrupted entry of a random layer, in the block ``kind`` (an explicit stored zero too)."""
    b = con.blocks
    k = int(rng.integers(con.N))
    m = con.W.mats[k].tolil()
    if kind == "top":
        m[int(rng.integers(b.dt)), int(rng.integers(b.dt))] = float(rng.choice([0.5, -2.0, 0.0]))
    elif kind == "middle off-diagonal":
        i, j = rng.choice(b.dm, 2, replace=b.dm < 2)
        m[b.dt + int(i), b.dt + int(j)] = 0.25
    elif kind == "middle diagonal":
        i = int(rng.integers(b.dm))
        m[b.dt + i, b.dt + i] = -3.0
    elif kind == "bottom":
        m[b.D - 1, b.D - 1] = 7.5
    elif kind == "cross":  # an entry between blocks: in no block (the products never read it)
        m[int(rng.integers(b.dt)), b.dt + int(rng.integers(b.dm))] = 1.0
    con.W.mats[k] = m.tocsr()


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([(6, 2, 2), (11, 3, 3), (18, 4, 4), (6, 4, 4), (7, 2, 3)]),
       st.sampled_from(["paper", "signed"]),
       st.sampled_from(["none", "top", "middle off-diagonal", "middle diagonal", "bottom", "cross"]),
       st.booleans(), st.integers(0, 2**16), st.booleans())
def test_telescoping_row_reads_equal_the_block_reads(size, variant, plant, stream, seed, shared):
    """The blocks read from one ``layer_csr`` per layer (``_RowBlocks``) give the same telescoping as
    ``block(k, rows, cols)``: A_i, B_i (top products over the stored entries either way), kernels and
    wcheck bit for bit, with a planted entry in any block, the products stored or streamed."""
    import universality.reference.telescoping as telescoping
    from universality import Config
    from universality.construction.network import build

    import universality.engine.layers as layers_mod

    N, J, L = size
    with pytest.MonkeyPatch.context() as mp:
        if shared:  # the shared-row store: layers read from the reference and their stored rows
            mp.setattr(layers_mod, "SHARE_ROWS_ABOVE_BYTES", -1)
        con = build(Config(N=N, J=J, L=L, variant=variant), engine="sparse")
        if plant != "none":
            _plant(con, np.random.default_rng(seed), plant)
    assert con.W.shared == shared
    if shared:
        assert any(con.W.row_diff(k) is not None for k in range(N))  # the fast path is taken
    assert telescoping._RowBlocks.usable(con.W)
    fast = telescoping.telescope(con.W, con.blocks, stream=stream)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(telescoping._RowBlocks, "usable", staticmethod(lambda W: False))
        plain = telescoping.telescope(con.W, con.blocks, stream=stream)
    for got, want in zip(_tel_arrays(fast), _tel_arrays(plain)):
        if isinstance(got, list):
            assert all(np.array_equal(g, w, equal_nan=True) for g, w in zip(got, want))
        else:
            assert np.array_equal(got, want, equal_nan=True)


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([(6, 2, 2), (11, 3, 3), (18, 4, 4)]), st.sampled_from(["paper", "signed"]))
def test_top_products_over_stored_entries_equal_the_dense_products(size, variant):
    """B_i by the CSR kernel over Wtilde's stored entries against the dense product of the blocks (the
    products before this change), within the forward-error bound of |Wtilde| |B|."""
    from universality import Config
    from universality.construction.network import build
    from universality.reference.telescoping import telescope

    N, J, L = size
    con = build(Config(N=N, J=J, L=L, variant=variant), engine="sparse")
    b = con.blocks
    t = telescope(con.W, b, stream=False)
    P, Pa = np.eye(b.dt), np.eye(b.dt)
    for i in range(N, 0, -1):
        np.testing.assert_array_less(np.abs(np.asarray(t.B[i - 1]) - P), 4 * b.dt * N * 2.0**-53 * Pa + 1e-300)
        Wt = con.W.block(i - 1, b.top, b.top).toarray()
        P, Pa = Wt @ P, np.abs(Wt) @ Pa


def test_a_planted_middle_entry_fails_boundary_on_the_row_reads():
    from universality import Config
    from universality.construction.network import build

    con = build(Config(N=18, J=4, L=4), engine="sparse")
    b = con.blocks
    m = con.W.mats[6].tolil()
    m[b.dt + 1, b.dt + 3] = 0.25
    con.W.mats[6] = m.tocsr()
    assert _construction_checks(con, ("boundary",))["boundary"].verdict.value == "FAIL"


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["paper", "truncated", "compact"]), st.integers(1, 6), st.integers(1, 6), st.integers(0, 40))
def test_channel_entries_are_the_stored_entries_of_the_sparse_channel(layout, cx, cs, c):
    """reference.codes.channel_entries (the decoder's gains) = channel_sparse's stored entries, in
    the same order, for every layout (the spec's table read without a SciPy matrix per channel)."""
    from universality.reference import codes

    ch = codes.channel_sparse(layout, c, cx, cs).tocoo()
    r, q, v = codes.channel_entries(layout, c, cx, cs)
    assert np.array_equal(r, ch.row) and np.array_equal(q, ch.col) and np.array_equal(v, ch.data)
    assert np.array_equal(np.asarray(codes.channel(layout, c, cx, cs))[r, q], v)


@pytest.mark.parametrize("where", ["reference off-diagonal", "reference bottom", "reference top", "stored whole"])
def test_row_reads_with_a_corrupted_reference_layer(where):
    """The shared reference itself corrupted (every layer that keeps its rows inherits the entry), or a
    layer stored whole: the row reads equal the block reads, and boundary FAILs."""
    import universality.reference.telescoping as telescoping
    from universality import Config
    from universality.construction.network import build
    from universality.engine.layers import SparseLayers

    con = build(Config(N=18, J=4, L=4), engine="sparse")
    b = con.blocks
    mats = [con.W.layer_csr(k).tolil() for k in range(con.N)]
    ref = 9
    if where == "reference off-diagonal":
        mats[ref][b.dt + 2, b.dt + 5] = 0.125
    elif where == "reference bottom":
        mats[ref][b.D - 1, b.D - 1] = 3.0
    elif where == "reference top":
        mats[ref][b.top_star.start, b.top_x.start + 3] = 0.5
    else:  # a layer with most rows changed: held whole
        mats[4][b.dt:b.D - 1, b.dt:b.D - 1] = 2.0 * mats[4][b.dt:b.D - 1, b.dt:b.D - 1].toarray()
        mats[4][b.dt, b.dt + 1] = 1.0
    W = SparseLayers([m.tocsr() for m in mats], b.D, shared=True, reference=ref)
    assert sum(W.row_diff(k) is not None for k in range(con.N)) > con.N // 2  # the fast path is taken
    fast = telescoping.telescope(W, b, stream=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(telescoping._RowBlocks, "usable", staticmethod(lambda W: False))
        plain = telescoping.telescope(W, b, stream=False)
    for got, want in zip(_tel_arrays(fast), _tel_arrays(plain)):
        if isinstance(got, list):
            assert all(np.array_equal(g, w, equal_nan=True) for g, w in zip(got, want))
        else:
            assert np.array_equal(got, want, equal_nan=True)
    if where == "reference bottom":  # (wcheck is read by the claims on the step, not by boundary)
        assert fast.wcheck[ref] == 3.0
        return
    con.W = W
    con.extras.clear()
    assert _construction_checks(con, ("boundary",))["boundary"].verdict.value == "FAIL"


# ---- the build's shared-row encoding: runs of equal-length rows compared as slices -----------------

from .test_streamed import _layers_with_shared_rows  # noqa: E402 - one generator of shared-row layers


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 7), st.integers(1, 12), st.floats(0.0, 1.0), st.integers(0, 4), st.integers(0, 2**32 - 1),
       st.sampled_from([1 << 21, 7, 40]))
def test_encode_by_runs_equals_the_entry_comparison(N, D, share, corrupt, seed, chunk):
    """from_triplets' shared-row store with the run comparison = with the per-entry comparison
    (_RUNS_MAX = -1), the same stored rows and values bit for bit, and every layer reads back as
    built (signed zeros, tiny and NaN entries planted)."""
    import universality.engine.layers as layers_mod

    rng = np.random.default_rng(seed)
    mats = _layers_with_shared_rows(rng, N, D, share, corrupt)
    if N and D and rng.random() < 0.5:
        m = mats[int(rng.integers(N))].tolil()
        m[int(rng.integers(D)), int(rng.integers(D))] = float(rng.choice([np.nan, -0.0, 5e-324]))
        mats[int(rng.integers(N))] = m.tocsr()

    def trip():
        for m in mats:
            c = m.tocoo()
            yield c.row, c.col, c.data

    runs = layers_mod.SparseLayers.from_triplets(trip(), D, chunk_entries=chunk, shared=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(layers_mod, "_RUNS_MAX", -1)
        entries = layers_mod.SparseLayers.from_triplets(trip(), D, chunk_entries=chunk, shared=True)
    for k in range(N):
        a, b = runs._store[k], entries._store[k]
        assert a[0] == b[0]
        if a[0] == "rows":
            assert np.array_equal(a[1], b[1])
        got, want = runs.layer_csr(k), entries.layer_csr(k)
        assert np.array_equal(got.indptr, want.indptr) and np.array_equal(got.indices, want.indices)
        assert np.array_equal(got.data.view(np.int64), want.data.view(np.int64))
        ref = mats[k].tocsr()
        ref.sum_duplicates()
        assert np.array_equal(got.toarray(), ref.toarray(), equal_nan=True)


@pytest.mark.parametrize("scale", [1.0, 1e-120, 1e120, 1e-90, 1e90])
def test_gram_search_at_extreme_magnitudes(scale):
    """v's whose products would overflow or underflow take the unit rows' Gram: the smallest sine is
    still found (a planted near-parallel pair), at any scale."""
    import universality.claims.coverage as coverage

    rng = np.random.default_rng(3)
    V = rng.standard_normal((5, 6, 4))
    V[2, 3] = -3.0 * V[4, 1] + 1e-7 * rng.standard_normal(4)
    got, pair, exact = coverage.separation(V * scale)
    want = _plain_separation(V)
    assert not exact and abs(got - want) <= 64 * 4 * 2.0**-53  # the sine's rounding (as before this change)
    assert pair == (4 * 6 + 1, 2 * 6 + 3) or set(pair) == {25, 15}


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 12), st.integers(1, 3), st.sampled_from([1, 2]), st.data())
def test_A_diag_at_is_A_diag_read_there(N, dy, s, data):
    """reference.design.A_diag_at(i, ..., coords) = A_diag(i, ...)[coords], bit for bit, every i."""
    from universality.blocks import Blocks
    from universality.reference import design

    m = N - 2
    b = Blocks(cells_x=2, cells_star=2, m=m, s=s, dy=dy)
    eps = data.draw(st.sampled_from([1e-3, 0.5, 3e6, 2.0**-40]))
    coords = np.array(data.draw(st.lists(st.integers(0, b.dm - 1), min_size=0, max_size=8)), dtype=np.int64)
    for i in range(1, N + 1):
        want = design.A_diag(i, N, b, eps)[coords]
        got = design.A_diag_at(i, N, b, eps, coords)
        assert np.array_equal(got.view(np.int64), want.view(np.int64))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 700), st.integers(1, 9), st.integers(0, 2**32 - 1), st.sampled_from([1, 3, 256]))
def test_row_norms_equal_numpys_norm(n, m, seed, chunk):
    """decode.row_norms = np.linalg.norm(W, axis=1) bit for bit (huge, tiny, inf and NaN rows)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, m)) * 10.0 ** rng.integers(-200, 200, size=(n, 1))
    if n:
        W[rng.integers(n)] = np.inf
        W[rng.integers(n), 0] = np.nan
        W[rng.integers(n)] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        got = decode.row_norms(W, chunk)
        want = np.linalg.norm(W, axis=1)
    assert np.array_equal(got, want, equal_nan=True)
