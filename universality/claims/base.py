"""Verdict records, the tolerance policy, and the registry of claims and findings.

A claim function computes its left side from the executed network and its right side from the
paper's formula and returns a :class:`Check`; :func:`aggregate` folds the per-sample checks of one
claim into a :class:`ClaimResult`. Verdicts are PASS / FAIL / UNDECIDED / SKIPPED.

Tolerance policy: :mod:`universality.tolerance` (docs/tolerances.md). A computed quantity
q = fl(W_1 ... W_N u) and its formula differ by rounding alone by at most gamma_n (|W_1| ... |W_N| |u|)
(Higham, Sec. 3.5); the magnitude comes from the same pass on absolute values, and n counts the
additions each layer's rows actually perform (:meth:`Context.tol`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

import numpy as np

from ..tolerance import SAFETY, UNIT_ROUNDOFF, gamma, guard, ops_count, tolerance  # noqa: F401  (the policy lives there)


class Verdict(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNDECIDED = "UNDECIDED"
    SKIPPED = "SKIPPED"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


_SEVERITY = {Verdict.FAIL: 3, Verdict.UNDECIDED: 2, Verdict.PASS: 1, Verdict.SKIPPED: 0}


def max_abs(a) -> float:
    a = np.asarray(a, dtype=float)
    return float(np.max(np.abs(a))) if a.size else 0.0


def summarize(value, limit: int = 8):
    """A short JSON-friendly rendering of a computed or claimed value."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): summarize(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not all(isinstance(v, (int, float, np.number)) for v in value):
        return [summarize(v, limit) for v in value[:limit]]
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in value):
        return [int(v) for v in value[:limit]]
    arr = np.asarray(value, dtype=float).reshape(-1)
    out = [float(v) for v in arr[:limit]]
    if arr.size > limit:
        out.append(f"... ({arr.size} entries)")
    return out


@dataclass
class Check:
    """One comparison: computed (executed) against claimed (the paper's formula)."""

    computed: Any
    claimed: Any
    residual: float
    tolerance: float
    verdict: Verdict
    note: str = ""


def compare(computed, claimed, tol: float, note: str = "") -> Check:
    c = np.asarray(computed, dtype=float)
    d = np.asarray(claimed, dtype=float)
    if c.shape != d.shape:
        return Check(computed, claimed, math.inf, tol, Verdict.FAIL,
                     f"shape mismatch {c.shape} vs {d.shape}")
    diff = np.abs(c - d)
    if diff.size and not np.all(np.isfinite(diff)):
        return Check(computed, claimed, math.inf, tol, Verdict.FAIL, "non-finite values")
    res = float(diff.max()) if diff.size else 0.0
    return Check(computed, claimed, res, tol, Verdict.PASS if res <= tol else Verdict.FAIL, note)


def compare_componentwise(computed, claimed, tol, note: str = "") -> Check:
    """Like :func:`compare` but with one tolerance per entry (Higham's bound is componentwise).

    A single max-norm tolerance lets an entry that is tiny next to the others (a label component
    of 1e-8 beside one of 1e8) be wrong without notice; here each entry is held to its own
    rounding bound. The reported tolerance is that of the entry closest to (or furthest over) it.
    """
    c = np.asarray(computed, dtype=float)
    d = np.asarray(claimed, dtype=float)
    t = np.broadcast_to(np.asarray(tol, dtype=float), d.shape) if d.shape else np.asarray(tol, dtype=float)
    if c.shape != d.shape:
        return Check(computed, claimed, math.inf, float(np.max(t)) if t.size else 0.0, Verdict.FAIL,
                     f"shape mismatch {c.shape} vs {d.shape}")
    diff = np.abs(c - d)
    if diff.size and not np.all(np.isfinite(diff)):
        return Check(computed, claimed, math.inf, float(np.max(t)), Verdict.FAIL, "non-finite values")
    if not diff.size:
        return Check(computed, claimed, 0.0, 0.0, Verdict.PASS, note)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, np.where(t > 0, diff / np.where(t > 0, t, 1.0), np.inf))
    k = int(np.argmax(ratio))
    ok = bool(np.all(diff <= t))
    return Check(computed, claimed, float(diff.reshape(-1)[k]), float(t.reshape(-1)[k]),
                 Verdict.PASS if ok else Verdict.FAIL, note)


