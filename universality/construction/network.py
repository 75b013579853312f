"""The explicit weights of the construction (spec section 1-2, paper eq. (2), App. A.3).

Pure builders, no execution. From the chosen A_i (output side) and B_i (input side):

* P_1 = I, P_i = (A_i / r^i)^{1/2} (diagonal), Wbar_i = P_i^{-1} P_{i+1} (i < N), Wbar_N = I;
* B_i = [[I, 0], [G_i^T, I]] with G_i the code table of channel i-2, B_1 = B_N = I;
  Wtilde_1 = I, Wtilde_i = B_{i-1} B_i^{-1} = [[I, 0], [G_{i-1}^T - G_i^T, I]] (i >= 2);
* wcheck_i = 1; W_i = blockdiag(Wtilde_i, Wbar_i, wcheck_i), a full D x D matrix;
* W_g = [0, Wbar_g, wcheck_g] with Wbar_g = [+/-Lambda^{-T} ...] and wcheck_g = Lambda^{-T} 1, so
  that the error at z is [0; e_bar(y); e_check(y)], e_bar(y) = m copies of [y; -y] (signed) or [y]
  (paper), e_check(y) = sum(y). (MSE; other losses supply their own (H, u) = (Lambda^{-T}, wcheck_g)
  through ``loss.head``, see losses.py.)

The factor 1/r^i compensates the ReLU'(0) = r convention exactly: every middle unit sits at the
kink before the step, so backprop scales term i by r^i. r = 0 cannot be compensated (A_i is left
as chosen and the construction collapses, which the findings show).
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from functools import cached_property

import numpy as np

from ..blocks import Blocks
from ..config import Config
from ..losses import get_loss
from .codes import code_table, compact_channel
from .features import phi as _phi, cell as _cell
from .fields import NUMERIC


@dataclass(frozen=True)
class Design:
    """What to build: sizes and choices, independent of the number field.

    Parameters
    ----------
    N, J, L, dx, dy : int
        Depth, cells per axis of x and x*, input and label dimensions (see :class:`~universality.Config`).
    variant, layout, loss : str
        Resolved choices (``layout`` is ``paper``, ``compact`` or ``truncated``, never ``auto``).
    eps, alpha, relu_grad_at_zero : float
        The epsilon of A_i, the inner learning rate and ReLU'(0).

    Build one from a validated Config with :meth:`Design.from_config`.
    """

    N: int
    J: int
    L: int
    dx: int = 1
    dy: int = 1
    variant: str = "signed"
    layout: str = "compact"  # resolved: paper | compact | truncated
    eps: float = 0.1
    alpha: float = 0.3
    relu_grad_at_zero: float = 1.0
    loss: str = "mse"

    @classmethod
    def from_config(cls, cfg: Config) -> "Design":
        return cls(N=cfg.N, J=cfg.J, L=cfg.L, dx=cfg.dx, dy=cfg.dy, variant=cfg.variant,
                   layout=cfg.resolved_layout, eps=cfg.eps, alpha=cfg.alpha,
                   relu_grad_at_zero=cfg.relu_grad_at_zero, loss=cfg.loss)

    def with_(self, **changes) -> "Design":
        from dataclasses import replace

        return replace(self, **changes)

    @property
    def blocks(self) -> Blocks:
        return Blocks(cells_x=self.J**self.dx, cells_star=self.L**self.dx, m=self.N - 2,
                      s=2 if self.variant == "signed" else 1, dy=self.dy)


@dataclass
class Construction:
    """The built network: weights in one number field plus the paper-side objects they came from.

    Attributes
    ----------
    design : Design
        What was built.
    blocks : Blocks
        The named channels (top, middle, bottom) and their index ranges.
    W : ndarray of shape (N, D, D), or a list of SymPy matrices
        The weights; ``W[k]`` is paper layer k + 1 and ``W[N-1]`` acts first.
    Wg : ndarray of shape (dy, D)
        The output head g_pre.
    theta_b : scalar
        The switch parameter, 0 before the step.
    codes, A, A_built, G : list
        The code table, the chosen A_i, the A_i / r^i the weights realise, and the B_i code matrices.
    """

    design: Design
    blocks: Blocks
    field: object
    W: object  # numeric: array (N, D, D), W[k] = paper layer k+1; exact: list of Matrix
    Wg: object  # (dy, D)
    theta_b: object  # scalar, 0
    codes: object  # [c][j][l]
    A: list  # A[i-1]: diagonal (length dm) of the chosen A_i (i = 1..N), A_1 = I
    A_built: list  # A[i-1] / r^i: what the weights realise (= A when r = 1)
    G: list  # G[i-1]: cells_x x cells_star code matrix of B_i (zero for i = 1, N)
    extras: dict = dc_field(default_factory=dict)

    # ---- conveniences --------------------------------------------------------------------
    @property
    def N(self) -> int:
        return self.design.N

    @property
    def D(self) -> int:
        return self.blocks.D

    @property
    def loss(self):
        return get_loss(self.design.loss)

    def phi(self, u, theta_b):
        return _phi(u, theta_b, self.design.J, self.design.L, self.blocks, self.field)

    def bin_x(self, u) -> int:
        return _cell(u, self.design.J)

    def bin_star(self, u) -> int:
        return _cell(u, self.design.L)

    def B(self, i: int):
        """The chosen B_i = [[I, 0], [G_i^T, I]] (dt x dt), i = 1..N."""
        b, f = self.blocks, self.field
        out = f.eye(b.dt)
        G = self.G[i - 1]
        if f.name == "numeric":
            out[b.top_star, b.top_x] = G.T
        else:
            for j in range(b.cells_x):
                for l in range(b.cells_star):
                    out[b.cells_x + l, j] = G[j][l]
        return out

    def e_bar(self, y):
        """The chosen label map of the middle channel: m copies of [u; -u] (signed) or [u], with
        u = the loss's label code (MSE: u = y; CE: y - mean(y); see losses.py)."""
        y = self.loss.label_code(y)
        b = self.blocks
        unit = np.concatenate([y, -y]) if b.s == 2 else y
        return np.tile(unit, b.m)

    def e_check(self, y) -> float:
        """The chosen bottom label map: sum(y) for MSE (the loss's closed form in general)."""
        return self.loss.e_check(y)

    def v(self, x, x_star, y) -> np.ndarray:
        """The paper's linear prediction v = sum_{i=2}^{N-1} c_{i-2}(bin x, bin x*) A_i e_bar(y) (Lemma 4.1)."""
        code = self.code_vector(self.bin_x(x), self.bin_star(x_star))
        ebar = self.e_bar(y)
        out = np.zeros(self.blocks.dm)
        for c in range(self.blocks.m):
            out += code[c] * np.asarray(self.A[c + 1], dtype=float) * ebar
        return out

    def code_vector(self, j: int, l: int):
        """c(j, l) in R^m (numeric)."""
        vector = getattr(self.codes, "vector", None)
        return vector(j, l) if vector is not None else np.asarray(self.codes)[:, j, l]

    @cached_property
    def channel_gain(self):
        """gain[c, k] = (A_{c+2})_kk: how term c+2 of the sum weights middle coordinate k."""
        return np.array([self.A[i - 1] for i in range(2, self.N)], dtype=float)  # (small sizes)


