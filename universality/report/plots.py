"""Pictures for the report (matplotlib, Agg backend, imported lazily): PNG bytes, reproducible.

* weights: heatmaps of W_i before and after the real step, the three channels (top | middle |
  bottom) marked;
* delta: Delta W_i = W_i' - W_i per layer on its own scale, the blocks the step may write boxed;
* kshot: each shot's contribution to z̄★ (K > 1);
* codes: the code table c(j, l) (one row per cell, one column per code channel);
* zbar: z̄★ from the real post-step forward pass against −αv (the paper's formula), per channel.
"""
from __future__ import annotations

import io

import numpy as np

MAX_LAYERS_SHOWN = 4
DPI = 110


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def layers_shown(N: int) -> list[int]:
    """Paper layer numbers (1-based) to draw: all when few, else the ends and two code layers."""
    if N <= MAX_LAYERS_SHOWN:
        return list(range(1, N + 1))
    return sorted({1, 2, N - 1, N})


def _mark_channels(ax, b, box: bool) -> None:
    D = b.D
    for cut in (b.dt, b.dt + b.dm):
        ax.axhline(cut - 0.5, color="black", lw=0.7)
        ax.axvline(cut - 0.5, color="black", lw=0.7)
    if box:
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((-0.5, b.dt - 0.5), b.dt, b.dm + 1, fill=False, ec="#e65100", lw=1.6,
                               ls="--"))
    ticks = [b.dt / 2 - 0.5, b.dt + b.dm / 2 - 0.5, D - 1]
    ax.set_xticks(ticks, ["top", "middle", "bot."], fontsize=7)
    ax.set_yticks(ticks, ["top", "middle", "bot."], fontsize=7, rotation=90, va="center")
    ax.tick_params(length=0)


def weights(step, blocks) -> bytes:
    """Rows: W_i before, W_i' after; columns: the layers of :func:`layers_shown`."""
    plt = _plt()
    from matplotlib.colors import TwoSlopeNorm

    Wb = np.asarray(step.W_before, dtype=float)
    Wa = np.asarray(step.W_after, dtype=float)
    N = Wb.shape[0]
    shown = layers_shown(N)
    fig, axes = plt.subplots(2, len(shown), figsize=(2.3 * len(shown) + 0.8, 5.0), squeeze=False)
    vmax = max(float(np.abs(Wb).max()), float(np.abs(Wa).max()), 1e-300)
    rows = [("$W_i$ (before)", Wb), ("$W_i'$ (after the step)", Wa)]
    for r, (name, stack) in enumerate(rows):
        for c, i in enumerate(shown):
            ax = axes[r][c]
            im = ax.imshow(stack[i - 1], cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -vmax, vmax),
                           interpolation="nearest")
            _mark_channels(ax, blocks, box=False)
            if r == 0:
                ax.set_title(f"layer $i = {i}$", fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
        fig.colorbar(im, ax=list(axes[r]), shrink=0.85, pad=0.02)
    return _png(fig)


def delta(step, blocks) -> bytes:
    """Delta W_i = W_i' - W_i for every shown layer, each on its own symmetric colour scale, with
    the (middle, top) and (bottom, top) blocks boxed and the largest change printed."""
    plt = _plt()
    from matplotlib.colors import TwoSlopeNorm

    Wb = np.asarray(step.W_before, dtype=float)
    Wa = np.asarray(step.W_after, dtype=float)
    N = Wb.shape[0]
    shown = layers_shown(N)
    fig, axes = plt.subplots(1, len(shown), figsize=(3.3 * len(shown) + 0.4, 3.3), squeeze=False,
                             gridspec_kw={"wspace": 0.45})
    for c, i in enumerate(shown):
        ax = axes[0][c]
        dW = Wa[i - 1] - Wb[i - 1]
        dm = max(float(np.abs(dW).max()), 1e-300)
        im = ax.imshow(dW, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -dm, dm), interpolation="nearest")
        _mark_channels(ax, blocks, box=True)
        if c:
            ax.set_yticks([])
        ax.set_title(f"$\\Delta W_{{{i}}}$, max $|\\Delta| = {dm:.3g}$", fontsize=8)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cb.ax.tick_params(labelsize=7)
    return _png(fig)


