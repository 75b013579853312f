"""The sizes and options of one verification run, validated once.

Every user-facing entry point (the CLI, :func:`universality.build`, :func:`universality.verify`)
turns its arguments into a :class:`Config`. Bad input raises :class:`ConfigError` here and
nowhere else; the CLI prints its message as one line and exits with status 2.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace

VARIANTS = ("signed", "paper")
LAYOUTS = ("auto", "paper", "compact")
LOSSES = ("mse", "ce", "l1", "hinge", "huber")

DEFAULT_MEMORY_FRACTION = 0.8
FALLBACK_MEMORY_BYTES = 8 * 2**30
# Hostile-input guard: a grid of more than 2^48 cells per input can never fit in memory, and
# computing J**dx for a huge dx would hang before the memory check could refuse it.
MAX_CELL_BITS = 48
MAX_SAMPLES = 100_000
MAX_SHOT_STEPS = 1_000_000  # K * samples: forward+backward passes the K-shot claims run (times 3)


class ConfigError(ValueError):
    """Bad input. The message is one line, meant for the user as it stands."""


def _int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value}")
    return value


def available_memory_bytes() -> int:
    """What this machine can give a run: 80% of MemAvailable (Linux), else a fixed 8 GiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * DEFAULT_MEMORY_FRACTION)
    except OSError:
        pass
    return FALLBACK_MEMORY_BYTES


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


@dataclass(frozen=True)
class Config:
    """One construction and how to check it.

    ``N`` is the depth (number of square D x D layers), ``J`` and ``L`` the number of cells per
    input axis for x and x*, ``dx`` the input dimension (the cells of a J^dx grid, flattened),
    ``dy`` the label dimension. ``eps`` is the epsilon of A_i = eps*I + E, ``alpha`` the inner
    learning rate, ``relu_grad_at_zero`` the value r used for ReLU'(0) in backprop.
    """

    N: int
    J: int
    L: int
    dy: int = 1
    dx: int = 1
    eps: float = 0.1
    alpha: float = 0.3
    variant: str = "signed"
    layout: str = "auto"
    relu_grad_at_zero: float = 1.0
    loss: str = "mse"
    samples: int = 16
    seed: int = 0
    max_memory_bytes: int | None = field(default=None, compare=False)
    K: int = 1  # shots per task: the K-shot step averages K per-example gradients (paper Sec. 5)
    engine: str = "auto"  # execution backend: auto | dense | sparse (universality.engine)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "N", _int("N", self.N, 1))
        set_(self, "J", _int("J", self.J, 1))
        set_(self, "L", _int("L", self.L, 1))
        set_(self, "dy", _int("dy", self.dy, 1))
        set_(self, "dx", _int("dx", self.dx, 1))
        set_(self, "samples", _int("samples", self.samples, 0))
        set_(self, "seed", _int("seed", self.seed, 0))
        if self.samples > MAX_SAMPLES:
            raise ConfigError(f"samples must be <= {MAX_SAMPLES:,} (each one is a full step), got {self.samples:,}")
        if self.N < 4:
            raise ConfigError(
                f"N must be >= 4 (two forced end layers plus at least two code channels), got {self.N}"
            )
        eps = _real("eps", self.eps)
        if eps <= 0:
            raise ConfigError(f"eps must be > 0 (A_i = eps*I + E_i must be positive definite), got {eps}")
        set_(self, "eps", eps)
        alpha = _real("alpha", self.alpha)
        if alpha == 0:
            raise ConfigError("alpha must be nonzero: with alpha = 0 the step changes nothing")
        set_(self, "alpha", alpha)
        r = _real("relu_grad_at_zero", self.relu_grad_at_zero)
        if r < 0:
            raise ConfigError(
                f"relu-grad-at-zero must be >= 0 (a subgradient convention of ReLU at 0), got {r}"
            )
        set_(self, "relu_grad_at_zero", r)
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        from .engine.memory import ENGINES

        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
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
        need = self.memory_estimate_bytes()
        limit = self.max_memory_bytes or available_memory_bytes()
        if need > limit:
            raise ConfigError(
                f"sizes too large: N={self.N}, D={self.D} needs about {format_bytes(need)} on the "
                f"{self.resolved_engine} engine, more than the {format_bytes(limit)} available"
            )

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
        if self.layout != "auto":
            return self.layout
        return "paper" if self.N == self.cells_x * self.cells_star + 2 else "compact"

    @property
    def D(self) -> int:
        return self.cells_x + self.cells_star + self.m * self.signs * self.dy + 1

    @property
    def parameter_count(self) -> int:
        """All trainable entries: N full D x D matrices, theta_b, and W_g (dy x D)."""
        return self.N * self.D * self.D + 1 + self.dy * self.D

    @property
    def resolved_engine(self) -> str:
        """The execution backend this run uses ("auto": dense while small, sparse above)."""
        from .engine.memory import resolve

        return resolve(self)

    def memory_estimate_bytes(self) -> int:
        from .engine.memory import estimate_bytes

        return estimate_bytes(self, self.resolved_engine)

    def with_(self, **changes) -> "Config":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

