"""End-to-end universality (Lemma 4.1): one real gradient step reproduces a target learning algorithm.

For a target f_target(x, y, x*) this module builds h_post as an explicit ReLU network
(:mod:`universality.construction.hpost`), realises the multiplexer f_out as a ReLU network too, and
measures, by running the full network f(.; theta) = f_out(prod W_i phi(.)) with one real step on
(x, y) per test triple, how close f(x*; theta') gets to f_target(x, y, x*):

* :func:`measure_grid`: at bin centres and grid labels, where the construction is exact;
* :func:`measure_random`: on random test triples (|y|_1 >= delta), sup and RMS error;
* :func:`sweep`: the same random triples over a sequence of resolutions (J = L and the y-grid
  refined together), the convergence table and the fitted rate;
* :func:`plot_convergence`: the convergence plot (matplotlib, Agg, imported lazily).

Measurement only: the verdicts are computed in :mod:`universality.claims.universal`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .config import Config, option
from .errors import ConfigError
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # h_post is built only when a target runs: imported there (keeps the CLI's start-up light)
    from .construction.hpost import HPost, Mux
from .construction.network import Construction, Design, build
from .execution import NetHead, forward, net_abs_forward, one_step
from .targets import Target, output_dim, resolve


MAX_TEST_POINTS = 100_000  # one real step each: about 5 ms apiece on the small layouts
# labels live in [-y_max, y_max]^dy: within 2^-20 .. 2^20 the y-grid spacing, the gates' thresholds
# (tau ~ |alpha| delta) and the realised f_out's bounds stay far from float64's limits
Y_MAX_RANGE = (2.0**-20, 2.0**20)
MAX_GRID_SIZE = 1025  # y-grid points per label coordinate (memory refuses most of these anyway)
MAX_SWEEP_SIZE = 4096  # J = L of a sweep level


@dataclass(frozen=True)
class UniversalOptions:
    """What to reproduce and how finely: validated once (bad input raises ConfigError)."""

    target: object = option(cli="--target", metavar="NAME|MODULE:FUNC", required=False, group="universality",
                            help="target learning algorithm f(x, y, x*): copy, cos, nn, two-output (dy = 2), sin-y, "
                                 "or module:function; adds the claims universal-exact-on-grid and universal-converges")
    # a name, "module:function", a callable or a Target
    grid_size: int = option(9, cli="--y-grid", metavar="G", group="universality",
                            help="y-grid points per label coordinate of h_post at the run's sizes, "
                                 f"2..{MAX_GRID_SIZE} (default {{default}})")
    y_max: float = option(2.0, cli="--y-max", metavar="Y", group="universality",
                          help=f"labels live in [-Y, Y]^dy, Y in [{Y_MAX_RANGE[0]:.2g}, {Y_MAX_RANGE[1]:.2g}] "
                               "(default {default})")
    delta: float = option(0.1, cli="--y-min", metavar="DELTA", group="universality",
                          help="test labels have |y|_1 >= DELTA, where the gates are exact; in [Y 2^-20, Y) "
                               "(default {default})")
    test_points: int = option(200, metavar="T", group="universality",
                              help=f"random (x, y, x*) test triples, one real step each, 1..{MAX_TEST_POINTS:,} "
                                   "(default {default})")
    sweep: tuple = option((2, 4, 8), metavar="J1,J2,...", group="universality",
                          help="J = L of each convergence level, strictly increasing (default {default}); "
                               "the paper layout's N follows")
    sweep_grid: tuple | None = option(None, metavar="G1,G2,...", group="universality",
                                      help="y-grid size per level, or one for all (default 5,9,17,... for dy = 1; "
                                           "3,5,9,... for dy >= 2)")
    # default (5, 9, 17) for dy = 1 and (3, 5, 9) for dy >= 2 (the hat layers grow like G^dy)
    grid_checks: int = option(200, cli="", help="at most this many (cell centre, grid label) triples")
    seed: int = option(0, cli="", help="the run's seed (the CLI passes --seed)")

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "target", resolve(self.target))
        for name in ("grid_size", "test_points", "grid_checks", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ConfigError(f"{name} must be an integer, got {v!r}")
        if not 2 <= self.grid_size <= MAX_GRID_SIZE:
            raise ConfigError(f"the y-grid needs 2..{MAX_GRID_SIZE} points, got {self.grid_size}")
        if not 1 <= self.test_points <= MAX_TEST_POINTS:
            raise ConfigError(f"test-points must be in 1..{MAX_TEST_POINTS} (one real step each), "
                              f"got {self.test_points}")
        if not 1 <= self.grid_checks <= MAX_TEST_POINTS:
            raise ConfigError(f"grid checks must be in 1..{MAX_TEST_POINTS}, got {self.grid_checks}")
        for name in ("y_max", "delta"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ConfigError(f"{name} must be a real number, got {v!r}")
        lo, hi = Y_MAX_RANGE
        if not (math.isfinite(self.y_max) and lo <= self.y_max <= hi):
            raise ConfigError(f"y-max must be in [{lo:.3g}, {hi:.3g}] (labels in [-Y, Y]^dy), got {self.y_max:g}")
        if not (math.isfinite(self.delta) and self.y_max * 2.0**-20 <= self.delta < self.y_max):
            raise ConfigError(f"y-min (delta) must be in [y-max * 2^-20, y-max) = [{self.y_max * 2.0**-20:.3g}, "
                              f"{self.y_max:g}), got {self.delta:g}")
        sweep = tuple(int(v) for v in self.sweep)
        if any(not 1 <= v <= MAX_SWEEP_SIZE for v in sweep):
            raise ConfigError(f"sweep sizes must be in 1..{MAX_SWEEP_SIZE}, got {','.join(map(str, sweep))}")
        if any(b < a for a, b in zip(sweep, sweep[1:])):
            raise ConfigError(f"sweep levels must not decrease (each level refines the previous one), got "
                              f"{','.join(map(str, sweep))}; use --sweep {','.join(map(str, sorted(sweep)))}")
        if self.sweep_grid is None:  # the default y-grids increase strictly: any non-decreasing J refines
            set_(self, "sweep", sweep)
            return
        grid = tuple(int(v) for v in self.sweep_grid)
        if len(grid) == 1:
            grid = grid * len(sweep)
        if sweep and len(grid) != len(sweep):
            raise ConfigError(f"sweep-grid needs one value or {len(sweep)} (one per sweep level), got {len(grid)}")
        if any(not 2 <= v <= MAX_GRID_SIZE for v in grid):
            raise ConfigError(f"sweep-grid sizes must be in 2..{MAX_GRID_SIZE}, got {','.join(map(str, grid))}")
        if any(b < a for a, b in zip(grid, grid[1:])):
            raise ConfigError(f"sweep-grid sizes must not decrease (each level refines the previous one), got "
                              f"{','.join(map(str, grid))}")
        if any((j2, g2) == (j1, g1) for j1, g1, j2, g2 in zip(sweep, grid, sweep[1:], grid[1:])):
            raise ConfigError("each sweep level must refine the previous one (a larger J = L or a larger y-grid), "
                              f"got levels {list(zip(sweep, grid))}")
        set_(self, "sweep", sweep)
        set_(self, "sweep_grid", grid)


@dataclass
class Prepared:
    con: Construction
    hpost: HPost
    mux: Mux
    head: NetHead
    target: Target
    build_s: float


def prepare(design: Design | Config, target, *, grid_size: int, y_max: float, delta: float) -> Prepared:
    """Build the construction, h_post and the realised multiplexer for one design."""
    t0 = time.perf_counter()
    con = design if isinstance(design, Construction) else build(design)
    target = resolve(target)
    d_out = output_dim(target, con.design.dx, con.design.dy)
    if d_out != con.design.dy:
        raise ConfigError(f"target {target.name!r} returns {d_out} values but labels have dy = {con.design.dy}: "
                          "f_out's two branches must have the label's dimension")
    from .construction.hpost import build_hpost, build_mux

    hp = build_hpost(con, target, grid_size=grid_size, y_max=y_max, delta=delta, d_out=d_out)
    mux = build_mux(con, hp)
    return Prepared(con, hp, mux, NetHead(mux), target, time.perf_counter() - t0)


def random_triples(n: int, dx: int, dy: int, y_max: float, delta: float, seed: int) -> list[tuple]:
    """n random (x, y, x*): x, x* uniform in [0, 1)^dx, y uniform in [-y_max, y_max]^dy with |y|_1 >= delta
    and sum(y) != 0 (e_check(y) = sum(y) must be nonzero for the switch to flip)."""
    rng = np.random.default_rng([seed, 7])
    out = []
    while len(out) < n:
        y = rng.uniform(-y_max, y_max, dy)
        if np.sum(np.abs(y)) < delta or np.sum(y) == 0:
            continue
        out.append((tuple(rng.uniform(0, 1, dx)), y, tuple(rng.uniform(0, 1, dx))))
    return out


def small_label_triples(n: int, dx: int, dy: int, delta: float, seed: int) -> list[tuple]:
    """n random (x, y, x*) with 0 < |y|_1 < delta: where the realised gates are only approximate."""
    rng = np.random.default_rng([seed, 13])
    out = []
    while len(out) < n:
        y = rng.uniform(-1, 1, dy)
        y = y / np.sum(np.abs(y)) * delta * 10 ** rng.uniform(-3, 0) * (1 - 1e-9)
        if np.sum(y) == 0:
            continue
        out.append((tuple(rng.uniform(0, 1, dx)), y, tuple(rng.uniform(0, 1, dx))))
    return out


def grid_triples(prep: Prepared, count: int, seed: int) -> list[tuple]:
    """(cell centre x_j, grid label, cell centre x*_l) with |y|_1 >= delta and sum(y) != 0: all, or ``count``."""
    hp = prep.hpost
    # e_check(y) = sum(y) = 0 leaves theta_b at 0 (the zero-label gap): no switch, not tested here
    labels = [yl for yl in hp.grid_labels() if np.sum(np.abs(yl)) >= hp.delta and np.sum(yl) != 0]
    K = hp.K
    total = K * len(labels)
    if total <= count:
        picks = [(k, i) for k in range(K) for i in range(len(labels))]
    else:
        rng = np.random.default_rng([seed, 11])
        flat = rng.choice(total, size=count, replace=False)
        picks = [(int(f) // len(labels), int(f) % len(labels)) for f in sorted(flat)]
    cs = hp.info["cells_star"]
    return [(tuple(hp.centres_x[k // cs]), np.array(labels[i]), tuple(hp.centres_star[k % cs])) for k, i in picks]


@dataclass
class Measured:
    """Per-triple results of running the full network with one real step each."""

    x: np.ndarray  # (T, dx)
    y: np.ndarray  # (T, dy)
    x_star: np.ndarray
    yhat: np.ndarray  # (T, dy): f(x*; theta')
    reference: np.ndarray  # (T, dy): what it is compared with
    error: np.ndarray  # (T,): max |yhat - reference|
    branch: list  # the multiplexer's branch after the step
    magnitude: np.ndarray  # (T,): absolute-value forward pass (rounding scale)
    grad_residual: np.ndarray  # (T,): |e through the realised f_out - W_g^T grad l| before the step
    theta_h_grad: np.ndarray  # (T,): max |dl/dtheta_h| before the step
    ops: int  # operation count n for gamma_n
    seconds: float


def _run(prep: Prepared, triples, reference: str) -> Measured:
    con, hp, head, target = prep.con, prep.hpost, prep.head, prep.target
    b = con.blocks
    t0 = time.perf_counter()
    W_abs = None
    rows = {k: [] for k in ("yhat", "ref", "err", "branch", "mag", "gres", "th")}
    for x, y, xs in triples:
        st = one_step(con, x, y, xs, f_out=head)
        yhat = st.out_star_post.yhat
        if reference == "cell":
            j, l = con.bin_x(x), con.bin_star(xs)
            ref = target(hp.centres_x[j], y, hp.centres_star[l])
        else:
            ref = target(x, y, xs)
        # the exact head's error at z (W_g^T grad l): what the realised f_out must reproduce
        e_exact = con.Wg.T @ np.asarray(con.loss.grad(st.y, con.Wg @ st.fwd_x.z), dtype=float)
        W_abs = np.abs(st.W_post)
        zabs = forward(W_abs, np.abs(st.phi_star_post), relu=False).post[0][b.mid]
        mag = float(np.max(net_abs_forward(hp.net, zabs))) + float(np.max(np.abs(ref)))
        rows["yhat"].append(yhat)
        rows["ref"].append(ref)
        rows["err"].append(float(np.max(np.abs(yhat - ref))))
        rows["branch"].append(st.out_star_post.branch)
        rows["mag"].append(mag)
        rows["gres"].append(float(np.max(np.abs(st.e - e_exact))))
        rows["th"].append(float(st.g_theta_h))
    ops = con.N * (con.D + 2) + 8 + sum(int(l.W.shape[-1]) for l in hp.net.layers) + 8
    return Measured(np.array([t[0] for t in triples], dtype=float), np.array([t[1] for t in triples], dtype=float),
                    np.array([t[2] for t in triples], dtype=float), np.array(rows["yhat"]), np.array(rows["ref"]),
                    np.array(rows["err"]), rows["branch"], np.array(rows["mag"]), np.array(rows["gres"]),
                    np.array(rows["th"]), ops, time.perf_counter() - t0)


def measure_grid(prep: Prepared, count: int = 200, seed: int = 0) -> Measured:
    """Run at bin centres and grid labels; the reference is f_target there (where h_post is exact)."""
    return _run(prep, grid_triples(prep, count, seed), "cell")


def measure_random(prep: Prepared, triples) -> Measured:
    """Run on the given (x, y, x*) triples; the reference is f_target(x, y, x*) itself."""
    return _run(prep, triples, "true")


def rms(err) -> float:
    """Root mean square without overflow (scaled by the largest entry)."""
    err = np.abs(np.asarray(err, dtype=float))
    top = float(err.max(initial=0.0))
    if top == 0.0 or not math.isfinite(top):
        return top
    return top * float(np.sqrt(np.mean((err / top) ** 2)))


# ---- the sweep -------------------------------------------------------------------------------
@dataclass
class Level:
    J: int
    L: int
    N: int
    D: int
    layout: str
    grid_size: int
    h: float  # the refinement variable of the fit: cell width 1/J, or the y-grid spacing when J is fixed
    y_step: float  # y-grid spacing
    hpost_parameters: int
    sup: float
    rms: float
    collapsed: int  # test triples where the step left zbar* = 0 (g_pre answered)
    sup_kept: float  # sup over triples with -alpha y_1 > 0
    sup_flipped: float  # sup over triples with -alpha y_1 < 0
    floor: float  # largest rounding tolerance over the triples
    build_s: float
    eval_s: float
    points: int

    def as_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in self.__dict__.items()}


def level_design(cfg: Config, n: int) -> Config:
    """The run's configuration at J = L = n: same variant and layout; the paper layout's N follows."""
    layout = cfg.resolved_layout
    cells = (n ** cfg.dx) ** 2
    if layout == "paper":
        return cfg.with_(J=n, L=n, N=cells + 2, layout="paper")
    return cfg.with_(J=n, L=n, layout="compact")


def hpost_bytes(cfg: Config, grid_size: int) -> int:
    """Dense float64 bytes of h_post's weights (see :func:`universality.memory.hpost_weight_bytes`)."""
    from .memory import hpost_weight_bytes

    return hpost_weight_bytes(cfg, grid_size)


