"""Execution, written once over the layer algebra (:mod:`.layers`): the real forward pass,
reverse-mode backprop, one plain (K-shot averaged) gradient step on every parameter, and the passes
after the step. Nothing here knows the paper's formulas; the claims compare against them.

Network (spec section 1): h_{N+1} = phi, pre_i = W_i h_{i+1}, h_i = ReLU(pre_i) for i = N..1,
z = h_1, yhat = f_out(z) with the multiplexer (:mod:`.heads`). Backprop uses ReLU'(u) = 1 (u > 0),
0 (u < 0) and r (u == 0, the ``relu_grad_at_zero`` option).

The gradient of the linear layer W_i is the outer product d_i h_{i+1}^T of the error at its output and
its input (chain rule). :func:`maml_step` keeps it as those two factors, and the updated network is
the :class:`~.layers.UpdatedLayers` view ``W_i u - alpha d_i (h_{i+1}^T u)``: the real step on every
entry of every full D x D matrix, on any backend, never materialised.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np

from .checkpoint import PostStack, is_lazy, reduce_columns, segment_length, segments
from .heads import HeadOutput, head
from .layers import Layers, UpdatedLayers, as_layers, lowrank_max_abs, lowrank_max_abs_all


@dataclass
class Pass:
    """One forward pass: the input, every pre-activation and every layer output."""

    phi: np.ndarray  # (D,) input
    pre: np.ndarray  # (N, D): pre[k] is the pre-activation of layer k+1
    post: np.ndarray  # (N+1, D): post[k] = h_{k+1}; post[N] = phi

    @property
    def z(self) -> np.ndarray:
        return self.post[0]

    def h(self, i: int) -> np.ndarray:
        """h_i (1-based, paper numbering); h_{N+1} = phi."""
        return self.post[i - 1]


Forward = Pass  # the name the first version used


def layers_of(con_or_W) -> Layers:
    """The :class:`Layers` of a construction (cached on it, keyed by its current weights) or of a
    bare weight stack."""
    if isinstance(con_or_W, Layers):
        return con_or_W
    W = getattr(con_or_W, "W", con_or_W)
    extras = getattr(con_or_W, "extras", None)
    if isinstance(W, Layers):
        return W
    if extras is None:
        return as_layers(W)
    cached = extras.get("_layers")
    if cached is None or cached[0] is not W:
        cached = (W, as_layers(W))
        extras["_layers"] = cached
    return cached[1]


def _checkpoint_segment(layers, columns: int = 1):
    """Layers per checkpoint segment for a pass of ``columns`` vectors through ``layers``, or None
    while its arrays are stored whole (engine/batch.py's rule; float sparse layers only: the dense
    and exact backends run at small sizes)."""
    from . import batch

    if layers.kind != "sparse" or not batch.checkpointed(layers.N, layers.D, columns, lone=True):
        return None
    return segment_length(layers.N)


def _kernel_pass(layers):
    """The compiled pass through ``layers`` (float64 sparse layers, or updated ones over them), or
    None (the generic loop runs; also for ``layers`` None). engine/batch.py's passes use it too."""
    if getattr(layers, "kind", None) != "sparse":
        return None
    from . import kernels

    return kernels.pass_of(layers)


def _lazy_pass(layers, PHI: np.ndarray, seg: int, relu: bool = True):
    """A forward pass of the block PHI (D, K) kept as checkpoints (engine/checkpoint.py): (sweep,
    pre stack, post stack, z block)."""
    from .batch import forward_sweep

    sw = forward_sweep(layers.apply, layers.relu if relu else (lambda u: u), layers.N, seg,
                       np.asarray(PHI, dtype=float), layers=layers, use_relu=relu)
    return sw, sw.stack("pre"), PostStack(sw, 1), sw.final


