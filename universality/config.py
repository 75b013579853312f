"""The sizes and options of one verification run, validated once.

Every user-facing entry point (the CLI, :func:`universality.build`, :func:`universality.verify`)
turns its arguments into a :class:`Config`. Bad input raises :class:`~universality.errors.ConfigError`
here and nowhere else; the CLI prints its message as one line and exits with status 2.

Each field carries its command-line option in ``metadata`` (help text, option name, metavar,
choices): :mod:`universality.cli` builds its options from these fields and their defaults, so a
new field becomes an option without touching the CLI.

Valid ranges come from float64's limits and the depth (see :data:`RANGES` and docs/options.md):
no accepted input can overflow, underflow or make a tolerance meaningless.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import MISSING, dataclass, field, replace

from .errors import ConfigError
from .memory import format_bytes  # noqa: F401 - re-exported (findings import it from here)

VARIANTS = ("signed", "paper")
LAYOUTS = ("auto", "paper", "compact")
LOSSES = ("mse", "ce", "l1", "hinge", "huber")

# ---- valid ranges, from float64's limits ------------------------------------------------------
UNIT_ROUNDOFF = 2.0**-53
# eps: A_i = eps I + E_i carries the code's unit signal next to eps. Above 2^13 = 8192 the signal's
# share 1/eps keeps fewer than 40 of float64's 53 bits and the decoder's margin sinks towards
# rounding (eps = 3e6 gave a wrong FAIL); below 2^-40 (about 9.1e-13) A_N = eps I keeps fewer than
# 13 bits above the unit roundoff u = 2^-53 and its telescoping check becomes undecidable.
EPS_MIN = 2.0**-40
EPS_MAX = 2.0**13
# alpha: the step's values are alpha times labels (1e-8 .. 20), gains (up to 1 + eps) and codes;
# |alpha| within 2^-256 .. 2^256 keeps every product, and its square, normal float64.
ALPHA_MIN = 2.0**-256
ALPHA_MAX = 2.0**256
# ReLU'(0) = r > 0 is compensated by A_i / r^i, i = 1..N: the layers' gains spread by r^N. Above
# 2^53 the smallest layer's contribution falls below the largest one's rounding; below 2^-256 the
# compensated gains (and the gradients' squares) leave float64's normal range.
R_POWER_MIN_LOG2 = -256
R_POWER_MAX_LOG2 = 53
# ... and for r > 1 the smallest gain eps / r^N must stay within 2^70 of the largest (about 1):
# r^N / eps <= 2^70 (beyond it the deep layers' eps part sinks below rounding: v-decodes UNDECIDED)
R_SPREAD_MAX_LOG2 = 70
# eps's floor grows with depth: the telescoping products of the boundary check accumulate rounding
# over N layers of width ~N, so A_N = eps I must stay above a bound growing like N^2
EPS_DEPTH_REF = 16
MAX_N = 100_000  # beyond memory anyway; keeps r's range and the size arithmetic finite
MAX_SEED = 2**63 - 1
# Hostile-input guard: a grid of more than 2^48 cells per input can never fit in memory, and
# computing J**dx for a huge dx would hang before the memory check could refuse it.
MAX_CELL_BITS = 48
MAX_SAMPLES = 100_000
MAX_SHOT_STEPS = 1_000_000  # K * samples: forward+backward passes the K-shot claims run (times 3)
MAX_MEMORY_GIB = 2.0**20  # --max-memory: at most 1 PiB


def r_range(N: int, eps: float = 0.1) -> tuple[float, float]:
    """The ReLU'(0) values r > 0 accepted at depth N: r^N within [2^-256, 2^53] and r^N / eps <= 2^70."""
    hi = min(R_POWER_MAX_LOG2 / N, (R_SPREAD_MAX_LOG2 + math.log2(eps)) / N)
    return 2.0 ** (R_POWER_MIN_LOG2 / N), 2.0 ** max(hi, 0.0)


def eps_range(N: int) -> tuple[float, float]:
    """The eps accepted at depth N: [2^-40 max(1, (N/16)^2), 2^13]."""
    return EPS_MIN * max(1.0, (N / EPS_DEPTH_REF) ** 2), EPS_MAX


def option(default=MISSING, *, help: str, cli: str | None = None, metavar: str | None = None,
           choices: tuple | None = None, group: str = "construction", compare: bool = True,
           required: bool | None = None):
    """A Config field with its command-line option (see universality.cli.add_config_options).

    ``help`` may use ``{default}`` and ``{choices}``; ``cli`` defaults to ``--name`` with
    underscores as dashes; ``cli=""`` keeps the field off the command line."""
    meta = {"help": help, "cli": cli, "metavar": metavar, "choices": choices, "group": group}
    if required is not None:
        meta["required"] = required
    if default is MISSING:
        return field(metadata=meta, compare=compare)
    return field(default=default, metadata=meta, compare=compare)