# ---- the exact backend's comparator (engine/exact.py, issue 10) ----------------------------------------
def exact_size(values, point: dict | None = None) -> float:
    """max |v| of exact ring elements at ``point`` (symbol name -> float): the size a residual
    expression has at the run's alpha and y (inf when a symbol has no value or all vanish there)."""
    best = 0.0
    for v in values:
        try:
            best = max(best, abs(v.F.evaluate(v, point or {})))
        except Exception:  # noqa: BLE001 - a symbol without a value: size unknown
            return math.inf
    return best if best > 0 else math.inf


def compare_exact(entries, claimed, what: str, *, point: dict | None = None, note: str = "",
                  count: int | None = None) -> Check:
    """The exact backend's comparator, where the float one compares a residual with its forward-error
    tolerance: PASS iff every residual entry (an element of the engine's exact ring) is the zero
    polynomial in its canonical form (an exact test, tolerance 0); else FAIL with the first entries
    shown as expressions and their size at ``point``. ``entries``: [(label, element)]; ``count``: how
    many entries are nonzero when ``entries`` holds only the first ones."""
    from sympy import sstr

    bad = [(w, v) for w, v in entries if not v.is_zero_poly()]
    if not bad:
        return Check(f"{what} = 0 (identically)", claimed, 0.0, 0.0, Verdict.PASS, note)
    shown = "; ".join(f"{w}: {sstr(v.F.to_sympy(v))}" for w, v in bad[:3])
    n = len(bad) if count is None else count
    more = f" (+{n - 3} more)" if n > 3 else ""
    return Check(f"{what} != 0: {shown}{more}", claimed, exact_size([v for _, v in bad[:50]], point), 0.0,
                 Verdict.FAIL, note or f"residual expression {shown}{more}")


