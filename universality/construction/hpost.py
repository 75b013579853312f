"""h_post and the multiplexer f_out as explicit ReLU networks (pure builders, no execution).

Lemma 4.1 ends with "h_post reads off the output". Here h_post is built, not trained: a ReLU
network whose weights are explicit arrays, evaluated by :func:`universality.execution.net_forward`.
After one step the middle block is zbar* = max(-alpha v, 0) (signed) or -alpha v (paper variant,
right sign of y), where in channel c, v holds w_c(a, b) [y; -y] with the cell gains
w(j, l) = sum_i c_{i-2}(j, l) diag(A_i) (see :mod:`universality.decode`). So U = -alpha w(a, b) y^T,
an m x dy matrix of rank one whose direction names the cell and whose size is y.

Layers of h_post (K = number of cells (j, l); "per cell" layers are block diagonal: K blocks of the
same shape, stored as arrays W[K, out, in], b[K, out]):

  A  dense, linear   U = z+ - z- (signed) or U = z (paper): the signed channel values
  B  per cell, ReLU  r+- = ReLU(+-P_k U) with P_k = I - w_k w_k^T / |w_k|^2 (distance to cell k's line),
                     ReLU(yhat_k - lo), ReLU(yhat_k - hi) with yhat_k = w_k^T U / (-alpha |w_k|^2)
  C  per cell, ReLU  gate q_k = ReLU(1 - |P_k U|_1 / tau); the clamped label t = clip(yhat_k) - lo;
                     first coordinate of the hat arguments u_g = (clip(yhat_k) - y_g) / h
  C' per cell, ReLU  (dy > 1 only, one per extra label coordinate) running max(0, u_g) and max(0, -u_g)
  H  per cell, ReLU  hat_g = ReLU(1 - max(0, max_d u_gd) - max(0, max_d -u_gd)) (Courant hats of the
                     Freudenthal triangulation of the y-grid: piecewise-linear, exact on the grid)
  O  per cell, ReLU  p_k = sum_g f_target(x_j, y_g, x*_l) hat_g;  o+- = ReLU(+-p_k - M_k (1 - q_k))
  S  dense, linear   h_post = sum_k (o+_k - o-_k)

Exact and approximate parts. For a label with |y|_1 >= delta the gate of the true cell is 1 (up to
rounding) and every other gate is exactly 0 (tau is half the smallest |P_k' w_k|_1 |alpha| delta);
clip(yhat_k) is the true y inside [-y_max, y_max]; the hats give the piecewise-linear interpolant in
y, exact at grid labels. What remains is the discretisation of x and x* (f is read at the cell
centres) and the interpolation in y between grid labels. For |y|_1 < delta several gates can be
partly open: there the output is approximate (the indicator of a cell is discontinuous at y = 0).

The multiplexer f_out(z) = 1(zbar = 0) g_pre(z) + 1(zbar != 0) h_post(zbar) (eq. (4)) is realised as
    s = sum(zbar) (zbar >= 0: it leaves a ReLU),  q = ReLU(1 - ReLU(s - kappa0) / (kappa1 - kappa0)),
    f_out = clip(g, -M q, M q) + ReLU(h - M q) - ReLU(-h - M q),   g = W_g z, h = h_post(zbar),
with clip(g, -a, a) = g - ReLU(g - a) + ReLU(-g - a): a ReLU network with one linear skip (g). q is 1
for s <= kappa0 (exactly the pre-update point, where q is locally constant, so the derivative of
f_out is W_g and theta_h gets gradient 0) and exactly 0 for s >= kappa1, which every post-step zbar*
with |y|_1 >= delta reaches. In between (0 < s < kappa1) f_out blends the branches: the paper's
indicator gate is discontinuous and no continuous network equals it there (gap G5). Exactness also
needs |g| <= M and |h| <= M on the region used; M is set from bounds of both (see build_mux).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np


# ---- the network container ---------------------------------------------------------------
@dataclass
class Layer:
    kind: str  # "dense": W (out, in); "cell": W (K, out, in), block diagonal over the K cells
    W: np.ndarray
    b: np.ndarray
    relu: bool
    shared_input: bool = False  # "cell" layer whose every block reads the same (dense) input
    name: str = ""

    def abs(self):
        """(|W|, |b|), computed once (for the rounding magnitude)."""
        if getattr(self, "_abs", None) is None:
            self._abs = (np.abs(self.W), np.abs(self.b))
        return self._abs

    @property
    def out_width(self) -> int:
        return int(self.W.shape[-2]) * (int(self.W.shape[0]) if self.kind == "cell" else 1)

    @property
    def parameters(self) -> int:
        return int(self.W.size + self.b.size)


@dataclass
class ReLUNet:
    layers: list[Layer]
    in_width: int
    out_width: int

    @property
    def parameters(self) -> int:
        return sum(l.parameters for l in self.layers)

    @property
    def nbytes(self) -> int:
        return sum(l.W.nbytes + l.b.nbytes for l in self.layers)

    @property
    def depth(self) -> int:
        return len(self.layers)

    def arrays(self, prefix: str) -> dict:
        out = {}
        for n, l in enumerate(self.layers):
            out[f"{prefix}{n}_W"] = l.W
            out[f"{prefix}{n}_b"] = l.b
        return out

    def describe(self, prefix: str) -> list[dict]:
        return [{"key_W": f"{prefix}{n}_W", "key_b": f"{prefix}{n}_b", "name": l.name, "kind": l.kind,
                 "shape_W": list(l.W.shape), "relu": l.relu, "shared_input": l.shared_input}
                for n, l in enumerate(self.layers)]

    def dense_layers(self) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """The same network as plain dense layers (block-diagonal matrices): small sizes only."""
        out = []
        for l in self.layers:
            if l.kind == "dense":
                out.append((l.W, l.b, l.relu))
                continue
            K, o, i = l.W.shape
            if l.shared_input:
                W = l.W.reshape(K * o, i)
            else:
                W = np.zeros((K * o, K * i))
                for k in range(K):
                    W[k * o:(k + 1) * o, k * i:(k + 1) * i] = l.W[k]
            out.append((W, l.b.reshape(-1), l.relu))
        return out


# ---- affine forms over the units of one per-cell layer -------------------------------------
class _Forms:
    """f affine forms per cell over n units: coef (K, f, n), const (K, f)."""

    __array_ufunc__ = None  # NumPy scalars and arrays defer to the reflected operators below

    def __init__(self, coef, const):
        self.coef, self.const = coef, const

    @classmethod
    def units(cls, K: int, n: int, start: int, count: int) -> "_Forms":
        coef = np.zeros((K, count, n))
        coef[:, np.arange(count), start + np.arange(count)] = 1.0
        return cls(coef, np.zeros((K, count)))

    def __add__(self, other):
        if isinstance(other, _Forms):
            return _Forms(self.coef + other.coef, self.const + other.const)
        return _Forms(self.coef.copy(), self.const + other)

    def __sub__(self, other):
        return self + (-1.0) * other if isinstance(other, _Forms) else self + (-other)

    def __radd__(self, other):
        return self + other

    def __rsub__(self, other):
        return (-1.0) * self + other

    def __rmul__(self, a):
        a = np.asarray(a, dtype=float)
        if a.ndim == 1:  # one factor per cell
            return _Forms(self.coef * a[:, None, None], self.const * a[:, None])
        if a.ndim == 2:  # (K, f) one factor per cell and form
            return _Forms(self.coef * a[:, :, None], self.const * a)
        return _Forms(self.coef * a, self.const * a)

    def __neg__(self):
        return (-1.0) * self

    def sum(self) -> "_Forms":
        return _Forms(self.coef.sum(axis=1, keepdims=True), self.const.sum(axis=1, keepdims=True))

    def take(self, idx) -> "_Forms":
        return _Forms(self.coef[:, idx], self.const[:, idx])


def _cat(*forms: _Forms) -> _Forms:
    return _Forms(np.concatenate([f.coef for f in forms], axis=1),
                  np.concatenate([f.const for f in forms], axis=1))


class _Builder:
    """Emits per-cell ReLU layers; keeps track of which units hold what."""

    def __init__(self, K: int):
        self.K = K
        self.layers: list[Layer] = []

    def emit(self, named: list[tuple[str, _Forms]], relu: bool, name: str, shared: bool = False):
        """One layer computing the given forms; returns {name: forms over the new units}."""
        f = _cat(*(fm for _, fm in named))
        self.layers.append(Layer("cell", f.coef, f.const, relu, shared, name))
        n = f.coef.shape[1]
        out, start = {}, 0
        for key, fm in named:
            cnt = fm.coef.shape[1]
            out[key] = _Forms.units(self.K, n, start, cnt)
            start += cnt
        return out


# ---- h_post --------------------------------------------------------------------------------
@dataclass
class HPost:
    """The built h_post: the network and what it was built from."""

    net: ReLUNet
    target_name: str
    d_out: int
    gains: np.ndarray  # (K, m): w(j, l), row k = j * cells_star + l
    tau: float
    delta: float
    y_max: float
    grid: np.ndarray  # (G,) the y-grid of each label coordinate
    cell_bound: np.ndarray  # (K,) M_k = max |f| on the cell's grid
    centres_x: np.ndarray  # (cells_x, dx)
    centres_star: np.ndarray  # (cells_star, dx)
    table: np.ndarray  # (K, G^dy, d_out): f_target at (centre x_j, grid label, centre x*_l)
    alpha: float
    variant: str
    layout: str
    info: dict = field(default_factory=dict)

    @property
    def K(self) -> int:
        return int(self.gains.shape[0])

    def grid_labels(self) -> np.ndarray:
        """(G^dy, dy) every grid label, in the order of the table's second axis."""
        dy = self.info["dy"]
        return np.array(list(itertools.product(self.grid, repeat=dy)), dtype=float).reshape(-1, dy)

    def arrays(self) -> dict:
        out = self.net.arrays("hpost_layer")
        out.update({"hpost_gains": self.gains, "hpost_grid": self.grid, "hpost_table": self.table,
                    "hpost_tau": np.float64(self.tau), "hpost_delta": np.float64(self.delta)})
        return out

    def describe(self) -> dict:
        return {
            "target": self.target_name, "d_out": self.d_out, "cells": self.K, "grid_size": int(self.grid.size),
            "y_max": self.y_max, "delta": self.delta, "tau": self.tau,
            "parameters": self.net.parameters, "depth": self.net.depth,
            "layers": self.net.describe("hpost_layer"),
            "forward": ("x = zbar*; for each layer: dense x = W x + b; cell (shared input) x_k = W[k] x + b[k]; "
                        "cell x_k = W[k] x_k + b[k] (x reshaped to K blocks); ReLU where relu is true; "
                        "a dense layer after cell layers reads the K blocks flattened (cell-major)"),
            "exact": "at bin centres and grid labels with |y|_1 >= delta (up to rounding)",
            "approximate": "between grid labels (piecewise-linear in y), off bin centres (f read at centres), "
                           "and for |y|_1 < delta (cell gates partly open)",
        }