def _num_diag(values, field):
    return np.array(values, dtype=float) if field.name == "numeric" else list(values)


def build(design: Design | Config, field=NUMERIC, engine: str | None = None, *,
          _stream_tables: bool | None = None) -> Construction:
    """Build the weights of ``design`` in ``field``.

    Parameters
    ----------
    design : Design or Config
        What to build; a Config is validated already and converted with :meth:`Design.from_config`.
    field : NumberField, optional
        ``NUMERIC`` (float64 NumPy arrays, the default) or an ``ExactField()`` (SymPy rationals).
    engine : str, optional
        How the numeric weights are stored: "dense" (one N x D x D array) or "sparse" (one CSR
        matrix per layer, built directly, never through the dense stack: see
        :mod:`universality.engine.layers`). The entries are the same. Default: the Config's
        ``resolved_engine``, dense for a bare Design.
    _stream_tables : bool, optional
        Internal (tests): force the numeric code table channel by channel (True) or as one array
        (False); default: by size (``STREAM_TABLES_ABOVE``).

    Returns
    -------
    Construction
        The weights and the paper-side objects (A_i, B_i, codes) they came from. Pure: nothing is
        executed here.
    """
    if isinstance(design, Config):
        engine = engine or design.resolved_engine
        design = Design.from_config(design)
    engine = engine or "dense"
    if field.name == "numeric":
        return _build_numeric(design, engine, _stream_tables)
    b = design.blocks
    f = field
    N, dm, dt = design.N, b.dm, b.dt
    one, zero = f.num(1), f.num(0)
    eps = f.num(design.eps)
    r = f.num(design.relu_grad_at_zero)
    scale = r if design.relu_grad_at_zero != 0 else one

    codes = code_table(design.layout, b.cells_x, b.cells_star, b.m, f)

    # chosen A_i (diagonal): A_1 = I forced, A_i = eps I + E_{i-2}, A_N = eps I
    A = []
    for i in range(1, N + 1):
        if i == 1:
            diag = [one] * dm
        elif i == N:
            diag = [eps] * dm
        else:
            diag = [eps + (one if b.channel_of_local(k) == i - 2 else zero) for k in range(dm)]
        A.append(_num_diag(diag, f))
    A_built = [A[0]] + [
        _num_diag([a / scale**i for a in A[i - 1]], f) for i in range(2, N + 1)
    ]
    # P_i = A_built_i^{1/2}; Wbar_i = P_i^{-1} P_{i+1} (i < N), Wbar_N = I
    P = [[f.sqrt(a) for a in A_built[i]] for i in range(N)]
    Wbar = [[P[i][k] / P[i - 1][k] if i < N else one for k in range(dm)] for i in range(1, N + 1)]
    # G_i: code matrices of B_i; B_1 = B_N = I
    zeroG = [[zero] * b.cells_star for _ in range(b.cells_x)]
    G = [zeroG] + [codes[i - 2] for i in range(2, N)] + [zeroG]

    W = f.stack(N, b.D, b.D)
    for k in range(N):
        i = k + 1
        Wk = W[k]
        for t in range(dt):
            Wk[t, t] = one
        if i >= 2:
            for j in range(b.cells_x):
                for l in range(b.cells_star):
                    Wk[b.cells_x + l, j] = G[i - 2][j][l] - G[i - 1][j][l]
        for q in range(dm):
            Wk[dt + q, dt + q] = Wbar[k][q]
        Wk[b.bottom, b.bottom] = one
    Wg = _head(design, b, f)
    return Construction(design=design, blocks=b, field=f, W=W, Wg=Wg, theta_b=zero,
                        codes=codes, A=A, A_built=A_built, G=G)