def check_sizes(cfg: Config, opts: UniversalOptions) -> None:
    """Refuse (ConfigError, one line) before any work: a loss whose labels the experiment cannot
    draw, a target of the wrong dimension, a run (with every sweep level) that would not fit in
    memory (:func:`universality.memory.check`)."""
    from .losses import get_loss
    from .memory import check

    if get_loss(cfg.loss).domain != "real":
        raise ConfigError(
            f"--target with --loss {cfg.loss} is not supported: the universality experiment draws labels from "
            f"[-y_max, y_max]^dy, but {cfg.loss}'s gradient at 0 only identifies labels on the simplex (it loses "
            f"the label's mean), so no h_post can read y back; use --loss mse")
    target = resolve(opts.target)
    d_out = output_dim(target, cfg.dx, cfg.dy)
    if d_out != cfg.dy:
        raise ConfigError(f"target {target.name!r} returns {d_out} values but labels have dy = {cfg.dy}: "
                          "f_out's two branches must have the label's dimension")
    check(cfg, universal=opts)


def sweep_grid(opts: UniversalOptions, dy: int) -> tuple:
    """The y-grid size of each sweep level: as given, else 2^(i+2)+1 (dy = 1) or 2^(i+1)+1 (dy >= 2),
    so that the y-grid spacing halves with the cell width."""
    if opts.sweep_grid is not None:
        return opts.sweep_grid
    return tuple(2 ** (i + (2 if dy == 1 else 1)) + 1 for i in range(len(opts.sweep)))


