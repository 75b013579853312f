"""Bugs a real implementer could make, planted in the builder or the execution: the named claim must
FAIL at the default samples (issue 11). Before the claimed sides came from universality/reference/,
every one of these passed every claim.
"""
from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

import universality.construction.features as features
import universality.construction.network as network
import universality.execution as execution
from universality import Config
from universality.construction.network import build as _build
from universality.engine.layers import UpdatedLayers
from universality.samples import make_samples
from universality.verify import check_claims

verify_mod = sys.modules["universality.verify"]
_ENGINE = {"name": "dense"}


@pytest.fixture(autouse=True, params=["dense", "sparse"])
def engine(request):
    """Every planted bug must FAIL its claim on both engines (issue 10): each test runs twice, its
    constructions built as dense stacks or as CSR layers."""
    _ENGINE["name"] = request.param
    yield request.param
    _ENGINE["name"] = "dense"


def build(cfg):
    return _build(cfg, engine=_ENGINE["name"])

DEFAULT = Config(N=6, J=4, L=4)  # the README's example; samples = 16 (+ 7 corners)


def verdicts(con, cfg=DEFAULT) -> dict:
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy, loss=cfg.loss)
    return {c.id: c.verdict.value for c in check_claims(con, samples)}


def failing(con, cfg=DEFAULT) -> set:
    return {k for k, v in verdicts(con, cfg).items() if v == "FAIL"}


def test_baseline_passes_every_claim():
    assert set(verdicts(build(DEFAULT)).values()) == {"PASS"}


def test_bins_with_round_instead_of_floor(monkeypatch):
    def round_bin(u, cells):
        return min(max(int(round(float(u) * cells)), 0), cells - 1)

    monkeypatch.setattr(features, "axis_bin", round_bin)
    bad = failing(build(DEFAULT))
    assert {"binning", "kernel-code", "z-star-is-minus-alpha-v"} <= bad, bad


def _patched_table(edit):
    orig = network.code_table

    def table(layout, cells_x, cells_star, m, field):
        out = np.array(orig(layout, cells_x, cells_star, m, field), dtype=float, copy=True)
        edit(out)
        return out

    return table


def test_permuted_code_table(monkeypatch):
    def permute(t):  # cells (0, 0) and (1, 2) exchange their codes
        t[:, 0, 0], t[:, 1, 2] = t[:, 1, 2].copy(), t[:, 0, 0].copy()

    monkeypatch.setattr(network, "code_table", _patched_table(permute))
    bad = failing(build(DEFAULT))
    assert {"boundary", "every-cell"} <= bad, bad


def test_two_cells_share_one_code(monkeypatch):
    def share(t):  # cell (2, 3) gets the code of cell (2, 2)
        t[:, 2, 3] = t[:, 2, 2]

    monkeypatch.setattr(network, "code_table", _patched_table(share))
    res = verdicts(build(DEFAULT))
    assert res["codes-injective"] == "FAIL"
    assert res["boundary"] == "FAIL" and res["every-cell"] == "FAIL"


def test_two_cells_share_one_code_is_fail_not_undecided_at_300_samples(monkeypatch):
    def share(t):
        t[:, 0, 1] = t[:, 0, 0]

    monkeypatch.setattr(network, "code_table", _patched_table(share))
    cfg = DEFAULT.with_(samples=300)
    res = verdicts(build(cfg), cfg)
    assert res["codes-injective"] == "FAIL"


@pytest.mark.parametrize("factor", [-1.0, 2.0, 0.5])
def test_wcheck_g_wrong_sign_or_scale(factor):
    con = build(DEFAULT)
    Wg = con.Wg.copy()
    Wg[:, con.blocks.bottom] *= factor
    bad = failing(replace(con, Wg=Wg))
    assert "theta-b-value" in bad, bad


def test_stale_layer_in_the_post_step_pass_of_a_paper_layout_network(monkeypatch):
    """The post-step pass at x* uses the old W_i for one layer i, chosen as the layer of a cell pair
    that no default sample reaches (paper layout: layer 2 + j + J l answers for cell (j, l) alone)."""
    cfg = Config(N=18, J=4, L=4)  # paper layout
    con = build(cfg)
    samples = make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L)
    hit = {(con.bin_x(s.x), con.bin_star(s.x_star)) for s in samples}
    missed = [(j, l) for j in range(4) for l in range(4) if (j, l) not in hit]
    assert missed, "the default samples reach every cell: choose larger J, L"
    j, l = missed[0]
    k = 1 + j + 4 * l  # 0-based index of layer i = 2 + j + J l
    real = execution.one_step

    def stale(con_, x, y, x_star, **kw):
        st = real(con_, x, y, x_star, **kw)
        # the updated layers are W + coef D H^T (factors): layer k keeps its old weights when its
        # correction is zeroed
        Dfac = np.array(st.W_post.Dfac, copy=True)
        Dfac[k] = 0.0
        W_stale = UpdatedLayers(st.W_post.base, Dfac, st.W_post.Hfac, st.W_post.coef)
        st.fwd_star_post = execution.forward(W_stale, st.phi_star_post)
        return st

    monkeypatch.setattr(execution, "one_step", stale)
    monkeypatch.setattr(verify_mod, "single_step", stale)
    res = verdicts(con, cfg)
    assert res["every-cell"] == "FAIL", res
    # the per-sample claims cannot see it: no sample reaches that cell
    assert res["z-star-is-minus-alpha-v"] == "PASS" and res["post-update-eq3"] == "PASS"


# ---- findings must show the gap they name, by execution ------------------------------------------
def _finding(cfg, fid):
    from universality.claims import FINDINGS, Context
    from universality.claims.base import run_finding

    con = build(cfg)
    return run_finding(FINDINGS[fid], Context(con), make_samples(2, 0, cfg.J, cfg.L, cfg.dx, cfg.dy))


