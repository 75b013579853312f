"""PyTorch autograd steps the same construction (optional extra; skipped when torch is absent)."""
from __future__ import annotations

import numpy as np
import pytest

from universality import Config, build, one_step
from universality.interop import torch_step

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("kwargs", [dict(N=6, J=4, L=4), dict(N=18, J=4, L=4),
                                    dict(N=5, J=2, L=3, dy=2, relu_grad_at_zero=0.5)])
def test_torch_autograd_reproduces_the_step(kwargs):
    con = build(Config(**kwargs))
    y = [-1.25] * con.design.dy
    ours = one_step(con, 0.3, y, 0.8)
    theirs = torch_step(con, 0.3, y, 0.8)
    assert np.allclose(theirs.grads, ours.grads, rtol=0, atol=1e-13)
    assert theirs.theta_b_post == pytest.approx(ours.theta_b_post, abs=1e-15)
    assert np.allclose(theirs.z_star, ours.z_star, rtol=0, atol=1e-13)
    assert np.any(theirs.z_star[con.blocks.mid] != 0)


def test_torch_relu_collapses_the_construction():
    con = build(Config(N=6, J=4, L=4))
    t = torch_step(con, 0.3, [-1.25], 0.8, relu="torch")
    assert t.theta_b_post == 0.0
    assert not np.any(t.z_star[con.blocks.mid])
    assert not np.any(t.grads[:, con.blocks.dt:, :])


@pytest.mark.parametrize("r", [0.1, 0.5, 1.0, 2.0])
def test_torch_crosscheck_agrees_to_1e12_for_every_r(r):
    """The ReLU-with-r mask is float64 (a float32 mask put z* off by 1.7e-8 at r = 0.1)."""
    con = build(Config(N=6, J=4, L=4, relu_grad_at_zero=r))
    y = [-1.25]
    ours = one_step(con, 0.3, y, 0.8)
    theirs = torch_step(con, 0.3, y, 0.8)
    scale = max(1.0, float(np.max(np.abs(ours.z_star))))
    assert np.max(np.abs(theirs.z_star - ours.z_star)) <= 1e-12 * scale
    assert abs(theirs.theta_b_post - ours.theta_b_post) <= 1e-12 * max(1.0, abs(ours.theta_b_post))
    gscale = max(1.0, float(np.max(np.abs(ours.grads))))
    assert np.max(np.abs(theirs.grads - ours.grads)) <= 1e-12 * gscale
