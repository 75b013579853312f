"""Mutation testing of the verifier: corrupt the construction, see whether some claim notices.

A *mutant* is a copy of a built :class:`~universality.construction.network.Construction` with one
change: a single weight entry of any block type (of any layer, or of the head W_g), a structural
choice (the switch of the feature map, the binning, the layer order, a transposed block), epsilon
used by the weights, one code-table entry realised in the weights, the sign convention of W_g,
the r-compensation, the initial theta_b.

A mutant is **meaningful** when it changes the network's behaviour on some input, decided by
execution, never by assertion: the original and the mutant are both run (forward pass at x, real
step, forward pass at x*) on a probe set that holds every pair of cells (their centres, x = x*
too) with labels of both signs plus the verifier's own samples, and their outputs f(x; theta)
and f(x*; theta') (and the multiplexer branch taken) are compared bit for bit. A mutant whose
outputs are identical on every probe is *equivalent* (for example an entry of W_1's top rows: z's
top block is read by nothing) and is reported separately, with whether a claim flags it anyway.

A mutant is **killed** when :func:`~universality.verify.check_claims` gives some claim FAIL (or
UNDECIDED) on the verifier's samples; the report names the claims. The kill fraction is killed /
meaningful. Run ``python -m universality.mutation --N 5 --J 2 --L 2``; docs/mutation.md explains
the output and the survivors.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .claims import Verdict
from .config import Config
from .errors import ConfigError
from .construction.features import cell as _cell
from .construction.network import Construction, Design, build
from .execution import one_step
from .samples import Sample, make_samples
from .verify import check_claims

PERTURB_ZERO = 0.5  # a zero entry becomes +0.5 (and, in exhaustive mode, also -0.5)
SCALE = 1.5  # a nonzero entry is scaled by 1.5


@dataclass
class Mutant:
    id: str
    family: str
    description: str
    apply: Callable[[Construction], Construction]


@dataclass
class MutantResult:
    id: str
    family: str
    description: str
    meaningful: bool
    killed: bool
    killed_by: list
    behaviour_change: str
    error: str = ""
    explanation: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class MutationReport:
    design: Design
    results: list = field(default_factory=list)

    @property
    def meaningful(self) -> list:
        return [r for r in self.results if r.meaningful]

    @property
    def killed(self) -> list:
        return [r for r in self.meaningful if r.killed]

    @property
    def survivors(self) -> list:
        return [r for r in self.meaningful if not r.killed]

    @property
    def equivalent(self) -> list:
        return [r for r in self.results if not r.meaningful]

    @property
    def kill_fraction(self) -> float:
        m = len(self.meaningful)
        return len(self.killed) / m if m else 1.0

    def by_family(self) -> dict:
        out: dict = {}
        for r in self.results:
            f = out.setdefault(r.family, {"mutants": 0, "meaningful": 0, "killed": 0, "equivalent_flagged": 0})
            f["mutants"] += 1
            f["meaningful"] += r.meaningful
            f["killed"] += r.meaningful and r.killed
            f["equivalent_flagged"] += (not r.meaningful) and r.killed
        return out

    def as_dict(self) -> dict:
        return {
            "design": self.design.__dict__,
            "mutants": len(self.results),
            "meaningful": len(self.meaningful),
            "killed": len(self.killed),
            "kill_fraction": self.kill_fraction,
            "equivalent": len(self.equivalent),
            "equivalent_flagged_anyway": sum(r.killed for r in self.equivalent),
            "by_family": self.by_family(),
            "survivors": [r.as_dict() for r in self.survivors],
            "equivalent_mutants": [r.as_dict() for r in self.equivalent],
        }


# ---- mutant families --------------------------------------------------------------------------
def _with_W(con: Construction, W) -> Construction:
    return replace(con, W=W)


def _copy(con: Construction) -> Construction:
    return replace(con, W=con.W.copy(), Wg=con.Wg.copy(), extras=dict(con.extras))


def _groups(b):
    """The named index groups of a width-D layer (rows and columns of every block type)."""
    return {"top.x": range(b.top_x.start, b.top_x.stop), "top.star": range(b.top_star.start, b.top_star.stop),
            "mid": range(b.mid.start, b.mid.stop), "bottom": range(b.bottom, b.bottom + 1)}


def _pick(indices, k: int | None, rng) -> list:
    idx = list(indices)
    if k is None or len(idx) <= k:
        return idx
    chosen = {idx[0], idx[-1]} if k >= 2 else {idx[0]}
    rest = [i for i in idx if i not in chosen]
    while len(chosen) < k and rest:
        chosen.add(rest.pop(int(rng.integers(len(rest)))))
    return sorted(chosen)


def _entry_mutant(kind: str, k: int | None, row: int, col: int, value: float, names, new: float) -> Mutant:
    if kind == "W":
        where = f"W_{k + 1}[{names[row]}, {names[col]}]"

        def apply(con, k=k, row=row, col=col, new=new):
            W = con.W.copy()
            W[k, row, col] = new
            return _with_W(con, W)
    else:
        where = f"W_g[y{row}, {names[col]}]"

        def apply(con, row=row, col=col, new=new):
            c = _copy(con)
            c.Wg[row, col] = new
            return c
    return Mutant(f"{where}: {value:g} -> {new:g}", "", f"set {where} from {value:g} to {new:g}", apply)


def weight_mutants(con: Construction, per_block: int | None, rng, both_signs: bool) -> list:
    b = con.blocks
    names = b.names()
    groups = _groups(b)
    out = []
    for k in range(con.N):
        for rname, rows in groups.items():
            for cname, cols in groups.items():
                cells = [(r, c) for r in rows for c in cols]
                if not cells:
                    continue
                for idx in _pick(range(len(cells)), per_block, rng):
                    r, c = cells[idx]
                    w = float(con.W[k, r, c])
                    news = [w * SCALE] if w != 0 else ([PERTURB_ZERO, -PERTURB_ZERO] if both_signs else [PERTURB_ZERO])
                    for new in news:
                        m = _entry_mutant("W", k, r, c, w, names, new)
                        m.family = f"weight {rname}<-{cname}" + (" (diagonal)" if r == c else "")
                        out.append(m)
    for cname, cols in groups.items():
        cells = [(r, c) for r in range(con.Wg.shape[0]) for c in cols]
        for idx in _pick(range(len(cells)), per_block, rng):
            r, c = cells[idx]
            w = float(con.Wg[r, c])
            for new in ([w * SCALE] if w != 0 else [PERTURB_ZERO]):
                m = _entry_mutant("Wg", None, r, c, w, names, new)
                m.family = f"head W_g <-{cname}"
                out.append(m)
    return out


def _phi_mutant(id_, desc, make_index) -> Mutant:
    """Replace the feature map's top slot choice; phi keeps the theta_b entry."""

    def apply(con):
        c = _copy(con)
        b, d = c.blocks, c.design

        def phi(u, theta_b, c=c, b=b, d=d):
            out = np.zeros(b.D)
            out[make_index(u, theta_b, d, b)] = 1.0
            out[b.bottom] = float(theta_b)
            return out

        c.phi = phi  # instance attribute shadows the method
        return c

    return Mutant(id_, "switch / feature map", desc, apply)