def forward(layers, phi: np.ndarray, relu: bool = True) -> Pass:
    """The forward pass (``relu=False``: the linear network, the products W_1 ... W_N phi). Above
    the checkpointing threshold its per-layer arrays are checkpointed views (same values)."""
    layers = layers_of(layers)
    N, D = layers.N, layers.D
    seg = _checkpoint_segment(layers)
    if seg is not None:
        _, pre, post, _ = _lazy_pass(layers, np.asarray(phi, dtype=float)[:, None], seg, relu)
        return Pass(phi=layers.asarray(phi), pre=pre[:, :, 0], post=post[:, :, 0])
    post = layers.empty((N + 1, D))
    pre = layers.empty((N, D))
    post[N] = phi
    kp = _kernel_pass(layers)
    if kp is not None:  # one compiled call (engine/kernels.py): the same values
        z = kp.sweep(0, N, post[N].reshape(D, 1), use_relu=relu, pre=pre.reshape(N, D, 1),
                     inp=post[1:].reshape(N, D, 1))
        post[0] = z[:, 0]
        return Pass(phi=layers.asarray(phi), pre=pre, post=post)
    for k in range(N - 1, -1, -1):
        pre[k] = layers.apply(k, post[k + 1])
        post[k] = layers.relu(pre[k]) if relu else pre[k]
    return Pass(phi=layers.asarray(phi), pre=pre, post=post)


def abs_forward(layers, phi: np.ndarray) -> np.ndarray:
    """|W_k| ... |W_N| |phi| for every k (N, D), no ReLU: the magnitudes that bound rounding."""
    layers = layers_of(layers)
    out = layers.empty((layers.N, layers.D))
    h = layers.abs(layers.asarray(phi))
    kp = _kernel_pass(layers)
    if kp is not None:  # one compiled call (engine/kernels.py): the same values
        kp.sweep(0, layers.N, h.reshape(-1, 1), absolute=True, use_relu=False, pre=out.reshape(layers.N, layers.D, 1))
        return out
    for k in range(layers.N - 1, -1, -1):
        h = layers.abs_apply(k, h)
        out[k] = h
    return out


def backward(layers, fwd: Pass, e: np.ndarray, r: float):
    """Reverse mode from dl/dz = e. Returns (d (N, D): the error at each layer's pre-activation, so
    that dl/dW_k = d[k] fwd.post[k+1]^T; dl/dphi (D,))."""
    layers = layers_of(layers)
    N = layers.N
    d = layers.empty((N, layers.D))
    g = layers.asarray(e)
    if layers.kind == "sparse" and isinstance(fwd.pre, np.ndarray):
        from . import kernels

        seg = kernels.backward_segment(layers, fwd.pre.reshape(N, layers.D, 1), r)
        if seg is not None:  # one compiled call: the same values
            g = seg(0, N, g.reshape(-1, 1), (d.reshape(N, layers.D, 1),))
            return d, g[:, 0]
    for k in range(N):
        d[k] = layers.relu_grad_mul(fwd.pre[k], g, r)
        g = layers.apply_T(k, d[k])
    return d, g


def row_abs_max(M: np.ndarray) -> np.ndarray:
    """Per row (layer) max |M| of a float block (n, D), as max(max M, -min M): no |M| copy; 0 for a
    row of no entries. The maximum is exact, so the value is that of np.abs(M).max(axis=1)."""
    return np.maximum(M.max(axis=1, initial=0.0), -M.min(axis=1, initial=0.0))


