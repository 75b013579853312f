"""Numerical robustness (docs/tolerances.md): ill-conditioned settings give PASS within the stated
tolerance or UNDECIDED with a reason, never FAIL on a correct construction and never a wrong PASS on
a corrupted one.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import assume, example, given, strategies as st

from universality import Config, ConfigError, build
from universality.claims.base import gamma, ops_count, tolerance
from universality.samples import Sample
from universality.verify import check_claims

from .strategies import labels, triples

EXTREME_EPS = st.sampled_from([1e-12, 1e-9, 1e-6, 1e-3, 1.0, 1e3])
EXTREME_ALPHA = st.sampled_from([1e-8, -1e-8, 1e-4, -0.3, 1e3, -1e3])
EXTREME_R = st.sampled_from([0.01, 0.1, 1.0, 3.0, 10.0])


@st.composite
def ill_conditioned(draw):
    N = draw(st.integers(4, 12))
    J, L = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dy = draw(st.integers(1, 3))
    try:  # combinations outside the valid ranges (e.g. r^N / eps > 2^70) are refused: tests/test_ranges.py
        cfg = Config(N=N, J=J, L=L, dy=dy, layout="compact", eps=draw(EXTREME_EPS), alpha=draw(EXTREME_ALPHA),
                     relu_grad_at_zero=draw(EXTREME_R), samples=0)
    except ConfigError:
        assume(False)
    return cfg, draw(triples(cfg, y=labels(dy, 1e-8, 1e8)))


README_EXTREME = Config(N=6, J=4, L=4, eps=1e-12, alpha=1e3, relu_grad_at_zero=0.01, samples=0)
BIG = Sample((0.3,), (0.7,), (1e8,), "large y")


def _honest(results):
    for c in results:
        assert c.verdict.value in ("PASS", "UNDECIDED"), (c.id, c.verdict.value, c.residual, c.tolerance, c.note)
        if c.verdict.value == "UNDECIDED":
            assert c.note, f"{c.id}: UNDECIDED without a reason"
        if c.verdict.value == "PASS":
            assert c.residual <= c.tolerance


@given(ill_conditioned())
@example((README_EXTREME, BIG))
@example((Config(N=12, J=4, L=4, dy=3, eps=1e-12, alpha=-1e-8, relu_grad_at_zero=0.01, samples=0),
          Sample((0.0,), (0.999,), (1e8, -1e-8, 5.0), "mixed magnitudes")))
def test_correct_construction_never_fails(case):
    cfg, s = case
    _honest(check_claims(build(cfg), [s]))


def _scaled_middle_weight(con, k: int, factor: float):
    W = con.W.copy()
    q = con.blocks.mid.start
    W[k, q, q] *= factor
    return replace(con, W=W)


@given(ill_conditioned(), st.sampled_from([1 + 1e-9, 1 - 1e-9, 1.5]))
@example((README_EXTREME, BIG), 1 + 1e-9)
def test_corrupted_construction_never_passes(case, factor):
    """A middle weight off by a relative 1e-9 (far above rounding, far below what loose tolerances would
    notice) is caught even in ill-conditioned settings: the tolerance is at rounding level."""
    cfg, s = case
    con = build(cfg)
    for k in (1, cfg.N - 2):  # a layer near each end
        bad = check_claims(_scaled_middle_weight(con, k, factor), [s])
        assert any(c.verdict.value == "FAIL" for c in bad), [(c.id, c.residual, c.tolerance) for c in bad]


@given(ill_conditioned())
def test_paper_variant_clipped_sign_still_fails(case):
    """The sign gap is shown at every conditioning: no tolerance swallows a clipped label."""
    cfg, s = case
    cfg = cfg.with_(variant="paper")
    y = tuple(np.sign(cfg.alpha) * abs(v) for v in s.y)  # alpha * y > 0: every component clipped
    res = {c.id: c.verdict.value for c in check_claims(build(cfg), [Sample(s.x, s.x_star, y, "clipped")])}
    assert res["z-star-is-minus-alpha-v"] == "FAIL"


def test_tolerance_formula():
    """tolerance = 4 gamma_n M with n = N (D + 2) + 8 (docs/tolerances.md)."""
    n = ops_count(6, 17)
    assert n == 6 * 19 + 8
    assert gamma(n) == n * 2.0**-53 / (1 - n * 2.0**-53)
    assert tolerance(2.0, 6, 17) == 4 * gamma(n) * 2.0
    assert gamma(2**53) == float("inf")
