"""Exact backend: sign decisions, exact execution, exact claims, the schematic proof, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

from universality import Config, verify
from universality.claims.base import Verdict
from universality.construction.fields import ExactField
from universality.construction.network import build
from universality.samples import make_samples
from universality.engine.exact import ExactConstruction, ExactLayers, ExactRing, exact_ring_for
from universality.engine.step import forward, single_step
from universality.symbolic.budget import resolve_backend
from universality.symbolic.run import run_symbolic
from universality.symbolic.schematic import schematic_proof
from universality.symbolic.signs import Orthant, Sign, UndecidedSign, decide

from .helpers import run_cli

ALPHA = sp.Symbol("alpha", positive=True)
YNEG = sp.Symbol("y0", negative=True)
ORTH = Orthant((ALPHA, YNEG), (1, -1))


def small(**kw) -> Config:
    base = dict(N=5, J=2, L=2, samples=1)
    base.update(kw)
    return Config(**base)


def run(cfg, **kw):
    return run_symbolic(cfg, make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy), schematic=False, **kw)


def by_id(claims):
    return {c.id: c for c in claims}


# ---- sign analysis ----------------------------------------------------------------------------
@pytest.mark.parametrize("expr, sign", [
    (ALPHA + 1, Sign.POS),
    (-ALPHA * YNEG, Sign.POS),
    (ALPHA * YNEG * (1 + sp.sqrt(3)), Sign.NEG),
    (3 * ALPHA * YNEG - sp.sqrt(110) / 10 * ALPHA * YNEG, Sign.NEG),  # grouped coefficient 3 - sqrt(110)/10 > 0
    (ALPHA * YNEG * (sp.sqrt(2) * sp.sqrt(5) - sp.sqrt(10)), Sign.ZERO),
    (sp.Integer(0), Sign.ZERO),
    (sp.sqrt(2) - sp.Rational(7, 5), Sign.POS),
    (1 - ALPHA, Sign.UNDECIDED),  # changes sign on alpha > 0
    (1 / ALPHA, Sign.POS),  # a Laurent monomial (rho^-k of a symbolic ReLU'(0)) keeps its sign
    (sp.sqrt(ALPHA), Sign.UNDECIDED),  # not a (Laurent) polynomial
    (sp.Symbol("q"), Sign.UNDECIDED),  # no sign assumption
])
def test_decide(expr, sign):
    assert decide(expr, ORTH)[0] == sign


def test_forward_refuses_to_guess_an_undecided_relu():
    """The engine's forward pass on the exact backend: 1 - alpha changes sign on alpha > 0."""
    F = ExactRing((), ("alpha", "y0"))
    F.set_orthant({"alpha": 1, "y0": -1})
    layers = ExactLayers([sp.Matrix([[1, -1], [0, 1]])], F)
    with pytest.raises(UndecidedSign, match="undecided"):
        forward(layers, F.array([1, sp.Symbol("alpha")]))
    assert [str(v) for v in forward(layers, F.array([1, -sp.Symbol("alpha")])).z] == ["alpha + 1", "0"]


# ---- exact construction and execution --------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(N=6, J=4, L=4), dict(N=5, J=2, L=3, dy=2, variant="paper", eps=0.25,
                                                          relu_grad_at_zero=0.5), dict(N=4, J=2, L=2, dx=2)])
def test_exact_build_is_the_numeric_recipe(kw):
    cfg = Config(**kw)
    ce, cn = build(cfg, ExactField()), build(cfg)
    We = np.array([np.array(M.evalf(30), dtype=float) for M in ce.W])
    assert np.allclose(We, cn.W, rtol=0, atol=1e-15)
    assert np.allclose(np.array(ce.Wg, dtype=float), cn.Wg)
    assert ExactField().num(np.float64(0.3)) == sp.Rational(3, 10)


def test_exact_step_gives_minus_alpha_v_symbolically():
    cfg = Config(N=4, J=2, L=2)
    con = build(cfg, ExactField())
    F = exact_ring_for(con, ("alpha", "y0"))
    F.set_orthant({"alpha": 1, "y0": -1}, {"alpha": ALPHA, "y0": YNEG})
    st = single_step(ExactConstruction(con, F), 0.3, [F.from_sympy(YNEG)], 0.7, alpha=F.from_sympy(ALPHA),
                     r=F.one)
    zbar = [F.to_sympy(v) for v in st.z_star[con.blocks.mid]]
    assert F.to_sympy(st.theta_b_post) == -ALPHA * YNEG  # theta_b' = -alpha (prod w) e_check(y), exactly
    assert all(sp.expand(v) == 0 or v.has(ALPHA) for v in zbar)
    assert st.out_x.branch == "g_pre" and st.out_star_post.branch == "h_post"


