"""The (x, x*, y) triples a run checks: S random ones from the seed, plus fixed corner cases.

Corner cases (always included): x and x* exactly on a lower bin edge, x just below an upper edge,
x = x*, both signs of y, |y| tiny but nonzero (1e-8), the extreme points 0 and the largest float
below 1. Inputs live in [0, 1)^dx; labels are never 0 (y = 0 is a known gap, shown as a finding).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Sampled values are rounded to this many significant digits: "same seed, same run" on every
# x86-64. NumPy's vectorised exp/log take SIMD paths (AVX-512 or not) that may differ in the last
# bit; the RNG's uniform draws are exact, math.exp/math.log are scalar libm calls, and the rounding
# removes what a last-bit difference could leave.
PORTABLE_DIGITS = 12


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


def portable(value: float) -> float:
    """``value`` rounded to PORTABLE_DIGITS significant digits (the same on every CPU)."""
    return float(f"{float(value):.{PORTABLE_DIGITS}g}")


def log_uniform(rng: np.random.Generator, lo: float, hi: float, size: int) -> np.ndarray:
    """``size`` magnitudes log-uniform in [lo, hi]: the RNG's exact uniform draws mapped through
    scalar exp and rounded (:func:`portable`), so that no SIMD path changes a digit."""
    a, b = math.log(lo), math.log(hi)
    u = rng.uniform(a, b, size=size)
    return np.array([portable(math.exp(float(v))) for v in u])


def random_label(rng: np.random.Generator, dy: int) -> np.ndarray:
    """A label with both signs and magnitudes from about 0.05 to 20; never exactly 0."""
    mag = log_uniform(rng, 0.05, 20.0, dy)
    sign = rng.choice([-1.0, 1.0], size=dy)
    return mag * sign


def _label_fn(loss: str):
    """How random labels of the loss's domain are drawn (real labels as before for MSE, L1, ...)."""
    from .losses import get_loss

    lo = get_loss(loss)
    if lo.domain == "real":
        return random_label
    return lo.sample_label


def make_samples(count: int, seed: int, J: int, L: int, dx: int = 1, dy: int = 1,
                 corners: bool = True, loss: str = "mse") -> list[Sample]:
    """S random triples plus the corner cases; labels from the loss's domain (simplex for CE)."""
    rng = np.random.default_rng(seed)
    label = _label_fn(loss)
    out: list[Sample] = []
    for _ in range(count):
        out.append(Sample(_point(rng.uniform(0.0, 1.0, dx)), _point(rng.uniform(0.0, 1.0, dx)),
                          _point(label(rng, dy)), "random"))
    if not corners:
        return out
    if label is not random_label:
        return out + _simplex_corners(seed, J, L, dx, dy)
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


def _simplex_corners(seed: int, J: int, L: int, dx: int, dy: int) -> list[Sample]:
    """The same seven input corners with simplex labels (vertices and interior points) for CE."""
    crng = np.random.default_rng([seed, 1])
    j = crng.integers(0, J, size=dx)
    l = crng.integers(0, L, size=dx)
    jj = crng.integers(1, J, size=dx) / J if J > 1 else np.ones(dx)
    ll = crng.integers(1, L, size=dx) / L if L > 1 else np.ones(dx)
    mid = _point(crng.uniform(0.0, 1.0, dx))
    eye = np.eye(dy)
    first, last = eye[0], eye[dy - 1]
    mix = 0.6 * eye[0] + 0.4 * eye[1]
    mix2 = 0.3 * eye[dy - 1] + 0.7 * eye[dy - 2]
    return [
        Sample(_point(j / J), _point(l / L), _point(first), "bin edges, class 0"),
        Sample(_point(j / J), _point(l / L), _point(last), "bin edges, last class"),
        Sample(_point(np.nextafter(jj, 0.0)), _point(np.nextafter(ll, 0.0)), _point(first),
               "just below an edge"),
        Sample(mid, mid, _point(first), "x = x*, class 0"),
        Sample(mid, mid, _point(mix), "x = x*, interior of the simplex"),
        Sample(_point(np.zeros(dx)), _point(np.full(dx, BELOW_ONE)), _point(mix), "extremes, mixed label"),
        Sample(_point(np.full(dx, BELOW_ONE)), _point(np.zeros(dx)), _point(mix2), "extremes, mixed label 2"),
    ]


@dataclass(frozen=True)
class Task:
    """A K-shot task: K training pairs (x_k, y_k) and one test input x*."""

    xs: tuple
    ys: tuple
    x_star: tuple
    kind: str

    @property
    def K(self) -> int:
        return len(self.xs)

    def as_dict(self) -> dict:
        return {"xs": [list(x) for x in self.xs], "ys": [list(y) for y in self.ys],
                "x_star": list(self.x_star), "kind": self.kind}


def cell_point(index: int, per_axis: int, dx: int, rng: np.random.Generator | None = None) -> tuple:
    """A point inside flattened cell ``index`` of a per_axis^dx grid (random inside it, or the centre)."""
    digits = []
    for _ in range(dx):
        digits.append(index % per_axis)
        index //= per_axis
    digits = digits[::-1]
    off = rng.uniform(0.05, 0.95, dx) if rng is not None else np.full(dx, 0.5)
    return _point((np.array(digits) + off) / per_axis)


def make_tasks(count: int, seed: int, K: int, J: int, L: int, dx: int = 1, dy: int = 1,
               loss: str = "mse") -> list[Task]:
    """``count`` K-shot tasks whose x_k fall in distinct cells (when K <= J^dx), labels from the
    loss's domain, all label components of one task of one sign per component (real labels), so
    that the middle channel keeps one sign per coordinate (see docs/losses-and-kshot.md)."""
    rng = np.random.default_rng([seed, 2, K])
    label = _label_fn(loss)
    cells = J**dx
    out: list[Task] = []
    for n in range(max(count, 1)):
        distinct = K <= cells
        idx = rng.choice(cells, size=K, replace=not distinct)
        xs = tuple(cell_point(int(c), J, dx, rng) for c in idx)
        ys = [label(rng, dy) for _ in range(K)]
        if label is random_label:
            sign = rng.choice([-1.0, 1.0], size=dy)
            ys = [sign * np.abs(y) for y in ys]
        x_star = _point(rng.uniform(0.0, 1.0, dx))
        out.append(Task(xs, tuple(_point(y) for y in ys), x_star,
                        "distinct cells" if distinct else "coincident cells (K > cells)"))
    return out
