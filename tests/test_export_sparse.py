"""Export at scale: the COO form of the weights, its loaders (docs/export.md: NumPy/SciPy, PyTorch),
and an export that reads the verification's own step records instead of executing the network again."""
from __future__ import annotations

import json

import numpy as np
import pytest

from universality import Config, export, verify

from .test_export_rerun import rerun_from_files


def load_dense_W(data) -> np.ndarray:
    """The NumPy loader of docs/export.md: either form to an N x D x D array."""
    if "W" in data:
        return data["W"]
    W = np.zeros(tuple(data["W_shape"]))
    W[data["W_layer"], data["W_row"], data["W_col"]] = data["W_val"]
    return W


def load_scipy_layers(data):
    """The SciPy loader of docs/export.md: one CSR matrix per layer, never the dense stack."""
    import scipy.sparse as sp

    N, D, _ = (int(v) for v in data["W_shape"])
    L, R, C, V = data["W_layer"], data["W_row"], data["W_col"], data["W_val"]
    return [sp.csr_matrix((V[L == k], (R[L == k], C[L == k])), shape=(D, D)) for k in range(N)]


@pytest.fixture(scope="module")
def sparse_export(tmp_path_factory):
    rep = verify(Config(N=6, J=3, L=2, samples=3, seed=5, engine="sparse"), with_findings=False)
    out = tmp_path_factory.mktemp("x") / "e"
    export.write(rep.con, rep.samples, out, steps=rep.steps)
    return rep, np.load(out / "construction.npz"), json.loads((out / "construction.json").read_text())


def test_sparse_engine_exports_coo_triplets(sparse_export):
    rep, data, meta = sparse_export
    assert meta["W_format"] == "coo" and "W" not in data
    assert np.array_equal(load_dense_W(data), np.asarray(rep.con.W))
    dense = {k: data[k] for k in data.files}
    dense["W"] = load_dense_W(data)
    z = rerun_from_files(dense, meta)
    assert np.allclose(z, data["zbar_star"], rtol=0, atol=1e-13)


def test_scipy_loader_runs_the_forward_pass(sparse_export):
    _, data, meta = sparse_export
    mats = load_scipy_layers(data)
    W = load_dense_W(data)
    h = data["phi_x"][0]
    for k in reversed(range(len(mats))):
        assert np.allclose(mats[k] @ h, W[k] @ h, rtol=0, atol=0)
        h = np.maximum(mats[k] @ h, 0)


def test_torch_loader_both_forms(sparse_export):
    torch = pytest.importorskip("torch")
    _, data, meta = sparse_export
    N, D, _ = (int(v) for v in data["W_shape"])
    # docs/export.md, PyTorch: one sparse COO tensor per layer (or the dense stack)
    idx = torch.tensor(np.stack([data["W_layer"], data["W_row"], data["W_col"]]))
    W = torch.sparse_coo_tensor(idx, torch.tensor(data["W_val"]), (N, D, D),
                                check_invariants=True).coalesce()
    layers = [W[k] for k in range(N)]
    dense = torch.tensor(load_dense_W(data))
    h = torch.tensor(data["phi_x"][0])
    for k in reversed(range(N)):
        a = torch.sparse.mm(layers[k], h[:, None])[:, 0]
        assert torch.allclose(a, dense[k] @ h, rtol=0, atol=0)
        h = torch.relu(a)


def test_dense_engine_keeps_the_dense_form(tmp_path):
    rep = verify(Config(N=6, J=2, L=2, samples=1), with_findings=False)
    export.write(rep.con, rep.samples, tmp_path / "e", steps=rep.steps)
    meta = json.loads((tmp_path / "e" / "construction.json").read_text())
    assert meta["W_format"] == "dense"
    assert np.load(tmp_path / "e" / "construction.npz")["W"].shape == (6, rep.con.D, rep.con.D)


def test_export_does_not_execute_the_network_again(tmp_path, monkeypatch):
    rep = verify(Config(N=6, J=2, L=2, samples=2), with_findings=False)
    import universality.engine.step as step

    def boom(*a, **k):
        raise AssertionError("the export executed the network")

    monkeypatch.setattr(step, "single_step", boom)
    monkeypatch.setattr(step, "maml_step", boom)
    export.write(rep.con, rep.samples, tmp_path / "e", steps=rep.steps)
    data = np.load(tmp_path / "e" / "construction.npz")
    assert np.array_equal(data["zbar_star"][0], rep.steps[0].zbar_star)
