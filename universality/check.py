"""``verify-construction --check DIR``: verify a construction built elsewhere (PyTorch, JAX, NumPy).

Input: the export format (docs/export.md, docs/check.md): ``DIR/construction.npz`` with ``W``
(N x D x D, W[k] = paper layer k+1, W[N-1] acts first; or its COO triplets ``W_layer``, ``W_row``,
``W_col``, ``W_val``, ``W_shape``, read into sparse layers and never densified), ``Wg`` (dy x D),
``theta_b`` and ``alpha``;
``DIR/construction.json`` with ``J``, ``L``, ``dx``, ``dy`` and ``relu_grad_at_zero`` (and optionally
``loss`` and ``code_table``). Command-line options give the sizes when there is no json.

The tool computes phi from the spec (exact rational bins and the theta_b switch), executes the given
weights (real forward pass, real backprop, one real step on every parameter) and checks every claim
whose claimed side the paper defines from the weights: A_i, B_i and k_i from the telescoping products,
zbar* = -alpha v with v built from those, theta_b' = -alpha r^N (prod wcheck_i) e_check(y) with
e_check from W_g, and codes-injective / every-cell over all cells. Nothing of the spec's own choices
(eps, the code table, the layout) is assumed, except that the declared code table, when the export
gives one, must be what the weights realise.

Exit status: 0 every claim passes, 1 a claim FAILs or is UNDECIDED, 2 bad input (one line),
3 internal error (one line).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CheckInputError

# The claims a construction built elsewhere is checked with (their claimed sides come from the
# weights alone when Context.external is set). Left out: binning (phi is the spec's own here),
# v-decodes (its decoder assumes the spec's diagonal A_i; codes-injective covers decodability).
EXTERNAL_CLAIMS = (
    "grad-rank-one", "update-blocks", "second-order-zero", "post-update-eq3", "z-star-is-minus-alpha-v",
    "kernel-code", "boundary", "nonneg-linear-regime", "psd-argument", "e-linear", "multiplexer",
    "loss-recovers-label", "codes-injective", "every-cell", "theta-b-value", "update-values",
)


@dataclass(frozen=True)
class ExternalDesign:
    """The sizes and options of a construction built elsewhere (duck-types construction.Design for the
    claims and the execution; ``layout`` is "external": no spec table is assumed)."""

    N: int
    J: int
    L: int
    dx: int
    dy: int
    variant: str
    alpha: float
    relu_grad_at_zero: float
    loss: str = "mse"
    layout: str = "external"
    eps: float = float("nan")

    @property
    def blocks(self):
        from .blocks import Blocks

        return Blocks(cells_x=self.J**self.dx, cells_star=self.L**self.dx, m=self.N - 2,
                      s=2 if self.variant == "signed" else 1, dy=self.dy)

    def with_(self, **changes):
        from dataclasses import replace

        return replace(self, **changes)


@dataclass
class External:
    """A construction built elsewhere: its weights, and phi from the spec (reference/)."""

    design: ExternalDesign
    W: object  # an (N, D, D) array (the dense form) or SparseLayers (the COO form, never densified)
    Wg: np.ndarray
    theta_b: float
    codes: np.ndarray | None = None
    extras: dict = field(default_factory=dict)

    @property
    def blocks(self):
        return self.design.blocks

    @property
    def N(self) -> int:
        return self.design.N

    @property
    def D(self) -> int:
        return self.blocks.D

    @property
    def loss(self):
        from .losses import get_loss

        return get_loss(self.design.loss)

    def phi(self, u, theta_b):
        from .reference import design

        return design.phi(u, float(theta_b), self.design.J, self.design.L, self.blocks)

    # the cells by the spec's exact bins (the construction's own binning is not known here)
    def bin_x(self, u) -> int:
        from .reference import bins

        return bins.cell(u, self.design.J)

    def bin_star(self, u) -> int:
        from .reference import bins

        return bins.cell(u, self.design.L)


def _int_field(meta: dict, key: str, override, minimum: int) -> int:
    v = override if override is not None else meta.get(key)
    if v is None:
        raise CheckInputError(f"the size {key} is missing: give it in construction.json or as --{key}")
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < minimum:
        raise CheckInputError(f"{key} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _real_field(meta: dict, key: str, override, default=None) -> float:
    v = override if override is not None else meta.get(key, default)
    if v is None:
        raise CheckInputError(f"{key} is missing: give it in construction.json or as --{key.replace('_', '-')}")
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise CheckInputError(f"{key} must be a number, got {v!r}") from None
    if not math.isfinite(v):
        raise CheckInputError(f"{key} must be finite, got {v}")
    return v


def _layers_from_coo(arrays: dict):
    """W from the export's COO form (W_layer, W_row, W_col, W_val and W_shape = (N, D, D)) as sparse
    layers (one CSR matrix per layer, never a dense N x D x D array): the claims run on the sparse
    engine. Repeated triplets add up, as in scipy.sparse."""
    for key in ("W_layer", "W_row", "W_col", "W_val", "W_shape"):
        if key not in arrays:
            raise CheckInputError(f"--check: the sparse form of W needs {key!r} in construction.npz")
    shape = tuple(int(v) for v in np.asarray(arrays["W_shape"]).reshape(-1))
    if len(shape) != 3 or shape[1] != shape[2] or min(shape) < 1:
        raise CheckInputError(f"--check: W_shape must be (N, D, D), got {shape}")
    try:
        k, r, c = (np.asarray(arrays[f"W_{n}"]).astype(np.int64).reshape(-1) for n in ("layer", "row", "col"))
        v = np.asarray(arrays["W_val"], dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise CheckInputError("--check: the COO arrays of W must be numeric") from None
    if not (k.size == r.size == c.size == v.size):
        raise CheckInputError("--check: W_layer, W_row, W_col and W_val must have one length")
    if k.size and (k.min() < 0 or k.max() >= shape[0] or r.min() < 0 or r.max() >= shape[1]
                   or c.min() < 0 or c.max() >= shape[2]):
        raise CheckInputError("--check: a COO index of W lies outside W_shape")
    if not np.all(np.isfinite(v)):
        raise CheckInputError("--check: W and Wg must be finite")
    import scipy.sparse as sp

    from .engine.layers import SparseLayers

    N, D = shape[0], shape[1]
    order = np.argsort(k, kind="stable")
    k, r, c, v = k[order], r[order], c[order], v[order]
    bounds = np.searchsorted(k, np.arange(N + 1))
    mats = [sp.coo_matrix((v[a:b], (r[a:b], c[a:b])), shape=(D, D)).tocsr()
            for a, b in zip(bounds[:-1], bounds[1:])]
    return SparseLayers(mats, D)


def load(folder, *, J=None, L=None, dx=None, dy=None, relu_grad_at_zero=None, loss=None) -> External:
    """Read DIR/construction.npz (+ DIR/construction.json) into an :class:`External`."""
    folder = Path(folder)
    npz_path = folder / "construction.npz"
    if not folder.is_dir():
        raise CheckInputError(f"--check: {str(folder)!r} is not a folder")
    if not npz_path.is_file():
        raise CheckInputError(f"--check: {str(npz_path)!r} does not exist")
    meta: dict = {}
    json_path = folder / "construction.json"
    if json_path.is_file():
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckInputError(f"--check: cannot read {str(json_path)!r}: {exc}") from None
        if not isinstance(meta, dict):
            raise CheckInputError(f"--check: {str(json_path)!r} is not a JSON object")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except Exception as exc:  # noqa: BLE001 - any unreadable npz is bad input
        raise CheckInputError(f"--check: cannot read {str(npz_path)!r}: {type(exc).__name__}: {exc}") from None
    if "W" not in arrays and "W_val" in arrays:  # the sparse export form: COO triplets per layer
        W = _layers_from_coo(arrays)
        N, D = W.N, W.D
    else:
        if "W" not in arrays:
            raise CheckInputError("--check: construction.npz has no array 'W'")
        W = np.asarray(arrays["W"], dtype=float)
        if W.ndim != 3 or W.shape[1] != W.shape[2]:
            raise CheckInputError(f"--check: W must have shape (N, D, D), got {W.shape}")
        if not np.all(np.isfinite(W)):
            raise CheckInputError("--check: W and Wg must be finite")
        N, D = W.shape[0], W.shape[1]
    for key in ("Wg", "alpha"):
        if key not in arrays:
            raise CheckInputError(f"--check: construction.npz has no array {key!r}")
    Wg = np.asarray(arrays["Wg"], dtype=float)
    if not np.all(np.isfinite(Wg)):
        raise CheckInputError("--check: W and Wg must be finite")
    if N < 4:
        raise CheckInputError(f"--check: N must be >= 4 layers, got {N}")
    if "N" in meta and int(meta["N"]) != N:
        raise CheckInputError(f"--check: construction.json says N = {meta['N']} but W has {N} layers")
    Jv = _int_field(meta, "J", J, 1)
    Lv = _int_field(meta, "L", L, 1)
    dxv = _int_field(meta, "dx", dx, 1) if (dx is not None or "dx" in meta) else 1
    dyv = _int_field(meta, "dy", dy, 1)
    r = _real_field(meta, "relu_grad_at_zero", relu_grad_at_zero, 1.0)
    if r < 0:
        raise CheckInputError(f"relu_grad_at_zero must be >= 0, got {r}")
    alpha = _real_field({"alpha": arrays["alpha"].item() if arrays["alpha"].size == 1 else None}, "alpha", None)
    if alpha == 0:
        raise CheckInputError("alpha must be nonzero")
    theta_b = float(np.asarray(arrays.get("theta_b", 0.0)).reshape(-1)[0])
    loss_name = loss or (meta.get("loss", {}).get("name") if isinstance(meta.get("loss"), dict)
                         else meta.get("loss")) or "mse"
    from .losses import LOSSES

    if loss_name not in LOSSES:
        raise CheckInputError(f"unknown loss {loss_name!r} (one of {', '.join(LOSSES)})")
    if loss_name == "ce" and dyv < 2:
        raise CheckInputError("loss ce needs dy >= 2")
    dt = Jv**dxv + Lv**dxv
    dm = D - dt - 1
    m = N - 2
    if dm <= 0 or dm % (m * dyv):
        raise CheckInputError(f"--check: width D = {D} does not fit J^dx + L^dx + (N-2) s dy + 1 with "
                              f"J = {Jv}, L = {Lv}, dx = {dxv}, N = {N}, dy = {dyv}, s in {{1, 2}}")
    s = dm // (m * dyv)
    if s not in (1, 2):
        raise CheckInputError(f"--check: width D = {D} gives {s} copies per label component (expected 1 or 2)")
    if Wg.shape != (dyv, D):
        raise CheckInputError(f"--check: Wg must have shape (dy, D) = ({dyv}, {D}), got {Wg.shape}")
    codes = None
    if "code_table" in meta:
        codes = np.asarray(meta["code_table"], dtype=float)
        if codes.shape != (m, Jv**dxv, Lv**dxv):
            raise CheckInputError(f"--check: code_table must have shape (N-2, J^dx, L^dx) = "
                                  f"({m}, {Jv**dxv}, {Lv**dxv}), got {codes.shape}")
    design = ExternalDesign(N=N, J=Jv, L=Lv, dx=dxv, dy=dyv, variant="signed" if s == 2 else "paper",
                            alpha=alpha, relu_grad_at_zero=r, loss=loss_name)
    return External(design, W, Wg, theta_b, codes)


def check_external(ext: External, samples: int = 16, seed: int = 0):
    """Run the external claim set on ``ext``. Returns the list of ClaimResult."""
    from .claims import CLAIMS, Context, aggregate
    from .execution import one_step
    from .samples import make_samples

    d = ext.design
    ctx = Context(ext, external=True)
    if ext.codes is not None:
        ctx.cache["declared_codes"] = ext.codes
    samp = make_samples(samples, seed, d.J, d.L, d.dx, d.dy, loss=d.loss)
    specs = [CLAIMS[c] for c in EXTERNAL_CLAIMS]
    per: dict = {s.id: [] for s in specs}
    for spec in specs:
        if spec.scope == "construction":
            per[spec.id].append((None, spec.func(ctx)))
    sample_specs = [s for s in specs if s.scope == "sample"]
    for n, s in enumerate(samp):
        st = one_step(ext, s.x, s.y, s.x_star)
        ctx.step = st  # tolerances count this step's corrections; cached passes belong to it
        where = {"sample": n, **s.as_dict()}
        for spec in sample_specs:
            per[spec.id].append((where, spec.func(ctx, s, st)))
    ctx.step = None
    return [aggregate(spec, per[spec.id]) for spec in specs]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr, exit 2 (no usage dump)
        raise CheckInputError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="verify-construction --check",
        description="Verify a construction built elsewhere, from its export (construction.npz + "
                    "construction.json); see docs/check.md.",
        allow_abbrev=False)
    p.add_argument("--check", metavar="DIR", required=True,
                   help="folder holding construction.npz (W, Wg, theta_b, alpha) and construction.json")
    for name in ("J", "L", "dx", "dy"):
        p.add_argument(f"--{name}", type=int, default=None, help=f"{name} when construction.json lacks it")
    p.add_argument("--relu-grad-at-zero", type=float, default=None, metavar="R",
                   help="ReLU'(0) of the construction when construction.json lacks it (default 1)")
    p.add_argument("--loss", choices=["mse", "ce", "l1", "hinge", "huber"], default=None,
                   help="inner loss when construction.json lacks it (default mse)")
    p.add_argument("--samples", type=int, default=16, help="random (x, x*, y) triples plus 7 corners (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except CheckInputError as exc:
        print(f"verify-construction: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return 0 if exc.code in (0, None) else 2
    try:
        if args.samples < 0 or args.seed < 0:
            raise CheckInputError("--samples and --seed must be >= 0")
        ext = load(args.check, J=args.J, L=args.L, dx=args.dx, dy=args.dy,
                   relu_grad_at_zero=args.relu_grad_at_zero, loss=args.loss)
    except CheckInputError as exc:
        print(f"verify-construction: error: {exc}", file=sys.stderr)
        return 2
    try:
        results = check_external(ext, args.samples, args.seed)
    except MemoryError:
        print("verify-construction: error: out of memory", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001
        print(f"verify-construction: internal error: {type(exc).__name__}: {exc} (please report)", file=sys.stderr)
        return 3
    passed = all(r.verdict.value in ("PASS", "SKIPPED") for r in results)
    d = ext.design
    if args.json:
        print(json.dumps({"tool": "universality", "mode": "check", "folder": str(args.check),
                          "construction": {"N": d.N, "J": d.J, "L": d.L, "dx": d.dx, "dy": d.dy,
                                           "D": ext.D, "variant": d.variant, "alpha": d.alpha,
                                           "relu_grad_at_zero": d.relu_grad_at_zero, "loss": d.loss,
                                           "code_table_given": ext.codes is not None},
                          "claims": [r.as_dict() for r in results], "passed": passed}, indent=2))
    else:
        print(f"checking the construction in {args.check}: N={d.N} J={d.J} L={d.L} dx={d.dx} dy={d.dy} "
              f"D={ext.D} variant={d.variant} alpha={d.alpha:g} r={d.relu_grad_at_zero:g} loss={d.loss}"
              + (" (declared code table given)" if ext.codes is not None else ""))
        w = max(len(r.id) for r in results)
        for r in results:
            print(f"  {r.id:<{w}}  {r.verdict.value:<9} residual {r.residual:.3g}  tolerance {r.tolerance:.3g}"
                  + (f"  {r.note}" if r.note and r.verdict.value != "PASS" else ""))
        fails = [r.id for r in results if r.verdict.value not in ("PASS", "SKIPPED")]
        from .console import passed_phrase

        print("Result: " + (f"{passed_phrase(results)} (exit 0)" if passed else
                            f"{len(fails)} claim(s) not passing: {', '.join(fails)} (exit 1)"))
    return 0 if passed else 1
