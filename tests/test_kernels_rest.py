"""krest's compiled kernels (engine/kernels.py, ``_define_krest``) against the computations they
replace: the build's chunk conversion and encoding against SciPy's COO to CSR conversion and the
store's NumPy encoding (the same store, bit for bit), the builder's chunked Wbar against the dense
builder, and each kernel's pure-Python ``py_func`` against the compiled one (coverage)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from universality.engine import kernels
from universality.engine.layers import SparseLayers

pytestmark = pytest.mark.skipif(not kernels.enabled(), reason="numba not importable or kernels disabled")


def _random_triplets(rng, n, D, dup, special):
    """n layers of random triplets around a common pattern (most rows equal to a reference), with
    duplicates (``dup``: at most two entries at one position, so the sums are exact in any order),
    explicit zeros and, with ``special``, -0.0 / inf / nan values."""
    base_r = rng.integers(0, D, size=2 * D)
    base_c = rng.integers(0, D, size=2 * D)
    keep = np.unique(base_r * D + base_c)  # no duplicates in the common part
    base_r, base_c = keep // D, keep % D
    base_v = rng.standard_normal(base_r.size)
    out = []
    for _ in range(n):
        r, c, v = base_r.copy(), base_c.copy(), base_v.copy()
        m = int(rng.integers(0, 4))
        if m:
            r2, c2 = rng.integers(0, D, size=m), rng.integers(0, D, size=m)
            r, c = np.concatenate([r, r2]), np.concatenate([c, c2])
            v = np.concatenate([v, rng.standard_normal(m)])
            if not dup:  # drop the added entries that repeat a position
                pos = r * D + c
                _, first = np.unique(pos, return_index=True)
                first.sort()
                r, c, v = r[first], c[first], v[first]
        if rng.random() < 0.3:
            v[rng.integers(0, v.size)] = 0.0
        if special and rng.random() < 0.5:
            v[rng.integers(0, v.size)] = rng.choice([-0.0, np.inf, -np.inf, np.nan, 1e300])
        order = rng.permutation(v.size)
        out.append((r[order], c[order], v[order]))
    if dup:  # at most two entries at a position: sums exact in any order
        fixed = []
        for r, c, v in out:
            pos = r * D + c
            _, inv, cnt = np.unique(pos, return_inverse=True, return_counts=True)
            seen = np.zeros(cnt.size, dtype=int)
            ok = np.ones(pos.size, dtype=bool)
            for p, g in enumerate(inv):
                seen[g] += 1
                ok[p] = seen[g] <= 2
            fixed.append((r[ok], c[ok], v[ok]))
        out = fixed
    return out


def _store_state(L: SparseLayers):
    """Every layer's canonical CSR arrays and the store's encoding (which layers are whole, which rows
    are stored), for bit-for-bit comparison."""
    out = []
    for k in range(L.N):
        m = L.layer_csr(k)
        enc = ("plain",) if not L.shared else ((L._store[k][0],) if L._store[k][0] == "whole"
                                               else ("rows", tuple(L._store[k][1].tolist())))
        out.append((enc, m.indptr.tolist(), m.indices.tolist(), m.data.view(np.int64).tolist()))
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 9), D=st.integers(1, 12), shared=st.booleans(),
       dup=st.booleans(), special=st.booleans(), chunk=st.sampled_from([1, 7, 40, 1 << 21]))
def test_build_store_with_kernels_equals_the_scipy_path(seed, n, D, shared, dup, special, chunk):
    """from_triplets through the compiled conversion and encoding gives the store SciPy's conversion
    and the NumPy encoding give: every layer's entries bit for bit, the same stored rows."""
    rng = np.random.default_rng(seed)
    trips = _random_triplets(rng, n, D, dup, special)
    fast = SparseLayers.from_triplets(iter(trips), D, chunk_entries=chunk, shared=shared)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNIVERSALITY_KERNELS", "0")
        slow = SparseLayers.from_triplets(iter(trips), D, chunk_entries=chunk, shared=shared)
    assert _store_state(fast) == _store_state(slow)


