"""The findings' memory: what they hold at their peak against the model (engine/memory.py
``findings_step_bytes``, universality/memory.py ``findings_bytes``), measured with tracemalloc (NumPy
reports its buffers to it), in both modes of the lone steps (stored; checkpointed, forced at small
sizes as at J = L = 64 and 128). The run-level caches the findings share with the claims (the
telescoping products) are warmed first: they are counted by the model's non-pass terms."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from universality import memory
from universality.claims import FINDINGS, Context
from universality.claims import findings as findings_mod
from universality.claims.base import run_finding
from universality.config import Config
from universality.construction.network import build
from universality.engine import batch
from universality.engine.memory import findings_step_bytes
from universality.samples import make_samples


@pytest.fixture
def run_sized_findings(monkeypatch):
    """The findings that would build a second construction of the run's size show their gap on
    reference sizes (as above FINDING_FULL_SIZE_MAX: J = L = 64, 128), so that what is measured is
    the findings' own steps on the run's weights."""
    monkeypatch.setattr(findings_mod, "FINDING_FULL_SIZE_MAX", 10_000)
    monkeypatch.setattr(memory, "FINDING_FULL_SIZE_MAX", 10_000)


def _peaks(con, samples) -> dict:
    ctx = Context(con)
    for spec in FINDINGS.values():  # warm the run-level caches
        run_finding(spec, ctx, samples)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        peaks = {}
        for spec in FINDINGS.values():
            tracemalloc.reset_peak()
            f = run_finding(spec, ctx, samples)
            peaks[spec.id] = tracemalloc.get_traced_memory()[1] - base
            assert f.demonstrated, (spec.id, f.headline)
    finally:
        tracemalloc.stop()
    return peaks


@pytest.mark.parametrize("checkpointed", [False, True])
def test_memory_model_counts_what_the_findings_allocate(run_sized_findings, monkeypatch, checkpointed):
    """The largest finding's peak (kshot-coincident-bins: two K-shot steps alive) is at most the
    model's findings term, and the model is at most 1.5x that peak (stated tolerance)."""
    if checkpointed:
        monkeypatch.setattr(batch, "LONE_CHECKPOINT_ABOVE_BYTES", 0)
    J = 16
    cfg = Config(N=J * J + 2, J=J, L=J, samples=2)
    con = build(cfg, engine="sparse")
    peaks = _peaks(con, make_samples(2, 0, J, J))
    worst = max(peaks.values())
    model = findings_step_bytes(cfg)
    # checkpointed, the model's lone steps also count the two passes a lone step computes on first use
    # and the compiled sweeps' contiguous factor copies (engine/memory.py lone_step_bytes), which the
    # findings' traversals do not make; with the compiled search of the update difference (no chunk
    # temporaries: 3.0 MB against 4.0 MB at J = 16) the model is 1.7x the peak
    assert worst <= model <= (1.8 if checkpointed else 1.5) * worst, (checkpointed, worst, model, peaks)
    # the run's estimate carries it (no second constructions above FINDING_FULL_SIZE_MAX)
    assert memory.components(cfg.with_(engine="sparse"))["findings"] == model
    if checkpointed:  # below the stored steps' N x D arrays (sqrt(N) layers a segment: far below at large N)
        assert model < 10 * 8 * cfg.N * cfg.D


def test_no_finding_keeps_memory_after_it_returns(run_sized_findings, monkeypatch):
    """Every finding releases what it allocated (psd-implication had cached the N dense B_i on the
    Context: 8 GB at J = L = 128, alive through every later finding)."""
    monkeypatch.setattr(batch, "LONE_CHECKPOINT_ABOVE_BYTES", 0)
    J = 8
    cfg = Config(N=J * J + 2, J=J, L=J, samples=2)
    con = build(cfg, engine="sparse")
    samples = make_samples(2, 0, J, J)
    ctx = Context(con)
    for spec in FINDINGS.values():
        run_finding(spec, ctx, samples)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for spec in FINDINGS.values():
            run_finding(spec, ctx, samples)
            kept = tracemalloc.get_traced_memory()[0] - base
            assert kept < 8 * cfg.D * 64, (spec.id, kept)  # a few vectors, never per-layer arrays
    finally:
        tracemalloc.stop()


