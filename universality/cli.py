"""verify-construction: build the construction, run the real step, print the verdicts.

Exit status: 0 when every claim of the requested construction passes (SKIPPED counts as passing),
1 when one fails or is UNDECIDED, 2 for bad input (one line on stderr, nothing written).
"""
from __future__ import annotations

import argparse
import json
import math
import sys

EPILOG = """\
claims (each computed by running the network; see README):
  grad-rank-one, update-blocks, second-order-zero, post-update-eq3, z-star-is-minus-alpha-v,
  kernel-code, v-decodes, boundary, nonneg-linear-regime, psd-argument, e-linear, multiplexer
  loss-recovers-label (Sec. 6, every loss); with --K > 1 also kshot-eq, permutation-invariant,
  kshot-decodes (Sec. 5)
  with --target: universal-exact-on-grid, universal-converges
findings (known gaps of the paper, each demonstrated live on these sizes):
  relu-grad-at-zero, sign-of-y, psd-implication, zero-label, depth-jl,
  kshot-coincident-bins, kshot-balanced-ce, kshot-mse-null-space, kshot-mixed-signs

exit status: 0 every claim passes; 1 a claim fails or is undecided; 2 bad input.

examples:
  verify-construction --N 6 --J 4 --L 4            # compact layout, all claims PASS
  verify-construction --N 18 --J 4 --L 4           # the paper's one-hot layout (N = J*L + 2)
  verify-construction --N 6 --J 4 --L 4 --variant paper      # the paper's e_bar: sign gap, exit 1
  verify-construction --N 6 --J 4 --L 4 --relu-grad-at-zero 0   # PyTorch's ReLU'(0): collapse
  verify-construction --N 6 --J 4 --L 4 --json --export out/
  verify-construction --N 6 --J 4 --L 4 --loss ce --dy 3    # softmax CE, one-hot labels (C = dy)
  verify-construction --N 6 --J 4 --L 4 --loss l1           # L1 loses the label: exit 1
  verify-construction --N 6 --J 4 --L 4 --K 3               # 3-shot step, K-shot claims
  verify-construction --N 6 --J 4 --L 4 --target cos          # one step reproduces f = y cos(2 pi (x* - x))
  verify-construction --N 6 --J 4 --L 4 --target mymod:f --sweep 2,4,8,16 --plot conv.png
  verify-construction --N 6 --J 4 --L 4 --report out/report --format html,tex,pdf
  verify-construction --N 11 --J 3 --L 3 --backend both   # exact SymPy proofs + schematic proof for every N
  verify-construction experiments all --profile quick --out runs/q  # the paper's Sec. 7 experiments
                                  # (own options: verify-construction experiments --help; docs/experiments.md)
"""


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # argparse only takes -3 and -0.5 as negative numbers; accept -1e-8 and -2.5E3 as values too
        # (no option of ours looks like a number)
        import re

        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")

    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(message)