def test_coo_to_csr_sums_duplicates_and_rejects_bad_indices():
    trips = [(np.array([1, 0, 1, 1]), np.array([2, 1, 0, 2]), np.array([1.0, 2.0, 3.0, 4.0]))]
    ip, ix, data = kernels.coo_to_csr(trips, 3)
    assert ip.tolist() == [0, 1, 3, 3] and ix.tolist() == [1, 0, 2] and data.tolist() == [2.0, 3.0, 5.0]
    with pytest.raises(ValueError):
        kernels.coo_to_csr([(np.array([3]), np.array([0]), np.array([1.0]))], 3)
    with pytest.raises(ValueError):
        kernels.coo_to_csr([(np.array([0]), np.array([-1]), np.array([1.0]))], 3)
    with pytest.raises(ValueError):
        kernels.coo_to_csr([(np.array([0, 1]), np.array([0]), np.array([1.0]))], 3)
    # a long unsorted row (merge sort) and a row of three duplicates (summed in input order)
    D = 50
    r = np.zeros(3 * D, dtype=np.int64)
    c = np.concatenate([np.arange(D)[::-1]] * 3)
    v = np.arange(3 * D, dtype=float)
    ip, ix, data = kernels.coo_to_csr([(r, c, v)], D)
    assert ix.tolist() == list(range(D))
    assert data.tolist() == [float(v[D - 1 - j] + v[2 * D - 1 - j] + v[3 * D - 1 - j]) for j in range(D)]


def test_build_kernels_py_func_equal_the_compiled_ones():
    """The pure-Python bodies (what coverage traces) compute what the compiled kernels compute."""
    rng = np.random.default_rng(5)
    D = 6
    trips = _random_triplets(rng, 3, D, dup=True, special=False)
    trips.append((np.zeros(40, dtype=np.int64), rng.integers(0, D, 40), rng.standard_normal(40)))
    counts = np.array([len(v) for _, _, v in trips], dtype=np.int64)
    rows = np.concatenate([t[0] for t in trips]).astype(np.int64)
    cols = np.concatenate([t[1] for t in trips]).astype(np.int64)
    vals = np.concatenate([t[2] for t in trips])
    outs = []
    for f in (kernels.kernel("coo_chunk_to_csr"), kernels.kernel("coo_chunk_to_csr").py_func):
        ip = np.empty(len(trips) * D + 1, dtype=np.int64)
        ix = np.empty(vals.size, dtype=np.int32)
        dat = np.empty(vals.size)
        got = f(rows, cols, vals, counts, D, ip, ix, dat)
        outs.append((got, ip.tolist(), ix[:got].tolist(), dat[:got].tolist()))
        bad = f(np.array([D]), np.array([0]), np.array([1.0]), np.array([1]), D, ip, ix, dat)
        assert bad == -1
    assert outs[0] == outs[1]
    # input already in CSR order (the builder's): taken as given
    canon = []
    for f in (kernels.kernel("coo_chunk_to_csr"), kernels.kernel("coo_chunk_to_csr").py_func):
        ip2, ix2, dat2 = np.empty(2 * D + 1, dtype=np.int64), np.empty(4, dtype=np.int32), np.empty(4)
        got = f(np.array([0, 2, 1, 5]), np.array([3, 1, 0, 5]), np.array([1.0, 2.0, 3.0, 4.0]),
                np.array([2, 2]), D, ip2, ix2, dat2)
        canon.append((got, ip2.tolist(), ix2.tolist(), dat2.tolist()))
    assert canon[0] == canon[1] and canon[0][2] == [3, 1, 0, 5]
    _, ip, ix, dat = outs[0]
    ip, ix, dat = np.array(ip), np.array(ix, dtype=np.int32), np.array(dat)
    import scipy.sparse as sp

    ref = sp.csr_matrix((dat[ip[D]:ip[2 * D]], ix[ip[D]:ip[2 * D]], ip[D:2 * D + 1] - ip[D]), shape=(D, D))
    flags = []
    for f in (kernels.kernel("chunk_differing_rows"), kernels.kernel("chunk_differing_rows").py_func):
        differ = np.empty(ip.size - 1, dtype=np.uint8)
        f(ip, ix, dat.view(np.int64), ref.indptr.astype(np.int64), ref.indices.astype(np.int32),
          ref.data.view(np.int64), D, differ)
        flags.append(differ.tolist())
    assert flags[0] == flags[1]
    assert not any(flags[0][D:2 * D])  # the reference's own layer


