"""universality: build Finn & Levine's (ICLR 2018) construction and verify its claims by execution.

Quick start::

    from universality import Config, build, verify
    report = verify(Config(N=6, J=4, L=4))
    report.passed, [(c.id, c.verdict.value) for c in report.claims]
"""
__version__ = "0.1.0"

from .config import Config, ConfigError  # noqa: E402
from .construction.network import Construction, Design, build  # noqa: E402
from .execution import one_step  # noqa: E402
from .verify import Report, verify  # noqa: E402

__all__ = ["Config", "ConfigError", "Construction", "Design", "Report", "build", "one_step", "verify",
           "__version__"]
