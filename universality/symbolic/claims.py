"""The claim catalogue as exact identities, one function per claim (same ids as the numeric one).

Each function takes the exact context and one :class:`ExactStep` (or only the context, for the
construction-level claims) and returns a :class:`~universality.claims.base.Check` whose tolerance
is 0: the left side comes from the exact execution, the right side from the paper's formula in
exact arithmetic, and the verdict is PASS only when their difference expands to the zero
polynomial in alpha and y. Otherwise the residual expression is reported (``computed``) with its
value at the run's alpha and the sample's y (``residual``). Predicates SymPy answers with None are
UNDECIDED.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import sympy as sp

from ..claims.base import CLAIMS, Check, ClaimSpec, Verdict, worst
from .poly import NotPolynomial, PolyDomain
from .signs import Sign, decide

SYMBOLIC_CLAIMS: dict[str, ClaimSpec] = {}


def exact_claim(id: str, *, method: str, scope: str = "sample"):
    """Register the exact version of the numeric catalogue's claim ``id``."""

    def deco(func):
        base = CLAIMS[id]
        SYMBOLIC_CLAIMS[id] = ClaimSpec(id, base.title, base.paper_ref, base.statement, method, scope, func)
        return func

    return deco


@dataclass
class ExactContext:
    con: Any  # the exact Construction
    alpha: Any  # symbol or rational
    r: Any
    point: dict  # symbol -> the run's float value, to give a residual its size
    cache: dict = field(default_factory=dict)
    extra: tuple = ()  # further free symbols of the construction (rho of a symbolic ReLU'(0))

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

    def e_bar(self, y):
        """m copies of [y; -y] (signed) or [y] (paper), exact."""
        b = self.blocks
        ys = list(y)
        unit = ys + [-v for v in ys] if b.s == 2 else ys
        return sp.Matrix(unit * b.m)

    def v(self, a: int, bb: int, y):
        """v(x, x*, y) = sum_{i=2}^{N-1} c_{i-2}(a, b) A_i e_bar(y), exact (Lemma 4.1)."""
        b, con = self.blocks, self.con
        ebar = self.e_bar(y)
        out = sp.zeros(b.dm, 1)
        for c in range(b.m):
            code = con.codes[c][a][bb]
            if code == 0:
                continue
            A = con.A[c + 1]
            out += sp.Matrix([code * A[k] * ebar[k] for k in range(b.dm)])
        return out.applyfunc(sp.expand)


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


def _stack(mats) -> sp.Matrix:
    """All entries of several matrices as one column."""
    return sp.Matrix([e for M in mats for e in M])


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
    """Entries that ``expand`` left nonzero, re-tested in the canonical Q(sqrt p)[symbols] form.

    Returns (truly nonzero entries, entries that could not be put in canonical form)."""
    syms = sorted({s for _, e in bad for s in e.free_symbols}, key=sp.default_sort_key)
    try:
        P = PolyDomain([sp.Matrix([e for _, e in bad])], syms)
    except NotPolynomial:
        return [], bad
    nonzero, unsure = [], []
    for where, e in bad:
        try:
            if P.element(e):
                nonzero.append((where, e))
        except NotPolynomial:
            unsure.append((where, e))
    return nonzero, unsure


