"""The valid ranges are derived from float64's limits and the depth (universality.config): at every
corner of them a correct construction passes every claim (no wrong FAIL, no UNDECIDED from a
meaningless tolerance, no overflow), and just outside them the input is refused with the range."""
from __future__ import annotations

import itertools
import warnings

import pytest

from universality import Config, verify
from universality.config import ALPHA_MAX, ALPHA_MIN, eps_range, r_range
from universality.errors import ConfigError


@pytest.mark.parametrize("N, J", [(4, 2), (6, 4), (18, 4), (40, 2)])
def test_every_corner_of_the_ranges_passes(N, J):
    bad = []
    for eps, alpha in itertools.product(eps_range(N), (ALPHA_MIN, -ALPHA_MAX)):
        for r in r_range(N, eps):
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)  # no overflow, no invalid value
                rep = verify(Config(N=N, J=J, L=J, relu_grad_at_zero=r, eps=eps, alpha=alpha, samples=1),
                             with_findings=(N == 6 and alpha > 0), backend="numeric")
            bad += [(r, eps, alpha, c.id, c.verdict.value) for c in rep.claims
                    if c.verdict.value not in ("PASS", "SKIPPED")]
    assert not bad


@pytest.mark.parametrize("N", [4, 6, 18, 70])
def test_just_outside_the_ranges_is_refused_with_the_range(N):
    lo, hi = r_range(N)
    for r in (lo / 2, hi * 2):
        with pytest.raises(ConfigError, match=r"relu-grad-at-zero must be 0 or in \["):
            Config(N=N, J=2, L=2, relu_grad_at_zero=r)
    elo, ehi = eps_range(N)
    for eps in (elo / 2, ehi * 2):
        with pytest.raises(ConfigError, match=r"eps must be in \["):
            Config(N=N, J=2, L=2, eps=eps)
    for alpha in (ALPHA_MIN / 2, -ALPHA_MAX * 2):
        with pytest.raises(ConfigError, match=r"\|alpha\| must be in \["):
            Config(N=N, J=2, L=2, alpha=alpha)


def test_ce_cites_theorem_6_2():
    rep = verify(Config(N=5, J=2, L=2, loss="ce", dy=2, samples=1), with_findings=False, backend="numeric")
    assert "Thm 6.2" in rep.claim("loss-recovers-label").paper_ref
    assert "Thm 6.1" not in rep.claim("loss-recovers-label").paper_ref
