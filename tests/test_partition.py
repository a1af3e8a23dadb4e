"""``partition``, ``freeze`` and ``selective_transform``.

Oracles: the real ``torch.optim.AdamW`` and ``SGD`` with two ``param_groups`` (step for step),
and Optax 0.2.8's ``partition``, ``freeze`` and ``selective_transform`` (float64
trajectories) on the noisy quadratic of ``tests/_oracle.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optgrad as og
from tests._oracle import (
    assert_distinguishable,
    assert_trajectories_close,
    problem,
    run_many,
    run_optax64,
)
from tests.torch.conftest import run_torch

# tests._oracle.SHAPES is {"a": (4, 5), "b": (7,), "c": {"d": (2, 3, 5)}}: "b" is the bias.
BY_NDIM = lambda p: jax.tree.map(lambda x: "decay" if x.ndim > 1 else "no_decay", p)  # noqa: E731


def _groups(params, lr, weight_decay, **kw):
    """Torch's two param groups in ``jax.tree.leaves`` order (a, b, c/d): "b" has no decay."""
    return [
        {"params": [params[0], params[2]], "lr": lr, "weight_decay": weight_decay, **kw},
        {"params": [params[1]], "lr": lr / 5, "weight_decay": 0.0},
    ]


@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        (
            "AdamW",
            lambda: og.partition(
                {
                    "decay": og.torch.AdamW(lr=0.05, betas=(0.8, 0.95), weight_decay=0.2),
                    "no_decay": og.torch.AdamW(lr=0.01, betas=(0.8, 0.95), weight_decay=0.0),
                },
                BY_NDIM,
            ),
            lambda ps: torch.optim.AdamW(_groups(ps, 0.05, 0.2), betas=(0.8, 0.95)),
        ),
        (
            "SGD",
            lambda: og.partition(
                {
                    "decay": og.torch.SGD(lr=0.05, momentum=0.9, weight_decay=0.2),
                    "no_decay": og.torch.SGD(lr=0.01, momentum=0.9, weight_decay=0.0),
                },
                BY_NDIM,
            ),
            lambda ps: torch.optim.SGD(_groups(ps, 0.05, 0.2), momentum=0.9),
        ),
    ],
)
def test_param_groups_match_torch_step_for_step(name, ours, theirs):
    prob = problem(21)
    got = run_many({"tx": ours()}, prob)["tx"]
    expected = run_torch(theirs, prob)
    assert_trajectories_close(got, expected)
    # One group for all (the bias decayed, same lr) is a different run: the test can fail.
    one_group = run_torch(lambda ps: type(theirs(ps))(ps, lr=0.05, weight_decay=0.2), prob)
    assert_distinguishable(expected, one_group)


def _configs(lib):
    labels_tree = {"a": "adam", "b": "sgd", "c": {"d": "frozen"}}
    labels_prefix = {"a": "sgd", "b": "sgd", "c": "adam"}
    three = {
        "adam": lib.adam(0.05),
        "sgd": lib.sgd(0.05, momentum=0.9),
        "frozen": lib.set_to_zero(),
    }
    return {
        "tree": lib.partition(three, labels_tree),
        "prefix": lib.partition({k: three[k] for k in ("adam", "sgd")}, labels_prefix),
        "function": lib.partition(
            {"decay": lib.adamw(0.05, weight_decay=0.3), "no_decay": lib.adam(0.02)}, BY_NDIM
        ),
        "freeze": lib.chain(lib.sgd(0.05), lib.freeze({"a": False, "b": True, "c": False})),
        "selective": lib.selective_transform(
            lib.adam(0.05), freeze_mask={"a": True, "b": False, "c": False}
        ),
    }


def test_trajectories_match_optax():
    prob = problem(22)
    ours = run_many(_configs(og), prob)
    expected = run_optax64(_configs(optax), prob)
    for name in ours:
        assert_trajectories_close(ours[name], expected[name])