class FloatBackend:
    """What a claim that runs on every backend asks of the float64 one (issue 10, "one claim catalogue").

    The comparator: a residual against Higham's forward-error tolerance (:meth:`Context.tol`), the
    magnitude given lazily (``mag``: a callable, so that the exact backend never computes one); an
    exact zero test is ``== 0.0``. The claimed side's ingredients come from :mod:`.sides`, that is
    :mod:`universality.reference` (never the builder's tables)."""

    name = "float64"
    exact = False

    # ---- comparator ----
    def equal(self, ctx, computed, claimed, mag, *, what: str = "", claimed_text: str | None = None,
              componentwise: bool = False, labels=None) -> Check:
        """computed vs claimed within ``mag`` (a number, or a callable giving it) times the run's rounding unit (componentwise: one
        magnitude per entry, :func:`compare_componentwise`; else one scalar, :func:`compare`; SciPy
        sparse matrices: the largest entry of their difference)."""
        m = mag() if callable(mag) else mag
        if hasattr(computed, "tocsr") or hasattr(claimed, "tocsr"):
            from .structure import max_abs_sparse

            res, tol = max_abs_sparse(computed - claimed), ctx.tol(m)
            return Check(res, claimed_text, res, tol, Verdict.PASS if res <= tol else Verdict.FAIL)
        if componentwise:
            return compare_componentwise(computed, claimed, ctx.tol(1.0) * np.asarray(m, dtype=float))
        return compare(computed, claimed, ctx.tol(m))

    def outer_equal(self, ctx, P, Q, A, B, tols, *, what: str = "", diffs=None) -> Check:
        """Layer k's P[k] Q[k]^T against A[k] B[k]^T, every entry (from the factors, exactly:
        :func:`~universality.engine.layers.outer_diff_max_abs_all`), each layer against its own
        tolerance ``tols()[k]`` (no pooled maximum). ``diffs``: those per-layer maxima when the caller
        computed them already (grad-rank-one: a step group's samples in one compiled traversal of the
        same factors, engine/kernels.py: outer_diff_group)."""
        from ..engine.layers import outer_diff_max_abs_all

        if diffs is None:
            diffs = outer_diff_max_abs_all(P, Q, A, B)
        t = np.asarray(tols(), dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(diffs == 0, 0.0, np.where(t > 0, diffs / np.where(t > 0, t, 1.0), np.inf))
        kw = int(np.argmax(ratios))
        res, tol = float(diffs[kw]), float(t[kw])
        return Check(f"max |grad W_i - formula| = {res:.3g} (worst at i = {kw + 1})", "0",
                     res, tol, Verdict.PASS if float(ratios[kw]) <= 1 else Verdict.FAIL)

    def guard(self, check: Check, guarded, what: str) -> Check:
        """:func:`~universality.tolerance.guard` with the guarded size ``guarded()`` (a PASS whose
        tolerance is too large to mean anything is UNDECIDED)."""
        return guard(check, guarded() if callable(guarded) else guarded, what)

    def error(self, ctx, z, y):
        """dl/dz through g_pre from the derivative of the loss's formula (reference/lossdiff.py)."""
        from . import sides

        return sides.error(ctx, z, y)

    def zero(self, values) -> Verdict:
        """PASS iff every value is exactly 0 (quantities the step must not touch at all)."""
        return Verdict.PASS if all(float(v) == 0.0 for v in values) else Verdict.FAIL

    def nonzero(self, ctx, values, mag) -> Verdict:
        """Is some value nonzero beyond rounding? (:func:`decide_nonzero`)."""
        return decide_nonzero(max_abs(np.asarray(list(values), dtype=float)), ctx.tol(mag() if callable(mag) else mag))

    def size(self, values) -> float:
        return max_abs(np.asarray(list(values), dtype=float))

    def show(self, v) -> str:
        return f"{float(v):.6g}"

    def record(self, values):
        """Values as a claim record keeps them (float: the array itself)."""
        return values

    def zeros(self, shape):
        return np.zeros(shape)

    def close(self, values, target, tol: float) -> np.ndarray:
        """Per value: within ``tol`` of ``target`` (the exact backend: equal exactly)."""
        return np.abs(np.asarray(values, dtype=float) - target) <= tol

    def row_dots(self, P, Q) -> np.ndarray:
        """Per row i: P[i] . Q[i]."""
        return np.einsum("ij,ij->i", P, Q)

    # ---- the claimed side's ingredients (universality/reference via claims/sides.py) ----
    def e_check(self, ctx, y):
        from . import sides

        return sides.e_check_spec(ctx, y)

    def wcheck_product(self, ctx):
        """(prod_i wcheck_i, prod_i |wcheck_i|): the bottom entries of the run's weights (telescoping)."""
        from . import sides

        t = sides.tel(ctx)
        return float(t.wcheck_product), float(np.prod(np.abs(t.wcheck)))

    def loss_gradient(self, ctx, y, yhat):
        from ..reference import formulas

        return formulas.loss_gradient(ctx.con.loss, y, yhat)

    def clip(self, values):
        """max(v, 0) per entry (the exact backend decides each sign on the orthant)."""
        return np.maximum(values, 0.0)

    def eq3(self, ctx, x, x_star, theta_b_post, e_mid, alpha, r):
        """(eq. (3), |terms|) with A_i, B_i telescoped from the run's weights (reference/telescoping.py),
        phi~ at exact bins and the spec's switch at the real theta_b' (claims/sides.py)."""
        from . import sides

        return sides.eq3(ctx, x, x_star, theta_b_post, e_mid, alpha, r)

    def tel(self, ctx):
        """A_i, B_i, wcheck_i telescoped from the run's weights (reference/telescoping.py)."""
        from . import sides

        return sides.tel(ctx)

    def A_target(self, ctx, i: int):
        """diag(A_i / r^i), the spec's choice the weights must realise (reference/design.py)."""
        from ..reference import design

        d = ctx.design
        return design.A_realised_diag(i, ctx.N, ctx.blocks, d.eps, d.relu_grad_at_zero)

    def B_target(self, ctx, i: int):
        """B_i = [[I, 0], [G_i^T, I]] from the spec's codes (dense, or CSR for a wide top block)."""
        from . import sides

        return sides.design_B(ctx, i)

    def diag(self, v):
        return np.diag(v)

    def tol(self, ctx, mag) -> float:
        """The forward-error tolerance of a quantity of magnitude ``mag`` (a number or a callable)."""
        return ctx.tol(mag() if callable(mag) else mag)

    def label(self, ctx, y):
        return np.asarray(y, dtype=float)

    def asarray(self, values):
        return np.asarray(values, dtype=float)

    def scalar(self, c):
        return float(c)

    def executed_error(self, ctx, z, y):
        """dl/dz executed through the real head and the loss's own ``grad`` (claims/executed.py)."""
        from .executed import error_at_z

        return error_at_z(ctx.con, z, y)

    def min_singular(self, ctx, M) -> float:
        return float(np.linalg.svd(M, compute_uv=False).min())

    def kshot_formula(self, ctx, xs, ys, x_star, theta_b_post, alpha):
        """(-(alpha/K) sum_k sum_i r^i A_i e_bar(y_k) k_i(x_k, x*), |terms|) from reference/
        (claims/kshot.py: kshot_formula)."""
        from .kshot import kshot_formula

        return kshot_formula(ctx.con, xs, ys, x_star, theta_b_post, alpha)

    def steps_equal(self, ctx, a, b, tol, *, what: str = "") -> Check:
        """Two steps' updated parameters (every entry of every W', from the factors; theta_b', W_g') and
        zbar*: the largest difference against ``tol()``; ``computed`` says whether they are bit-identical."""
        from ..engine.step import updates_diff_max_abs

        diffs = [updates_diff_max_abs(a, b), abs(a.theta_b_post - b.theta_b_post), max_abs(a.Wg_post - b.Wg_post),
                 max_abs(a.z_star - b.z_star)]
        res, t = max(diffs), tol()
        return Check(not any(diffs), "0", res, t, Verdict.PASS if res <= t else Verdict.FAIL)

    def second_order_sides(self, ctx, st):
        """second-order-zero's executed and expanded sides on probe blocks (claims/one_step.py:
        second_order_sides): (X, prod W' X - prod W X, first-order sum X, their magnitudes)."""
        from .one_step import second_order_sides

        return second_order_sides(ctx, st)

    def update_outside(self, ctx, st):
        """update-blocks' executed side: ([max |W' - W| outside the allowed blocks], the largest allowed
        change, None) from the step's factors (claims/one_step.py: update_outside)."""
        from .one_step import update_outside

        return update_outside(ctx, st)

    def every_cell_skip(self, ctx) -> str:
        """Why every-cell is SKIPPED on this run ('' when it runs): its estimated flops above the engine's
        budget (claims/coverage.py)."""
        from .coverage import EVERY_CELL_FLOP_BUDGET, _every_cell_cost

        b = ctx.blocks
        cost = _every_cell_cost(ctx)
        if cost > EVERY_CELL_FLOP_BUDGET:
            return (f"{b.cells_x * b.cells_star} steps of about {cost / (b.cells_x * b.cells_star):.2g} flops "
                    f"each exceed the {ctx.layers.kind} engine's budget here ({EVERY_CELL_FLOP_BUDGET:.0e} flops)")
        return ""

    def one_step(self, ctx, x, y, x_star):
        """One real step of the run's construction (execution.one_step)."""
        from .. import execution

        return execution.one_step(ctx.con, x, y, x_star)

    def sum_zero_basis(self, dy: int):
        """An orthonormal basis of {d : 1^T d = 0} (dy x (dy - 1)), for injectivity on the simplex."""
        return np.linalg.svd(np.ones((1, dy)))[2][1:].T

    def codes_injective_skip(self, ctx):
        """A SKIPPED Check with the sizes when codes-injective's separation search would exceed its
        memory cap (claims/coverage.py), else None."""
        from .coverage import _codes_injective_too_large

        return _codes_injective_too_large(ctx)

    def cell_separation(self, ctx, y):
        """(min sine between two cells' v, the pair, exactly 0?, the nearest-line search's distortion, how
        it searched) with v(a, b, y) = sum_i r^i k_i(a, b) A_i e(y) from the weights (claims/coverage.py)."""
        from .coverage import SEPARATION_GRAM_MAX, realised_v, realised_v_coords, separation

        b = ctx.blocks
        coords = b.cells_x * b.cells_star > SEPARATION_GRAM_MAX
        V = realised_v_coords(ctx, y) if coords else realised_v(ctx, y)
        sep, pair, exact, rho = separation(V, with_distortion=True)
        return sep, pair, exact, rho, ("nearest lines (k-d tree) on the v's in an orthonormal basis of their terms"
                                       if coords else "all pairs (Gram matrix)")

    def vector(self, x):
        return np.asarray(x, dtype=float)

    def same(self, a, b) -> bool:
        """Exactly equal, entry for entry (bit for bit)."""
        return bool(np.array_equal(a, b))

    def label_values(self, y):
        return np.asarray(y, dtype=float)

    def short(self, v) -> str:
        v = np.asarray(v, dtype=float).reshape(-1)
        return "[" + ", ".join(f"{t:.4g}" for t in v[:4]) + (", ..." if v.size > 4 else "") + "]"

    def decode(self, ctx, st, y, truth: int):
        """v-decodes' decoder: least squares over every cell's spec gains (decode.decode_gains), the
        separation signal |alpha| |w| |y| margin against the rounding of zbar*, the label's tolerance."""
        from ..decode import decode_gains, spec_gains
        from .one_step import _abs_forward_max

        b = ctx.blocks
        gains = ctx.cached("spec_gains", lambda: spec_gains(ctx.design, b))
        dec = decode_gains(gains, b, ctx.con.loss, st.z_star[b.mid], st.alpha)
        w = gains[truth]
        wn = float(np.linalg.norm(w))
        yv = np.asarray(y, dtype=float)
        zmag = _abs_forward_max(ctx, st.W_post, st.phi_star_post, b.mid) * math.sqrt(b.dm)
        ztol = ctx.tol(zmag)
        ymag = (zmag / (abs(st.alpha) * wn) if wn > 0 else math.inf) + max_abs(yv)
        signal = abs(st.alpha) * wn * float(np.linalg.norm(yv)) * dec.margin
        weak = signal <= ztol
        return Decoded(dec.cell_x, dec.cell_star, dec.y, dec.margin, Verdict.UNDECIDED if weak else Verdict.PASS,
                       f"separation {signal:.3g} below rounding {ztol:.3g}" if weak else "",
                       float(max_abs(dec.y - yv)), ctx.tol(ymag), ymag)

    def unit_extremes(self, pre):
        """Per unit (column of ``pre``, layers x units): the largest and the smallest value."""
        return pre.max(axis=0, initial=-np.inf), pre.min(axis=0, initial=np.inf)

    def top_product(self, ctx, t, j: int):
        """(Wtilde_j ... Wtilde_N, the same on |Wtilde|): B_{j-1} for j >= 2, Wtilde_1 B_1 for j = 1."""
        if j >= 2:
            return t.B[j - 2], t.B_abs[j - 2]
        from .structure import top_block

        blk = top_block(ctx.layers, ctx.blocks, 0)
        return blk @ t.B[0], abs(blk) @ t.B_abs[0]

    def min_entry(self, ctx, M) -> float:
        """The smallest entry of M, counting the implicit zeros of a sparse one."""
        from .structure import min_entry_sparse

        return min_entry_sparse(M)

    def psd(self, ctx, P, tol: float):
        """(smallest eigenvalue of the symmetric part or a bound, how, PSD: True / False / None)."""
        from .structure import min_eig_sym_part

        return min_eig_sym_part(P, tol)

    def definite(self, ctx, A):
        """(verdict, smallest eigenvalue / largest |entry|, how) for the symmetric part of A (1-D: a
        diagonal): PASS above the run's relative rounding unit, FAIL below minus it, else UNDECIDED."""
        from .structure import min_eig_sym

        scale = max(max_abs(A), 1e-300)
        if A.ndim == 1:
            lam, how = (float(np.min(A)) if A.size else math.inf), "diagonal"
        else:
            lam, how = min_eig_sym((A + A.T) / 2, ctx.tol(scale))
        rel, bound = lam / scale, ctx.tol(1.0)
        return (Verdict.PASS if rel > bound else (Verdict.FAIL if rel < -bound else Verdict.UNDECIDED)), rel, how

    def invertible(self, ctx, B, tol: float):
        """(verdict, smallest singular value or pivot, how): structure certificate or singular values
        (claims/structure.py); |fl(B) - B| <= tol entrywise moves it by at most dt * tol."""
        from .structure import invertibility

        sv, how, _ = invertibility(B, tol)
        return decide_nonzero(sv, ctx.blocks.dt * tol), sv, how

    def v_claimed(self, ctx, x, x_star, y):
        """(v(x, x*, y), |terms|): the spec's codes, A_i and e_bar with exact bins (reference/)."""
        from . import sides

        return sides.v_claimed(ctx, x, x_star, y)

    def kernel_claimed(self, ctx, a: int, bb: int):
        """(k_1, ..., k_N) = [0, c(a, b), 0] from the spec's code table (reference/codes.py)."""
        from . import sides

        return sides.kernel_claimed(ctx, a, bb)

    def gate_open(self, ctx, z) -> bool:
        from . import sides

        return sides.gate_open(ctx, z)

    def sample(self, s):
        return s


@dataclass
class Decoded:
    """What a backend's decoder found for v-decodes (claims/one_step.py)."""

    cell_x: int
    cell_star: int
    y: Any  # the decoded label
    margin: float  # sin of the angle to the nearest other cell's gains
    separation: Verdict  # PASS: told apart from every other cell; UNDECIDED: within rounding / undecided; FAIL
    why: str  # the reason when separation is not PASS
    residual: float  # |decoded label - y| (float) for a record
    ytol: float  # the label's tolerance (exact: 0)
    ymag: float  # its magnitude (what the comparator's tolerance is built from)


FLOAT = FloatBackend()


def decide_nonzero(value_abs: float, tol: float) -> Verdict:
    """Is a quantity nonzero? PASS above tol, FAIL at exactly 0, UNDECIDED in between."""
    if not math.isfinite(value_abs):
        return Verdict.FAIL
    if value_abs > tol:
        return Verdict.PASS
    if value_abs == 0:
        return Verdict.FAIL
    return Verdict.UNDECIDED


def worst(*verdicts: Verdict) -> Verdict:
    return max(verdicts, key=lambda v: _SEVERITY[v]) if verdicts else Verdict.SKIPPED


@dataclass(frozen=True)
class ClaimSpec:
    id: str
    title: str
    paper_ref: str
    statement: str
    method: str
    scope: str  # "sample": once per (x, x*, y); "construction": once
    func: Callable
    applies: Callable | None = None  # (ctx) -> None or a reason to SKIP


@dataclass
class ClaimResult:
    id: str
    title: str
    paper_ref: str
    statement: str
    method: str
    verdict: Verdict
    residual: float
    tolerance: float
    checked: int
    counts: dict
    worst_case: dict | None = None
    computed: Any = None
    claimed: Any = None
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "paper_ref": self.paper_ref,
            "statement": self.statement,
            "method": self.method,
            "verdict": self.verdict.value,
            "residual": _json_float(self.residual),
            "tolerance": _json_float(self.tolerance),
            "checked": self.checked,
            "counts": self.counts,
            "worst_case": self.worst_case,
            "computed": summarize(self.computed),
            "claimed": summarize(self.claimed),
            "note": self.note,
        }


