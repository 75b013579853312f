"""Omniglot loader, 5-way 1-shot protocol and shifts, on a tiny set of character images generated here."""
from __future__ import annotations

import numpy as np
import pytest

from universality.experiments import omniglot as og


def _write_png(path, img):
    from PIL import Image

    Image.fromarray(img).save(path)


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory):
    """images_background: 2 alphabets x 4 characters; images_evaluation: 1 x 6; 3 drawings each.
    Each character is a distinct bar pattern, black strokes on white, 105 x 105 like Omniglot."""
    root = tmp_path_factory.mktemp("omniglot")
    rng = np.random.default_rng(0)
    for split, alphabets, chars in (("images_background", 2, 4), ("images_evaluation", 1, 6)):
        for a in range(alphabets):
            for c in range(chars):
                d = root / split / f"Alphabet_{a}" / f"character{c + 1:02d}"
                d.mkdir(parents=True)
                for k in range(3):
                    img = np.full((105, 105), 255, np.uint8)
                    r0 = 10 + 12 * c + int(rng.integers(0, 4))
                    img[r0:r0 + 8, 20 + 10 * a:90] = 0
                    img[20:90, 10 + 9 * c:16 + 9 * c] = 0
                    _write_png(d / f"{c:04d}_{k + 1:02d}.png", img)
    (root / "images_background" / "README.txt").write_text("not a folder")
    return root


def test_loader_reads_the_standard_layout(omni_dir):
    train, test = og.load(omni_dir, size=14)
    assert len(train) == 8 and len(test) == 6
    assert all(c.shape == (3, 14, 14) for c in train + test)
    img = train[0][0]
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.mean() < 0.5  # inverted: strokes are 1
    assert not np.allclose(train[0][0], train[1][0])


def test_check_root_refuses(tmp_path, omni_dir):
    with pytest.raises(og.OmniglotError, match="not a folder"):
        og.check_root(tmp_path / "missing")
    with pytest.raises(og.OmniglotError, match="neither"):
        og.check_root(tmp_path)
    (tmp_path / "images_background" / "A" / "c1").mkdir(parents=True)
    with pytest.raises(og.OmniglotError, match="need at least 10"):
        og.check_root(tmp_path)
    assert og.check_root(omni_dir) == omni_dir


def test_shear_and_scale_move_the_strokes():
    img = np.zeros((28, 28), np.float32)
    img[4:24, 13:15] = 1.0  # a vertical bar through the centre
    sheared = og.affine(img, shear=0.5)
    scaled = og.affine(img, scale=0.5)
    assert np.allclose(og.affine(img), img, atol=1e-2)
    assert not np.allclose(sheared, img, atol=0.1)
    # a vertical bar sheared becomes slanted: its top and bottom rows' centres move apart
    top, bottom = sheared[6].argmax(), sheared[21].argmax()
    assert abs(int(top) - int(bottom)) >= 4
    assert scaled.sum() < 0.7 * img.sum()  # scaled down: a shorter bar
    assert scaled[:8].sum() == 0 and scaled[-8:].sum() == 0


def test_five_way_one_shot_task(omni_dir):
    train, _ = og.load(omni_dir, size=14)
    rng = np.random.default_rng(1)
    sx, sy, qx, qy = og.sample_task(rng, train, ways=5, queries=2, rotate=True)
    assert sx.shape == (5, 1, 14, 14) and list(sy) == [0, 1, 2, 3, 4]
    assert qx.shape == (10, 1, 14, 14) and sorted(qy) == sorted([0, 1, 2, 3, 4] * 2)


def test_omniglot_job_runs(omni_dir):
    pytest.importorskip("torch")
    from universality.experiments.profiles import TINY
    from universality.experiments.runs import Job, run_job

    r = run_job(Job("omniglot", 0, 0, TINY, data=str(omni_dir)))
    names = [t["name"] for t in r["transforms"]]
    assert names == ["none", "shear 0.5", "scale 0.6"]
    for learner in ("maml", "snail"):
        acc = r["acc"][learner]
        assert acc.shape == (3, TINY.omni_test_tasks) and np.all((0 <= acc) & (acc <= 1))
    assert set(r["params"]) == {"maml", "snail"}
    for key in ("maml", "maml_support", "random", "random_support"):
        assert r["finetune"][key].shape == (TINY.omni_finetune_steps + 1, TINY.omni_test_tasks)
    assert abs(r["params"]["snail"] - r["params"]["maml"]) <= 0.25 * r["params"]["maml"]