def structural_mutants(con: Construction) -> list:
    b = con.blocks
    out = [
        _phi_mutant("switch never flips", "phi~(u; theta_b) always writes the x-cell slot (no switch)",
                    lambda u, tb, d, b: b.top_x.start + _cell(u, d.J)),
        _phi_mutant("switch always on", "phi~(u; theta_b) always writes the x*-cell slot",
                    lambda u, tb, d, b: b.top_star.start + _cell(u, d.L)),
        _phi_mutant("switch tests theta_b > 0", "the switch flips only for theta_b > 0 (not != 0)",
                    lambda u, tb, d, b: (b.top_star.start + _cell(u, d.L)) if tb > 0
                    else b.top_x.start + _cell(u, d.J)),
        _phi_mutant("switch inverted", "x goes to the x*-slots at theta_b = 0 and x* to the x-slots after",
                    lambda u, tb, d, b: (b.top_x.start + _cell(u, d.J) % b.cells_x) if tb != 0
                    else b.top_star.start + _cell(u, d.L)),
    ]
    if b.cells_x > 1:
        out.append(_phi_mutant("x binned one cell off", "bin_J(x) + 1 (mod J^dx) in the feature map",
                               lambda u, tb, d, b: (b.top_star.start + _cell(u, d.L)) if tb != 0
                               else b.top_x.start + (_cell(u, d.J) + 1) % b.cells_x))
    if b.cells_star > 1:
        out.append(_phi_mutant("x* binned one cell off", "bin_L(x*) + 1 (mod L^dx) in the feature map",
                               lambda u, tb, d, b: (b.top_star.start + (_cell(u, d.L) + 1) % b.cells_star)
                               if tb != 0 else b.top_x.start + _cell(u, d.J)))

    def reverse(con):
        return _with_W(con, con.W[::-1].copy())

    out.append(Mutant("layer order reversed", "structure", "W_N ... W_1 applied in the opposite order", reverse))
    for k in range(con.N - 1):
        def swap(con, k=k):
            W = con.W.copy()
            W[[k, k + 1]] = W[[k + 1, k]]
            return _with_W(con, W)

        out.append(Mutant(f"layers {k + 1} and {k + 2} swapped", "structure",
                          f"W_{k + 1} and W_{k + 2} exchange places", swap))
    for k in range(1, con.N):
        def transpose(con, k=k):
            W = con.W.copy()
            top = W[k][b.top, b.top].copy()
            W[k][b.top, b.top] = top.T
            return _with_W(con, W)

        out.append(Mutant(f"top block of W_{k + 1} transposed", "structure",
                          f"Wtilde_{k + 1} replaced by its transpose (G vs G^T)", transpose))

    def theta0(value):
        def apply(con):
            c = _copy(con)
            c.theta_b = c.field.num(value)
            return c
        return apply

    out.append(Mutant("theta_b starts at 1e-3", "structure", "initial theta_b = 1e-3 instead of 0", theta0(1e-3)))
    out.append(Mutant("theta_b starts at -1", "structure", "initial theta_b = -1 instead of 0", theta0(-1.0)))
    return out


