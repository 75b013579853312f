"""Section 5: the real K-shot step, its claims and the K-shot findings, over K and every loss."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, strategies as st

from universality import Config, build, one_step, verify
from universality.claims.base import Context, Verdict
from universality.claims.kshot import (kshot_balanced_ce, kshot_coincident_bins, kshot_formula,
                                       kshot_mixed_signs, kshot_mse_null_space)
from universality.execution import forward, k_shot_step
from universality.losses import LOSSES, get_loss
from universality.samples import make_tasks

from .helpers import run_cli

ALL = sorted(LOSSES)
KSHOT_IDS = {"kshot-eq", "permutation-invariant", "kshot-decodes"}


def _cfg(loss: str, **kw) -> Config:
    dy = kw.pop("dy", 1)
    if loss == "ce":
        dy = max(dy, 2)
    return Config(N=kw.pop("N", 6), J=kw.pop("J", 4), L=kw.pop("L", 2), loss=loss, dy=dy,
                  samples=kw.pop("samples", 2), **kw)


def _data(loss, dy, K, rng, cells):
    lo = get_loss(loss)
    xs = [tuple(rng.uniform(0, 1, 1)) for _ in range(K)]
    ys = [lo.sample_label(rng, dy) for _ in range(K)]
    return xs, ys, tuple(rng.uniform(0, 1, 1))


@given(loss=st.sampled_from(ALL), seed=st.integers(0, 10_000))
def test_k_equals_one_is_one_step(loss, seed):
    con = build(_cfg(loss))
    rng = np.random.default_rng(seed)
    xs, ys, xst = _data(loss, con.design.dy, 1, rng, 4)
    a = k_shot_step(con, xs, ys, xst)
    b = one_step(con, xs[0], ys[0], xst)
    assert np.array_equal(a.W_post, b.W_post) and a.theta_b_post == b.theta_b_post
    assert np.array_equal(a.z_star, b.z_star)


@given(loss=st.sampled_from(ALL), K=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_kshot_step_is_the_average_of_real_steps(loss, K, seed):
    """theta' - theta = (1/K) sum_k (theta'_k - theta) where theta'_k are real one-shot steps."""
    con = build(_cfg(loss))
    rng = np.random.default_rng(seed)
    xs, ys, xst = _data(loss, con.design.dy, K, rng, 4)
    kst = k_shot_step(con, xs, ys, xst)
    singles = [one_step(con, x, y, xst) for x, y in zip(xs, ys)]
    np.testing.assert_allclose(kst.W_post - con.W, sum(s.W_post - con.W for s in singles) / K, atol=1e-14)
    assert kst.theta_b_post == pytest.approx(sum(s.theta_b_post for s in singles) / K, abs=1e-14)


@given(loss=st.sampled_from(ALL), K=st.integers(1, 5), seed=st.integers(0, 10_000),
       layout=st.sampled_from(["compact", "paper"]))
def test_linear_product_is_the_kshot_formula_exactly(loss, K, seed, layout):
    """No second-order term: the updated weights' product at x* equals the K-shot formula, any labels."""
    N = 6 if layout == "compact" else 4 * 2 + 2
    con = build(_cfg(loss, N=N, layout=layout))
    b = con.blocks
    rng = np.random.default_rng(seed)
    xs, ys, xst = _data(loss, con.design.dy, K, rng, 4)
    kst = k_shot_step(con, xs, ys, xst)
    f, mag = kshot_formula(con, xs, ys, xst, kst.theta_b_post, kst.alpha)
    lin = forward(kst.W_post, kst.phi_star_post, relu=False).z[b.mid]
    np.testing.assert_allclose(lin, f, atol=1e-13 * max(1.0, float(np.max(mag))))


@given(K=st.integers(1, 4), seed=st.integers(0, 10_000), dy=st.integers(1, 2))
def test_relu_network_matches_for_sign_consistent_labels(K, seed, dy):
    con = build(_cfg("mse", dy=dy))
    b = con.blocks
    t = make_tasks(1, seed, K, 4, 2, 1, dy, "mse")[0]
    kst = k_shot_step(con, t.xs, t.ys, t.x_star)
    f, mag = kshot_formula(con, t.xs, t.ys, t.x_star, kst.theta_b_post, kst.alpha)
    np.testing.assert_allclose(kst.z_star[b.mid], np.maximum(f, 0.0), atol=1e-13 * max(1.0, float(np.max(mag))))


@given(loss=st.sampled_from(ALL), K=st.integers(2, 5), seed=st.integers(0, 10_000))
def test_permutation_invariance(loss, K, seed):
    con = build(_cfg(loss))
    rng = np.random.default_rng(seed)
    xs, ys, xst = _data(loss, con.design.dy, K, rng, 4)
    p = rng.permutation(K)
    a = k_shot_step(con, xs, ys, xst)
    b = k_shot_step(con, [xs[k] for k in p], [ys[k] for k in p], xst)
    np.testing.assert_allclose(a.W_post, b.W_post, atol=1e-15 * K)
    assert a.theta_b_post == pytest.approx(b.theta_b_post, abs=1e-15 * K)


