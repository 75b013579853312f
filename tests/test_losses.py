"""Section 6: every loss's value/gradient, the g_pre head it builds, and loss-recovers-label."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from universality import Config, ConfigError, build, one_step, verify
from universality.claims.base import Context, Verdict
from universality.claims.loss_claims import exact_gradient_map, loss_recovers_label, symbolic_gradient_map
from universality.claims.one_step import error_at_z
from universality.execution import forward
from universality.losses import LOSSES, get_loss
from universality.samples import make_samples

from .helpers import run_cli

ALL = sorted(LOSSES)
RECOVERS = {"mse", "ce"}


def _cfg(loss: str, dy: int = 1, **kw) -> Config:
    if loss == "ce":
        dy = max(dy, 2)
    return Config(N=kw.pop("N", 6), J=kw.pop("J", 3), L=kw.pop("L", 2), loss=loss, dy=dy,
                  samples=kw.pop("samples", 2), **kw)


def _label(loss, rng, dy):
    return get_loss(loss).sample_label(rng, dy)


@given(loss=st.sampled_from(ALL), dy=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_grad_is_the_derivative_of_value(loss, dy, seed):
    """loss.grad (what execution uses) is the derivative of loss.value (central differences)."""
    lo = get_loss(loss)
    dy = max(dy, 2) if loss == "ce" else dy
    rng = np.random.default_rng(seed)
    y = lo.sample_label(rng, dy)
    yhat = rng.uniform(-2, 2, dy)
    # stay away from the kinks of l1 / hinge / huber
    if loss in ("l1", "huber"):
        r = yhat - y
        r = np.where(np.abs(np.abs(r) - (1.0 if loss == "huber" else 0.0)) < 1e-3, r + 0.01, r)
        yhat = y + r
    if loss == "hinge":
        m = np.sign(y) * yhat
        yhat = np.where(np.abs(m - 1) < 1e-3, yhat + 0.01, yhat)
    h = 1e-6
    fd = np.array([(lo.value(y, yhat + h * e) - lo.value(y, yhat - h * e)) / (2 * h) for e in np.eye(dy)])
    np.testing.assert_allclose(lo.grad(y, yhat), fd, atol=1e-5)


@given(C=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_ce_gradient_is_softmax_minus_y_on_the_simplex(C, seed):
    lo = get_loss("ce")
    rng = np.random.default_rng(seed)
    y = rng.dirichlet(np.ones(C))
    yhat = rng.normal(size=C)
    sm = np.exp(yhat) / np.exp(yhat).sum()
    np.testing.assert_allclose(lo.grad(y, yhat), sm - y, atol=1e-14)
    # at 0 off the simplex: y and y + t 1 give the same gradient (the singular direction)
    np.testing.assert_allclose(lo.grad(y + 0.7, np.zeros(C)), lo.grad(y, np.zeros(C)), atol=1e-14)


@given(loss=st.sampled_from(ALL), dy=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_head_realises_the_three_channel_error(loss, dy, seed):
    """The executed error at z (real forward, W_g, loss.grad) is [0; e_bar(y); e_check(y)] (eq. (2))."""
    cfg = _cfg(loss, dy)
    con = build(cfg)
    b = con.blocks
    rng = np.random.default_rng(seed)
    y = _label(loss, rng, cfg.dy)
    x = tuple(rng.uniform(0, 1, cfg.dx))
    z = forward(con.W, con.phi(x, 0.0)).z
    assert not np.any(con.Wg @ z)  # yhat = 0 before the step
    e = error_at_z(con, z, y)
    assert not np.any(e[b.top])
    np.testing.assert_allclose(e[b.mid], con.e_bar(y), atol=1e-12)
    assert e[b.bottom] == pytest.approx(con.e_check(y), abs=1e-12)


@pytest.mark.parametrize("loss", ALL)
def test_loss_recovers_label_verdicts(loss):
    con = build(_cfg(loss, 2))
    chk = loss_recovers_label(Context(con))
    if loss in RECOVERS:
        assert chk.verdict == Verdict.PASS, chk.note
    else:
        assert chk.verdict == Verdict.FAIL
        ce = chk.computed["counterexample"]
        assert not np.array_equal(ce["y_a"], ce["y_b"])
        assert ce["same_post_update_network"] is True
        assert chk.computed["exact"]["collision"] is not None


def test_ce_report_states_singular_on_R_C():
    con = build(_cfg("ce", 3))
    chk = loss_recovers_label(Context(con))
    sym = chk.computed["exact"]
    assert sym["det_jacobian"] == "0" and sym["rank"] == 2 and sym["rank_on_sum_zero_directions"] == 2
    assert sym["kernel_contains_ones"] and sym["equals_softmax_minus_y_on_simplex"]
    assert "singular on all of R^C" in chk.note and "only on the simplex" in chk.note
    assert chk.computed["executed"]["off_simplex_pair_error_difference"] < 1e-12


def test_symbolic_theorem_6_1_and_negative_cases():
    mse = symbolic_gradient_map(get_loss("mse"), 2)
    assert mse["linear_on_domain"] and mse["injective_on_domain"] and mse["det_jacobian"] == "1"
    for name in ("l1", "hinge", "huber"):
        s = symbolic_gradient_map(get_loss(name), 1)
        assert s["linear_on_domain"] is False and s["collision"] is not None
    assert symbolic_gradient_map(get_loss("hinge"), 1)["margin_hinge_with_real_label_grad_at_0"] == "-y"


@given(seed=st.integers(0, 10_000), C=st.integers(2, 5))
def test_ce_samples_lie_on_the_simplex(seed, C):
    for s in make_samples(4, seed, 3, 2, 1, C, loss="ce"):
        y = np.asarray(s.y)
        assert np.all(y >= 0) and abs(y.sum() - 1) < 1e-12


@given(loss=st.sampled_from(ALL), seed=st.integers(0, 1000))
def test_one_step_runs_for_every_loss_and_eq3_holds(loss, seed):
    """The mechanics claims hold for every loss (the label map is what differs)."""
    rep = verify(_cfg(loss, 2, seed=seed), claim_ids={"post-update-eq3", "update-blocks", "second-order-zero"},
                 with_findings=False)
    assert {c.verdict for c in rep.claims} == {Verdict.PASS}


@pytest.mark.parametrize("loss", ALL)
def test_verify_per_loss(loss):
    rep = verify(_cfg(loss, 2), with_findings=False)
    verdicts = {c.id: c.verdict for c in rep.claims}
    assert rep.construction["loss"] == loss
    if loss in RECOVERS:
        assert rep.passed, [(c.id, c.verdict, c.note) for c in rep.claims if c.verdict != Verdict.PASS]
    else:
        assert verdicts["loss-recovers-label"] == Verdict.FAIL
        assert verdicts["v-decodes"] == Verdict.FAIL and not rep.passed


def test_l1_counterexample_is_two_real_steps():
    con = build(_cfg("l1"))
    a = one_step(con, (0.2,), [1.0], (0.8,))
    b = one_step(con, (0.2,), [2.0], (0.8,))
    assert np.array_equal(a.W_post, b.W_post) and a.theta_b_post == b.theta_b_post


def test_config_validation():
    with pytest.raises(ConfigError, match="dy = C >= 2"):
        Config(N=6, J=4, L=4, loss="ce")
    with pytest.raises(ConfigError, match="K must be >= 1"):
        Config(N=6, J=4, L=4, K=0)
    with pytest.raises(ConfigError, match="K \\* samples must be"):
        Config(N=6, J=4, L=4, K=10**6, samples=2)
    with pytest.raises(ConfigError, match="loss must be one of"):
        Config(N=6, J=4, L=4, loss="nope")


def test_cli_loss():
    r = run_cli("--N", "6", "--J", "3", "--L", "2", "--loss", "ce", "--dy", "3", "--samples", "2",
                "--json", "--no-findings")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["construction"]["loss"] == "ce" and doc["construction"]["K"] == 1
    r = run_cli("--N", "6", "--J", "3", "--L", "2", "--loss", "l1", "--samples", "1", "--no-findings")
    assert r.returncode == 1 and "loss-recovers-label" in r.stdout
    r = run_cli("--N", "6", "--J", "3", "--L", "2", "--loss", "ce")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "dy = C >= 2" in r.stderr


@given(loss=st.sampled_from(ALL), seed=st.integers(0, 10_000))
def test_exact_gradient_matches_numeric(loss, seed):
    """loss.grad on SymPy rationals (an exact run) agrees with the float64 gradient."""
    import sympy as sp

    lo = get_loss(loss)
    rng = np.random.default_rng(seed)
    y = lo.sample_label(rng, 2)
    yhat = rng.uniform(-2, 2, 2)
    exact = lo.grad(sp.Matrix([sp.Rational(repr(float(v))) for v in y]),
                    sp.Matrix([sp.Rational(repr(float(v))) for v in yhat]))
    np.testing.assert_allclose(np.array([float(v) for v in exact]), lo.grad(y, yhat), atol=1e-12)


# --- the claimed side without SymPy (reference/lossdiff.py) -----------------------------------------

@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dy", [1, 2, 3])
def test_exact_map_agrees_with_the_sympy_proof(name, dy):
    """The rational evaluation on probes (the claim's path) and SymPy's symbolic derivative of
    loss.sympy_value (a proof over all labels) give the same verdicts and the same matrix."""
    loss = get_loss(name)
    if name == "ce" and dy < 2:
        return
    ex, sy = exact_gradient_map(loss, dy), symbolic_gradient_map(loss, dy)
    assert ex["linear_on_domain"] == sy["linear_on_domain"]
    assert ex["injective_on_domain"] == sy["injective_on_domain"]
    assert (ex["collision"] is None) == (sy["collision"] is None)
    if "det_jacobian" in sy and ex["linear_on_domain"]:
        assert ex["det_jacobian"] == sy["det_jacobian"]
    if name == "ce":
        assert ex["rank"] == sy["rank"] and ex["rank_on_sum_zero_directions"] == sy["rank_on_sum_zero_directions"]
        import sympy as sp

        assert [[sp.Rational(v) for v in row] for row in ex["jacobian"]] == sp.Matrix(
            sp.sympify(sy["jacobian"])).tolist()
    if name == "hinge":
        assert ex["margin_hinge_with_real_label_grad_at_0"] == sy["margin_hinge_with_real_label_grad_at_0"] == "-y"


@settings(deadline=None, max_examples=40)
@given(name=st.sampled_from(ALL), dy=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_lossdiff_is_the_derivative_of_the_sympy_formula(name, dy, seed):
    """The forward-mode AD of reference/lossdiff.py equals SymPy's derivative of loss.sympy_value (the
    formula written in losses.py) at random points, and loss.grad (the executed gradient)."""
    import sympy as sp

    from universality.reference import lossdiff

    loss = get_loss(name)
    if name == "ce" and dy < 2:
        dy = 2
    rng = np.random.default_rng(seed)
    y = rng.dirichlet(np.ones(dy)) if name == "ce" else rng.standard_normal(dy) * 2
    yh = rng.standard_normal(dy) * 2
    ys, yhs = sp.symbols(f"y0:{dy}", real=True), sp.symbols(f"h0:{dy}", real=True)
    ell = loss.sympy_value(list(ys), list(yhs))
    sub = {**dict(zip(ys, map(float, y))), **dict(zip(yhs, map(float, yh)))}
    want = np.array([float(sp.diff(ell, v).subs(sub).evalf()) for v in yhs])
    got = lossdiff.gradient(loss, y, yh)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, np.asarray(loss.grad(y, yh), dtype=float), rtol=1e-12, atol=1e-12)
    g0, exact = lossdiff.exact_gradient_at_zero(loss, y)
    assert exact
    sub0 = {**{v: sp.Rational(float(a)) for v, a in zip(ys, y)}, **{v: 0 for v in yhs}}
    assert [sp.Rational(q.numerator, q.denominator) for q in g0] == [
        sp.simplify(sp.diff(ell, v).subs(sub0)) for v in yhs]


def test_default_path_imports_no_sympy():
    """The default example runs without importing SymPy (issue 10: its import alone was ~0.5 s) or Numba."""
    import subprocess
    import sys

    code = ("import sys; from universality.verify import verify; "
            "r = verify(N=6, J=4, L=4); assert r.passed; print('sympy' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # nor Numba (about 0.4 s to import): only the sparse engine's compiled kernels need it
    assert out.stdout.strip() == "False False"


def test_planted_wrong_lossdiff_formula_fails_the_label_claim(monkeypatch):
    """A reference formula that loses the label (the claimed side: L1's instead of MSE's) makes
    loss-recovers-label FAIL for MSE: the exact side is a real computation, not a restatement."""
    from universality.reference import lossdiff

    monkeypatch.setitem(lossdiff.FORMULAS, "mse", lossdiff.FORMULAS["l1"])
    from universality.claims import loss_claims

    loss_claims._exact_map.cache_clear()
    try:
        chk = loss_recovers_label(Context(build(_cfg("mse", 2))))
    finally:
        loss_claims._exact_map.cache_clear()
    assert chk.verdict == Verdict.FAIL
    assert chk.computed["exact"]["collision"] is not None


def test_planted_wrong_loss_grad_fails_against_lossdiff(monkeypatch):
    """A hand-written loss.grad that is not the formula's derivative (the executed side) FAILs
    grad-rank-one and update-values, whose claimed side is reference/lossdiff.py's AD."""
    from universality.losses import MSE

    monkeypatch.setattr(MSE, "grad", lambda self, y, yhat: 2.0 * (yhat - y))
    rep = verify(_cfg("mse", 1), claim_ids={"grad-rank-one", "update-values"}, with_findings=False)
    assert {c.id: c.verdict for c in rep.claims} == {"grad-rank-one": Verdict.FAIL, "update-values": Verdict.FAIL}