def test_each_group_keeps_state_for_its_own_leaves_only():
    params = {"w": jnp.ones((8, 4)), "b": jnp.ones(4), "emb": jnp.ones((10, 3))}
    labels = {"w": "adam", "b": "sgd", "emb": "frozen"}
    tx = og.partition(
        {"adam": og.adam(0.1), "sgd": og.sgd(0.1, momentum=0.9), "frozen": og.set_to_zero()},
        labels,
    )
    state = tx.init(params)
    assert set(state.inner_states) == {"adam", "sgd", "frozen"}
    n_bytes = sum(np.asarray(x).nbytes for x in jax.tree.leaves(state))
    # Adam's two moments for "w", one momentum buffer for "b", nothing for "emb"; scalars.
    scalars = sum(np.asarray(x).nbytes for x in jax.tree.leaves(state) if np.ndim(x) == 0)
    assert n_bytes - scalars == 2 * 8 * 4 * 4 + 4 * 4
    u, state = jax.jit(tx.update)(params, state, params)
    np.testing.assert_array_equal(u["emb"], 0.0)
    assert float(og.tree.get(state, "sgd/inner_state/hyperparams/learning_rate")) == np.float32(0.1)
    with pytest.raises(KeyError, match=r"ambiguous"):
        og.tree.get(state, "learning_rate")
    state = og.tree.set(state, **{"adam/inner_state/hyperparams/learning_rate": 0.0})
    u, _ = jax.jit(tx.update)(params, state, params)
    np.testing.assert_array_equal(u["w"], 0.0)


def test_extra_arguments_reach_every_group_that_accepts_them():
    def scale_by_value():
        def update_fn(updates, state, params=None, *, value=1.0):
            return jax.tree.map(lambda u: u * value, updates), state

        return og.GradientTransformation(og.init_empty_state, update_fn)

    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    tx = og.partition({"x": scale_by_value(), "y": og.sgd(1.0)}, {"a": "x", "b": "y"})
    u, _ = tx.update(params, tx.init(params), value=4.0, unknown="dropped")
    np.testing.assert_array_equal(u["a"], 4.0)
    np.testing.assert_array_equal(u["b"], -1.0)


def test_label_errors_list_labels_without_a_transformation_and_transformations_without_a_label():
    transforms = {"weights": og.sgd(0.1), "biases": og.sgd(0.1)}
    with pytest.raises(ValueError) as info:  # a label tree: checked when built
        og.partition(transforms, {"a": "weights", "b": "bias"})
    message = str(info.value)
    assert "labels without a transformation: 'bias'" in message
    assert "transformations without a label: 'biases'" in message
    params = {"a": jnp.ones((2, 2)), "b": jnp.ones(2)}
    tx = og.partition(transforms, lambda p: {"a": "weights", "b": "bias"})
    with pytest.raises(ValueError, match=r"labels without a transformation: 'bias'"):
        tx.init(params)  # a label function: checked at init
    with pytest.raises(ValueError, match=r"param_labels must have the tree structure"):
        og.partition(transforms, {"a": "weights"}).init(params)
    with pytest.raises(ValueError, match=r"PartitionState with labels 'weights', 'biases'"):
        og.partition(transforms, {"a": "weights", "b": "biases"}).update(params, og.EmptyState())
    with pytest.raises(TypeError, match=r"non-empty mapping"):
        og.partition([og.sgd(0.1)], {"a": 0})
    # A transformation that labels nothing is allowed (as in Optax): its state is empty.
    unused = og.partition(transforms, {"a": "weights", "b": "weights"})
    assert unused.update(params, unused.init(params))[0]["b"].shape == (2,)


def test_selective_transform_keeps_no_optimizer_state_for_frozen_leaves():
    params = {"backbone": jnp.ones((50, 50)), "head": jnp.ones((50, 2))}
    tx = og.selective_transform(og.adam(0.1), freeze_mask={"backbone": True, "head": False})
    state = tx.init(params)
    mu = state.inner_states["train"].inner_state.inner_state[0].mu
    assert isinstance(mu["backbone"], og.MaskedNode) and mu["head"].shape == (50, 2)
    u, _ = jax.jit(tx.update)(params, state, params)
    np.testing.assert_array_equal(u["backbone"], 0.0)
    assert np.all(np.asarray(u["head"]) < 0)
    everything = og.selective_transform(og.adam(0.1), freeze_mask=False)
    u, _ = everything.update(params, everything.init(params), params)
    assert np.all(np.asarray(u["backbone"]) < 0)
