"""The real step against an independently written expectation.

`reference_step` below re-implements the network from the spec in plain Python loops (no shared
code with universality.execution): forward pass with ReLU, backprop with ReLU'(0) = r, one step.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from universality import Config, build, one_step
from universality.execution import backward, forward, relu_grad


def reference_step(W, Wg, phi_x, y, alpha, r):
    N, D, _ = W.shape
    hs = [None] * (N + 2)
    pres = [None] * (N + 1)
    hs[N + 1] = list(phi_x)
    for i in range(N, 0, -1):
        pre = [sum(W[i - 1][p][q] * hs[i + 1][q] for q in range(D)) for p in range(D)]
        pres[i] = pre
        hs[i] = [max(v, 0.0) for v in pre]
    z = hs[1]
    yhat = [sum(Wg[o][q] * z[q] for q in range(D)) for o in range(len(y))]
    dyhat = [yhat[o] - y[o] for o in range(len(y))]
    g = [sum(Wg[o][q] * dyhat[o] for o in range(len(y))) for q in range(D)]
    grads = np.zeros_like(W)
    for i in range(1, N + 1):
        d = [g[p] * (1.0 if pres[i][p] > 0 else 0.0 if pres[i][p] < 0 else r) for p in range(D)]
        for p in range(D):
            for q in range(D):
                grads[i - 1][p][q] = d[p] * hs[i + 1][q]
        g = [sum(W[i - 1][p][q] * d[p] for p in range(D)) for q in range(D)]
    return grads, g


def test_backprop_matches_reference_implementation():
    con = build(Config(N=5, J=2, L=2, relu_grad_at_zero=0.7))
    st_ = one_step(con, 0.8, [-1.3], 0.2)
    grads, g_phi = reference_step(con.W, con.Wg, st_.phi_x, [-1.3], con.design.alpha, 0.7)
    assert np.allclose(st_.grads, grads, rtol=0, atol=1e-13)
    assert np.allclose(st_.g_phi, g_phi, rtol=0, atol=1e-13)


def test_post_step_by_hand_tiny_compact():
    # N = 4, J = 1, L = 2, eps = 0.1, alpha = 0.3, y = -1, x* in cell l = 1 (t = 1, code (1, 1)):
    # v_c = (c_c + eps * sum(c)) [y; -y] = 1.2 [y; -y] in both channels; -alpha v = [0.36, -0.36, ...]
    con = build(Config(N=4, J=1, L=2, eps=0.1, alpha=0.3, layout="compact"))
    st_ = one_step(con, 0.4, [-1.0], 0.9)
    assert np.allclose(st_.z_star[con.blocks.mid], [0.36, 0.0, 0.36, 0.0], rtol=0, atol=1e-15)
    # theta_b' = -alpha * r^N * prod(wcheck) * e_check(y), e_check(y) = sum(y)
    assert st_.theta_b_post == pytest.approx(-0.3 * 1.0 * (-1.0), abs=1e-15)
    # x* in cell l = 0 (t = 1/2): v = (c + 0.1 * 1.5) y -> channel 0: 1.15, channel 1: 0.65
    st2 = one_step(con, 0.4, [-1.0], 0.1)
    assert np.allclose(st2.z_star[con.blocks.mid], [0.345, 0.0, 0.195, 0.0], rtol=0, atol=1e-15)


def test_paper_recipe_closed_form():
    # paper.md section 9 (paper layout, one-hot): zbar* = -alpha y (e_{a + J b} + eps 1) in the + copies
    J, L, eps, alpha, y = 3, 2, 0.05, 0.3, -2.0
    con = build(Config(N=J * L + 2, J=J, L=L, eps=eps, alpha=alpha))
    x, xs = 0.5, 0.75  # a = 1, b = 1
    st_ = one_step(con, x, [y], xs)
    plus = st_.z_star[con.blocks.mid][0::2]
    expect = -alpha * y * (np.eye(J * L)[1 + J * 1] + eps)
    assert np.allclose(plus, expect, rtol=0, atol=1e-14)
    assert not np.any(st_.z_star[con.blocks.mid][1::2])


def test_relu_grad_convention():
    pre = np.array([-1.0, 0.0, 2.0])
    assert relu_grad(pre, 0.25).tolist() == [0.0, 0.25, 1.0]


@given(st.integers(4, 7), st.integers(1, 3), st.integers(1, 3),
       st.floats(0.01, 0.99), st.floats(0.0, 0.999), st.floats(0.1, 5.0), st.sampled_from([-1.0, 1.0]))
def test_step_is_exact_first_order_for_all_alpha(N, J, L, x, xs, mag, sign):
    """Doubling alpha doubles zbar* exactly up to rounding (no alpha^2 term, signed variant)."""
    con = build(Config(N=N, J=J, L=L))
    y = [sign * mag]
    a = one_step(con, x, y, xs, alpha=0.2)
    b = one_step(con, x, y, xs, alpha=0.4)
    mid = con.blocks.mid
    assert np.allclose(b.z_star[mid], 2 * a.z_star[mid], rtol=1e-12, atol=1e-14)


def test_forward_linear_mode_and_backward_shapes():
    con = build(Config(N=4, J=2, L=2))
    phi = con.phi(0.3, 0.0)
    f = forward(con.W, phi, relu=False)
    assert f.pre.shape == (4, con.D) and f.post.shape == (5, con.D)
    assert np.array_equal(f.h(con.N + 1), phi)
    d, g = backward(con.W, f, np.ones(con.D), 1.0)  # d[k]: the error at layer k+1's output
    assert d.shape == (con.N, con.D) and g.shape == (con.D,)
    assert math.isfinite(float(np.sum(d)))
