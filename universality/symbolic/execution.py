"""The real execution in exact arithmetic: forward, reverse-mode backprop, one step, forward at x*.

Same network as :mod:`universality.execution` (spec section 1), on SymPy matrices from
``build(design, ExactField())``. Every ReLU is decided by :func:`signs.decide` on the instance's
orthant (alpha and the label components carry a stated sign): POS keeps the pre-activation, NEG
and ZERO give 0, and backprop uses ReLU' = 1 / 0 / r with r = ReLU'(0) an exact rational or a
symbol. No Max, no Heaviside: a sign that cannot be decided raises :class:`UndecidedSign`.
The multiplexer's gate (zbar == 0) and the feature switch (theta_b == 0) are decided the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..construction.features import phi_tilde_index
from .signs import Orthant, Sign, UndecidedSign, decide


def _expand(M):
    return M.applyfunc(sp.expand)


@dataclass
class ExactForward:
    phi: sp.Matrix
    pre: list  # pre[k]: pre-activation column of layer k+1
    post: list  # post[k] = h_{k+1}; post[N] = phi
    signs: list  # signs[k][t]: Sign of pre[k][t]

    @property
    def z(self):
        return self.post[0]


def forward(W: list, phi, orthant: Orthant, name: str = "forward") -> ExactForward:
    N = len(W)
    post = [None] * (N + 1)
    pre = [None] * N
    signs = [None] * N
    post[N] = phi
    for k in range(N - 1, -1, -1):
        p = _expand(W[k] * post[k + 1])
        s = []
        for t in range(p.rows):
            sg, why = decide(p[t], orthant)
            if sg == Sign.UNDECIDED:
                raise UndecidedSign(f"{name}, layer {k + 1}, unit {t}", p[t], why)
            s.append(sg)
        pre[k], signs[k] = p, s
        post[k] = sp.Matrix([p[t] if s[t] == Sign.POS else 0 for t in range(p.rows)])
    return ExactForward(phi, pre, post, signs)


def relu_derivative(sign: Sign, r):
    return {Sign.POS: sp.Integer(1), Sign.NEG: sp.Integer(0), Sign.ZERO: r}[sign]


def backward(W: list, fwd: ExactForward, e, r):
    """Reverse mode from dl/dz = e. Returns (grads list of D x D, dl/dphi column)."""
    grads = []
    g = e
    for k in range(len(W)):
        d = sp.Matrix([g[t] * relu_derivative(fwd.signs[k][t], r) for t in range(g.rows)])
        grads.append(_expand(d * fwd.post[k + 1].T))
        g = _expand(W[k].T * d)
    return grads, g


@dataclass
class ExactHead:
    yhat: sp.Matrix
    branch: str


def head(z, Wg, mid: slice, orthant: Orthant, where: str) -> ExactHead:
    """The multiplexer of eq. (4); the gate zbar == 0 decided exactly (h_post = identity)."""
    zbar = z[mid, :]
    nonzero = False
    for t in range(zbar.rows):
        sg, why = decide(zbar[t], orthant)
        if sg == Sign.UNDECIDED:
            raise UndecidedSign(f"{where}: multiplexer gate, middle unit {t}", zbar[t], why)
        nonzero |= sg != Sign.ZERO
    if not nonzero:
        return ExactHead(_expand(Wg * z), "g_pre")
    return ExactHead(zbar, "h_post")


def phi_exact(con, u, theta_b, orthant: Orthant, where: str):
    """phi(u; theta_b) with the switch theta_b == 0 decided exactly."""
    sg, why = decide(theta_b, orthant)
    if sg == Sign.UNDECIDED:
        raise UndecidedSign(f"{where}: feature switch theta_b == 0", theta_b, why)
    b, d = con.blocks, con.design
    k = phi_tilde_index(u, sg == Sign.ZERO, d.J, d.L, b)
    out = sp.zeros(b.D, 1)
    out[k, 0] = 1
    out[b.bottom, 0] = theta_b
    return out


@dataclass
class ExactStep:
    x: object
    x_star: object
    y: sp.Matrix  # column of symbols or rationals
    alpha: object
    r: object
    orthant: Orthant
    phi_x: sp.Matrix
    fwd_x: ExactForward
    out_x: ExactHead
    grad_yhat: sp.Matrix
    e: sp.Matrix
    grads: list
    g_phi: sp.Matrix
    g_theta_b: object
    g_Wg: sp.Matrix
    W_post: list
    theta_b_post: object
    Wg_post: sp.Matrix
    phi_star_pre: sp.Matrix
    fwd_star_pre: ExactForward
    phi_star_post: sp.Matrix
    fwd_star_post: ExactForward
    out_star_post: ExactHead
    phi_x_post: sp.Matrix
    fwd_x_post: ExactForward
    g_theta_h: object = 0
    extras: dict = field(default_factory=dict)

    @property
    def z_star(self):
        return self.fwd_star_post.z


@dataclass
class TrainPart:
    """What the step on (x, y) produced; it does not depend on x*."""

    phi_x: sp.Matrix
    fwd_x: ExactForward
    out_x: ExactHead
    grad_yhat: sp.Matrix
    e: sp.Matrix
    grads: list
    g_phi: sp.Matrix
    g_theta_b: object
    g_Wg: sp.Matrix
    W_post: list
    theta_b_post: object
    Wg_post: sp.Matrix
    phi_x_post: sp.Matrix
    fwd_x_post: ExactForward


def train(con, x, y, *, alpha, r, orthant: Orthant) -> TrainPart:
    """Forward at x, backprop of the MSE loss, theta' = theta - alpha grad, forward at x after."""
    p = train_core(con, x, y, alpha=alpha, r=r, orthant=orthant)
    p.phi_x_post = phi_exact(con, x, p.theta_b_post, orthant, "x, after")
    p.fwd_x_post = forward(p.W_post, p.phi_x_post, orthant, "x, after")
    return p