class Table:
    """A read-only sequence of the builder's per-layer (or per-channel) arrays, each computed from its
    formula when read, never held all at once: the paper layout at J = L = 128 has N = 16,386 layers
    with diagonals of dm = 32,768 entries (4.3 GB per table held as arrays). ``np.asarray(table)``
    stacks them (small sizes: figures, the export's code table, the decoder of h_post)."""

    def __init__(self, n: int, entry):
        self._n, self._entry = int(n), entry

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._entry(k) for k in range(*i.indices(self._n))]
        i = int(i)
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return self._entry(i % self._n)

    def __iter__(self):
        return (self._entry(k) for k in range(self._n))

    def __array__(self, dtype=None, copy=None):
        out = np.stack([np.asarray(self._entry(k)) for k in range(self._n)]) if self._n else np.zeros((0,))
        return out if dtype is None else out.astype(dtype)


class CodeTable(Table):
    """The numeric code table, channel by channel: ``codes[c]`` is the (cells_x, cells_star) table of
    channel c (the entries :func:`code_table` gives, computed for that channel alone),
    ``codes.vector(j, l)`` the code of one cell; ``np.asarray(codes)`` the (m, cells_x, cells_star) array."""

    def __init__(self, layout: str, cells_x: int, cells_star: int, m: int):
        self.layout, self.cells_x, self.cells_star, self.m = layout, cells_x, cells_star, m
        super().__init__(m, self._channel)

    def _channel(self, c: int) -> np.ndarray:
        if self.layout == "compact":
            return compact_channel(c, self.cells_x, self.cells_star)
        if self.layout in ("paper", "truncated"):
            out = np.zeros((self.cells_x, self.cells_star))
            if c < self.cells_x * self.cells_star:
                out[c % self.cells_x, c // self.cells_x] = 1.0  # channel j + J l
            return out
        raise ValueError(f"unknown layout {self.layout!r}")

    def vector(self, j: int, l: int) -> np.ndarray:
        """c(j, l) in R^m."""
        if self.layout == "compact":  # one cell of every channel (small m; the same numbers as codes[c])
            return np.array([compact_channel(c, self.cells_x, self.cells_star)[j, l] for c in range(self.m)])
        out = np.zeros(self.m)
        ch = j + self.cells_x * l
        if ch < self.m:
            out[ch] = 1.0
        return out

    def __array__(self, dtype=None, copy=None):
        out = code_table(self.layout, self.cells_x, self.cells_star, self.m, NUMERIC)
        return out if dtype is None else out.astype(dtype)


# the numeric builder holds its code table as one array up to this many entries (32 MiB), and computes
# it channel by channel above (CodeTable); the per-layer diagonals are always computed when read
STREAM_TABLES_ABOVE = 1 << 22


def _build_numeric(design: Design, engine: str, stream: bool | None = None) -> Construction:
    """The float64 builder, vectorised: the same entries as the exact one, rounded once.

    The per-layer tables (the chosen A_i, the A_i / r^i the weights realise, the code channels and
    the B_i code matrices) are :class:`Table` sequences computed per entry when read, and the layers
    are produced one at a time for the layer store, so nothing N x dm or m x cells is held."""
    b = design.blocks
    N, dm, dt, D = design.N, b.dm, b.dt, b.D
    r = design.relu_grad_at_zero
    scale = r if r != 0 else 1.0
    if stream is None:
        stream = b.m * b.cells_x * b.cells_star > STREAM_TABLES_ABOVE
    # the code table: held as one array at small sizes (code_table), channel by channel above
    codes = CodeTable(design.layout, b.cells_x, b.cells_star, b.m) if stream else code_table(
        design.layout, b.cells_x, b.cells_star, b.m, NUMERIC)
    channel = np.arange(dm) // (b.s * b.dy)
    eps = float(design.eps)

    def A_of(k: int) -> np.ndarray:  # A[k] = A_{k+1}
        i = k + 1
        if i == 1:
            return np.ones(dm)
        return np.full(dm, eps) if i == N else design.eps + (channel == i - 2).astype(float)

    def A_built_of(k: int) -> np.ndarray:
        return A_of(0) if k == 0 else A_of(k) / scale**(k + 1)

    A = Table(N, A_of)
    A_built = Table(N, A_built_of)

    def Wbar_of(k: int) -> np.ndarray:  # Wbar_{k+1} = P_{k+2} / P_{k+1}, Wbar_N = I
        return np.sqrt(A_built_of(k + 1)) / np.sqrt(A_built_of(k)) if k + 1 < N else np.ones(dm)

    zeroG = np.zeros((b.cells_x, b.cells_star))
    G = Table(N, lambda k: codes[k - 1] if 1 <= k <= N - 2 else zeroG)
    diag = np.arange(D)
    if engine == "sparse":
        from ..engine.layers import SparseLayers

        def Wbar_rows(k0: int, k1: int) -> np.ndarray:
            """Wbar_of(k) for k = k0 .. k1 - 1 as rows of one array: the same operations on each
            entry (so the same values, bit for bit), a chunk of layers at a time."""
            ks = np.arange(k0, min(k1 + 1, N))
            Ab = eps_exact + (channel[None, :] == (ks - 1)[:, None])  # A_of(k), middle layers
            Ab[ks == 0] = 1.0  # A_1 = I
            Ab[ks == N - 1] = eps  # A_N = eps I
            if scale != 1.0:  # A_built_of(k) = A_of(k) / scale^(k + 1), k >= 1 (x / 1.0 == x)
                div = np.array([1.0 if k == 0 else scale**(k + 1) for k in ks.tolist()])
                Ab /= div[:, None]
            root = np.sqrt(Ab)
            out = np.empty((k1 - k0, dm))
            m = min(k1, N - 1) - k0  # rows with k + 1 < N
            if m > 0:
                np.divide(root[1:m + 1], root[:m], out=out[:m])
            out[max(m, 0):] = 1.0
            return out

        eps_exact = design.eps
        ones_top = np.ones(dt)

        def layer(k: int, wbar: np.ndarray):
            """Layer k + 1's entries (rows, cols, values) in CSR order: the diagonal (1 on the top
            and bottom channels, Wbar on the middle ones) with the code block's nonzeros G_{i-1} - G_i
            (rows of the x* slots, columns of the x slots: left of the diagonal) placed before the
            diagonal entry of their row (the order the layer store converts fastest; any order is
            the same layer)."""
            i = k + 1
            vals = np.concatenate([ones_top, wbar, [1.0]])
            if i < 2:
                return diag, diag, vals
            Gd = (G[i - 2] - G[i - 1]).T  # (cells_star, cells_x)
            rr, cc = np.nonzero(Gd)
            at = rr + b.cells_x
            return np.insert(diag, at, at), np.insert(diag, at, cc), np.insert(vals, at, Gd[rr, cc])

        def triplets(chunk: int = 64):
            for k0 in range(0, N, chunk):
                k1 = min(k0 + chunk, N)
                wb = Wbar_rows(k0, k1)
                for k in range(k0, k1):
                    yield layer(k, wb[k - k0])

        per_layer = 2 if design.layout in ("paper", "truncated") else b.cells_x * b.cells_star
        W = SparseLayers.from_triplets(triplets(), D, expected_nnz=N * (D + per_layer), N=N)
    elif engine == "dense":
        W = np.zeros((N, D, D))
        for k in range(N):
            i = k + 1
            W[k, diag[:dt], diag[:dt]] = 1.0
            if i >= 2:
                W[k, b.top_star, b.top_x] = (G[i - 2] - G[i - 1]).T
            W[k, diag[dt:dt + dm], diag[dt:dt + dm]] = Wbar_of(k)
            W[k, b.bottom, b.bottom] = 1.0
    else:
        raise ValueError(f"unknown engine {engine!r} (dense or sparse)")
    Wg = _head(design, b, NUMERIC)
    return Construction(design=design, blocks=b, field=NUMERIC, W=W, Wg=Wg, theta_b=0.0,
                        codes=codes, A=A, A_built=A_built, G=G)


def _head(design, b, f):
    # output head g_pre: W_g = [0, Wbar_g, wcheck_g]
    # (H, u) from the loss: e_bar's unit is H^T grad l(y, 0), e_check(y) = u^T grad l(y, 0)
    # (MSE: H = -I, u = -1, the Lambda^{-T} recipe; see losses.py for CE and the others)
    dt = b.dt
    loss = get_loss(design.loss)
    H, u = loss.head(design.dy, f)
    Wg = f.zeros(design.dy, b.D)
    for c in range(b.m):
        for sgn in range(b.s):
            sign = 1 if sgn == 0 else -1
            start = dt + b.mid_local(c, sgn, 0)
            Wg[:, start:start + design.dy] = sign * H
    if f.name == "numeric":
        Wg[:, b.bottom] = np.asarray(u, dtype=float).reshape(-1)
    else:
        Wg[:, b.bottom] = u

    return Wg