def _json_float(x: float):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _ratio(c: Check) -> float:
    if c.residual == 0:
        return 0.0
    if c.tolerance == 0:
        return math.inf
    return c.residual / c.tolerance


def aggregate(spec: ClaimSpec, checks: list[tuple[dict | None, Check]]) -> ClaimResult:
    """Fold the checks of one claim: the verdict is the worst one, the residual the worst case's."""
    if not checks:
        return ClaimResult(spec.id, spec.title, spec.paper_ref, spec.statement, spec.method,
                           Verdict.SKIPPED, 0.0, 0.0, 0, {}, note="nothing to check")
    counts = {v.value: 0 for v in Verdict}
    for _, c in checks:
        counts[c.verdict.value] += 1
    decided = [(w, c) for w, c in checks if c.verdict != Verdict.SKIPPED]
    pool = decided or checks
    top = worst(*(c.verdict for _, c in pool))
    candidates = [(w, c) for w, c in pool if c.verdict == top]
    where, chk = max(candidates, key=lambda wc: _ratio(wc[1]))
    return ClaimResult(spec.id, spec.title, spec.paper_ref, spec.statement, spec.method, top,
                       chk.residual, chk.tolerance, len(checks), counts, where, chk.computed,
                       chk.claimed, chk.note)


# ---- registry -------------------------------------------------------------------------------
CLAIMS: dict[str, ClaimSpec] = {}


