"""The experiment claims' statistics on planted synthetic curves: a clear effect PASSes, a reversed
one FAILs, noise is UNDECIDED (no torch needed)."""
from __future__ import annotations

import numpy as np
import pytest

from universality.claims import experiments as ex
from universality.claims.base import Verdict


def _rng(seed=0):
    return np.random.default_rng(seed)


def _steps_curves(maml_trend: float, tc_trend: float, noise: float = 0.05, seeds=3, tasks=40, steps=21):
    """Curves (seeds, tasks, steps) that fall by ``maml_trend`` per step past 5 (MAML) and rise by
    ``tc_trend`` per step (task-conditioned), plus noise."""
    r = _rng(1)
    k = np.arange(steps)
    base = 1.0 + r.uniform(0, 0.5, size=(seeds, tasks, 1))
    maml = base - maml_trend * np.clip(k - 5, 0, None) + noise * r.standard_normal((seeds, tasks, steps))
    tc = base + tc_trend * k + noise * r.standard_normal((seeds, tasks, steps))
    return {"maml_in": maml, "maml_ood": maml + 0.5, "tc_ood": tc}


@pytest.mark.parametrize("trend, verdict", [(0.02, Verdict.PASS), (-0.02, Verdict.FAIL), (0.0, Verdict.UNDECIDED)])
def test_steps_verdicts_on_planted_curves(trend, verdict):
    res = ex.judge_steps(_steps_curves(trend, trend), train_steps=5, seed=3)
    assert [r.id for r in res] == [ex.STEPS_MAML_IN.id, ex.STEPS_MAML_OOD.id, ex.STEPS_TC_OOD.id]
    for r in res:
        assert r.verdict == verdict, (r.id, r.computed)
        lo, hi = r.computed["ci_low"], r.computed["ci_high"]
        assert lo <= r.computed["estimate"] <= hi
        d = r.as_dict()
        assert d["verdict"] == verdict.value and d["checked"] == 3 * 40
        assert sum(r.counts.values()) == 3


def test_noise_only_is_undecided_and_effect_size_small():
    r = _rng(7)
    d = r.standard_normal((3, 50))
    res = ex.judge(ex.STEPS_MAML_IN, "direction", [d - d.mean()], ex.mean_stat, seed=0)
    assert res.verdict == Verdict.UNDECIDED
    assert abs(res.computed["effect_size_dz"]) < 1e-9


def _ood(maml_deg: float, snail_deg: float, snail_scale=1.0, seeds=3, tasks=40):
    r = _rng(2)
    shifts = np.linspace(0, 1, 5)[None, :, None]
    base = 0.3 + 0.1 * r.random((seeds, 1, tasks))
    out = {}
    for name, deg, scale in (("maml", maml_deg, 1.0), ("snail", snail_deg, snail_scale)):
        out[name] = {axis: scale * base + deg * shifts + 0.02 * r.standard_normal((seeds, 5, tasks))
                     for axis in ("amplitude", "phase")}
    return out


def test_ood_verdicts():
    good = {r.id: r.verdict for r in ex.judge_ood(_ood(0.5, 3.0), seed=0)}
    assert good == {ex.OOD_SIMILAR.id: Verdict.PASS, ex.OOD_AMPLITUDE.id: Verdict.PASS,
                    ex.OOD_PHASE.id: Verdict.PASS}
    bad = {r.id: r.verdict for r in ex.judge_ood(_ood(3.0, 0.5, snail_scale=5.0), seed=0)}
    assert bad == {ex.OOD_SIMILAR.id: Verdict.FAIL, ex.OOD_AMPLITUDE.id: Verdict.FAIL,
                   ex.OOD_PHASE.id: Verdict.FAIL}


def test_depth_verdicts():
    r = _rng(4)
    depths = [1, 2, 3, 4, 5]
    d = np.asarray(depths, float)[None, :, None]
    noise = lambda: 0.01 * r.standard_normal((3, 5, 30))  # noqa: E731
    falling = 1.0 / d + noise()
    flat = 0.2 + 0.0 * d + noise()
    res = {x.id: x.verdict for x in ex.judge_depth(falling, flat, depths, seed=0)}
    assert res == {ex.DEPTH_MAML.id: Verdict.PASS, ex.DEPTH_ORACLE.id: Verdict.PASS}
    res = {x.id: x.verdict for x in ex.judge_depth(d / 5 + noise(), falling, depths, seed=0)}
    assert res == {ex.DEPTH_MAML.id: Verdict.FAIL, ex.DEPTH_ORACLE.id: Verdict.FAIL}


def test_non_finite_is_undecided():
    d = np.full((2, 5), np.nan)
    assert ex.judge(ex.STEPS_MAML_IN, "direction", [d], ex.mean_stat, seed=0).verdict == Verdict.UNDECIDED


def test_bootstrap_is_paired_and_reproducible():
    a = _rng(5).random((3, 20))
    b1 = ex.bootstrap([a, a], ex.log_ratio_stat, _rng(9))
    assert b1.estimate == 0 and b1.low == 0 and b1.high == 0  # paired: identical arrays, zero width
    b2 = ex.bootstrap([a], ex.mean_stat, _rng(9))
    b3 = ex.bootstrap([a], ex.mean_stat, _rng(9))
    assert (b2.low, b2.high) == (b3.low, b3.high)
    with pytest.raises(ValueError):
        ex.bootstrap([a, a[:, :3]], ex.log_ratio_stat, _rng(0))
    with pytest.raises(ValueError):
        ex.decide("sideways", b2)


def test_omniglot_verdicts():
    r = _rng(6)
    shifts = np.array([0.0, 0.5, 1.0])[None, :, None]
    maml = np.clip(0.1 + 0.05 * shifts + 0.01 * r.random((3, 3, 40)), 0, 1)
    snail = np.clip(0.12 + 0.4 * shifts + 0.01 * r.random((3, 3, 40)), 0, 1)
    got = {x.id: x.verdict for x in ex.judge_omniglot({"maml": maml, "snail": snail}, seed=0)}
    assert got == {ex.OMNI_SIMILAR.id: Verdict.PASS, ex.OMNI_ROBUST.id: Verdict.PASS}
    got = {x.id: x.verdict for x in ex.judge_omniglot({"maml": snail, "snail": maml * 0.1}, seed=0)}
    assert got == {ex.OMNI_SIMILAR.id: Verdict.FAIL, ex.OMNI_ROBUST.id: Verdict.FAIL}


def test_omniglot_finetune_verdicts():
    r = _rng(8)
    steps = np.arange(11)[None, :, None]
    flat = 0.2 + 0.01 * r.random((3, 11, 40))
    assert ex.judge_omniglot_finetune(flat, 1, seed=0).verdict == Verdict.PASS
    dropping = 0.2 + 0.03 * steps + 0.01 * r.random((3, 11, 40))
    assert ex.judge_omniglot_finetune(dropping, 1, seed=0).verdict == Verdict.FAIL
    frozen = ex.judge_omniglot_finetune(np.full((3, 11, 40), 0.8), 1, seed=0)  # nothing moved: vacuous
    assert frozen.verdict == Verdict.UNDECIDED and "changed no" in frozen.note
