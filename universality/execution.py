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
             h_post: Callable | None = None, f_out=None) -> StepResult:
    """Run the network at x, backprop the loss, take theta' = theta - alpha grad, run at x*.

    ``f_out``: an optional realised multiplexer (e.g. :class:`NetHead`) used instead of the exact
    indicator head, before the step (its output and its real backprop give the error at z, the
    gradient of W_g and theta_h's gradient) and after it.
    """
    d = con.design
    r = d.relu_grad_at_zero if r is None else float(r)
    alpha = d.alpha if alpha is None else float(alpha)
    y = np.asarray(y, dtype=float).reshape(-1)
    b = con.blocks
    W, Wg, theta_b = con.W, con.Wg, float(con.theta_b)

    phi_x = con.phi(x, theta_b)
    fwd_x = forward(W, phi_x)
    out_x = head(fwd_x.z, Wg, b.mid, h_post) if f_out is None else None
    loss = con.loss
    g_theta_h = 0.0
    if f_out is not None:
        out_x, tape = f_out.forward(fwd_x.z, Wg)
        grad_yhat = np.asarray(loss.grad(y, out_x.yhat), dtype=float)
        e, g_Wg, g_theta_h = f_out.backward(tape, grad_yhat, r)
        loss_value = loss.value(y, out_x.yhat)
    elif out_x.branch == "g_pre":
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
    out_star_post = (head(fwd_star_post.z, Wg_post, b.mid, h_post) if f_out is None
                     else f_out.forward(fwd_star_post.z, Wg_post)[0])
    phi_x_post = con.phi(x, theta_b_post)
    fwd_x_post = forward(W_post, phi_x_post)

    return StepResult(
        x=x, x_star=x_star, y=y, alpha=alpha, r=r,
        phi_x=phi_x, fwd_x=fwd_x, out_x=out_x, loss_value=loss_value,
        grad_yhat=grad_yhat, e=e, grads=grads, g_phi=g_phi, g_theta_b=g_theta_b, g_Wg=g_Wg,
        g_theta_h=g_theta_h, W_post=W_post, theta_b_post=theta_b_post, Wg_post=Wg_post,
        phi_star_pre=phi_star_pre, fwd_star_pre=fwd_star_pre, phi_star_post=phi_star_post,
        fwd_star_post=fwd_star_post, out_star_post=out_star_post,
        phi_x_post=phi_x_post, fwd_x_post=fwd_x_post,
    )


# ---- explicit ReLU networks (h_post) and the realised multiplexer ---------------------------
@dataclass
class NetTape:
    """What a forward pass of a :class:`~universality.construction.hpost.ReLUNet` kept for backprop."""

    inputs: list  # the input of each layer (batch-first)
    pre: list  # the pre-activation of each layer


def net_forward(net, x: np.ndarray, keep: bool = False):
    """Forward pass of an explicit ReLU net on x (in,) or a batch (B, in). Returns (out, tape or None)."""
    x = np.asarray(x, dtype=float)
    single = x.ndim == 1
    h = x[None] if single else x
    inputs, pres = [], []
    for layer in net.layers:
        if layer.kind == "dense":
            if h.ndim == 3:
                h = h.reshape(h.shape[0], -1)
            inputs.append(h)
            pre = h @ layer.W.T + layer.b
        elif layer.shared_input:
            inputs.append(h)
            pre = np.matmul(layer.W[None], h[:, None, :, None])[..., 0] + layer.b
        else:
            if h.ndim == 2:
                h = h.reshape(h.shape[0], layer.W.shape[0], -1)
            inputs.append(h)
            pre = np.matmul(layer.W[None], h[..., None])[..., 0] + layer.b
        pres.append(pre)
        h = np.maximum(pre, 0.0) if layer.relu else pre
    out = h.reshape(h.shape[0], -1)
    out = out[0] if single else out
    return out, (NetTape(inputs, pres) if keep else None)


