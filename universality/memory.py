"""One memory model for everything a run allocates, checked before any work is done.

A run's peak is modelled as a sum of named components (bytes), each from one formula:

* ``construction``: the weights W (N x D x D float64) and W_g;
* ``engine``: what the step engine keeps alive besides W (dense placeholder: |W|, one sample's
  gradients, the updated weights and their absolute values, one scratch stack). When the engine
  package provides ``universality.engine.memory.estimate_bytes(cfg, engine)``, that estimate
  replaces the placeholder (and then counts W too, so ``construction`` is dropped);
* ``findings``: the findings' own steps on the run's weights (two K-shot steps, checkpointed at
  large sizes) and, at small sizes, their second constructions (capped at ``FINDING_MEMORY_BYTES``):
  :func:`findings_bytes`;
* ``h_post``: with ``--target``, the h_post ReLU network, its cached absolute values and the
  per-cell activations of one evaluation;
* ``sweep``: the largest sweep level (its construction, engine and h_post), alive next to the
  run's own h_post;
* ``exact``: the SymPy backend's exact matrices (a rough per-entry cost).

The sum is compared with a limit that does not depend on the moment: ``--max-memory`` when given,
else ``MEMORY_FRACTION`` of the machine's total memory (the smaller of physical memory and the
cgroup limit), so the same command gets the same answer on the same machine.
"""
from __future__ import annotations

import os

from .errors import ConfigError

FLOAT = 8  # bytes per float64
# Dense N x D x D float64 stacks the numeric engine keeps alive besides W itself: |W|, one sample's
# gradients, the updated weights and their absolute values, one scratch difference.
ENGINE_STACKS = 5
MEMORY_FRACTION = 0.5
FALLBACK_TOTAL_BYTES = 8 * 2**30
FINDING_MEMORY_BYTES = 1 * 2**30  # the findings' own networks are capped at this (claims/findings.py)
# Above this many entries per pass (N x D), the findings that would build a second construction of the
# run's size show their gap on reference sizes instead (claims/findings.py, where it is explained)
FINDING_FULL_SIZE_MAX = 2_000_000
# h_post: weights + their absolute values (cached for the rounding magnitude) + one evaluation's
# per-cell activations (same order as the weights of one layer): three copies of the weights.
HPOST_COPIES = 3
# exact backend: SymPy objects per matrix entry (a Rational or a small polynomial), a few matrices alive
EXACT_ENTRY_BYTES = 1024
EXACT_MATRICES = 4


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def total_memory_bytes() -> int:
    """The machine's total memory: physical RAM, or the cgroup's limit when that is smaller."""
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        total = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) > 0:
            total = int(text) if total is None else min(total, int(text))
    return int(total) if total and total > 0 else FALLBACK_TOTAL_BYTES


def limit_bytes(max_memory_bytes: int | None = None) -> int:
    """The memory a run may use: ``max_memory_bytes`` or MEMORY_FRACTION of the total memory."""
    if max_memory_bytes is not None:
        return int(max_memory_bytes)
    return int(total_memory_bytes() * MEMORY_FRACTION)


def dense_stack_bytes(N: int, D: int) -> int:
    """One N x D x D float64 stack: the one formula every dense estimate is built from."""
    return N * D * D * FLOAT


def dense_run_bytes(N: int, D: int) -> int:
    """A numeric run of an N x D x D network with the dense engine: W plus ENGINE_STACKS stacks. The
    formula every dense estimate uses (the run's placeholder, the findings' extra constructions)."""
    return (1 + ENGINE_STACKS) * dense_stack_bytes(N, D)


def construction_bytes(cfg) -> int:
    """The weights W (W_g, dy x D, is negligible next to them)."""
    return dense_stack_bytes(cfg.N, cfg.D)


def engine_bytes(cfg) -> dict:
    """The engine's share: its own estimate when the engine package provides one, else the dense
    placeholder (ENGINE_STACKS stacks). Returns components (the engine's own estimate counts W)."""
    try:
        from .engine.memory import estimate_bytes, resolve  # type: ignore[import-not-found]
    except ImportError:
        return {"construction": construction_bytes(cfg), "engine": ENGINE_STACKS * dense_stack_bytes(cfg.N, cfg.D)}
    return {"engine": int(estimate_bytes(cfg, resolve(cfg)))}


def _on_engine(cfg) -> str:
    """" on the sparse engine" (the engine the estimate is for), or "" without the engine package."""
    try:
        from .engine.memory import resolve  # type: ignore[import-not-found]
    except ImportError:
        return ""
    return f" on the {resolve(cfg)} engine"


