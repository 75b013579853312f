"""--export DIR: the construction as construction.npz + construction.json (spec section 4), so that
anyone can load the network into PyTorch, JAX or NumPy and re-run the step with their own autodiff.

Writes are atomic (:mod:`universality.files`): both files are rendered in a temporary folder
beside DIR and then moved in; missing parents are created; an existing DIR with files in it is
replaced only with ``force``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import __version__
from .errors import ExportError
from .files import atomic_folder, check_path

OUTPUTS = ("construction.npz", "construction.json")
# Above this many entries in the N x D x D stack the weights are written as COO triplets (W_format "coo").
DENSE_EXPORT_MAX_ENTRIES = 4_000_000


def check_target(path: str | os.PathLike, force: bool = False) -> Path:
    """Validate DIR before any work is done, so a bad path fails fast with nothing written
    (ExportError, exit 2): empty, a dangling link, a file, not writable, or not empty without force."""
    return check_path(path, option="--export", force=force, error=ExportError)


def weight_format(con) -> str:
    """"dense" (one N x D x D array) for small stacks on the dense engine, else "coo"."""
    from .engine.layers import Layers

    dense = not isinstance(con.W, Layers) and con.N * con.D * con.D <= DENSE_EXPORT_MAX_ENTRIES
    return "dense" if dense else "coo"


def weight_arrays(con) -> dict:
    """The weights in the export's form: ``W`` (N x D x D), or COO triplets ``W_layer``, ``W_row``,
    ``W_col`` (int64) and ``W_val`` (float64) with ``W_shape`` = (N, D, D): W[layer, row, col] = val,
    every stored entry of every layer (entries not listed are 0)."""
    if weight_format(con) == "dense":
        return {"W": np.asarray(con.W, dtype=float)}
    from .engine.step import layers_of

    layers = layers_of(con)
    parts = {"W_layer": [], "W_row": [], "W_col": [], "W_val": []}
    for k in range(layers.N):
        m = layers.block(k, slice(None), slice(None))
        if hasattr(m, "tocoo"):
            m = m.tocoo()
            row, col, val = m.row, m.col, m.data
        else:  # a dense layer
            row, col = np.nonzero(m)
            val = m[row, col]
        keep = val != 0
        parts["W_layer"].append(np.full(int(keep.sum()), k, dtype=np.int64))
        parts["W_row"].append(row[keep].astype(np.int64))
        parts["W_col"].append(col[keep].astype(np.int64))
        parts["W_val"].append(val[keep].astype(float))
    out = {key: np.concatenate(v) for key, v in parts.items()}
    out["W_shape"] = np.array([layers.N, layers.D, layers.D], dtype=np.int64)
    return out


def arrays(con, samples, steps=None) -> dict:
    """The npz arrays. ``steps``: the :class:`~universality.verify.StepRecord` of every sample from the
    verification run (``Report.steps``), so the export never executes the network again; without
    them (a library call on a bare construction) each sample's step is run here once."""
    b = con.blocks
    S = len(samples)
    if steps is None or len(steps) != S:
        from .engine.step import single_step
        from .verify import _record

        steps = [_record(con, single_step(con, s.x, s.y, s.x_star)) for s in samples]

    def stack(rows, width):
        return np.array(rows, dtype=float).reshape(S, width)

    v = [con.v(s.x, s.x_star, s.y) for s in samples]
    return {
        **weight_arrays(con),
        "Wg": np.asarray(con.Wg, dtype=float),
        "theta_b": np.float64(con.theta_b),
        "alpha": np.float64(con.design.alpha),
        "x": stack([s.x for s in samples], con.design.dx),
        "x_star": stack([s.x_star for s in samples], con.design.dx),
        "y": stack([s.y for s in samples], con.design.dy),
        "phi_x": stack([st.phi_x for st in steps], b.D),
        "phi_x_star_pre": stack([st.phi_x_star_pre for st in steps], b.D),
        "phi_x_star_post": stack([st.phi_x_star_post for st in steps], b.D),
        "zbar_star": stack([st.zbar_star for st in steps], b.dm),
        "v": stack(v, b.dm),
    }


def metadata(con) -> dict:
    d, b = con.design, con.blocks
    return {
        "format": "universality-construction/1",
        "W_format": weight_format(con),
        "version": __version__,
        "N": d.N, "J": d.J, "L": d.L, "dx": d.dx, "dy": d.dy, "D": b.D,
        "layout": d.layout, "variant": d.variant, "eps": d.eps, "alpha": d.alpha,
        "loss": {"name": con.loss.name, "formula": con.loss.formula},
        "relu_grad_at_zero": d.relu_grad_at_zero,
        "blocks": b.ranges(),
        "basis": b.names(),
        "code_table": np.asarray(con.codes, dtype=float).tolist(),
        "code_table_index": "code_table[c][j][l] = c_c(j, l); layer i = c + 2 uses channel c",
        "conventions": {
            "W": "W[k] is paper layer k+1; W[N-1] acts first: z = W[0] @ ... @ W[N-1] @ phi, with a "
                 "ReLU after every layer",
            "W_format": "dense: key W (N x D x D); coo: keys W_layer, W_row, W_col, W_val and W_shape = "
                        "(N, D, D), W[W_layer[n], W_row[n], W_col[n]] = W_val[n], all other entries 0 "
                        "(docs/export.md has loaders for NumPy, SciPy, PyTorch and JAX)",
            "phi": "phi(u; theta_b) = [phi~(u; theta_b); 0; theta_b]; phi_x_star_* store the bottom "
                   "entry as 0: put your own theta_b there",
            "head": "before the step yhat = Wg @ z (the gate zbar = 0 is open); after it zbar* is read",
            "step": "theta' = theta - alpha * grad, ReLU'(0) = relu_grad_at_zero",
        },
    }


def write(con, samples, target: str | os.PathLike, hpost=None, mux=None, force: bool = False,
          steps=None) -> Path:
    """Write the export. With ``hpost`` (and ``mux``) from a --target run, h_post's layers (keys
    hpost_layer{n}_W / _b, hpost_*) and the multiplexer's constants (mux_*) are added to the npz and
    described under "h_post" / "multiplexer" in the json; the other keys are unchanged. ``steps``:
    the run's per-sample step records (verify's), so that the export never re-runs a step."""
    target = check_target(target, force=force)
    data = arrays(con, samples, steps)
    meta = metadata(con)
    if hpost is not None:
        data.update(hpost.arrays())
        meta["h_post"] = hpost.describe()
    if mux is not None:
        data.update(mux.arrays())
        meta["multiplexer"] = mux.describe()
    with atomic_folder(target, prefix=".export-") as tmp:
        np.savez(tmp / "construction.npz", **data)
        (tmp / "construction.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return target
