"""Start-up cost of the command line: NumPy submodules that SciPy's import touches but no run uses.

``import scipy.sparse`` runs ``from numpy import *`` (SciPy's array-API compatibility layer clones
NumPy's namespace), and that star import resolves every lazily loaded NumPy submodule in
``numpy.__all__``: ``numpy.f2py`` (which imports the Fortran parser, about 0.1-0.25 s on the project's
2-core machine), ``numpy.testing`` (unittest, concurrent.futures), ``numpy.ma``, ``numpy.polynomial``
and a few more. :func:`defer_numpy_submodules` registers those modules as lazy modules (the standard
library's :class:`importlib.util.LazyLoader`): the name exists, and the module executes on its first
attribute access, so nothing changes for code that uses them. Only the command line calls it (before
it imports SciPy); importing the package changes nothing.
"""
from __future__ import annotations

import importlib.util
import sys

#: NumPy submodules SciPy's import resolves and the tool never reads (measured: none of them is executed
#: by a run once deferred)
DEFERRED = ("numpy.f2py", "numpy.testing", "numpy.ma", "numpy.polynomial", "numpy.ctypeslib", "numpy.rec",
            "numpy.char")


def defer_numpy_submodules(names=DEFERRED) -> list[str]:
    """Register each not yet imported module of ``names`` as a lazy module; returns those deferred."""
    import numpy

    done = []
    for name in names:
        if name in sys.modules:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # pragma: no cover - another NumPy layout
            continue
        if spec is None or spec.loader is None:  # pragma: no cover
            continue
        loader = importlib.util.LazyLoader(spec.loader)
        spec.loader = loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
        setattr(numpy, name.rpartition(".")[2], module)  # `import numpy.f2py as f2py` reads the attribute
        done.append(name)
    return done