def identity(ctx, residual, claimed: str, what: str, note: str = "") -> Check:
    """PASS iff every entry of ``residual`` is identically 0; else FAIL with the first entries shown.

    Zero test: ``expand`` (canonical for these sums of monomials times square roots), then every
    entry it leaves is re-tested in the canonical form of :class:`PolyDomain`; an entry that cannot
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


def _prefix_suffix(W):
    """pre[k] = W_1 ... W_k (pre[0] = I), suf[k] = W_{k+2} ... W_N (suf[N-1] = I), exact."""
    N, D = len(W), W[0].rows
    pre = [sp.eye(D)]
    for k in range(N - 1):
        pre.append((pre[-1] * W[k]).applyfunc(sp.expand))
    suf = [None] * N
    suf[N - 1] = sp.eye(D)
    for k in range(N - 2, -1, -1):
        suf[k] = (W[k + 1] * suf[k + 1]).applyfunc(sp.expand)
    return pre, suf


def _signed(ctx) -> bool:
    return ctx.con.design.variant == "signed"


def _clip(orthant, vec):
    """max(vec, 0) per coordinate, each sign decided exactly; (vector, undecided coordinate or None)."""
    out = []
    for t in range(vec.rows):
        s, _ = decide(vec[t], orthant)
        if s == Sign.UNDECIDED:
            return None, t
        out.append(vec[t] if s == Sign.POS else sp.Integer(0))
    return sp.Matrix(out), None


# ---- the claims -----------------------------------------------------------------------------
@exact_claim("grad-rank-one",
             method="exact reverse-mode backprop vs r^i (W_1...W_{i-1})^T e phi^T (W_{i+1}...W_N)^T, "
                    "entry by entry as polynomials in alpha, y")
def grad_rank_one(ctx, st) -> Check:
    W, N = ctx.con.W, ctx.N
    pre, suf = ctx.cached("prefix_suffix", lambda: _prefix_suffix(W))
    res = []
    for k in range(N):
        a = pre[k].T * st.e
        bvec = suf[k] * st.phi_x
        res.append(st.grads[k] - st.r ** (k + 1) * a * bvec.T)
    return identity(ctx, sp.Matrix.vstack(*res), "0", "grad W_i - r^i a_i b_{i-1}^T")


@exact_claim("update-blocks",
             method="exact difference W' - W block by block; the exact error reaching the feature map")
def update_blocks(ctx, st) -> Check:
    b, N = ctx.blocks, ctx.N
    out = []
    for k in range(N):
        delta = st.W_post[k] - ctx.con.W[k]
        out.append(delta[:b.dt, :])  # top rows
        out.append(delta[b.dt:, b.dt:])  # middle and bottom columns of the lower rows
    out.append(st.g_phi[b.top, :].T)
    out.append(sp.Matrix([[st.g_theta_h]]))
    res = _stack(out)
    moved = sum(1 for k in range(N) for _ in _nonzero_entries(st.W_post[k][b.dt:, b.top] - ctx.con.W[k][b.dt:, b.top]))
    return identity(ctx, res, "0 outside (mid, top) and (bottom, top)", "change outside the allowed blocks",
                    f"{moved} entries move, all in the (mid, top) and (bottom, top) blocks")


@exact_claim("second-order-zero",
             method="exact product of the N updated D x D weights minus the first-order expansion with "
                    "the exact gradients, in Q(sqrt p_1, ..., sqrt p_k)[alpha, y] (rational polynomials in "
                    "s_p = sqrt p reduced modulo s_p^2 = p: a canonical form); the residual must be the zero "
                    "polynomial in alpha (every degree)")
def second_order_zero(ctx, st) -> Check:
    key = ("second-order", tuple(st.phi_x), tuple(st.y))

    def make():
        W, G, alpha, N = ctx.con.W, st.grads, st.alpha, ctx.N
        gens = (alpha, *st.y, *ctx.extra)
        try:
            P = ctx.cached(("domain", gens), lambda: PolyDomain(list(W), gens))
            Wd = ctx.cached(("W in domain", gens), lambda: [P.matrix(M) for M in W])
            Wp = [P.matrix(M) for M in st.W_post]
            Gd = [P.matrix(M) for M in G]
        except NotPolynomial as exc:  # pragma: no cover - the construction only has square roots
            return Check("-", "0", math.nan, 0.0, Verdict.UNDECIDED, f"not in Q(sqrt)[alpha, y]: {exc}")
        lhs = Wp[N - 1]
        for k in range(N - 2, -1, -1):
            lhs = P.mul(Wp[k], lhs)
        # first order: sum_k W_1..W_{k} G_{k+1} W_{k+2}..W_N, by the recurrence acc_k = G_k R_k + W_k acc_{k+1}
        R = Wd[N - 1]
        acc = Gd[N - 1]
        for k in range(N - 2, -1, -1):
            acc = P.mul(Gd[k], R) + P.mul(Wd[k], acc)
            R = P.mul(Wd[k], R)
        full = R
        res = lhs - (full - acc * P.scalar(alpha))
        note = ""
        if isinstance(alpha, sp.Symbol):
            note = f"prod W' has degree {P.degree(lhs, alpha)} in alpha"
        if res.to_sdm() and any(res.to_sdm().values()):
            return identity(ctx, P.to_sympy(res.applyfunc(P.reduce)), "0 (no O(alpha^2) term)",
                            "prod W' - [prod W - alpha sum first-order]", note)
        return Check("prod W' - [prod W - alpha sum first-order] = 0 (identically, in Q(sqrt p)[alpha, y])",
                     "0 (no O(alpha^2) term)", 0.0, 0.0, Verdict.PASS, note)

    return ctx.cached(key, make)


def _kernel(ctx, st):
    b = ctx.blocks
    px, ps = st.phi_x[b.top, :], st.phi_star_post[b.top, :]
    return [((ctx.con.B(i) * px).T * (ctx.con.B(i) * ps))[0, 0] for i in range(1, ctx.N + 1)]


@exact_claim("post-update-eq3",
             method="exact forward pass at x* after the exact step vs eq. (3) from the chosen A_i, B_i; "
                    "signed variant: vs max(eq. (3), 0) with each sign decided exactly")
def post_update_eq3(ctx, st) -> Check:
    b, con = ctx.blocks, ctx.con
    k = _kernel(ctx, st)
    ebar = ctx.e_bar(st.y)
    total = sp.zeros(b.dm, 1)
    for i in range(1, ctx.N + 1):
        if k[i - 1] != 0:
            total += sp.Matrix([con.A[i - 1][q] * ebar[q] * k[i - 1] for q in range(b.dm)])
    eq3 = (-st.alpha * total).applyfunc(sp.expand)
    claimed = eq3
    if _signed(ctx):
        claimed, bad = _clip(st.orthant, eq3)
        if claimed is None:
            return Check("-", "max(eq. (3), 0)", math.nan, 0.0, Verdict.UNDECIDED,
                         f"sign of eq. (3) coordinate {bad} undecided")
    return identity(ctx, st.z_star[b.mid, :] - claimed, "eq. (3)", "zbar* - eq. (3)")


@exact_claim("z-star-is-minus-alpha-v",
             method="exact zbar* + alpha v as a polynomial in alpha, y (paper variant); signed: zbar* - "
                    "max(-alpha v, 0) with signs decided exactly, and z+ - z- + alpha v_+ = 0")
def z_star_is_minus_alpha_v(ctx, st) -> Check:
    b, con = ctx.blocks, ctx.con
    a, bb = con.bin_x(st.x), con.bin_star(st.x_star)
    target = (-st.alpha * ctx.v(a, bb, st.y)).applyfunc(sp.expand)
    z = st.z_star[b.mid, :]
    if not _signed(ctx):
        return identity(ctx, z - target, "-alpha v", "zbar* + alpha v")
    clipped, bad = _clip(st.orthant, target)
    if clipped is None:
        return Check("-", "max(-alpha v, 0)", math.nan, 0.0, Verdict.UNDECIDED,
                     f"sign of -alpha v coordinate {bad} undecided")
    direct = identity(ctx, z - clipped, "max(-alpha v, 0)", "zbar* - max(-alpha v, 0)")
    plus = [b.mid_local(c, 0, d) for c in range(b.m) for d in range(b.dy)]
    minus = [b.mid_local(c, 1, d) for c in range(b.m) for d in range(b.dy)]
    pairs = identity(ctx, sp.Matrix([z[p] - z[q] - target[p] for p, q in zip(plus, minus)]), "-alpha v",
                     "(z+ - z-) + alpha v_+", "pairs z+ - z- recover -alpha v exactly")
    if direct.verdict != Verdict.PASS:
        return direct
    return pairs


@exact_claim("kernel-code",
             method="exact inner products of the top activations entering each layer (x before, x* after) "
                    "vs the exact code table")
def kernel_code(ctx, st) -> Check:
    con, b, N = ctx.con, ctx.blocks, ctx.N
    computed = [(st.fwd_x.post[i][b.top, :].T * st.fwd_star_post.post[i][b.top, :])[0, 0] for i in range(1, N + 1)]
    a, bb = con.bin_x(st.x), con.bin_star(st.x_star)
    claimed = [0] + [con.codes[c][a][bb] for c in range(b.m)] + [0]
    chk = identity(ctx, sp.Matrix(computed) - sp.Matrix(claimed), "c(bin x, bin x*)", "k_i - c_{i-2}(a, b)")
    if chk.verdict == Verdict.PASS and con.design.layout == "paper":
        ones = [i + 1 for i, v in enumerate(computed) if v == 1]
        if len(ones) != 1 or any(v not in (0, 1) for v in computed):
            return Check(computed, claimed, 1.0, 0.0, Verdict.FAIL, "paper layout: k is not an indicator")
        chk.note = f"indicator of cell ({a}, {bb}): layer {ones[0]}"
    return chk


def cell_gains(ctx):
    """w(j, l) in exact arithmetic: gain of cell (j, l) on each channel (first coordinate of the channel)."""
    b, con = ctx.blocks, ctx.con
    first = [b.channel_local(c).start for c in range(b.m)]
    out = {}
    for j in range(b.cells_x):
        for l in range(b.cells_star):
            out[(j, l)] = [sp.expand(sum(con.codes[c][j][l] * con.A[c + 1][k] for c in range(b.m))) for k in first]
    return out


def _margin(gains, cell) -> float:
    """min over the other cells of sin(angle(w(cell), w(other))), from exact values."""
    def dot(u, v):
        return sp.expand(sum(p * q for p, q in zip(u, v)))

    w = gains[cell]
    ww = dot(w, w)
    best = sp.Integer(0)
    for other, wc in gains.items():
        if other == cell or all(v == 0 for v in wc):
            continue
        cos2 = dot(w, wc) ** 2 / (ww * dot(wc, wc))
        best = max(best, cos2) if cos2.is_Rational and best.is_Rational else sp.Max(best, cos2)
    return float(sp.sqrt(1 - best).evalf(30))


@exact_claim("v-decodes",
             method="exact decoding of zbar*: U = (z+ - z-)/(-alpha) must equal w(a, b) (x) y identically, "
                    "and for every other cell some 2x2 minor [U | w(cell)] is provably nonzero on the orthant")
def v_decodes(ctx, st) -> Check:
    b, con = ctx.blocks, ctx.con
    z = st.z_star[b.mid, :]
    U = []
    for c in range(b.m):
        row = []
        for d in range(b.dy):
            val = z[b.mid_local(c, 0, d)] - (z[b.mid_local(c, 1, d)] if b.s == 2 else 0)
            row.append(sp.expand(val / (-st.alpha)))
        U.append(row)
    gains = ctx.cached("gains", lambda: cell_gains(ctx))
    a, bb = con.bin_x(st.x), con.bin_star(st.x_star)
    w = gains[(a, bb)]
    rec = identity(ctx, sp.Matrix([[U[c][d] - w[c] * st.y[d] for d in range(b.dy)] for c in range(b.m)]),
                   "w(a, b) y", "U - w(bin x, bin x*) y")
    if rec.verdict != Verdict.PASS:
        rec.note = "zbar* does not carry w(a, b) y: " + rec.note
        return rec
    if all(v == 0 for v in w):
        return Check("w(a, b) = 0", "w(a, b) != 0", 1.0, 0.0, Verdict.FAIL, "the cell has the zero code")
    collide, undecided = [], []
    for cell, wc in gains.items():
        if cell == (a, bb) or all(v == 0 for v in wc):
            continue  # the zero code never explains a nonzero U = w(a, b) y
        separated, unsure = False, False
        for p in range(b.m):
            for q in range(p + 1, b.m):
                for d in range(b.dy):
                    s, _ = decide(U[p][d] * wc[q] - U[q][d] * wc[p], st.orthant)
                    separated |= s in (Sign.POS, Sign.NEG)
                    unsure |= s == Sign.UNDECIDED
                    if separated:
                        break
                if separated:
                    break
            if separated:
                break
        if not separated:
            (undecided if unsure else collide).append(cell)
    margin = ctx.cached(("margin", a, bb), lambda: _margin(gains, (a, bb)))
    computed = {"cell_x": a, "cell_star": bb, "y": [sp.sstr(v) for v in st.y], "margin": margin}
    if collide:
        return Check(computed, {"unique cell": (a, bb)}, 1.0, 0.0, Verdict.FAIL,
                     f"cells {collide[:3]} explain zbar* as well as ({a}, {bb})")
    if undecided:
        return Check(computed, {"unique cell": (a, bb)}, math.nan, 0.0, Verdict.UNDECIDED,
                     f"separation from cells {sorted(set(undecided))[:3]} undecided")
    return Check(computed, {"cell_x": a, "cell_star": bb, "y": [sp.sstr(v) for v in st.y]}, 0.0, 0.0,
                 Verdict.PASS, f"y recovered exactly; separation margin (sin of angle) = {margin:.3g}")


@exact_claim("boundary", scope="construction",
             method="exact telescoping products of the weight blocks vs A_i / r^i and B_i; A_i = M M^T with "
                    "M diagonal and a nonzero diagonal (SPD from structure); B_i lower triangular with a "
                    "nonzero diagonal (invertible); SymPy's None is UNDECIDED")
def boundary(ctx) -> Check:
    con, b, N = ctx.con, ctx.blocks, ctx.N
    res = []
    M = sp.eye(b.dm)
    verdicts, notes = [], []
    for i in range(1, N + 1):
        Ai = (M * M.T).applyfunc(sp.expand)
        res.append(Ai - sp.diag(*con.A_built[i - 1]))
        nz = [M[k, k].is_zero for k in range(b.dm)]
        if not M.is_diagonal():
            verdicts.append(Verdict.UNDECIDED)
            notes.append(f"M_{i} not diagonal")
        elif any(v is None for v in nz):
            verdicts.append(Verdict.UNDECIDED)
            notes.append(f"A_{i}: SymPy cannot decide a diagonal entry of M is nonzero")
        elif any(nz):
            verdicts.append(Verdict.FAIL)
            notes.append(f"A_{i} singular")
        M = (M * con.W[i - 1][b.mid, b.mid]).applyfunc(sp.expand)
    P = sp.eye(b.dt)
    for i in range(N, 0, -1):
        Bi = con.B(i)
        res.append(P - Bi)
        diag_nz = [Bi[k, k].is_zero for k in range(b.dt)]
        if Bi.is_lower is not True:
            verdicts.append(Verdict.UNDECIDED)
            notes.append(f"B_{i} not triangular")
        elif any(v is None for v in diag_nz):
            verdicts.append(Verdict.UNDECIDED)
            notes.append(f"B_{i}: diagonal entry undecided")
        elif any(diag_nz):
            verdicts.append(Verdict.FAIL)
            notes.append(f"B_{i} singular")
        P = (con.W[i - 1][b.top, b.top] * P).applyfunc(sp.expand)
    res += [sp.diag(*con.A_built[0]) - sp.eye(b.dm), con.B(N) - sp.eye(b.dt)]
    tel = identity(ctx, _stack(res), "A_1 = I, B_N = I, telescoping exact", "telescoping residual")
    v = worst(tel.verdict, *verdicts)
    note = "; ".join(notes) or ("A_i = M M^T, M diagonal with nonzero diagonal => SPD; B_i lower triangular "
                                "with diagonal 1 => invertible")
    return Check(tel.computed, tel.claimed, tel.residual, 0.0, v, note if v == Verdict.PASS or notes else tel.note)


@exact_claim("nonneg-linear-regime",
             method="exact sign of every pre-activation in the four exact forward passes (x, x*; before, "
                    "after), decided on the instance's orthant")
def nonneg_linear_regime(ctx, st) -> Check:
    passes = {"x, before": st.fwd_x, "x*, before": st.fwd_star_pre, "x, after": st.fwd_x_post,
              "x*, after": st.fwd_star_post}
    names = ctx.blocks.names()
    D = ctx.blocks.D
    for name, f in passes.items():
        for t in range(D):
            col = [f.signs[k][t] for k in range(ctx.N)]
            if _signed(ctx):
                if Sign.POS in col and Sign.NEG in col:
                    k = col.index(Sign.NEG)
                    return Check(f"{name}, unit {names[t]}: changes sign across layers", "sign-consistent",
                                 _size(ctx, [f.pre[k][t]]), 0.0, Verdict.FAIL,
                                 f"{name}, unit {names[t]}, layer {k + 1}: {sp.sstr(f.pre[k][t])}")
            elif Sign.NEG in col:
                k = col.index(Sign.NEG)
                return Check(f"{name}, layer {k + 1}, unit {names[t]}: {sp.sstr(f.pre[k][t])} < 0", "all >= 0",
                             _size(ctx, [f.pre[k][t]]), 0.0, Verdict.FAIL,
                             f"{name}, layer {k + 1}, unit {names[t]}: {sp.sstr(f.pre[k][t])} < 0 on {st.orthant.describe()}")
    claimed = "sign-consistent per coordinate" if _signed(ctx) else "all >= 0"
    return Check("every sign decided, none violates", claimed, 0.0, 0.0, Verdict.PASS,
                 f"on {st.orthant.describe()}")


@exact_claim("psd-argument", scope="construction",
             method="exact products of the top blocks: smallest entry (rational) and SymPy's "
                    "is_positive_semidefinite of the symmetric part (tri-state, reported, not relied on)")
def psd_argument(ctx) -> Check:
    con, b, N = ctx.con, ctx.blocks, ctx.N
    prod = sp.eye(b.dt)
    min_entry = None
    psd = {True: 0, False: 0, None: 0}
    for j in range(N, 0, -1):
        prod = con.W[j - 1][b.top, b.top] * prod
        m = min(prod)
        min_entry = m if min_entry is None or m < min_entry else min_entry
        psd[((prod + prod.T) / 2).is_positive_semidefinite] += 1
    note = (f"PSD premise: holds for {psd[True]}/{N} products, fails for {psd[False]}, SymPy undecided for "
            f"{psd[None]}; the activations are non-negative because every product is entrywise >= 0")
    ok = min_entry >= 0
    return Check({"min_entry": sp.sstr(min_entry), "psd_true": psd[True], "psd_false": psd[False],
                  "psd_undecided": psd[None]}, "min_entry >= 0", 0.0 if ok else float(-min_entry), 0.0,
                 Verdict.PASS if ok else Verdict.FAIL,
                 note if ok else f"a top product has a negative entry {min_entry}; " + note)


def error_at_z(con, z, y):
    yhat = con.Wg * z
    return con.Wg.T * con.loss.grad(y, yhat)


@exact_claim("e-linear",
             method="the exact error at z through g_pre and the loss for symbolic labels u, w and scalars "
                    "a, b: E(a u + b w) - a E(u) - b E(w) = 0 and E(0) = 0 identically; injectivity by the "
                    "exact rank of dE/dy; theta_b' != 0 decided on the orthant")
def e_linear(ctx, st) -> Check:
    b, con = ctx.blocks, ctx.con
    dy = len(st.y)
    u = sp.Matrix(sp.symbols(f"u0:{dy}"))
    w = sp.Matrix(sp.symbols(f"w0:{dy}"))
    ca, cb = sp.symbols("a b")
    z = st.fwd_x.z

    def E(y):
        e = error_at_z(con, z, y)
        return sp.Matrix.vstack(e[b.mid, :], e[b.bottom:, :]).applyfunc(sp.expand)

    lin = identity(ctx, E(ca * u + cb * w) - ca * E(u) - cb * E(w), "linear", "E(a u + b w) - a E(u) - b E(w)")
    aff = identity(ctx, E(sp.zeros(dy, 1)), "0", "E(0)")
    J = E(u)[:b.dm, :].jacobian(u)
    rank = J.rank()
    inj = Verdict.PASS if rank == dy else Verdict.FAIL
    s, _ = decide(st.theta_b_post, st.orthant)
    tb = {Sign.POS: Verdict.PASS, Sign.NEG: Verdict.PASS, Sign.ZERO: Verdict.FAIL}.get(s, Verdict.UNDECIDED)
    v = worst(lin.verdict, aff.verdict, inj, tb)
    note = "" if v == Verdict.PASS else (
        "theta_b' = 0 identically: the switch does not flip" if tb == Verdict.FAIL else
        f"linearity {lin.verdict.value}, E(0) {aff.verdict.value}, rank {rank}/{dy}, theta_b' {s.value}")
    return Check({"linearity": lin.computed, "value_at_zero": aff.computed, "rank": rank,
                  "theta_b_post": sp.sstr(st.theta_b_post)}, "linear, injective, theta_b' != 0",
                 max(lin.residual, aff.residual), 0.0, v, note)


@exact_claim("multiplexer",
             method="the multiplexer's branch in the exact passes: yhat and the top error identically 0 "
                    "before; zbar* != 0 decided on the orthant after, so h_post is selected")
def multiplexer(ctx, st) -> Check:
    b = ctx.blocks
    before = identity(ctx, sp.Matrix.vstack(st.out_x.yhat, st.e[b.top, :]), "0", "yhat, top error before")
    ok_before = before.verdict == Verdict.PASS and st.out_x.branch == "g_pre"
    after = st.out_star_post.branch == "h_post"
    v = Verdict.PASS if (ok_before and after) else Verdict.FAIL
    note = f"before: {st.out_x.branch}; after: {st.out_star_post.branch}"
    if not after:
        note += " (zbar* = 0 identically: the step left no trace at x*)"
    return Check({"branch_before": st.out_x.branch, "branch_after": st.out_star_post.branch,
                  "before": before.computed},
                 {"branch_before": "g_pre", "branch_after": "h_post"}, before.residual, 0.0, v, note)
