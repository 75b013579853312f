"""Hypothesis strategies for the property-based suite (see docs/testing.md).

Sizes stay small (N <= 12, J, L <= 4, dx <= 2, dy <= 3) so that every example runs in
milliseconds. Values cover the corners the tool promises to handle: epsilon from 1e-12 to 1e3,
learning rates of both signs from 1e-8 to 1e3, ReLU'(0) = r from 1e-2 to 10 (and 0 where a test
asks for it), labels tiny (1e-8), large (1e8) and of both signs, inputs on bin edges, just below
them, at 0 and at the largest float below 1, and x = x*.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, strategies as st

from universality import Config, ConfigError
from universality.samples import BELOW_ONE, Sample

VARIANTS = ("signed", "paper")


def log_uniform(lo: float, hi: float):
    """Floats spread over orders of magnitude (plus both end points)."""
    return st.one_of(
        st.sampled_from([lo, hi]),
        st.floats(math.log10(lo), math.log10(hi), allow_nan=False).map(lambda e: float(10.0**e)),
    )


def epsilons(lo: float = 1e-12, hi: float = 1e3):
    return st.one_of(st.sampled_from([0.1, 1e-12, 1e-6, 1.0, 1e3]), log_uniform(lo, hi)).filter(
        lambda e: lo <= e <= hi)


def alphas(lo: float = 1e-8, hi: float = 1e3):
    """Nonzero learning rates of either sign."""
    return st.tuples(st.sampled_from([1.0, -1.0]), log_uniform(lo, hi)).map(lambda t: t[0] * t[1])


def relu_grads(zero: bool = False):
    """ReLU'(0) = r > 0 (the compensated case); with zero=True also r = 0."""
    pos = st.one_of(st.just(1.0), log_uniform(1e-2, 10.0))
    return st.one_of(st.just(0.0), pos) if zero else pos


@st.composite
def sizes(draw, max_N: int = 12, paper: bool | None = None):
    """(N, J, L, dx, dy, layout) with a valid layout. paper=True forces N = J^dx L^dx + 2."""
    dx = draw(st.sampled_from([1, 1, 1, 2]))
    top = 4 if dx == 1 else 2
    J = draw(st.integers(1, top))
    L = draw(st.integers(1, top))
    dy = draw(st.integers(1, 3))
    cells = J**dx * L**dx
    can_paper = 4 <= cells + 2 <= max_N
    if paper is None:
        paper = can_paper and draw(st.booleans())
    if paper:
        if not can_paper:
            # fall back to a paper-sized grid
            J, L, dx = draw(st.sampled_from([(1, 2, 1), (2, 1, 1), (2, 2, 1), (2, 3, 1), (3, 2, 1),
                                             (3, 3, 1), (2, 4, 1), (4, 2, 1)]))
            cells = J * L
        return cells + 2, J, L, dx, dy, draw(st.sampled_from(["paper", "auto"]))
    N = draw(st.integers(4, max_N).filter(lambda n: n != cells + 2))
    return N, J, L, dx, dy, draw(st.sampled_from(["compact", "auto"]))


@st.composite
def configs(draw, variant: str | None = None, r=None, eps=None, alpha=None, paper: bool | None = None,
            samples: int = 0):
    N, J, L, dx, dy, layout = draw(sizes(paper=paper))
    try:
        return Config(
            N=N, J=J, L=L, dx=dx, dy=dy, layout=layout,
            variant=variant or draw(st.sampled_from(VARIANTS)),
            eps=draw(eps if eps is not None else epsilons(1e-3, 10.0)),
            alpha=draw(alpha if alpha is not None else alphas(1e-3, 10.0)),
            relu_grad_at_zero=draw(r if r is not None else relu_grads()),
            samples=samples, seed=draw(st.integers(0, 2**16)),
        )
    except ConfigError:  # outside the valid ranges (r^N / eps > 2^70, ...): refused, see test_ranges.py
        assume(False)


def axis_values(cells: int):
    """One coordinate in [0, 1): bin edges, just below an edge, 0, the float below 1, anything."""
    edges = [j / cells for j in range(cells)]
    below = [float(np.nextafter(j / cells, 0.0)) for j in range(1, cells + 1)]
    return st.one_of(st.sampled_from(edges), st.sampled_from(below), st.just(0.0), st.just(BELOW_ONE),
                     st.floats(0.0, 1.0, exclude_max=True, allow_nan=False))


def points(cells: int, dx: int):
    return st.tuples(*[axis_values(cells) for _ in range(dx)])


def magnitudes(lo: float = 1e-8, hi: float = 1e8):
    return st.one_of(st.sampled_from([1e-8, 1.0, 1e8]), log_uniform(lo, hi)).filter(lambda m: lo <= m <= hi)


@st.composite
def labels(draw, dy: int, lo: float = 1e-8, hi: float = 1e8, sign: float | None = None):
    """Nonzero labels whose sum (= e_check(y)) is well away from 0 (|sum| >= max|y| / 4).

    sign=+1 / -1 forces every component to that sign.
    """
    comps = []
    for _ in range(dy):
        s = sign if sign is not None else draw(st.sampled_from([1.0, -1.0]))
        comps.append(s * draw(magnitudes(lo, hi)))
    y = np.array(comps)
    if abs(y.sum()) < np.abs(y).max() / 4:
        k = int(np.argmax(np.abs(y)))
        y = np.where(np.sign(y) == np.sign(y[k]), y, y / (4 * dy))  # shrink the opposing components
    return tuple(float(v) for v in y)


@st.composite
def triples(draw, cfg: Config, y=None, same_point: bool | None = None):
    """A Sample (x, x*, y) for cfg; x = x* with some probability."""
    x = draw(points(cfg.J, cfg.dx))
    if same_point is None:
        same_point = draw(st.integers(0, 4)) == 0
    xs = x if same_point else draw(points(cfg.L, cfg.dx))
    yy = draw(y if y is not None else labels(cfg.dy))
    return Sample(tuple(x), tuple(xs), tuple(yy), "hypothesis")


def kept_sign(alpha: float) -> float:
    """The label sign whose middle copies survive the ReLUs in the paper variant (-alpha y > 0)."""
    return -1.0 if alpha > 0 else 1.0