def parameter_mutants(con: Construction) -> list:
    d, b = con.design, con.blocks
    out = []
    for factor in (2.0, 0.5):
        def eps_w(con, factor=factor):
            return _with_W(con, build(con.design.with_(eps=con.design.eps * factor)).W)

        out.append(Mutant(f"weights built with eps * {factor:g}", "epsilon",
                          f"the weights use eps = {d.eps * factor:g}, the declared A_i use eps = {d.eps:g}", eps_w))
    r = d.relu_grad_at_zero
    for r_built in ([2.0] if r == 1 else [1.0, 2.0 * r]):
        def r_w(con, r_built=r_built):
            return _with_W(con, build(con.design.with_(relu_grad_at_zero=r_built)).W)

        out.append(Mutant(f"weights compensate r = {r_built:g}", "r compensation",
                          f"A_i / r^i built for r = {r_built:g}, backprop uses r = {r:g}", r_w))
    if r != 0:
        def r_exec(con):
            return replace(con, design=con.design.with_(relu_grad_at_zero=r * 3.0))

        out.append(Mutant(f"backprop uses r = {3 * r:g}", "r compensation",
                          f"the weights compensate r = {r:g}, backprop runs with r = {3 * r:g}", r_exec))
    # the code table as realised in the weights: c_c(j, l) += delta changes B_{c+2}, i.e. the
    # (x*-cell, x-cell) entry of Wtilde_{c+2} and Wtilde_{c+3}
    codes = np.asarray(con.codes, dtype=float)
    for c in range(b.m):
        for j in range(b.cells_x):
            for l in range(b.cells_star):
                delta = 0.5 if codes[c, j, l] == 0 else 0.5 * codes[c, j, l]

                def code_w(con, c=c, j=j, l=l, delta=delta):
                    W = con.W.copy()
                    i = c + 2  # layer of channel c
                    W[i - 1, b.cells_x + l, j] -= delta  # Wtilde_i = [[I,0],[G_{i-1}^T - G_i^T, I]]
                    W[i, b.cells_x + l, j] += delta  # Wtilde_{i+1}
                    return _with_W(con, W)

                out.append(Mutant(f"code c_{c}({j},{l}) += {delta:g} in the weights", "code table",
                                  f"B_{c + 2} realises c_{c}({j},{l}) + {delta:g}; the declared table is unchanged",
                                  code_w))
    # sign conventions of W_g: W_g = [0, -[+I, -I, ...], -1^T] (MSE, signed)
    mid = b.mid
    for sgn in range(b.s):
        def flip_copy(con, sgn=sgn):
            c = _copy(con)
            for ch in range(b.m):
                for comp in range(b.dy):
                    col = mid.start + b.mid_local(ch, sgn, comp)
                    c.Wg[:, col] = -c.Wg[:, col]
            return c

        tag = "+" if sgn == 0 else "-"
        out.append(Mutant(f"W_g sign of the {tag} copies flipped", "W_g sign", f"every {tag} copy column of W_g negated",
                          flip_copy))

    def flip_bottom(con):
        c = _copy(con)
        c.Wg[:, b.bottom] = -c.Wg[:, b.bottom]
        return c

    out.append(Mutant("W_g bottom sign flipped", "W_g sign", "wcheck_g negated (e_check(y) = -sum y)", flip_bottom))

    def flip_all(con):
        c = _copy(con)
        c.Wg[:] = -c.Wg
        return c

    out.append(Mutant("W_g negated", "W_g sign", "the whole head negated (the loss gradient's sign)", flip_all))
    return out