def _blueprint_text(kind: str, id: str, **fallback) -> dict:
    """Title, paper reference and statement of checker ``kind:id`` from the blueprint
    (universality/data/blueprint.toml, the single source). The decorator's own keyword arguments
    are only a fallback for a checker that has no blueprint entry yet."""
    from ..blueprint import load

    entry = load().for_checker(kind, id)
    out = {}
    for key, value in fallback.items():
        text = getattr(entry, key) if entry is not None else value
        if not text:
            raise ValueError(f"{kind} {id} has no blueprint entry and no {key}= in its decorator")
        out[key] = text
    return out


# Public name for ClaimSpec / FindingSpec objects built outside the registries (e.g. claims that run
# only on request): spec_text("claim", "universal-converges") -> {"title", "paper_ref", "statement"}.
def spec_text(kind: str, id: str) -> dict:
    return _blueprint_text(kind, id, title=None, paper_ref=None,
                           **({"statement": None} if kind == "claim" else {}))


def claim(id: str, *, method: str, title: str | None = None, paper_ref: str | None = None,
          statement: str | None = None, scope: str = "sample", applies: Callable | None = None):
    """Register a claim function under its catalogue id. Title, paper reference and statement come
    from the blueprint entry whose checker is ``claim:<id>`` (keywords: fallback only)."""

    def deco(func):
        if id in CLAIMS:
            raise ValueError(f"duplicate claim id {id}")
        text = _blueprint_text("claim", id, title=title, paper_ref=paper_ref, statement=statement)
        run = func
        if scope in ("sample", "task"):
            import functools

            @functools.wraps(func)
            def run(ctx, item, step, _func=func):
                # the tolerance counts the additions of this step's updated layers (Context.ops)
                if ctx.step is not step:
                    ctx.step = step
                return _func(ctx, item, step)

        CLAIMS[id] = ClaimSpec(id, text["title"], text["paper_ref"], text["statement"], method, scope,
                               run, applies)
        return func

    return deco