def train_core(con, x, y, *, alpha, r, orthant: Orthant) -> TrainPart:
    """Forward at x, backprop, theta' = theta - alpha grad: everything the step's gradients and updated
    parameters need, without the passes after the step (``phi_x_post``, ``fwd_x_post`` are None). An
    undecided sign after the step then leaves the claims on the gradients decidable."""
    b = con.blocks
    W, Wg = con.W, con.Wg
    theta_b = sp.Integer(0)
    phi_x = phi_exact(con, x, theta_b, orthant, "x, before")
    fwd_x = forward(W, phi_x, orthant, "x, before")
    out_x = head(fwd_x.z, Wg, b.mid, orthant, "x, before")
    if out_x.branch == "g_pre":
        grad_yhat = _expand(con.loss.grad(y, out_x.yhat))
        e = _expand(Wg.T * grad_yhat)
        g_Wg = _expand(grad_yhat * fwd_x.z.T)
    else:  # gate open before the step: theta_h held fixed, no error reaches z (as numeric)
        grad_yhat = sp.zeros(y.rows, 1)
        e = sp.zeros(b.D, 1)
        g_Wg = sp.zeros(*Wg.shape)
    grads, g_phi = backward(W, fwd_x, e, r)
    g_theta_b = g_phi[b.bottom]
    W_post = [_expand(W[k] - alpha * grads[k]) for k in range(len(W))]
    theta_b_post = sp.expand(theta_b - alpha * g_theta_b)
    Wg_post = _expand(Wg - alpha * g_Wg)
    return TrainPart(phi_x, fwd_x, out_x, grad_yhat, e, grads, g_phi, g_theta_b, g_Wg, W_post,
                     theta_b_post, Wg_post, None, None)


# Claims whose exact check reads only what :func:`train_core` computes (the gradients and the
# updated parameters): an undecided sign after the step leaves them decidable.
TRAINING_CLAIMS = ("grad-rank-one", "update-blocks", "second-order-zero")


def partial_step(x, x_star, y, alpha, r, orthant: Orthant, part: TrainPart) -> ExactStep:
    """An ExactStep holding only the training half (the passes at x* are None)."""
    st = ExactStep(x, x_star, sp.Matrix(y), alpha, r, orthant, part.phi_x, part.fwd_x, part.out_x,
                   part.grad_yhat, part.e, part.grads, part.g_phi, part.g_theta_b, part.g_Wg, part.W_post,
                   part.theta_b_post, part.Wg_post, None, None, None, None, None, part.phi_x_post,
                   part.fwd_x_post)
    st.extras["part"] = part
    st.extras["partial"] = True
    return st


def one_step(con, x, y, x_star, *, alpha, r, orthant: Orthant, part: TrainPart | None = None) -> ExactStep:
    """Run the exact network at x, backprop the MSE loss, take theta' = theta - alpha grad, run at x*.

    ``part`` reuses the training half (forward at x, backprop, update) of an earlier call with the
    same x cell, y, alpha, r and orthant.
    """
    b = con.blocks
    y = sp.Matrix(y)
    if part is None:
        part = train(con, x, y, alpha=alpha, r=r, orthant=orthant)
    p = part
    theta_b = sp.Integer(0)
    phi_star_pre = phi_exact(con, x_star, theta_b, orthant, "x*, before")
    fwd_star_pre = forward(con.W, phi_star_pre, orthant, "x*, before")
    phi_star_post = phi_exact(con, x_star, p.theta_b_post, orthant, "x*, after")
    fwd_star_post = forward(p.W_post, phi_star_post, orthant, "x*, after")
    out_star_post = head(fwd_star_post.z, p.Wg_post, b.mid, orthant, "x*, after")
    st = ExactStep(x, x_star, y, alpha, r, orthant, p.phi_x, p.fwd_x, p.out_x, p.grad_yhat, p.e, p.grads,
                   p.g_phi, p.g_theta_b, p.g_Wg, p.W_post, p.theta_b_post, p.Wg_post, phi_star_pre,
                   fwd_star_pre, phi_star_post, fwd_star_post, out_star_post, p.phi_x_post, p.fwd_x_post)
    st.extras["part"] = part
    return st
