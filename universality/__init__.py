"""universality: build Finn & Levine's (ICLR 2018) construction and verify its claims by execution.

Quick start::

    from universality import Config, build, verify
    report = verify(Config(N=6, J=4, L=4))
    report.passed, [(c.id, c.verdict.value) for c in report.claims]

Importing the package changes nothing in the process (no environment variables, no thread
settings): :func:`verify` limits the BLAS thread pools to one thread only while it runs (with
threadpoolctl), because the matrices here are small and multithreaded OpenBLAS spin-waits badly on
a busy machine.
"""
__version__ = "0.1.0"

from .config import Config  # noqa: E402
from .construction.network import Construction, Design, build  # noqa: E402
from .errors import ConfigError, UniversalityError, UsageError  # noqa: E402
from .execution import one_step  # noqa: E402
from .verify import Report, verify  # noqa: E402

__all__ = ["Config", "ConfigError", "Construction", "Design", "Report", "UniversalityError", "UsageError", "build",
           "one_step", "verify", "__version__"]