@dataclass
class Finding:
    """A known gap of the paper, demonstrated live on the run's sizes."""

    id: str
    title: str
    paper_ref: str
    demonstrated: bool
    counterexample: dict
    explanation: str
    condition: str = ""
    headline: str = ""

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "paper_ref": self.paper_ref,
            "demonstrated": bool(self.demonstrated),
            "headline": self.headline,
            "condition": self.condition,
            "counterexample": summarize(self.counterexample, limit=12),
            "explanation": self.explanation,
        }


@dataclass
class Outcome:
    """What a finding function computed: whether the gap showed, the counterexample, why."""

    demonstrated: bool
    counterexample: dict
    explanation: str
    headline: str = ""


@dataclass(frozen=True)
class FindingSpec:
    id: str
    title: str
    paper_ref: str
    condition: str
    func: Callable


FINDINGS: dict[str, FindingSpec] = {}


def finding(id: str, *, condition: str, title: str | None = None, paper_ref: str | None = None):
    """Register a finding. Title and paper reference come from the blueprint entry whose checker is
    ``finding:<id>`` (keywords: fallback only)."""

    def deco(func):
        if id in FINDINGS:
            raise ValueError(f"duplicate finding id {id}")
        text = _blueprint_text("finding", id, title=title, paper_ref=paper_ref)
        FINDINGS[id] = FindingSpec(id, text["title"], text["paper_ref"], condition, func)
        return func

    return deco


