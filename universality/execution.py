"""Execution: the real forward pass, reverse-mode backprop, one plain gradient step, the
post-step forward pass. Nothing here knows the paper's formulas; the claims compare against them.

Network (spec section 1): h_{N+1} = phi, pre_i = W_i h_{i+1}, h_i = ReLU(pre_i) for i = N..1,
z = h_1, yhat = f_out(z) with the multiplexer
f_out(z) = 1(zbar = 0) g_pre(z) + 1(zbar != 0) h_post(zbar), g_pre(z) = W_g z.
Backprop uses ReLU'(u) = 1 (u > 0), 0 (u < 0) and r (u == 0, the ``relu_grad_at_zero`` option).
The gate of the multiplexer is locally constant in the paper's smooth approximation of f_out
(eq. (4)), so its derivative is taken as 0 and theta_h, behind a closed gate, gets gradient 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def relu_grad(pre: np.ndarray, r: float) -> np.ndarray:
    return np.where(pre > 0, 1.0, np.where(pre < 0, 0.0, r))


@dataclass
class Forward:
    phi: np.ndarray  # (D,) input
    pre: np.ndarray  # (N, D): pre[k] is the pre-activation of layer k+1
    post: np.ndarray  # (N+1, D): post[k] = h_{k+1}; post[N] = phi

    @property
    def z(self) -> np.ndarray:
        return self.post[0]

    def h(self, i: int) -> np.ndarray:
        """h_i (1-based, paper numbering); h_{N+1} = phi."""
        return self.post[i - 1]


def forward(W: np.ndarray, phi: np.ndarray, relu: bool = True) -> Forward:
    N, D, _ = W.shape
    post = np.empty((N + 1, D))
    pre = np.empty((N, D))
    post[N] = phi
    for k in range(N - 1, -1, -1):
        pre[k] = W[k] @ post[k + 1]
        post[k] = np.maximum(pre[k], 0.0) if relu else pre[k]
    return Forward(phi=np.asarray(phi, dtype=float), pre=pre, post=post)


def backward(W: np.ndarray, fwd: Forward, e: np.ndarray, r: float):
    """Reverse mode from dl/dz = e. Returns (grads (N, D, D), dl/dphi (D,))."""
    N = W.shape[0]
    grads = np.empty_like(W)
    g = np.asarray(e, dtype=float)
    for k in range(N):
        d = g * relu_grad(fwd.pre[k], r)
        np.outer(d, fwd.post[k + 1], out=grads[k])
        g = W[k].T @ d
    return grads, g


@dataclass
class HeadOutput:
    yhat: np.ndarray
    branch: str  # "g_pre" or "h_post"


def head(z: np.ndarray, Wg: np.ndarray, mid: slice, h_post: Callable | None) -> HeadOutput:
    """The multiplexer f_out of eq. (4); the gate tests zbar == 0 exactly."""
    zbar = z[mid]
    if not np.any(zbar != 0):
        return HeadOutput(Wg @ z, "g_pre")
    out = zbar.copy() if h_post is None else np.asarray(h_post(zbar), dtype=float)
    return HeadOutput(out, "h_post")


@dataclass
class StepResult:
    """Everything one real MAML step on (x, y) and the evaluation at x* produced."""

    x: object
    x_star: object
    y: np.ndarray
    alpha: float
    r: float
    # before the step, at x
    phi_x: np.ndarray
    fwd_x: Forward
    out_x: HeadOutput
    loss_value: float
    grad_yhat: np.ndarray
    e: np.ndarray  # dl/dz
    grads: np.ndarray  # dl/dW_i, (N, D, D)
    g_phi: np.ndarray  # dl/dphi: what reaches the feature extractor (theta_ft) and theta_b
    g_theta_b: float
    g_Wg: np.ndarray
    g_theta_h: float
    # after the step
    W_post: np.ndarray
    theta_b_post: float
    Wg_post: np.ndarray
    # the test point, before and after the step
    phi_star_pre: np.ndarray
    fwd_star_pre: Forward
    phi_star_post: np.ndarray
    fwd_star_post: Forward
    out_star_post: HeadOutput
    # the training point after the step (for the activation checks)
    phi_x_post: np.ndarray
    fwd_x_post: Forward

    @property
    def z_star(self) -> np.ndarray:
        return self.fwd_star_post.z


def one_step(con, x, y, x_star, *, r: float | None = None, alpha: float | None = None,
             h_post: Callable | None = None) -> StepResult:
    """Run the network at x, backprop the loss, take theta' = theta - alpha grad, run at x*."""
    d = con.design
    r = d.relu_grad_at_zero if r is None else float(r)
    alpha = d.alpha if alpha is None else float(alpha)
    y = np.asarray(y, dtype=float).reshape(-1)
    b = con.blocks
    W, Wg, theta_b = con.W, con.Wg, float(con.theta_b)

    phi_x = con.phi(x, theta_b)
    fwd_x = forward(W, phi_x)
    out_x = head(fwd_x.z, Wg, b.mid, h_post)
    loss = con.loss
    if out_x.branch == "g_pre":
        grad_yhat = np.asarray(loss.grad(y, out_x.yhat), dtype=float)
        e = Wg.T @ grad_yhat
        g_Wg = np.outer(grad_yhat, fwd_x.z)
        loss_value = loss.value(y, out_x.yhat)
    else:
        # The gate is already open before the step (a broken construction): h_post is held
        # fixed (theta_h is not trained in the inner loop), so no error reaches z.
        grad_yhat = np.zeros(y.shape)
        e = np.zeros(b.D)
        g_Wg = np.zeros_like(Wg)
        loss_value = float("nan")
    grads, g_phi = backward(W, fwd_x, e, r)
    g_theta_b = float(g_phi[b.bottom])

    W_post = W - alpha * grads
    theta_b_post = theta_b - alpha * g_theta_b
    Wg_post = Wg - alpha * g_Wg

    phi_star_pre = con.phi(x_star, theta_b)
    fwd_star_pre = forward(W, phi_star_pre)
    phi_star_post = con.phi(x_star, theta_b_post)
    fwd_star_post = forward(W_post, phi_star_post)
    out_star_post = head(fwd_star_post.z, Wg_post, b.mid, h_post)
    phi_x_post = con.phi(x, theta_b_post)
    fwd_x_post = forward(W_post, phi_x_post)

    return StepResult(
        x=x, x_star=x_star, y=y, alpha=alpha, r=r,
        phi_x=phi_x, fwd_x=fwd_x, out_x=out_x, loss_value=loss_value,
        grad_yhat=grad_yhat, e=e, grads=grads, g_phi=g_phi, g_theta_b=g_theta_b, g_Wg=g_Wg,
        g_theta_h=0.0, W_post=W_post, theta_b_post=theta_b_post, Wg_post=Wg_post,
        phi_star_pre=phi_star_pre, fwd_star_pre=fwd_star_pre, phi_star_post=phi_star_post,
        fwd_star_post=fwd_star_post, out_star_post=out_star_post,
        phi_x_post=phi_x_post, fwd_x_post=fwd_x_post,
    )


