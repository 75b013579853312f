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

import contextlib
import importlib
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import TargetError

# |f| above 2^100 is refused: h_post's output weights carry f's values, and the errors' squares
# (RMS) and the rounding floors must stay finite float64 numbers.
TARGET_MAX = 2.0**100


class _Capture(io.StringIO):
    """Where a target's prints go while it runs."""


@contextlib.contextmanager
def isolated(name: str, where):
    """Run a user's code with its prints and its SystemExit captured: either is a bad target.
    ``where``: a string, or a callable giving one (built only when something went wrong)."""
    buf = _Capture()
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = buf
    try:
        yield
    except SystemExit as exc:
        raise TargetError(f"target {name!r} called sys.exit({exc.code!r}) {_text(where)}: a target must return "
                          "its value") from None
    finally:
        sys.stdout, sys.stderr = old_out, old_err
    printed = buf.getvalue().strip()
    if printed:
        raise TargetError(f"target {name!r} printed {printed.splitlines()[0][:60]!r} {_text(where)}: a target must "
                          "return its value and print nothing") from None


def _text(where) -> str:
    return where() if callable(where) else str(where)


@dataclass(frozen=True)
class Target:
    name: str
    func: Callable
    description: str
    dy: int | None = None  # required label dimension (None: any)

    def __call__(self, x, y, x_star) -> np.ndarray:
        x, y, xs = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (x, y, x_star))

        def where() -> str:
            return f"at x = {x.tolist()}, y = {y.tolist()}, x* = {xs.tolist()}"

        buf = _Capture()
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = buf  # prints are captured: a target that prints is a bad target
        try:
            out = np.atleast_1d(np.asarray(self.func(x, y, xs), dtype=float)).reshape(-1)
        except SystemExit as exc:
            raise TargetError(f"target {self.name!r} called sys.exit({exc.code!r}) {where()}: a target must "
                              "return its value") from None
        except Exception as exc:  # noqa: BLE001 - the user's function failed: say where, in one line
            raise TargetError(f"target {self.name!r} failed {where()}: {type(exc).__name__}: {exc}".splitlines()[0]) \
                from None
        finally:
            sys.stdout, sys.stderr = old
        if buf.tell():
            printed = buf.getvalue().strip() or "whitespace"
            raise TargetError(f"target {self.name!r} printed {printed.splitlines()[0][:60]!r} {where()}: a target "
                              "must return its value and print nothing")
        top = float(np.max(np.abs(out))) if out.size else 0.0
        if not math.isfinite(top):
            raise TargetError(f"target {self.name!r} returned non-finite values {out.tolist()} {where()}")
        if top > TARGET_MAX:
            raise TargetError(f"target {self.name!r} returned {top:.3g} {where()}: values must "
                              f"lie in [-2^100, 2^100] (= {TARGET_MAX:.3g}) so that errors and their squares stay finite")
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
        with isolated(spec, "while being imported"):
            mod = importlib.import_module(module)
    except TargetError:
        raise
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