def run_finding(spec: FindingSpec, ctx, samples) -> Finding:
    out = spec.func(ctx, samples)
    return Finding(spec.id, spec.title, spec.paper_ref, bool(out.demonstrated), out.counterexample,
                   out.explanation, spec.condition, out.headline)


def column_of(view, whole, g: int) -> bool:
    """Is ``view`` (N, D, 1) column g of a step group's ``whole`` (N, D, G): the same memory, or the
    same checkpointed sweep's output? (Then a quantity of the view may be computed for the whole
    group at once and read at column g.)"""
    from ..engine.checkpoint import _column, is_lazy

    if is_lazy(view) or is_lazy(whole):
        return (is_lazy(view) and is_lazy(whole) and view.sweep is whole.sweep and view.n == whole.n
                and whole.cols is None and _column(view.cols) == g)
    if not (isinstance(view, np.ndarray) and isinstance(whole, np.ndarray)) or whole.ndim != 3:
        return False
    return (view.dtype == whole.dtype and view.shape == whole.shape[:2] + (1,)
            and view.strides[:2] == whole.strides[:2]
            and view.__array_interface__["data"][0] == whole.__array_interface__["data"][0] + g * whole.strides[2])


def _group_step_ops(step):
    """:func:`~universality.tolerance.step_ops` of a one-example step whose factors are its column of
    its group's stored factors, counted for the whole group at once (kept on the group: the same
    integers, sum over the layers of nnz(h_k) plus N), else None."""
    grp = getattr(step, "group", None)
    H = getattr(getattr(step, "W_post", None), "Hfac", None)
    if grp is None or H is None or not isinstance(getattr(grp, "hfac", None), np.ndarray):
        return None
    g = step.group_index
    if H.shape[2] != 1 or not column_of(H, grp.hfac, g):
        return None
    def count(G_):  # per sample: its nonzero entries of h over every layer (entry e of the flat array is sample e % G)
        G = G_.hfac.shape[2]
        from ..engine import kernels

        if kernels.usable(G_.layers) and G_.hfac.dtype == np.float64 and G_.hfac.flags.c_contiguous:
            counts = np.zeros(G, dtype=np.int64)  # engine/kernels.py: nonzero_per_column, one pass
            kernels.kernel("nonzero_per_column")(G_.hfac.reshape(-1, G), counts)
            return counts
        return np.bincount(np.flatnonzero(G_.hfac.reshape(-1)) % G, minlength=G)

    counts = grp.cached("step ops", count)
    return int(counts[g]) + H.shape[0]


