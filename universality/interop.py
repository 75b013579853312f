"""Cross-check in PyTorch (optional extra `pip install -e '.[torch]'`): the same construction, stepped
by PyTorch's own autograd instead of this package's backprop.

`torch_step(con, x, y, x_star, relu="torch")` uses `torch.relu`, whose derivative at 0 is 0 (the
`relu-grad-at-zero` finding, seen in a real framework); `relu="r"` uses a ReLU whose backward returns
r at 0 (the construction's `relu_grad_at_zero`), which must reproduce this package's step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TorchStep:
    grads: np.ndarray  # dl/dW_i from torch.autograd, (N, D, D)
    theta_b_post: float
    z_star: np.ndarray  # the full post-step z at x*


def relu_with_grad_at_zero(r: float):
    """A PyTorch ReLU whose backward returns r at 0 (torch.relu returns 0 there)."""
    import torch

    class ReLUr(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return u.clamp(min=0)

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            # the mask in g's own dtype (float64 here): torch.where on Python floats would build it in
            # float32, putting r = 0.1 off by 1.5e-9 and z* off by about 1.7e-8
            one = torch.ones((), dtype=g.dtype, device=g.device)
            zero = torch.zeros((), dtype=g.dtype, device=g.device)
            rr = torch.full((), float(r), dtype=g.dtype, device=g.device)
            mask = torch.where(u > 0, one, torch.where(u < 0, zero, rr))
            return g * mask

    return ReLUr.apply


def torch_step(con, x, y, x_star, relu: str = "r", r: float | None = None) -> TorchStep:
    import torch

    r = con.design.relu_grad_at_zero if r is None else float(r)

    act = torch.relu if relu == "torch" else relu_with_grad_at_zero(r)
    b = con.blocks
    dt = torch.float64
    W = [torch.tensor(np.asarray(Wk), dtype=dt, requires_grad=True) for Wk in con.W]
    Wg = torch.tensor(np.asarray(con.Wg), dtype=dt, requires_grad=True)
    theta_b = torch.zeros((), dtype=dt, requires_grad=True)
    bottom = torch.zeros(b.D, dtype=dt)
    bottom[b.bottom] = 1.0

    def net(weights, phi_top, tb):
        h = phi_top + tb * bottom
        for Wk in reversed(weights):  # W[N-1] acts first
            h = act(Wk @ h)
        return h

    phi_x = torch.tensor(con.phi(x, 0.0), dtype=dt)
    z = net(W, phi_x, theta_b)
    if torch.any(z[b.mid] != 0):
        raise ValueError("the gate is open before the step: not the construction's pre-update point")
    yhat = Wg @ z
    loss = 0.5 * torch.sum((yhat - torch.tensor(np.asarray(y, dtype=float), dtype=dt)) ** 2)
    loss.backward()
    alpha = con.design.alpha
    with torch.no_grad():
        W_post = [Wk - alpha * Wk.grad for Wk in W]
        tb_post = float(theta_b - alpha * theta_b.grad)
        phi_star = torch.tensor(con.phi(x_star, tb_post), dtype=dt)
        phi_star[b.bottom] = 0.0
        z_star = net(W_post, phi_star, torch.tensor(tb_post, dtype=dt))
    return TorchStep(np.stack([Wk.grad.numpy() for Wk in W]), tb_post, z_star.numpy())
