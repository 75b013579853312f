"""verify-construction --check DIR: a construction built elsewhere, verified from its export."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import configs
from universality import Config, build, export
from universality.check import EXTERNAL_CLAIMS, check_external, load
from universality.cli import main
from universality.samples import make_samples
from universality.verify import check_claims


def _export(con, folder: Path, samples: int = 2, codes: bool = True) -> Path:
    d = con.design
    export.write(con, make_samples(samples, 0, d.J, d.L, d.dx, d.dy, loss=d.loss), folder)
    if not codes:
        meta = json.loads((folder / "construction.json").read_text())
        meta.pop("code_table")
        (folder / "construction.json").write_text(json.dumps(meta))
    return folder


def _verdicts(results) -> dict:
    return {r.id: r.verdict.value for r in results}


@settings(max_examples=12)
@given(cfg=configs(samples=1), codes=st.booleans())
def test_every_export_of_the_tool_passes_check(tmp_path_factory, cfg, codes):
    """Over layouts, variants, dy, dx, eps, alpha and r: --check gives each shared claim the verdict the
    tool's own run gives (all PASS for the signed variant; the paper variant keeps its sign gap)."""
    con = build(cfg)
    folder = _export(con, tmp_path_factory.mktemp("exp"), codes=codes)
    got = _verdicts(check_external(load(folder), samples=cfg.samples, seed=cfg.seed))
    own = _verdicts(check_claims(con, make_samples(cfg.samples, cfg.seed, cfg.J, cfg.L, cfg.dx, cfg.dy)))
    if cfg.variant == "signed":
        assert set(got.values()) == {"PASS"}, got
    for cid in EXTERNAL_CLAIMS:
        if cid in own:
            assert got[cid] == own[cid], (cid, got[cid], own[cid])


def test_check_ce_dy3_and_dx2(tmp_path):
    for k, cfg in enumerate([Config(N=6, J=2, L=3, dy=3, loss="ce", samples=2),
                             Config(N=5, J=2, L=2, dx=2, dy=2, samples=2)]):
        folder = _export(build(cfg), tmp_path / f"e{k}")
        res = _verdicts(check_external(load(folder), samples=2))
        assert set(res.values()) == {"PASS"}, (cfg, res)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return _export(build(Config(N=6, J=3, L=3)), tmp_path_factory.mktemp("good"))


def _corrupt(src: Path, dst: Path, edit, codes: bool = True) -> Path:
    dst.mkdir()
    data = dict(np.load(src / "construction.npz"))
    edit(data)
    np.savez(dst / "construction.npz", **data)
    meta = json.loads((src / "construction.json").read_text())
    if not codes:
        meta.pop("code_table")
    (dst / "construction.json").write_text(json.dumps(meta))
    return dst


def _failing(folder) -> set:
    return {r.id for r in check_external(load(folder), samples=4) if r.verdict.value == "FAIL"}


def test_clean_export_passes(good):
    assert main(["--check", str(good)]) == 0


def test_perturbed_entries_fail_the_right_claim(good, tmp_path):
    meta = json.loads((good / "construction.json").read_text())
    mid0, bottom, top_star0 = meta["blocks"]["middle"][0], meta["blocks"]["bottom"][0], meta["blocks"]["top_star"][0]

    def mid_bottom(d):
        d["W"][2, mid0, bottom] = 0.5

    def mid_top(d):
        d["W"][2, mid0, 0] = 0.5

    def top_code(d):  # one (x*-cell, x-cell) entry of Wtilde_3: B_2 realises another code than declared
        d["W"][2, top_star0 + 1, 1] += 0.25

    assert "post-update-eq3" in _failing(_corrupt(good, tmp_path / "a", mid_bottom))
    assert {"multiplexer", "update-blocks"} <= _failing(_corrupt(good, tmp_path / "b", mid_top))
    assert "kernel-code" in _failing(_corrupt(good, tmp_path / "c", top_code))


def test_code_collision_fails_codes_injective(good, tmp_path):
    """Two cells realise one code (no code table declared): codes-injective FAILs with separation 0."""
    meta = json.loads((good / "construction.json").read_text())
    x0, s0 = meta["blocks"]["top_x"][0], meta["blocks"]["top_star"][0]
    codes = np.asarray(meta["code_table"])

    def collide(d):  # cell (1, 0) takes cell (0, 0)'s code in every B_i
        for c in range(codes.shape[0]):
            i = c + 2
            delta = codes[c, 0, 0] - codes[c, 1, 0]
            d["W"][i - 1, s0 + 0, x0 + 1] -= delta  # Wtilde_i carries G_{i-1}^T - G_i^T
            d["W"][i, s0 + 0, x0 + 1] += delta

    folder = _corrupt(good, tmp_path / "c", collide, codes=False)
    res = {r.id: r for r in check_external(load(folder), samples=2)}
    assert res["codes-injective"].verdict.value == "FAIL", res["codes-injective"].note
    assert "exactly 0" in res["codes-injective"].note
    assert main(["--check", str(folder)]) == 1


def test_wg_sign_flip_fails(good, tmp_path):
    """W_g's (-) copies negated: e_bar = [y; y], the ReLUs clip both copies of one sign."""
    meta = json.loads((good / "construction.json").read_text())
    dy, m = meta["dy"], meta["N"] - 2
    mid0 = meta["blocks"]["middle"][0]

    def flip(d):
        for c in range(m):
            col = mid0 + (c * 2 + 1) * dy
            d["Wg"][:, col:col + dy] *= -1

    assert "z-star-is-minus-alpha-v" in _failing(_corrupt(good, tmp_path / "f", flip))


