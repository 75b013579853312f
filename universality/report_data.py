"""What a proof report pictures, computed in the verify phase (``verify(..., report_data=True)``).

The report package only reads results: everything its pictures and its interactive "explore" page
show that is not already a claim's or finding's result is executed here, by the same real step the
claims use, and carried on the :class:`~universality.verify.Report` as a :class:`ReportData`.

* ``step``: the real step on one sample (weights before/after, z̄★ against −αv), the sample the
  weight and z̄★ pictures show;
* ``failing``: for ``--variant paper``, a sample whose label the ReLUs clip (αy > 0): the sign that
  fails, pictured beside the working one;
* ``kshot``: for K > 1, the real K-shot step on the first task and each shot's contribution
  −(α/K) v(x_k, x★, y_k) to z̄★ (the paper's formula, shot by shot);
* ``explore``: z̄★ (real step), −αv (formula) and the decoded cell and label over a grid of
  (x, x★, y): the offline explore page interpolates nothing, it looks these up.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .execution import k_shot_step, one_step
from .samples import Sample, make_samples

# the explore grid's cost model: at most this many (8 N D^2) units of real steps (a few seconds at most;
# deterministic, so a report does not depend on the machine's speed)
EXPLORE_BUDGET = 1e9
EXPLORE_MAX = (6, 6, 7)  # x cells, x★ cells, label values


@dataclass
class SampleStep:
    """The real step on one of a report's samples, for the report's pictures."""

    index: int
    sample: Sample
    cell: tuple
    W_before: object  # (N, D, D)
    W_after: object
    zbar_star: object  # (dm,) from the real post-step forward pass at x*
    minus_alpha_v: object  # (dm,) the paper's formula (Lemma 4.1)
    theta_b_post: float


@dataclass
class KShotPicture:
    """The real K-shot step on one task and each shot's formula contribution to z̄★."""

    xs: list
    ys: list
    x_star: tuple
    zbar_star: list  # (dm,) executed
    contributions: list  # K x (dm,): -(alpha/K) v(x_k, x*, y_k)
    cells: list  # (bin x_k, bin x*) per shot


@dataclass
class ReportData:
    step: SampleStep
    failing: SampleStep | None = None
    kshot: KShotPicture | None = None
    explore: dict = field(default_factory=dict)


def _step_on(con, samples, index: int) -> SampleStep:
    s = samples[index]
    st = one_step(con, s.x, s.y, s.x_star)
    return SampleStep(index, s, (con.bin_x(s.x), con.bin_star(s.x_star)), con.W, st.W_post,
                      np.asarray(st.z_star[con.blocks.mid], dtype=float),
                      -con.design.alpha * con.v(s.x, s.x_star, s.y), float(st.theta_b_post))


def _pick(con, samples, kept: bool) -> int | None:
    """A random sample whose label the ReLUs keep (``kept``) or clip, preferring labels of ordinary
    size and a cell whose code channels differ (the picture shows more)."""
    alpha = con.design.alpha
    pool = [n for n, s in enumerate(samples)
            if s.kind == "random" and all((-alpha * y > 0) == kept and y != 0 for y in s.y)]
    sizable = [n for n in pool if all(0.5 <= abs(y) <= 5 for y in samples[n].y)]
    pool = sizable or pool
    if not pool:
        return None

    def spread(n):
        code = np.asarray(con.code_vector(con.bin_x(samples[n].x), con.bin_star(samples[n].x_star)),
                          dtype=float)
        return -(float(code.max() - code.min()) / max(float(np.abs(code).max()), 1e-300))

    return min(pool, key=lambda n: (spread(n), n))


def sample_step(con, samples, index: int | None = None) -> SampleStep:
    """The real step on sample ``index`` (default: the first with a label the ReLUs keep)."""
    if index is None:
        index = _pick(con, samples, kept=True)
        index = 0 if index is None else index
    return _step_on(con, samples, index)


def _cell_center(index: int, per_axis: int, dx: int) -> tuple:
    digits = []
    for _ in range(dx):
        digits.append(index % per_axis)
        index //= per_axis
    return tuple((d + 0.5) / per_axis for d in reversed(digits))


def _spread_pick(n: int, k: int) -> list[int]:
    """k indices of range(n), spread out (all when n <= k)."""
    if n <= k:
        return list(range(n))
    return sorted({int(round(t)) for t in np.linspace(0, n - 1, k)})


