"""The storage that lets the paper layout at J = L = 128 fit (issue 10), checked against the plain
forms at small sizes with streaming forced on through the internal switches:

* ``SparseLayers``' shared-row store (a reference matrix plus each layer's differing rows) against
  one SciPy CSR matrix per layer: the same products (bit for bit for W X, within rounding for W^T X);
* the builder's tables computed when read (``construction.network.Table`` / ``CodeTable``) against
  the arrays (the same numbers);
* the streamed telescoping products (``reference.telescoping.Chain`` / ``KernelTable``) against the
  stored lists (the same products; the kernels' recursion within its rounding bound);
* the claims' verdicts with everything streamed against the plain run, and a planted corrupted
  entry still caught.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

import universality.construction.network as network
import universality.engine.layers as layers_mod
import universality.reference.telescoping as telescoping
from universality import Config
from universality.construction.codes import code_table
from universality.construction.fields import NUMERIC
from universality.construction.network import CodeTable, build
from universality.engine.layers import SparseLayers
from universality.reference.telescoping import Chain, telescope
from universality.samples import make_samples
from universality.verify import check_claims

from .strategies import configs


def _layers_with_shared_rows(rng, N, D, share, corrupt):
    """N random sparse D x D layers that repeat most rows of one base matrix (the paper layout's
    shape), each row replaced with probability 1 - share, plus ``corrupt`` single-entry edits."""
    base = sp.random(D, D, density=0.3, random_state=rng, format="csr")
    mats = []
    for _ in range(N):
        m = base.tolil(copy=True)
        for i in range(D):
            if rng.random() > share:
                m[i, :] = 0
                for j in rng.choice(D, size=int(rng.integers(0, D + 1)), replace=False):
                    m[i, j] = rng.standard_normal()
        mats.append(m.tocsr())
    for _ in range(corrupt):
        k, i, j = int(rng.integers(N)), int(rng.integers(D)), int(rng.integers(D))
        m = mats[k].tolil()
        m[i, j] = float(rng.choice([0.0, -0.0, 1e-300, 7.5, -2.0]))
        mats[k] = m.tocsr()
    return mats


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 14), st.floats(0.0, 1.0), st.integers(0, 3),
       st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_shared_row_store_equals_one_csr_per_layer(N, D, share, corrupt, p, seed):
    rng = np.random.default_rng(seed)
    mats = _layers_with_shared_rows(rng, N, D, share, corrupt)
    layers = SparseLayers(mats, D, shared=True)
    plain = SparseLayers(mats, D, shared=False)
    assert layers.shared and not plain.shared
    X = rng.standard_normal((D, p))
    x = rng.standard_normal(D)
    for k, m in enumerate(mats):
        m = sp.csr_matrix(m)
        m.sum_duplicates()
        got = layers.layer_csr(k)
        assert np.array_equal(got.indptr, m.indptr) and np.array_equal(got.indices, m.indices)
        assert np.array_equal(got.data.view(np.int64), m.data.view(np.int64))  # bit for bit, -0.0 included
        assert np.array_equal(layers.dense(k), m.toarray())
        # W X: the same operations as the layer's own CSR product, so the same bits
        assert np.array_equal(layers.apply(k, X), m @ X)
        assert np.array_equal(layers.apply(k, x), m @ x)
        assert np.array_equal(layers.abs_apply(k, X), abs(m) @ X)
        out = rng.standard_normal((D, p))
        want = out.copy()
        _sp_add = m @ X
        layers.apply_add(k, X, out)
        np.testing.assert_allclose(out, want + _sp_add, rtol=1e-13, atol=1e-13)
        # W^T X: the same terms, another order of addition
        np.testing.assert_allclose(layers.apply_T(k, X), m.T @ X, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layers.abs_apply_T(k, X), abs(m).T @ X, rtol=1e-12, atol=1e-12)
        assert np.array_equal(layers.row_nnz(k), np.diff(m.indptr))
        for a, b in [(0, D), (0, D // 2), (D // 3, D)]:
            assert np.array_equal(layers.block(k, slice(a, b), slice(None)).toarray(), m[a:b].toarray())
    assert layers.nnz() == plain.nnz() == sum(sp.csr_matrix(m).nnz for m in mats)
    for k in range(N):  # the plain store: the same products
        assert np.array_equal(plain.apply(k, X), layers.apply(k, X))
        assert np.array_equal(plain.abs_apply(k, X), layers.abs_apply(k, X))
        assert np.array_equal(plain.dense(k), layers.dense(k))


def test_shared_row_store_keeps_few_rows_for_the_paper_layout(monkeypatch):
    monkeypatch.setattr(layers_mod, "SHARE_ROWS_ABOVE_BYTES", -1)
    con = build(Config(N=258, J=16, L=16), engine="sparse")
    W = con.W
    stored = [W.stored_rows(k) for k in range(W.N)]
    assert sorted(stored)[-2] <= 16  # the reference plus a few rows per layer (one layer may be whole)
    assert W.nbytes < 0.1 * 12 * W.nnz()


@pytest.mark.parametrize("shared", [False, True])
def test_a_layer_assigned_through_mats_is_stored_and_executed(monkeypatch, shared):
    monkeypatch.setattr(layers_mod, "SHARE_ROWS_ABOVE_BYTES", -1 if shared else 1 << 40)
    con = build(Config(N=18, J=4, L=4), engine="sparse")
    W = con.W
    assert W.shared == shared
    m = W.mats[5].tolil()
    m[W.D - 1, 0] = 3.0  # an entry no layer has: its row becomes a stored row of layer 5
    W.mats[5] = m.tocsr()
    x = np.zeros(W.D)
    x[0] = 1.0
    assert W.apply(5, x)[W.D - 1] == 3.0 and W.dense(5)[W.D - 1, 0] == 3.0
    assert W.apply(4, x)[W.D - 1] == 0.0


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["paper", "compact", "truncated"]), st.integers(1, 6), st.integers(1, 6),
       st.integers(1, 30))
def test_code_table_by_channel_equals_the_array(layout, cx, cs, m):
    table = code_table(layout, cx, cs, m, NUMERIC)
    lazy = CodeTable(layout, cx, cs, m)
    assert np.array_equal(np.asarray(lazy), table)
    for c in range(m):
        assert np.array_equal(lazy[c], table[c])
    for j in range(cx):
        for l in range(cs):
            assert np.array_equal(lazy.vector(j, l), table[:, j, l])


@settings(max_examples=15, deadline=None)
@given(configs(), st.sampled_from(["dense", "sparse"]))
def test_builder_tables_computed_when_read_equal_the_arrays(cfg, engine):
    plain = build(cfg, engine=engine, _stream_tables=False)
    lazy = build(cfg, engine=engine, _stream_tables=True)
    assert np.array_equal(np.asarray(plain.W), np.asarray(lazy.W))
    for i in range(cfg.N):
        assert np.array_equal(plain.A[i], lazy.A[i]) and np.array_equal(plain.A_built[i], lazy.A_built[i])
        assert np.array_equal(np.asarray(plain.G[i]), np.asarray(lazy.G[i]))
    assert np.array_equal(np.asarray(plain.codes), np.asarray(lazy.codes))


def test_chain_reads_any_order_and_any_kind():
    rng = np.random.default_rng(1)
    ch = Chain(300, reverse=True)
    want = []
    a = rng.standard_normal(50)
    for p in range(300):
        a = a.copy()
        a.reshape(-1)[rng.integers(a.size, size=int(rng.integers(0, 20)))] = rng.standard_normal()
        if p == 150:
            a = rng.standard_normal((7, 7))  # another shape: stored whole
        if p == 151:
            a = rng.standard_normal(50)
        want.append(a)
        ch.append(a)
    ch.finish()
    for i in list(rng.permutation(300)) + list(range(300)):
        got = ch[int(i)]
        assert np.array_equal(got, want[299 - int(i)])
        got[...] = 0  # a fresh array: editing it changes nothing stored
    assert np.array_equal(ch[5], want[294])


@settings(max_examples=15, deadline=None)
@given(configs(), st.sampled_from(["dense", "sparse"]))
def test_streamed_telescoping_equals_the_stored_products(cfg, engine):
    con = build(cfg, engine=engine)
    a = telescope(con.W, con.blocks, stream=False)
    s = telescope(con.W, con.blocks, stream=True)
    dense = lambda M: M.toarray() if hasattr(M, "toarray") else np.asarray(M)  # noqa: E731
    for i in range(cfg.N):
        assert np.array_equal(a.A[i], s.A[i]) and np.array_equal(a.A_abs[i], s.A_abs[i])
        np.testing.assert_allclose(dense(s.B[i]), dense(a.B[i]), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(np.asarray(s.K), np.asarray(a.K), rtol=1e-13, atol=1e-300)
    assert np.array_equal(s.wcheck, a.wcheck)
    rng = np.random.default_rng(cfg.seed)
    p, q = rng.standard_normal(con.blocks.dt), rng.standard_normal(con.blocks.dt)
    k1, ka1 = a.kernels(p, q)
    k2, ka2 = s.kernels(p, q)
    # the recursion's rounding: within the forward-error bound of the product's magnitudes
    tol = 8 * (con.blocks.dt + 2) * cfg.N * 2.0**-53 * np.maximum(ka1, ka2)
    assert np.all(np.abs(k1 - k2) <= tol + 1e-300)


def _forced(monkeypatch):
    monkeypatch.setattr(layers_mod, "SHARE_ROWS_ABOVE_BYTES", -1)
    monkeypatch.setattr(network, "STREAM_TABLES_ABOVE", -1)
    monkeypatch.setattr(telescoping, "STREAM_ABOVE_BYTES", -1)


@settings(max_examples=8, deadline=None)
@given(configs(paper=True))
def test_claims_agree_with_everything_streamed(cfg):
    samples = make_samples(2, cfg.seed, cfg.J, cfg.L, dx=cfg.dx, dy=cfg.dy, loss=cfg.loss)
    plain = {c.id: c for c in check_claims(build(cfg, engine="sparse"), samples)}
    with pytest.MonkeyPatch.context() as mp:
        _forced(mp)
        streamed = {c.id: c for c in check_claims(build(cfg, engine="sparse"), samples)}
    assert plain.keys() == streamed.keys()
    for cid in plain:
        assert plain[cid].verdict == streamed[cid].verdict, (cid, plain[cid].note, streamed[cid].note)


@pytest.mark.parametrize("where", ["top", "middle"])
def test_a_planted_entry_is_caught_with_everything_streamed(monkeypatch, where):
    _forced(monkeypatch)
    cfg = Config(N=18, J=4, L=4)
    con = build(cfg, engine="sparse")
    assert con.W.shared
    b = con.blocks
    k = 6
    m = con.W.mats[k].tolil()
    if where == "top":  # a code entry moved to another cell
        m[b.top_star.start + 2, b.top_x.start + 1] = 0.5
    else:  # an off-diagonal middle entry
        m[b.dt + 1, b.dt + 3] = 0.25
    con.W.mats[k] = m.tocsr()
    res = {c.id: c.verdict.value for c in check_claims(con, make_samples(2, 0, 4, 4))}
    assert res["boundary"] == "FAIL", res


@settings(max_examples=15, deadline=None)
@given(configs())
def test_spec_gains_by_channel_equal_the_dense_product(cfg):
    import universality.decode as decode

    from universality.construction.network import Design

    d = Design.from_config(cfg)
    b = d.blocks
    dense = decode.spec_gains(d, b)
    first = [b.channel_local(c).start for c in range(b.m)]
    streamed = decode._spec_gains_by_channel(d, b, first)
    # the same sum of products, another order: within m roundings of the largest term
    np.testing.assert_allclose(streamed, dense, rtol=0, atol=4 * b.m * 2.0**-53 * max(np.abs(dense).max(), 1.0))


def test_codes_injective_is_skipped_with_its_sizes_above_its_budget(monkeypatch):
    import universality.claims.coverage as coverage

    monkeypatch.setattr(coverage, "CODES_INJECTIVE_MAX_BYTES", 1000)
    res = {c.id: c for c in check_claims(build(Config(N=18, J=4, L=4)), make_samples(1, 0, 4, 4))}
    chk = res["codes-injective"]
    assert chk.verdict.value == "SKIPPED" and "16 cells" in chk.note and "above" in chk.note


@pytest.mark.parametrize("J", [12, 16])
def test_memory_model_non_pass_terms_against_a_measured_run(monkeypatch, J):
    """The model's non-pass terms (engine/memory.py) against what the structures hold, measured with
    tracemalloc at a small size with the shared-row store and the streamed products forced on:
    within a factor 1.5 either way (the model is what `--max-memory` is checked against)."""
    import tracemalloc

    from universality.decode import spec_gains
    from universality.engine.memory import non_pass_bytes

    _forced(monkeypatch)
    monkeypatch.setattr(telescoping, "STREAM_ABOVE_BYTES", -1)
    import universality.decode as decode

    monkeypatch.setattr(decode, "SPEC_GAINS_DENSE_MAX", -1)
    cfg = Config(N=J * J + 2, J=J, L=J)
    model = non_pass_bytes(cfg)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        con = build(cfg, engine="sparse")
        after_build = tracemalloc.get_traced_memory()[0]
        tel = telescope(con.W, con.blocks)
        after_tel = tracemalloc.get_traced_memory()[0]
        gains = spec_gains(con.design, con.blocks)
        after_gains = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    measured = {"weights": after_build - base, "telescoping": after_tel - after_build,
                "decoder_gains": 2 * (after_gains - after_tel)}  # the decoder keeps a unit copy (small sizes)
    assert gains.shape == (J * J, con.blocks.m) and tel.N == cfg.N
    for term, got in measured.items():
        assert model[term] / 1.5 <= got <= model[term] * 1.5, (term, got, model[term])


@settings(max_examples=10, deadline=None)
@given(configs(paper=True), st.integers(0, 2**16))
def test_decoder_with_unit_rows_formed_on_demand_decodes_the_same(cfg, seed):
    import universality.decode as decode
    from universality.construction.network import Design

    d = Design.from_config(cfg)
    b = d.blocks
    gains = decode.spec_gains(d, b)
    rng = np.random.default_rng(seed)
    zbar = rng.standard_normal(b.dm)
    held = decode.decode_gains(gains, b, build(cfg).loss, zbar, d.alpha)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(decode, "UNIT_ROWS_HELD_MAX", -1)
        mp.setattr(decode._UnitRows, "CHUNK", 3)
        gains2 = gains.copy()  # a new matrix: not the cached one
        lazy = decode.decode_gains(gains2, b, build(cfg).loss, zbar, d.alpha)
        assert isinstance(decode._unit_rows(gains2)[1], decode._UnitRows)
    assert (held.cell_x, held.cell_star) == (lazy.cell_x, lazy.cell_star)
    np.testing.assert_allclose(lazy.y, held.y, rtol=1e-12, atol=1e-300)
    assert abs(lazy.margin - held.margin) <= 1e-12 * max(1.0, held.margin)