def _kernel_factor_block_max(st, dt: int):
    """Step.factor_block_max's four maxima through a compiled kernel (float64 sparse layers, kernels
    enabled): for a step of a group (engine/batch.py), every sample's at once from the group's
    factors (computed once per group, one traversal of the factors instead of a strided one per
    sample); else the step's own. The same values (max is exact). None where the kernels are off."""
    layers = st.W_post.base
    if getattr(layers, "kind", None) != "sparse":
        return None
    from . import kernels

    if not kernels.usable(layers):
        return None
    grp = getattr(st, "group", None)
    if grp is not None and isinstance(grp.dfac, np.ndarray) and isinstance(grp.hfac, np.ndarray):
        def make(g):
            out = np.empty((4, g.dfac.shape[0], g.dfac.shape[2]))
            kernels.factor_block_max(g.dfac, dt, out, 0)
            kernels.factor_block_max(g.hfac, dt, out, 2)
            return out

        out = grp.cached(("factor block max", dt), make)
        c = st.group_index
    else:
        Dm, Hm = st.W_post.Dfac, st.W_post.Hfac
        out = np.empty((4, Dm.shape[0], 1))
        kernels.factor_block_max(Dm, dt, out, 0)
        kernels.factor_block_max(Hm, dt, out, 2)
        c = 0
    return tuple(np.ascontiguousarray(out[i, :, c]) for i in range(4))


def factor_max(d: np.ndarray, h: np.ndarray) -> float:
    """max over the layers of max |d_k| max |h_k|: max |d_k h_k^T| of rank-one factors (n, D) each,
    without forming them (an exact ring's elements through their own abs)."""
    if d.dtype == object:
        return float(np.max(np.abs(d).max(axis=1) * np.abs(h).max(axis=1), initial=0.0))
    return float(np.max(row_abs_max(d) * row_abs_max(h), initial=0.0))


