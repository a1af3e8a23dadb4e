"""``scale``, ``scale_by_learning_rate`` and ``scale_by_schedule`` against Optax 0.2.8 run in
float64 on the same problem (``tests/_oracle.py``), and their step counting.

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

PROB = oracle.problem(seed=8)
LR = 0.05


def lr_schedule(count):
    return 0.08 / (1.0 + 0.02 * count)


def negative_schedule(count):
    return -lr_schedule(count)


CASES = {
    "scale": (og.scale(-LR), optax.scale(-LR)),
    "scale_array": (og.scale(jnp.asarray(-LR)), optax.scale(jnp.asarray(-LR))),
    "learning_rate": (og.scale_by_learning_rate(LR), optax.scale_by_learning_rate(LR)),
    "learning_rate_schedule": (
        og.scale_by_learning_rate(lr_schedule),
        optax.scale_by_learning_rate(lr_schedule),
    ),
    # Ascent: the params grow by about (1 + 0.01 a) per step, ~10x over the run.
    "no_flip_ascent": (
        og.scale_by_learning_rate(0.01, flip_sign=False),
        optax.scale_by_learning_rate(0.01, flip_sign=False),
    ),
    "no_flip_schedule_descent": (
        og.chain(og.scale(-1.0), og.scale_by_learning_rate(lr_schedule, flip_sign=False)),
        optax.chain(optax.scale(-1.0), optax.scale_by_learning_rate(lr_schedule, flip_sign=False)),
    ),
    "scale_by_schedule": (
        og.scale_by_schedule(negative_schedule),
        optax.scale_by_schedule(negative_schedule),
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


def test_the_problem_tells_a_schedule_from_a_constant(runs):
    _, theirs = runs
    oracle.assert_distinguishable(theirs["learning_rate"], theirs["learning_rate_schedule"])


def test_schedules_count_the_steps(runs):
    ours, _ = runs
    for name in ("scale_by_schedule", "learning_rate_schedule"):
        (count,) = [x for x in jax.tree.leaves(ours[name][1]) if jnp.shape(x) == ()]
        assert count.dtype == jnp.int32
        assert int(count) == PROB.steps


def test_schedule_is_evaluated_at_zero_on_the_first_update():
    tx = og.scale_by_schedule(lambda count: count + 1.0)
    g = {"w": jnp.asarray([1.0, -2.0])}
    state = tx.init(g)
    step = jax.jit(tx.update)
    for expected_factor in (1.0, 2.0, 3.0):
        updates, state = step(g, state)
        np.testing.assert_array_equal(updates["w"], expected_factor * g["w"])
    assert isinstance(state, og.ScaleByScheduleState)
    assert int(state.count) == 3


@pytest.mark.parametrize("flip_sign", [True, False])
def test_learning_rate_schedule_starts_at_count_zero(flip_sign):
    tx = og.scale_by_learning_rate(lambda count: 0.5 * (count + 1.0), flip_sign=flip_sign)
    g = {"w": jnp.asarray([1.0, -2.0])}
    sign = -1.0 if flip_sign else 1.0
    step = jax.jit(tx.update)
    updates, state = step(g, tx.init(g))
    np.testing.assert_array_equal(updates["w"], sign * 0.5 * g["w"])
    updates, _ = step(g, state)
    np.testing.assert_array_equal(updates["w"], sign * 1.0 * g["w"])


def test_count_saturates_instead_of_overflowing():
    tx = og.scale_by_schedule(lambda count: 1.0)
    g = {"w": jnp.ones(2)}
    top = np.iinfo(np.int32).max
    _, state = jax.jit(tx.update)(g, og.ScaleByScheduleState(jnp.asarray(top, jnp.int32)))
    assert int(state.count) == top


# ---- Dtypes --------------------------------------------------------------------------------

BF16 = {
    "scale": og.scale(-0.1),
    "learning_rate": og.scale_by_learning_rate(0.1),
    "learning_rate_schedule": og.scale_by_learning_rate(lr_schedule),
    "scale_by_schedule": og.scale_by_schedule(negative_schedule),
}


@pytest.fixture(scope="module")
def two_steps():
    def tree(step):
        return jax.tree.map(lambda x: jnp.asarray(x[step], jnp.bfloat16), PROB.noise)

    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.bfloat16), PROB.theta0)
    return oracle.step_twice(BF16, params, (tree(0), tree(1)))


@pytest.mark.parametrize("name", BF16)
def test_bf16_updates_and_stable_state(two_steps, name):
    updates, state0, state2 = two_steps[name]
    assert oracle.dtypes(updates) == {jnp.dtype(jnp.bfloat16)}
    assert oracle.signature(state0) == oracle.signature(state2)


# ---- Errors --------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
BAD_ARGUMENTS = [
    (
        og.scale,
        dict(step_size=NAN),
        "optgrad.scale(step_size=...) must be a finite number, got step_size=nan",
    ),
    (
        og.scale,
        dict(step_size=INF),
        "optgrad.scale(step_size=...) must be a finite number, got step_size=inf",
    ),
    (
        og.scale_by_learning_rate,
        dict(learning_rate=-0.1),
        "optgrad.scale_by_learning_rate(learning_rate=...) must be non-negative, "
        "got learning_rate=-0.1",
    ),
    (
        og.scale_by_learning_rate,
        dict(learning_rate=NAN),
        "optgrad.scale_by_learning_rate(learning_rate=...) must be non-negative, "
        "got learning_rate=nan",
    ),
    (
        og.scale_by_learning_rate,
        dict(learning_rate=-0.1, flip_sign=False),
        "optgrad.scale_by_learning_rate(learning_rate=...) must be non-negative, "
        "got learning_rate=-0.1",
    ),
    (
        og.scale_by_learning_rate,
        dict(learning_rate=jnp.ones(2)),
        "optgrad.scale_by_learning_rate(learning_rate=...) must be a scalar or a schedule, "
        "got an array of shape (2,)",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


@pytest.mark.parametrize(
    ("factory", "value", "message"),
    [
        (
            og.scale_by_schedule,
            0.1,
            "optgrad.scale_by_schedule(step_size_fn=...) must be a function",
        ),
        (
            og.scale_by_learning_rate,
            "0.1",
            "optgrad.scale_by_learning_rate(learning_rate=...) must be a number",
        ),
    ],
)
def test_values_of_the_wrong_kind_are_type_errors(factory, value, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        factory(value)


@pytest.mark.parametrize(
    "factory, name",
    [
        (og.scale, "step_size"),
        (og.clip, "max_delta"),
        (og.trace, "decay"),
        (og.clip_by_global_norm, "max_norm"),
    ],
)
def test_array_hyperparameters_are_rejected_when_built(factory, name):
    with pytest.raises(
        ValueError, match=rf"\({name}=\.\.\.\) must be a scalar, got an array of shape \(2,\)"
    ):
        factory(jnp.ones(2))