@pytest.mark.parametrize("loss, dy", [("ce", 2), ("l1", 1), ("hinge", 2), ("huber", 2)])
def test_exact_backend_runs_every_loss(loss, dy):
    """The exact backend runs the loss's own gradient exactly (engine/exact.py) and its claims use the
    loss's label code u(y) = H^T grad l(y, 0): every loss runs, and where both backends decide a
    claim they agree; what the exact catalogue does not state for a loss is SKIPPED with the reason."""
    rep = verify(_cfg(loss, dy, N=4, J=2, L=1, samples=3), backend="both", with_findings=False)
    assert rep.backend == "both" and rep.symbolic is not None
    num = {c.id: c for c in rep.claims}
    exact = {c.id: c for c in rep.symbolic.claims}
    decided = (Verdict.PASS, Verdict.FAIL)
    for cid, c in exact.items():
        if c.verdict in decided and num[cid].verdict in decided:
            assert c.verdict == num[cid].verdict, (cid, c.verdict, num[cid].verdict, c.note)
        if c.verdict == Verdict.SKIPPED:
            assert c.note, cid
    if loss == "ce":  # linear on the simplex only: the float run's simplex check
        assert exact["e-linear"].verdict == Verdict.SKIPPED and "simplex" in exact["e-linear"].note
    else:  # the exact backend runs e-linear for every real-label loss (issue 10): a sign / clip is not linear
        assert exact["e-linear"].verdict == num["e-linear"].verdict == Verdict.FAIL
    assert exact["post-update-eq3"].verdict == Verdict.PASS
    r = run_cli("--N", "4", "--J", "2", "--L", "1", "--loss", "huber", "--dy", "2", "--backend", "symbolic",
                "--no-findings", "--samples", "2")
    assert r.returncode in (0, 1) and "Exact (SymPy) proofs" in r.stdout, r.stderr