def test_psd_min_eigenvalue_on_the_support_equals_the_whole_matrix():
    """psd-implication's min eigenvalue of sym(B_i) computed on the rows where it differs from I
    equals eigvalsh of the whole symmetric part, on the construction's B_i and on random ones."""
    from universality.claims.findings import _min_sym_eigenvalue_over_layers, _sym_min_eigenvalue

    for cfg in (Config(N=6, J=4, L=4), Config(N=18, J=4, L=4), Config(N=5, J=3, L=2, dx=2)):
        con = build(cfg)
        whole = min(float(np.linalg.eigvalsh((con.B(k) + con.B(k).T) / 2).min()) for k in range(1, con.N + 1))
        assert abs(_min_sym_eigenvalue_over_layers(con) - whole) <= 1e-12 * max(1.0, abs(whole))
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 9):
        B = np.eye(n)
        B[rng.integers(0, n), rng.integers(0, n)] += rng.standard_normal()
        if n > 2:
            B[1, 0] = -3.0
        want = float(np.linalg.eigvalsh((B + B.T) / 2).min())
        assert abs(_sym_min_eigenvalue(B, {}) - want) <= 1e-12 * max(1.0, abs(want))


# ---- the reworked reductions still see a broken counterexample, in both lone-step modes ----------
def _run(fid, J=4, checkpointed=False, monkeypatch=None):
    if checkpointed:
        monkeypatch.setattr(batch, "LONE_CHECKPOINT_ABOVE_BYTES", 0)
    cfg = Config(N=J * J + 2, J=J, L=J, samples=2)
    con = build(cfg, engine="sparse")
    return run_finding(FINDINGS[fid], Context(con), make_samples(2, 0, J, J))


@pytest.mark.parametrize("checkpointed", [False, True])
def test_coincident_bins_sees_updates_that_differ(monkeypatch, checkpointed):
    """A gradient that is not linear in the label (y^3 instead of y): two label sets with the same sum
    no longer give the same theta' and kshot-coincident-bins (its one-traversal update difference) is
    not demonstrated."""
    from universality.losses import MSE

    assert _run("kshot-coincident-bins", checkpointed=checkpointed, monkeypatch=monkeypatch).demonstrated
    monkeypatch.setattr(MSE, "grad", lambda self, y, yhat: yhat - np.asarray(y) ** 3)
    out = _run("kshot-coincident-bins", checkpointed=checkpointed, monkeypatch=monkeypatch)
    assert not out.demonstrated, out.headline
    assert out.counterexample["max_abs_theta_post_difference"] > 0


@pytest.mark.parametrize("checkpointed", [False, True])
def test_zero_label_sees_a_gradient(monkeypatch, checkpointed):
    """A loss whose gradient at y = 0 is not zero: zero-label (max |grad| and 'any gradient' in one
    traversal) is not demonstrated and reports the gradient."""
    from universality.losses import MSE

    assert _run("zero-label", checkpointed=checkpointed, monkeypatch=monkeypatch).demonstrated
    monkeypatch.setattr(MSE, "grad", lambda self, y, yhat: yhat - np.asarray(y) + 0.5)
    out = _run("zero-label", checkpointed=checkpointed, monkeypatch=monkeypatch)
    assert not out.demonstrated, out.headline
    assert out.counterexample["max_abs_gradient"] > 0


def test_mixed_signs_needs_a_clip_with_checkpointed_steps(monkeypatch):
    """Checkpointed lone steps: without the ReLUs in the pass at x* after the step there is nothing to
    clip, and kshot-mixed-signs (linear product and magnitude in one traversal) is not demonstrated."""
    assert _run("kshot-mixed-signs", checkpointed=True, monkeypatch=monkeypatch).demonstrated
    import universality.engine.step as engine_step

    real = engine_step.forward
    monkeypatch.setattr(engine_step, "forward", lambda W, phi, relu=True: real(W, phi, relu=False))
    out = _run("kshot-mixed-signs", checkpointed=True, monkeypatch=monkeypatch)
    assert not out.demonstrated, out.headline


@pytest.mark.parametrize("checkpointed", [False, True])
def test_mse_null_space_sees_a_step_that_moves_nothing(monkeypatch, checkpointed):
    """A loss whose gradient is zero everywhere: no weight moves, and kshot-mse-null-space (its
    gradient maximum through the compiled search) is not demonstrated (the trace it needs is gone)."""
    from universality.losses import MSE

    assert _run("kshot-mse-null-space", checkpointed=checkpointed, monkeypatch=monkeypatch).demonstrated
    monkeypatch.setattr(MSE, "grad", lambda self, y, yhat: 0.0 * (np.asarray(yhat) - np.asarray(y)))
    out = _run("kshot-mse-null-space", checkpointed=checkpointed, monkeypatch=monkeypatch)
    assert not out.demonstrated, out.headline
    assert out.counterexample["largest_weight_change"] == 0.0