@dataclass
class Context:
    """What every claim of one run shares: the construction, its layers (dense or sparse backend),
    the step whose claims are being checked (for the tolerance's operation count), and a cache."""

    con: Any
    cache: dict = field(default_factory=dict)
    step: Any = None  # the Step the sample/task claims are looking at (set by verify.check_claims)
    # True for a construction built elsewhere (verify-construction --check): the claims then take
    # their claimed sides from the weights alone (the paper's definitions), never from the spec's
    # chosen tables, which such a construction need not follow
    external: bool = False

    @property
    def backend(self) -> FloatBackend:
        """The comparator and claimed-side ingredients of the claims that run on every backend."""
        return FLOAT

    @property
    def design(self):
        return self.con.design

    @property
    def blocks(self):
        return self.con.blocks

    @property
    def N(self) -> int:
        return self.con.N

    @property
    def D(self) -> int:
        return self.con.D

    @property
    def layers(self):
        from ..engine.step import layers_of

        return layers_of(self.con)

    @property
    def engine(self) -> str:
        return self.layers.kind

    @property
    def base_ops(self) -> int:
        """Additions along one pass: per layer its largest row's nonzeros + 2, the head, a margin."""
        from ..tolerance import HEAD_OPS, layer_ops

        def make():
            Wg = np.asarray(self.con.Wg, dtype=float)
            head = int(np.count_nonzero(Wg, axis=1).max(initial=0)) if Wg.size else 0
            return layer_ops(self.layers) + head + HEAD_OPS

        return self.cached("base_ops", make)

    @property
    def ops(self) -> int:
        """n of gamma_n: :attr:`base_ops`, plus the rank-K corrections of the current step."""
        if self.step is None:
            return self.base_ops
        from ..tolerance import step_ops

        key = ("step_ops", id(self.step))
        if self.cache.get("step_ops_of") is not self.step:
            self.cache["step_ops_of"] = self.step
            got = _group_step_ops(self.step)
            self.cache["step_ops"] = step_ops(self.step) if got is None else got
        del key
        return self.base_ops + self.cache["step_ops"]

    def tol(self, magnitude) -> float:
        """SAFETY * gamma_n * magnitude with n counted from this network (:attr:`ops`)."""
        from ..tolerance import bound

        return bound(self.ops, magnitude)

    def cached(self, key: str, make: Callable):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def B(self, i: int):
        return self.cached(f"B{i}", lambda: self.con.B(i))

    def abs_extremes(self, layers, phi, rows: bool = True):
        """(colmax (D,), rowmax (N,)) of the magnitude pass |W_k| ... |W_N| |phi|: per unit its largest
        value over the layers, per layer its largest over the units (what the rounding bounds read;
        ``rows=False``: rowmax may be None, only colmax is needed).
        From the step's group when it computed them, else reduced from :meth:`abs_pass` when that is
        cached, else reduced layer by layer while the pass runs (no N x D array: checkpointed sizes)."""
        for L, P, ext in getattr(self.step, "abs_extremes", ()):
            if L is layers and P is phi and ext[1] is not None:  # (None: the group kept its colmax only)
                return ext
        if not rows:
            for L, P, ext in getattr(self.step, "abs_extremes", ()):
                if L is layers and P is phi:
                    return ext
        key = ("abs_pass", id(layers), id(phi))
        if self.cache.get("abs_passes_of") is self.step and key in self.cache.get("abs_passes", {}):
            a = self.abs_pass(layers, phi)
            return a.max(axis=0, initial=0.0), a.max(axis=1, initial=0.0)
        store = self.cache.setdefault("abs_extremes", {})
        if self.cache.get("abs_extremes_of") is not self.step:
            store.clear()
            self.cache["abs_extremes_of"] = self.step
        if key not in store:
            from ..engine.batch import _abs_extremes

            cm, rm = _abs_extremes(layers.abs_apply, layers.N, np.asarray(phi, dtype=float)[:, None])
            store[key] = (layers, phi, (cm[:, 0], rm[:, 0]))
        return store[key][2]

    def abs_pass(self, layers, phi) -> np.ndarray:
        """|W_k| ... |W_N| |phi| for every layer k (N, D), cached for the current step."""
        from ..engine.step import abs_forward

        key = ("abs_pass", id(layers), id(phi))
        store = self.cache.setdefault("abs_passes", {})
        if self.cache.get("abs_passes_of") is not self.step:
            store.clear()
            self.cache["abs_passes_of"] = self.step
        if key not in store:
            store[key] = (layers, phi, abs_forward(layers, phi))
        return store[key][2]
