"""verify-construction: build the construction, run the real step, print the verdicts.

The options are built from the fields of :class:`universality.config.Config` and
:class:`universality.universal.UniversalOptions` (their ``metadata`` holds the help text, option
name and choices; their defaults are the only defaults), so a new field becomes an option without
an edit here. The epilog's claim and finding ids come from the registries.

Exit status (:mod:`universality.errors`): 0 every claim passes (SKIPPED counts as passing); 1 a
claim FAILs or is UNDECIDED; 2 bad input (one line on stderr, nothing written); 3 an internal or
I/O error (one line, nothing partial left; ``--debug`` prints the traceback); 130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import re
import sys

from .errors import (EXIT_CODES, EXIT_ERROR, EXIT_INTERRUPTED, ArgumentError, ConfigError, PathError,
                     UniversalityError, one_line)

PROG = "verify-construction"

EXAMPLES = """\
examples:
  verify-construction --N 6 --J 4 --L 4            # compact layout, all claims PASS
  verify-construction --N 18 --J 4 --L 4           # the paper's one-hot layout (N = J*L + 2)
  verify-construction --N 6 --J 4 --L 4 --variant paper      # the paper's e_bar: sign gap, exit 1
  verify-construction --N 6 --J 4 --L 4 --relu-grad-at-zero 0   # PyTorch's ReLU'(0): collapse
  verify-construction --N 6 --J 4 --L 4 --json --export out/construction
  verify-construction --N 6 --J 4 --L 4 --loss ce --dy 3    # softmax CE, one-hot labels (C = dy)
  verify-construction --N 6 --J 4 --L 4 --loss l1           # L1 loses the label: exit 1
  verify-construction --N 6 --J 4 --L 4 --K 3               # 3-shot step, K-shot claims
  verify-construction --N 6 --J 4 --L 4 --target cos          # one step reproduces f = y cos(2 pi (x* - x))
  verify-construction --N 6 --J 4 --L 4 --target mymod:f --sweep 2,4,8,16 --plot conv.png
  verify-construction --N 6 --J 4 --L 4 --report out/report --format html,tex,pdf
  verify-construction --N 11 --J 3 --L 3 --backend both   # exact SymPy proofs + schematic proof for every N
  verify-construction --check out/construction     # a construction built elsewhere (docs/check.md)
  verify-construction experiments all --profile quick --out runs/q  # the paper's Sec. 7 experiments
                                  # (own options: verify-construction experiments --help; docs/experiments.md)
"""


def _wrap(ids) -> str:
    import textwrap

    return textwrap.fill(", ".join(ids), width=100, initial_indent="  ", subsequent_indent="  ",
                         break_on_hyphens=False) if ids else ""


def epilog() -> str:
    """Claim and finding ids from the registries, the exit codes, the examples."""
    from .claims import CLAIMS, FINDINGS
    from .claims.universal import CONVERGES, EXACT

    base = [s.id for s in CLAIMS.values() if s.scope != "task"]
    task = [s.id for s in CLAIMS.values() if s.scope == "task"]
    lines = ["claims (each computed by running the network; see README):", _wrap(base)]
    if task:
        lines += ["  with --K > 1 also:", _wrap(task)]
    lines += ["  with --target:", _wrap([EXACT.id, CONVERGES.id]),
              "findings (known gaps of the paper, each demonstrated live on these sizes):",
              _wrap(list(FINDINGS)), "", "exit status:"]
    lines += [f"  {code:<3} {meaning}" for code, meaning in EXIT_CODES.items()]
    return "\n".join(lines) + "\n\n" + EXAMPLES


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # argparse only takes -3 and -0.5 as negative numbers; accept -1e-8, -2.5E3 and -inf as values
        # too (no option of ours looks like a number), so that they reach the range checks
        self._negative_number_matcher = re.compile(
            r"^-((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|infinity|nan)$", re.IGNORECASE | re.ASCII)

    def error(self, message):  # one line, exit 2, no usage dump
        raise ArgumentError(message)


_INT = re.compile(r"^[+-]?[0-9]+$", re.ASCII)
_REAL = re.compile(r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|infinity|nan)$",
                   re.ASCII | re.IGNORECASE)
MAX_DIGITS = 40


def parse_int(text: str) -> int:
    """An ASCII decimal integer (no Unicode digits, underscores or signs in odd places)."""
    text = str(text).strip()
    if not _INT.match(text) or len(text) > MAX_DIGITS:
        raise argparse.ArgumentTypeError(f"must be an integer in ASCII digits, got {text!r}")
    return int(text, 10)


def parse_real(text: str) -> float:
    """An ASCII decimal number; inf and nan are read so that the message can say they are refused."""
    text = str(text).strip()
    if not _REAL.match(text):
        raise argparse.ArgumentTypeError(f"must be a number in ASCII digits, got {text!r}")
    value = float(text)
    if not math.isfinite(value):
        if re.search(r"[0-9]", text):
            raise argparse.ArgumentTypeError(f"{text} is beyond float64's range (about 1.8e308)")
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def parse_int_list(text: str) -> tuple:
    items = [t.strip() for t in str(text).split(",")]
    if not any(items):
        raise argparse.ArgumentTypeError(f"must list at least one integer, got {text!r}")
    if not all(_INT.match(t) and len(t) <= MAX_DIGITS for t in items):
        raise argparse.ArgumentTypeError(f"must be comma-separated integers in ASCII digits, got {text!r}")
    return tuple(int(t, 10) for t in items)


def _kind(f: dataclasses.Field) -> str:
    """int | float | str | bool | intlist, from the field's annotation (a string here)."""
    t = str(f.type).replace(" ", "")
    for name in ("bool", "int", "float", "str"):
        if t in (name, f"{name}|None", f"Optional[{name}]"):
            return name
    if t.startswith("tuple"):
        return "intlist"
    return "str"


