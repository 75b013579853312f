"""universality: build Finn & Levine's (ICLR 2018) construction and verify its claims by execution.

Quick start::

    from universality import Config, build, verify
    report = verify(Config(N=6, J=4, L=4))
    report.passed, [(c.id, c.verdict.value) for c in report.claims]
"""
__version__ = "0.1.0"

import os as _os

# The matrices here are small (D is at most a few hundred): one BLAS thread is faster, and
# multithreaded OpenBLAS spin-waits badly on a busy machine (85x85 products measured 80x slower
# with two threads under load). Only a default: set OPENBLAS_NUM_THREADS yourself to override, and it
# has no effect if NumPy was imported before this package.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")

from .config import Config, ConfigError  # noqa: E402
from .construction.network import Construction, Design, build  # noqa: E402
from .engine.step import maml_step, single_step  # noqa: E402
from .verify import Report, verify  # noqa: E402

one_step = single_step  # the first version's name, kept for scripts that import it

__all__ = ["Config", "ConfigError", "Construction", "Design", "Report", "build", "maml_step", "one_step",
           "single_step", "verify", "__version__"]
