"""The (x, x*, y) triples a run checks: S random ones from the seed, plus fixed corner cases.

Corner cases (always included): x and x* exactly on a lower bin edge, x just below an upper edge,
x = x*, both signs of y, |y| tiny but nonzero (1e-8), the extreme points 0 and the largest float
below 1. Inputs live in [0, 1)^dx; labels are never 0 (y = 0 is a known gap, shown as a finding).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sample:
    x: tuple
    x_star: tuple
    y: tuple
    kind: str  # "random" or the corner case's name

    def as_dict(self) -> dict:
        return {"x": list(self.x), "x_star": list(self.x_star), "y": list(self.y), "kind": self.kind}


BELOW_ONE = float(np.nextafter(1.0, 0.0))


def _point(values) -> tuple:
    return tuple(float(v) for v in np.atleast_1d(values))


def random_label(rng: np.random.Generator, dy: int) -> np.ndarray:
    """A label with both signs and magnitudes from about 0.05 to 20; never exactly 0."""
    mag = np.exp(rng.uniform(np.log(0.05), np.log(20.0), size=dy))
    sign = rng.choice([-1.0, 1.0], size=dy)
    return mag * sign


def make_samples(count: int, seed: int, J: int, L: int, dx: int = 1, dy: int = 1,
                 corners: bool = True) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    for _ in range(count):
        out.append(Sample(_point(rng.uniform(0.0, 1.0, dx)), _point(rng.uniform(0.0, 1.0, dx)),
                          _point(random_label(rng, dy)), "random"))
    if not corners:
        return out
    crng = np.random.default_rng([seed, 1])
    j = crng.integers(0, J, size=dx)
    l = crng.integers(0, L, size=dx)
    # an upper edge strictly inside (0, 1] for each axis (1.0 itself when there is one cell)
    jj = crng.integers(1, J, size=dx) / J if J > 1 else np.ones(dx)
    ll = crng.integers(1, L, size=dx) / L if L > 1 else np.ones(dx)
    y0 = np.abs(random_label(crng, dy))
    mid = _point(crng.uniform(0.0, 1.0, dx))
    out += [
        Sample(_point(j / J), _point(l / L), _point(y0), "bin edges, y > 0"),
        Sample(_point(j / J), _point(l / L), _point(-y0), "bin edges, y < 0"),
        Sample(_point(np.nextafter(jj, 0.0)), _point(np.nextafter(ll, 0.0)),
               _point(y0), "just below an edge"),
        Sample(mid, mid, _point(y0), "x = x*, y > 0"),
        Sample(mid, mid, _point(-y0), "x = x*, y < 0"),
        Sample(_point(np.zeros(dx)), _point(np.full(dx, BELOW_ONE)), _point(np.full(dy, 1e-8)),
               "extremes, tiny y > 0"),
        Sample(_point(np.full(dx, BELOW_ONE)), _point(np.zeros(dx)), _point(np.full(dy, -1e-8)),
               "extremes, tiny y < 0"),
    ]
    return out
