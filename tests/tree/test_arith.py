"""Whole-tree norms against NumPy in float64."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import optgrad as og


@pytest.mark.parametrize("order", [2, 1, 3.5, "inf", float("inf")])
def test_norm_matches_numpy(order):
    rng = np.random.default_rng(0)
    tree = {"a": rng.normal(size=(3, 4)), "b": [rng.normal(size=7), rng.normal(size=(2, 2, 2))]}
    flat = np.concatenate([x.ravel() for x in jax.tree.leaves(tree)])
    p = np.inf if order in ("inf", float("inf")) else order
    expected = np.linalg.norm(flat, p)
    f32 = jax.tree.map(lambda x: x.astype(np.float32), tree)
    np.testing.assert_allclose(og.tree.norm(f32, order), expected, rtol=1e-6)


def test_sum_of_squares_of_an_empty_tree_is_zero():
    assert float(og.tree.sum_of_squares({})) == 0.0