def fit_rate(h, err, floor) -> float | None:
    """Least-squares slope p of log(err) against log(h) over the levels above the rounding floor."""
    pts = [(math.log(a), math.log(e)) for a, e, f in zip(h, err, floor) if e > f and e > 0]
    if len(pts) < 2:
        return None
    X = np.array([p[0] for p in pts])
    Y = np.array([p[1] for p in pts])
    return float(np.polyfit(X, Y, 1)[0])


@dataclass
class SweepResult:
    target: str
    variant: str
    layout: str
    levels: list
    rate_rms: float | None
    rate_sup: float | None
    test_points: int
    y_max: float
    delta: float
    variable: str = "h = 1/J = 1/L, y-grid spacing refined alongside"

    def as_dict(self) -> dict:
        return {"target": self.target, "variant": self.variant, "layout": self.layout,
                "levels": [l.as_dict() for l in self.levels], "rate_rms": self.rate_rms,
                "rate_sup": self.rate_sup, "test_points": self.test_points, "y_max": self.y_max,
                "delta": self.delta,
                "rate_meaning": f"error ~ h^rate, {self.variable}", "variable": self.variable}


def sweep(cfg: Config, opts: UniversalOptions, progress=None) -> SweepResult:
    """Run the random test triples at each level of ``opts.sweep`` and fit the convergence rate."""
    from .claims.base import SAFETY, gamma  # tolerance policy only (no claims run here)

    triples = random_triples(opts.test_points, cfg.dx, cfg.dy, opts.y_max, opts.delta, opts.seed)
    levels = []
    sign = -math.copysign(1.0, cfg.alpha)
    for i, (n, G) in enumerate(zip(opts.sweep, sweep_grid(opts, cfg.dy))):
        c = level_design(cfg, n)
        prep = prepare(Design.from_config(c), opts.target, grid_size=G, y_max=opts.y_max, delta=opts.delta)
        m = measure_random(prep, triples)
        kept = sign * m.y[:, 0] > 0
        floor = float(np.max(SAFETY * gamma(m.ops) * m.magnitude))
        levels.append(Level(
            J=n, L=n, N=c.N, D=c.D, layout=prep.con.design.layout, grid_size=G, h=1.0 / n,
            y_step=2.0 * opts.y_max / (G - 1),
            hpost_parameters=prep.hpost.net.parameters, sup=float(m.error.max()),
            rms=rms(m.error),
            collapsed=int(sum(br != "h_post" for br in m.branch)),
            sup_kept=float(m.error[kept].max()) if kept.any() else 0.0,
            sup_flipped=float(m.error[~kept].max()) if (~kept).any() else 0.0,
            floor=floor, build_s=round(prep.build_s, 4), eval_s=round(m.seconds, 4), points=len(triples)))
        if progress:
            progress(i + 1, len(opts.sweep))
    variable = "h = 1/J = 1/L, y-grid spacing refined alongside"
    if len({l.J for l in levels}) == 1 and len({l.grid_size for l in levels}) > 1:
        for l in levels:  # J fixed: the y-grid is what is refined
            l.h = l.y_step
        variable = f"h = y-grid spacing (J = L = {levels[0].J} fixed)"
    elif len({l.grid_size for l in levels}) == 1:
        variable = f"h = 1/J = 1/L (y-grid {levels[0].grid_size} fixed)"
    hs = [l.h for l in levels]
    return SweepResult(resolve(opts.target).name, cfg.variant, cfg.resolved_layout, levels,
                       fit_rate(hs, [l.rms for l in levels], [l.floor for l in levels]),
                       fit_rate(hs, [l.sup for l in levels], [l.floor for l in levels]),
                       opts.test_points, opts.y_max, opts.delta, variable)