def all_mutants(con: Construction, per_block: int | None = None, seed: int = 0,
                both_signs: bool = False) -> list:
    rng = np.random.default_rng(seed)
    return weight_mutants(con, per_block, rng, both_signs) + structural_mutants(con) + parameter_mutants(con)


# ---- behaviour (meaningfulness) -----------------------------------------------------------------
def _cell_point(index: int, per_axis: int, dx: int, where: float) -> tuple:
    digits = []
    for _ in range(dx):
        digits.append(index % per_axis)
        index //= per_axis
    return tuple((dgt + where) / per_axis for dgt in reversed(digits))


def probe_inputs(design: Design, samples: list) -> list:
    """Every pair of cells (centres), x = x*, labels of both signs; plus the verifier's samples."""
    b = design.blocks
    dy = design.dy
    ys = [np.full(dy, 1.3), np.full(dy, -0.7)]
    if dy >= 2:
        mixed = np.array([1.3 if k % 2 == 0 else -0.4 for k in range(dy)])
        ys += [mixed, -mixed]
    out = []
    for where in (0.5,):  # cell centres; the samples add lower edges, points just below edges, x = x*
        for a in range(b.cells_x):
            x = _cell_point(a, design.J, design.dx, where)
            stars = [_cell_point(c, design.L, design.dx, where) for c in range(b.cells_star)] + [x]
            for xs in stars:
                for y in ys:
                    out.append(Sample(x, xs, tuple(float(v) for v in y), "probe"))
    return out + list(samples)


def behaviour(con: Construction, probes: list) -> list:
    out = []
    for s in probes:
        st = one_step(con, s.x, s.y, s.x_star)
        out.append((st.out_x.branch, st.out_x.yhat.copy(), st.out_star_post.branch, st.out_star_post.yhat.copy()))
    return out


def differing_probes(a: list, b: list, probes: list) -> list:
    """The probes on which the two behaviours differ."""
    out = []
    for (b1, y1, s1, z1), (b2, y2, s2, z2), p in zip(a, b, probes):
        if b1 != b2 or s1 != s2 or y1.shape != y2.shape or z1.shape != z2.shape or \
                not np.array_equal(y1, y2, equal_nan=True) or not np.array_equal(z1, z2, equal_nan=True):
            out.append(p)
    return out


def behaviour_diff(a: list, b: list, probes: list) -> str:
    """'' when identical on every probe, else where the first difference shows and its size."""
    worst, where = -1.0, ""
    for (b1, y1, s1, z1), (b2, y2, s2, z2), p in zip(a, b, probes):
        if b1 != b2 or s1 != s2:
            return f"branch differs at x={p.x}, x*={p.x_star}, y={p.y}: ({b1}, {s1}) vs ({b2}, {s2})"
        for u, v, tag in ((y1, y2, "f(x)"), (z1, z2, "f(x*; theta')")):
            if u.shape != v.shape:
                return f"{tag} shape differs at x={p.x}"
            if not np.array_equal(u, v, equal_nan=True):
                d = float(np.nanmax(np.abs(u - v))) if u.size else 0.0
                if not np.isfinite(d):
                    d = np.inf
                if d > worst:
                    worst, where = d, f"{tag} differs by up to {d:.3g} (x={p.x}, x*={p.x_star}, y={p.y})"
    return where


# ---- explanations, derived by execution ----------------------------------------------------------
def _blocks_changed(a: np.ndarray, b: np.ndarray, blocks) -> list:
    out = []
    for name, sl in (("top", blocks.top), ("mid", blocks.mid), ("bottom", slice(blocks.bottom, blocks.bottom + 1))):
        if not np.array_equal(a[..., sl], b[..., sl]):
            out.append(name)
    return out