@dataclass
class Step:
    """One real MAML step theta' = theta - alpha (1/K) sum_k grad l(y_k, f(x_k; theta)) on every
    parameter (K = 1: the one-shot step), and the forward pass at x* after it.

    Only what the claims read is stored; the other passes are computed on first use.
    """

    con: object = field(repr=False)
    xs: list
    ys: list  # (dy,) arrays
    x_star: object
    alpha: float
    r: float
    passes: list  # Pass at each x_k before the step
    outs: list  # HeadOutput at each x_k before the step
    errors: list  # dl_k/dz (D,)
    g_feature: np.ndarray  # (1/K) sum_k dl_k/dphi: what reaches theta_ft (top block) and theta_b
    g_theta_b: float
    g_Wg: np.ndarray
    g_theta_h: float
    W_post: UpdatedLayers  # the updated layers, gradient kept as factors
    theta_b_post: float
    Wg_post: np.ndarray
    phi_star_post: np.ndarray
    fwd_star_post: Pass
    out_star_post: HeadOutput

    # ---- the one-shot view (K = 1) ------------------------------------------------------------
    @property
    def K(self) -> int:
        return len(self.xs)

    @property
    def x(self):
        return self.xs[0]

    @property
    def y(self) -> np.ndarray:
        return self.ys[0]

    @property
    def fwd_x(self) -> Pass:
        return self.passes[0]

    @property
    def phi_x(self) -> np.ndarray:
        return self.passes[0].phi

    @property
    def out_x(self) -> HeadOutput:
        return self.outs[0]

    @property
    def e(self) -> np.ndarray:
        return self.errors[0]

    @property
    def g_phi(self) -> np.ndarray:
        return self.g_feature

    @property
    def branches(self) -> list:
        return [o.branch for o in self.outs]

    @property
    def z_star(self) -> np.ndarray:
        return self.fwd_star_post.z

    @property
    def layers(self) -> Layers:
        return self.W_post.base

    # ---- passes computed on first use ---------------------------------------------------------
    @cached_property
    def phi_star_pre(self) -> np.ndarray:
        return self.con.phi(self.x_star, self.con.theta_b)

    @cached_property
    def fwd_star_pre(self) -> Pass:
        return forward(self.layers, self.phi_star_pre)

    @cached_property
    def phi_x_post(self) -> np.ndarray:
        return self.con.phi(self.x, self.theta_b_post)

    @cached_property
    def fwd_x_post(self) -> Pass:
        return forward(self.W_post, self.phi_x_post)

    # ---- the gradient ---------------------------------------------------------------------------
    def grad_factors(self, k: int):
        """(D_k, H_k), D x K each: dl/dW_{k+1} = D_k H_k^T / K."""
        return self.W_post.Dfac[k], self.W_post.Hfac[k]

    def grad(self, k: int) -> np.ndarray:
        """dl/dW_{k+1} as a dense D x D matrix (small sizes only)."""
        return self.W_post.grad(k)

    @property
    def grads(self) -> np.ndarray:
        """Every dl/dW_i as a dense N x D x D stack (small sizes only: tests and figures)."""
        out = np.empty((self.W_post.N, self.W_post.D, self.W_post.D))
        for k in range(self.W_post.N):
            out[k] = self.W_post.grad(k)
        return out

    def grad_max_abs(self) -> float:
        """max |dl/dW_i| over every entry of every layer, exactly, from the factors (computed once:
        several claims ask, and the factors do not change)."""
        if "_grad_max_abs" not in self.__dict__:
            self.__dict__["_grad_max_abs"] = self._grad_max_abs()
        return self.__dict__["_grad_max_abs"]

    def factor_block_max(self, dt: int):
        """For a one-example float step with its factors stored whole (None otherwise): per layer (N,) each,
        max |d_k| over the rows [0, dt) and [dt, D), and max |h_k| over the same two ranges (0 for
        none), computed once and kept: update-blocks reads the four, the gradient's max |d_k| |h_k|
        their pairwise maxima (max is exact: the same values as reducing the whole rows)."""
        Dm, Hm = self.W_post.Dfac, self.W_post.Hfac
        if Dm.shape[2] != 1 or is_lazy(Dm) or is_lazy(Hm) or Dm.dtype != np.float64 or Hm.dtype != np.float64:
            return None
        key = ("_factor_block_max", int(dt))
        if key not in self.__dict__:
            got = _kernel_factor_block_max(self, int(dt))
            if got is None:
                d, h = Dm[:, :, 0], Hm[:, :, 0]
                got = (row_abs_max(d[:, :dt]), row_abs_max(d[:, dt:]), row_abs_max(h[:, :dt]), row_abs_max(h[:, dt:]))
            self.__dict__[key] = got
        return self.__dict__[key]

    def _grad_max_abs(self) -> float:
        K = self.W_post.Dfac.shape[2]
        blocks = getattr(self.con, "blocks", None)
        parts = self.factor_block_max(blocks.dt) if blocks is not None and K == 1 else None
        if parts is not None:  # max |d_k| max |h_k| per layer from the kept block maxima
            if self.W_post.Dfac.shape[1] == 0:
                return 0.0
            d_top, d_rest, h_top, h_rest = parts
            # (+ 0.0: a zero gradient reads 0, not -0, as the whole-row reduction gives it)
            return float(np.max(np.maximum(d_top, d_rest) * np.maximum(h_top, h_rest), initial=0.0)) + 0.0
        if K == 1 and is_lazy(self.W_post.Dfac):  # checkpointed: every sample of the group in one traversal
            def step(out, k0, k1, parts):
                return max(out, factor_max(parts[0][:, :, 0], parts[1][:, :, 0]))

            return reduce_columns("grad max", (self.W_post.Dfac, self.W_post.Hfac), lambda: 0.0, step)
        out = 0.0
        for _, _, (Dm, Hm) in segments(self.W_post.Dfac, self.W_post.Hfac):  # (checkpointed: a segment at a time)
            if K == 1:  # max |d| max |h| per layer
                if Dm.shape[1] == 0:
                    return 0.0
                m = factor_max(Dm[:, :, 0], Hm[:, :, 0])
            else:
                m = float(lowrank_max_abs_all(Dm, Hm).max(initial=0.0)) / K
            out = max(out, m)
        return out

    def update_max_abs(self) -> float:
        """max |W_i' - W_i| over every entry of every layer (= |alpha| max |dl/dW_i|)."""
        return abs(self.alpha) * self.grad_max_abs()

    def has_gradient(self) -> bool:
        """Is any dl/dW_i entry nonzero? (exact: an outer product is 0 iff a factor is.)"""
        return any(bool(np.any(np.any(Dm != 0, axis=1) & np.any(Hm != 0, axis=1)))
                   for _, _, (Dm, Hm) in segments(self.W_post.Dfac, self.W_post.Hfac))