# ---- exact claims -------------------------------------------------------------------------------
def test_symbolic_claims_pass_as_identities():
    out = run(small())
    claims = by_id(out.claims)
    proved = {"grad-rank-one", "update-blocks", "second-order-zero", "post-update-eq3",
              "z-star-is-minus-alpha-v", "kernel-code", "v-decodes", "boundary",
              "nonneg-linear-regime", "psd-argument", "e-linear", "multiplexer", "theta-b-value", "update-values",
              "binning", "codes-injective", "loss-recovers-label", "every-cell"}
    assert {c.id for c in out.claims if c.verdict == Verdict.PASS} == proved, \
        [(c.id, c.verdict, c.note) for c in out.claims]
    # every other claim of the catalogue has an exact record: SKIPPED, with the reason
    assert set(claims) == proved  # every claim of the catalogue runs exactly here (J = L = 2: every-cell too)
    assert all(c.tolerance == 0 and c.residual == 0 for c in out.claims)
    assert "degree 1 in alpha" in claims["second-order-zero"].note


def test_paper_variant_reports_the_residual_expression():
    claims = by_id(run(small(variant="paper")).claims)
    z = claims["z-star-is-minus-alpha-v"]
    assert z.verdict == Verdict.FAIL
    assert "alpha*y0" in z.computed and z.residual > 0
    assert claims["second-order-zero"].verdict == Verdict.PASS
    assert claims["multiplexer"].verdict == Verdict.FAIL


def test_relu_grad_zero_collapses_exactly():
    claims = by_id(run(small(relu_grad_at_zero=0)).claims)
    assert claims["e-linear"].verdict == Verdict.FAIL
    assert "theta_b' = 0" in claims["e-linear"].note


def test_corrupted_construction_gives_a_nonzero_residual_expression():
    """An entry off the block diagonal (top row <- middle unit, layer 2) lets two updates meet: the
    second-order remainder becomes a nonzero polynomial in alpha^2, and the verifier says so."""
    cfg = small()
    con = build(cfg, ExactField())
    con.W[1][0, con.blocks.dt] = sp.Integer(1)
    so = by_id(run(cfg, con=con).claims)["second-order-zero"]
    assert so.verdict == Verdict.FAIL
    assert "alpha**2*y0**2" in so.computed and so.residual > 0


def test_corrupted_middle_weight_breaks_z_star_and_telescoping_not_eq3():
    """A doubled middle gain (the lead's decision, issue 10): eq. (3) is a statement about the network as
    built, with A_i, B_i telescoped from its weights on both backends, so post-update-eq3 PASSes exactly
    (as it does in float); z-star-is-minus-alpha-v and boundary, which hold the weights to the spec's
    A_i, FAIL it, on both backends."""
    cfg = small()
    con = build(cfg, ExactField())
    b = con.blocks
    con.W[2][b.dt + 1, b.dt + 1] *= 2
    claims = by_id(run(cfg, con=con).claims)
    assert claims["post-update-eq3"].verdict == Verdict.PASS
    assert claims["post-update-eq3"].residual == 0 and claims["post-update-eq3"].tolerance == 0
    for cid in ("z-star-is-minus-alpha-v", "boundary"):
        assert claims[cid].verdict == Verdict.FAIL, cid
        assert "!= 0" in str(claims[cid].computed) or claims[cid].residual > 0
    assert claims["second-order-zero"].verdict == Verdict.PASS
    # the float backend says the same on the same mutant
    fcon = build(cfg)
    fcon.W[2][b.dt + 1, b.dt + 1] *= 2
    from universality.verify import check_claims

    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy)
    flt = {c.id: c.verdict for c in check_claims(fcon, samples)}
    assert flt["post-update-eq3"] == Verdict.PASS
    assert flt["z-star-is-minus-alpha-v"] == flt["boundary"] == Verdict.FAIL


def test_mixed_sign_labels_fall_back_to_exact_labels():
    cfg = small(dy=2, samples=3)
    out = run(cfg)
    assert all(c.verdict in (Verdict.PASS, Verdict.SKIPPED) for c in out.claims) and out.passed


def test_budget_cuts_with_a_note():
    cfg = small(samples=4)
    out = run(cfg, budget_s=0.05)
    assert out.cut and not out.passed
    assert "cut at the 0.05 s budget" in out.note


