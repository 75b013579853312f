"""The claimed sides of the claims, from :mod:`universality.reference` (never from the builder).

Every function reads the run's *weights* (the engine's layer store of ``con.W``, ``con.Wg``,
``con.theta_b``) and sizes, or the spec's definitions; none reads the builder's chosen objects
(``con.A``, ``con.G``, ``con.codes``, ``con.phi``, ``con.bin_x``, ``con.e_bar``, ``con.v``).
docs/claims.md lists, for every claim, where each of its two sides comes from.
"""
from __future__ import annotations

import numpy as np

from ..reference import bins, codes, design, formulas
from ..reference.telescoping import telescoped


def tel(ctx):
    """A_i, B_i, wcheck_i, k_i recovered from the run's weights (cached per run), read from the
    engine's layer store (dense or sparse: only the diagonal blocks are densified)."""
    return ctx.cached("ref_telescoped", lambda: telescoped(ctx.con))


def sizes(ctx):
    d = ctx.design
    return d.J, d.L


def cells(ctx, x, x_star) -> tuple[int, int]:
    J, L = sizes(ctx)
    return bins.cell(x, J), bins.cell(x_star, L)


def phi(ctx, u, theta_b) -> np.ndarray:
    J, L = sizes(ctx)
    return design.phi(u, float(theta_b), J, L, ctx.blocks)


def gate_open(ctx, z) -> bool:
    """The multiplexer of eq. (4): h_post is selected when zbar != 0 (exactly)."""
    return bool(np.any(np.asarray(z)[ctx.blocks.mid] != 0))


def error(ctx, z, y) -> np.ndarray:
    """dl/dz from the derivative of the loss's formula (reference/lossdiff.py) through g_pre = W_g z; 0 when the gate is open
    (h_post is held fixed in the inner loop, so no error reaches z)."""
    if gate_open(ctx, z):
        return np.zeros(ctx.D)
    return formulas.error_at_z(ctx.con.Wg, z, y, ctx.con.loss)


def v_spec(ctx, x, x_star, y):
    """(v, |terms|) from the spec's codes, A_i and e_bar with exact bins (Lemma 4.1)."""
    d = ctx.design
    return formulas.v_design(x, x_star, y, J=d.J, L=d.L, N=d.N, blocks=ctx.blocks, layout=d.layout,
                             eps=d.eps, loss=ctx.con.loss)


def code_spec(ctx, a: int, b: int) -> np.ndarray:
    """The spec's code c(a, b) of one cell (length m), computed for that cell alone."""
    bl = ctx.blocks
    return codes.column(ctx.design.layout, a, b, bl.cells_x, bl.cells_star, bl.m)


def code_spec_channel(ctx, c: int, sparse: bool = False):
    """G = c_c(j, l) as a (cells_x, cells_star) array from the spec's formulas, or as a SciPy CSR
    matrix with ``sparse`` (one-hot: one entry; compact: every cell)."""
    bl = ctx.blocks
    if sparse:
        return codes.channel_sparse(ctx.design.layout, c, bl.cells_x, bl.cells_star)
    return codes.channel(ctx.design.layout, c, bl.cells_x, bl.cells_star)


def e_check_spec(ctx, y) -> float:
    """The spec's e_check(y) (the loss's closed bottom form; MSE: sum y). For a construction built
    elsewhere: the bottom entry of the error at z = 0 through its own W_g (the paper leaves e_check
    to the construction: any nonzero linear form)."""
    if ctx.external:
        return float(error_mid_bottom(ctx, y)[1])
    return design.e_check(y, ctx.con.loss)


def error_mid_bottom(ctx, y):
    """(e_bar, e_check): the error at the pre-update point z = 0 through W_g (loss derivative)."""
    b = ctx.blocks
    e = formulas.error_at_z(ctx.con.Wg, np.zeros(b.D), y, ctx.con.loss)
    return e[b.mid], float(e[b.bottom])


def v_weights(ctx, a: int, bb: int, y):
    """(v, |terms|) = sum_i r^i k_i(a, b) A_i e_bar(y) with k_i, A_i recovered from the weights and
    e_bar from W_g and the loss derivative (the paper's definitions; for --check)."""
    t = tel(ctx)
    e_mid, _ = error_mid_bottom(ctx, y)
    r = formulas.effective_r(ctx.design.relu_grad_at_zero)
    k, ka = t.K[:, a, bb], t.K_abs[:, a, bb]
    mv, mag = formulas.eq3(t, e_mid, k, ka, -1.0, r)  # alpha = -1 gives +sum (and its magnitude)
    return mv, mag


def kernel_claimed(ctx, a: int, bb: int) -> np.ndarray:
    """(k_1, ..., k_N) the claim compares with: [0, c(a, b), 0] from the spec's table; for --check the
    declared code table when the export has one, else the kernels recovered from the weights."""
    if ctx.external:
        declared = ctx.cache.get("declared_codes")
        if declared is not None:
            return np.concatenate([[0.0], np.asarray(declared, dtype=float)[:, a, bb], [0.0]])
        return tel(ctx).K[:, a, bb].copy()
    return np.concatenate([[0.0], code_spec(ctx, a, bb), [0.0]])


def v_claimed(ctx, x, x_star, y):
    """v(x, x*, y) and its magnitude: the spec's (built here) or the weights' (--check)."""
    if ctx.external:
        a, bb = cells(ctx, x, x_star)
        return v_weights(ctx, a, bb, y)
    return v_spec(ctx, x, x_star, y)


def eq3(ctx, x, x_star, theta_b_post: float, e_mid: np.ndarray, alpha: float, r: float):
    """(eq. (3) from the recovered A_i, B_i, the spec's switch at the real theta_b', |terms|)."""
    b = ctx.blocks
    t = tel(ctx)
    p = phi(ctx, x, ctx.con.theta_b)[b.top]
    q = phi(ctx, x_star, theta_b_post)[b.top]
    k, ka = formulas.kernel(t, p, q)
    return formulas.eq3(t, e_mid, k, ka, alpha, formulas.effective_r(r))


def label_for_every_cell(ctx) -> np.ndarray:
    """A label whose middle copies every variant keeps (-alpha u > 0 for real labels) and whose
    e_check is nonzero (the switch flips)."""
    d = ctx.design
    if ctx.con.loss.domain == "simplex":
        y = np.zeros(d.dy)
        y[0], y[1] = 0.6, 0.4
        return y
    return -np.sign(d.alpha) * np.linspace(0.6, 1.4, d.dy)


def design_B(ctx, i: int):
    """B_i = [[I, 0], [G_i^T, I]] with G_i = c_{i-2} from the spec's codes (B_1 = B_N = I): dense up
    to the telescoping's DENSE_TOP_MAX, CSR above (as the recovered products)."""
    from ..reference.telescoping import DENSE_TOP_MAX

    b = ctx.blocks
    dense = b.dt <= DENSE_TOP_MAX
    G = code_spec_channel(ctx, i - 2, sparse=not dense) if 2 <= i <= ctx.N - 1 else None
    if dense:
        out = np.eye(b.dt)
        if G is not None:
            out[b.top_star, b.top_x] = G.T
        return out
    import scipy.sparse as sp

    out = sp.identity(b.dt, format="csr")
    if G is not None:
        g = G.T.tocoo()
        out = out + sp.csr_matrix((g.data, (g.row + b.top_star.start, g.col + b.top_x.start)),
                                  shape=(b.dt, b.dt))
    return out.tocsr()
