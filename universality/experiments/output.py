"""Presentation of an experiments run: the JSON document, the matplotlib plots, a text summary.

Reads the document only (never trains). :func:`write_outputs` renders into a temporary folder beside
the target and renames it into place at the end, so an interrupted run leaves no partial output.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

LABELS = {"maml_in": "MAML, in distribution", "maml_ood": "MAML, out of distribution",
          "tc_in": "task-conditioned, in distribution", "tc_ood": "task-conditioned, out of distribution",
          "maml": "MAML", "snail": "SNAIL-style", "maml_support": "MAML, support set",
          "random": "random initialisation", "random_support": "random initialisation, support set", "lstm": "LSTM", "oracle": "task-conditioned oracle"}


def _clean(x):
    """JSON-safe: NaN/inf as strings (the construction's records do the same)."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def dumps(doc: dict) -> str:
    return json.dumps(_clean(doc), indent=2, allow_nan=False) + "\n"


def _num(v):
    return float(v)  # the JSON's "nan" / "inf" strings parse too


def _errorbar(ax, x, curve, label, **kw):
    import numpy as np

    mean = np.asarray([_num(v) for v in curve["mean"]], dtype=float)
    std = np.asarray([_num(v) for v in curve["std"]], dtype=float)
    ax.errorbar(x, mean, yerr=std, label=label, capsize=3, marker="o", markersize=3, **kw)


def _figure(draw) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    draw(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def plots(doc: dict) -> list[dict]:
    """The run's figures: [{"key", "file", "title", "png"}] (error bars: std over seeds)."""
    res = doc.get("results", {})
    out = []
    if "steps" in res:
        r = res["steps"]

        def draw(fig):
            ax = fig.subplots()
            for key in ("maml_in", "maml_ood", "tc_in", "tc_ood"):
                _errorbar(ax, r["steps"], r["curves"][key], LABELS[key], linestyle="-" if "in" in key[-3:] else "--")
            ax.axvline(r["train_steps"], color="grey", lw=0.8, ls=":")
            ax.set(xlabel="test-time gradient steps (same 5 points)", ylabel="query MSE", yscale="log",
                   title="Fig. 2: error against test-time steps")
            ax.legend(fontsize=7)
        out.append({"key": "steps", "title": "Error against test-time gradient steps", "png": _figure(draw)})
    if "ood" in res:
        r = res["ood"]

        def draw(fig):
            axes = fig.subplots(1, 2, sharey=True)
            for ax, axis in zip(axes, ("amplitude", "phase")):
                for name, curves in r["curves"].items():
                    _errorbar(ax, r["shifts"], curves[axis], LABELS[name])
                ax.set(xlabel=f"{axis} shift", yscale="log")
            axes[0].set_ylabel("query MSE")
            axes[0].legend(fontsize=7)
            fig.suptitle("Fig. 3: error against distribution shift (0 = training range, 1 = the paper's OOD range)",
                         fontsize=9)
        out.append({"key": "ood", "title": "Error against distribution shift", "png": _figure(draw)})
    if "omniglot" in res:
        r = res["omniglot"]

        def draw(fig):
            ax = fig.subplots()
            x = list(range(len(r["transforms"])))
            for name, curve in r["curves"].items():
                _errorbar(ax, x, curve, LABELS.get(name, name))
            ax.set_xticks(x, [t["name"] for t in r["transforms"]], rotation=30, fontsize=7)
            ax.set(ylabel="5-way 1-shot accuracy", title="Omniglot: accuracy under shear and scale")
            ax.legend(fontsize=7)
        out.append({"key": "omniglot", "title": "Omniglot accuracy under shifts", "png": _figure(draw)})
    if "omniglot_finetune" in res:
        r = res["omniglot_finetune"]

        def draw(fig):
            ax = fig.subplots()
            for key, style in (("maml", "-"), ("maml_support", ":"), ("random", "-"), ("random_support", ":")):
                _errorbar(ax, r["steps"], r["curves"][key], LABELS[key], linestyle=style)
            ax.set(xlabel="fine-tuning steps on the support set", ylabel="accuracy",
                   title="Fig. 4: Omniglot fine-tuning, MAML initialisation vs random")
            ax.legend(fontsize=7)
        out.append({"key": "finetune", "title": "Omniglot accuracy against fine-tuning steps", "png": _figure(draw)})
    if "depth" in res:
        r = res["depth"]

        def draw(fig):
            ax = fig.subplots()
            for name, curve in r["curves"].items():
                _errorbar(ax, r["layers"], curve, LABELS[name])
            ax.set(xlabel="hidden layers (parameters held fixed)", ylabel="query MSE", yscale="log",
                   title="Fig. 5: error against depth")
            ax.set_xticks(r["layers"])
            ax.legend(fontsize=7)
        out.append({"key": "depth", "title": "Error against depth", "png": _figure(draw)})
    for f in out:
        f["file"] = f"figures/exp{f['key']}.png"  # no "-" or "_": the LaTeX filter would escape them
    return out


def check_out_dir(path: str) -> Path:
    """--out DIR: DIR must not exist or be an empty folder; missing parents are created when the run
    writes (as for the main command's output paths). Raises ValueError (one line) otherwise."""
    from ..files import check_path

    p = Path(path) if str(path).strip() else None
    if p is not None and p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise ValueError(f"--out: {path!r} exists and is not an empty folder")
    return check_path(path, option="--out", folder=True, error=ValueError)


def write_outputs(doc: dict, out: str) -> Path:
    """experiments.json and figures/experiments-*.png into ``out``, atomically through
    :func:`universality.files.atomic_folder` (a temporary folder beside ``out``, renamed into place;
    parents created under the umask and removed again on failure)."""
    from ..files import atomic_folder

    target = check_out_dir(out)
    with atomic_folder(target, prefix=".experiments-") as tmp:
        (tmp / "experiments.json").write_text(dumps(doc), encoding="utf-8")
        (tmp / "figures").mkdir()
        for f in plots(doc):
            (tmp / f["file"]).write_bytes(f["png"])
    return target


def text_summary(doc: dict, console) -> None:
    """A rich table of the claims (stdout)."""
    from rich.table import Table

    t = Table(title=f"Experiments ({doc['profile']['name']} profile, {len(doc['seeds'])} seeds, "
                    f"{doc['elapsed_s']:.0f} s)")
    t.add_column("claim", overflow="fold")  # ids wrap, never cut with an ellipsis
    for col in ("verdict", "estimate", "95% interval", "threshold", "per-seed verdicts"):
        t.add_column(col)
    for c in doc["claims"]:
        comp = c["computed"]
        ci = f"[{_fmt(comp.get('ci_low'))}, {_fmt(comp.get('ci_high'))}]"
        per = ", ".join(f"{k} {v}" for k, v in c["counts"].items() if v)
        t.add_row(c["id"], c["verdict"], _fmt(c["residual"]), ci, _fmt(c["tolerance"]), per)
    console.print(t)
    if doc.get("params"):
        console.print("parameters: " + ", ".join(f"{LABELS.get(k, k)} {v}" for k, v in doc["params"].items()))
    if "depth" in doc.get("results", {}):
        d = doc["results"]["depth"]["params"]
        console.print("depth study parameters: " + ", ".join(
            f"{k} layers: MAML {v['maml']}, oracle {v['oracle']}" for k, v in d.items()))


def _fmt(x) -> str:
    if isinstance(x, str) or x is None:
        return str(x)
    return f"{x:.4g}"
