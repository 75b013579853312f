"""The step groups' fast paths (engine/batch.py, claims/one_step.py) against the plain ones.

- second-order-zero's group sweep pushes the Gaussian probes every sample shares once per group, reads
  h_k^T Y on the rows where some h_k is nonzero, and bounds the shared probes' rounding with one
  majorant magnitude column (the entrywise max of their |x_j|). Its sides equal the lone step's
  per-probe Horner sweep within the claim's tolerance, its magnitudes are at least the lone ones (a
  majorant, entry by entry) and equal them on the sample's own inputs, and a planted second-order
  term still FAILs it on that path.
- PerColumnUpdates (the G samples' updated layers) reads only the nonzero rows of H: equal to the
  dense W_k' X of every sample, and a corrupted entry still FAILs grad-rank-one in a group.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from universality import Config, build
from universality.claims import CLAIMS
from universality.claims import one_step
from universality.claims.base import Context
from universality.claims.probes import IDENTITY_MAX_D, shared_columns
from universality.engine import to_sparse
from universality.engine.batch import PerColumnUpdates, single_steps
from universality.engine.step import layers_of
from universality.samples import make_samples


def _groups(con, samples, group=None):
    """(sample, step) pairs, by default in one group of all the samples, checked while the group is
    alive (the group releases its steps once the next one is asked for)."""
    return zip(samples, single_steps(con, samples, group=group or len(samples)))


def _lone_sides(ctx, st_):
    """second-order-zero's sides from the lone step's own per-probe Horner sweep (the step's group
    hidden: the path every K-shot and lone step takes)."""
    grp = st_.group
    st_.group = None
    try:
        return one_step.second_order_sides(ctx, st_)
    finally:
        st_.group = grp


@settings(max_examples=6, deadline=None)
@given(extra=st.integers(0, 8), J=st.integers(3, 6), r=st.sampled_from([1.0, 0.75, 1.25]),
       variant=st.sampled_from(["paper", "signed"]), alpha=st.sampled_from([0.1, -2.0, 1e-3]),
       seed=st.integers(0, 1000), group=st.sampled_from([1, 3]))
def test_group_second_order_sweep_equals_the_lone_sweep(extra, J, r, variant, alpha, seed, group):
    N = extra + (64 if variant == "signed" else 126)  # D > 128: Gaussian probes
    cfg = Config(N=N, J=J, L=J, relu_grad_at_zero=r, variant=variant, alpha=alpha, samples=3, seed=seed)
    con = build(cfg, engine="sparse")
    assert con.D > IDENTITY_MAX_D
    ctx = Context(con)
    assert shared_columns(ctx) == 6
    samples = make_samples(3, seed, J, J)[:3]
    for s, st_ in _groups(con, samples, group):
        assert len(st_.group) == group  # the group path (shared probes, majorant) is taken
        X, lhs, fo, la, fa = one_step.second_order_sides(ctx, st_)
        Xl, lhs_l, fo_l, la_l, fa_l = _lone_sides(ctx, st_)
        np.testing.assert_array_equal(X, Xl)
        tol = ctx.tol(1.0) * (la_l + abs(st_.alpha) * fa_l)
        assert np.all(np.abs(lhs - lhs_l) <= tol + 1e-300)
        assert np.all(np.abs(st_.alpha) * np.abs(fo - fo_l) <= tol + 1e-300)
        # majorant: at least every probe's own magnitude (up to the rounding of the magnitude sweep)
        assert np.all(la >= la_l * (1 - 1e-12)) and np.all(fa >= fa_l * (1 - 1e-12))
        # the shared probes' columns all carry the majorant's; the inputs keep their own
        assert np.all(la[:, :6] == la[:, :1]) and np.all(fa[:, :6] == fa[:, :1])
        np.testing.assert_allclose(la[:, 6:], la_l[:, 6:], rtol=1e-12, atol=0)
        np.testing.assert_allclose(fa[:, 6:], fa_l[:, 6:], rtol=1e-12, atol=0)
        # the same verdict as the lone path
        g = CLAIMS["second-order-zero"].func(ctx, s, st_)
        grp = st_.group
        st_.group = None
        lone = CLAIMS["second-order-zero"].func(Context(con), s, st_)
        st_.group = grp
        assert g.verdict == lone.verdict
        # the tolerance still means something: far below the first-order term it checks
        assert g.tolerance < 1e-6 * max(abs(st_.alpha) * np.abs(fo).max(), 1e-300) or g.tolerance < 1e-9


@pytest.mark.parametrize("group", [None, 1])
@pytest.mark.parametrize("delta", [1.0, 1e-3])
def test_second_order_remainder_fails_on_the_group_path(delta, group):
    """A top row of layer 2 reads a middle unit: two updates meet and prod W' gets an alpha^2 term.
    Above D = 128, in one group of all the samples (shared Gaussian probes, the majorant magnitude column)
    or sample by sample, second-order-zero FAILs it; the clean network PASSes."""
    cfg = Config(N=66, J=8, L=8, samples=3)
    con = build(cfg, engine="sparse")
    assert con.D > IDENTITY_MAX_D
    b = con.blocks
    W = np.asarray(con.W).copy()
    W[1, 0, b.dt] += delta
    bad = copy.copy(con)
    bad.W, bad.extras = to_sparse(W), {}
    samples = make_samples(3, 0, 8, 8)  # 3 random + the 7 corners (the first 3 do not meet the term)
    for net, want in ((bad, "FAIL"), (con, "PASS")):
        ctx = Context(net)
        verdicts = []
        for s, st_ in _groups(net, samples, group):
            assert len(st_.group) == (group or len(samples))
            verdicts.append(CLAIMS["second-order-zero"].func(ctx, s, st_).verdict.value)
        if want == "FAIL":
            assert "FAIL" in verdicts, verdicts
        else:
            assert set(verdicts) == {"PASS"}, verdicts


@settings(max_examples=5, deadline=None)
@given(G=st.integers(1, 4), seed=st.integers(0, 1000), zero_layers=st.booleans())
def test_per_column_updates_equal_the_dense_updated_layers(G, seed, zero_layers):
    """PerColumnUpdates.apply / abs_apply (H read on its nonzero rows only) = the dense
    (W_k + coef d h^T) X and |W_k + coef d h^T| X column by column, with sparse and dense H."""
    rng = np.random.default_rng(seed)
    con = build(Config(N=18, J=4, L=4), engine="sparse")
    layers = layers_of(con)
    N, D = layers.N, layers.D
    Dg = rng.standard_normal((N, D, G))
    Hg = np.zeros((N, D, G))
    for k in range(N):
        if zero_layers and k % 3 == 0:
            continue
        rows = rng.choice(D, size=rng.integers(1, D + 1), replace=False)
        Hg[k, rows] = rng.standard_normal((rows.size, G))
    coef = -0.7
    upd = PerColumnUpdates(layers, Dg, Hg, coef)
    X = rng.standard_normal((D, G))
    X3 = np.abs(rng.standard_normal((D, 2, G)))
    for k in range(N):
        Wk = layers.dense(k)
        for g in range(G):
            Wp = Wk + coef * np.outer(Dg[k, :, g], Hg[k, :, g])
            np.testing.assert_allclose(upd.apply(k, X)[:, g], Wp @ X[:, g], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(upd.abs_apply(k, np.abs(X))[:, g],
                                       (np.abs(Wk) + abs(coef) * np.abs(np.outer(Dg[k, :, g], Hg[k, :, g])))
                                       @ np.abs(X[:, g]), rtol=1e-12, atol=1e-12)
            got3 = upd.abs_apply(k, X3)[:, :, g]
            want3 = (np.abs(Wk) + abs(coef) * np.abs(np.outer(Dg[k, :, g], Hg[k, :, g]))) @ X3[:, :, g]
            np.testing.assert_allclose(got3, want3, rtol=1e-12, atol=1e-12)


def test_a_backprop_bug_fails_grad_rank_one_in_a_group(monkeypatch):
    """Backprop takes ReLU'(0) = 1 instead of r = 0.5 (a planted engine bug in the group's reverse
    sweep): the real gradients leave the paper's product formula (times r^i); in a group of samples
    above D = 128 (Gaussian probes, the nonzero-row products) grad-rank-one FAILs it, and so does
    no clean run."""
    from universality.engine.layers import SparseLayers, relu_grad

    cfg = Config(N=66, J=8, L=8, samples=3, relu_grad_at_zero=0.5)
    con = build(cfg, engine="sparse")
    assert con.D > IDENTITY_MAX_D
    samples = make_samples(3, 0, 8, 8)[:3]

    def verdicts():
        ctx = Context(con)
        out = []
        for s, st_ in _groups(con, samples):
            assert len(st_.group) == 3
            out.append(CLAIMS["grad-rank-one"].func(ctx, s, st_).verdict.value)
        return out

    assert set(verdicts()) == {"PASS"}
    monkeypatch.setattr(SparseLayers, "relu_grad", lambda self, pre, r: relu_grad(pre, 1.0))
    assert "FAIL" in verdicts()


@settings(max_examples=60, deadline=None)
@given(pre=st.lists(st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, np.inf, -np.inf, np.nan, 2.5]),
                    min_size=1, max_size=12),
       g=st.lists(st.sampled_from([0.0, -0.0, 1.0, -3.0, np.inf, -np.inf, np.nan, 1e300]), min_size=12, max_size=12),
       r=st.sampled_from([1.0, 0.5, 0.0, 2.0, 1e-2]))
def test_relu_grad_mul_is_g_times_relu_grad_bit_for_bit(pre, g, r):
    """Backprop's per-layer product G * ReLU'(pre) (engine/layers.py relu_grad_mul, the fast path the
    reverse sweeps use) equals G * relu_grad(pre, r) bit for bit: signed zeros, infinities and NaNs
    (a NaN pre-activation takes r) included."""
    from universality.engine.layers import relu_grad, relu_grad_mul

    p = np.array(pre)
    G = np.array(g[:len(pre)])
    with np.errstate(invalid="ignore"):  # inf * 0 = NaN on both sides
        want = G * relu_grad(p, r)
        got = relu_grad_mul(p, G, r)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    assert np.array_equal(got, want, equal_nan=True)


@pytest.mark.parametrize("cfg", [Config(N=18, J=4, L=4, samples=3), Config(N=66, J=8, L=8, samples=2),
                                 Config(N=11, J=3, L=3, variant="signed", layout="paper", samples=2)])
def test_kept_block_maxima_give_the_same_update_blocks_and_gradient_maximum(cfg):
    """update-blocks and the gradient's max |d_k| max |h_k| read one set of per-layer block maxima
    kept on the step (Step.factor_block_max) instead of each reducing the factors: the same values,
    bit for bit, as the reductions over the whole rows (engine/step.py factor_max) and update-blocks'
    own segment-wise reduction."""
    from universality.engine.step import factor_max

    con = build(cfg, engine="sparse")
    ctx = Context(con)
    b = con.blocks
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L)
    for s, st_ in _groups(con, samples):
        assert st_.factor_block_max(b.dt) is not None
        D, H = st_.W_post.Dfac[:, :, 0], st_.W_post.Hfac[:, :, 0]
        assert st_.grad_max_abs() == factor_max(D, H)
        outside, moved, _ = one_step.update_outside(ctx, st_)
        ref = one_step._update_blocks_rank_one(b, abs(st_.W_post.coef), D, H)
        assert (float(outside[0]), moved) == ref