def hpost_weight_bytes(cfg, grid_size: int) -> int:
    """Dense float64 bytes of h_post's weights for ``cfg`` (per-cell blocks: K x out x in)."""
    K, m, dy = cfg.cells_x * cfg.cells_star, cfg.m, cfg.dy
    P = grid_size ** dy
    wB, wC, wCp, wH, wO = 2 * m * dy + 2 * dy, 1 + dy + 2 * P, 1 + dy + 4 * P, 1 + P, 2 * dy
    per_cell = wB * m * dy + wC * wB + (dy - 1) * wCp * max(wC, wCp) + wH * (wCp if dy > 1 else wC) + wO * wH
    return FLOAT * (K * per_cell + m * dy * cfg.m * cfg.signs * dy + dy * K * wO)


def hpost_bytes(cfg, grid_size: int) -> int:
    """What h_post costs while it runs: its weights, their absolute values and one evaluation."""
    return HPOST_COPIES * hpost_weight_bytes(cfg, grid_size)


def exact_bytes(cfg) -> int:
    return EXACT_MATRICES * cfg.N * cfg.D * cfg.D * EXACT_ENTRY_BYTES


def findings_bytes(cfg, run_bytes: int) -> int:
    """The findings' peak besides what the run holds anyway: their own steps on the run's weights
    (the engine's ``findings_step_bytes``: two K-shot steps, checkpointed at large sizes), and, while
    the run is small enough for the findings to build second constructions of its size (N x D at
    most FINDING_FULL_SIZE_MAX; above it claims/findings.py shows those gaps on reference sizes of a
    few kilobytes), those constructions, capped at FINDING_MEMORY_BYTES and at the run's own
    ``run_bytes``. The findings run after the claims, so this term and the claims' per-step term are
    never alive together: their sum over-counts by the smaller one (a conservative estimate)."""
    second = min(FINDING_MEMORY_BYTES, run_bytes)
    try:
        from .engine.memory import findings_step_bytes  # type: ignore[import-not-found]
    except ImportError:
        return int(second)
    if cfg.N * cfg.D > FINDING_FULL_SIZE_MAX:
        second = 0
    return int(findings_step_bytes(cfg) + second)


def components(cfg, *, findings: bool = True, universal=None, exact: bool = False) -> dict:
    """Bytes per component of the run's peak (see the module docstring)."""
    out = dict(engine_bytes(cfg))
    if findings:
        out["findings"] = findings_bytes(cfg, sum(out.values()))
    if universal is not None:
        from .universal import level_design, sweep_grid

        out["h_post"] = hpost_bytes(cfg, universal.grid_size)
        worst = 0
        for n, G in zip(universal.sweep, sweep_grid(universal, cfg.dy)):
            try:
                level = level_design(cfg, n)
            except ConfigError as exc:
                raise ConfigError(f"sweep level J = L = {n}: {exc}") from None
            worst = max(worst, sum(engine_bytes(level).values()) + hpost_bytes(level, G))
        out["sweep"] = worst
    if exact:
        out["exact"] = exact_bytes(cfg)
    return {k: int(v) for k, v in out.items() if v}


def check(cfg, *, findings: bool = True, universal=None, exact: bool = False) -> dict:
    """Refuse (ConfigError, one line, with the breakdown) a run whose modelled peak exceeds the
    limit. Returns the components."""
    parts = components(cfg, findings=findings, universal=universal, exact=exact)
    need = sum(parts.values())
    limit = limit_bytes(cfg.max_memory_bytes)
    if need > limit:
        worst = ", ".join(f"{k} {format_bytes(v)}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
        where = ("--max-memory" if cfg.max_memory_bytes is not None
                 else f"{MEMORY_FRACTION:.0%} of this machine's {format_bytes(total_memory_bytes())}")
        raise ConfigError(f"sizes too large: N={cfg.N}, D={cfg.D} needs about {format_bytes(need)}"
                          f"{_on_engine(cfg)} ({worst}), "
                          f"more than the {format_bytes(limit)} allowed ({where}); use smaller sizes"
                          + (", --sweep, --sweep-grid or --y-grid" if universal is not None else "")
                          + " or raise --max-memory")
    return parts


__all__ = ["components", "check", "limit_bytes", "total_memory_bytes", "format_bytes", "dense_stack_bytes",
           "hpost_bytes", "hpost_weight_bytes", "dense_run_bytes", "findings_bytes", "MEMORY_FRACTION",
           "FINDING_MEMORY_BYTES", "FINDING_FULL_SIZE_MAX"]