def updates_diff_max_abs(a: Step, b: Step) -> float:
    """max |W_i'(a) - W_i'(b)| over every entry of every layer, exactly, for two steps from the same
    weights: the difference of their rank-K corrections, searched on the factors' supports."""
    out = 0.0
    same_coef = a.W_post.coef == b.W_post.coef
    for k in range(a.W_post.N):
        if same_coef and np.array_equal(a.W_post.Dfac[k], b.W_post.Dfac[k]) and \
                np.array_equal(a.W_post.Hfac[k], b.W_post.Hfac[k]):
            continue  # the same factors: the same updated layer, bit for bit
        P = np.hstack([a.W_post.coef * a.W_post.Dfac[k], -b.W_post.coef * b.W_post.Dfac[k]])
        Q = np.hstack([a.W_post.Hfac[k], b.W_post.Hfac[k]])
        out = max(out, lowrank_max_abs(P, Q))
    return out


def maml_step(con, xs, ys, x_star, *, r: float | None = None, alpha: float | None = None,
              h_post: Callable | None = None, f_out=None) -> Step:
    """Run the network at every x_k, backprop each example's real loss gradient (``loss.grad``),
    average the K gradients, take one step on every parameter, then run the updated network at x*.

    ``f_out``: an optional realised multiplexer (e.g. :class:`~.heads.NetHead`) used instead of the
    exact indicator head, before the step (its output and its real backprop give the error at z, the
    gradient of W_g and theta_h's gradient) and after it.
    """
    d = con.design
    layers = layers_of(con)
    r = layers.scalar(d.relu_grad_at_zero if r is None else r)
    alpha = layers.scalar(d.alpha if alpha is None else alpha)
    xs = list(xs)
    ys = [layers.asarray(y).reshape(-1) for y in ys]
    if len(xs) != len(ys) or not xs:
        raise ValueError(f"a step needs K >= 1 pairs, got {len(xs)} inputs and {len(ys)} labels")
    K = len(xs)
    b = con.blocks
    Wg, theta_b = con.Wg, layers.scalar(con.theta_b)
    loss = con.loss
    N, D = layers.N, layers.D
    seg = _checkpoint_segment(layers, K) if f_out is None else None
    if seg is not None:
        return _checkpointed_maml_step(con, layers, xs, ys, x_star, r, alpha, h_post, seg)
    Dfac = layers.empty((N, D, K))
    Hfac = layers.empty((N, D, K))
    gphi = layers.zeros(D)
    gWg = layers.zeros(np.shape(Wg))
    g_theta_h = 0.0
    passes, outs, errors = [], [], []
    for j, (x, y) in enumerate(zip(xs, ys)):
        fwd = forward(layers, con.phi(x, theta_b))
        if f_out is not None:
            out, tape = f_out.forward(fwd.z, Wg)
            gy = layers.asarray(loss.grad(y, out.yhat))
            e, g_wg, g_h = f_out.backward(tape, gy, r)
            gWg += g_wg
            g_theta_h = max(g_theta_h, float(g_h))
        else:
            out = head(fwd.z, Wg, b.mid, h_post)
            if out.branch == "g_pre":
                gy = layers.asarray(loss.grad(y, out.yhat))
                e = Wg.T @ gy
                gWg += np.outer(gy, fwd.z)
            else:
                # The gate is already open before the step (a broken construction): h_post is held
                # fixed (theta_h is not trained in the inner loop), so no error reaches z.
                e = layers.zeros(D)
        dk, gp = backward(layers, fwd, e, r)
        Dfac[:, :, j] = dk
        Hfac[:, :, j] = fwd.post[1:]
        gphi += gp
        passes.append(fwd)
        outs.append(out)
        errors.append(e)
    gphi /= K
    gWg /= K
    g_theta_b = layers.scalar(gphi[b.bottom])
    W_post = UpdatedLayers(layers, Dfac, Hfac, -alpha / K)
    theta_b_post = theta_b - alpha * g_theta_b
    Wg_post = Wg - alpha * gWg
    phi_star_post = con.phi(x_star, theta_b_post)
    fwd_star_post = forward(W_post, phi_star_post)
    out_star_post = (head(fwd_star_post.z, Wg_post, b.mid, h_post) if f_out is None
                     else f_out.forward(fwd_star_post.z, Wg_post)[0])
    return Step(con=con, xs=xs, ys=ys, x_star=x_star, alpha=alpha, r=r, passes=passes, outs=outs,
                errors=errors, g_feature=gphi, g_theta_b=g_theta_b, g_Wg=gWg, g_theta_h=g_theta_h,
                W_post=W_post, theta_b_post=theta_b_post, Wg_post=Wg_post, phi_star_post=phi_star_post,
                fwd_star_post=fwd_star_post, out_star_post=out_star_post)