@given(K=st.integers(2, 3), seed=st.integers(0, 100))
def test_kshot_claims_pass_for_mse(K, seed):
    rep = verify(_cfg("mse", K=K, seed=seed, samples=3), claim_ids=KSHOT_IDS, with_findings=False)
    assert {c.id for c in rep.claims} == KSHOT_IDS
    assert all(c.verdict == Verdict.PASS for c in rep.claims), [(c.id, c.note) for c in rep.claims]
    assert rep.construction["K"] == K and len(rep.tasks) == 3


def test_kshot_decodes_paper_layout():
    rep = verify(Config(N=10, J=4, L=2, K=3, samples=3), claim_ids=KSHOT_IDS, with_findings=False)
    assert rep.construction["layout"] == "paper"
    assert rep.passed, [(c.id, c.note) for c in rep.claims]


def test_ce_kshot_is_reported_honestly():
    """CE K-shot: permutation invariance holds; the ReLU network leaves the formula (mixed signs)."""
    rep = verify(_cfg("ce", dy=3, K=3, samples=4), claim_ids=KSHOT_IDS | {"loss-recovers-label"},
                 with_findings=False)
    v = {c.id: c for c in rep.claims}
    assert v["permutation-invariant"].verdict == Verdict.PASS
    assert v["loss-recovers-label"].verdict == Verdict.PASS
    eq = v["kshot-eq"]
    assert eq.verdict == Verdict.FAIL  # multi-class tasks mix signs in every middle coordinate
    assert "clip" in eq.note and eq.computed["linear_residual"] <= eq.tolerance


def test_k1_does_not_select_kshot_claims():
    rep = verify(Config(N=6, J=4, L=4, samples=1), with_findings=False)
    assert not KSHOT_IDS & {c.id for c in rep.claims}
    assert rep.tasks == []


@pytest.mark.parametrize("loss", ALL)
def test_kshot_findings_demonstrated(loss):
    con = build(_cfg(loss, dy=3))
    ctx = Context(con)
    for f in (kshot_coincident_bins, kshot_balanced_ce, kshot_mse_null_space, kshot_mixed_signs):
        out = f(ctx, [])
        assert out.demonstrated, (f.__name__, out.headline)


def test_balanced_ce_theta_b_gradient_is_exactly_zero():
    for C in (2, 3, 5):
        out = kshot_balanced_ce(Context(build(_cfg("ce", dy=C))), [])
        assert out.counterexample["sum_of_gradients_at_0_exact"] == ["0"] * C
        assert out.counterexample["theta_b_post"] == 0.0
        assert out.counterexample["unbalanced_task_theta_b_post"] != 0.0


def test_cli_kshot_json():
    r = run_cli("--N", "6", "--J", "4", "--L", "2", "--K", "2", "--samples", "2", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["construction"]["K"] == 2 and len(doc["tasks"]) == 2
    ids = {c["id"]: c["verdict"] for c in doc["claims"]}
    assert all(ids[i] == "PASS" for i in KSHOT_IDS)
    found = {f["id"]: f["demonstrated"] for f in doc["findings"]}
    assert found["kshot-coincident-bins"] and found["kshot-balanced-ce"] and found["kshot-mse-null-space"]
    r = run_cli("--N", "6", "--J", "4", "--L", "2", "--K", "-1")
    assert r.returncode == 2 and "K must be >= 1" in r.stderr


def test_compact_layout_decoding_capacity():
    """m = N - 2 code channels separate at most m - 1 shots; K = m is reported ambiguous, N + 1 passes."""
    bad = verify(Config(N=6, J=4, L=4, K=4, samples=2), claim_ids={"kshot-decodes"}, with_findings=False)
    c = bad.claim("kshot-decodes")
    assert c.verdict == Verdict.FAIL and "cannot separate K = 4 shots" in c.note
    good = verify(Config(N=7, J=4, L=4, K=4, samples=2), claim_ids={"kshot-decodes"}, with_findings=False)
    assert good.passed


def test_losses_doc_example_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "losses-and-kshot.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    ns: dict = {}
    exec(compile(block, "docs/losses-and-kshot.md", "exec"), ns)  # noqa: S102 - our own documentation
    assert ns["report"].claim("loss-recovers-label").verdict == Verdict.PASS
    assert ns["st"].theta_b_post != 0 and np.any(ns["st"].z_star)


def test_kshot_findings_shrink_a_second_construction(monkeypatch):
    from universality.claims import findings

    monkeypatch.setattr(findings, "FINDING_MEMORY_BYTES", 10**4)
    out = kshot_balanced_ce(Context(build(Config(N=18, J=4, L=4, samples=1))), [])
    assert out.demonstrated and out.counterexample["sizes"].startswith("shown on N = 6")