# ---- schematic proof ---------------------------------------------------------------------------------
def test_schematic_proof_passes_every_step():
    steps = schematic_proof()
    ids = [s.id for s in steps]
    assert all(i.startswith("schematic-") for i in ids) and len(ids) >= 8
    assert {"schematic-products-of-updates-vanish", "schematic-induction-step", "schematic-telescoping"} <= set(ids)
    assert all(s.verdict == Verdict.PASS for s in steps), [(s.id, s.residual) for s in steps]


def test_schematic_proof_fails_when_updates_touch_the_top_block():
    steps = {s.id: s for s in schematic_proof(((0, 0), (1, 0), (2, 0)))}
    bad = steps["schematic-products-of-updates-vanish"]
    assert bad.verdict == Verdict.FAIL and "counterexample" in bad.residual
    assert steps["schematic-induction-step"].verdict == Verdict.FAIL


# ---- backends, report, CLI --------------------------------------------------------------------------
def test_report_includes_symbolic_results():
    rep = verify(small(), backend="both", with_findings=False)
    d = rep.as_dict()
    assert d["backend"]["ran"] == "both" and d["symbolic"]["passed"] is True
    # every claim of the catalogue has an exact record, in the same order: proved, or SKIPPED with the
    # reason (loss-recovers-label is exact on its own; binning, codes-injective, every-cell are float sweeps)
    assert [c["id"] for c in d["symbolic"]["claims"]] == [c["id"] for c in d["claims"]
                                                           if c["backend"] == "numeric"]
    skipped = {c["id"] for c in d["symbolic"]["claims"] if c["verdict"] == "SKIPPED"}
    assert skipped == set()
    # one record schema whatever the backend: the exact verdicts are in "claims" too, marked
    exact = [c for c in d["claims"] if c["backend"] == "symbolic"]
    assert [c["id"] for c in exact] == [c["id"] for c in d["symbolic"]["claims"]]
    assert {k for c in d["claims"] for k in c} == set(exact[0])
    assert all(s["id"].startswith("schematic-") for s in d["symbolic"]["schematic"])
    assert rep.passed


def test_auto_backend_falls_back_to_numeric_for_large_sizes():
    ran, note = resolve_backend(Config(N=40, J=6, L=6), "auto", 60)
    assert ran == "numeric" and "numeric only" in note
    assert resolve_backend(Config(N=4, J=2, L=2), "auto", 60)[0] == "both"


def test_cli_symbolic_backend_json():
    p = run_cli("--N", "4", "--J", "2", "--L", "2", "--samples", "1", "--backend", "symbolic", "--json",
                "--no-findings")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["claims"] and {c["backend"] for c in d["claims"]} == {"symbolic"}
    assert [c["id"] for c in d["claims"]] == [c["id"] for c in d["symbolic"]["claims"]]
    assert d["symbolic"]["passed"] and d["backend"]["ran"] == "symbolic"


def test_cli_refuses_a_symbolic_run_over_budget():
    p = run_cli("--N", "40", "--J", "6", "--L", "6", "--backend", "symbolic")
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "symbolic-budget" in p.stderr


def test_identity_zero_test_is_canonical_and_honest():
    from universality.symbolic.claims import ExactContext, identity

    ctx = ExactContext(None, ALPHA, 1, {ALPHA: 0.3})
    assert identity(ctx, sp.Matrix([ALPHA * (sp.sqrt(6) - sp.sqrt(2) * sp.sqrt(3))]), "0", "r").verdict == Verdict.PASS
    fail = identity(ctx, sp.Matrix([ALPHA * (sp.sqrt(6) - sp.sqrt(2))]), "0", "r")
    assert fail.verdict == Verdict.FAIL and "alpha" in fail.computed and fail.residual > 0
    assert identity(ctx, sp.Matrix([sp.exp(ALPHA)]), "0", "r").verdict == Verdict.UNDECIDED


def test_cli_both_prints_the_exact_tables():
    p = run_cli("--N", "4", "--J", "2", "--L", "2", "--samples", "0", "--backend", "both", "--no-findings")
    assert p.returncode == 0, p.stderr
    assert "Exact (SymPy) proofs" in p.stdout and "Schematic proof for every N" in p.stdout
    assert "backend: both" in p.stdout and "schematic-induction-step" in p.stdout


