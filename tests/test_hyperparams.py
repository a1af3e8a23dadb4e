"""Hyperparameters held in the state: read, set, scheduled, vmapped, never recompiled."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og


def _problem():
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    params = {"w": jax.random.normal(k1, (4, 3)), "b": jax.random.normal(k2, (3,))}

    def loss(p):
        return jnp.sum(jnp.sin(p["w"]) ** 2) + jnp.sum((p["b"] - 0.3) ** 2)

    return params, loss


def _trajectory(tx, params, loss, steps, state=None):
    step = jax.jit(lambda p, s: _step(tx, loss, p, s))
    state = tx.init(params) if state is None else state
    for _ in range(steps):
        params, state = step(params, state)
    return params, state


def _step(tx, loss, p, s):
    u, s = tx.update(jax.grad(loss)(p), s, p)
    return og.apply_updates(p, u), s


def _close(a, b, rtol=1e-6, atol=1e-7):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def test_get_reports_the_value_the_last_update_used():
    schedule = og.linear_schedule(1.0, 0.0, 10)
    params, loss = _problem()
    tx = og.adamw(schedule, weight_decay=0.01)
    state = tx.init(params)
    assert float(og.tree.get(state, "learning_rate")) == pytest.approx(float(schedule(0)))
    for k in range(1, 6):
        params, state = _step(tx, loss, params, state)
        assert float(og.tree.get(state, "learning_rate")) == pytest.approx(float(schedule(k - 1)))
    assert float(og.tree.get(state, "weight_decay")) == pytest.approx(0.01)
    assert og.tree.get(state, "weight_decay").dtype == jnp.float32


def test_any_hyperparameter_takes_a_schedule():
    params, loss = _problem()
    b1 = og.linear_schedule(0.5, 0.9, 10)
    tx = og.adam(1e-2, b1=b1)
    state = tx.init(params)
    for k in range(1, 4):
        params, state = _step(tx, loss, params, state)
        assert float(og.tree.get(state, "b1")) == pytest.approx(float(b1(k - 1)))


def test_trajectory_equals_the_plain_float_chain():
    """Hyperparameters read from the state give the numbers of constants folded at trace time."""
    params, loss = _problem()
    held = og.adam(3e-2, b1=0.8, b2=0.95, eps=1e-6)
    plain = og.chain(og.scale_by_adam(0.8, 0.95, 1e-6), og.scale_by_learning_rate(3e-2))
    _close(_trajectory(held, params, loss, 60)[0], _trajectory(plain, params, loss, 60)[0])


def test_set_takes_effect_at_the_next_update_without_recompiling():
    params, loss = _problem()
    tx = og.adamw(1e-2, weight_decay=0.5)
    step = jax.jit(lambda p, s: _step(tx, loss, p, s))
    p, s = params, tx.init(params)
    for _ in range(5):
        p, s = step(p, s)
    s = og.tree.set(s, weight_decay=0.0, learning_rate=2e-2)
    for _ in range(5):
        p, s = step(p, s)
    assert step._cache_size() == 1
    # Oracle: the same change expressed as schedules of the step count.
    wd = lambda c: jnp.where(c < 5, 0.5, 0.0)  # noqa: E731
    lr = lambda c: jnp.where(c < 5, 1e-2, 2e-2)  # noqa: E731
    oracle = og.chain(og.scale_by_adam(), og.add_decayed_weights(wd), og.scale_by_learning_rate(lr))
    _close(p, _trajectory(oracle, params, loss, 10)[0])


def test_set_inside_jit_and_with_python_ints_keeps_dtype():
    params, _ = _problem()
    state = og.sgd(0.1, momentum=0.9).init(params)
    new = jax.jit(lambda s: og.tree.set(s, momentum=0))(state)
    assert og.tree.get(new, "momentum").dtype == jnp.float32
    assert float(og.tree.get(new, "momentum")) == 0.0


def test_set_on_a_scheduled_hyperparameter_lasts_until_the_next_update():
    params, loss = _problem()
    tx = og.sgd(og.constant_schedule(0.1))
    state = og.tree.set(tx.init(params), learning_rate=7.0)
    assert float(og.tree.get(state, "learning_rate")) == 7.0
    _, state = _step(tx, loss, params, state)
    assert float(og.tree.get(state, "learning_rate")) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "make", [lambda lr: og.sgd(lr, momentum=0.9), og.adam], ids=["sgd", "adam"]
)
def test_vmap_over_learning_rates_trains_several_models_in_one_compile(make):
    params, loss = _problem()
    lrs = jnp.array([1e-3, 1e-2, 1e-1])
    tx = make(1e-3)
    states = jax.vmap(lambda lr: og.tree.set(tx.init(params), learning_rate=lr))(lrs)
    batch = jax.tree.map(lambda x: jnp.stack([x] * len(lrs)), params)
    step = jax.jit(jax.vmap(lambda p, s: _step(tx, loss, p, s)))
    for _ in range(20):
        batch, states = step(batch, states)
    assert step._cache_size() == 1
    for i, lr in enumerate(lrs.tolist()):
        alone = _trajectory(make(lr), params, loss, 20)[0]
        _close(jax.tree.map(lambda x, i=i: x[i], batch), alone, rtol=1e-5, atol=1e-6)


def test_with_hyperparams_wraps_any_transformation():
    tx = og.with_hyperparams(
        lambda step_size: og.scale(step_size), step_size=og.linear_schedule(1.0, 3.0, 2)
    )
    state = tx.init(jnp.zeros(2))
    u, state = tx.update(jnp.ones(2), state)
    np.testing.assert_allclose(u, 1.0)
    u, state = tx.update(jnp.ones(2), state)
    np.testing.assert_allclose(u, 2.0)
    assert float(og.tree.get(state, "step_size")) == 2.0


def test_update_with_a_foreign_state_is_a_clear_error():
    tx = og.adam(1e-3)
    with pytest.raises(ValueError, match="Was `init` called with a different optimizer"):
        tx.update({"w": jnp.ones(2)}, og.sgd(0.1).init({"w": jnp.ones(2)})[1])


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda s: og.sgd(0.1, momentum=s), "momentum"),  # momentum warmup
        (lambda s: og.adamw(1e-2, weight_decay=s), "weight_decay"),  # weight-decay schedule
        (lambda s: og.adam(1e-2, b2=s), "b2"),  # beta2 warmup
        (lambda s: og.torch.Adam(1e-2, betas=(0.9, s)), "betas"),
    ],
    ids=["momentum", "weight_decay", "b2", "torch_betas"],
)
def test_schedules_for_other_hyperparameters_are_used_and_read_back(make, name):
    params, loss = _problem()
    schedule = og.linear_schedule(0.5, 0.9, 4)
    tx = make(schedule)
    state = tx.init(params)
    for k in range(6):
        params, state = _step(tx, loss, params, state)
        value = og.tree.get(state, name)
        value = value[1] if isinstance(value, tuple) else value
        assert float(value) == pytest.approx(float(schedule(k)))
    # The schedule changes the trajectory: a constant at its first value gives other numbers.
    constant, _ = _trajectory(make(0.5), _problem()[0], loss, 6)
    assert not np.allclose(jax.tree.leaves(constant)[0], jax.tree.leaves(params)[0])
