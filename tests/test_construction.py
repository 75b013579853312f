"""The built weights against independently written expectations (hand-derived for tiny sizes)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from universality import Config, ConfigError, build
from universality.blocks import Blocks
from universality.construction.codes import code_table
from universality.construction.fields import NUMERIC
from universality.construction.features import axis_bin, cell


def test_blocks_layout_names_and_ranges():
    b = Blocks(cells_x=2, cells_star=3, m=2, s=2, dy=1)
    assert (b.dt, b.dm, b.D) == (5, 4, 10)
    names = b.names()
    assert names[:5] == ["top.x[0]", "top.x[1]", "top.star[0]", "top.star[1]", "top.star[2]"]
    assert names[5:9] == ["mid[c0,+,y0]", "mid[c0,-,y0]", "mid[c1,+,y0]", "mid[c1,-,y0]"]
    assert names[-1] == "bottom"
    assert b.ranges()["middle"] == [5, 9]
    with pytest.raises(IndexError):
        b.mid_local(2, 0, 0)


def test_tiny_compact_weights_by_hand():
    # N = 4, J = 1, L = 2: cells (0,0), (0,1) with t = 1/2 and 1, codes (1, t); eps = 0.1
    con = build(Config(N=4, J=1, L=2, eps=0.1, layout="compact"))
    b = con.blocks
    assert (b.dt, b.dm, b.D) == (3, 4, 8)
    W = con.W
    # layer 1: W~_1 = I; Wbar_1 = P_2 = sqrt(A_2): channel 0 -> sqrt(1.1), channel 1 -> sqrt(0.1)
    assert np.allclose(np.diag(W[0])[3:7], [math.sqrt(1.1)] * 2 + [math.sqrt(0.1)] * 2)
    # layer 2: W~_2 = B_1 B_2^{-1} = [[1,0,0],[-c0(0,0), 1, 0],[-c0(0,1), 0, 1]] = -1 entries
    assert np.array_equal(W[1][:3, :3], np.array([[1, 0, 0], [-1, 1, 0], [-1, 0, 1.0]]))
    # layer 3: W~_3 = B_2 B_3^{-1}: bottom-left = G_2^T - G_3^T = (1,1) - (1/2, 1)
    assert np.allclose(W[2][1:3, 0], [0.5, 0.0])
    # layer 4: W~_4 = B_3 B_4^{-1} = B_3: G_3 = codes of channel 1 = (1/2, 1)
    assert np.allclose(W[3][1:3, 0], [0.5, 1.0])
    # Wbar_2 = P_2^{-1} P_3: channel 0: sqrt(0.1/1.1), channel 1: sqrt(1.1/0.1)
    assert np.allclose(np.diag(W[1])[3:7], [math.sqrt(0.1 / 1.1)] * 2 + [math.sqrt(1.1 / 0.1)] * 2)
    # Wbar_3 = P_3^{-1} P_4, P_4 = sqrt(eps I)
    assert np.allclose(np.diag(W[2])[3:7], [1.0] * 2 + [math.sqrt(0.1 / 1.1)] * 2)
    assert np.allclose(np.diag(W[3])[3:7], 1.0)
    # every off-diagonal block is zero
    for Wk in W:
        assert not np.any(Wk[:3, 3:]) and not np.any(Wk[3:, :3]) and not np.any(Wk[3:7, 7])
    # W_g = [0, -I, +I, -I, +I, -1] for MSE, signed
    assert np.array_equal(con.Wg, np.array([[0, 0, 0, -1, 1, -1, 1, -1.0]]))


def test_product_of_top_blocks_is_B_i_and_entrywise_nonnegative():
    con = build(Config(N=7, J=2, L=3))
    b = con.blocks
    prod = np.eye(b.dt)
    for i in range(con.N, 0, -1):
        assert np.allclose(prod, con.B(i))
        assert prod.min() >= 0
        prod = con.W[i - 1][b.top, b.top] @ prod


def test_relu_compensation_divides_A_by_r_power():
    r = 0.5
    con = build(Config(N=5, J=2, L=2, relu_grad_at_zero=r))
    for i in range(2, con.N + 1):
        assert np.allclose(con.A_built[i - 1], np.asarray(con.A[i - 1]) / r**i)


def test_paper_layout_is_one_hot_in_cell_order():
    codes = code_table("paper", 3, 2, 6, NUMERIC)
    for j in range(3):
        for l in range(2):
            expected = np.zeros(6)
            expected[j + 3 * l] = 1
            assert np.array_equal(codes[:, j, l], expected)


@given(st.integers(1, 4), st.integers(1, 4), st.integers(2, 6))
def test_compact_codes_pairwise_non_parallel(J, L, m):
    codes = code_table("compact", J, L, m, NUMERIC).reshape(m, -1).T
    for p in range(len(codes)):
        for q in range(p + 1, len(codes)):
            u, v = codes[p], codes[q]
            cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
            assert cos < 1 - 1e-12


def test_binning_is_exact_at_edges():
    assert axis_bin(0.0, 4) == 0
    assert axis_bin(0.25, 4) == 1
    assert axis_bin(float(np.nextafter(0.25, 0)), 4) == 0
    assert axis_bin(0.3, 10) == 2  # the float 0.3 is 0.29999999999999998889... < 3/10
    assert 0.3 * 10 == 3.0  # while naive float arithmetic would say bin 3
    assert axis_bin(float(np.nextafter(1.0, 0)), 7) == 6
    assert cell((0.6, 0.1), 2) == 2  # row-major over axes
    assert cell((0.1, 0.6), 2) == 1


def test_switched_feature_map():
    con = build(Config(N=4, J=2, L=3))
    b = con.blocks
    pre = con.phi(0.7, 0.0)
    post = con.phi(0.7, -0.2)
    assert np.flatnonzero(pre[b.top]).tolist() == [1]
    assert np.flatnonzero(post[b.top]).tolist() == [b.cells_x + 2]
    assert pre[b.bottom] == 0 and post[b.bottom] == -0.2
    assert not np.any(pre[b.mid]) and not np.any(post[b.mid])


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(N=3, J=2, L=2), "N must be >= 4"),
    (dict(N=6, J=0, L=2), "J must be >= 1"),
    (dict(N=6, J=2, L=2, eps=0), "eps must be > 0"),
    (dict(N=6, J=2, L=2, alpha=0), "alpha must be nonzero"),
    (dict(N=6, J=2, L=2, alpha=float("nan")), "alpha must be finite"),
    (dict(N=6, J=2, L=2, relu_grad_at_zero=-1), "relu-grad-at-zero must be >= 0"),
    (dict(N=6, J=4, L=4, layout="paper"), "N = 18"),
    (dict(N=6.5, J=2, L=2), "N must be an integer"),
    (dict(N=6, J=2, L=2, variant="other"), "variant must be one of"),
    (dict(N=10**6, J=2, L=2), "sizes too large"),
])
def test_bad_config_is_one_clear_line(kwargs, fragment):
    with pytest.raises(ConfigError) as err:
        Config(**kwargs)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)
