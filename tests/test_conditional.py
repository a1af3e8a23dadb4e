"""``conditionally_transform`` and ``conditionally_mask``: trajectories against Optax 0.2.8
(float64), extra arguments, jit, and the errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests._oracle import (
    assert_distinguishable,
    assert_trajectories_close,
    problem,
    run_many,
    run_optax64,
)


def _every_third_skipped(step):
    return step % 3 != 2


def _configs(lib):
    return {
        "transform_adam_direction": lib.chain(
            lib.conditionally_transform(lib.scale_by_adam(), _every_third_skipped),
            lib.scale(-0.05),
        ),
        "transform_clip": lib.chain(
            lib.conditionally_transform(lib.clip_by_global_norm(0.5), lambda s: s >= 20),
            lib.sgd(0.05, momentum=0.5),
        ),
        "mask_adam": lib.conditionally_mask(lib.adam(0.05), _every_third_skipped),
        "mask_schedule": lib.conditionally_mask(
            lib.adam(lib.linear_schedule(0.1, 0.01, 50)), lambda s: s % 2 == 0
        ),
    }


def test_trajectories_match_optax():
    prob = problem(31)
    ours = run_many(_configs(og), prob)
    expected = run_optax64(_configs(optax), prob)
    for name in ours:
        assert_trajectories_close(ours[name], expected[name])
    always = run_many({"tx": og.adam(0.05)}, prob)["tx"]
    assert_distinguishable(ours["mask_adam"], always)


def test_skipped_steps_keep_the_inner_state_and_count_every_step():
    tx = og.conditionally_mask(og.adam(0.1), lambda step: step % 2 == 1)
    step = jax.jit(tx.update)
    state = tx.init(jnp.zeros(2))
    u, state = step(jnp.ones(2), state)
    np.testing.assert_array_equal(u, 0.0)
    assert int(state.step) == 1 and int(state.inner_state.count) == 0
    u, state = step(jnp.ones(2), state)
    assert np.all(np.asarray(u) < 0) and int(state.inner_state.count) == 1
    state = og.tree.set(state, learning_rate=0.0)
    u, state = step(jnp.ones(2), state)
    u, state = step(jnp.ones(2), state)
    np.testing.assert_array_equal(u, 0.0)
    assert float(og.tree.get(state, "learning_rate")) == 0.0
    assert step._cache_size() == 1


def test_extra_arguments_reach_the_inner_transformation_and_the_condition():
    def scale_by_value():
        def update_fn(updates, state, params=None, *, value=1.0):
            return updates * value, state

        return og.GradientTransformation(og.init_empty_state, update_fn)

    seen = []

    def only_when_loss_is_small(step, value):
        seen.append(step)
        return value < 1.0

    tx = og.conditionally_transform(scale_by_value(), only_when_loss_is_small, True)
    state = tx.init(jnp.zeros(1))
    u, state = jax.jit(lambda g, s, v: tx.update(g, s, value=v, other="dropped"))(
        jnp.ones(1), state, 0.5
    )
    np.testing.assert_allclose(u, 0.5)
    u, state = tx.update(jnp.ones(1), state, value=3.0, other="dropped")
    np.testing.assert_allclose(u, 1.0)  # condition false: passed through unchanged
    assert len(seen) == 2
    # Without forward_extra_args the condition sees the step only.
    tx = og.conditionally_mask(scale_by_value(), lambda step: step == 0)
    u, _ = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), value=2.0)
    np.testing.assert_allclose(u, 2.0)


def test_errors():
    with pytest.raises(TypeError, match=r"should_transform_fn=...\) must be a function"):
        og.conditionally_mask(og.sgd(0.1), True)
    tx = og.conditionally_mask(og.sgd(0.1), lambda step: jnp.ones(3, bool))
    with pytest.raises(ValueError, match=r"scalar boolean, got an array of shape \(3,\)"):
        tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))
    to_bf16 = og.stateless(lambda u, p: jax.tree.map(lambda x: x.astype(jnp.bfloat16), u))
    tx = og.conditionally_transform(to_bf16, lambda step: step == 0)
    with pytest.raises(ValueError, match=r"same structure, shapes and dtypes"):
        tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
    tx = og.conditionally_transform(og.sgd(0.1), lambda step: True)
    with pytest.raises(ValueError, match=r"expected a ConditionallyTransformState.*got Cond"):
        tx.update(jnp.ones(1), og.ConditionallyMaskState(jnp.zeros([], jnp.int32), None))