def test_bad_input_exits_2(tmp_path, capsys):
    assert main(["--check", str(tmp_path / "missing")]) == 2
    (tmp_path / "e").mkdir()
    np.savez(tmp_path / "e" / "construction.npz", W=np.zeros((3, 5, 5)), Wg=np.zeros((1, 5)), alpha=0.3)
    assert main(["--check", str(tmp_path / "e"), "--J", "1", "--L", "1", "--dy", "1"]) == 2  # N < 4
    (tmp_path / "f").mkdir()
    np.savez(tmp_path / "f" / "construction.npz", W=np.zeros((4, 10, 10)), Wg=np.zeros((1, 10)), alpha=0.3)
    assert main(["--check", str(tmp_path / "f")]) == 2  # no json and no --J
    assert main(["--check", str(tmp_path / "f"), "--J", "2", "--L", "2", "--dy", "1"]) == 2  # width misfit
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 4


def _doc_script() -> str:
    text = (Path(__file__).resolve().parents[1] / "docs" / "check.md").read_text(encoding="utf-8")
    blocks = text.split("```python\n")
    assert len(blocks) == 2, "docs/check.md must hold exactly one python block"
    return blocks[1].split("```")[0]


def test_docs_pytorch_example_passes_check(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    exec(compile(_doc_script(), "docs/check.md", "exec"), {"__name__": "docs_check"})
    assert main(["--check", "mine", "--samples", "4"]) == 0
    # the same weights with PyTorch's ReLU'(0) = 0: the construction collapses, exit 1
    meta = json.loads(Path("mine/construction.json").read_text())
    meta["relu_grad_at_zero"] = 0.0
    Path("mine/construction.json").write_text(json.dumps(meta))
    assert main(["--check", "mine", "--samples", "4"]) == 1


def test_sparse_coo_form_of_w_is_accepted(good, tmp_path):
    """The export's sparse form (W_layer, W_row, W_col, W_val, W_shape; docs/export.md) reads as W."""
    dst = tmp_path / "coo"
    dst.mkdir()
    data = dict(np.load(good / "construction.npz"))
    W = data.pop("W")
    k, r, c = np.nonzero(W)
    data.update(W_layer=k, W_row=r, W_col=c, W_val=W[k, r, c], W_shape=np.array(W.shape))
    np.savez(dst / "construction.npz", **data)
    (dst / "construction.json").write_text((good / "construction.json").read_text())
    from universality.engine.layers import SparseLayers

    got = load(dst).W
    assert isinstance(got, SparseLayers)  # read as CSR layers, not densified
    assert np.array_equal(np.stack([got.dense(k) for k in range(got.N)]), W)
    assert main(["--check", str(dst)]) == 0


def _coo_copy(good, dst, mutate=None):
    dst.mkdir()
    data = dict(np.load(good / "construction.npz"))
    W = data.pop("W")
    if mutate is not None:
        mutate(W)
    k, r, c = np.nonzero(W)
    data.update(W_layer=k, W_row=r, W_col=c, W_val=W[k, r, c], W_shape=np.array(W.shape))
    np.savez(dst / "construction.npz", **data)
    (dst / "construction.json").write_text((good / "construction.json").read_text())
    return W


def test_coo_form_catches_what_the_dense_form_catches(good, tmp_path, capsys):
    """A corrupted weight in a COO export FAILs the same claims as in the dense export (the sparse
    engine executes every stored entry; nothing is assumed about which blocks are nonzero)."""
    from universality.check import check_external

    def corrupt(W):
        W[2][1, 0] += 0.5  # top block of a middle layer: an entry the design has as 0

    W = _coo_copy(good, tmp_path / "coo", corrupt)
    dense = tmp_path / "dense"
    dense.mkdir()
    data = dict(np.load(good / "construction.npz"))
    data["W"] = W
    np.savez(dense / "construction.npz", **data)
    (dense / "construction.json").write_text((good / "construction.json").read_text())
    v_coo = {r.id: r.verdict.value for r in check_external(load(tmp_path / "coo"), 4)}
    v_dense = {r.id: r.verdict.value for r in check_external(load(dense), 4)}
    assert v_coo == v_dense
    assert "FAIL" in v_coo.values()
    assert main(["--check", str(tmp_path / "coo"), "--samples", "2"]) == 1


def test_coo_form_is_never_densified(tmp_path):
    """A COO export whose dense W would take about 320 GB loads in CSR form (a few nonzeros): the
    loader never allocates N x D x D."""
    J = L = 50_000
    N, dy = 4, 1
    D = J + L + (N - 2) * 2 * dy + 1
    np.savez(tmp_path / "construction.npz", W_layer=np.array([0, 3]), W_row=np.array([0, 5]),
             W_col=np.array([0, 7]), W_val=np.array([1.0, 2.0]), W_shape=np.array([N, D, D]),
             Wg=np.zeros((dy, D)), theta_b=np.array(0.0), alpha=np.array(0.3))
    (tmp_path / "construction.json").write_text(json.dumps({"J": J, "L": L, "dy": dy}))
    ext = load(tmp_path)
    assert ext.W.N == N and ext.W.D == D and ext.W.nnz() == 2
    assert ext.W.mats[3][5, 7] == 2.0


def test_json_output_and_foreign_options(good, capsys):
    assert main(["--check", str(good), "--json", "--samples", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "check" and data["passed"] is True
    assert {c["id"] for c in data["claims"]} == set(EXTERNAL_CLAIMS)
    assert main(["--check", str(good), "--N", "6"]) == 2  # a build option: one line, exit 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments" in err