@dataclass
class KShotResult:
    """One real K-shot MAML step: theta' = theta - alpha (1/K) sum_k grad l(y_k, f(x_k; theta))."""

    xs: list
    ys: list  # list of (dy,) arrays
    x_star: object
    alpha: float
    r: float
    K: int
    errors: list  # dl_k/dz for each example (D,)
    branches: list  # the multiplexer branch at each x_k before the step
    grads: np.ndarray  # (1/K) sum_k dl_k/dW_i, (N, D, D)
    g_theta_b: float  # (1/K) sum_k dl_k/dtheta_b
    g_feature: np.ndarray  # (1/K) sum_k dl_k/dphi: what reaches theta_ft (top block) and theta_b
    g_Wg: np.ndarray
    W_post: np.ndarray
    theta_b_post: float
    Wg_post: np.ndarray
    phi_star_post: np.ndarray
    fwd_star_post: Forward
    out_star_post: HeadOutput

    @property
    def z_star(self) -> np.ndarray:
        return self.fwd_star_post.z


def k_shot_step(con, xs, ys, x_star, *, r: float | None = None, alpha: float | None = None,
                h_post: Callable | None = None) -> KShotResult:
    """Run the network at every x_k, backprop each example's real loss gradient (``loss.grad``),
    average the K gradients, take one step, then run the updated network at x*.

    With K = 1 this takes exactly the step of :func:`one_step`.
    """
    d = con.design
    r = d.relu_grad_at_zero if r is None else float(r)
    alpha = d.alpha if alpha is None else float(alpha)
    xs = list(xs)
    ys = [np.asarray(y, dtype=float).reshape(-1) for y in ys]
    if len(xs) != len(ys) or not xs:
        raise ValueError(f"k_shot_step needs K >= 1 pairs, got {len(xs)} inputs and {len(ys)} labels")
    K = len(xs)
    b = con.blocks
    W, Wg, theta_b = con.W, con.Wg, float(con.theta_b)
    loss = con.loss
    gsum = np.zeros_like(W)
    gphi = np.zeros(b.D)
    gWg = np.zeros_like(Wg)
    errors, branches = [], []
    for x, y in zip(xs, ys):
        fwd = forward(W, con.phi(x, theta_b))
        out = head(fwd.z, Wg, b.mid, h_post)
        branches.append(out.branch)
        if out.branch == "g_pre":
            gy = np.asarray(loss.grad(y, out.yhat), dtype=float)
            e = Wg.T @ gy
            gWg += np.outer(gy, fwd.z)
        else:  # gate already open: h_post is held fixed, no error reaches z (as in one_step)
            e = np.zeros(b.D)
        errors.append(e)
        g, gp = backward(W, fwd, e, r)
        gsum += g
        gphi += gp
    grads = gsum
    grads /= K  # in place: no extra N x D x D copy
    gphi /= K
    gWg /= K
    g_theta_b = float(gphi[b.bottom])
    W_post = W - alpha * grads
    theta_b_post = theta_b - alpha * g_theta_b
    Wg_post = Wg - alpha * gWg
    phi_star_post = con.phi(x_star, theta_b_post)
    fwd_star_post = forward(W_post, phi_star_post)
    out_star_post = head(fwd_star_post.z, Wg_post, b.mid, h_post)
    return KShotResult(xs=xs, ys=ys, x_star=x_star, alpha=alpha, r=r, K=K, errors=errors,
                       branches=branches, grads=grads, g_theta_b=g_theta_b, g_feature=gphi,
                       g_Wg=gWg, W_post=W_post, theta_b_post=theta_b_post, Wg_post=Wg_post,
                       phi_star_post=phi_star_post, fwd_star_post=fwd_star_post,
                       out_star_post=out_star_post)