@dataclass
class UniversalResult:
    """Everything the universality run measured (the claims' verdicts live in the Report)."""

    options: UniversalOptions
    grid: Measured
    random: Measured
    sweep: SweepResult
    small: Measured | None  # labels with |y|_1 < delta (the gates' transition zone), for the record
    hpost: HPost = field(repr=False)
    mux: Mux = field(repr=False)

    def as_dict(self) -> dict:
        o = self.options
        return {
            "target": {"name": o.target.name, "description": o.target.description},
            "options": {"grid_size": o.grid_size, "y_max": o.y_max, "delta": o.delta,
                        "test_points": o.test_points, "sweep": list(o.sweep),
                        "sweep_grid": [l.grid_size for l in self.sweep.levels],
                        "seed": o.seed},
            "h_post": self.hpost.describe(),
            "multiplexer": self.mux.describe(),
            "at_run_sizes": {
                "grid_points_checked": int(self.grid.error.size),
                "grid_max_error": float(self.grid.error.max(initial=0.0)),
                "random_points": int(self.random.error.size),
                "random_sup_error": float(self.random.error.max(initial=0.0)),
                "random_rms_error": rms(self.random.error),
                "collapsed": int(sum(b != "h_post" for b in self.random.branch)),
            },
            "below_delta": None if self.small is None else {
                "points": int(self.small.error.size),
                "label_l1_range": [float(np.abs(self.small.y).sum(axis=1).min()),
                                   float(np.abs(self.small.y).sum(axis=1).max())],
                "sup_error_vs_cell_value": float(self.small.error.max(initial=0.0)),
                "branches": {b: int(sum(x == b for x in self.small.branch)) for b in sorted(set(self.small.branch))},
                "meaning": "the multiplexer's and the cells' indicator gates are discontinuous at zbar = 0 "
                           "(y = 0); the realised ReLU gates are exact only for |y|_1 >= delta. Below it the "
                           "output blends branches and cells; this is the error there (not a claim)",
            },
            "sweep": self.sweep.as_dict(),
        }


