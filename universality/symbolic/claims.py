"""The exact backend of the one claim catalogue (issue 10): what the catalogue's claims ask of it.

Every claim of the catalogue is ONE function (claims/one_step.py, coverage.py, kshot.py,
loss_claims.py) that the float run and the exact run both call; :data:`UNIFIED` lists them and
:func:`unified_claim` registers each in :data:`SYMBOLIC_CLAIMS` under its catalogue id. This module holds
no second copy of any claim's logic, only the exact backend's ingredients:

* :class:`ExactBackend`: the comparator (the canonical zero test of the engine's exact ring,
  tolerance 0, the residual expression and its size at the run's alpha and y on a FAIL) and the claimed
  sides' ingredients from the exact field's own definitions (the SymPy derivative of the loss's value,
  the loss's head, the spec's codes and A_i as exact rationals, the weights' own telescoped products
  :class:`ExactTel`), never the construction's tables;
* :class:`ExactContext` / :class:`ExactClaimContext` / :class:`ExactSample` / :class:`ExactTask`: the exact
  run as a claim reads it (the float ``Context``'s names);
* :func:`identity`: SymPy's zero test re-checked in the ring's canonical form (kept for callers that hold
  SymPy matrices).

A claimed side outside the ring, or a sign the analysis cannot decide, makes the claim UNDECIDED with
the reason; a claim with no exact form says SKIPPED itself (kshot-decodes), as does one above the exact
budget (every-cell). The schematic all-N proof is :mod:`.schematic`, its own section, never a claim.
"""
from __future__ import annotations

import math
from fractions import Fraction
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import sympy as sp

from ..claims.base import CLAIMS, Check, ClaimSpec, Decoded, Verdict, compare_exact, exact_size

SYMBOLIC_CLAIMS: dict[str, ClaimSpec] = {}


@dataclass
class ExactContext:
    con: Any  # the exact Construction (SymPy)
    alpha: Any  # symbol or rational (SymPy, for printing the claimed sides)
    r: Any
    point: dict  # symbol -> the run's float value, to give a residual its size
    cache: dict = field(default_factory=dict)
    extra: tuple = ()  # further free symbols of the construction (rho of a symbolic ReLU'(0))
    ec: Any = None  # the same construction as the engine executes it (engine.exact.ExactConstruction)

    @property
    def F(self):
        """The exact ring of the run (engine.exact.ExactRing)."""
        return self.ec.F

    @property
    def layers(self):
        return self.ec.W

    @property
    def blocks(self):
        return self.con.blocks

    @property
    def N(self) -> int:
        return self.con.N

    def cached(self, key, make: Callable):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def unit(self, y):
        """e_bar's unit H^T grad l(y, 0), exact, from the SymPy derivative of the loss's *value*
        (``sympy_value``, not the ``grad`` the execution uses) and the loss's head H: MSE gives y,
        CE y - mean(y), L1 and hinge sign(y), Huber clip(y, -1, 1) (the float side's label_code)."""
        from ..construction.fields import ExactField

        ys = list(y)
        dy = len(ys)
        key = ("unit", tuple(ys))
        if key not in self.cache:
            q = sp.symbols(f"q0:{dy}", real=True)
            val = self.con.loss.sympy_value(ys, list(q))
            g = sp.Matrix([sp.diff(val, v) for v in q]).subs({v: 0 for v in q})
            H, _ = self.con.loss.head(dy, ExactField())
            self.cache[key] = (H.T * g).applyfunc(_tidy)
        return list(self.cache[key])

    def e_bar(self, y):
        """m copies of [u; -u] (signed) or [u] (paper) with u = :meth:`unit` (y for MSE), exact."""
        b = self.blocks
        u = self.unit(y)
        unit = u + [-v for v in u] if b.s == 2 else u
        return sp.Matrix(unit * b.m)


class StepView:
    """One exact engine :class:`~universality.engine.step.Step` as the claims read it: the engine's
    arrays of ring elements (``st``) and SymPy columns of the few small vectors the paper's formulas
    are written with (converted on first use)."""

    def __init__(self, ctx, st, x, x_star, y, orthant, partial: bool = False):
        self.ctx, self.st, self.x, self.x_star, self.orthant = ctx, st, x, x_star, orthant
        self.y = sp.Matrix(list(y))
        self.alpha = ctx.F.to_sympy(st.alpha)
        self.r = ctx.F.to_sympy(st.r)
        self.partial = partial
        self._c: dict = {}

    def col(self, name: str, arr):
        if name not in self._c:
            self._c[name] = self.ctx.F.to_sympy_matrix(arr)
        return self._c[name]

    @property
    def phi_x(self):
        return self.col("phi_x", self.st.phi_x)

    @property
    def phi_star_post(self):
        return self.col("phi_star_post", self.st.phi_star_post)

    @property
    def z_star(self):
        return self.col("z_star", self.st.z_star)

    @property
    def z_x(self):
        return self.col("z_x", self.st.fwd_x.z)

    @property
    def theta_b_post(self):
        return self.ctx.F.to_sympy(self.st.theta_b_post)


# ---- the exact backend of the claims that run on every backend (issue 10) ------------------------
EXACT_EVERY_CELL_MAX = 4  # every-cell runs one exact step per cell pair up to this many pairs