def codes(code_table, J_cells: int, L_cells: int) -> bytes:
    """The code table: row (j, l), column c, value c_c(j, l)."""
    plt = _plt()
    C = np.asarray(code_table, dtype=float)  # (m, cells_x, cells_star)
    m = C.shape[0]
    table = C.reshape(m, -1).T  # (cells, m)
    cells = table.shape[0]
    fig, ax = plt.subplots(figsize=(min(1.2 + 0.55 * m, 9), min(1.0 + 0.22 * cells, 9)))
    im = ax.imshow(table, cmap="viridis", aspect="auto", interpolation="nearest")
    ax.set_xlabel("code channel c (layer i = c + 2)", fontsize=8)
    ax.set_ylabel("cell (j, l)", fontsize=8)
    ax.set_xticks(range(m), [str(c) for c in range(m)] if m <= 24 else [""] * m, fontsize=7)
    if cells <= 40:
        ax.set_yticks(range(cells), [f"({k // L_cells}, {k % L_cells})" for k in range(cells)], fontsize=6)
    else:
        ax.set_yticks([])
    if cells * m <= 160:
        for (k, c), v in np.ndenumerate(table):
            ax.text(c, k, f"{v:.2g}", ha="center", va="center", fontsize=5.5,
                    color="white" if v < 0.6 * table.max() else "black")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title("Code table c(j, l)", fontsize=9)
    return _png(fig)


def zbar(step, blocks, variant: str, alpha: float, failing: bool = False) -> bytes:
    """z̄★ (real forward pass) against −αv (formula) for every middle coordinate, by channel."""
    plt = _plt()
    z = np.asarray(step.zbar_star, dtype=float)
    t = np.asarray(step.minus_alpha_v, dtype=float)
    k = np.arange(z.size)
    fig, ax = plt.subplots(figsize=(min(2.5 + 0.28 * z.size, 10), 3.4))
    ax.bar(k, z, width=0.7, color="#90caf9", label=r"$\bar z^\star$ (real forward pass after the real step)")
    ax.plot(k, t, "x", color="#c62828", ms=6, label=r"$-\alpha v$ (paper's formula)")
    if variant == "signed":
        ax.plot(k, np.maximum(t, 0), "o", mfc="none", color="#2e7d32", ms=7,
                label=r"$\max(-\alpha v, 0)$ (what the ReLUs keep)")
    ax.axhline(0, color="black", lw=0.6)
    lo, hi = min(float(z.min()), float(t.min()), 0.0), max(float(z.max()), float(t.max()), 0.0)
    pad = 0.08 * max(hi - lo, 1e-12)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(-0.7, z.size - 0.3)
    w = blocks.s * blocks.dy
    for c in range(1, blocks.m):
        ax.axvline(c * w - 0.5, color="#9e9e9e", lw=0.6, ls=":")
    if blocks.m <= 24:
        ax.set_xticks([c * w + (w - 1) / 2 for c in range(blocks.m)], [f"c{c}" for c in range(blocks.m)],
                      fontsize=7)
    ax.set_xlabel("middle coordinate, grouped by code channel" +
                  (" (+ and - copies)" if variant == "signed" else ""), fontsize=8)
    s = step.sample
    head = "clipped label: " if failing else ""
    ax.set_title(f"{head}sample {step.index}: $x = {_pt(s.x)}$, $x^\\star = {_pt(s.x_star)}$, "
                 f"$y = {_pt(s.y)}$, cell {tuple(int(c) for c in step.cell)}, $\\alpha = {alpha:g}$",
                 fontsize=8, color="#c62828" if failing else "black")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.24), ncol=3, frameon=False)
    return _png(fig)