def _int(text: str) -> int:
    try:
        return int(text, 10)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _real(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="verify-construction",
        description=(
            "Build the explicit weight construction of Finn & Levine (ICLR 2018), 'Meta-Learning and "
            "Universality', run the network, backprop, take one real gradient step and check every "
            "claim of the paper against what the network actually computed. Known gaps of the paper "
            "are demonstrated live with counterexamples."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    size = p.add_argument_group("sizes")
    size.add_argument("--N", type=_int, required=True, metavar="N",
                      help="depth: number of square D x D layers (>= 4). The paper layout needs N = J^dx*L^dx + 2")
    size.add_argument("--J", type=_int, required=True, metavar="J",
                      help="cells per axis for the training input x (>= 1)")
    size.add_argument("--L", type=_int, required=True, metavar="L",
                      help="cells per axis for the test input x* (>= 1)")
    size.add_argument("--dx", type=_int, default=1, metavar="DX",
                      help="input dimension; cells form a J^dx (L^dx) grid, flattened (default 1)")
    size.add_argument("--dy", type=_int, default=1, metavar="DY", help="label dimension (default 1)")
    con = p.add_argument_group("construction")
    con.add_argument("--alpha", type=_real, default=0.3,
                     help="inner learning rate, nonzero, any sign (default 0.3)")
    con.add_argument("--eps", type=_real, default=0.1,
                     help="epsilon of A_i = eps*I + E_i, > 0 (default 0.1)")
    con.add_argument("--variant", choices=["signed", "paper"], default="signed",
                     help="label channel: 'signed' stacks [y; -y] per channel and works for every y "
                          "(default); 'paper' stacks [y] as in the paper and loses half the labels")
    con.add_argument("--layout", choices=["auto", "paper", "compact"], default="auto",
                     help="code table: 'paper' one-hot codes (N = J*L + 2), 'compact' moment-curve codes "
                          "(any N >= 4), 'auto' paper when N = J*L + 2 else compact (default)")
    con.add_argument("--relu-grad-at-zero", type=_real, default=1.0, metavar="R",
                     help="ReLU'(0) used by backprop, >= 0 (default 1). r > 0 is compensated exactly "
                          "(A_i / r^i); 0 (PyTorch/TensorFlow/JAX) shows the collapse")
    con.add_argument("--loss", choices=["mse", "ce", "l1", "hinge", "huber"], default="mse",
                     help="inner loss: mse (default, Thm 6.1), ce (softmax cross-entropy on the simplex, "
                          "C = dy classes, Thm 6.2), or l1 / hinge / huber (the paper's negative cases)")
    con.add_argument("--K", type=_int, default=1, metavar="K",
                     help="shots per task, >= 1 (default 1). K > 1 also runs real K-shot steps "
                          "theta' = theta - alpha (1/K) sum_k grad l_k and the K-shot claims")
    run = p.add_argument_group("run")
    run.add_argument("--samples", type=_int, default=16, metavar="S",
                     help="random (x, x*, y) triples to check, >= 0 (default 16); 7 corner cases are "
                          "always added")
    run.add_argument("--seed", type=_int, default=0, help="random seed, >= 0 (default 0): same seed, same run")
    run.add_argument("--max-memory", type=_real, default=None, metavar="GIB",
                     help="refuse sizes whose dense weights need more than this many GiB "
                          "(default: 80%% of available memory)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true",
                     help="print one JSON document (schema: docs/json.md) instead of tables")
    out.add_argument("--export", metavar="DIR",
                     help="write DIR/construction.npz and DIR/construction.json (weights, samples, "
                          "zbar*, v) to re-run the step in any framework")
    out.add_argument("--no-findings", action="store_true",
                     help="skip the demonstrations of the paper's known gaps (faster)")
    uni = p.add_argument_group("universality (Lemma 4.1 end to end: one step reproduces a learning algorithm)")
    uni.add_argument("--target", metavar="NAME|MODULE:FUNC", default=None,
                     help="target learning algorithm f(x, y, x*): copy, cos, nn, two-output (dy = 2), sin-y, "
                          "or module:function; adds the claims universal-exact-on-grid and universal-converges")
    uni.add_argument("--y-grid", type=_int, default=9, metavar="G",
                     help="y-grid points per label coordinate of h_post at the run's sizes (default 9)")
    uni.add_argument("--y-max", type=_real, default=2.0, metavar="Y",
                     help="labels live in [-Y, Y]^dy (default 2)")
    uni.add_argument("--y-min", type=_real, default=0.1, metavar="DELTA",
                     help="test labels have |y|_1 >= DELTA, where the gates are exact (default 0.1)")
    uni.add_argument("--test-points", type=_int, default=200, metavar="T",
                     help="random (x, y, x*) test triples, one real step each (default 200)")
    uni.add_argument("--sweep", type=_int_list, default=(2, 4, 8), metavar="J1,J2,...",
                     help="J = L of each convergence level (default 2,4,8); the paper layout's N follows")
    uni.add_argument("--sweep-grid", type=_int_list, default=None, metavar="G1,G2,...",
                     help="y-grid size per level, or one for all (default 5,9,17,... for dy = 1; 3,5,9,... "
                          "for dy >= 2)")
    uni.add_argument("--plot", metavar="FILE", default=None,
                     help="write the convergence plot to FILE (.png, .pdf or .svg)")
    out.add_argument("--report", metavar="DIR",
                     help="write a proof report into DIR: report.html (self-contained, offline), "
                          "report.tex (+ figures/), report.json; see docs/user-guide.md")
    out.add_argument("--format", metavar="LIST", default=None,
                     help="report formats, comma-separated from html, tex, pdf (default html,tex); "
                          "pdf runs latexmk")
    out.add_argument("--force", action="store_true",
                     help="let --report replace the report files in a non-empty DIR")
    out.add_argument("--experiments", metavar="FILE", default=None,
                     help="add an Experiments section to --report from FILE, the experiments.json written by "
                          "'verify-construction experiments --out DIR' (docs/experiments.md)")
    sym = p.add_argument_group("exact verification")
    sym.add_argument("--backend", choices=["auto", "numeric", "symbolic", "both"], default="auto",
                     help="numeric (float64 with tolerances), symbolic (exact SymPy proofs: instance proofs "
                          "and the schematic proof for every N), both, or auto (default): both when the "
                          "symbolic run is predicted quick for the sizes, numeric otherwise; a one-line note "
                          "says which ran")
    sym.add_argument("--symbolic-budget", type=_real, default=None, metavar="SECONDS",
                     help="wall-clock budget of the symbolic run (default 60): a run predicted to exceed it "
                          "is refused, a run reaching it is cut with a note")
    sym.add_argument("--symbolic-relu", action="store_true",
                     help="in the exact run, make ReLU'(0) the symbol r = rho^2 > 0 (construction and backprop): "
                          "proves the 1/r^i compensation for every r > 0 at once")
    p.add_argument("--version", action="version", version=_version())
    return p


def _int_list(text: str) -> tuple:
    try:
        values = tuple(int(t, 10) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"must list at least one integer, got {text!r}")
    return values


def _version() -> str:
    from . import __version__

    return f"universality {__version__}"


def _memory_bytes(gib: float) -> int:
    """--max-memory GiB as bytes: > 0, and capped (1e300 GiB would overflow int(float))."""
    from .config import ConfigError

    if not gib > 0:
        raise ConfigError(f"max-memory must be > 0 GiB, got {gib}")
    return max(1, int(min(gib * 2**30, float(2**62))))


def _fail(message: str) -> int:
    print(f"verify-construction: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["experiments"]:  # the paper's Sec. 7 experiments: their own command (docs/experiments.md)
        from .experiments.cli import main as experiments_main

        return experiments_main(args[1:])
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("verify-construction: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return _fail("out of memory; try smaller sizes or --max-memory")
    except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback
        print(f"verify-construction: internal error: {type(exc).__name__}: {exc} (please report)",
              file=sys.stderr)
        return 1


def _universal_options(args, cfg):
    """UniversalOptions from --target and its options; the options without --target are an error."""
    from .config import ConfigError

    given = [flag for flag, value, default in (
        ("--y-grid", args.y_grid, 9), ("--y-max", args.y_max, 2.0), ("--y-min", args.y_min, 0.1),
        ("--test-points", args.test_points, 200), ("--sweep", args.sweep, (2, 4, 8)),
        ("--sweep-grid", args.sweep_grid, None), ("--plot", args.plot, None)) if value != default]
    if args.target is None:
        if given:
            raise ConfigError(f"{given[0]} needs --target")
        return None
    from .universal import UniversalOptions, check_sizes

    opts = UniversalOptions(target=args.target, grid_size=args.y_grid, y_max=args.y_max, delta=args.y_min,
                            test_points=args.test_points, sweep=args.sweep, sweep_grid=args.sweep_grid,
                            seed=args.seed)
    check_sizes(cfg, opts)
    if args.plot:
        from pathlib import Path

        import os

        parent = Path(args.plot).parent
        if not (parent if str(parent) else Path(".")).is_dir():
            raise ConfigError(f"--plot: folder {str(parent)!r} does not exist")
        if not os.access(parent if str(parent) else Path("."), os.W_OK):
            raise ConfigError(f"--plot: folder {str(parent)!r} is not writable")
        if Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
            raise ConfigError(f"--plot: file must end in .png, .pdf or .svg, got {args.plot!r}")
    return opts


def _main(argv) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else "bad arguments")
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)

    from .config import Config, ConfigError
    from .export import ExportError, check_target

    if args.max_memory is not None and args.max_memory <= 0:
        return _fail(f"--max-memory must be > 0 GiB, got {args.max_memory:g}")
    try:
        cfg = Config(
            N=args.N, J=args.J, L=args.L, dx=args.dx, dy=args.dy, eps=args.eps, alpha=args.alpha,
            variant=args.variant, layout=args.layout, relu_grad_at_zero=args.relu_grad_at_zero,
            samples=args.samples, seed=args.seed, loss=args.loss, K=args.K,
            max_memory_bytes=None if args.max_memory is None else _memory_bytes(args.max_memory),
        )
        if args.export:
            check_target(args.export)
        universal = _universal_options(args, cfg)
        from .symbolic.budget import DEFAULT_BUDGET_S
        from .verify import resolve_backend_for_loss

        budget = DEFAULT_BUDGET_S if args.symbolic_budget is None else args.symbolic_budget
        resolve_backend_for_loss(cfg, args.backend, budget)
    except (ConfigError, ExportError) as exc:
        return _fail(str(exc))
    report_formats = None
    if args.report is not None or args.format is not None or args.force:
        from .report import ReportError, check_target as check_report_target, parse_formats

        try:
            if args.report is None:
                raise ReportError("--format and --force need --report DIR")
            report_formats = parse_formats(args.format)
            from pathlib import Path

            if args.export and Path(args.export).resolve() == Path(args.report).resolve():
                raise ReportError("--export and --report need different folders")
            check_report_target(args.report, force=args.force, formats=report_formats)
        except ReportError as exc:
            return _fail(str(exc))
    experiments_section = None
    if args.experiments is not None:
        if args.report is None:
            return _fail("--experiments needs --report DIR")
        from .experiments.section import load_section

        try:
            experiments_section = load_section(args.experiments)
        except ValueError as exc:
            return _fail(str(exc))

    from . import render
    from .verify import verify

    try:
        with render.progress(enabled=not args.json, total=cfg.samples + 7) as tick:
            report = verify(cfg, progress=tick, with_findings=not args.no_findings, universal=universal,
                            backend=args.backend, symbolic_budget=budget,
                            symbolic_relu="symbol" if args.symbolic_relu else "value")
    except ConfigError as exc:  # e.g. a --target function that fails on some input
        return _fail(str(exc))
    if args.export:
        from . import export

        if report.universal is not None:
            export.write(report.con, report.samples, args.export, hpost=report.universal.hpost,
                         mux=report.universal.mux)
        else:
            export.write(report.con, report.samples, args.export)
    if args.plot and report.universal is not None:
        from .universal import plot_convergence

        plot_convergence(report.universal, args.plot)
    if args.report is not None:
        from .report import ReportError, write_report

        try:
            context = None
            if experiments_section is not None:
                from .report.render import build_context

                context = build_context(report, argv=list(sys.argv[1:] if argv is None else argv))
                context["experiments"] = experiments_section
            write_report(report, args.report, formats=report_formats, force=args.force,
                         argv=list(sys.argv[1:] if argv is None else argv), context=context)
        except ReportError as exc:
            print(f"verify-construction: error: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        render.text(report, export_dir=args.export, report_dir=args.report)
    return 0 if report.passed else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
