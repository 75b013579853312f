"""Terminal presentation of a Report (rich tables) and the progress bar. Presentation only."""
from __future__ import annotations

import contextlib
import sys

from rich.console import Console
from rich.table import Table

_STYLE = {"PASS": "green", "FAIL": "bold red", "UNDECIDED": "yellow", "SKIPPED": "dim"}


def _g(x) -> str:
    if isinstance(x, str):
        return x
    return f"{x:.2e}" if x not in (0, 0.0) else "0"


@contextlib.contextmanager
def progress(enabled: bool, total: int = 1, phase: str = "checking samples"):
    """A transient progress bar on stderr when it is a terminal; None otherwise.

    Yields ``tick(done, total, phase=None)``: every phase of a run (samples, K-shot tasks, exact
    instances, findings, universality, writing files) moves the same bar and names itself."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(phase, total=total)

        def tick(done: int, of: int, phase: str | None = None) -> None:
            if phase is not None:
                bar.update(task, description=phase)
            bar.update(task, completed=done, total=max(of, 1))

        yield tick


def plain(text: str) -> str:
    """A schematic step's formula as plain Unicode text for the terminal (the reports typeset the
    same source)."""
    from .report.typeset import formula, plain_math

    return plain_math(formula(text))


def construction_lines(report) -> list[str]:
    c = report.construction
    cells = (c["J"] ** c["dx"]) * (c["L"] ** c["dx"])
    if c["layout_requested"] == "auto":
        why = (f"auto: N = J^dx*L^dx + 2 = {cells + 2}" if c["layout"] == "paper"
               else f"auto: N = {c['N']} != J^dx*L^dx + 2 = {cells + 2}")
    else:
        why = "requested"
    ch = c["channels"]
    return [
        f"N = {c['N']} layers, J = {c['J']}, L = {c['L']}, dx = {c['dx']}, dy = {c['dy']}; width D = {c['D']} "
        f"(top {ch['top']} | middle {ch['middle']} | bottom {ch['bottom']}), {c['m']} code channels",
        f"layout: {c['layout']} ({why}): {c['layout_description']}",
        f"variant {c['variant']}, eps = {c['eps']:g}, alpha = {c['alpha']:g}, ReLU'(0) = {c['relu_grad_at_zero']:g}, "
        f"loss {c['loss']}" + (f", K = {c['K']} shots" if c.get("K", 1) > 1 else "") +
        f"; {c['parameters']:,} parameters" + (f"; engine {c['engine']}" if c.get("engine", "dense") != "dense" else ""),
        f"checked on {len(report.samples)} (x, x*, y) triples: {c['samples']} random (seed {c['seed']}) + "
        f"{len(report.samples) - c['samples']} corner cases",
    ]


def text(report, export_dir=None, file=None, report_dir=None) -> None:
    console = Console(file=file or sys.stdout, highlight=False, soft_wrap=False,
                      width=None if (file or sys.stdout).isatty() else 140)
    from . import __version__

    console.print(f"[bold]universality {__version__}[/]: Finn & Levine (ICLR 2018), one MAML step, "
                  "verified by execution")
    for line in construction_lines(report):
        console.print("  " + line)
    t = Table(title="Claims", title_justify="left", show_lines=False)
    for col in ("claim", "paper", "verdict", "residual", "tolerance", "checked"):
        t.add_column(col, no_wrap=col in ("claim", "verdict"))
    for c in report.claims:
        counts = ", ".join(f"{v} {k}" for k, v in c.counts.items() if v) or "-"
        t.add_row(c.id, c.paper_ref, f"[{_STYLE[c.verdict.value]}]{c.verdict.value}[/]", _g(c.residual),
                  _g(c.tolerance), counts)
    if report.claims:
        console.print(t)
    notes = [(c.id, c.note) for c in report.claims if c.note and c.verdict.value != "PASS"]
    for cid, note in notes:
        console.print(f"  [bold]{cid}[/]: {note}")
    loss_note = next((c for c in report.claims if c.id == "loss-recovers-label" and c.verdict.value == "PASS"
                      and c.note), None)
    if loss_note is not None:  # e.g. CE: singular on R^C, injective only on the simplex
        console.print(f"  [bold]loss-recovers-label[/]: {loss_note.note}")
    if report.findings:
        f = Table(title="Findings: known gaps of the paper, demonstrated live", title_justify="left")
        for col in ("finding", "paper", "shown", "counterexample"):
            f.add_column(col, no_wrap=col in ("finding", "shown"))
        for item in report.findings:
            f.add_row(item.id, item.paper_ref, "yes" if item.demonstrated else "no", item.headline)
        console.print(f)
    if getattr(report, "universal", None) is not None:
        universal_tables(console, report.universal)
    symbolic_tables(console, report)
    if export_dir:
        console.print(f"exported construction.npz and construction.json to {export_dir}")
    if report_dir:
        console.print(f"report written to {report_dir}")
    n = len(report.claims)
    bad = [c for c in report.claims if c.verdict.value in ("FAIL", "UNDECIDED")]
    sym = getattr(report, "symbolic", None)
    if sym is not None:
        skipped = sum(c.verdict.value == "SKIPPED" for c in sym.claims)
        console.print(f"Exact: {len(sym.claims)} claims on {sym.instances_done} of {sym.instances} instances and "
                      f"{len(sym.schematic)} schematic steps, "
                      + (("all PASS" + (f" or SKIPPED ({skipped}, each with its reason)" if skipped else ""))
                         if sym.passed else "NOT all passed"))
        n += len(sym.claims) + len(sym.schematic) if not report.claims else 0
        from types import SimpleNamespace

        bad += [SimpleNamespace(id=f"exact {c.id}", verdict=c.verdict)
                for c in list(sym.claims) + list(sym.schematic) if c.verdict.value in ("FAIL", "UNDECIDED")]
        if sym.cut:
            bad.append(SimpleNamespace(id="symbolic-run", verdict=SimpleNamespace(value="CUT")))
    if not bad:
        exact = f" + exact {len(sym.claims)} claims, {len(sym.schematic)} steps" if sym is not None and report.claims else ""
        console.print(f"[green]Result: {passed_phrase(report.claims, n)}[/]{exact} (exit 0)")
    else:
        console.print(f"[bold red]Result: {len(bad)} of {n} claims not passed[/] "
                      f"({', '.join(c.id + ' ' + c.verdict.value for c in bad)}) (exit 1)")


def passed_phrase(claims, n: int | None = None) -> str:
    """The result line of a run with nothing FAILED or UNDECIDED: "all n claims PASS", or, when some
    are SKIPPED, the PASS and SKIPPED counts apart (a SKIPPED claim is never counted as a PASS)."""
    n = len(claims) if n is None else n
    skipped = sum(c.verdict.value == "SKIPPED" for c in claims)
    if not skipped:
        return f"all {n} claims PASS"
    return f"{n - skipped} of {n} claims PASS, {skipped} SKIPPED (each with its reason above)"


def symbolic_tables(console, report) -> None:
    """The exact backend's results: instance proofs (same claim ids) and the schematic proof steps."""
    from rich.markup import escape

    note = getattr(report, "backend_note", "")
    sym = getattr(report, "symbolic", None)
    if note:
        console.print(f"[dim]{escape(note)}[/]")
    if sym is None:
        return
    relu = ", ReLU'(0) = rho^2 symbol" if getattr(sym, "relu", "value") == "symbol" else ""
    t = Table(title=f"Exact (SymPy) proofs: {sym.instances_done} of {sym.instances} instances, alpha {sym.alpha}, "
                    f"y {sym.y}{relu}", title_justify="left")
    for col in ("claim", "verdict", "residual", "checked", "proof"):
        t.add_column(col, no_wrap=col in ("claim", "verdict"))
    for c in sym.claims:
        counts = ", ".join(f"{v} {k}" for k, v in c.counts.items() if v) or "-"
        if c.verdict.value == "SKIPPED":
            shown = c.note or "-"
        elif isinstance(c.computed, str):
            shown = c.computed
        elif isinstance(c.computed, dict):
            shown = "; ".join(f"{k}: {v}" for k, v in c.computed.items())
        else:
            shown = c.note or "-"
        t.add_row(c.id, f"[{_STYLE[c.verdict.value]}]{c.verdict.value}[/]",
                  "0 (identity)" if c.verdict.value == "PASS" else _g(c.residual), counts, escape(shown[:90]))
    console.print(t)
    for c in sym.claims:
        if c.verdict.value not in ("PASS", "SKIPPED") and c.note:
            console.print(f"  [bold]{c.id}[/] (exact): {escape(c.note[:300])}")
    if sym.schematic:
        s = Table(title="Schematic proof for every N (block matrices, symbolic sizes)", title_justify="left")
        for col in ("step", "verdict", "identity"):
            s.add_column(col, no_wrap=col in ("step", "verdict"))
        for step in sym.schematic:
            s.add_row(step.id, f"[{_STYLE[step.verdict.value]}]{step.verdict.value}[/]", escape(plain(step.statement)))
        console.print(s)
        for step in sym.schematic:
            if step.verdict.value != "PASS":
                console.print(f"  [bold]{step.id}[/]: {escape(step.residual[:300])}")