def cell_centres(per_axis: int, dx: int) -> np.ndarray:
    """(per_axis^dx, dx) the centre of each flattened cell (row-major, as features.cell)."""
    pts = list(itertools.product(range(per_axis), repeat=dx))
    return (np.array(pts, dtype=float).reshape(-1, dx) + 0.5) / per_axis


def cell_gains(con) -> np.ndarray:
    """w(j, l) for every cell, (K, m): w_c = sum_{c'} c_{c'}(j, l) (A_{c'+2}) on channel c."""
    b = con.blocks
    first = [b.channel_local(c).start for c in range(b.m)]
    gain = np.array([[float(con.A[i - 1][k]) for k in first] for i in range(2, con.N)])
    codes = np.asarray(con.codes, dtype=float).reshape(b.m, -1)
    return codes.T @ gain


def build_hpost(con, target, *, grid_size: int = 9, y_max: float = 2.0, delta: float = 0.1,
                d_out: int | None = None) -> HPost:
    """h_post for ``con`` that reads f_target off zbar* (``target``: a :class:`~universality.targets.Target`)."""
    d, b = con.design, con.blocks
    dy, dx, m, K = d.dy, d.dx, b.m, b.cells_x * b.cells_star
    alpha = float(d.alpha)
    if grid_size < 2:
        raise ValueError("the y-grid needs at least 2 points")
    w = cell_gains(con)  # (K, m)
    wn2 = np.einsum("km,km->k", w, w)
    if np.any(wn2 == 0):
        raise ValueError("a cell has the zero code: h_post cannot read it (truncated layout?)")
    # --- separation of the cells and the gate scale tau
    P = np.eye(m)[None] - w[:, :, None] * w[:, None, :] / wn2[:, None, None]  # (K, m, m)
    if K > 1:
        sep = math.inf
        step = max(1, 2**22 // max(1, K * m))  # rows of |P_k w_j|_1 per chunk: bounded memory
        for k0 in range(0, K, step):
            dist = np.abs(np.einsum("kab,jb->kja", P[k0:k0 + step], w)).sum(axis=2)  # (chunk, K)
            rows = np.arange(dist.shape[0])
            dist[rows, k0 + rows] = np.inf
            sep = min(sep, float(dist.min()))
    else:
        sep = 1.0
    if not sep > 0:
        raise ValueError("two cells have parallel codes: h_post cannot tell them apart")
    tau = 0.5 * abs(alpha) * delta * sep
    grid = np.linspace(-y_max, y_max, grid_size)
    hstep = grid[1] - grid[0]
    lo, hi = grid[0], grid[-1]
    labels = np.array(list(itertools.product(grid, repeat=dy)), dtype=float).reshape(-1, dy)
    cx, cs = cell_centres(d.J, dx), cell_centres(d.L, dx)
    table = np.array([[target(cx[k // b.cells_star], yl, cs[k % b.cells_star]) for yl in labels]
                      for k in range(K)], dtype=float)  # (K, P, d_out)
    if d_out is None:
        d_out = table.shape[2]
    Mk = np.abs(table).reshape(K, -1).max(axis=1) * (1 + 1e-9) + 1e-300

    layers: list[Layer] = []
    # A: U = z+ - z- (signed) or z (paper); U is (m, dy) flattened channel-major
    S = np.zeros((m * dy, b.dm))
    for c in range(m):
        for comp in range(dy):
            S[c * dy + comp, b.mid_local(c, 0, comp)] = 1.0
            if b.s == 2:
                S[c * dy + comp, b.mid_local(c, 1, comp)] = -1.0
    layers.append(Layer("dense", S, np.zeros(m * dy), relu=False, name="A: signed channel values U"))

    bld = _Builder(K)
    eye_dy = np.eye(dy)
    R = _Forms(np.einsum("kab,de->kadbe", P, eye_dy).reshape(K, m * dy, m * dy), np.zeros((K, m * dy)))
    Ycoef = (w / (-alpha * wn2[:, None]))[:, None, :, None] * eye_dy[None, :, None, :]  # (K, dy, m, dy)
    Yh = _Forms(Ycoef.reshape(K, dy, m * dy), np.zeros((K, dy)))
    u = bld.emit([("rp", R), ("rm", -R), ("ylo", Yh - lo), ("yhi", Yh - hi)], relu=True,
                 name="B: distance to each cell's line, label read as if the cell were k", shared=True)
    s = (u["rp"] + u["rm"]).sum()
    q = 1.0 - (1.0 / tau) * s
    t = u["ylo"] - u["yhi"]  # clip(yhat) - lo, in [0, hi - lo]
    # hat arguments u_gd = (t_d + lo - grid[g_d]) / h for every grid label g and coordinate d
    idx = np.array(list(itertools.product(range(grid_size), repeat=dy)), dtype=int).reshape(-1, dy)
    Pn = idx.shape[0]

    def arg(tf: _Forms, dcoord: int) -> _Forms:
        one = tf.take([dcoord] * Pn)
        return (1.0 / hstep) * (one + (lo - grid[idx[:, dcoord]])[None, :])

    u = bld.emit([("q", q), ("t", t), ("a", arg(t, 0)), ("b", -arg(t, 0))], relu=True,
                 name="C: cell gates, clamped label, hat arguments (coordinate 1)")
    a_run, b_run = u["a"], u["b"]
    for dcoord in range(1, dy):
        ud = arg(u["t"], dcoord)
        u = bld.emit([("q", u["q"]), ("t", u["t"]), ("a", a_run), ("b", b_run),
                      ("A", ud - a_run), ("B", -ud - b_run)], relu=True,
                     name=f"C{dcoord + 1}: running max over label coordinate {dcoord + 1}")
        a_run, b_run = u["a"] + u["A"], u["b"] + u["B"]
    u = bld.emit([("q", u["q"]), ("hat", 1.0 - a_run - b_run)], relu=True,
                 name="H: Courant hat of every grid label")
    F = np.transpose(table, (0, 2, 1))  # (K, d_out, P)
    p = _Forms(np.einsum("kop,kpn->kon", F, u["hat"].coef), np.zeros((K, d_out)))
    closed = (1.0 - u["q"].take([0] * d_out))  # 1 - q, repeated per output
    bigM = np.repeat(Mk[:, None], d_out, axis=1)
    u = bld.emit([("op", p - bigM * closed), ("om", -p - bigM * closed)], relu=True,
                 name="O: gated value p_k = sum_g f(x_j, y_g, x*_l) hat_g")
    layers += bld.layers
    Ssum = np.zeros((d_out, K * 2 * d_out))
    for k in range(K):
        base = k * 2 * d_out
        Ssum[:, base:base + d_out] = np.eye(d_out)
        Ssum[:, base + d_out:base + 2 * d_out] = -np.eye(d_out)
    layers.append(Layer("dense", Ssum, np.zeros(d_out), relu=False, name="S: sum over cells"))
    net = ReLUNet(layers, b.dm, d_out)
    return HPost(net=net, target_name=getattr(target, "name", "callable"), d_out=d_out, gains=w, tau=tau,
                 delta=delta, y_max=y_max, grid=grid, cell_bound=Mk, centres_x=cx, centres_star=cs,
                 table=table, alpha=alpha, variant=d.variant, layout=d.layout,
                 info={"dy": dy, "dx": dx, "separation": sep, "cells_x": b.cells_x, "cells_star": b.cells_star})


# ---- the multiplexer -----------------------------------------------------------------------
@dataclass
class Mux:
    """f_out(z) = clip(W_g z, -M q, M q) + ReLU(h - M q) - ReLU(-h - M q), q the closed-gate unit."""

    hpost: HPost
    mid: slice
    kappa0: float
    kappa1: float
    M: float

    def arrays(self) -> dict:
        return {"mux_kappa0": np.float64(self.kappa0), "mux_kappa1": np.float64(self.kappa1),
                "mux_M": np.float64(self.M)}

    def describe(self) -> dict:
        return {"kappa0": self.kappa0, "kappa1": self.kappa1, "M": self.M,
                "formula": "s = sum(zbar); q = ReLU(1 - ReLU(s - kappa0) / (kappa1 - kappa0)); g = Wg z; "
                           "h = h_post(zbar); f_out = g - ReLU(g - M q) + ReLU(-g - M q) + ReLU(h - M q) "
                           "- ReLU(-h - M q)"}


def build_mux(con, hpost: HPost) -> Mux:
    """The realised multiplexer for ``con`` and ``hpost`` (labels with |y|_1 >= delta, |y| <= y_max)."""
    b, alpha = con.blocks, abs(float(con.design.alpha))
    w1 = np.abs(hpost.gains).sum(axis=1)
    # post-step, |y|_1 >= delta: sum(zbar*) = |alpha| |y|_1 |w_k|_1 (the surviving copy of each pair)
    kappa1 = 0.5 * alpha * hpost.delta * float(w1.min())
    kappa0 = 0.5 * kappa1
    # |g| after the step: W_g z* = -sum_c U_c + wcheck_g zcheck*, each at most |alpha| |y| (|w|_1 + 1)
    dy = hpost.info["dy"]
    g_bound = alpha * hpost.y_max * dy * (float(w1.max()) + 1.0) * max(1.0, float(np.abs(con.Wg).max()))
    h_bound = float(hpost.cell_bound.sum())  # at zbar = 0 every cell gate is open
    M = 2.0 * max(g_bound, h_bound, 1.0)
    return Mux(hpost=hpost, mid=b.mid, kappa0=kappa0, kappa1=kappa1, M=M)
