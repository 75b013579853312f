"""Checkpointed passes (engine/checkpoint.py): the steps' per-layer arrays kept as a state every few
layers and recomputed a segment at a time give the same quantities and the same verdicts as the
stored passes, still catch a planted corruption, and allocate what the memory model says.

Checkpointing switches on by itself only at J = L = 128 sizes (engine/batch.py's
CHECKPOINT_ABOVE_BYTES); the tests force it at small sizes through that internal threshold or the
``seg`` argument of ``single_steps``."""
from __future__ import annotations

import copy
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from universality import Config, build
from universality.claims import CLAIMS
from universality.claims.base import Context
from universality.engine import batch, maml_step, to_sparse
from universality.engine.batch import checkpoint_bytes, plan, single_steps
from universality.engine.checkpoint import LazyStack, Sweep, segments
from universality.engine.memory import per_step_bytes
from universality.samples import make_samples
from universality.verify import check_claims

from .strategies import configs, relu_grads, triples


@pytest.fixture
def checkpoint_everything(monkeypatch):
    """Every pass checkpointed, whatever its size (segments of ~sqrt(N) layers)."""
    monkeypatch.setattr(batch, "CHECKPOINT_ABOVE_BYTES", 0)


def _sample_claims(ctx, s, st):
    out = {}
    for spec in CLAIMS.values():
        if spec.scope != "sample" or (spec.applies and spec.applies(ctx)):
            continue
        out[spec.id] = spec.func(ctx, s, st)
    return out


def _quantities(st):
    return {"z_star": st.z_star, "g_feature": st.g_feature, "e": st.e,
            "pre_x": np.asarray(st.fwd_x.pre), "post_x": np.asarray(st.fwd_x.post),
            "post_star_after": np.asarray(st.fwd_star_post.post), "Dfac": np.asarray(st.W_post.Dfac),
            "Hfac": np.asarray(st.W_post.Hfac), "theta_b_post": np.array([st.theta_b_post])}


def test_sweep_recomputes_segments_bit_for_bit():
    """A recurrence kept as checkpoints gives every layer's output as the stored run does, in any
    order of reading, and column views and gathers index it like an array."""
    rng = np.random.default_rng(0)
    N, D, G = 11, 5, 3
    W = rng.standard_normal((N, D, D))

    def step(k, X, out):
        Y = W[k] @ X
        if out is not None:
            out[0][...] = Y
        return np.tanh(Y)

    X0 = rng.standard_normal((D, G))
    ref = Sweep(N, N, step, ("y",), ((D, G),), upward=True)
    ref.run(X0)
    full = ref.array("y")
    for seg in (1, 2, 3, 4, 10):
        sw = Sweep(N, seg, step, ("y",), ((D, G),), upward=True)
        assert np.array_equal(sw.run(X0), ref.final)
        A = sw.stack("y")
        for k in list(range(N)) + list(range(N - 1, -1, -1)) + [7, 2, 9]:
            assert np.array_equal(A[k], full[k])
        assert np.array_equal(np.asarray(A[:, :, 1]), full[:, :, 1])
        assert np.array_equal(A[:, :, 1:][:, :, 1][3], full[3, :, 2])
        assert np.array_equal(A[2:5, 1], full[2:5, 1])
        got = np.concatenate([a for _, _, (a,) in segments(A)][::-1])
        assert np.array_equal(got, full)
        assert sw.recomputed > 0 or seg >= N


@settings(deadline=None, max_examples=20)
@given(data=st.data())
def test_checkpointed_steps_equal_stored_steps(data):
    """Hypothesis, over sizes, variants, layouts, dy, dx, r and segment lengths: the samples' steps
    with checkpointed passes give every executed quantity of the stored steps within the claims'
    tolerance (in fact bit for bit: a segment re-runs the same operations) and every sample claim
    the same verdict and residual."""
    cfg = data.draw(configs(r=relu_grads()))
    samples = [data.draw(triples(cfg)) for _ in range(data.draw(st.integers(1, 3)))]
    con = build(cfg, engine="sparse")
    seg = data.draw(st.integers(1, max(1, con.N - 1)))
    ctx_s, ctx_c = Context(con), Context(con)
    # in lockstep: a group's steps are released when the next group starts
    for s, a, b in zip(samples, single_steps(con, samples), single_steps(con, samples, seg=seg)):
        assert isinstance(b.W_post.Dfac, LazyStack) or seg >= con.N
        ctx_s.step, ctx_c.step = a, b
        qa, qb = _quantities(a), _quantities(b)
        for key in qa:
            mag = max(float(np.max(np.abs(qa[key]), initial=0.0)), 1.0)
            assert float(np.max(np.abs(qa[key] - qb[key]), initial=0.0)) <= ctx_s.tol(mag), key
        ca, cb = _sample_claims(ctx_s, s, a), _sample_claims(ctx_c, s, b)
        for cid in ca:
            assert ca[cid].verdict == cb[cid].verdict, cid
            if math.isfinite(ca[cid].residual):
                assert abs(ca[cid].residual - cb[cid].residual) <= max(ca[cid].tolerance, 1e-300), cid