@pytest.mark.parametrize("kw", [dict(N=18, J=4, L=4), dict(N=6, J=4, L=4, layout="compact"),
                                dict(N=18, J=4, L=4, relu_grad_at_zero=1.5),
                                dict(N=18, J=4, L=4, relu_grad_at_zero=0.0, dy=2, variant="paper"),
                                dict(N=11, J=3, L=3, relu_grad_at_zero=0.7, eps=0.3),
                                dict(N=70, J=8, L=8, relu_grad_at_zero=1.1)])
def test_sparse_builder_equals_the_dense_builder_bit_for_bit(kw):
    """The sparse builder's chunked Wbar and compiled conversion give every layer the dense builder's
    entries, bit for bit (the dense builder computes Wbar layer by layer), with the shared-row store too."""
    from universality.config import Config
    from universality.construction import network
    from universality.construction.network import Design, build

    des = Design.from_config(Config(**kw))
    dense = build(des, engine="dense").W
    for shared in (False, True):
        with pytest.MonkeyPatch.context() as mp:
            if shared:
                mp.setattr(SparseLayers, "from_triplets", _forced_shared(SparseLayers.from_triplets))
            W = network.build(des, engine="sparse").W
        assert W.shared == shared
        for k in range(des.N):
            assert np.array_equal(W.layer_csr(k).toarray().view(np.int64), dense[k].view(np.int64)), (kw, k)


def _forced_shared(orig):
    def from_triplets(triplets, D, **kw):
        kw["shared"] = True
        return orig(triplets, D, **kw)

    return from_triplets