def _int(name: str, value, minimum: int, maximum: int | None = None, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        span = f">= {minimum:,}" if maximum is None else f"in {minimum:,}..{maximum:,}"
        raise ConfigError(f"{name} must be {span}{why}, got {value:,}")
    return value


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a real number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:
        raise ConfigError(f"{name} must be finite, got {value!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value}")
    return value


def _check_range(name: str, value: float, lo: float, hi: float, why: str) -> float:
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be in [{lo:.3g}, {hi:.3g}] ({why}), got {value:g}")
    return value


@dataclass(frozen=True)
class Config:
    """One construction and how to check it.

    Parameters
    ----------
    N : int
        Depth: the number of square D x D layers, >= 4.
    J, L : int
        Cells per input axis for x and for x*, >= 1.
    dy, dx : int
        Label and input dimensions, >= 1 (the cells of a J^dx grid, flattened).
    eps : float
        The epsilon of A_i = eps*I + E_i, in [EPS_MIN, EPS_MAX].
    alpha : float
        The inner learning rate, nonzero, |alpha| in [ALPHA_MIN, ALPHA_MAX].
    variant, layout, loss : str
        See VARIANTS, LAYOUTS, LOSSES.
    relu_grad_at_zero : float
        The value r used for ReLU'(0) in backprop: 0, or r^N within [2^-256, 2^53].
    samples, seed : int
        Random (x, x*, y) triples to check (7 corner cases are added) and their seed.
    max_memory_bytes : int or None
        Refuse runs modelled to need more (default: half the machine's total memory).
    K : int
        Shots per task (paper Sec. 5).

    Raises
    ------
    ConfigError
        Any value out of range or unsupported combination, with the range in the message.
    """

    N: int = option(help="depth: number of square D x D layers (>= 4); the paper layout needs N = J^dx*L^dx + 2",
                    group="sizes")
    J: int = option(help="cells per axis for the training input x (>= 1)", group="sizes")
    L: int = option(help="cells per axis for the test input x* (>= 1)", group="sizes")
    dy: int = option(1, help="label dimension (default {default})", group="sizes")
    dx: int = option(1, help="input dimension; cells form a J^dx (L^dx) grid, flattened (default {default})",
                     group="sizes")
    eps: float = option(0.1, metavar="E",
                        help=f"epsilon of A_i = eps*I + E_i, in [{EPS_MIN:.2g} max(1, (N/16)^2), {EPS_MAX:g}] "
                             "(default {default})")
    alpha: float = option(0.3, metavar="A",
                          help=f"inner learning rate, any sign, |alpha| in [{ALPHA_MIN:.2g}, {ALPHA_MAX:.2g}] "
                               "(default {default})")
    variant: str = option("signed", choices=VARIANTS,
                          help="label channel: 'signed' stacks [y; -y] per channel and works for every y "
                               "(default); 'paper' stacks [y] as in the paper and loses half the labels")
    layout: str = option("auto", choices=LAYOUTS,
                         help="code table: 'paper' one-hot codes (N = J*L + 2), 'compact' moment-curve codes "
                              "(any N >= 4), 'auto' paper when N = J*L + 2 else compact (default)")
    relu_grad_at_zero: float = option(1.0, metavar="R",
                                      help="ReLU'(0) used by backprop (default {default}): 0 (PyTorch/TensorFlow/"
                                           "JAX) shows the collapse; r > 0 is compensated exactly (A_i / r^i) and "
                                           "needs r^N in [2^-256, 2^53] and r^N / eps <= 2^70 (N = 6: [1.4e-13, 455])")
    loss: str = option("mse", choices=LOSSES,
                       help="inner loss: mse (default, Thm 6.1), ce (softmax cross-entropy on the simplex, "
                            "C = dy classes, Thm 6.2), or l1 / hinge / huber (the paper's negative cases)")
    samples: int = option(16, metavar="S", group="run",
                          help=f"random (x, x*, y) triples to check, 0..{MAX_SAMPLES:,} (default {{default}}); "
                               "7 corner cases are always added")
    seed: int = option(0, group="run", help="random seed, >= 0 (default {default}): same seed, same run")
    max_memory_bytes: int | None = option(
        None, cli="--max-memory", metavar="GIB", group="run", compare=False,
        help="refuse runs whose modelled peak memory (construction, engine, h_post, sweeps, exact backend) "
             "exceeds this many GiB (default: half the machine's total memory)")
    K: int = option(1, help="shots per task (default {default}): K > 1 runs the real K-shot step "
                            "theta' = theta - (alpha/K) sum_k grad l_k and the K-shot claims")

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "N", _int("N", self.N, 4, None, " (two forced end layers plus at least two code channels)"))
        if self.N > MAX_N:
            raise ConfigError(f"sizes too large: N must be <= {MAX_N:,}, got {self.N:,}")
        set_(self, "J", _int("J", self.J, 1))
        set_(self, "L", _int("L", self.L, 1))
        set_(self, "dy", _int("dy", self.dy, 1))
        set_(self, "dx", _int("dx", self.dx, 1))
        set_(self, "samples", _int("samples", self.samples, 0, MAX_SAMPLES, " (each one is a full step)"))
        set_(self, "seed", _int("seed", self.seed, 0, MAX_SEED))
        eps = _real("eps", self.eps)
        if eps <= 0:
            raise ConfigError(f"eps must be > 0 (A_i = eps*I + E_i must be positive definite), got {eps:g}")
        lo, hi = eps_range(self.N)
        set_(self, "eps", _check_range("eps", eps, lo, hi,
                                       f"at N = {self.N}: A_i = eps*I + E_i must keep eps and the code's unit "
                                       "signal above rounding"))
        alpha = _real("alpha", self.alpha)
        if alpha == 0:
            raise ConfigError("alpha must be nonzero: with alpha = 0 the step changes nothing")
        _check_range("|alpha|", abs(alpha), ALPHA_MIN, ALPHA_MAX,
                     "the step's values must stay normal float64 numbers")
        set_(self, "alpha", alpha)
        r = _real("relu-grad-at-zero", self.relu_grad_at_zero)
        if r < 0:
            raise ConfigError(
                f"relu-grad-at-zero must be >= 0 (a subgradient convention of ReLU at 0), got {r:g}"
            )
        if r != 0:
            lo, hi = r_range(self.N, eps)
            if not lo <= r <= hi:
                raise ConfigError(
                    f"relu-grad-at-zero must be 0 or in [{lo:.3g}, {hi:.3g}] at N = {self.N}, eps = {eps:g} (the "
                    f"compensation A_i / r^i needs r^N in [2^{R_POWER_MIN_LOG2}, 2^{R_POWER_MAX_LOG2}] and "
                    f"r^N / eps <= 2^{R_SPREAD_MAX_LOG2} to stay within float64), got {r:g}")
        set_(self, "relu_grad_at_zero", r)
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.loss == "ce" and self.dy < 2:
            raise ConfigError(
                f"loss ce needs dy = C >= 2 classes (labels on the simplex; with C = 1 the gradient "
                f"is always 0), got dy = {self.dy}; use --dy C"
            )
        set_(self, "K", _int("K", self.K, 1))
        if self.K > 1 and self.K * max(self.samples, 1) > MAX_SHOT_STEPS:
            raise ConfigError(
                f"K * samples must be <= {MAX_SHOT_STEPS:,} (each task runs K forward and backward passes, "
                f"three times), got K = {self.K:,}, samples = {self.samples:,}"
            )
        for name, per_axis in (("J", self.J), ("L", self.L)):
            if per_axis > 1 and self.dx * math.log2(per_axis) > MAX_CELL_BITS:
                raise ConfigError(f"sizes too large: {name}^dx = {per_axis}^{self.dx} cells per input "
                                  f"(more than 2^{MAX_CELL_BITS})")
        cells = self.cells_x * self.cells_star
        if self.layout == "paper" and self.N != cells + 2:
            raise ConfigError(
                f"the paper layout needs N = {cells + 2} (J^dx*L^dx + 2: one layer per cell plus the "
                f"two forced end layers), got N = {self.N}; use --N {cells + 2} or --layout compact"
            )
        if self.max_memory_bytes is not None:
            set_(self, "max_memory_bytes", _int("max_memory_bytes", self.max_memory_bytes, 1))
        from . import memory

        memory.check(self, findings=False)

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def cells_x(self) -> int:
        """Number of cells for x (J per axis, J^dx in all)."""
        return self.J**self.dx

    @property
    def cells_star(self) -> int:
        """Number of cells for x* (L per axis, L^dx in all)."""
        return self.L**self.dx

    @property
    def m(self) -> int:
        """Number of code channels: the layers 2..N-1."""
        return self.N - 2

    @property
    def signs(self) -> int:
        """Copies per label component and channel: 2 ([y; -y]) signed, 1 ([y]) paper."""
        return 2 if self.variant == "signed" else 1

    @property
    def resolved_layout(self) -> str:
        """The layout that runs: ``layout``, or for "auto" paper when N = J^dx L^dx + 2 else compact."""
        if self.layout != "auto":
            return self.layout
        return "paper" if self.N == self.cells_x * self.cells_star + 2 else "compact"

    @property
    def D(self) -> int:
        """The width: top (J^dx + L^dx) + middle (m * signs * dy) + bottom (1)."""
        return self.cells_x + self.cells_star + self.m * self.signs * self.dy + 1

    @property
    def parameter_count(self) -> int:
        """All trainable entries: N full D x D matrices, theta_b, and W_g (dy x D)."""
        return self.N * self.D * self.D + 1 + self.dy * self.D

    def memory_estimate_bytes(self, findings: bool = False, **plan) -> int:
        """The modelled peak of a run of this Config (see :mod:`universality.memory`): by default
        the construction and the engine; ``findings``, ``universal`` (UniversalOptions) and
        ``exact`` add those components."""
        from . import memory

        return sum(memory.components(self, findings=findings, **plan).values())

    def with_(self, **changes) -> "Config":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