def measure_universality(cfg: Config, con: Construction | None, opts: UniversalOptions,
                         progress=None) -> UniversalResult:
    """Measure at the run's own sizes (grid and random triples) and run the sweep.

    ``progress(phase, done, total)``, when given, is called as the phases advance."""
    check_sizes(cfg, opts)

    def tick(phase, done, total):
        if progress:
            progress(phase, done, total)

    tick("universality: building h_post", 0, 1)
    prep = prepare(con if con is not None else Design.from_config(cfg), opts.target, grid_size=opts.grid_size,
                   y_max=opts.y_max, delta=opts.delta)
    tick("universality: grid triples", 0, 3)
    g = measure_grid(prep, opts.grid_checks, opts.seed)
    tick("universality: random triples", 1, 3)
    r = measure_random(prep, random_triples(opts.test_points, cfg.dx, cfg.dy, opts.y_max, opts.delta, opts.seed))
    tick("universality: small labels", 2, 3)
    small = _run(prep, small_label_triples(min(opts.test_points, 50), cfg.dx, cfg.dy, opts.delta, opts.seed), "cell")
    tick("universality: sweep levels", 0, len(opts.sweep))
    s = sweep(cfg, opts, progress=lambda done, total: tick("universality: sweep levels", done, total))
    return UniversalResult(opts, g, r, s, small, prep.hpost, prep.mux)