@settings(deadline=None, max_examples=10)
@given(cfg=configs(r=relu_grads()), K=st.integers(1, 3), data=st.data())
def test_checkpointed_kshot_step_equals_the_stored_one(cfg, K, data):
    """maml_step (K-shot tasks, the findings' own steps) checkpoints above the threshold too."""
    s = data.draw(triples(cfg))
    con = build(cfg, engine="sparse")
    xs, ys = [s.x] * K, [np.asarray(s.y, dtype=float) * (k + 1) for k in range(K)]
    a = maml_step(con, xs, ys, s.x_star)
    old = batch.CHECKPOINT_ABOVE_BYTES
    batch.CHECKPOINT_ABOVE_BYTES = 0
    try:
        b = maml_step(con, xs, ys, s.x_star)
        assert isinstance(b.W_post.Dfac, LazyStack)
        ctx = Context(con)
        ctx.step = a
        for key, va in _quantities(a).items():
            vb = _quantities(b)[key]
            mag = max(float(np.max(np.abs(va), initial=0.0)), 1.0)
            assert float(np.max(np.abs(va - vb), initial=0.0)) <= ctx.tol(mag), key
        assert a.grad_max_abs() == b.grad_max_abs() and a.has_gradient() == b.has_gradient()
        assert a.out_star_post.branch == b.out_star_post.branch
    finally:
        batch.CHECKPOINT_ABOVE_BYTES = old


def test_verify_verdicts_are_the_same_with_checkpointing(checkpoint_everything):
    """A whole run (claims, K-shot tasks, findings) with every pass checkpointed."""
    from universality.verify import verify

    for cfg in (Config(N=18, J=4, L=4, K=2, engine="sparse"), Config(N=38, J=6, L=6, relu_grad_at_zero=0.5)):
        got = verify(cfg)
        batch.CHECKPOINT_ABOVE_BYTES = 4 << 30
        ref = verify(cfg)
        batch.CHECKPOINT_ABOVE_BYTES = 0
        assert [(c.id, c.verdict) for c in got.claims] == [(c.id, c.verdict) for c in ref.claims]
        assert all(c.verdict.value in ("PASS", "SKIPPED") for c in got.claims)


@pytest.mark.parametrize("where", ["freivalds", "outside-every-block"])
def test_corruption_is_caught_with_checkpointing(checkpoint_everything, where):
    """A planted entry (a middle row reading a top unit of one layer, 1e-6, caught through Freivalds
    probes; or a top row reading the bottom unit) still FAILs when the passes are checkpointed."""
    if where == "freivalds":
        cfg, k, row, col, delta = Config(N=66, J=8, L=8, samples=3), 40, None, 0, 1e-6
    else:
        cfg, k, row, col, delta = Config(N=18, J=4, L=4, samples=3, engine="sparse"), 2, 0, None, 0.25
    con = build(cfg, engine="sparse")
    b = con.blocks
    W = np.asarray(con.W).copy()
    W[k, b.mid.start + 3 if row is None else row, b.bottom if col is None else col] += delta
    bad = copy.copy(con)
    bad.W, bad.extras = to_sparse(W), {}
    samples = make_samples(3, 0, cfg.J, cfg.L)
    assert batch.checkpointed(con.N, con.D)
    res = check_claims(bad, samples)
    assert any(c.verdict.value == "FAIL" for c in res)
    good = check_claims(con, samples)
    assert all(c.verdict.value in ("PASS", "SKIPPED") for c in good)


def test_memory_model_counts_what_checkpointed_steps_allocate(checkpoint_everything):
    """engine/memory.py's per-step term in checkpointed mode against tracemalloc (NumPy reports its
    buffers to it): the peak allocated while a group of samples steps and the claims that read its
    passes run (grad-rank-one, update-blocks, second-order-zero, post-update-eq3, nonneg-linear-regime,
    e-linear) is at most the model's group term, and the model is at most 1.5x that peak (stated
    tolerance), at J = L = 16 and 24. (The run-level caches, e.g. the telescoping products, are
    warmed first: they are not per-step memory.)"""
    readers = ("grad-rank-one", "update-blocks", "second-order-zero", "post-update-eq3",
               "nonneg-linear-regime", "e-linear")
    for J in (16, 24):
        cfg = Config(N=J * J + 2, J=J, L=J, samples=4)
        con = build(cfg, engine="sparse")
        samples = make_samples(4, 0, J, J)
        N, D = con.N, con.D
        G, seg = plan(N, D, len(samples), reuse=True)
        assert seg < N
        warm = Context(con)
        for s, st_ in zip(samples[:1], single_steps(con, samples[:1])):
            warm.step = st_
            for cid in readers:
                CLAIMS[cid].func(warm, s, st_)
        ctx = Context(con)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        try:
            for s, st_ in zip(samples[:G], single_steps(con, samples[:G], reuse=True)):
                ctx.step = st_
                for cid in readers:
                    CLAIMS[cid].func(ctx, s, st_)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        model = G * checkpoint_bytes(N, D, seg)
        assert peak <= model <= 1.5 * peak, (J, peak, model)
        # and the estimate uses this term: far below the stored passes' N x D arrays
        assert per_step_bytes(cfg) >= model
        assert model < 5 * 8 * N * D * G
