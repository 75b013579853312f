"""``verify-construction experiments {steps,ood,depth,all}``: the paper's Sec. 7 experiments.

Exit status: 0 every experiment claim PASSes; 1 one is FAIL or UNDECIDED; 2 bad input (one line on
stderr, nothing written; also when PyTorch is missing); 3 an I/O error writing the output; 130
interrupted (nothing written).
"""
from __future__ import annotations

import argparse
import sys

PROG = "verify-construction experiments"

EPILOG = """\
experiments (paper Sec. 7; docs/experiments.md):
  steps   Fig. 2: MAML trained with 5 inner steps, evaluated for 0..20 test-time steps on the same
          5 points, in and out of distribution, against the task-conditioned model fine-tuned
  ood     Fig. 3: error against amplitude and phase shift for MAML, a SNAIL-style and an LSTM
          meta-learner (and Omniglot 5-way 1-shot under shear and scale with --omniglot DIR)
  depth   Fig. 5: about 40,000 parameters, 1..5 hidden layers, one inner step, degree-3 polynomials
  all     all three

profiles: tiny (seconds, for tests), quick (3 seeds, <= 15 min on 2 cores), paper (the paper's sizes)

exit status: 0 every claim PASS; 1 a claim FAIL or UNDECIDED; 2 bad input or PyTorch missing;
3 output could not be written; 130 interrupted (nothing written).

examples:
  verify-construction experiments all --profile quick --out runs/quick
  verify-construction experiments steps --profile tiny --json
  verify-construction experiments ood --omniglot ~/data/omniglot --out runs/omniglot
  verify-construction experiments all --profile paper --scheduler tcp://10.0.0.5:8786 --out runs/paper
  verify-construction --N 6 --J 4 --L 4 --report out/report --experiments runs/quick/experiments.json
"""


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise UsageError(message)


def _int_at_least(lo: int):
    """An argparse type: a decimal integer >= lo (one-line messages)."""

    def parse(text: str) -> int:
        try:
            v = int(text, 10)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        return v

    return parse


_positive = _int_at_least(1)
_seed = _int_at_least(0)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                description="Reproduce the paper's experiments (Sec. 7) on a CPU and judge its empirical "
                            "claims with a paired bootstrap over seeds and test tasks (PASS / FAIL / UNDECIDED).")
    p.add_argument("experiment", choices=["steps", "ood", "depth", "all"], help="which experiment(s)")
    p.add_argument("--profile", choices=["tiny", "quick", "paper"], default="quick",
                   help="sizes and iteration counts (default quick)")
    p.add_argument("--seeds", type=_positive, default=None, help="number of seeds (default: the profile's, 3)")
    p.add_argument("--seed", type=_seed, default=0, help="root seed; the run is reproducible under it (default 0)")
    p.add_argument("--out", metavar="DIR", help="write experiments.json and figures/ into DIR (new or empty; missing parents are created)")
    p.add_argument("--json", action="store_true", help="print the run's JSON document on stdout")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the jobs on a Dask distributed cluster at ADDRESS (e.g. tcp://host:8786)")
    p.add_argument("--workers", type=_positive, default=None,
                   help="local worker processes (default: the number of cores, at most 8)")
    p.add_argument("--first-order", action="store_true", help="first-order MAML (no second-order terms)")
    p.add_argument("--omniglot", metavar="DIR",
                   help="Omniglot folder (images_background/ images_evaluation/); adds Omniglot to 'ood'")
    return p


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing written", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from .profiles import PROFILES

    profile = PROFILES[args.profile]
    if args.seeds is not None:
        profile = profile.with_(seeds=args.seeds)
    if args.first_order:
        profile = profile.with_(first_order=True)
    if args.scheduler is not None and args.workers is not None:
        raise UsageError("--workers is for local processes; a --scheduler cluster has its own workers")
    if args.scheduler is not None and not args.scheduler.strip():
        raise UsageError("--scheduler: empty address")
    if args.out is not None:
        from .output import check_out_dir

        try:
            check_out_dir(args.out)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    omniglot = None
    if args.omniglot is not None:
        from .omniglot import OmniglotError, check_root

        try:
            omniglot = str(check_root(args.omniglot))
        except OmniglotError as exc:
            raise UsageError(f"--omniglot: {exc}") from None
        if args.experiment not in ("ood", "all"):
            raise UsageError("--omniglot is used by the 'ood' experiment (or 'all')")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UsageError("PyTorch is not installed; install the extra: pip install -e '.[experiments]'") from None
    if args.scheduler is not None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise UsageError("--scheduler needs Dask distributed; pip install -e '.[experiments]'") from None
    experiments = ["steps", "ood", "depth"] if args.experiment == "all" else [args.experiment]
    from .engine import default_workers

    workers = args.workers or default_workers()
    doc = _run(experiments, profile, args, workers, omniglot)
    from rich.console import Console

    if args.out is not None:
        from ..errors import OutputError
        from .output import write_outputs

        try:
            write_outputs(doc, args.out)
        except OutputError as exc:  # files.atomic_folder: nothing partial is left
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 3
        except OSError as exc:
            print(f"{PROG}: cannot write {args.out!r}: {exc.strerror or exc}", file=sys.stderr)
            return 3
    if args.json:
        from .output import dumps

        sys.stdout.write(dumps(doc))
    else:
        from .output import text_summary

        text_summary(doc, Console())
        if args.out is not None:
            print(f"written: {args.out}/experiments.json, {args.out}/figures/")
    return 0 if doc["passed"] else 1


def _run(experiments, profile, args, workers, omniglot) -> dict:
    """Run with a rich progress bar per phase; one tick per finished seed / configuration."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .suite import run_suite

    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=False, disable=not console.is_terminal)
    bars: dict[str, int] = {}
    names = {"sinusoid": "sinusoid: " + "+".join(x for x in experiments if x != "depth"),
             "depth": "depth: seeds x layers", "omniglot": "omniglot"}

    def hook(jobs):
        for kind in dict.fromkeys(j.kind for j in jobs):
            bars[kind] = progress.add_task(names[kind], total=sum(j.kind == kind for j in jobs))

    def done(job, result):
        progress.advance(bars[job.kind])
        line = f"done: {job.label} ({result['seconds']:.1f} s)"
        if console.is_terminal:
            progress.console.log(line)
        else:  # logs: one plain line per finished seed / configuration
            print(f"{PROG}: {line}", file=sys.stderr, flush=True)

    with progress:
        return run_suite(experiments, profile, root_seed=args.seed, workers=workers,
                         scheduler=args.scheduler, omniglot=omniglot, on_done=done, jobs_hook=hook)