class ExactBackend:
    """What a claim of the one catalogue asks of the exact backend: the comparator is the canonical
    zero test of the engine's exact ring (:func:`~universality.claims.base.compare_exact`, tolerance 0,
    the residual's size at the run's alpha and y when it is not 0); a magnitude is never computed. The
    claimed side's ingredients come from the exact field's own definitions (the SymPy derivative of the
    loss's *value*, the loss's head, the exact weights), never from the construction's tables."""

    name = "exact"
    exact = True

    def __init__(self, xctx: "ExactContext"):
        self.x = xctx

    @property
    def F(self):
        return self.x.F

    def _point(self) -> dict:
        return {getattr(k, "name", str(k)): v for k, v in self.x.point.items()}

    def _ring(self, v):
        if hasattr(v, "is_zero_poly"):
            return v
        if isinstance(v, (int, float, np.integer, np.floating)):  # an exact 0 the engine keeps as a number
            return self.F.const(float(v) if isinstance(v, (float, np.floating)) else int(v))
        return self.F.from_sympy(sp.sympify(v))

    # ---- comparator ----
    def equal(self, ctx, computed, claimed, mag, *, what: str = "", claimed_text: str | None = None,
              componentwise: bool = False, labels=None) -> Check:
        c = np.asarray(computed, dtype=object)
        d = np.asarray(claimed, dtype=object)
        text = claimed_text if claimed_text is not None else "claimed"
        if c.shape != d.shape:
            return Check(f"{what}: shape {c.shape}", text, math.inf, 0.0, Verdict.FAIL,
                         f"shape mismatch {c.shape} vs {d.shape}")
        if not c.shape:
            entries = [(what, self._ring(c.item()) - self._ring(d.item()))]
        else:  # only the nonzero differences are kept (labelled): a D x D identity is mostly zeros
            entries = []
            for n, (u, v) in enumerate(zip(c.reshape(-1), d.reshape(-1))):
                r = self._ring(u) - self._ring(v)
                if not r.is_zero_poly():
                    ix = np.unravel_index(n, c.shape)
                    entries.append((labels[n] if labels is not None else f"[{', '.join(map(str, ix))}]", r))
        return compare_exact(entries, text, what, point=self._point())

    def outer_equal(self, ctx, P, Q, A, B, tols, *, what: str = "") -> Check:
        """Layer k's P[k] Q[k]^T - A[k] B[k]^T: every entry on the factors' supports by the canonical
        zero test (the first 64 nonzero ones of each layer shown)."""
        bad = []
        for k in range(P.shape[0]):
            if _same_vector(P[k], A[k]) and _same_vector(Q[k], B[k]):
                continue  # equal factors: every entry of the difference is exactly 0 (no D^2 products)
            bad += _outer_diff(P[k], Q[k], A[k], B[k], f"layer {k + 1}")
        return compare_exact(bad, "0", what, point=self._point())

    def guard(self, check: Check, guarded, what: str) -> Check:
        return check  # an exact comparison has no tolerance to be too large

    def error(self, ctx, z, y):
        """dl/dz = W_g^T grad l(y, W_g z) (SymPy derivative of the loss's value); 0 behind an open gate."""
        Wg = self.x.ec.Wg
        if self.gate_open(ctx, z):
            return self.F.zeros(Wg.shape[1])
        return Wg.T @ self.loss_gradient(ctx, y, Wg @ z)

    def zero(self, values) -> Verdict:
        return Verdict.PASS if all(self._ring(v).is_zero_poly() for v in values) else Verdict.FAIL

    def nonzero(self, ctx, values, mag) -> Verdict:
        return Verdict.PASS if any(not self._ring(v).is_zero_poly() for v in values) else Verdict.FAIL

    def size(self, values) -> float:
        bad = [self._ring(v) for v in values]
        bad = [v for v in bad if not v.is_zero_poly()]
        return exact_size(bad, self._point()) if bad else 0.0

    def show(self, v) -> str:
        return sp.sstr(self.F.to_sympy(self._ring(v)))

    def zeros(self, shape):
        return self.F.zeros(shape)

    def record(self, values):
        """Ring elements as a claim record keeps them: their expressions (``sstr``)."""
        return [self.show(v) for v in np.asarray(values, dtype=object).reshape(-1)]

    def close(self, values, target, tol: float) -> np.ndarray:
        return np.array([(self._ring(v) - self._ring(target)).is_zero_poly() for v in values], dtype=bool)

    def row_dots(self, P, Q) -> np.ndarray:
        """Per row i: P[i] . Q[i], over the entries nonzero on both sides."""
        F, out = self.F, []
        for p, q in zip(P, Q):
            acc = F.zero
            for u, v in zip(p, q):
                if not u.is_zero_poly() and not v.is_zero_poly():
                    acc = acc + u * v
            out.append(acc)
        return np.array(out, dtype=object)

    # ---- the claimed side's ingredients (the exact field's own definitions) ----
    def e_check(self, ctx, y):
        """e_check(y) = u^T grad l(y, 0): the loss's head u and the SymPy derivative of its value."""
        from ..construction.fields import ExactField

        ys = [self.F.to_sympy(v) for v in y]
        _, u = self.x.con.loss.head(len(ys), ExactField())
        return self.F.from_sympy(sp.expand((sp.Matrix(u).T * _loss_grad_at(self.x, ys, [0] * len(ys)))[0, 0]))

    def wcheck_product(self, ctx):
        """(prod_i wcheck_i, None): the product of the exact weights' bottom entries."""
        con, b = self.x.con, self.x.blocks
        prod = sp.Integer(1)
        for k in range(self.x.N):
            prod *= con.W[k][b.bottom, b.bottom]
        return self.F.from_sympy(sp.expand(prod)), None

    def loss_gradient(self, ctx, y, yhat):
        """grad_yhat l(y, yhat) from the SymPy derivative of the loss's value (not its ``grad``)."""
        F = self.F
        g = _loss_grad_at(self.x, tuple(F.to_sympy(v) for v in y), tuple(F.to_sympy(self._ring(v)) for v in yhat))
        return F.array(list(g))

    def clip(self, values):
        """max(v, 0) per entry, each sign decided on the instance's orthant (UndecidedSign if not)."""
        F = self.F
        return np.array([v if F.decide(self._ring(v), "the sign of a claimed coordinate") == "+" else F.zero
                         for v in values], dtype=object)

    def v_claimed(self, ctx, x, x_star, y):
        """(v, None), v = sum_c c_c(a, b) A_{c+2} e_bar(y) in the exact ring: the cells of reference/bins.py,
        the code as exact rationals (reference/codes.column_exact), diag(A_i) = eps + [channel = i - 2]
        with eps the decimal's exact rational, e_bar from the loss's own label code (the SymPy
        derivative of its value, :meth:`ExactContext.unit`); never the construction's tables."""
        from ..claims import sides
        from ..reference.codes import column_exact

        b, d, F = self.x.blocks, self.x.con.design, self.F
        a, bb = sides.cells(ctx, x, x_star)
        code = column_exact(d.layout, a, bb, b.cells_x, b.cells_star, b.m)
        u = self.x.unit([F.to_sympy(v) for v in y])
        unit = [F.from_sympy(v) for v in (u + [-v for v in u] if b.s == 2 else u)]
        eps = F.const(float(d.eps))
        per = b.s * b.dy  # middle coordinates per code channel
        v = []
        for t in range(b.dm):
            acc = F.zero
            for c in range(b.m):
                if code[c]:
                    acc = acc + F.const(code[c]) * (eps + (F.one if t // per == c else F.zero)) * unit[t % per]
            v.append(acc)
        return np.array(v, dtype=object), None

    def kernel_claimed(self, ctx, a: int, bb: int):
        """[0, c(a, b), 0] from the spec's code table as exact rationals (reference/codes.column_exact),
        never the construction's table."""
        from ..reference.codes import column_exact

        b, F = self.x.blocks, self.F
        code = column_exact(self.x.con.design.layout, a, bb, b.cells_x, b.cells_star, b.m)
        return np.array([F.zero] + [F.const(q) for q in code] + [F.zero], dtype=object)

    def gate_open(self, ctx, z) -> bool:
        """The multiplexer of eq. (4): h_post is selected when zbar != 0 (the canonical zero test)."""
        return any(not self._ring(v).is_zero_poly() for v in np.asarray(z, dtype=object)[self.x.blocks.mid])

    def sample(self, s):
        return s

    # ---- the weights' own A_i, B_i (App. A.3's definitions, in the exact ring) ----
    def tel(self, ctx) -> "ExactTel":
        """A_i, B_i, wcheck_i telescoped from the exact weights (:class:`ExactTel`), once per run."""
        return self.x.cached(("exact telescoped", id(self.x.ec.W)), lambda: ExactTel(self.x.ec.W, self.x.blocks))

    def A_target(self, ctx, i: int):
        """diag(A_i / r^i) as exact elements: eps (the decimal's rational) + [channel = i - 2], A_1 = I,
        A_N = eps I (reference/design.py's choice), divided by r^i (r = 0: A_i itself; a symbolic
        r = rho^2 through rho's inverse)."""
        b, d, F = self.x.blocks, self.x.con.design, self.F
        N = self.x.N
        eps = F.const(float(d.eps))
        per = b.s * b.dy
        if i == 1:
            a = [F.one] * b.dm
        elif i == N:
            a = [eps] * b.dm
        else:
            a = [eps + (F.one if t // per == i - 2 else F.zero) for t in range(b.dm)]
        r = sp.sympify(self.x.r)
        if i > 1 and r != 0:
            inv = F.from_sympy(r ** (-i))
            a = [v * inv for v in a]
        return _obj(a)

    def B_target(self, ctx, i: int):
        """B_i = [[I, 0], [G_i^T, I]], G_i = c_{i-2} from the spec's code table as exact rationals
        (reference/codes.column_exact); B_1 = B_N = I."""
        from ..reference.codes import column_exact

        b, F = self.x.blocks, self.F
        out = self.diag([F.one] * b.dt)
        if 2 <= i <= self.x.N - 1:
            for j in range(b.cells_x):
                for l in range(b.cells_star):
                    c = column_exact(self.x.con.design.layout, j, l, b.cells_x, b.cells_star, b.m)[i - 2]
                    if c:
                        out[b.top_star.start + l, b.top_x.start + j] = F.const(c)
        return out

    def tol(self, ctx, mag) -> float:
        return 0.0  # exact: no rounding to allow for

    def label(self, ctx, y):
        """The label as the exact claims combine it: its symbols where the loss's gradient is polynomial
        in it (MSE), else its exact rational value at the run's point (the decimal's rational)."""
        ys = [self._ring(v) for v in y]
        if self.x.con.design.loss == "mse":
            return _obj(ys)
        return _obj([self.F.const(self._value(v)) for v in ys])

    def asarray(self, values):
        return _obj([self.F.const(float(v)) for v in np.asarray(values, dtype=float).reshape(-1)])

    def scalar(self, c):
        return self.F.const(float(c))

    def executed_error(self, ctx, z, y):
        """dl/dz executed through the exact head W_g and the engine's exact loss gradient."""
        Wg = self.x.ec.Wg
        yhat = Wg @ z
        key = ("executed loss grad", tuple(str(self._ring(v).p) for v in y), tuple(str(self._ring(v).p) for v in yhat))
        return Wg.T @ self.x.cached(key, lambda: self.x.ec.loss.grad(y, yhat))

    def min_singular(self, ctx, M) -> float:
        """0 when the exact rank of M is below its column count, else the smallest singular value of M
        evaluated at the run's point (a size, the decision is the exact rank)."""
        M = np.asarray(M, dtype=object)

        def make():
            S = self.F.to_sympy_matrix(M)
            if S.rank() < S.cols:
                return 0.0
            vals = np.array([[self._value(v) for v in row] for row in M], dtype=float)
            sv = float(np.linalg.svd(vals, compute_uv=False).min()) if np.all(np.isfinite(vals)) else math.nan
            return sv if sv > 0 else 1e-300

        key = ("min singular", M.shape, tuple(str(self._ring(v).p) for v in M.reshape(-1)), tuple(self._point().items()))
        return self.x.cached(key, make)

    def kshot_formula(self, ctx, xs, ys, x_star, theta_b_post, alpha):
        """(-(alpha/K) sum_k eq. (3) at (x_k, y_k), None): :meth:`eq3` per example (A_i, B_i telescoped
        from the exact weights, e_bar(y_k) = the middle of W_g^T grad l(y_k, 0) from the SymPy derivative
        of the loss's value)."""
        F, b = self.F, self.x.blocks
        total = F.zeros(b.dm)
        z0 = F.zeros(b.D)
        for x, y in zip(xs, ys):
            e_mid = self.error(ctx, z0, y)[b.mid]
            total = total + self.eq3(ctx, x, x_star, theta_b_post, e_mid, alpha, self.x.r)[0]
        return total * F.const(Fraction(1, len(xs))), None

    def steps_equal(self, ctx, a, b, tol, *, what: str = "") -> Check:
        """Every entry of every updated layer (from the K-shot factors), theta_b', W_g' and zbar* of the two
        steps: the differences by the canonical zero test."""
        ents = []
        for k in range(self.x.N):
            ga, gb = _grad_entries(a, k), _grad_entries(b, k)
            for ij in set(ga) | set(gb):
                ents.append((f"[W_{k + 1}{list(ij)}]", self._ring(ga.get(ij, 0)) - self._ring(gb.get(ij, 0))))
        ents.append(("[theta_b']", self._ring(a.theta_b_post) - self._ring(b.theta_b_post)))
        ents += [(f"[W_g' {i}]", self._ring(v)) for i, v in enumerate((a.Wg_post - b.Wg_post).reshape(-1))]
        ents += [(f"[z* {i}]", self._ring(v)) for i, v in enumerate(a.z_star - b.z_star)]
        chk = compare_exact(ents, "0", what, point=self._point())
        chk.computed = chk.verdict == Verdict.PASS
        return chk

    def second_order_sides(self, ctx, st):
        """(what was covered, prod W' - prod W, the first-order sum, None, None) on the identity basis: the
        N-fold D x D products of the exact layers and of the updated ones (the engine's real step, its
        gradient from the factors) in Q(sqrt p)[alpha, y] (DomainMatrix over the ring's polynomials,
        reduced modulo s_p^2 = p: canonical), the first-order sum by Horner; cached per (phi(x), e, alpha)."""
        from sympy.polys.matrices import DomainMatrix

        from ..engine.exact import Ex

        F, L, N = self.F, self.x.ec.W, self.x.N
        D = L.D
        Wp = st.W_post
        key = ("second-order", tuple(str(v.p) for v in st.phi_x), tuple(str(self._ring(v).p) for v in st.e),
               str(self._ring(st.alpha).p))

        def dm(rows: dict):
            return DomainMatrix({i: r for i, r in rows.items() if r}, (D, D), F.R.to_domain())

        def make():
            coef, K = Wp.coef.p, Wp.Dfac.shape[2]
            red = F.reduce

            def mul(A, B):
                return (A * B).applyfunc(red)

            Wd = self.x.cached("W in domain", lambda: [dm({i: dict(r) for i, r in L.rows[k]}) for k in range(N)])
            Gd, Wpd = [], []
            for k in range(N):
                G: dict = {}
                for c in range(K):
                    d, h = Wp.Dfac[k, :, c], Wp.Hfac[k, :, c]
                    hn = [(j, h[j].p) for j in range(len(h)) if _nz(h[j])]
                    for i in range(len(d)):
                        if _nz(d[i]):
                            row = G.setdefault(i, {})
                            for j, hj in hn:
                                row[j] = red(row.get(j, F.R.zero) + d[i].p * hj)
                Gd.append(dm(G))
                upd = {i: dict(r) for i, r in L.rows[k]}
                for i, row in G.items():
                    tgt = upd.setdefault(i, {})
                    for j, v in row.items():
                        tgt[j] = red(tgt.get(j, F.R.zero) + red(coef * v))
                Wpd.append(dm({i: {j: v for j, v in r.items() if v} for i, r in upd.items()}))
            lhs = Wpd[N - 1]
            for k in range(N - 2, -1, -1):
                lhs = mul(Wpd[k], lhs)
            # first order: sum_k W_1..W_{k} G_{k+1} W_{k+2}..W_N, by acc_k = G_k R_k + W_k acc_{k+1}
            R, acc = Wd[N - 1], Gd[N - 1]
            for k in range(N - 2, -1, -1):
                acc = mul(Gd[k], R) + mul(Wd[k], acc)
                R = mul(Wd[k], R)
            note = "identity basis, exact"
            if "alpha" in F.gens and F.orthant.get("alpha") is not None:
                ai = F.k + F.gens.index("alpha")
                deg = max((m[ai] for row in lhs.to_sdm().values() for v in row.values() for m in v.itermonoms()),
                          default=0)
                note = f"prod W' has degree {deg} in alpha (identity basis, exact)"
            diff = (lhs - R).to_sdm()
            out_l, out_f = F.zeros((D, D)), F.zeros((D, D))
            for i, row in diff.items():
                for j, v in row.items():
                    if v:
                        out_l[i, j] = Ex(F, red(v))
            for i, row in acc.to_sdm().items():
                for j, v in row.items():
                    if v:
                        out_f[i, j] = Ex(F, red(v)) * F.const(Fraction(1, K))  # the averaged gradient's term
            return note, out_l, out_f

        note, lhs, fo = self.x.cached(key, make)
        return note, lhs, fo, None, None

    def update_outside(self, ctx, st):
        """(the entries of W' - W = coef d_i h_j^T outside the (mid, top) and (bottom, top) blocks that are
        not the zero polynomial, the first 64 of them; the number of entries that move inside; their labels)
        from the exact step's factors (every entry of every full matrix, on the factors' supports)."""
        b, N = self.x.blocks, self.x.N
        Wp = st.W_post
        coef = Wp.coef
        out, labels, moved = [], [], 0
        for k in range(N):
            for c in range(Wp.Dfac.shape[2]):
                d, h = Wp.Dfac[k, :, c], Wp.Hfac[k, :, c]
                dn = [i for i in range(len(d)) if _nz(d[i])]
                hn = [j for j in range(len(h)) if _nz(h[j])]
                for i in dn:  # outside: top rows (any column); lower rows, middle and bottom columns
                    for j in hn:
                        if i < b.dt or j >= b.dt:
                            if len(out) < 64:
                                out.append(coef * d[i] * h[j])
                                labels.append(f"[layer {k + 1}, {i}, {j}]")
                        else:
                            moved += 1
        return _obj(out), moved, labels

    def every_cell_skip(self, ctx) -> str:
        b = self.x.blocks
        n = b.cells_x * b.cells_star
        if n > EXACT_EVERY_CELL_MAX:
            return (f"{n} cell pairs: one exact step each is above the exact run's budget of "
                    f"{EXACT_EVERY_CELL_MAX} (the exact run proves the sampled instances; the float every-cell "
                    f"runs every pair)")
        return ""

    def one_step(self, ctx, x, y, x_star):
        """The engine's exact step with alpha and the label as exact rationals (the run's decimals)."""
        from ..engine.step import single_step

        return single_step(self.x.ec, x, list(y), x_star)

    def sum_zero_basis(self, dy: int):
        """The sum-zero directions e_c - e_{c+1} (dy x (dy - 1)): a basis with no square roots."""
        F = self.F
        V = F.zeros((dy, dy - 1))
        for c in range(dy - 1):
            V[c, c], V[c + 1, c] = F.one, -F.one
        return V

    def codes_injective_skip(self, ctx):
        return None  # the exact run's sizes are small (its budget refuses larger ones up front)

    def cell_separation(self, ctx, y):
        """v(a, b, y) = sum_i r^i k_i(a, b) A_i e(y) for every cell pair in the exact ring (k_i, A_i from
        :class:`ExactTel`, e from the SymPy derivative of the loss's value at z = 0, y the float label's
        exact rational); two cells collide when every 2 x 2 minor of [v, v'] is the zero polynomial (a zero
        v collides with itself). Returns the float sine of the closest pair (the size), or 0 with the
        colliding pair; a minor whose sign is undecided raises UndecidedSign (UNDECIDED)."""
        from ..claims.coverage import separation

        F, b, N = self.F, self.x.blocks, self.x.N
        t = self.tel(ctx)
        y = self.asarray(y)
        e_mid = self.error(ctx, F.zeros(b.D), y)[b.mid]
        r = self._ring(self.x.r)
        reff = F.one if r.is_zero_poly() else r
        terms, f = [], F.one  # r^i A_i e for the layers
        for i in range(1, N + 1):
            f = f * reff
            terms.append(_obj([f * v for v in t.A_apply(i, e_mid)]))
        cols = [[Bi[:, j] for j in range(b.dt)] for Bi in t.B]
        V = []
        for a in range(b.cells_x):
            for c in range(b.cells_star):
                v = F.zeros(b.dm)
                for i in range(N):
                    p, q = cols[i][b.top_x.start + a], cols[i][b.top_star.start + c]
                    k = sum((u * w for u, w in zip(p, q) if not u.is_zero_poly() and not w.is_zero_poly()), F.zero)
                    if not k.is_zero_poly():
                        v = v + k * terms[i]
                V.append(v)
        n = len(V)
        nz = [[d for d in range(b.dm) if not V[p][d].is_zero_poly()] for p in range(n)]
        for p in range(n):
            if not nz[p]:
                return 0.0, (p, p), True, 0.0, "every pair, exact 2 x 2 minors"
        for p in range(n):
            for q in range(p + 1, n):
                if set(nz[p]) != set(nz[q]):
                    continue  # different supports: not parallel
                d0 = nz[p][0]
                parallel = True
                for d in nz[p][1:]:
                    m = V[p][d0] * V[q][d] - V[p][d] * V[q][d0]
                    if not m.is_zero_poly():
                        F.decide(m, f"a 2 x 2 minor of cells {p} and {q}")  # nonzero on the whole orthant
                        parallel = False
                        break
                if parallel:
                    return 0.0, (p, q), True, 0.0, "every pair, exact 2 x 2 minors"
        vals = np.array([[self._value(x) for x in v] for v in V], dtype=float).reshape(b.cells_x, b.cells_star, b.dm)
        sep, pair, _, _ = separation(vals, with_distortion=True)
        return max(sep, 1e-300), pair, False, 0.0, "every pair, exact 2 x 2 minors (the sine at the run's values)"

    def vector(self, x):
        return _obj([self._ring(v) for v in np.asarray(x, dtype=object).reshape(-1)])

    def same(self, a, b) -> bool:
        """Equal entry for entry: every difference the zero polynomial."""
        return all((self._ring(u) - self._ring(v)).is_zero_poly() for u, v in zip(a, b))

    def label_values(self, y):
        """The label v-decodes must read back: y itself for a real-label loss; for a simplex loss (CE),
        whose symbolic label is not held to the simplex, the point of the simplex its label code
        u(y) = y - mean(y) determines (u(y) + 1/C: y itself on the simplex)."""
        ys = [self._ring(v) for v in y]
        if self.x.con.loss.domain != "simplex":
            return _obj(ys)
        F = self.F
        u = self.x.unit([F.to_sympy(v) for v in ys])
        return _obj([F.from_sympy(v) + F.const(Fraction(1, len(ys))) for v in u])

    def short(self, v) -> str:
        return "[" + ", ".join(self.show(t) for t in list(v)[:4]) + (", ..." if len(v) > 4 else "") + "]"

    def gains(self, ctx):
        """w(j, l) for every cell (row j * cells_star + l): sum_c c_c(j, l) diag(A_{c+2}) on each channel's
        first coordinate, from the spec's code table and A_i as exact rationals (reference/codes.py,
        reference/design.py's choice), never the builder's tables."""
        from ..reference.codes import column_exact

        def make():
            b, d, F = self.x.blocks, self.x.con.design, self.F
            eps = F.const(float(d.eps))
            rows = []
            for j in range(b.cells_x):
                for l in range(b.cells_star):
                    code = [F.const(q) for q in column_exact(d.layout, j, l, b.cells_x, b.cells_star, b.m)]
                    total = sum(code, F.zero)
                    rows.append([eps * total + code[c] for c in range(b.m)])  # diag(A_{c'+2}) = eps + [c = c']
            return rows

        return self.x.cached("exact spec gains", make)

    def decode(self, ctx, st, y, truth: int):
        """Exact decoding of zbar*: U = z+ - z- (signed) or z (paper) per channel; a cell explains U when
        U - w (w.U)/(w.w) is identically 0 (the decoded label code is then (w.U)/(w.w) / (-alpha), an exact
        division); every other cell with a nonzero code must leave a residual entry whose sign is decided
        nonzero on the orthant (separated), else the two cells collide (FAIL) or it is UNDECIDED."""
        from ..decode import separation_margin

        F, b = self.F, self.x.blocks
        gains = self.gains(ctx)
        z = np.asarray(st.z_star[b.mid], dtype=object).reshape(b.m, b.s, b.dy)
        U = z[:, 0, :] - z[:, 1, :] if b.s == 2 else z[:, 0, :]
        alpha = self._ring(st.alpha)

        wws = self.x.cached("exact spec gains, squared norms", lambda: [sum((v * v for v in w), F.zero) for w in gains])

        def residuals(n):
            """(the fitted label code p, the residual entries U - w p one at a time) of cell n; None: w = 0."""
            w, ww = gains[n], wws[n]
            if ww.is_zero_poly():
                return None, iter(())
            inv = F.one / ww
            p = [sum((w[c] * U[c, d] for c in range(b.m) if not w[c].is_zero_poly()), F.zero) * inv
                 for d in range(b.dy)]
            return p, (U[c, d] - w[c] * p[d] for c in range(b.m) for d in range(b.dy))

        def explains(n) -> bool:
            p, R = residuals(n)
            return p is not None and all(v.is_zero_poly() for v in R)

        cell = truth if explains(truth) else next((n for n in range(len(gains)) if n != truth and explains(n)), None)
        wf = self.x.cached("exact spec gains, values",
                           lambda: np.array([[self._value(v) for v in w] for w in gains], dtype=float))
        margin = self.x.cached(("exact margin", truth), lambda: separation_margin(wf, truth)
                               if np.all(np.isfinite(wf)) else math.nan)
        if cell is None:
            return Decoded(-1, -1, self.F.zeros(b.dy), margin, Verdict.FAIL,
                           "no cell's gains explain zbar* identically", math.inf, 0.0, 0.0)
        p = residuals(cell)[0]
        code = _obj([_exact_div(v, -alpha) for v in p])
        dec_y = code + F.const(Fraction(1, b.dy)) if self.x.con.loss.domain == "simplex" else code
        collide, undecided = [], []
        for n in range(len(gains)):
            q, R = residuals(n)
            if n == cell or q is None:
                continue  # the zero code never explains a nonzero U
            seen = False
            for v in R:  # separated at the first entry whose sign is decided nonzero on the orthant
                if v.is_zero_poly():
                    continue
                seen = True
                if F.sign(v)[0] in "+-":
                    break
            else:
                (undecided if seen else collide).append(n)
        cx, cs = divmod(cell, b.cells_star)
        cells = [divmod(n, b.cells_star) for n in (collide or undecided)][:3]
        if collide:
            sep, why = Verdict.FAIL, f"cells {cells} explain zbar* as well as ({cx}, {cs})"
        elif undecided:
            sep, why = Verdict.UNDECIDED, f"separation from cells {cells} undecided on the orthant"
        else:
            sep, why = Verdict.PASS, ""
        return Decoded(cx, cs, dec_y, margin, sep, why, 0.0, 0.0, 0.0)

    def unit_extremes(self, pre):
        """Per unit over the layers: (the largest positive value or 0, minus the largest negative one or
        0), each sign decided on the orthant first, so a value is > 0 (< 0) exactly when its sign is;
        the sizes are the values at the run's point. An undecided sign raises UndecidedSign."""
        F = self.F
        pre = np.asarray(pre, dtype=object)
        top, bottom = np.zeros(pre.shape[1]), np.zeros(pre.shape[1])

        def size(v) -> float:
            val = abs(self._value(v))
            return val if math.isfinite(val) and val > 0 else (math.inf if not math.isfinite(val) else 1e-300)

        for t in range(pre.shape[1]):
            col = [self._ring(v) for v in pre[:, t]]
            signs = [F.decide(v, "a pre-activation") for v in col]
            neg = [v for v, sg in zip(col, signs) if sg == "-"]
            pos = "+" in signs
            # sizes (mpmath evaluations) only where a violation is reported: a unit with both signs, or a
            # negative one in the paper variant; elsewhere 1.0 stands for "> 0" (the verdict reads signs only)
            sized = bool(neg) and (pos or self.x.con.design.variant == "paper")
            if neg:
                bottom[t] = -max(size(v) for v in neg) if sized else -1.0
            if pos:
                top[t] = max(size(v) for v, sg in zip(col, signs) if sg == "+") if sized else 1.0
        return top, bottom

    def top_product(self, ctx, t, j: int):
        """(Wtilde_j ... Wtilde_N in the exact ring, None): B_{j-1}, or Wtilde_1 B_1."""
        return (t.B[j - 2] if j >= 2 else t.Wt[0] @ t.B[0]), None

    def min_entry(self, ctx, M) -> float:
        """The smallest entry of M at the run's point, its sign decided exactly first (a negative entry
        is < 0 here whatever its size; an undecided sign raises UndecidedSign: UNDECIDED)."""
        out = math.inf
        for v in np.asarray(M, dtype=object).reshape(-1):
            s = self.F.decide(self._ring(v), "an entry of a top product")
            val = 0.0 if s == "0" else self._value(v)
            if s == "-":
                val = -max(abs(val), 1e-300) if math.isfinite(val) else -math.inf
            elif s == "+":
                val = max(abs(val), 0.0) if math.isfinite(val) else math.inf
            out = min(out, val)
        return out if out != math.inf else 0.0

    def psd(self, ctx, P, tol: float):
        """(nan, how, PSD) with SymPy's tri-state is_positive_semidefinite of the exact symmetric part."""
        M = self.F.to_sympy_matrix(P)
        S = np.array([[self._value(v) for v in row] for row in np.asarray(P, dtype=object)], dtype=float)
        lam = float(np.linalg.eigvalsh((S + S.T) / 2).min()) if S.size and np.all(np.isfinite(S)) else math.nan
        return lam, "SymPy is_positive_semidefinite (exact)", ((M + M.T) / 2).is_positive_semidefinite

    def diag(self, v):
        M = self.F.zeros((len(v), len(v)))
        for t, e in enumerate(v):
            M[t, t] = self._ring(e)
        return M

    def _value(self, v) -> float:
        try:
            return float(self.F.evaluate(self._ring(v), self._point()))
        except Exception:  # noqa: BLE001 - a symbol without a value
            return math.nan

    def definite(self, ctx, A):
        """(verdict, smallest / largest diagonal entry at the run's point, how): a diagonal A_i (the
        weights' middle products M M^T with M diagonal) is SPD iff every diagonal entry is > 0, each sign
        decided on the orthant; a non-diagonal one has no exact certificate here (UNDECIDED)."""
        from ..engine.exact import UndecidedSign

        F = self.F
        if A.ndim == 2:
            n = A.shape[0]
            if any(not A[s, t].is_zero_poly() for s in range(n) for t in range(n) if s != t):
                return Verdict.UNDECIDED, math.nan, "not diagonal: no exact certificate"
            A = _obj([A[t, t] for t in range(n)])
        try:
            signs = [F.decide(v, "a diagonal entry of A_i") for v in A]
        except UndecidedSign:
            return Verdict.UNDECIDED, math.nan, "a diagonal sign undecided"
        vals = [abs(self._value(v)) if s == "+" else -abs(self._value(v)) for v, s in zip(A, signs)]
        rel = min(vals) / max(max(abs(v) for v in vals), 1e-300) if vals else math.inf
        ok = all(s == "+" for s in signs)
        return (Verdict.PASS if ok else Verdict.FAIL), rel, "diagonal, exact signs"

    def invertible(self, ctx, B, tol: float):
        """(verdict, smallest |diagonal entry| (or |det|) at the run's point, how): lower triangular
        (every entry above the diagonal the zero polynomial) with a diagonal of decided nonzero sign, or
        else the exact determinant (SymPy, brought into the ring, canonical zero test)."""
        from ..engine.exact import NotInField, UndecidedSign

        F, n = self.F, B.shape[0]
        try:
            if all(B[s, t].is_zero_poly() for s in range(n) for t in range(s + 1, n)):
                signs = [F.decide(B[t, t], "a diagonal entry of B_i") for t in range(n)]
                sv = min((abs(self._value(B[t, t])) for t in range(n)), default=math.inf)
                return (Verdict.FAIL if "0" in signs else Verdict.PASS), sv, "lower triangular (exact)"
            det = F.from_sympy(F.to_sympy_matrix(B).det(method="berkowitz"))
            if det.is_zero_poly():
                return Verdict.FAIL, 0.0, "exact determinant"
            F.decide(det, "det B_i")
            return Verdict.PASS, abs(self._value(det)), "exact determinant"
        except (UndecidedSign, NotInField):
            return Verdict.UNDECIDED, math.nan, "exact determinant undecided"

    def phi_top(self, ctx, u, theta_b):
        """phi~(u; theta_b): the one-hot top slot of reference/design.py (exact rational bins) with the
        switch theta_b == 0 decided on the orthant (UndecidedSign if it cannot be)."""
        from ..reference.design import phi_tilde_slot

        b, d, F = self.x.blocks, self.x.con.design, self.F
        off = F.decide(self._ring(theta_b), "the feature switch theta_b == 0") == "0"
        out = F.zeros(b.dt)
        out[phi_tilde_slot(u, 0.0 if off else 1.0, d.J, d.L, b) - b.top.start] = F.one
        return out

    def eq3(self, ctx, x, x_star, theta_b_post, e_mid, alpha, r):
        """(eq. (3), None): -alpha sum_i r^i k_i A_i e_bar with A_i, B_i telescoped from the exact weights
        (:class:`ExactTel`), k_i = (B_i phi~(x)) . (B_i phi~(x*; theta_b')) (r = 0: factor 1, as the float
        side's ``effective_r``)."""
        F, b = self.F, self.x.blocks
        t = self.tel(ctx)
        k = t.kernels(self.phi_top(ctx, x, ctx.con.theta_b), self.phi_top(ctx, x_star, theta_b_post))
        r = self._ring(r)
        reff = F.one if r.is_zero_poly() else r
        total = F.zeros(b.dm)
        f = F.one
        for i in range(1, t.N + 1):
            f = f * reff
            if not k[i - 1].is_zero_poly():
                total = total + (f * k[i - 1]) * t.A_apply(i, e_mid)
        return -self._ring(alpha) * total, None


def _same_vector(u, v) -> bool:
    """Entry for entry the same ring element (canonical forms compared; numbers as constants)."""
    for a, b in zip(u, v):
        pa = a.p if hasattr(a, "p") else None
        pb = b.p if hasattr(b, "p") else None
        if pa is None or pb is None:
            if not (a - b).is_zero_poly():
                return False
        elif pa != pb:
            return False
    return True


def _exact_div(v, d):
    """v / d exactly in the ring: by a constant, or by a polynomial that divides v (alpha divides every
    entry of zbar*); NotInField when it does not (the claim is then UNDECIDED with the reason)."""
    from ..engine.exact import Ex, NotInField

    if d.p.is_ground:
        return v / d
    q, r = v.p.div(d.p)
    if r:
        raise NotInField(f"{v} is not divisible by {d}")
    return Ex(v.F, v.F.reduce(q))


def _obj(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


class ExactTel:
    """A_i = (Wbar_1 ... Wbar_{i-1}) (Wbar_1 ... Wbar_{i-1})^T, B_i = Wtilde_{i+1} ... Wtilde_N and the
    bottom entries wcheck_i of the exact weights (App. A.3), in the engine's exact ring: the exact
    counterpart of reference/telescoping.py (the weights' own products, never the builder's A or G).
    The middle products stay diagonal vectors while every Wbar_i is diagonal and become matrices at
    the first off-diagonal entry (a corrupted weight is still multiplied in)."""

    def __init__(self, layers, b):
        F = layers.F
        self.F, self.N, self.blocks = F, layers.N, b

        def blk(k, rows, cols):
            out = F.zeros((rows.stop - rows.start, cols.stop - cols.start))
            for i, row in layers.rows[k]:
                if rows.start <= i < rows.stop:
                    for j, w in row:
                        if cols.start <= j < cols.stop:
                            out[i - rows.start, j - cols.start] = type(F.one)(F, w)
            return out

        def diag_matrix(v):
            M = F.zeros((len(v), len(v)))
            for t, e in enumerate(v):
                M[t, t] = e
            return M

        self.A, M = [], _obj([F.one] * b.dm)
        for i in range(1, self.N + 1):
            self.A.append(M * M if M.ndim == 1 else M @ M.T)
            if i == self.N:
                break
            Wb = blk(i - 1, b.mid, b.mid)
            off = any(not Wb[s, t].is_zero_poly() for s in range(b.dm) for t in range(b.dm) if s != t)
            if M.ndim == 1 and not off:
                M = M * _obj([Wb[t, t] for t in range(b.dm)])
            else:
                M = (diag_matrix(M) if M.ndim == 1 else M) @ Wb
        self.B = [None] * self.N
        self.Wt = [blk(k, b.top, b.top) for k in range(self.N)]  # the top blocks Wtilde_k
        P = diag_matrix([F.one] * b.dt)
        for i in range(self.N, 0, -1):
            self.B[i - 1] = P
            P = self.Wt[i - 1] @ P
        bot = slice(b.bottom, b.bottom + 1)
        self.wcheck = [blk(k, bot, bot)[0, 0] for k in range(self.N)]

    def A_apply(self, i: int, v):
        a = self.A[i - 1]
        return a * v if a.ndim == 1 else a @ v

    def kernels(self, p, q):
        """k_i = (B_i p) . (B_i q), i = 1..N."""
        F = self.F
        out = []
        for Bi in self.B:
            u, w = Bi @ p, Bi @ q
            acc = F.zero
            for a, c in zip(u, w):
                if not a.is_zero_poly() and not c.is_zero_poly():
                    acc = acc + a * c
            out.append(acc)
        return out


class ExactClaimContext:
    """The exact run as a claim of the one catalogue reads it (the float :class:`Context`'s names):
    the construction as the engine executes it, its exact layers, the ring, the backend."""

    external = False
    step = None

    def __init__(self, xctx: ExactContext):
        self.x = xctx
        self.con = xctx.ec
        self.F = xctx.F
        self.backend = ExactBackend(xctx)

    @property
    def layers(self):
        return self.x.ec.W

    @property
    def blocks(self):
        return self.x.con.blocks

    @property
    def design(self):
        return self.x.con.design

    @property
    def N(self) -> int:
        return self.x.con.N

    @property
    def D(self) -> int:
        return self.x.con.blocks.D

    def cached(self, key, make):
        return self.x.cached(("unified", key), make)


class ExactSample:
    """A sample of the exact run: x, x* (rationals) and y as elements of the exact ring."""

    def __init__(self, sv, F):
        self.x, self.x_star = sv.x, sv.x_star
        self.y = [F.from_sympy(v) for v in sv.y]


class ExactTask:
    """A K-shot task of the exact run: the x_k, x* (rationals), the labels y_k as ring elements."""

    def __init__(self, tv, F):
        self.xs, self.x_star = list(tv.xs), tv.x_star
        self.ys = [[F.from_sympy(v) for v in y] for y in tv.ys]
        self.K = len(self.xs)


UNIFIED: dict[str, Callable] = {}  # claim id -> the one function both backends run


def unified_claim(id: str, func: Callable, *, method: str) -> None:
    """Register the catalogue's own function ``func`` (the one the float run calls) as claim ``id`` of
    the exact run: it runs on :class:`ExactClaimContext`, :class:`ExactSample` and the exact engine
    step, with :class:`ExactBackend` as the comparator. A claimed side outside the exact ring
    (NotInField) or a sign it cannot decide is UNDECIDED, with the reason."""
    from ..engine.exact import NotInField, UndecidedSign

    base = CLAIMS[id]

    def run(xctx, sv=None, _func=func):
        ctx = ExactClaimContext(xctx)
        try:
            if base.scope == "construction":
                return _func(ctx)
            if base.scope == "task":
                return _func(ctx, ExactTask(sv, ctx.F), sv.st)
            return _func(ctx, ExactSample(sv, ctx.F), sv.st)
        except (NotInField, UndecidedSign) as exc:
            return Check("-", "-", math.nan, 0.0, Verdict.UNDECIDED,
                         f"the claimed side is outside the exact ring or has an undecided sign: {exc}")

    SYMBOLIC_CLAIMS[id] = ClaimSpec(id, base.title, base.paper_ref, base.statement, method, base.scope, run)
    UNIFIED[id] = func


# ---- helpers ---------------------------------------------------------------------------------
def _nonzero_entries(M) -> list:
    M = sp.Matrix(M) if not isinstance(M, sp.MatrixBase) else M
    out = []
    for i in range(M.rows):
        for j in range(M.cols):
            e = sp.expand(M[i, j])
            if e != 0:
                out.append(((i, j), e))
    return out


def _size(ctx, exprs) -> float:
    """max |residual| at the run's alpha and the sample's y (inf if that point happens to be a root)."""
    best = 0.0
    for e in exprs:
        try:
            val = abs(complex(sp.N(e.subs(ctx.point))))
        except (TypeError, ValueError):
            return math.inf
        best = max(best, val)
    return best if best > 0 else math.inf


def _confirm_nonzero(bad):
    """Entries that ``expand`` left nonzero, re-tested in the canonical form of the engine's exact
    ring (Q(sqrt p)[symbols] reduced modulo s_p^2 = p, :class:`~universality.engine.exact.ExactRing`).

    Returns (truly nonzero entries, entries that could not be put in canonical form)."""
    from ..engine.exact import ExactRing, NotInField, primes_of

    syms = sorted({s for _, e in bad for s in e.free_symbols}, key=sp.default_sort_key)
    try:
        neg = {p.base.name for _, e in bad for p in e.atoms(sp.Pow) if p.base.is_Symbol and p.exp.is_negative}
        F = ExactRing(primes_of([sp.Matrix([e for _, e in bad])]), tuple(s.name for s in syms), tuple(neg))
    except NotInField:
        return [], bad
    nonzero, unsure = [], []
    for where, e in bad:
        try:
            if not F.from_sympy(e).is_zero_poly():
                nonzero.append((where, e))
        except NotInField:
            unsure.append((where, e))
    return nonzero, unsure


def identity(ctx, residual, claimed: str, what: str, note: str = "") -> Check:
    """PASS iff every entry of ``residual`` is identically 0; else FAIL with the first entries shown.

    Zero test: ``expand`` (canonical for these sums of monomials times square roots), then every
    entry it leaves is re-tested in the canonical form of the engine's exact ring; an entry that cannot
    be put there makes the check UNDECIDED rather than FAIL."""
    bad = _nonzero_entries(residual)
    if bad:
        bad, unsure = _confirm_nonzero(bad)
        if not bad and unsure:
            shown = "; ".join(f"[{i},{j}]: {sp.sstr(e)}" for (i, j), e in unsure[:3])
            return Check(f"{what}: zero test undecided for {shown}", claimed, math.nan, 0.0, Verdict.UNDECIDED,
                         "residual outside Q(sqrt p)[alpha, y]: cannot decide it is 0")
    if not bad:
        return Check(f"{what} = 0 (identically)", claimed, 0.0, 0.0, Verdict.PASS, note)
    shown = "; ".join(f"[{i},{j}]: {sp.sstr(e)}" for (i, j), e in bad[:3])
    more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
    return Check(f"{what} != 0: {shown}{more}", claimed, _size(ctx, [e for _, e in bad]), 0.0,
                 Verdict.FAIL, note or f"residual expression {shown}{more}")


def _nz(v) -> bool:
    """Is a ring element nonzero as a polynomial (the canonical test, no orthant involved)?"""
    return bool(v.p)


def _outer_diff(p, q, a, b, label: str, limit: int = 64) -> list:
    """Entries p_i q_j - a_i b_j that are nonzero, on the supports (at most ``limit``)."""
    rows = [i for i in range(len(p)) if _nz(p[i]) or _nz(a[i])]
    cols = [j for j in range(len(q)) if _nz(q[j]) or _nz(b[j])]
    out = []
    for i in rows:
        for j in cols:
            v = p[i] * q[j] - a[i] * b[j]
            if _nz(v):
                out.append((f"[{label}, {i}, {j}]", v))
                if len(out) >= limit:
                    return out
    return out


# ---- the claims -----------------------------------------------------------------------------
_NONPOLY = (sp.Piecewise, sp.sign, sp.Heaviside, sp.Abs, sp.exp, sp.log, sp.Max, sp.Min)


def _tidy(t):
    """expand, and simplify only what expand leaves outside polynomials (branches, signs, exp)."""
    t = sp.expand(t)
    return sp.expand(sp.simplify(t)) if t.has(*_NONPOLY) else t


def _loss_grad_at(ctx, y, yhat):
    """grad_yhat l(y, yhat) from the SymPy derivative of the loss's value (not its ``grad``)."""
    key = ("loss grad", tuple(y), tuple(yhat))

    def make():
        dy = len(list(y))
        q = sp.symbols(f"q0:{dy}", real=True)
        val = ctx.con.loss.sympy_value(list(y), list(q))
        sub = {v: w for v, w in zip(q, list(yhat))}
        return sp.Matrix([_tidy(sp.diff(val, v).subs(sub)) for v in q])

    return ctx.cached(key, make)


# theta-b-value and update-values: one function on both backends (claims/coverage.py), registered
# below with :func:`unified_claim`.


# Claims of the numeric catalogue the exact run does not prove, each with the reason (SKIPPED in the
# exact outcome). Empty since issue 10: every claim is one function that the exact run calls, and a claim
# with no exact form (kshot-decodes) or above the exact budget (every-cell) says SKIPPED itself.
EXACT_SKIP_REASONS: dict[str, str] = {}


# ---- K-shot (scope "task": one exact K-shot step per task, labels as exact rationals) ---------------
class TaskView:
    """One exact K-shot engine step as the K-shot claims read it."""

    def __init__(self, ctx, st, task, ys, orthant):
        self.ctx, self.st, self.task, self.orthant = ctx, st, task, orthant
        self.xs, self.x_star = list(task.xs), task.x_star
        self.ys = [sp.Matrix(list(y)) for y in ys]
        self.alpha = ctx.F.to_sympy(st.alpha)
        self.r = ctx.F.to_sympy(st.r)


def _grad_entries(st, k):
    """{(i, j): sum_c D[i, c] H[j, c]} of layer k's K-shot step (the factors' supports only)."""
    D, H = st.W_post.Dfac[k], st.W_post.Hfac[k]
    out = {}
    for c in range(D.shape[1]):
        di = [(i, D[i, c]) for i in range(D.shape[0]) if _nz(D[i, c])]
        hj = [(j, H[j, c]) for j in range(H.shape[0]) if _nz(H[j, c])]
        for i, dv in di:
            for j, hv in hj:
                out[(i, j)] = out.get((i, j), 0) + dv * hv
    return out


# ---- the claims of the one catalogue: the float run's own functions, on the exact backend ----------
def _register_unified() -> None:
    from ..claims.coverage import theta_b_value, update_values
    from ..claims.one_step import (boundary, e_linear, grad_rank_one, kernel_code, multiplexer, nonneg_linear_regime,
                                   post_update_eq3, psd_argument, second_order_zero, update_blocks, v_decodes,
                                   z_star_is_minus_alpha_v)

    unified_claim("nonneg-linear-regime", nonneg_linear_regime,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: the exact sign "
                         "of every pre-activation in the engine's four exact passes (x, x*; before, after), decided "
                         "on the instance's orthant; per unit the largest positive and negative one")
    from ..claims.kshot import kshot_decodes, kshot_eq, permutation_invariant

    unified_claim("kshot-decodes", kshot_decodes,
                  method="the catalogue's one function (claims/kshot.py): on the exact backend SKIPPED with the "
                         "reason (its decoder is a least-squares search with no exact form)")

    unified_claim("kshot-eq", kshot_eq,
                  method="the catalogue's one function (claims/kshot.py) on the exact backend: the engine's exact "
                         "K-shot step (K exact passes, the loss's exact gradients, backprop, the average); (1) the "
                         "updated weights' product at phi(x*) with no ReLU and (2) the exact ReLU pass at x* "
                         "(signed: vs max(formula, 0), signs decided) against -(1/K) sum_k eq. (3) at (x_k, y_k) "
                         "with A_i, B_i telescoped from the exact weights; the canonical zero test")
    unified_claim("permutation-invariant", permutation_invariant,
                  method="the catalogue's one function (claims/kshot.py) on the exact backend: the engine's exact "
                         "K-shot step on the task reversed and on the float claim's seeded permutation; every "
                         "entry of every updated layer, theta_b', W_g' and zbar* minus the original order's, by the "
                         "canonical zero test")
    from ..claims.coverage import binning

    unified_claim("binning", binning,
                  method="the catalogue's one function (claims/coverage.py) on the exact backend: the slot the exact "
                         "construction's feature map sets (the switch theta_b == 0 decided exactly) at every cell "
                         "edge k/J, the floats just below and above it and the extremes, vs floor(u J) in exact "
                         "rational arithmetic (reference/bins.py); every entry by the canonical zero test")
    from ..claims.coverage import codes_injective, every_cell

    unified_claim("every-cell", every_cell,
                  method="the catalogue's one function (claims/coverage.py) on the exact backend: one exact step "
                         "(alpha and the label as exact rationals) in every (cell of x, cell of x*) pair up to "
                         f"{EXACT_EVERY_CELL_MAX} pairs (SKIPPED above, saying so): the exact kernel and zbar* vs "
                         "the spec's codes, A_i and e_bar as exact rationals, by the canonical zero test")
    from ..claims.loss_claims import loss_recovers_label

    unified_claim("loss-recovers-label", loss_recovers_label,
                  method="the catalogue's one function (claims/loss_claims.py) on the exact backend: the error at z "
                         "through the exact forward pass, W_g and the engine's exact loss gradient on the float run's "
                         "probe labels as exact rationals (linearity and collisions by the canonical zero test, "
                         "injectivity by the exact rank; a collision replayed as two exact steps), and the loss's "
                         "formula differentiated exactly at yhat = 0 (reference/lossdiff.py)")

    unified_claim("codes-injective", codes_injective,
                  method="the catalogue's one function (claims/coverage.py) on the exact backend: v(a, b, y) = sum_i "
                         "r^i k_i(a, b) A_i e(y) for every cell pair with k_i, A_i telescoped from the exact weights "
                         "and e from the SymPy derivative of the loss's value; two cells collide when every 2 x 2 "
                         "minor of [v, v'] is the zero polynomial (either label sign); the sine at the run's values "
                         "reported")
    unified_claim("v-decodes", v_decodes,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: U = z+ - z- "
                         "(signed) or z (paper) of the exact zbar*; the cell whose spec gains (codes and A_i as exact "
                         "rationals) explain U identically, its label code (w.U)/(w.w)/(-alpha) vs y by the canonical "
                         "zero test, and every other cell's residual decided nonzero on the orthant")
    unified_claim("e-linear", e_linear,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: the error at z "
                         "through the exact head and the engine's exact loss gradient for the sample's label (symbolic "
                         "for MSE, else its exact rational), a second label, their combination, 0 and the unit labels: "
                         "E(a y + b w) - a E(y) - b E(w) and E(0) identically 0, the exact rank of the unit labels' "
                         "images, theta_b' not the zero polynomial; CE (linear on the simplex only) SKIPPED")
    unified_claim("psd-argument", psd_argument,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: the products "
                         "Wtilde_j ... Wtilde_N of the exact weights' top blocks, every entry's sign decided (>= 0); "
                         "PSD of the symmetric part from SymPy's tri-state is_positive_semidefinite (reported, not "
                         "relied on)")
    unified_claim("boundary", boundary,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: A_i, B_i "
                         "telescoped from the exact weights (App. A.3, symbolic.claims.ExactTel) vs the spec's "
                         "A_i / r^i and B_i = [[I, 0], [G_i^T, I]] as exact rationals (reference/codes.py), every "
                         "entry by the canonical zero test; SPD: a diagonal A_i with every entry's sign decided > 0; "
                         "invertible: lower triangular with a nonzero diagonal, else the exact determinant")
    unified_claim("second-order-zero", second_order_zero,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: the exact product "
                         "of the N updated D x D weights (the engine's real step) minus the product of the originals, "
                         "against -alpha times the first-order expansion with the exact gradients, in Q(sqrt p_1, ..., "
                         "sqrt p_k)[alpha, y] (rational polynomials in s_p = sqrt p reduced modulo s_p^2 = p: a "
                         "canonical form) on the identity basis; the residual must be the zero polynomial in alpha "
                         "(every degree)")
    unified_claim("update-blocks", update_blocks,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: the engine's exact "
                         "update W' - W = -alpha d_i h_{i+1}^T block by block (every entry, from the factors), the "
                         "exact error reaching the feature map and theta_h's gradient, by the canonical zero test")
    unified_claim("post-update-eq3", post_update_eq3,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: zbar* of the "
                         "engine's exact step vs eq. (3) with A_i, B_i telescoped from the exact weights (App. A.3), "
                         "phi~ at the exact bins with the switch decided at the executed theta_b', e_bar from the "
                         "SymPy derivative of the loss's value through W_g; signed: vs max(eq. (3), 0) with each sign "
                         "decided on the orthant; the canonical zero test")

    unified_claim("grad-rank-one", grad_rank_one,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: the engine's "
                         "exact reverse-mode backprop (gradient factors d_i h_{i+1}^T) vs r^i (W_1...W_{i-1})^T e "
                         "phi^T (W_{i+1}...W_N)^T with e = W_g^T grad l(y, W_g z) from the SymPy derivative of the "
                         "loss's value (not the executed error), every entry of every layer by the canonical zero "
                         "test")

    unified_claim("z-star-is-minus-alpha-v", z_star_is_minus_alpha_v,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: zbar* of the "
                         "engine's exact step + alpha v, v from the spec's code (reference/codes.py as exact "
                         "rationals), diag(A_i) = eps + [channel] and the loss's label code (SymPy derivative of "
                         "its value), by the canonical zero test; signed: vs max(-alpha v, 0) with each sign "
                         "decided on the orthant, and z+ - z- + alpha v_+ = 0")

    unified_claim("kernel-code", kernel_code,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: exact inner "
                         "products of the top activations entering each layer (the engine's passes at x before "
                         "and at x* after the step) vs the spec's code table (reference/codes.py) at the cells of "
                         "reference/bins.py, by the canonical zero test")
    unified_claim("multiplexer", multiplexer,
                  method="the catalogue's one function (claims/one_step.py) on the exact backend: the "
                         "multiplexer's branch in the engine's exact passes, yhat and the top error identically 0 "
                         "before, zbar* not the zero polynomial after (so h_post is selected)")

    unified_claim("theta-b-value", theta_b_value,
                  method="the catalogue's one function (claims/coverage.py) on the exact backend: theta_b' of the "
                         "engine's exact step vs theta_b - alpha r^N (product of the exact weights' bottom entries) "
                         "e_check(y), e_check = u^T grad l(y, 0) from the loss's head and the SymPy derivative of "
                         "its value; residual must be the zero polynomial")
    unified_claim("update-values", update_values,
                  method="the catalogue's one function (claims/coverage.py) on the exact backend: W_g' of the "
                         "engine's exact step vs W_g - alpha grad l(y, W_g z) z^T with the SymPy derivative of the "
                         "loss's value (W_g' = W_g behind an open gate), every entry by the canonical zero test; "
                         "the exact error into the feature map's top block and theta_h's gradient identically 0")


_register_unified()
