"""backends-agree: the exact and the float64 execution of the same step agree (--backend both), and a
bug planted on either side makes it FAIL."""
from __future__ import annotations

import sympy as sp

from universality import Config, verify
from universality.claims.backends import backends_agree
from universality.claims.base import Verdict
from universality.construction.fields import ExactField
from universality.construction.network import build
from universality.engine.exact import ExactConstruction, exact_ring_for
from universality.samples import make_samples, make_tasks

from .schema import validate


def _samples(cfg):
    return make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy, loss=cfg.loss)


def test_both_backends_agree_and_the_record_says_both():
    rep = verify(Config(N=5, J=2, L=3, samples=2), backend="both", with_findings=False)
    c = rep.claim("backends-agree")
    assert c.verdict == Verdict.PASS and c.checked == len(rep.samples) and 0 < c.tolerance < 1e-10
    d = rep.as_dict()
    validate(d)  # the shipped JSON Schema
    rec = next(r for r in d["claims"] if r["id"] == "backends-agree")
    assert rec["backend"] == "both"
    assert "backends-agree" not in {r["id"] for r in verify(Config(N=4, J=2, L=2, samples=1),
                                                            with_findings=False).as_dict()["claims"]}


def test_kshot_tasks_sparse_engine_and_other_losses_agree():
    cfg = Config(N=5, J=2, L=2, dy=2, K=3, samples=2, loss="ce", engine="sparse")
    con = build(cfg)
    tasks = make_tasks(2, cfg.seed, 3, cfg.J, cfg.L, cfg.dx, cfg.dy, cfg.loss)
    out = backends_agree(con, _samples(cfg), tasks)
    assert out.verdict == Verdict.PASS, out.note
    assert out.checked == len(_samples(cfg)) + len(tasks)


def test_a_planted_float_weight_error_fails():
    """One float weight off by a relative 1e-9 (far below any visible change, far above rounding)."""
    cfg = Config(N=5, J=2, L=2, samples=2)
    con = build(cfg)
    b = con.blocks
    con.W[2][b.dt + 1, b.dt + 1] *= 1 + 1e-9
    out = backends_agree(con, _samples(cfg))
    assert out.verdict == Verdict.FAIL and "beyond rounding" in out.note
    assert out.residual > out.tolerance


def test_a_planted_exact_weight_error_fails():
    cfg = Config(N=5, J=2, L=2, samples=2)
    sym = build(cfg, ExactField())
    b = sym.blocks
    sym.W[1][b.dt, b.dt] += sp.Rational(1, 10**9)
    F = exact_ring_for(sym)
    out = backends_agree(build(cfg), _samples(cfg), exact=ExactConstruction(sym, F))
    assert out.verdict == Verdict.FAIL


def test_a_planted_float_step_error_fails(monkeypatch):
    """A float-only error in the executed step (theta_b' of the float step scaled by 1 + 1e-12)."""
    import universality.claims.backends as bk
    from universality.engine import step as engine_step

    real = engine_step.single_step

    def wrong(con, *a, **kw):
        st = real(con, *a, **kw)
        st.theta_b_post = st.theta_b_post * (1 + 1e-12)
        return st

    monkeypatch.setattr(engine_step, "single_step", wrong)
    cfg = Config(N=5, J=2, L=2, samples=1)
    out = bk.backends_agree(build(cfg), _samples(cfg))
    assert out.verdict == Verdict.FAIL and "theta_b_post" in out.note


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

small_configs = st.builds(
    Config,
    N=st.integers(4, 6), J=st.integers(1, 3), L=st.integers(1, 2), dy=st.integers(2, 2),
    variant=st.sampled_from(["signed", "paper"]), relu_grad_at_zero=st.sampled_from([1.0, 0.5, 0.0, 2.0]),
    alpha=st.sampled_from([0.3, -0.7, 1e-3]), loss=st.sampled_from(["mse", "ce", "l1", "huber"]),
    K=st.sampled_from([1, 2]), engine=st.sampled_from(["dense", "sparse"]), samples=st.integers(1, 2),
    seed=st.integers(0, 10_000),
)


@settings(max_examples=10, deadline=None)
@given(cfg=small_configs)
def test_the_exact_and_the_float_engine_agree_everywhere(cfg):
    """Over sizes, variants, r, alpha, losses, K and both float engines: the exact step and the float step
    agree on every sample and task (an UNDECIDED only where an exact sign is undecidable, never a FAIL)."""
    tasks = make_tasks(cfg.samples, cfg.seed, cfg.K, cfg.J, cfg.L, cfg.dx, cfg.dy, cfg.loss) if cfg.K > 1 else None
    out = backends_agree(build(cfg), _samples(cfg), tasks)
    assert out.verdict in (Verdict.PASS, Verdict.UNDECIDED), (out.note, out.worst_case)
    assert out.counts["FAIL"] == 0
