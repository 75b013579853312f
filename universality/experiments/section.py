"""The "Experiments" section of the HTML and LaTeX reports, from an experiments JSON document.

``section_context(doc)`` turns the document written by ``verify-construction experiments --out``
into plain data for universality/templates/experiments.{html,tex}.j2 (claims with their intervals,
the run's configuration, figures as PNG bytes). ``load_section(path)`` reads and checks the file
(ValueError, one line, on anything that is not such a document). Presentation only: nothing is
trained or run here.
"""
from __future__ import annotations

import json
from pathlib import Path

from .output import plots

SCHEMA = "universality-experiments/1"


def _fmt(x) -> str:
    if isinstance(x, str) or x is None:
        return str(x)
    return f"{x:.4g}"


def section_context(doc: dict) -> dict:
    claims = []
    for c in doc.get("claims", []):
        comp = c.get("computed") or {}
        effect = comp.get("effect_size_dz", comp.get("effect_size"))
        claims.append({
            "id": c["id"], "title": c["title"], "paper_ref": c["paper_ref"], "verdict": c["verdict"],
            "method": c["method"], "claimed": c.get("claimed", ""), "estimate": _fmt(c.get("residual")),
            "ci": f"[{_fmt(comp.get('ci_low'))}, {_fmt(comp.get('ci_high'))}]",
            "threshold": _fmt(c.get("tolerance")), "effect": _fmt(effect),
            "relative": _fmt(comp["relative_effect"]) if "relative_effect" in comp else "",
            "per_seed": ", ".join(f"{k} {v}" for k, v in (c.get("counts") or {}).items() if v),
            "note": c.get("note", "")})
    p = doc.get("profile", {})
    return {
        "profile": p.get("name", "?"), "seeds": len(doc.get("seeds", [])), "seed": doc.get("seed"),
        "experiments": ", ".join(doc.get("experiments", [])),
        "elapsed": _fmt(doc.get("elapsed_s")), "workers": doc.get("workers"),
        "scheduler": doc.get("scheduler") or "local processes",
        "params": ", ".join(f"{k} {v}" for k, v in (doc.get("params") or {}).items()),
        "summary": ", ".join(f"{k} {v}" for k, v in (doc.get("summary") or {}).items() if v),
        "claims": claims, "figures": plots(doc)}


def load_section(path) -> dict:
    """The section context of the experiments JSON at ``path``; ValueError (one line) otherwise."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"--experiments: {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--experiments: cannot read {str(path)!r} as JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"--experiments: {str(path)!r} is not an experiments document ({SCHEMA})")
    try:
        return section_context(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"--experiments: {str(path)!r} is malformed ({type(exc).__name__}: {exc})") from None
