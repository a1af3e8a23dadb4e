"""``add_decayed_weights`` against Optax 0.2.8 run in float64 on the same problem
(``tests/_oracle.py``): constant and scheduled decay, masks as a full tree, as a prefix of the
params and as a function of them.

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps (float32 rounding; see
``_oracle.assert_trajectories_close``).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests import _oracle as oracle

PROB = oracle.problem(seed=6)
LR = 0.05
MASK = {"a": True, "b": False, "c": {"d": True}}
PREFIX_MASK = {"a": False, "b": True, "c": True}


def wd_schedule(count):
    return 0.5 / (1.0 + 0.05 * count)


def matrices_only(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


def decayed(*args, **kwargs):
    """GD with the decay, in optgrad and in Optax."""
    return (
        og.chain(og.add_decayed_weights(*args, **kwargs), og.scale(-LR)),
        optax.chain(optax.add_decayed_weights(*args, **kwargs), optax.scale(-LR)),
    )


CASES = {
    "default": decayed(),
    "constant": decayed(0.3),
    "array_constant": decayed(jnp.asarray(0.3)),
    "schedule": decayed(wd_schedule),
    "mask_tree": decayed(0.3, MASK),
    "mask_prefix": decayed(0.3, PREFIX_MASK),
    "mask_callable_schedule": decayed(wd_schedule, matrices_only),
    "after_momentum": (
        og.chain(og.trace(0.8), og.add_decayed_weights(wd_schedule, MASK), og.scale(-LR)),
        optax.chain(
            optax.trace(0.8), optax.add_decayed_weights(wd_schedule, MASK), optax.scale(-LR)
        ),
    ),
}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many({n: tx for n, (tx, _) in CASES.items()}, PROB, with_state=True)
    theirs = oracle.run_optax64({name: ref for name, (_, ref) in CASES.items()}, PROB)
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name][0], theirs[name])


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("default", "constant"),
        ("constant", "schedule"),
        ("constant", "mask_tree"),
        ("constant", "mask_prefix"),
        ("mask_tree", "mask_prefix"),
        ("schedule", "mask_callable_schedule"),
    ],
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


def test_state_counts_steps(runs):
    ours, _ = runs
    state = ours["schedule"][1][0]
    assert isinstance(state, og.AddDecayedWeightsState)
    assert state.count.dtype == jnp.int32
    assert int(state.count) == PROB.steps


def _params(dtype=jnp.float32):
    return jax.tree.map(lambda x: jnp.asarray(x, dtype), PROB.theta0)


def _grads(dtype=jnp.float32):
    first = jax.tree.map(lambda x: jnp.asarray(x[0], dtype), PROB.noise)
    second = jax.tree.map(lambda x: jnp.asarray(x[1], dtype), PROB.noise)
    return first, second


@pytest.mark.parametrize(
    ("mask", "full"),
    [
        (MASK, MASK),
        (PREFIX_MASK, {"a": False, "b": True, "c": {"d": True}}),
        (matrices_only, {"a": True, "b": False, "c": {"d": True}}),
    ],
    ids=["tree", "prefix", "fn"],
)
def test_masked_out_leaves_pass_through_unchanged(mask, full):
    params, (grads, _) = _params(), _grads()
    tx = og.add_decayed_weights(0.3, mask)
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    for on, u, g, p in zip(*map(jax.tree.leaves, (full, updates, grads, params)), strict=True):
        if on:
            np.testing.assert_allclose(u, g + 0.3 * p, rtol=1e-6)
        else:
            np.testing.assert_array_equal(u, g)


def test_update_without_params_is_an_error():
    params, (grads, _) = _params(), _grads()
    tx = og.add_decayed_weights(0.1)
    with pytest.raises(ValueError, match=re.escape("optgrad.add_decayed_weights.update needs")):
        tx.update(grads, tx.init(params))


# ---- Dtypes --------------------------------------------------------------------------------

BF16 = {
    "constant": og.add_decayed_weights(0.1),
    "schedule_mask": og.add_decayed_weights(wd_schedule, MASK),
    "mask_fn": og.add_decayed_weights(0.1, matrices_only),
}


@pytest.fixture(scope="module")
def two_steps():
    return oracle.step_twice(BF16, _params(jnp.bfloat16), _grads(jnp.bfloat16))


@pytest.mark.parametrize("name", BF16)
def test_bf16_updates_and_stable_state(two_steps, name):
    updates, state0, state2 = two_steps[name]
    assert oracle.dtypes(updates) == {jnp.dtype(jnp.bfloat16)}
    assert oracle.signature(state0) == oracle.signature(state2)


# ---- Errors --------------------------------------------------------------------------------

NAN = float("nan")
BAD_ARGUMENTS = [
    (
        dict(weight_decay=-0.1),
        "optgrad.add_decayed_weights(weight_decay=...) must be non-negative, got weight_decay=-0.1",
    ),
    (
        dict(weight_decay=NAN),
        "optgrad.add_decayed_weights(weight_decay=...) must be non-negative, got weight_decay=nan",
    ),
    (
        dict(weight_decay=jnp.ones(3)),
        "optgrad.add_decayed_weights(weight_decay=...) must be a scalar or a schedule, "
        "got an array of shape (3,)",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        og.add_decayed_weights(**kwargs)


@pytest.mark.parametrize(
    "mask",
    [
        {"a": True, "b": False},
        {"a": True, "b": False, "c": {"d": True}, "e": False},
        {"a": True, "b": False, "c": {"x": True}},
        [True, False, True],
    ],
    ids=["missing", "extra", "renamed", "list"],
)
def test_mask_structure_mismatch_is_reported_at_init(mask):
    params = _params()
    tx = og.add_decayed_weights(0.1, mask)
    with pytest.raises(
        ValueError,
        match=re.escape("optgrad.add_decayed_weights: the mask must have the tree structure"),
    ) as info:
        tx.init(params)
    assert str(jax.tree.structure(params)) in str(info.value)
    assert str(jax.tree.structure(mask)) in str(info.value)


def test_mask_function_returning_the_wrong_structure_is_reported_at_init():
    params = _params()
    tx = og.add_decayed_weights(0.1, lambda p: {"a": True})
    with pytest.raises(ValueError, match="mask must have the tree structure") as info:
        tx.init(params)
    assert str(jax.tree.structure(params)) in str(info.value)
    assert str(jax.tree.structure({"a": True})) in str(info.value)
