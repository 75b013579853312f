"""Shared test set-up: Hypothesis profiles and the external-tool policy.

HYPOTHESIS_PROFILE=ci (set by .ci/run) selects derandomised examples with no deadline;
the default 'dev' profile is the same but with fewer examples. REQUIRE_EXTERNAL_TOOLS=1 makes
tests that need a system tool (latexmk, dot, chromium, pdftotext) fail instead of skipping.
UNIVERSALITY_KERNELS defaults to 1 here: the sparse engine's compiled kernels run at every size (a
run only uses them from engine/kernels.py's KERNELS_FROM on), so the suite's small sizes exercise them;
the tests that compare them with the generic code turn them off themselves. Set it to 0 to run the
whole suite on the generic code.
"""
from __future__ import annotations

import os

import shutil

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("UNIVERSALITY_KERNELS", "1")

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=40,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", deadline=None, derandomize=True, max_examples=15,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def require_tool(name: str) -> str:
    """The path of a system tool; skip (or fail under REQUIRE_EXTERNAL_TOOLS=1) when missing."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("REQUIRE_EXTERNAL_TOOLS") == "1":
            pytest.fail(f"required external tool {name!r} is not installed")
        pytest.skip(f"{name} not installed")
    return path