# ---- plot ------------------------------------------------------------------------------------
def plot_convergence(result, path) -> str:
    """Write the convergence plot (log-log error against h = 1/J) to ``path`` (PNG, PDF or SVG by suffix).

    ``result``: a :class:`SweepResult`, a :class:`UniversalResult`, a Report with universality results,
    or the ``sweep`` dict of the JSON output. Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = result
    if hasattr(data, "universal") and data.universal is not None:
        data = data.universal
    if isinstance(data, UniversalResult):
        data = data.sweep
    if isinstance(data, SweepResult):
        data = data.as_dict()
    if isinstance(data, dict) and "sweep" in data and "levels" not in data:
        data = data["sweep"]
    levels = data["levels"]
    if not levels:
        raise ValueError("the sweep has no levels to plot")
    h = np.array([l["h"] for l in levels])
    sup = np.array([l["sup"] for l in levels])
    rms = np.array([l["rms"] for l in levels])
    floor = np.array([l["floor"] for l in levels])
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    tiny = max(float(floor.min()), 1e-17)
    ax.loglog(h, np.maximum(sup, tiny), "o-", label="sup error")
    ax.loglog(h, np.maximum(rms, tiny), "s-", label="RMS error")
    ax.loglog(h, np.maximum(floor, tiny), ":", color="grey", label="rounding floor")
    rate = data.get("rate_rms")
    if rate is not None:
        ok = rms > floor
        c = float(np.exp(np.mean(np.log(rms[ok]) - rate * np.log(h[ok]))))
        ax.loglog(h, c * h ** rate, "--", color="black", label=f"fit: RMS ~ h^{rate:.2f}")
    for l in levels:
        ax.annotate(f"J=L={l['J']}, G={l['grid_size']}", (l["h"], max(l["rms"], tiny)), fontsize=7,
                    textcoords="offset points", xytext=(4, -10))
    ax.invert_xaxis()
    ax.set_xlabel(data.get("variable", "h = 1/J = 1/L"))
    ax.set_ylabel("|f(x*; theta') - f_target(x, y, x*)|")
    ax.set_title(f"one step reproduces '{data['target']}' ({data['layout']} layout, {data['variant']} variant)",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)
