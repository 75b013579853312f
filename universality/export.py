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
from .execution import one_step
from .files import atomic_folder, check_path

OUTPUTS = ("construction.npz", "construction.json")


def check_target(path: str | os.PathLike, force: bool = False) -> Path:
    """Validate DIR before any work is done, so a bad path fails fast with nothing written
    (ExportError, exit 2): empty, a dangling link, a file, not writable, or not empty without force."""
    return check_path(path, option="--export", force=force, error=ExportError)


def arrays(con, samples) -> dict:
    b = con.blocks
    S = len(samples)
    steps = [one_step(con, s.x, s.y, s.x_star) for s in samples]

    def stack(rows, width):
        return np.array(rows, dtype=float).reshape(S, width)

    def top_only(phi):
        out = np.array(phi, dtype=float)
        out[b.bottom] = 0.0
        return out

    v = [con.v(s.x, s.x_star, s.y) for s in samples]
    return {
        "W": np.asarray(con.W, dtype=float),
        "Wg": np.asarray(con.Wg, dtype=float),
        "theta_b": np.float64(con.theta_b),
        "alpha": np.float64(con.design.alpha),
        "x": stack([s.x for s in samples], con.design.dx),
        "x_star": stack([s.x_star for s in samples], con.design.dx),
        "y": stack([s.y for s in samples], con.design.dy),
        "phi_x": stack([st.phi_x for st in steps], b.D),
        "phi_x_star_pre": stack([top_only(st.phi_star_pre) for st in steps], b.D),
        "phi_x_star_post": stack([top_only(st.phi_star_post) for st in steps], b.D),
        "zbar_star": stack([st.z_star[b.mid] for st in steps], b.dm),
        "v": stack(v, b.dm),
    }


def metadata(con) -> dict:
    d, b = con.design, con.blocks
    return {
        "format": "universality-construction/1",
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
            "phi": "phi(u; theta_b) = [phi~(u; theta_b); 0; theta_b]; phi_x_star_* store the bottom "
                   "entry as 0: put your own theta_b there",
            "head": "before the step yhat = Wg @ z (the gate zbar = 0 is open); after it zbar* is read",
            "step": "theta' = theta - alpha * grad, ReLU'(0) = relu_grad_at_zero",
        },
    }


def write(con, samples, target: str | os.PathLike, hpost=None, mux=None, force: bool = False) -> Path:
    """Write the export. With ``hpost`` (and ``mux``) from a --target run, h_post's layers (keys
    hpost_layer{n}_W / _b, hpost_*) and the multiplexer's constants (mux_*) are added to the npz and
    described under "h_post" / "multiplexer" in the json; the other keys are unchanged."""
    target = check_target(target, force=force)
    data = arrays(con, samples)
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
