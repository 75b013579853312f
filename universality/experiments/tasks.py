"""Task families of the paper's Sec. 7, sampled with NumPy (no torch needed).

- Sinusoid regression (Finn et al. 2017, used in Figs. 2-3): y = A sin(x - gamma), x ~ U[-5, 5],
  A ~ U[0.1, 5], gamma ~ U[0, pi] in distribution. Out of distribution the amplitude moves to
  [5, 10] *or* the phase to [pi, 2 pi], each shift on its own axis.
- Degree-3 polynomials (Fig. 5): y = c3 x^3 + c2 x^2 + c1 x + b, coefficients and bias ~ U[-1, 1],
  x ~ U[-3, 3], 40 points per task.

Test tasks are drawn *paired*: each test task i has one set of uniform draws u_i in [0, 1] that are
mapped into every shifted range, and the same inputs x, so that errors at different shifts (and
of different learners) can be compared task by task (paired bootstrap).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SIN_X = (-5.0, 5.0)
SIN_AMPLITUDE = (0.1, 5.0)
SIN_PHASE = (0.0, math.pi)
SIN_AMPLITUDE_OOD = (5.0, 10.0)
SIN_PHASE_OOD = (math.pi, 2.0 * math.pi)
POLY_X = (-3.0, 3.0)
POLY_COEF = (-1.0, 1.0)
POLY_POINTS = 40


@dataclass
class TaskBatch:
    """A batch of regression tasks: support (K shots) and query points, and the true task parameters.

    Shapes: xs, ys (B, K, 1); xq, yq (B, Q, 1); params (B, P).
    """

    xs: np.ndarray
    ys: np.ndarray
    xq: np.ndarray
    yq: np.ndarray
    params: np.ndarray


def sinusoid(amplitude, phase, x):
    return amplitude[:, None] * np.sin(x - phase[:, None])


def _sin_batch(amplitude, phase, x, k) -> TaskBatch:
    y = sinusoid(amplitude, phase, x)
    params = np.stack([amplitude, phase], axis=1)
    return TaskBatch(x[:, :k, None], y[:, :k, None], x[:, k:, None], y[:, k:, None], params)


def sample_sinusoid(rng: np.random.Generator, batch: int, k: int = 5, queries: int = 10,
                    amplitude=SIN_AMPLITUDE, phase=SIN_PHASE) -> TaskBatch:
    """Training tasks: B sinusoids, K support and Q query points each."""
    a = rng.uniform(*amplitude, size=batch)
    g = rng.uniform(*phase, size=batch)
    x = rng.uniform(*SIN_X, size=(batch, k + queries))
    return _sin_batch(a, g, x, k)


def lerp(u, lo_hi):
    lo, hi = lo_hi
    return lo + (hi - lo) * u


def sinusoid_test_draws(rng: np.random.Generator, tasks: int, k: int = 5, queries: int = 100) -> dict:
    """The uniform draws that define ``tasks`` paired test tasks (see :func:`sinusoid_tasks_at`)."""
    return {"u_amp": rng.uniform(size=tasks), "u_phase": rng.uniform(size=tasks),
            "x": rng.uniform(*SIN_X, size=(tasks, k + queries)), "k": k}


def shifted_range(base, ood, shift: float):
    """The range ``base`` moved by ``shift`` in [0, 1] towards ``ood``: 0 -> base, 1 -> ood."""
    return (base[0] + shift * (ood[0] - base[0]), base[1] + shift * (ood[1] - base[1]))


def sinusoid_tasks_at(draws: dict, amp_shift: float = 0.0, phase_shift: float = 0.0) -> TaskBatch:
    """Paired test tasks: amplitude and phase ranges moved by the given shifts (0 = in distribution,
    1 = the paper's OOD range on that axis)."""
    a = lerp(draws["u_amp"], shifted_range(SIN_AMPLITUDE, SIN_AMPLITUDE_OOD, amp_shift))
    g = lerp(draws["u_phase"], shifted_range(SIN_PHASE, SIN_PHASE_OOD, phase_shift))
    return _sin_batch(a, g, draws["x"], draws["k"])


def polynomial(coef, x):
    """coef (B, 4) = (c3, c2, c1, bias); x (B, n)."""
    c3, c2, c1, b = (coef[:, i:i + 1] for i in range(4))
    return ((c3 * x + c2) * x + c1) * x + b


def sample_polynomial(rng: np.random.Generator, batch: int, k: int = 20,
                      points: int = POLY_POINTS) -> TaskBatch:
    """Degree-3 polynomial tasks, ``points`` inputs each: the first ``k`` are the support set (the
    one inner step's data), the rest the query set."""
    coef = rng.uniform(*POLY_COEF, size=(batch, 4))
    x = rng.uniform(*POLY_X, size=(batch, points))
    y = polynomial(coef, x)
    return TaskBatch(x[:, :k, None], y[:, :k, None], x[:, k:, None], y[:, k:, None], coef)