def net_backward(net, tape: NetTape, grad_out: np.ndarray, r: float):
    """Reverse mode through the net (ReLU'(0) = r). Returns (dl/dinput, an upper bound on max |dl/dparameter|:
    exact 0 exactly when every parameter gradient is 0)."""
    g = np.asarray(grad_out, dtype=float).reshape(tape.pre[-1].shape[0], -1)
    gmax = 0.0
    for layer, h, pre in zip(reversed(net.layers), reversed(tape.inputs), reversed(tape.pre)):
        g = g.reshape(pre.shape)
        d = g * relu_grad(pre, r) if layer.relu else g
        # max |dl/dW| without forming dW: each block of dW is a sum over the batch of outer products
        if layer.kind == "dense":
            dmax = float(np.sum(np.abs(d).max(axis=1) * np.abs(h).max(axis=1)))
            g = d @ layer.W
        elif layer.shared_input:
            dmax = float(np.max(np.sum(np.abs(d).max(axis=2) * np.abs(h).max(axis=1)[:, None], axis=0),
                                initial=0.0))
            g = np.einsum("bko,koi->bi", d, layer.W)
        else:
            dmax = float(np.max(np.sum(np.abs(d).max(axis=2) * np.abs(h).max(axis=2), axis=0), initial=0.0))
            g = np.matmul(d[:, :, None, :], layer.W[None])[:, :, 0, :]
        gmax = max(gmax, dmax, float(np.abs(d).max(initial=0.0)))
        g = g.reshape(h.shape)
    return g.reshape(g.shape[0], -1), gmax


def net_abs_forward(net, a: np.ndarray) -> np.ndarray:
    """The same net with |W|, |b| and no ReLU on |a|: the magnitude that bounds rounding (Higham)."""
    h = np.abs(np.asarray(a, dtype=float))[None]
    for layer in net.layers:
        W, bb = layer.abs()
        if layer.kind == "dense":
            h = h.reshape(h.shape[0], -1) @ W.T + bb
        elif layer.shared_input:
            h = np.matmul(W[None], h[:, None, :, None])[..., 0] + bb
        else:
            h = np.matmul(W[None], h.reshape(h.shape[0], W.shape[0], -1)[..., None])[..., 0] + bb
    return h.reshape(-1)


def hpost_callable(hpost) -> Callable:
    """h_post as a plain function of zbar (a real forward pass of its network), for one_step(h_post=...)
    with the exact indicator multiplexer of :func:`head`."""
    return lambda zbar: net_forward(hpost.net, zbar)[0]


@dataclass
class MuxTape:
    z: np.ndarray
    g: np.ndarray
    h: np.ndarray
    q: float
    c: float
    s: float
    net: NetTape
    Wg: np.ndarray


class NetHead:
    """The multiplexer f_out realised as a ReLU network (construction.hpost.Mux), for one_step(f_out=...).

    f_out(z) = clip(W_g z, -M q, M q) + ReLU(h - M q) - ReLU(-h - M q), h = h_post(zbar),
    q = ReLU(1 - ReLU(sum(zbar) - kappa0) / (kappa1 - kappa0)).
    """

    def __init__(self, mux):
        self.mux = mux

    def forward(self, z: np.ndarray, Wg: np.ndarray):
        m = self.mux
        zbar = z[m.mid]
        s = float(np.sum(zbar))
        c = 1.0 - max(s - m.kappa0, 0.0) / (m.kappa1 - m.kappa0)
        q = max(c, 0.0)
        g = Wg @ z
        h, tape = net_forward(m.hpost.net, zbar, keep=True)
        Mq = m.M * q
        out = (g - np.maximum(g - Mq, 0.0) + np.maximum(-g - Mq, 0.0)
               + np.maximum(h - Mq, 0.0) - np.maximum(-h - Mq, 0.0))
        branch = "h_post" if q == 0.0 else ("g_pre" if q == 1.0 else "blend")
        return HeadOutput(out, branch), MuxTape(z, g, h, q, c, s, tape, Wg)

    def backward(self, tape: MuxTape, dout: np.ndarray, r: float):
        """(dl/dz, dl/dW_g, max |dl/dtheta_h|) by reverse mode through the realised f_out."""
        m = self.mux
        M, q = m.M, tape.q
        dout = np.asarray(dout, dtype=float)
        ra, rb = relu_grad(tape.g - M * q, r), relu_grad(-tape.g - M * q, r)
        rc, rd = relu_grad(tape.h - M * q, r), relu_grad(-tape.h - M * q, r)
        dg = dout * (1.0 - ra - rb)
        dh = dout * (rc + rd)
        dq = float(np.sum(dout * M * (ra - rb - rc + rd)))
        dc = dq * float(relu_grad(np.array(tape.c), r))
        ds = dc * (-1.0 / (m.kappa1 - m.kappa0)) * float(relu_grad(np.array(tape.s - m.kappa0), r))
        dzbar, gmax = net_backward(m.hpost.net, tape.net, dh, r)
        dz = tape.Wg.T @ dg
        dz[m.mid] += ds + dzbar[0]
        return dz, np.outer(dg, tape.z), gmax


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