CONVERTERS = {"int": parse_int, "float": parse_real, "str": str, "intlist": parse_int_list}


def add_dataclass_options(parser: argparse.ArgumentParser, cls, groups: dict, default_group: str) -> list:
    """One option per field of ``cls`` with CLI metadata (or none: derived from the field's name).

    Defaults are argparse.SUPPRESS: an option the user did not give is absent from the namespace,
    and the dataclass's own default applies. Returns [(field name, flag)]."""
    added = []
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        if meta.get("cli") == "":
            continue
        flag = meta.get("cli") or "--" + f.name.replace("_", "-")
        kind = _kind(f)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = f.default if f.default is not dataclasses.MISSING else None
        choices = meta.get("choices")
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = str(meta.get("help", "")).format(default=shown, choices=", ".join(map(str, choices or ())))
        group_name = meta.get("group", default_group)
        group = groups.get(group_name) or groups.setdefault(group_name, parser.add_argument_group(group_name))
        kwargs = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text.replace("%", "%%"))
        if kind == "bool":
            group.add_argument(flag, action="store_true", **kwargs)
        else:
            kwargs["type"] = CONVERTERS[kind]
            if choices:
                kwargs["choices"] = list(choices)
            else:
                kwargs["metavar"] = meta.get("metavar") or f.name.upper()
            group.add_argument(flag, required=meta.get("required", not has_default), **kwargs)
        added.append((f.name, flag))
    return added