def _checkpointed_maml_step(con, layers, xs, ys, x_star, r, alpha, h_post, seg: int) -> Step:
    """:func:`maml_step` (exact indicator head) with its passes checkpointed: the K examples' forward
    passes and backprop run as one (D, K) block of sweeps (engine/batch.py), each column what the
    lone pass computes; the gradient factors and every pass are :class:`~.checkpoint.LazyStack`
    views recomputed a segment at a time."""
    from .batch import backward_sweep

    b = con.blocks
    K = len(xs)
    Wg, theta_b = con.Wg, layers.scalar(con.theta_b)
    loss = con.loss
    D = layers.D
    PHI = np.column_stack([layers.asarray(con.phi(x, theta_b)) for x in xs])
    fx, pre, post, Z = _lazy_pass(layers, PHI, seg)
    E = np.zeros((D, K))
    gWg = layers.zeros(np.shape(Wg))
    outs, errors = [], []
    for j, y in enumerate(ys):
        out = head(Z[:, j], Wg, b.mid, h_post)
        if out.branch == "g_pre":
            gy = layers.asarray(loss.grad(y, out.yhat))
            E[:, j] = Wg.T @ gy
            gWg += np.outer(gy, Z[:, j])
        outs.append(out)
        errors.append(E[:, j].copy())
    bx = backward_sweep(layers, pre, r, layers.N, seg, E)
    gphi = layers.zeros(D)
    for j in range(K):
        gphi += bx.final[:, j]
    gphi /= K
    gWg /= K
    passes = [Pass(phi=PHI[:, j], pre=pre[:, :, j], post=post[:, :, j]) for j in range(K)]
    g_theta_b = layers.scalar(gphi[b.bottom])
    W_post = UpdatedLayers(layers, bx.stack("d"), fx.stack("inp"), -alpha / K)
    theta_b_post = theta_b - alpha * g_theta_b
    Wg_post = Wg - alpha * gWg
    phi_star_post = con.phi(x_star, theta_b_post)
    fwd_star_post = forward(W_post, phi_star_post)
    out_star_post = head(fwd_star_post.z, Wg_post, b.mid, h_post)
    return Step(con=con, xs=xs, ys=ys, x_star=x_star, alpha=alpha, r=r, passes=passes, outs=outs,
                errors=errors, g_feature=gphi, g_theta_b=g_theta_b, g_Wg=gWg, g_theta_h=0.0,
                W_post=W_post, theta_b_post=theta_b_post, Wg_post=Wg_post, phi_star_post=phi_star_post,
                fwd_star_post=fwd_star_post, out_star_post=out_star_post)


def single_step(con, x, y, x_star, **kw) -> Step:
    """The one-shot step on (x, y), evaluated at x* (:func:`maml_step` with K = 1)."""
    return maml_step(con, [x], [y], x_star, **kw)