def trace(con: Construction, mc: Construction, probes: list) -> list:
    """Which intermediate quantities of the execution differ between original and mutant (any probe)."""
    b = con.blocks
    changed: set = set()
    for s in probes:
        s1, s2 = one_step(con, s.x, s.y, s.x_star), one_step(mc, s.x, s.y, s.x_star)
        for layer in range(con.N + 1):
            for blk in _blocks_changed(s1.fwd_x.post[layer], s2.fwd_x.post[layer], b):
                changed.add(f"activation {blk} of h_{layer + 1} at x before the step")
        for k in range(con.N):
            d = s1.grads[k] != s2.grads[k]
            if np.any(d):
                cols = _blocks_changed(s1.grads[k], s2.grads[k], b)
                rows = _blocks_changed(s1.grads[k].T, s2.grads[k].T, b)
                changed.add(f"gradient of W_{k + 1} (rows {'/'.join(rows)}, columns {'/'.join(cols)})")
        if s1.theta_b_post != s2.theta_b_post:
            changed.add("theta_b'")
        for blk in _blocks_changed(s1.fwd_star_post.z, s2.fwd_star_post.z, b):
            changed.add(f"z* {blk} block")
    return sorted(changed)


def _coverage_kill(mc: Construction, differing: list) -> tuple:
    """Does a claim catch the mutant when the verifier checks a triple where its behaviour differs?"""
    for p in differing:
        killed = _killed(check_claims(mc, [p]))
        if killed:
            return p, killed
    return None, []


def explain_equivalent(changed: list) -> str:
    if not changed:
        return ("no intermediate quantity changes on any probe: the entry multiplies a value that is always 0 "
                "where it sits (phi's middle block, or a unit that is 0 at x and never reached at x*)")
    if all(c.startswith("activation top of h_1") or c == "z* top block" for c in changed):
        return "only z's top block changes; g_pre reads it with weight 0 and h_post not at all"
    if all("theta_b'" in c or "bottom" in c for c in changed):
        return ("only theta_b' and the bottom channel change; the switch tests theta_b != 0 and zbar* does not "
                "read the bottom channel, so the outputs are identical")
    if all(("activation top" in c and "at x before" in c) or (c.startswith("gradient of W_") and "columns top)" in c)
           for c in changed):
        return ("only the top channel at x (before the step) and hence the gradients' top columns change; after "
                "the step x* sits in the x*-slots, which never mix into the x-slots (B_i is block lower "
                "triangular), so the changed columns are never read at x*")
    grads = [c for c in changed if c.startswith("gradient of W_")]
    if grads and len(grads) == len(changed):
        return ("only gradients change, in columns that the post-step pass at x* never reads (x and x* use "
                "disjoint top slots) or in rows whose change cannot reach zbar*: " + "; ".join(grads))
    return "the changes (" + "; ".join(changed) + ") do not reach f(x) or f(x*; theta') on any probe"


# ---- the run ----# ---- the run ---------------------------------------------------------------------------------
def _killed(results) -> list:
    return [c.id for c in results if c.verdict in (Verdict.FAIL, Verdict.UNDECIDED)]


def run(cfg: Config, per_block: int | None = None, both_signs: bool = False,
        progress: Callable[[int, int], None] | None = None, explain_all: bool = True) -> MutationReport:
    """Build cfg's construction, generate its mutants, classify (meaningful?) and check (killed?) each.

    explain_all=False skips the execution trace that explains each equivalent mutant (faster)."""
    design = Design.from_config(cfg)
    con = build(design)
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy)
    base = check_claims(con, samples)
    if _killed(base):
        raise ConfigError(f"the unmutated construction does not pass ({', '.join(_killed(base))}); "
                          "mutation testing needs a passing baseline (signed variant, r != 0)")
    probes = probe_inputs(design, samples)
    ref = behaviour(con, probes)
    report = MutationReport(design)
    mutants = all_mutants(con, per_block, cfg.seed, both_signs)
    for n, m in enumerate(mutants):
        err, differing = "", []
        try:
            mc = m.apply(con)
            beh = behaviour(mc, probes)
            diff = behaviour_diff(ref, beh, probes)
            differing = differing_probes(ref, beh, probes)
        except Exception as exc:  # noqa: BLE001 - a mutant that crashes execution changes behaviour
            mc, diff, err = None, f"execution raised {type(exc).__name__}", f"{type(exc).__name__}: {exc}"
        killed_by: list = []
        if mc is not None:
            try:
                killed_by = _killed(check_claims(mc, samples))
            except Exception as exc:  # noqa: BLE001
                err = f"claims raised {type(exc).__name__}: {exc}"
                killed_by = ["(verifier error)"]
        res = MutantResult(m.id, m.family, m.description, bool(diff), bool(killed_by), killed_by, diff, err)
        if not res.meaningful and explain_all:
            res.explanation = explain_equivalent(trace(con, mc, probes))
        elif res.meaningful and not res.killed and mc is not None:
            p, by = _coverage_kill(mc, differing)
            if p is not None:
                res.explanation = (f"sample coverage, not a blind spot: the change shows only on some triples "
                                   f"(e.g. x={p.x}, x*={p.x_star}, y={p.y}), none of which is among the run's "
                                   f"{len(samples)} samples; checking that triple, {', '.join(by)} FAIL(s)")
            else:
                res.explanation = ("a blind spot of the claims: on every triple where the outputs differ, every "
                                   "claim still passes; changes: " + "; ".join(trace(con, mc, differing)))
        report.results.append(res)
        if progress:
            progress(n + 1, len(mutants))
    return report