def test_symbolic_relu_grad_proves_the_compensation_for_every_r():
    """With ReLU'(0) = rho^2 a symbol (construction A_i / r^i and backprop), zbar* = max(-alpha v, 0)
    still holds identically: the 1/r^i compensation is exact for every r > 0."""
    out = run(small(), relu="symbol")
    assert out.relu == "symbol" and all(c.verdict in (Verdict.PASS, Verdict.SKIPPED) for c in out.claims)
    assert "rho" in by_id(out.claims)["e-linear"].computed["theta_b_post"]


def test_an_undecided_sign_after_the_step_leaves_the_gradient_claims_decided(monkeypatch):
    """Issue 11 item 6: a sign the exact backend cannot decide in the pass at x* makes UNDECIDED only the
    claims that read that pass; grad-rank-one, update-blocks and second-order-zero are still proved."""
    from universality.samples import make_samples
    from universality.symbolic.run import run_symbolic
    from universality.symbolic.signs import UndecidedSign

    samples = make_samples(1, 0, 1, 2)
    real = ExactConstruction.phi

    def undecided_after(self, u, theta_b):
        if u == samples[0].x_star and not self.F.scalar(theta_b).is_zero_poly():  # the pass at x*, after
            raise UndecidedSign("x*, after: feature switch theta_b == 0", self.F.to_sympy(theta_b), "planted")
        return real(self, u, theta_b)

    monkeypatch.setattr(ExactConstruction, "phi", undecided_after)
    cfg = Config(N=4, J=1, L=2, samples=1)
    sym = run_symbolic(cfg, samples, schematic=False, budget_s=None)
    v = {c.id: c.verdict.value for c in sym.claims}
    for cid in ("grad-rank-one", "update-blocks", "second-order-zero"):
        assert v[cid] == "PASS", (cid, v)
    for cid in ("post-update-eq3", "z-star-is-minus-alpha-v", "kernel-code"):
        assert v[cid] == "UNDECIDED", (cid, v)


def test_kshot_claims_run_on_the_exact_kshot_step():
    """K > 1: the engine's exact K-shot step; kshot-eq and permutation-invariant are proved exactly, the
    paper variant's clipped middle coordinates make kshot-eq FAIL with the linear product still exact."""
    out = run(small(K=2, samples=2))
    c = by_id(out.claims)
    assert c["kshot-eq"].verdict == Verdict.PASS and c["permutation-invariant"].verdict == Verdict.PASS
    assert c["kshot-eq"].checked == 2 and "exactly equal" in c["permutation-invariant"].note
    assert c["kshot-decodes"].verdict == Verdict.SKIPPED and c["kshot-decodes"].note
    bad = by_id(run(small(K=2, samples=2, variant="paper")).claims)["kshot-eq"]
    assert bad.verdict == Verdict.FAIL and "linear product matches it exactly" in bad.note


def test_instances_keep_the_x_slot_cell_of_x_star_when_the_switch_does_not_flip():
    """With ReLU'(0) = 0, theta_b' = 0: the switch stays off and phi(x*) uses the x slot, bin_J(x*).
    Grouping samples by (bin_J x, bin_L x*) alone proved the sample x = x* with a representative whose
    x* sat in another x slot (a wrong PASS); the instance key now holds bin_J(x*) too, and post-update-eq3
    FAILs exactly as the numeric run does (gap: r = 0 collapses)."""
    cfg = Config(N=4, J=2, L=1, relu_grad_at_zero=0.0, samples=0, seed=0)
    exact = by_id(run(cfg).claims)["post-update-eq3"]
    assert exact.verdict == Verdict.FAIL, exact.counts
    assert verify(cfg, with_findings=False).claim("post-update-eq3").verdict == Verdict.FAIL


def test_the_exact_comparator_is_the_canonical_zero_test():
    from universality.claims.base import compare_exact

    F = ExactRing((2, 3), ("alpha",))
    a = F.from_sympy(sp.Symbol("alpha"))
    zero = a * F.from_sympy(sp.sqrt(6)) - a * F.from_sympy(sp.sqrt(2)) * F.from_sympy(sp.sqrt(3))
    assert zero.is_zero_poly() and compare_exact([("r", zero)], "0", "r").verdict == Verdict.PASS
    off = a * F.from_sympy(sp.sqrt(6) - sp.sqrt(2))
    chk = compare_exact([("r", off)], "0", "r", point={"alpha": 0.3})
    assert chk.verdict == Verdict.FAIL and chk.tolerance == 0 and "alpha" in chk.computed
    assert abs(chk.residual - 0.3 * (6**0.5 - 2**0.5)) < 1e-12