@st.composite
def sparse_squares(draw):
    """A square float block: the identity plus a few entries (the top products' shape), or random;
    integer-valued or real, with inf / NaN / -0.0 planted."""
    n = draw(st.integers(2, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    kind = draw(st.sampled_from(["identity-like", "random", "integers"]))
    if kind == "random":
        P = rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.3)
    else:
        P = np.eye(n)
        m = int(rng.integers(0, 2 * n))
        vals = rng.integers(-3, 4, m).astype(float) if kind == "integers" else rng.standard_normal(m)
        P[rng.integers(0, n, m), rng.integers(0, n, m)] = vals
    if draw(st.booleans()):
        P[rng.integers(0, n), rng.integers(0, n)] = rng.choice([np.inf, -np.inf, np.nan, -0.0])
    return P, kind


@settings(max_examples=80, deadline=None)
@given(sparse_squares(), st.data())
def test_cross_gram_equals_the_dense_product(Pk, data):
    """The compiled kernel table sums the dense product's terms, zeros left out: equal to it within
    the rounding of a reordered sum (exactly for integer entries), the same non-finite entries."""
    P, kind = Pk
    n = P.shape[0]
    h = data.draw(st.integers(1, n - 1))
    xs, ss = slice(0, h), slice(h, n)
    with np.errstate(invalid="ignore", over="ignore"):
        want = P[:, xs].T @ P[:, ss]
        got = kernels.cross_gram(P, xs, ss)
        py = np.empty_like(got)
        kernels.kernel("cross_gram").py_func(np.ascontiguousarray(P), 0, h, h, n, py)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(got, py, equal_nan=True)
    fin = np.isfinite(want)
    assert np.array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
    if kind != "random":
        assert np.array_equal(got[fin], want[fin])
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            scale = np.abs(P[:, xs]).T @ np.abs(P[:, ss])
        assert np.all(np.abs(got[fin] - want[fin]) <= 4 * n * np.finfo(float).eps * scale[fin])


@settings(max_examples=60, deadline=None)
@given(sparse_squares())
def test_sym_rows_off_identity_and_the_psd_finding_value(Pk):
    """The compiled rows where sym(B) differs from I are NumPy's; psd-implication's smallest
    eigenvalue of sym(B) is the same through either path."""
    from universality.claims import findings

    B, _ = Pk
    n = B.shape[0]
    with np.errstate(invalid="ignore", over="ignore"):
        S = (B + B.T) / 2
        off = S.copy()
        off[np.diag_indices(n)] -= 1.0
        want = np.any(off != 0, axis=1)
    for f in (kernels.kernel("sym_rows_off_identity"), kernels.kernel("sym_rows_off_identity").py_func):
        mark = np.empty(n, dtype=np.uint8)
        with np.errstate(invalid="ignore", over="ignore"):
            count = f(np.ascontiguousarray(B), mark)
        assert mark.astype(bool).tolist() == want.tolist() and count == int(want.sum())
    if np.all(np.isfinite(B)):
        fast = findings._sym_min_eigenvalue(B, {}, compiled=True)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("UNIVERSALITY_KERNELS", "0")
            slow = findings._sym_min_eigenvalue(B, {})
        assert fast == slow


@pytest.mark.parametrize("kw", [dict(N=66, J=8, L=8), dict(N=18, J=4, L=4, dy=2, relu_grad_at_zero=0.9),
                                dict(N=9, J=3, L=3, layout="compact")])
@pytest.mark.parametrize("corrupt", [False, True])
def test_telescoping_kernel_table_equals_the_dense_products(kw, corrupt, monkeypatch):
    """The streamed telescoping with the compiled kernel table (forced on at every width) gives the
    kernel tables k_i of the dense products; a corrupted top entry reaches them either way."""
    from universality.config import Config
    from universality.construction.network import Design, build
    from universality.reference import telescoping

    con = build(Design.from_config(Config(**kw)), engine="sparse")
    if corrupt:
        b = con.blocks
        m = con.W.layer_csr(2).tolil()
        m[b.cells_x + 1, 0] = 0.75
        con.W.set_layer(2, m)
    monkeypatch.setattr(telescoping, "GRAM_KERNEL_MIN_DT", 0)
    fast = telescoping.telescope(con.W, con.blocks, stream=True)
    monkeypatch.setenv("UNIVERSALITY_KERNELS", "0")
    slow = telescoping.telescope(con.W, con.blocks, stream=True)
    for i in range(con.N):
        assert np.allclose(fast.K[i], slow.K[i], rtol=1e-13, atol=0)
        assert np.allclose(fast.K_abs[i], slow.K_abs[i], rtol=1e-13, atol=0)


# ---- the findings' reductions --------------------------------------------------------------------
def _two_kshot_steps(J, seg, labels_b, x_b=None):
    from universality.config import Config
    from universality.construction.network import Design, build
    from universality.engine import batch
    from universality.engine.step import maml_step

    con = build(Design.from_config(Config(N=J * J + 2, J=J, L=J)), engine="sparse")
    with pytest.MonkeyPatch.context() as mp:
        if seg:
            mp.setattr(batch, "LONE_CHECKPOINT_ABOVE_BYTES", 0)
        x = (0.5 / J,)
        sa = maml_step(con, [x, x], [np.array([-0.25]), np.array([-0.75])], (0.5 / J,))
        sb = maml_step(con, [x, x_b or x], labels_b, (0.5 / J,))
    return sa, sb


@settings(max_examples=12, deadline=None)
@given(J=st.integers(2, 5), checkpointed=st.booleans(), kind=st.sampled_from(["same sum", "other", "other x", "same"]))
def test_pair_max_kernel_equals_the_numpy_search(J, checkpointed, kind):
    """kshot-coincident-bins' update difference and gradient maximum through the compiled search
    equal the NumPy search (within the rounding of the factor sums), stored and checkpointed steps,
    for two tasks whose updates agree, differ, or are the very same."""
    from universality.claims import kshot

    labels = {"same sum": [np.array([-0.5]), np.array([-0.5])], "other": [np.array([-1.5]), np.array([0.25])],
              "other x": [np.array([-0.25]), np.array([-0.75])], "same": [np.array([-0.25]), np.array([-0.75])]}[kind]
    sa, sb = _two_kshot_steps(J, checkpointed, labels, x_b=((1.5 / J,) if kind == "other x" else None))
    fast = kshot._updates_diff_and_grad_max(sa, sb)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNIVERSALITY_KERNELS", "0")
        slow = kshot._updates_diff_and_grad_max(sa, sb)
    for f, s in zip(fast, slow):
        assert abs(f - s) <= 1e-14 * max(abs(s), 1e-300), (kind, fast, slow)
    if kind == "same":
        assert fast[0] == 0.0


def test_pair_max_kernel_py_func_and_special_values():
    """The pure-Python body against the compiled kernel, with NaN / inf / equal layers planted."""
    rng = np.random.default_rng(3)
    n, D, K = 4, 7, 2
    Da, Db = rng.standard_normal((n, D, K)), rng.standard_normal((n, D, K))
    Ha = rng.standard_normal((n, D, K)) * (rng.random((n, D, K)) < 0.3)
    Hb = Ha.copy()
    Db[1], Hb[1] = Da[1], Ha[1]  # layer 1: the same factors
    Hb[2, 3, 0] = np.inf
    Da[3, 2, 1] = np.nan
    outs = []
    for f in (kernels.kernel("lowrank_pair_max"), kernels.kernel("lowrank_pair_max").py_func):
        for same in (True, False):
            g, d = np.empty(n), np.empty(n)
            with np.errstate(invalid="ignore", over="ignore"):
                f(Da, Ha, Db, Hb, 0.3, 0.3, same, g, d)
            outs.append((g.tolist(), d.tolist()))
    assert str(outs[:2]) == str(outs[2:])
    g, d = outs[0]
    assert d[1] == 0.0 and not np.isfinite(d[2]) and np.isnan(g[3])
    want = [np.abs(Da[k] @ Ha[k].T).max() for k in range(3)]
    assert np.allclose(g[:3], want, rtol=1e-14)


@pytest.mark.parametrize("checkpointed", [False, True])
def test_kshot_grad_max_equals_the_steps_own(checkpointed):
    from universality.claims import kshot

    sa, sb = _two_kshot_steps(3, checkpointed, [np.array([-1.5]), np.array([0.25])], x_b=(0.8,))
    for st in (sa, sb):
        want = st.grad_max_abs()
        assert abs(kshot._grad_max(st) - want) <= 1e-14 * want


@pytest.mark.parametrize("labels", [[np.array([2.0]), np.array([-0.5])], [np.array([-3.0]), np.array([1.0])],
                                    [np.array([-0.25]), np.array([-0.75])]])
def test_mixed_signs_one_traversal_equals_the_separate_passes(labels, monkeypatch):
    """kshot-mixed-signs' linear product, magnitude and clips from one traversal of a checkpointed
    step equal the two separate passes (the same values: the same products in the same order), with
    the candidates' list cut short (a second read) too."""
    from universality.claims import kshot
    from universality.config import Config
    from universality.construction.network import Design, build
    from universality.engine import batch
    from universality.engine.step import maml_step

    monkeypatch.setattr(batch, "LONE_CHECKPOINT_ABOVE_BYTES", 0)
    con = build(Design.from_config(Config(N=18, J=4, L=4)), engine="sparse")
    st = maml_step(con, [(0.1,), (0.6,)], labels, (0.4,))
    mid = con.blocks.mid
    lin0, mag0 = kshot._linear_and_magnitude(st.W_post, st.phi_star_post, mid)
    for cap in (kshot.CLIP_CANDIDATES_MAX, 0):
        monkeypatch.setattr(kshot, "CLIP_CANDIDATES_MAX", cap)
        for tol in (0.0, 1e-12, 1e9):
            lin, mag, clipped = kshot._linear_magnitude_and_clipping(st, mid, lambda m: tol)
            # (the compiled passes: the same products, a correction's sum in another order)
            assert np.allclose(lin, lin0, rtol=1e-13, atol=1e-300) and abs(mag - mag0) <= 1e-13 * mag0
            assert clipped == kshot._intermediate_clipping(st.fwd_star_post, con.blocks, tol)


def test_chain_reads_advance_the_kept_element_in_place_and_hand_out_copies():
    """Chain reads in production order advance the element kept from the last read in place (one
    copy a read); a repeated read, a read back and edits of what was handed out change nothing."""
    from universality.reference.telescoping import Chain

    rng = np.random.default_rng(2)
    ch, want = Chain(40), []
    a = rng.standard_normal((6, 6))
    for p in range(40):
        a = a.copy()
        a[rng.integers(0, 6), rng.integers(0, 6)] = rng.standard_normal()
        want.append(a)
        ch.append(a)
    ch.finish()
    for i in [0, 1, 1, 2, 5, 5, 3, 39, 39, 0, 20, 21, 22, 22, 10]:
        got = ch[i]
        assert np.array_equal(got, want[i])
        got[...] = np.nan
    assert all(np.array_equal(ch[i], want[i]) for i in range(40))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 60), k=st.integers(0, 20), special=st.booleans())
