"""Target learning algorithms f_target(x, y, x*) for the universality experiment (Lemma 4.1).

A target maps one training pair (x, y) and a test input x* to a prediction. ``x`` and ``x*`` are
arrays of shape (dx,) in [0, 1)^dx, ``y`` an array of shape (dy,); the result is a scalar or an
array of shape (d_out,). Built-in targets:

* ``copy``        f = y                                   (any dy)
* ``cos``         f = y * cos(2 pi sum(x* - x))           (any dy)
* ``nn``          f = y if max|x - x*| < 0.25 else 0      (a nearest-neighbour rule; discontinuous in x)
* ``two-output``  f = (y1 + y2, y1 * x*_1)                (dy = 2, d_out = 2)
* ``sin-y``       f = sin(3 y) * (1 + x*_1 - x_1)         (nonlinear in y: shows the y-grid's rate)

Any Python callable works through the API (:func:`resolve`), and ``module:function`` on the command
line (the module must be importable, e.g. on PYTHONPATH or in the current folder).
"""
from __future__ import annotations

import importlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .config import ConfigError


class TargetError(ConfigError):
    """A target that cannot be used. One line, for the user."""


@dataclass(frozen=True)
class Target:
    name: str
    func: Callable
    description: str
    dy: int | None = None  # required label dimension (None: any)

    def __call__(self, x, y, x_star) -> np.ndarray:
        x, y, xs = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (x, y, x_star))
        try:
            out = np.atleast_1d(np.asarray(self.func(x, y, xs), dtype=float)).reshape(-1)
        except Exception as exc:  # noqa: BLE001 - the user's function failed: say where, in one line
            raise TargetError(f"target {self.name!r} failed at x = {x.tolist()}, y = {y.tolist()}, "
                              f"x* = {xs.tolist()}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
        if not np.all(np.isfinite(out)):
            raise TargetError(f"target {self.name!r} returned non-finite values {out.tolist()} at x = {x.tolist()}, "
                              f"y = {y.tolist()}, x* = {xs.tolist()}")
        return out


def _copy(x, y, xs):
    return y


def _cos(x, y, xs):
    return y * math.cos(2 * math.pi * float(np.sum(xs - x)))


def _nn(x, y, xs):
    return y if float(np.max(np.abs(x - xs))) < 0.25 else np.zeros_like(y)


def _two_output(x, y, xs):
    return np.array([y[0] + y[1], y[0] * xs[0]])


def _sin_y(x, y, xs):
    return np.sin(3.0 * y) * (1.0 + xs[0] - x[0])


BUILTIN: dict[str, Target] = {
    "copy": Target("copy", _copy, "f = y"),
    "cos": Target("cos", _cos, "f = y cos(2 pi (x* - x))"),
    "nn": Target("nn", _nn, "f = y if |x - x*| < 0.25 else 0 (nearest-neighbour rule)"),
    "two-output": Target("two-output", _two_output, "f = (y1 + y2, y1 x*), dy = 2", dy=2),
    "sin-y": Target("sin-y", _sin_y, "f = sin(3 y) (1 + x* - x)"),
}


def resolve(spec) -> Target:
    """A :class:`Target` from a built-in name, ``module:function``, a callable, or a Target."""
    if isinstance(spec, Target):
        return spec
    if callable(spec):
        name = getattr(spec, "__name__", "callable")
        return Target(name, spec, f"user callable {name}")
    if not isinstance(spec, str) or not spec:
        raise TargetError(f"target must be a name or module:function, got {spec!r}")
    if spec in BUILTIN:
        return BUILTIN[spec]
    if ":" not in spec:
        raise TargetError(f"unknown target {spec!r}; built-in targets: {', '.join(BUILTIN)}; "
                          "or give module:function")
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise TargetError(f"target {spec!r} must look like module:function")
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix
        raise TargetError(f"cannot import module {module!r} for target {spec!r}: "
                          f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    func = getattr(mod, attr, None)
    if func is None or not callable(func):
        raise TargetError(f"module {module!r} has no callable {attr!r}")
    return Target(spec, func, f"user function {spec}")


def output_dim(target: Target, dx: int, dy: int) -> int:
    """d_out, found by calling the target once; a bad target raises TargetError (one line)."""
    if target.dy is not None and target.dy != dy:
        raise TargetError(f"target {target.name!r} needs dy = {target.dy} (use --dy {target.dy}), got dy = {dy}")
    out = target(np.full(dx, 0.25), np.ones(dy), np.full(dx, 0.75))
    if out.size == 0:
        raise TargetError(f"target {target.name!r} returned no values")
    return int(out.size)