def kshot(pic, blocks, variant: str) -> bytes:
    """Each shot's formula term -(alpha/K) v(x_k, x*, y_k) stacked, against the executed z̄★."""
    plt = _plt()
    C = np.asarray(pic.contributions, dtype=float)  # (K, dm)
    z = np.asarray(pic.zbar_star, dtype=float)
    K, n = C.shape
    k = np.arange(n)
    fig, ax = plt.subplots(figsize=(min(2.8 + 0.28 * n, 10), 3.5))
    cmap = plt.get_cmap("tab10")
    pos = np.zeros(n)
    neg = np.zeros(n)
    for s in range(K):
        c = C[s]
        base = np.where(c >= 0, pos, neg)
        ax.bar(k, c, width=0.7, bottom=base, color=cmap(s % 10), alpha=0.85,
               label=f"shot {s + 1}: $y = {_pt(pic.ys[s])}$, cell {tuple(pic.cells[s])}")
        pos = pos + np.maximum(c, 0)
        neg = neg + np.minimum(c, 0)
    ax.plot(k, z, "D", color="black", ms=4, label=r"$\bar z^\star$ (real K-shot step)")
    ax.axhline(0, color="black", lw=0.6)
    lo = min(float(neg.min()), float(z.min()), 0.0)
    hi = max(float(pos.max()), float(z.max()), 0.0)
    pad = 0.08 * max(hi - lo, 1e-12)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(-0.7, n - 0.3)
    w = blocks.s * blocks.dy
    for c in range(1, blocks.m):
        ax.axvline(c * w - 0.5, color="#9e9e9e", lw=0.6, ls=":")
    ax.set_xlabel("middle coordinate, grouped by code channel", fontsize=8)
    ax.set_title(f"{K} shots, $x^\\star = {_pt(pic.x_star)}$" +
                 (" (signed variant: the ReLUs keep the positive copies)" if variant == "signed" else ""),
                 fontsize=8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    return _png(fig)


def _pt(v) -> str:
    v = list(v)
    return ", ".join(f"{a:.3g}" for a in v[:3]) + (", ..." if len(v) > 3 else "")


def convergence(sweep: dict) -> bytes | None:
    """Error against f_target along the sweep (log-log), fitted to the data: the rounding floor is
    drawn only where it is within the plotted range (else named in the legend), and the level
    labels stay inside the axes."""
    levels = sweep.get("levels") or []
    if not levels:
        return None
    plt = _plt()
    h = np.array([l["h"] for l in levels], dtype=float)
    sup = np.array([l["sup"] for l in levels], dtype=float)
    rms = np.array([l["rms"] for l in levels], dtype=float)
    floor = np.array([l["floor"] for l in levels], dtype=float)
    data = np.concatenate([sup[sup > 0], rms[rms > 0]])
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    if data.size == 0:  # exact everywhere: nothing on a log scale
        lo, hi = max(float(floor.max()), 1e-17), 1.0
    else:
        lo, hi = float(data.min()) / 3, float(data.max()) * 3
    ax.loglog(h, np.clip(sup, lo, None), "o-", label="sup error")
    ax.loglog(h, np.clip(rms, lo, None), "s-", label="RMS error")
    fmax = float(floor.max())
    if fmax >= lo:
        ax.loglog(h, floor, ":", color="grey", label="rounding floor")
    else:
        ax.plot([], [], " ", label=f"rounding floor {fmax:.1g} (below the axis)")
    rate = sweep.get("rate_rms")
    if rate is not None:
        ok = rms > floor
        if np.any(ok):
            c = float(np.exp(np.mean(np.log(rms[ok]) - rate * np.log(h[ok]))))
            ax.loglog(h, c * h ** rate, "--", color="black", label=f"fit: RMS $\\sim h^{{{rate:.2f}}}$")
    ax.set_ylim(lo, hi)
    pad = np.exp(0.15 * max(float(np.log(h.max() / h.min())), 0.5))
    ax.set_xlim(h.max() * pad, h.min() / pad)  # finer grids to the right
    for n, l in enumerate(levels):
        ax.annotate(f"J=L={l['J']}, G={l['grid_size']}", (l["h"], max(l["rms"], lo)), fontsize=7,
                    textcoords="offset points", xytext=(-4 if n == len(levels) - 1 else 4, 6),
                    ha="right" if n == len(levels) - 1 else "left", annotation_clip=True)
    ax.set_xlabel(sweep.get("variable", "h = 1/J = 1/L"), fontsize=8)
    ax.set_ylabel(r"$|f(x^\star;\theta') - f_{target}(x, y, x^\star)|$", fontsize=8)
    ax.set_title(f"one step reproduces '{sweep.get('target', '')}' ({sweep.get('layout', '')} layout, "
                 f"{sweep.get('variant', '')} variant)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return _png(fig)