def universal_tables(console, uni) -> None:
    """The universality run: h_post, errors at the run's sizes and the convergence table."""
    d = uni.as_dict()
    hp, at, sw = d["h_post"], d["at_run_sizes"], d["sweep"]
    console.print(f"[bold]Universality[/]: target '{d['target']['name']}' ({d['target']['description']}); "
                  f"h_post: explicit ReLU network, {hp['depth']} layers, {hp['parameters']:,} parameters, "
                  f"{hp['cells']} cells x y-grid {hp['grid_size']}, labels in [-{hp['y_max']:g}, {hp['y_max']:g}], "
                  f"|y|_1 >= {hp['delta']:g}")
    console.print(f"  at these sizes: max error {_g(at['grid_max_error'])} on {at['grid_points_checked']} "
                  f"(centre, grid label) triples; sup {_g(at['random_sup_error'])}, RMS {_g(at['random_rms_error'])} "
                  f"on {at['random_points']} random triples"
                  + (f"; [bold red]{at['collapsed']} collapsed (zbar* = 0)[/]" if at["collapsed"] else ""))
    bd = d.get("below_delta")
    if bd:
        console.print(f"  below delta (0 < |y|_1 < {hp['delta']:g}, gates only approximate): sup error "
                      f"{_g(bd['sup_error_vs_cell_value'])} on {bd['points']} triples; branches "
                      + ", ".join(f"{k} {v}" for k, v in bd["branches"].items()))
    t = Table(title=f"Convergence ({sw['layout']} layout, {sw['variant']} variant, {sw['test_points']} random "
                    "test triples, one real step each)", title_justify="left")
    for col in ("J = L", "N", "D", "y-grid", "h_post params", "sup error", "RMS error", "collapsed",
                "rounding floor", "time (s)"):
        t.add_column(col, justify="right")
    for l in sw["levels"]:
        t.add_row(str(l["J"]), str(l["N"]), str(l["D"]), str(l["grid_size"]), f"{l['hpost_parameters']:,}",
                  _g(l["sup"]), _g(l["rms"]), str(l["collapsed"]), _g(l["floor"]),
                  f"{l['build_s'] + l['eval_s']:.2f}")
    console.print(t)
    rate = sw["rate_rms"]
    console.print("  fitted rate: " + (f"RMS ~ h^{rate:.2f}" if rate is not None else "none (errors at rounding level)")
                  + (f", sup ~ h^{sw['rate_sup']:.2f}" if sw["rate_sup"] is not None else "")
                  + f" with {sw.get('variable', 'h = 1/J = 1/L')}")