def render(report: MutationReport, file=None, show_equivalent: bool = False) -> None:
    out = file or sys.stdout
    d = report.design
    n, m, k = len(report.results), len(report.meaningful), len(report.killed)
    print(f"mutation testing of the verifier: N={d.N} J={d.J} L={d.L} dx={d.dx} dy={d.dy} "
          f"variant={d.variant} layout={d.layout} eps={d.eps:g} alpha={d.alpha:g} r={d.relu_grad_at_zero:g}",
          file=out)
    print(f"mutants: {n}; meaningful (behaviour changes on some probe): {m}; equivalent: {n - m} "
          f"({sum(r.killed for r in report.equivalent)} of them flagged by a claim anyway)", file=out)
    print(f"killed: {k}/{m} = {report.kill_fraction:.1%}", file=out)
    print("by family (mutants / meaningful / killed):", file=out)
    for fam, c in sorted(report.by_family().items()):
        print(f"  {fam:32s} {c['mutants']:5d} {c['meaningful']:5d} {c['killed']:5d}", file=out)
    surv = report.survivors
    print(f"survivors: {len(surv)}", file=out)
    for r in surv:
        print(f"  - {r.id} [{r.family}]: {r.behaviour_change}", file=out)
        print(f"      why: {r.explanation}", file=out)
    if show_equivalent and report.equivalent:
        print("equivalent mutants:", file=out)
        for r in report.equivalent:
            flag = f" (flagged by {', '.join(r.killed_by)})" if r.killed else ""
            print(f"  - {r.id}{flag}: {r.explanation}", file=out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m universality.mutation",
                                description="Mutation testing of the verifier: corrupt single entries and "
                                            "structural choices of the construction and report which claims catch it.")
    p.add_argument("--N", type=int, required=True)
    p.add_argument("--J", type=int, required=True)
    p.add_argument("--L", type=int, required=True)
    p.add_argument("--dx", type=int, default=1)
    p.add_argument("--dy", type=int, default=1)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--alpha", type=float, default=0.3)
    p.add_argument("--layout", choices=["auto", "paper", "compact"], default="auto")
    p.add_argument("--relu-grad-at-zero", type=float, default=1.0)
    p.add_argument("--samples", type=int, default=16,
                   help="random samples the claims check, plus 7 corners (default 16, as verify-construction)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-block", type=int, default=None,
                   help="mutate at most this many entries per (layer, block pair); default: every entry")
    p.add_argument("--both-signs", action="store_true", help="mutate zero entries to +0.5 and to -0.5")
    p.add_argument("--min-kill", type=float, default=0.95, help="exit 1 below this kill fraction (default 0.95)")
    p.add_argument("--show-equivalent", action="store_true", help="list the equivalent mutants too")
    p.add_argument("--json", action="store_true")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        cfg = Config(N=args.N, J=args.J, L=args.L, dx=args.dx, dy=args.dy, eps=args.eps, alpha=args.alpha,
                     layout=args.layout, relu_grad_at_zero=args.relu_grad_at_zero, samples=args.samples,
                     seed=args.seed)
        if args.per_block is not None and args.per_block < 1:
            raise ConfigError(f"per-block must be >= 1, got {args.per_block}")
        report = run(cfg, per_block=args.per_block, both_signs=args.both_signs,
                     explain_all=args.show_equivalent or args.json)
    except ConfigError as exc:
        print(f"mutation: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        render(report, show_equivalent=args.show_equivalent)
    return 0 if report.kill_fraction >= args.min_kill else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
