"""The output side of the network: the exact multiplexer f_out of eq. (4), explicit ReLU networks
(h_post) and the multiplexer realised as a ReLU network. Written once, used by :mod:`.step`.

The gate of the exact multiplexer tests zbar == 0; its derivative is taken as 0 (it is locally
constant in the paper's smooth approximation, eq. (4)), so theta_h, behind a closed gate, gets 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .layers import relu_grad


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
    """h_post as a plain function of zbar (a real forward pass of its network), for maml_step(h_post=...)
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
    """The multiplexer f_out realised as a ReLU network (construction.hpost.Mux), for maml_step(f_out=...).

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