def _r(v) -> list:
    return [float(f"{float(t):.6g}") for t in np.asarray(v, dtype=float).reshape(-1)]


def explore_grid(con, samples) -> dict:
    """Real steps over a grid of (x cell, x★ cell, y): what the explore page shows."""
    from .decode import decode

    d, b = con.design, con.blocks
    cost = 8.0 * con.N * b.D * b.D
    n_max = max(8, int(EXPLORE_BUDGET / max(cost, 1.0)))
    nx, ns, ny = EXPLORE_MAX
    while nx * ns * ny > n_max and (nx > 2 or ns > 2 or ny > 3):
        nx, ns, ny = max(2, nx - 1), max(2, ns - 1), max(3, ny - 1)
    xi = _spread_pick(b.cells_x, nx)
    si = _spread_pick(b.cells_star, ns)
    simplex = con.loss.domain == "simplex"
    if simplex:  # labels on the simplex: one-hot classes
        ys = [np.eye(d.dy)[k % d.dy] for k in range(min(ny, d.dy))]
        y_values = [float(k) for k in range(len(ys))]
        y_label = "class"
    else:
        direction = np.ones(d.dy)
        y_values = [float(v) for v in np.linspace(-2.0, 2.0, ny)]
        ys = [v * direction for v in y_values]
        y_label = "y" if d.dy == 1 else "y = t (1, ..., 1)"
    xs = [_cell_center(i, d.J, d.dx) for i in xi]
    xss = [_cell_center(i, d.L, d.dx) for i in si]
    grid = []
    for x in xs:
        row_x = []
        for xst in xss:
            row_s = []
            for y in ys:
                st = one_step(con, x, y, xst)
                z = np.asarray(st.z_star[b.mid], dtype=float)
                t = -d.alpha * con.v(x, xst, y)
                if np.any(z):
                    dec = decode(con, z, d.alpha)
                    decoded = {"cell_x": int(dec.cell_x), "cell_star": int(dec.cell_star),
                               "y": _r(dec.y)}
                else:
                    decoded = None
                row_s.append({"z": _r(z), "t": _r(t), "decoded": decoded,
                              "cell": [int(con.bin_x(x)), int(con.bin_star(xst))]})
            row_x.append(row_s)
        grid.append(row_x)
    return {"x": [list(p) for p in xs], "x_star": [list(p) for p in xss], "y": y_values,
            "y_label": y_label, "x_cells": xi, "star_cells": si, "grid": grid,
            "alpha": d.alpha, "variant": d.variant, "m": b.m, "width": b.s * b.dy,
            "dm": b.dm, "steps": len(xs) * len(xss) * len(ys)}


def kshot_picture(con, task) -> KShotPicture:
    d = con.design
    K = len(task.xs)
    kst = k_shot_step(con, task.xs, task.ys, task.x_star)
    contrib = [-(d.alpha / K) * con.v(x, task.x_star, y) for x, y in zip(task.xs, task.ys)]
    return KShotPicture([list(map(float, x)) for x in task.xs], [_r(y) for y in task.ys],
                        tuple(map(float, task.x_star)), _r(kst.z_star[con.blocks.mid]),
                        [_r(c) for c in contrib],
                        [[int(con.bin_x(x)), int(con.bin_star(task.x_star))] for x in task.xs])


def collect(report) -> ReportData:
    """The pictures' data for ``report`` (its construction and samples)."""
    from .construction.network import Design, build

    con = report.con if report.con is not None else build(Design.from_config(report.config))
    cfg = report.config
    samples = report.samples or make_samples(1, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy, corners=False)
    data = ReportData(sample_step(con, samples))
    if con.design.variant == "paper":
        bad = _pick(con, samples, kept=False)
        if bad is None:  # no clipped label among the samples: flip the picture sample's label
            s = samples[data.step.index]
            flipped = Sample(s.x, s.x_star, tuple(-t for t in s.y), "random")
            bad_samples = list(samples) + [flipped]
            data.failing = _step_on(con, bad_samples, len(bad_samples) - 1)
        else:
            data.failing = _step_on(con, samples, bad)
    if getattr(report, "tasks", None):
        data.kshot = kshot_picture(con, report.tasks[0])
    data.explore = explore_grid(con, samples)
    return data
