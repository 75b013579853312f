"""One claim catalogue (issue 10): the claims listed in ``symbolic.claims.UNIFIED`` are one function that
both backends run, each backend supplying the comparator (float: residual against the forward-error
tolerance; exact: the canonical zero test) and the claimed side's ingredients (reference/ or the exact
field's own definitions). Planted bugs: the exact run of the shared function FAILs them."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from universality import Config
from universality.claims.base import CLAIMS, FLOAT, Context, Verdict
from universality.construction.fields import ExactField
from universality.construction.network import build
from universality.samples import make_samples
from universality.symbolic import claims as symbolic_claims
from universality.symbolic.run import run_symbolic

UNIFIED_IDS = {"theta-b-value", "update-values", "kernel-code", "multiplexer", "z-star-is-minus-alpha-v",
               "grad-rank-one", "post-update-eq3", "boundary", "psd-argument", "nonneg-linear-regime", "e-linear", "v-decodes",
               "kshot-eq", "permutation-invariant", "binning", "codes-injective",
               "loss-recovers-label", "every-cell", "kshot-decodes",
               "update-blocks", "second-order-zero"}


def _small(**kw) -> Config:
    base = dict(N=5, J=2, L=2, samples=1)
    base.update(kw)
    return Config(**base)


def _run(cfg, **kw):
    out = run_symbolic(cfg, make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy, loss=cfg.loss), schematic=False, **kw)
    return {c.id: c for c in out.claims}


def test_the_unified_claims_are_one_function_on_both_backends():
    assert UNIFIED_IDS <= set(symbolic_claims.UNIFIED)
    for cid, func in symbolic_claims.UNIFIED.items():
        f = CLAIMS[cid].func
        assert getattr(f, "__wrapped__", f) is func, cid  # the float registry runs the same function
        assert cid in symbolic_claims.SYMBOLIC_CLAIMS, cid
        # the exact module keeps no second definition of it
        assert not hasattr(symbolic_claims, func.__name__) or getattr(symbolic_claims, func.__name__) is func


def test_the_float_context_supplies_the_float_backend():
    con = build(_small())
    assert Context(con).backend is FLOAT and not FLOAT.exact


@pytest.mark.parametrize("variant", ["signed", "paper"])
def test_the_unified_claims_pass_exactly(variant):
    claims = _run(_small(variant=variant))
    claims.update({k: v for k, v in _run(_small(variant=variant, K=2, samples=1)).items()
                   if CLAIMS[k].scope == "task"})
    for cid in UNIFIED_IDS:
        c = claims[cid]
        if cid == "kshot-decodes":  # no exact form: SKIPPED by the shared function, with the reason
            assert c.verdict == Verdict.SKIPPED and "no exact form" in c.note
            continue
        if variant == "paper" and cid == "kshot-eq":  # intermediate ReLUs clip the paper variant's middle copies
            assert c.verdict == Verdict.FAIL and "linear product matches it exactly" in c.note
            continue
        if variant == "paper" and cid == "multiplexer":  # the paper variant's ReLUs clip zbar* to 0
            assert c.verdict == Verdict.FAIL and "no trace" in c.note
            continue
        if variant == "paper" and cid in ("z-star-is-minus-alpha-v", "post-update-eq3"):  # ... so zbar* misses them
            assert c.verdict == Verdict.FAIL and "alpha*y0" in c.computed and c.residual > 0
            continue
        if variant == "paper" and cid == "v-decodes":  # ... and the clipped copies no longer tell the cells apart
            assert c.verdict == Verdict.FAIL and "explain zbar* as well" in c.note
            continue
        if variant == "paper" and cid == "nonneg-linear-regime":  # ... because a middle unit goes negative
            assert c.verdict == Verdict.FAIL and "x, after, unit mid" in c.note
            continue
        assert c.verdict == Verdict.PASS, (cid, c.note)
        assert c.tolerance == 0 and c.residual == 0


@pytest.mark.parametrize("factor", [-1, 2])
def test_a_wrong_wcheck_g_fails_theta_b_value_exactly(factor):
    """W_g's bottom column scaled: the executed theta_b' follows it, the claimed side (the loss's own
    head u and the SymPy derivative of its value) does not: FAIL with the residual expression."""
    cfg = _small()
    con = build(cfg, ExactField())
    con.Wg[:, con.blocks.bottom] = con.Wg[:, con.blocks.bottom] * factor
    c = _run(cfg, con=con)["theta-b-value"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0
    assert "!= 0" in c.computed and "alpha" in c.computed


def test_a_wrong_executed_loss_gradient_fails_update_values_exactly(monkeypatch):
    """The engine's exact loss gradient doubled: W_g' moves twice as far, the claimed side (the SymPy
    derivative of the loss's value, not its ``grad``) catches it on the exact backend."""
    from universality.engine import exact

    orig = exact._ExactLoss.grad
    monkeypatch.setattr(exact._ExactLoss, "grad", lambda self, y, yhat: orig(self, y, yhat) * 2)
    claims = _run(_small())
    c = claims["update-values"]
    assert c.verdict == Verdict.FAIL and c.residual > 0
    assert "W_g' off its gradient step" in c.note
    # grad-rank-one's claimed error at z is the SymPy derivative too, not the executed error
    g = claims["grad-rank-one"]
    assert g.verdict == Verdict.FAIL and g.tolerance == 0 and g.residual > 0 and "!= 0" in g.computed


def test_float_and_exact_records_have_the_same_shape():
    """The shared function gives both backends the same record keys (the JSON schema reads them)."""
    from universality import verify

    cfg = _small(K=2)
    exact = _run(cfg)
    flt = {c.id: c for c in verify(cfg, claim_ids=UNIFIED_IDS, with_findings=False).claims}
    for cid in UNIFIED_IDS - {"kshot-decodes"}:  # no exact form: SKIPPED on the exact backend
        assert flt[cid].verdict == exact[cid].verdict == Verdict.PASS, cid
        a, b = flt[cid].as_dict(), exact[cid].as_dict()
        assert set(a) == set(b)
        if isinstance(a["computed"], dict):
            assert set(a["computed"]) == set(b["computed"])


def test_a_wrong_code_weight_fails_kernel_code_exactly():
    """Layer 3's top block realises another code (every (x*-cell, x-cell) entry + 1/4): the exact
    kernels no longer match the spec's code table (reference/codes.py as exact rationals), whatever the
    construction's own table says."""
    cfg = _small()
    con = build(cfg, ExactField())
    b = con.blocks
    for i in range(b.top_star.start, b.top_star.stop):
        for j in range(b.top_x.start, b.top_x.stop):
            con.W[2][i, j] += sp.Rational(1, 4)
    c = _run(cfg, con=con)["kernel-code"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0
    assert "k_i - c_{i-2}(a, b) != 0" in c.computed


def test_a_middle_unit_reading_the_top_channel_fails_the_multiplexer_exactly():
    """A middle row of layer 3 reads the first top unit: zbar != 0 before the step, the gate opens
    early and g_pre is not selected; the exact run of the shared function says FAIL."""
    cfg = _small()
    con = build(cfg, ExactField())
    b = con.blocks
    for t in range(b.dt):
        con.W[2][b.dt, t] = sp.Rational(1, 2)
    c = _run(cfg, con=con)["multiplexer"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0
    assert "before: h_post" in c.note and c.computed["branch_before"] == "h_post"
    assert c.residual > 0 and c.computed["yhat_before"] > 0  # yhat != 0 identically, sized at the run's point


def test_exact_codes_are_the_float_codes_rounded():
    from universality.reference.codes import column, column_exact

    for layout in ("compact", "paper"):
        for a, bb in [(0, 0), (1, 2), (2, 1)]:
            exact = column_exact(layout, a, bb, 3, 3, 5)
            assert np.array_equal(np.array([float(q) for q in exact]), column(layout, a, bb, 3, 3, 5))


def test_a_wrong_middle_gain_fails_z_star_exactly():
    """One middle weight doubled: the exact zbar* misses -alpha v (v from the spec's code, A_i and the
    loss's label code as exact rationals), and the record shows the residual expression."""
    cfg = _small()
    con = build(cfg, ExactField())
    b = con.blocks
    con.W[2][b.dt + 1, b.dt + 1] *= 2
    c = _run(cfg, con=con)["z-star-is-minus-alpha-v"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0
    assert "!= 0" in c.computed and "alpha" in c.computed


def _off_block_entry(con):
    """A middle unit of layer 2 reading the x* slots of the top channel (an exact 1/2 each)."""
    b = con.blocks
    for t in range(b.top_star.start, b.top_star.stop):
        con.W[1][b.dt, t] = sp.Rational(1, 2)
    return con


def test_an_off_block_entry_after_the_step_fails_post_update_eq3_exactly():
    """A middle unit of layer 2 reads the x* slots of the top channel: nothing before the step (x sits in
    the x slots), but after it the middle channel picks up the switched feature; eq. (3) from the
    weights' own telescoped A_i, B_i (diagonal blocks) does not, and the exact run says FAIL."""
    cfg = _small()
    con = _off_block_entry(build(cfg, ExactField()))
    c = _run(cfg, con=con)["post-update-eq3"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0
    assert "zbar* - eq. (3) != 0" in c.computed


def test_a_wrong_top_entry_fails_boundary_exactly():
    """One code entry of layer 3's top block changed: the exact telescoped B_2 is no longer the spec's
    [[I, 0], [G^T, I]] (codes as exact rationals); the exact run of the shared function names the product."""
    cfg = _small()
    con = build(cfg, ExactField())
    b = con.blocks
    con.W[2][b.top_star.start, b.top_x.start] += sp.Rational(1, 3)
    c = _run(cfg, con=con)["boundary"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0
    assert "telescoping product B_" in c.note and "!= 0" in c.note


def test_a_negative_top_entry_fails_psd_argument_exactly():
    """A negative entry in layer 2's top block: a product Wtilde_j ... Wtilde_N gets an entry whose sign
    the exact backend decides < 0."""
    cfg = _small()
    con = build(cfg, ExactField())
    b = con.blocks
    con.W[1][b.top_star.start, b.top_x.start] = -10
    c = _run(cfg, con=con)["psd-argument"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0
    assert c.computed["min_entry"] < 0 and "negative entry" in c.note


def test_a_negative_bottom_gain_fails_nonneg_linear_regime_exactly():
    """Layer 3's middle block negated on one unit: that unit's pre-activation changes sign across the
    layers (signed) or goes negative (paper); the exact backend decides both signs and says FAIL."""
    for variant in ("signed", "paper"):
        cfg = _small(variant=variant)
        con = build(cfg, ExactField())
        b = con.blocks
        con.W[2][b.dt, b.dt] = -con.W[2][b.dt, b.dt]
        c = _run(cfg, con=con)["nonneg-linear-regime"]
        assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0, (variant, c.note)
        assert "unit" in c.note


def test_an_affine_executed_loss_gradient_fails_e_linear_exactly(monkeypatch):
    """The engine's exact loss gradient shifted by a constant: the executed error map is affine, E(0) is
    not the zero polynomial, and the exact run of the shared function says FAIL."""
    from universality.engine import exact

    orig = exact._ExactLoss.grad
    monkeypatch.setattr(exact._ExactLoss, "grad", lambda self, y, yhat: orig(self, y, yhat) + self.F.const(0.5))
    c = _run(_small())["e-linear"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0
    assert c.computed["value_at_zero"] > 0 and "affine offset" in c.note


@pytest.mark.parametrize("loss", ["l1", "huber"])
def test_e_linear_runs_exactly_for_the_other_losses(loss):
    """Not only MSE: the exact backend runs e-linear on the loss's exact gradient with exact labels, and a
    sign or clip of the label is not linear: FAIL, as in float."""
    from universality import verify

    cfg = _small(loss=loss, dy=2, samples=2)
    c = _run(cfg)["e-linear"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.computed["linearity_residual"] > 0
    assert verify(cfg, claim_ids={"e-linear"}, with_findings=False).claim("e-linear").verdict == Verdict.FAIL


def test_an_off_block_entry_fails_kshot_eq_exactly():
    """The off-block entry of the post-update-eq3 test, on K = 2 tasks: the exact K-shot zbar* carries it,
    the formula from the weights' telescoped A_i, B_i does not."""
    cfg = _small(K=2, samples=2)
    con = _off_block_entry(build(cfg, ExactField()))
    c = _run(cfg, con=con)["kshot-eq"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0
    assert "linear product misses the formula" in c.note and "!= 0" in c.note


def test_order_dependent_averaging_fails_permutation_invariant_exactly(monkeypatch):
    """The K-shot step the claim re-runs weights its first example 11/10: the permuted tasks' exact steps
    differ from the original order's, and the exact run names the entries."""
    from universality.claims import kshot
    from universality.engine.step import maml_step

    def skewed(con, xs, ys, x_star, **kw):
        ys = [list(y) for y in ys]
        ys[0] = [v * con.F.const(1.1) for v in ys[0]]
        return maml_step(con, xs, ys, x_star, **kw)

    monkeypatch.setattr(kshot, "k_shot_step", skewed)
    c = _run(_small(K=2, samples=1))["permutation-invariant"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0
    assert "residual expression [W_" in c.note


def test_a_wrong_middle_gain_fails_v_decodes_exactly():
    """A middle gain of layer 2 tripled: the exact zbar* of a sample in the affected channel is no longer
    w(a, b) y for the spec's gains of any cell (codes and A_i as exact rationals), and the exact decoder
    says so: FAIL, no cell explains zbar* identically."""
    cfg = _small(samples=4)
    con = build(cfg, ExactField())
    b = con.blocks
    con.W[1][b.dt + 1, b.dt + 1] *= 3
    c = _run(cfg, con=con)["v-decodes"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0
    assert "no cell's gains explain zbar* identically" in c.note


def test_rounded_bins_fail_binning_exactly(monkeypatch):
    """The exact construction's feature map bins with round instead of floor: the exact run of the shared
    function finds the wrong slots at the cell edges."""
    from universality.construction import features

    def rounded(u, theta_b_is_zero, J, L, blocks):
        n = J if theta_b_is_zero else L
        k = min(int(round(float(u[0] if isinstance(u, tuple) else u) * n)), n - 1)
        return (blocks.top_x.start if theta_b_is_zero else blocks.top_star.start) + k

    monkeypatch.setattr(features, "phi_tilde_index", rounded)
    c = _run(_small())["binning"]
    assert c.verdict == Verdict.FAIL and c.residual > 0 and "feature map sets top slot" in c.note


def test_a_cell_without_a_code_fails_codes_injective_exactly():
    """Every top block stops coupling x-cell 0 to x*-cell 1: that cell pair's exact v is the zero vector
    (no code), and the exact run of the shared function names it."""
    cfg = _small()
    con = build(cfg, ExactField())
    b = con.blocks
    for k in range(cfg.N):
        con.W[k][b.top_star.start + 1, b.top_x.start] = 0
    c = _run(cfg, con=con)["codes-injective"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0
    assert "separation exactly 0" in c.note and "(0, 1) has v = 0" in c.note


def test_a_label_losing_loss_gradient_fails_loss_recovers_label_exactly(monkeypatch):
    """The engine's exact loss gradient clips the label at 1 (what Huber does): two probe labels give the
    same executed error exactly, and the exact run replays them as two exact steps with the same result."""
    from universality.engine import exact

    orig = exact._ExactLoss.grad

    def clipped(self, y, yhat):
        y = [v if (v - self.F.one).is_zero_poly() or self.F.decide(v - self.F.one) != "+" else self.F.one for v in y]
        return orig(self, np.array(y, dtype=object), yhat)

    monkeypatch.setattr(exact._ExactLoss, "grad", clipped)
    c = _run(_small())["loss-recovers-label"]
    assert c.verdict == Verdict.FAIL and c.computed["counterexample"]["same_post_update_network"] is True
    assert "give the same gradient and the same post-update network" in c.note


def test_a_wrong_code_in_one_cell_fails_every_cell_exactly():
    """Layer 3 couples only x-cell 1 to x*-cell 1 by an extra 1/4: one exact step per cell pair finds the
    kernel of that pair off the spec's code (J = L = 2: four exact steps)."""
    cfg = _small()
    con = build(cfg, ExactField())
    b = con.blocks
    con.W[2][b.top_star.start + 1, b.top_x.start + 1] += sp.Rational(1, 4)
    c = _run(cfg, con=con)["every-cell"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and (1, 1) in c.computed["failing"]


def test_every_cell_is_skipped_with_the_reason_above_the_exact_budget():
    c = _run(_small(N=4, J=3, L=2))["every-cell"]
    assert c.verdict == Verdict.SKIPPED and "6 cell pairs" in c.note and "budget" in c.note


def test_an_off_block_entry_fails_update_blocks_exactly():
    """A middle unit of layer 1 reads an x slot of the top channel: the error at that middle unit now
    reaches the top rows of layer 2's gradient, and the exact step moves entries outside the (mid, top)
    and (bottom, top) blocks (the float run FAILs it too); the exact run names them."""
    cfg = _small()
    con = build(cfg, ExactField())
    b = con.blocks
    con.W[0][b.dt, b.top_x.start] = sp.Rational(1, 2)
    c = _run(cfg, con=con)["update-blocks"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0
    assert "[layer 2, 0, " in c.note and "alpha" in c.note


def test_a_second_order_remainder_fails_second_order_zero_exactly():
    """A top row of layer 2 reads a middle unit: two updates meet, the product of the updated layers gets an
    alpha^2 term, and the exact run of the shared function shows it as a residual expression."""
    cfg = _small()
    con = build(cfg, ExactField())
    con.W[1][0, con.blocks.dt] = sp.Integer(1)
    c = _run(cfg, con=con)["second-order-zero"]
    assert c.verdict == Verdict.FAIL and c.tolerance == 0 and c.residual > 0
    assert "alpha**2" in c.computed


def test_every_claim_of_the_catalogue_is_one_function_on_both_backends():
    """Issue 10: every claim of the catalogue (the registry's) is unified; the exact module keeps no claim
    of its own and no list of claims it skips."""
    assert set(symbolic_claims.UNIFIED) == set(CLAIMS)
    assert set(symbolic_claims.SYMBOLIC_CLAIMS) == set(CLAIMS)
    assert symbolic_claims.EXACT_SKIP_REASONS == {}
    assert not hasattr(symbolic_claims, "exact_claim")


_configs = st.builds(
    Config,
    N=st.integers(4, 5), J=st.integers(1, 2), L=st.integers(1, 2), dy=st.integers(1, 2),
    variant=st.sampled_from(["signed", "paper"]), relu_grad_at_zero=st.sampled_from([1.0, 0.5, 0.0]),
    alpha=st.sampled_from([0.3, -0.7]), eps=st.sampled_from([0.1, 0.25]), samples=st.integers(0, 1),
    seed=st.integers(0, 1000), K=st.sampled_from([1, 2]),
    loss=st.sampled_from(["mse", "mse", "l1", "huber"]),
)


@given(cfg=_configs)  # examples: the profile's (tests/conftest.py: dev 15, ci 40)
def test_exact_and_float_verdicts_agree_on_small_instances(cfg):
    """The same function on both backends: where both decide a claim (PASS / FAIL), they decide it the
    same way; SKIPPED and UNDECIDED exact records say why."""
    from universality import verify

    flt = {c.id: c for c in verify(cfg, with_findings=False).claims}
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy, loss=cfg.loss)
    exact = {c.id: c for c in run_symbolic(cfg, samples, schematic=False, budget_s=None).claims}
    decided = (Verdict.PASS, Verdict.FAIL)
    for cid, c in exact.items():
        assert cid in flt, cid
        if c.verdict in decided and flt[cid].verdict in decided:
            assert c.verdict == flt[cid].verdict, (cid, c.verdict, flt[cid].verdict, c.note, flt[cid].note)
        if c.verdict in (Verdict.SKIPPED, Verdict.UNDECIDED) and c.checked:
            assert c.note, cid
