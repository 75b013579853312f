"""Property test: the numeric and the symbolic backends agree on every claim for small instances.

Where the numeric verdict is decided (PASS / FAIL) the exact verdict is the same; where rounding
leaves it UNDECIDED the exact backend may decide it. And the exact post-step middle block, evaluated
at the sample's alpha and y, is the numeric one up to rounding.
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from universality import Config, verify
from universality.claims.base import Verdict
from universality.construction.fields import ExactField
from universality.construction.network import build
from universality.execution import one_step as numeric_step
from universality.samples import make_samples
from universality.engine.exact import ExactConstruction, exact_ring_for
from universality.engine.step import single_step
from universality.symbolic.run import run_symbolic

configs = st.builds(
    Config,
    N=st.integers(4, 5), J=st.integers(1, 2), L=st.integers(1, 3), dy=st.integers(1, 2),
    variant=st.sampled_from(["signed", "paper"]),
    relu_grad_at_zero=st.sampled_from([1.0, 0.5, 0.0]),
    alpha=st.sampled_from([0.3, -0.7, 1.5]), eps=st.sampled_from([0.1, 0.25]),
    samples=st.integers(0, 1), seed=st.integers(0, 10_000), K=st.sampled_from([1, 1, 2]),
)
# the other losses (the exact backend runs each loss's own gradient exactly; CE needs dy >= 2)
loss_configs = st.builds(
    Config,
    N=st.integers(4, 5), J=st.integers(1, 2), L=st.integers(1, 2), dy=st.just(2),
    loss=st.sampled_from(["ce", "l1", "hinge", "huber"]), variant=st.sampled_from(["signed", "paper"]),
    alpha=st.sampled_from([0.3, -0.7]), samples=st.integers(1, 2), seed=st.integers(0, 10_000),
)


@settings(max_examples=12)
@given(cfg=configs | loss_configs)
def test_numeric_and_symbolic_verdicts_agree(cfg):
    """Where both backends decide a claim (PASS / FAIL), they decide it the same way."""
    num = verify(cfg, with_findings=False)
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy, loss=cfg.loss)
    sym = run_symbolic(cfg, samples, schematic=False, budget_s=None)
    exact = {c.id: c for c in sym.claims}
    assert {c.id for c in num.claims} == set(exact)  # every claim has an exact record
    for c in num.claims:
        if c.id not in exact:  # backends-agree, universality claims: no exact record
            continue
        decided = (Verdict.PASS, Verdict.FAIL)
        if c.verdict in decided and exact[c.id].verdict in decided:
            assert exact[c.id].verdict == c.verdict, (c.id, c.verdict, exact[c.id].verdict, exact[c.id].note)


@settings(max_examples=12)
@given(cfg=configs, k=st.integers(0, 7))
def test_exact_zbar_star_is_the_numeric_one(cfg, k):
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy)
    s = samples[k % len(samples)]
    con_e, con_n = build(cfg, ExactField()), build(cfg)
    F = exact_ring_for(con_e)  # no symbols: alpha and y as the exact rationals of the run's decimals
    ex = single_step(ExactConstruction(con_e, F), s.x, list(s.y), s.x_star)
    nu = numeric_step(con_n, s.x, s.y, s.x_star)
    b = con_n.blocks
    z_exact = np.array([float(v) for v in ex.z_star[b.mid]])
    scale = max(1.0, float(np.max(np.abs(nu.z_star[b.mid]))))
    assert np.allclose(z_exact, nu.z_star[b.mid], rtol=0, atol=1e-12 * scale)
    assert float(ex.theta_b_post) == np.float64(nu.theta_b_post) or abs(float(ex.theta_b_post) - nu.theta_b_post) <= 1e-12 * max(1.0, abs(nu.theta_b_post))
    assert ex.out_star_post.branch == nu.out_star_post.branch
