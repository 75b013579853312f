"""The exported construction re-run by an independent plain-NumPy implementation that reads only the
npz/json files (what a PyTorch or JAX user would do), reproducing zbar* and v."""
from __future__ import annotations

import json

import numpy as np

from universality import Config, verify
from universality import export


def rerun_from_files(data, meta, r=1.0):
    W, Wg, alpha = data["W"], data["Wg"], float(data["alpha"])
    lo, hi = meta["blocks"]["middle"]
    bottom = meta["blocks"]["bottom"][0]
    out = []
    for n in range(len(data["y"])):
        phi = data["phi_x"][n]
        hs = [phi]
        pres = []
        for k in range(len(W) - 1, -1, -1):  # W[N-1] acts first
            pre = W[k] @ hs[-1]
            pres.append(pre)
            hs.append(np.maximum(pre, 0))
        z = hs[-1]
        g = Wg.T @ (Wg @ z - data["y"][n])  # MSE, the g_pre branch
        grads = [None] * len(W)
        for k in range(len(W)):
            pre, h_in = pres[len(W) - 1 - k], hs[len(W) - 1 - k]
            d = g * np.where(pre > 0, 1.0, np.where(pre < 0, 0.0, r))
            grads[k] = np.outer(d, h_in)
            g = W[k].T @ d
        theta_b = -alpha * g[bottom]
        Wp = [W[k] - alpha * grads[k] for k in range(len(W))]
        h = data["phi_x_star_post"][n].copy()
        h[bottom] = theta_b
        for k in range(len(W) - 1, -1, -1):
            h = np.maximum(Wp[k] @ h, 0)
        out.append(h[lo:hi])
    return np.array(out)


def test_independent_rerun_reproduces_zbar_star(tmp_path):
    report = verify(Config(N=6, J=3, L=2, samples=3, seed=5))
    export.write(report.con, report.samples, tmp_path / "e")
    data = np.load(tmp_path / "e" / "construction.npz")
    meta = json.loads((tmp_path / "e" / "construction.json").read_text())
    z = rerun_from_files(data, meta)
    assert np.allclose(z, data["zbar_star"], rtol=0, atol=1e-13)
    # signed variant: + copies minus - copies recover -alpha v
    zz = z.reshape(len(z), -1, 2)
    vv = data["v"].reshape(len(z), -1, 2)
    assert np.allclose(zz[:, :, 0] - zz[:, :, 1], -float(data["alpha"]) * vv[:, :, 0], atol=1e-13)


def test_export_with_relu_grad_zero_collapses_in_independent_rerun(tmp_path):
    report = verify(Config(N=6, J=3, L=2, samples=2, relu_grad_at_zero=0.0), with_findings=False)
    export.write(report.con, report.samples, tmp_path / "e")
    data = np.load(tmp_path / "e" / "construction.npz")
    meta = json.loads((tmp_path / "e" / "construction.json").read_text())
    assert meta["relu_grad_at_zero"] == 0.0
    assert not np.any(rerun_from_files(data, meta, r=0.0))
