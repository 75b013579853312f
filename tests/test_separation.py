"""codes-injective's separation: the nearest-neighbour path (many cell pairs) finds the same closest
pair and sine as the Gram-matrix path, and an exactly shared or opposite v is FAIL-exact on both."""
from __future__ import annotations

import numpy as np
import pytest

import universality.claims.coverage as coverage


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("plant", ["none", "near", "opposite"])
def test_tree_path_matches_gram_path(monkeypatch, seed, plant):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((30, 40, 6))
    if plant == "near":
        V[3, 4] = -2.5 * V[7, 9] + 1e-9 * rng.standard_normal(6)
    elif plant == "opposite":
        V[1, 2] = -V[5, 6]
    gram = coverage.separation(V)
    monkeypatch.setattr(coverage, "SEPARATION_GRAM_MAX", 10)
    tree = coverage.separation(V)
    assert tree[1] == gram[1] and tree[2] == gram[2]
    assert tree[0] == pytest.approx(gram[0], rel=1e-12, abs=0)
    assert (gram[0] == 0.0) == (plant == "opposite")