def test_chain_differences_compiled_equal_numpy(seed, n, k, special):
    """The telescoping Chain's differences (positions and values where two products differ bit for
    bit, or None above the limit) through the compiled pass equal NumPy's, -0.0 and NaN included."""
    from universality.reference import telescoping

    rng = np.random.default_rng(seed)
    prev = rng.standard_normal(n)
    a = prev.copy()
    a[rng.integers(0, n, k)] = rng.standard_normal(k)
    if special:
        a[rng.integers(0, n)] = rng.choice([-0.0, np.nan, np.inf])
        prev[rng.integers(0, n)] = 0.0
    limit = n // 4
    fast = telescoping._changed_entries(a, prev, limit)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNIVERSALITY_KERNELS", "0")
        slow = telescoping._changed_entries(a, prev, limit)
    py_pos, py_vals = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    m = kernels.kernel("changed_entries").py_func(a.view(np.int64), prev.view(np.int64), limit, py_pos, py_vals)
    assert (fast is None) == (slow is None) == (m < 0)
    if fast is not None:
        assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1].view(np.int64), slow[1].view(np.int64))
        assert np.array_equal(py_pos[:m], slow[0])


# ---- the memory model counts the flat form ----------------------------------------------------------
@pytest.mark.parametrize("J,shared", [(8, False), (16, False), (16, True), (24, True)])
def test_memory_model_counts_the_flat_form(J, shared, monkeypatch):
    """The compiled kernels' flat form (engine/kernels.py FlatLayers) shares the layer store's memory:
    after flattening, the weights (store and flat form) hold no more than the model's ``weights`` term
    (engine/memory.py), measured with tracemalloc; the copy's transient (both forms alive while the
    layers are re-pointed) is at most twice that term, below the run's modelled peak (flattening runs
    at the first compiled sweep, before any step holds its arrays)."""
    import tracemalloc

    from universality.config import Config
    from universality.construction.network import Design, build
    from universality.engine import layers as layers_mod
    from universality.engine.memory import estimate_bytes, non_pass_bytes, weights_bytes
    from universality.engine.step import layers_of

    if shared:
        monkeypatch.setattr(layers_mod, "SHARE_ROWS_ABOVE_BYTES", -1)
    cfg = Config(N=J * J + 2, J=J, L=J)
    model = weights_bytes(cfg)
    kernels.flat_of(layers_of(build(Design.from_config(Config(N=6, J=2, L=2)), engine="sparse")))  # warm numba
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        con = build(Design.from_config(cfg), engine="sparse")
        W = layers_of(con)
        assert W.shared == shared
        built = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.reset_peak()
        flat = kernels.flat_of(W)
        after, peak = (v - base for v in tracemalloc.get_traced_memory())
    finally:
        tracemalloc.stop()
    tables = non_pass_bytes(cfg)["builder_tables"]  # the construction's code table, held with the weights
    assert flat.nbytes <= model
    assert after - built <= 0.4 * model, (built, after, model)  # the flat form adds its per-layer offsets
    assert after <= 1.5 * (model + tables), (built, after, model, tables)
    assert peak <= 2 * model + tables
    assert 2 * model <= estimate_bytes(cfg.with_(engine="sparse"), "sparse")
    # the store's arrays are views of the flat ones (one copy of the weights)
    if shared:  # a layer with stored rows
        k = next(k for k in range(W.N) if W.row_diff(k) is not None and W.row_diff(k)[2].nnz)
        S = W.row_diff(k)[2]
        arrays = (S.indptr, S.indices, S.data)
    else:
        arrays = W.layer_arrays(W.N // 2)
    assert np.shares_memory(arrays[2], flat.sdat) and np.shares_memory(arrays[1], flat.six)


@pytest.mark.parametrize("expected", ["exact", "short", "none", "long"])
def test_plain_store_written_into_the_flat_form(expected):
    """A plain store converted by the kernels is written into its flat form directly (the builder's
    count sizes it): its layers view the flat arrays, the flat form equals what flatten() makes of
    the same store, and a count that is short (or none) gives the chunked store, flattened on use."""
    rng = np.random.default_rng(7)
    D = 9
    trips = _random_triplets(rng, 23, D, dup=True, special=False)
    nnz = sum(len(v) for _, _, v in trips)
    exp = {"exact": nnz, "short": nnz // 2, "none": None, "long": 3 * nnz}[expected]
    L = SparseLayers.from_triplets(iter(trips), D, chunk_entries=40, shared=False, expected_nnz=exp)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNIVERSALITY_KERNELS", "0")
        ref = SparseLayers.from_triplets(iter(trips), D, chunk_entries=40, shared=False)
    assert _store_state(L) == _store_state(ref)
    direct = L._flat is not None
    assert direct == (expected in ("exact", "long"))
    f = kernels.flat_of(L)
    g = kernels.flatten(SparseLayers.from_triplets(iter(trips), D, chunk_entries=40, shared=False))
    for name in FLAT_FIELDS:
        assert np.array_equal(getattr(f, name), getattr(g, name)), name
    if direct:
        assert np.shares_memory(L.layer_arrays(5)[2], f.sdat)
    X = rng.standard_normal((D, 2))
    for k in range(L.N):
        assert np.array_equal(kernels.apply(L, k, X), ref.apply(k, X))


FLAT_FIELDS = ("ref_ip", "ref_ix", "ref_dat", "whole", "row0", "rows", "sip0", "sip", "doff", "six", "sdat")


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("where", ["none", "top", "mid-diag", "mid-off", "bottom", "dup-diag", "nan"])
def test_telescoping_compiled_block_reader_equals_the_numpy_reader(shared, where, monkeypatch):
    """The compiled reader of a layer's blocks gives what the NumPy reader gives, bit for bit: the
    middle diagonal (or the fallback for an off-diagonal entry), the bottom entry and the top block,
    on both stores, with an entry planted in each block."""
    from universality.config import Config
    from universality.construction.network import Design, build
    from universality.engine import layers as layers_mod
    from universality.reference import telescoping

    if shared:
        monkeypatch.setattr(layers_mod, "SHARE_ROWS_ABOVE_BYTES", -1)
    con = build(Design.from_config(Config(N=18, J=4, L=4, dy=2)), engine="sparse")
    W, b = con.W, con.blocks
    if where != "none":
        k = 7
        m = W.layer_csr(k).tolil()
        i, j, v = {"top": (b.cells_x + 2, 1, 0.5), "mid-diag": (b.dt + 3, b.dt + 3, 1.25),
                   "mid-off": (b.dt + 3, b.dt + 5, -0.5), "bottom": (b.D - 1, b.D - 1, 2.0),
                   "dup-diag": (b.dt, b.dt, 0.0), "nan": (b.dt + 1, b.dt + 1, np.nan)}[where]
        m[i, j] = v
        W.set_layer(k, m.tocsr())
    assert W.shared == shared
    rb = telescoping._RowBlocks(W, b)
    assert rb._flat_reader() is not None
    for k in range(W.N):
        fast, slow = rb.layer(k), rb.layer_read(k)
        if slow[0] is None:
            assert fast[0] is None
        else:
            assert np.array_equal(fast[0].view(np.int64), slow[0].view(np.int64)), k
        assert np.array_equal(fast[1](), slow[1](), equal_nan=True)
        assert np.array_equal(np.float64(fast[2]).view(np.int64), np.float64(slow[2]).view(np.int64))
        for name in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(fast[3], name), getattr(slow[3], name), equal_nan=True), (k, name)
    rb2 = telescoping._RowBlocks(W, b)  # a top block larger than the reader's first buffers
    c = rb2._flat_reader()
    c[3], c[4], c[5] = np.empty(1, dtype=np.int64), np.empty(1, dtype=np.int64), np.empty(1)
    assert np.array_equal(rb2.layer(3)[3].data, rb.layer_read(3)[3].data)
    py = kernels.kernel("layer_blocks").py_func
    f = kernels.flat_of(W)
    outs = []
    for run in (kernels.kernel("layer_blocks"), py):
        diag, tr, tc, tv = np.empty(b.dm), np.empty(99, dtype=np.int64), np.empty(99, dtype=np.int64), np.empty(99)
        got = run(*f.args, 7, b.dt, b.dm, diag, tr, tc, tv)
        outs.append((got[0], got[1], str(got[2]), str(diag.tolist()), tr[:got[0]].tolist(), str(tv[:got[0]].tolist())))
    assert outs[0] == outs[1]

