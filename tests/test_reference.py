"""universality/reference/: the claimed sides, checked against brute force (exact rationals, dense
products), on their own."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from universality.blocks import Blocks
from universality.reference import bins, codes, design, formulas
from universality.reference.telescoping import telescope


@given(st.integers(1, 12), st.floats(0.0, 1.0, exclude_max=True, allow_nan=False))
def test_bins_are_floor_of_the_exact_rational(cells, u):
    assert bins.axis_cell(u, cells) == min(math.floor(Fraction(u) * cells), cells - 1)


def test_edge_points_straddle_every_edge():
    pts = bins.edge_points(5)
    for k in range(1, 5):
        e = k / 5
        below = float(np.nextafter(e, 0.0))
        assert (below, bins.axis_cell(below, 5)) in pts and (e, bins.axis_cell(e, 5)) in pts
        assert bins.axis_cell(below, 5) <= bins.axis_cell(e, 5)
    assert pts[0] == (0.0, 0) and pts[-1][1] == 4
    assert bins.cell((0.1, 0.9), 3) == 0 * 3 + 2


def test_code_tables_follow_the_spec():
    t = codes.table("paper", 2, 3, 6)
    for j in range(2):
        for l in range(3):
            assert t[:, j, l].tolist() == [float(c == j + 2 * l) for c in range(6)]
    c = codes.table("compact", 2, 2, 3)
    assert c[:, 1, 0].tolist() == [1.0, 0.75, 0.5625]  # t = (1 + 1*2 + 0) / 4
    trunc = codes.table("truncated", 2, 2, 3)
    assert not np.any(trunc[:, 1, 1])  # cell channel 3 >= m: no code
    assert codes.entry("compact", 2, 0, 1, 2, 2) == Fraction(1, 4)
    with pytest.raises(ValueError):
        codes.table("nope", 1, 1, 1)
    with pytest.raises(ValueError):
        codes.entry("nope", 0, 0, 0, 1, 1)


def _brute(W, b):
    N = W.shape[0]
    A, B = [], []
    for i in range(1, N + 1):
        M = np.eye(b.dm)
        for j in range(1, i):
            M = M @ W[j - 1][b.mid, b.mid]
        A.append(M @ M.T)
        P = np.eye(b.dt)
        for j in range(i + 1, N + 1):
            P = P @ W[j - 1][b.top, b.top]
        B.append(P)
    return A, B


@pytest.mark.parametrize("dense_mid", [False, True])
def test_telescoping_products_equal_brute_force(dense_mid):
    b = Blocks(cells_x=2, cells_star=2, m=3, s=2, dy=1)
    rng = np.random.default_rng(1)
    N = 5
    W = np.zeros((N, b.D, b.D))
    for k in range(N):
        W[k][b.top, b.top] = np.eye(b.dt) + 0.3 * rng.standard_normal((b.dt, b.dt))
        W[k][b.mid, b.mid] = np.diag(rng.uniform(0.5, 2.0, b.dm))
        W[k][b.bottom, b.bottom] = rng.uniform(0.5, 2.0)
    if dense_mid:
        W[2][b.mid.start, b.mid.start + 1] = 0.4  # an off-diagonal entry: the products go dense
    t = telescope(W, b)
    A, B = _brute(W, b)
    for i in range(N):
        assert np.allclose(t.A_dense(i + 1), A[i], rtol=1e-13, atol=1e-13)
        assert np.allclose(t.B[i], B[i], rtol=1e-13, atol=1e-13)
        x = rng.standard_normal(b.dm)
        assert np.allclose(t.A_apply(i + 1, x), A[i] @ x)
    assert (t.A_diag_stack[0] is None) == dense_mid
    assert t.wcheck_product == pytest.approx(np.prod([W[k][b.bottom, b.bottom] for k in range(N)]))
    for i in range(N):
        assert np.allclose(t.K[i], B[i][:, b.top_x].T @ B[i][:, b.top_star])
    # eq. (3) by the diagonal shortcut and by the general loop agree
    e = rng.standard_normal(b.dm)
    k, ka = formulas.kernel(t, np.eye(b.dt)[0], np.eye(b.dt)[b.cells_x + 1])
    v1, m1 = formulas.eq3(t, e, k, ka, 0.3, 0.7)
    loop = sum(0.7 ** (i + 1) * k[i] * (A[i] @ e) for i in range(N))
    assert np.allclose(v1, -0.3 * loop, rtol=1e-12, atol=1e-14)
    assert np.all(m1 >= np.abs(v1) - 1e-12)


def test_design_and_theta_b_formula():
    b = Blocks(cells_x=2, cells_star=2, m=2, s=2, dy=1)
    assert design.A_diag(1, 4, b, 0.1).tolist() == [1.0] * 4
    assert design.A_diag(2, 4, b, 0.1).tolist() == [1.1, 1.1, 0.1, 0.1]
    assert design.A_realised_diag(3, 4, b, 0.1, 2.0).tolist() == [0.1 / 8, 0.1 / 8, 1.1 / 8, 1.1 / 8]
    assert design.A_realised_diag(3, 4, b, 0.1, 0.0).tolist() == design.A_diag(3, 4, b, 0.1).tolist()
    assert formulas.theta_b_post(0.3, 0.5, 4, 2.0, 3.0) == pytest.approx(-0.3 * 0.5**4 * 2.0 * 3.0)
    assert formulas.effective_r(0.0) == 1.0 and formulas.effective_r(0.5) == 0.5
    phi = design.phi(0.6, 0.0, 2, 2, b)
    assert phi[1] == 1.0 and phi[b.bottom] == 0.0
    phi = design.phi(0.6, -0.2, 2, 2, b)
    assert phi[b.cells_x + 1] == 1.0 and phi[b.bottom] == -0.2


def test_telescoping_reads_a_sparse_layer_store():
    """A layer store with N and block(k, rows, cols) (e.g. SciPy sparse layers) telescopes like the
    dense array: only the diagonal blocks are read."""
    import scipy.sparse as sps

    from universality import Config, build

    con = build(Config(N=6, J=2, L=3))

    class Store:
        N = con.N

        def block(self, k, rows, cols):
            return sps.csr_matrix(con.W[k])[rows, cols]

    a, s = telescope(con.W, con.blocks), telescope(Store(), con.blocks)
    for i in range(con.N):
        assert np.array_equal(a.A[i], s.A[i]) and np.array_equal(a.B[i], s.B[i])
    assert np.array_equal(a.K, s.K) and np.array_equal(a.wcheck, s.wcheck)


@given(layout=st.sampled_from(["compact", "paper", "truncated"]), cx=st.integers(1, 9), cs=st.integers(1, 9),
       m=st.integers(1, 40))
def test_vectorised_code_table_is_the_exact_rational_rounded_once(layout, cx, cs, m):
    """The vectorised table (exact integer numerators, one rounding) equals the per-entry Fraction
    reference bit for bit, channel and cell accessors included (m up to 40: the object fallback)."""
    want = codes.table_fractions(layout, cx, cs, m)
    assert np.array_equal(codes.table(layout, cx, cs, m), want)
    for c in range(m):
        assert np.array_equal(codes.channel_sparse(layout, c, cx, cs).toarray(), want[c])
        assert np.array_equal(codes.channel(layout, c, cx, cs), want[c])
    for j in range(cx):
        for l in range(cs):
            assert np.array_equal(codes.column(layout, j, l, cx, cs, m), want[:, j, l])


def test_wide_top_block_telescopes_sparse_like_dense(monkeypatch):
    """Above DENSE_TOP_MAX the top products are CSR; the same numbers as the dense products (the
    threshold lowered so that a small construction takes the sparse path), corrupted entries included."""
    from universality import Config, build
    from universality.reference import telescoping

    con = build(Config(N=6, J=3, L=4))
    W = np.array(con.W, dtype=float)
    W[2][con.blocks.top_x.start, con.blocks.top_star.start + 1] = 0.25  # an entry no design has
    dense = telescope(W, con.blocks)
    monkeypatch.setattr(telescoping, "DENSE_TOP_MAX", 2)
    wide = telescope(W, con.blocks)
    assert wide.B_sparse and not dense.B_sparse
    for i in range(con.N):
        assert np.allclose(wide.B[i].toarray(), dense.B[i], rtol=0, atol=1e-15)
        assert np.allclose(wide.B_abs[i].toarray(), dense.B_abs[i], rtol=0, atol=1e-15)
    assert np.allclose(wide.K, dense.K, atol=1e-15) and np.allclose(wide.K_abs, dense.K_abs, atol=1e-15)
    p, q = np.eye(con.blocks.dt)[1], np.eye(con.blocks.dt)[con.blocks.cells_x + 2]
    for a, b in zip(wide.kernels(p, q), dense.kernels(p, q)):
        assert np.allclose(a, b, atol=1e-15)


def test_psd_certificates_are_sound_on_random_sparse_matrices(monkeypatch):
    """min_eig_sym_part above DENSE_EIG_MAX: PSD only with a Gershgorin certificate, not PSD only with
    a witness whose Rayleigh quotient clears its rounding; never a wrong decision (dense eigvalsh)."""
    import scipy.sparse as sp

    from universality.claims import structure

    monkeypatch.setattr(structure, "DENSE_EIG_MAX", 20)
    rng = np.random.default_rng(0)
    decided = 0
    for trial in range(40):
        n = 60
        P = sp.random(n, n, density=0.04, random_state=trial, format="csr") + sp.identity(n) * rng.uniform(0.3, 3)
        if trial % 3 == 0:
            P = sp.identity(n, format="csr") * 2.0 + sp.random(n, n, density=0.01, random_state=trial) * 0.1
        lam = float(np.linalg.eigvalsh(((P + P.T) / 2).toarray()).min())
        value, how, psd = structure.min_eig_sym_part(P.tocsr(), 1e-12)
        if psd is not None:
            decided += 1
            assert psd == (lam >= -1e-12), (lam, value, how)
            if psd is False:
                assert value >= lam - 1e-9  # a Rayleigh quotient bounds the minimum from above
            else:
                assert value <= lam + 1e-9  # Gershgorin bounds it from below
    assert decided >= 20
