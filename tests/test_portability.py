"""Results must not depend on the CPU: the same command run with NumPy's SIMD paths above the
x86-64 baseline disabled (NPY_DISABLE_CPU_FEATURES) and OpenBLAS forced to its Haswell kernels
(OPENBLAS_CORETYPE) gives the same samples bit for bit (sampling is portable by construction:
universality.samples.portable), the same verdicts, and residuals and tolerances that agree within
the stated tolerance: a claim's residual may move by at most its tolerance, and its reported
tolerance (the worst sample's, and which sample is worst can change with the BLAS kernel) by at most
a factor of 10."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .helpers import ROOT
from .schema import validate

DISABLE = "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"


def _run(argv, **env_extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra)
    p = subprocess.run([sys.executable, "-m", "universality", *argv, "--json"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode in (0, 1), p.stderr
    doc = json.loads(p.stdout)
    validate(doc)
    return doc


def _real(v):
    return float(v) if not isinstance(v, str) else float(v.replace("Infinity", "inf"))


@pytest.mark.parametrize("argv", [
    ["--N", "6", "--J", "4", "--L", "4", "--samples", "8", "--backend", "numeric"],
    ["--N", "5", "--J", "2", "--L", "3", "--dy", "2", "--K", "2", "--samples", "4", "--backend", "numeric",
     "--no-findings"],
])
def test_same_results_without_simd(argv):
    a = _run(argv)
    b = _run(argv, NPY_DISABLE_CPU_FEATURES=DISABLE, OPENBLAS_CORETYPE="Haswell")
    assert a["samples"] == b["samples"] and a["tasks"] == b["tasks"]  # bit for bit
    assert [(c["id"], c["verdict"]) for c in a["claims"]] == [(c["id"], c["verdict"]) for c in b["claims"]]
    for ca, cb in zip(a["claims"], b["claims"]):
        ra, rb, ta, tb = (_real(ca["residual"]), _real(cb["residual"]), _real(ca["tolerance"]),
                          _real(cb["tolerance"]))
        assert abs(ra - rb) <= max(ta, tb), (ca["id"], ra, rb, ta, tb)
        assert min(ta, tb) * 10 >= max(ta, tb), (ca["id"], ta, tb)
    assert [(f["id"], f["demonstrated"]) for f in a["findings"]] == \
        [(f["id"], f["demonstrated"]) for f in b["findings"]]


def test_sampled_values_are_rounded_portably():
    import numpy as np

    from universality.samples import PORTABLE_DIGITS, log_uniform, make_samples, portable

    v = log_uniform(np.random.default_rng(0), 0.05, 20.0, 1000)
    assert all(float(f"{x:.{PORTABLE_DIGITS}g}") == x for x in v)
    assert 0.05 * (1 - 1e-12) <= v.min() and v.max() <= 20.0 * (1 + 1e-12)
    assert portable(1 / 3) == 0.333333333333
    for s in make_samples(16, 3, 4, 4):
        assert all(portable(abs(y)) == abs(y) or abs(y) == 1e-8 for y in s.y)