def build_parser() -> argparse.ArgumentParser:
    from .config import Config
    from .symbolic.budget import BACKENDS, DEFAULT_BUDGET_S
    from .universal import UniversalOptions

    p = _Parser(
        prog=PROG,
        description=(
            "Build the explicit weight construction of Finn & Levine (ICLR 2018), 'Meta-Learning and "
            "Universality', run the network, backprop, take one real gradient step and check every "
            "claim of the paper against what the network actually computed. Known gaps of the paper "
            "are demonstrated live with counterexamples."
        ),
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    groups = {name: p.add_argument_group(name) for name in ("sizes", "construction", "run", "output")}
    add_dataclass_options(p, Config, groups, "construction")
    out = groups["output"]
    out.add_argument("--json", action="store_true",
                     help="print one JSON document (schema: universality/data/report.schema.json, docs/json.md) "
                          "instead of tables")
    out.add_argument("--export", metavar="DIR",
                     help="write DIR/construction.npz and DIR/construction.json (weights, samples, zbar*, v) to "
                          "re-run the step in any framework; missing parents are created")
    out.add_argument("--no-findings", action="store_true",
                     help="skip the demonstrations of the paper's known gaps (faster)")
    out.add_argument("--report", metavar="DIR",
                     help="write a proof report into DIR: report.html (self-contained, offline), report.tex "
                          "(+ figures/), report.json; missing parents are created; see docs/user-guide.md")
    out.add_argument("--format", metavar="LIST", default=None,
                     help="report formats, comma-separated from html, tex, pdf (default html,tex); pdf runs latexmk")
    out.add_argument("--force", action="store_true",
                     help="let --report, --export and --plot replace existing output")
    out.add_argument("--check", metavar="DIR", default=None,
                     help="verify a construction built elsewhere (DIR/construction.npz in the --export "
                          "format) instead of building one; its own options: --check DIR --help (docs/check.md)")
    out.add_argument("--experiments", metavar="FILE", default=None,
                     help="add an Experiments section to --report from FILE, the experiments.json written by "
                          "'verify-construction experiments --out DIR' (docs/experiments.md)")
    out.add_argument("--debug", action="store_true",
                     help="on an internal or I/O error (exit 3), print the traceback too")
    uni = p.add_argument_group("universality (Lemma 4.1 end to end: one step reproduces a learning algorithm)")
    add_dataclass_options(p, UniversalOptions, {"universality": uni}, "universality")
    uni.add_argument("--plot", metavar="FILE", default=None,
                     help="write the convergence plot to FILE (.png, .pdf or .svg); needs --target")
    sym = p.add_argument_group("exact verification")
    sym.add_argument("--backend", choices=list(BACKENDS), default="auto",
                     help="numeric (float64 with tolerances), symbolic (exact SymPy proofs: instance proofs "
                          "and the schematic proof for every N), both, or auto (default): both when the "
                          "symbolic run is predicted quick for the sizes, numeric otherwise; a one-line note "
                          "says which ran")
    sym.add_argument("--symbolic-budget", type=parse_real, default=None, metavar="SECONDS",
                     help=f"wall-clock budget of the symbolic run (default {DEFAULT_BUDGET_S:g}): a run predicted to "
                          "exceed it is refused, a run reaching it is cut with a note")
    sym.add_argument("--symbolic-relu", action="store_true",
                     help="in the exact run, make ReLU'(0) the symbol r = rho^2 > 0 (construction and backprop): "
                          "proves the 1/r^i compensation for every r > 0 at once; needs the exact run "
                          "(--backend both or symbolic, or auto when it runs)")
    p.add_argument("--version", action="version", version=_version())
    return p


def _version() -> str:
    from . import __version__

    return f"universality {__version__}"


def _memory_bytes(gib: float) -> int:
    """--max-memory GiB as bytes: > 0 and at most MAX_MEMORY_GIB."""
    from .config import MAX_MEMORY_GIB

    if not 0 < gib <= MAX_MEMORY_GIB:
        raise ConfigError(f"max-memory must be in (0, {MAX_MEMORY_GIB:.0f}] GiB, got {gib:g}")
    return max(1, int(gib * 2**30))


def _fields(args, cls) -> dict:
    names = {f.name for f in dataclasses.fields(cls) if f.metadata.get("cli") != ""}
    return {k: v for k, v in vars(args).items() if k in names}


def make_config(args):
    from .config import Config

    given = _fields(args, Config)
    if "max_memory_bytes" in given:
        given["max_memory_bytes"] = _memory_bytes(given["max_memory_bytes"])
    return Config(**given)


def universal_options(args, cfg):
    """UniversalOptions from --target and its options (defaults: the dataclass's); its options
    without --target are an error."""
    from .universal import UniversalOptions

    given = _fields(args, UniversalOptions)
    target = given.pop("target", None)
    if target is None:
        flags = {f.name: (f.metadata.get("cli") or "--" + f.name.replace("_", "-"))
                 for f in dataclasses.fields(UniversalOptions)}
        extra = [flags[k] for k in given] + (["--plot"] if args.plot is not None else [])
        if extra:
            raise ConfigError(f"{extra[0]} needs --target")
        return None
    return UniversalOptions(target=target, seed=cfg.seed, **given)


def check_outputs(args, universal) -> tuple:
    """Validate every output path before any work (PathError, exit 2); returns the report formats."""
    from pathlib import Path

    from .files import check_path

    report_formats = None
    if args.format is not None and args.report is None:
        raise PathError("--format needs --report DIR")
    if args.force and args.report is None and args.export is None and args.plot is None:
        raise PathError("--force needs --report, --export or --plot")
    if args.export is not None:
        from .export import check_target

        check_target(args.export, force=args.force)
    if args.report is not None:
        from .report import check_target as check_report_target, parse_formats

        report_formats = parse_formats(args.format)
        if args.export is not None and Path(args.export).absolute() == Path(args.report).absolute():
            raise PathError("--export and --report need different folders")
        check_report_target(args.report, force=args.force, formats=report_formats)
    if args.plot is not None:
        check_path(args.plot, option="--plot", force=args.force, folder=False)
        if Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
            raise PathError(f"--plot: file must end in .png, .pdf or .svg, got {args.plot!r}")
    return report_formats


def jsonable(obj):
    """The report's dict with non-finite floats as the strings "NaN", "Infinity", "-Infinity"
    (JSON has no such numbers; json.dumps would write invalid JSON)."""
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def json_document(report) -> str:
    return json.dumps(jsonable(report.as_dict()), indent=2, allow_nan=False)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from .startup import defer_numpy_submodules

    defer_numpy_submodules()  # before SciPy's first import: see universality/startup.py
    if argv[:1] == ["experiments"]:  # the paper's Sec. 7 experiments: their own command (docs/experiments.md)
        from .experiments.cli import main as experiments_main

        return experiments_main(argv[1:])
    debug = "--debug" in argv
    if any(a == "--check" or a.startswith("--check=") for a in argv):  # a construction built elsewhere
        from .check import main as check_main

        return check_main(argv)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing partial was left", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UniversalityError as exc:
        return _fail(exc, debug)
    except MemoryError as exc:
        return _fail(exc, debug, "out of memory; use smaller sizes or a lower --max-memory")
    except BrokenPipeError as exc:  # stdout closed early (e.g. `| head`): say so once, no flush error at exit
        import os

        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return _fail(exc, debug, "I/O error: standard output was closed before the output was written")
    except OSError as exc:
        return _fail(exc, debug, f"I/O error: {exc.strerror or exc}"
                     + (f": {exc.filename!r}" if getattr(exc, "filename", None) else ""))
    except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback unless --debug
        return _fail(exc, debug, f"internal error: {one_line(exc)} (please report; --debug shows the traceback)")


def _fail(exc: BaseException, debug: bool, message: str | None = None) -> int:
    code = exc.exit_code if isinstance(exc, UniversalityError) else EXIT_ERROR
    if debug and code == EXIT_ERROR:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(f"{PROG}: error: {message or one_line(exc)}", file=sys.stderr)
    return code


def _main(argv: list) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    cfg = make_config(args)
    universal = universal_options(args, cfg)
    report_formats = check_outputs(args, universal)
    experiments_section = None
    if args.experiments is not None:  # an Experiments section for the report (docs/experiments.md)
        if args.report is None:
            raise PathError("--experiments needs --report DIR")
        from .experiments.section import load_section

        try:
            experiments_section = load_section(args.experiments)
        except ValueError as exc:
            raise PathError(str(exc)) from None

    from . import console
    from .verify import blas_single_thread, verify

    with blas_single_thread(), console.progress(enabled=not args.json, total=cfg.samples + 7) as tick:
        report = verify(cfg, progress=tick, with_findings=not args.no_findings, universal=universal,
                        backend=args.backend, symbolic_budget=args.symbolic_budget,
                        symbolic_relu="symbol" if args.symbolic_relu else "value",
                        report_data=args.report is not None)
        if args.export is not None:
            from . import export

            if tick:
                tick(0, 1, phase="writing the export")
            uni = report.universal
            export.write(report.con, report.samples, args.export, force=args.force,
                         hpost=None if uni is None else uni.hpost, mux=None if uni is None else uni.mux,
                         steps=report.steps)
        if args.plot is not None and report.universal is not None:
            from .files import atomic_file
            from .universal import plot_convergence

            if tick:
                tick(0, 1, phase="drawing the convergence plot")
            with atomic_file(args.plot, prefix=".plot-") as tmp:
                plot_convergence(report.universal, tmp)
        if args.report is not None:
            from .report import write_report

            if tick:
                tick(0, 1, phase="writing the report")
            context = None
            if experiments_section is not None:
                from .report.render import build_context

                context = build_context(report, argv=argv)
                context["experiments"] = experiments_section
            write_report(report, args.report, formats=report_formats, force=args.force, argv=argv,
                         context=context)
    if args.json:
        sys.stdout.write(json_document(report) + "\n")
        sys.stdout.flush()
    else:
        console.text(report, export_dir=args.export, report_dir=args.report)
        sys.stdout.flush()
    return 0 if report.passed else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