def test_kshot_mixed_signs_needs_an_actual_intermediate_clip(monkeypatch):
    assert _finding(DEFAULT, "kshot-mixed-signs").demonstrated
    import universality.claims.kshot as kshot
    import universality.engine.step as engine_step

    real = engine_step.forward

    def no_relu(W, phi, relu=True):  # the ReLUs removed from every forward pass (the engine's step too)
        return real(W, phi, relu=False)

    for mod in (execution, engine_step, kshot):
        monkeypatch.setattr(mod, "forward", no_relu)
    f = _finding(DEFAULT, "kshot-mixed-signs")
    assert not f.demonstrated, f.headline


def test_kshot_balanced_ce_executes_the_loss(monkeypatch):
    cfg = DEFAULT.with_(loss="ce", dy=3)
    assert _finding(cfg, "kshot-balanced-ce").demonstrated
    from universality.losses import CrossEntropy

    real = CrossEntropy.grad

    def wrong_grad(self, y, yhat):  # not the loss's derivative, but theta_b' still sees 0: the bottom
        g = np.array(real(self, y, yhat), dtype=float)  # form reads component 0 only, and only
        g[1] += float(np.asarray(y)[1])  # component 1 is off
        return g

    monkeypatch.setattr(CrossEntropy, "grad", wrong_grad)
    assert not _finding(cfg, "kshot-balanced-ce").demonstrated


@pytest.mark.parametrize("eps", [1e6, 1e7])
def test_decoder_residual_is_stable_at_large_eps(eps):
    """|U|^2 - |proj|^2 cancelled for eps >= 1e6 and decoded wrong cells (UNDECIDED or FAIL); the
    projection residual decodes every sample's cells."""
    res = {c.id: c for c in check_claims(build(DEFAULT.with_(eps=eps)),
                                         make_samples(16, 0, 4, 4))}
    assert res["v-decodes"].verdict.value == "PASS", res["v-decodes"].note


def test_round_bins_caught_on_a_2d_grid(monkeypatch):
    def round_bin(u, cells):
        return min(max(int(round(float(u) * cells)), 0), cells - 1)

    monkeypatch.setattr(features, "axis_bin", round_bin)
    cfg = Config(N=5, J=3, L=2, dx=2, samples=2)
    assert verdicts(build(cfg), cfg)["binning"] == "FAIL"


def test_every_cell_says_when_it_is_too_costly(monkeypatch):
    import universality.claims.coverage as coverage

    monkeypatch.setattr(coverage, "EVERY_CELL_FLOP_BUDGET", 0.0)
    res = {c.id: c for c in check_claims(build(DEFAULT), make_samples(1, 0, 4, 4))}
    assert res["every-cell"].verdict.value == "SKIPPED" and "budget" in res["every-cell"].note


@pytest.fixture
def wide_paths(monkeypatch):
    """The code paths of a wide top block at the default sizes: sparse telescoping products and
    design B_i, the psd certificates without dense eigenvalues, codes-injective's nearest-line search
    in reduced coordinates (issue 10: the compact layout at J = L = 1024 takes these paths)."""
    from universality.claims import coverage, structure
    from universality.reference import telescoping

    monkeypatch.setattr(telescoping, "DENSE_TOP_MAX", 2)
    monkeypatch.setattr(structure, "DENSE_EIG_MAX", 2)
    monkeypatch.setattr(coverage, "SEPARATION_GRAM_MAX", 2)


def test_wide_paths_baseline_passes(wide_paths):
    assert set(verdicts(build(DEFAULT)).values()) == {"PASS"}


def test_wide_paths_permuted_code_table(monkeypatch, wide_paths):
    def permute(t):
        t[:, 0, 0], t[:, 1, 2] = t[:, 1, 2].copy(), t[:, 0, 0].copy()

    monkeypatch.setattr(network, "code_table", _patched_table(permute))
    bad = failing(build(DEFAULT))
    assert {"boundary", "every-cell"} <= bad, bad


def test_wide_paths_two_cells_share_one_code(monkeypatch, wide_paths):
    def share(t):
        t[:, 2, 3] = t[:, 2, 2]

    monkeypatch.setattr(network, "code_table", _patched_table(share))
    res = verdicts(build(DEFAULT))
    assert res["codes-injective"] == "FAIL" and res["boundary"] == "FAIL"


def test_wide_paths_negative_top_entry_fails_psd_argument(wide_paths):
    """A negative entry in a top block: psd-argument (min entry of the sparse products) FAILs, and
    the PSD premise is still decided by a certificate (a witness or Gershgorin) or said undecided."""
    con = build(DEFAULT)
    b = con.blocks
    k, i, j = 2, b.top_star.start + 1, b.top_x.start + 2
    if _ENGINE["name"] == "dense":
        con.W[k][i, j] = -0.75
    else:
        from universality.engine.step import layers_of

        m = layers_of(con).mats[k].tolil()
        m[i, j] = -0.75
        layers_of(con).mats[k] = m.tocsr()
    res = {c.id: c for c in check_claims(con, make_samples(4, 0, 4, 4))}
    psd = res["psd-argument"]
    assert psd.verdict.value == "FAIL", psd.note
    assert "negative entry" in psd.note
    assert set(psd.computed["psd_by"]) <= {"diagonal", "Gershgorin bound",
                                           "Rayleigh quotient of a witness vector (certified < 0)"} | {
        h for h in psd.computed["psd_by"] if h.startswith("undecided")}
    assert psd.computed["psd_products"] + psd.computed["psd_undecided"] <= psd.computed["products"]

