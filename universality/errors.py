"""Every error the package reports to a user, and the exit status each one maps to.

Raised from here and nowhere else (other modules import these classes). The command line prints the
message as one line on stderr and exits with the class's ``exit_code``:

====  =======================================================================================
code  meaning
====  =======================================================================================
0     every claim passes (SKIPPED counts as passing)
1     a claim FAILs or is UNDECIDED
2     bad input: a value out of range, an unsupported combination, an unusable path, a bad
      target (:class:`UsageError` and its subclasses)
3     an internal or I/O error (a full disk, a failing LaTeX run, a bug): one line, nothing
      partial left; ``--debug`` shows the traceback (:class:`InternalError`, :class:`OutputError`)
130   interrupted (Ctrl-C); nothing partial left
====  =======================================================================================
"""
from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_ERROR = 3
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_PASS: "every claim passes (SKIPPED counts as passing)",
    EXIT_FAIL: "a claim FAILs or is UNDECIDED",
    EXIT_USAGE: "bad input (one line on stderr, nothing written)",
    EXIT_ERROR: "internal or I/O error (one line on stderr, nothing partial left; --debug for the traceback)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); nothing partial left",
}


class UniversalityError(Exception):
    """Base of every error this package reports. The message is one line, meant for the user."""

    exit_code = EXIT_ERROR


class UsageError(UniversalityError, ValueError):
    """Bad input: the user can fix it by changing the command (exit 2)."""

    exit_code = EXIT_USAGE


class ArgumentError(UsageError):
    """A command line argparse cannot read: an unknown option, a missing or malformed value (exit 2)."""


class ConfigError(UsageError):
    """A size, option or combination of options that is refused (exit 2)."""


class TargetError(ConfigError):
    """A target learning algorithm that cannot be used: it fails, prints, exits, or returns values
    out of range (exit 2)."""


class PathError(UsageError):
    """An output path that cannot be used: empty, not a folder, existing without --force (exit 2)."""


class ExportError(PathError):
    """The --export folder cannot be used (exit 2)."""


class ReportError(PathError):
    """The --report folder or formats cannot be used as asked (exit 2)."""


class InternalError(UniversalityError):
    """Something failed that is not the user's input: a bug or an external tool (exit 3)."""


class OutputError(InternalError):
    """Writing the output failed (a full disk, a folder that became read-only): nothing partial is
    left (exit 3)."""


class ToolError(InternalError):
    """An external tool (latexmk, dot) failed on output the package produced (exit 3)."""


def exit_code(exc: BaseException) -> int:
    """The documented exit status for ``exc``: its class's code, 3 for anything unexpected."""
    if isinstance(exc, UniversalityError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_ERROR


def one_line(exc: BaseException) -> str:
    """The exception's message as one line (its first non-empty line, or its type)."""
    text = str(exc).strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if isinstance(exc, UniversalityError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


__all__ = ["EXIT_PASS", "EXIT_FAIL", "EXIT_USAGE", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_CODES",
           "UniversalityError", "UsageError", "ArgumentError", "ConfigError", "TargetError", "PathError", "ExportError",
           "ReportError", "InternalError", "OutputError", "ToolError", "exit_code", "one_line"]
