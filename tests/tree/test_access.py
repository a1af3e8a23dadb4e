"""``optgrad.tree.get`` and ``optgrad.tree.set``: named access to any state."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og


@pytest.fixture
def state():
    tx = og.chain(og.clip_by_global_norm(1.0), og.adamw(1e-3, weight_decay=0.01))
    return tx.init({"w": jnp.ones((2, 3)), "b": jnp.zeros(3)})


def test_get_finds_hyperparameters_and_statistics(state):
    assert float(og.tree.get(state, "learning_rate")) == pytest.approx(1e-3)
    assert float(og.tree.get(state, "global_norm")) == 0.0
    assert og.tree.get(state, "mu")["w"].shape == (2, 3)


def test_missing_name_lists_the_names_there_are(state):
    with pytest.raises(KeyError, match=r"no entry named 'lr'.*learning_rate.*weight_decay"):
        og.tree.get(state, "lr")


def test_ambiguous_name_lists_paths_and_a_longer_suffix_resolves_it(state):
    with pytest.raises(KeyError, match=r"ambiguous.*'1/count'.*'1/inner_state/0/count'"):
        og.tree.get(state, "count")
    assert int(og.tree.get(state, "inner_state/0/count")) == 0


def test_set_replaces_only_the_named_entries(state):
    new = og.tree.set(state, learning_rate=0.5, global_norm=2.0)
    assert float(og.tree.get(new, "learning_rate")) == 0.5
    assert float(og.tree.get(new, "global_norm")) == 2.0
    assert float(og.tree.get(state, "learning_rate")) == pytest.approx(1e-3)  # not mutated
    np.testing.assert_array_equal(og.tree.get(new, "nu")["w"], og.tree.get(state, "nu")["w"])


def test_set_rejects_a_value_of_the_wrong_shape(state):
    with pytest.raises(
        ValueError, match=r"optgrad.tree.set\(learning_rate=...\): expected shape \(\)"
    ):
        og.tree.set(state, learning_rate=jnp.ones(3))


def test_set_a_tuple_hyperparameter():
    tx = og.with_hyperparams(lambda betas: og.scale(betas[0] * betas[1]), betas=(0.5, 0.25))
    state = og.tree.set(tx.init(jnp.zeros(1)), betas=(1.0, 2.0))
    np.testing.assert_allclose(tx.update(jnp.ones(1), state)[0], 2.0)


def test_names_must_be_strings(state):
    with pytest.raises(TypeError, match="non-empty string"):
        og.tree.get(state, 3)


def test_an_absolute_path_names_an_entry_that_every_suffix_leaves_ambiguous():
    """``adamw``'s own step count is ``count`` at the root, and ``count`` also ends the inner
    counts' paths: only ``/count`` names it alone, and the error says so."""
    state = og.adamw(1e-3).init({"a": jnp.ones(2)})
    with pytest.raises(KeyError, match=r"ambiguous.*e\.g\. '/count'"):
        og.tree.get(state, "count")
    assert og.tree.get(state, "/count") is state.count
    assert int(og.tree.set(state, **{"/count": 3}).count) == 3
    assert int(og.tree.get(og.tree.set(state, **{"/count": 3}), "inner_state/0/count")) == 0
