"""optgrad optimizers used unchanged as ``tx`` in Flax: linen ``TrainState``, ``nnx.Optimizer``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og

nn = pytest.importorskip("flax.linen")
nnx = pytest.importorskip("flax.nnx")
train_state = pytest.importorskip("flax.training.train_state")


def _data(n=64):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(k1, (n, 8))
    y = jnp.sin(x @ jax.random.normal(k2, (8, 1)))
    return x, y


def _decay_mask(params):
    """Weight decay on matrices only: no decay on biases and norm scales."""
    return jax.tree.map(lambda p: jnp.ndim(p) > 1, params)


def _tx():
    schedule = og.warmup_cosine_decay_schedule(0.0, 1e-2, 10, 200)
    return og.chain(
        og.clip_by_global_norm(1.0), og.adamw(schedule, weight_decay=0.01, mask=_decay_mask)
    )


class _LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(32)(x))
        x = nn.LayerNorm()(x)
        return nn.Dense(1)(x)


def test_linen_train_state():
    x, y = _data()
    model = _LinenMLP()
    state = train_state.TrainState.create(
        apply_fn=model.apply, params=model.init(jax.random.PRNGKey(1), x)["params"], tx=_tx()
    )

    @jax.jit
    def step(state):
        def loss_fn(params):
            return jnp.mean((state.apply_fn({"params": params}, x) - y) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    state, first = step(state)
    state, _ = step(state)  # 2 updates so far
    # TrainState.create stores `step` as a Python int, which becomes an array after the first
    # step: that is Flax's one retrace. The optimizer state itself never causes one.
    compiled = step._cache_size()
    for _ in range(149):
        state, loss = step(state)
    assert float(loss) < 0.1 * float(first)
    assert step._cache_size() == compiled
    schedule = og.warmup_cosine_decay_schedule(0.0, 1e-2, 10, 200)
    np.testing.assert_allclose(
        og.tree.get(state.opt_state, "learning_rate"), schedule(150), rtol=1e-6
    )
    assert float(og.tree.get(state.opt_state, "global_norm")) > 0.0
    # Biases and LayerNorm scales were never decayed: with zero gradients they would not move.
    mask = _decay_mask(state.params)
    assert mask["Dense_0"]["kernel"] and not mask["Dense_0"]["bias"]
    assert not mask["LayerNorm_0"]["scale"]


class _NnxMLP(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(8, 32, rngs=rngs)
        self.norm = nnx.LayerNorm(32, rngs=rngs)
        self.out = nnx.Linear(32, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(self.norm(nnx.relu(self.hidden(x))))


def test_nnx_optimizer_and_reading_the_learning_rate():
    x, y = _data()
    model = _NnxMLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, _tx(), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        def loss_fn(model):
            return jnp.mean((model(x) - y) ** 2)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    first = step(model, optimizer)
    for _ in range(150):
        loss = step(model, optimizer)
    assert float(loss) < 0.1 * float(first)
    opt_state = nnx.as_pure(optimizer.opt_state)
    schedule = og.warmup_cosine_decay_schedule(0.0, 1e-2, 10, 200)
    np.testing.assert_allclose(og.tree.get(opt_state, "learning_rate"), schedule(150), rtol=1e-6)
    assert float(og.tree.get(opt_state, "global_norm")) > 0.0


def test_nnx_and_a_plain_loop_give_the_same_parameters():
    """nnx.Optimizer calls exactly init/update/apply_updates: same numbers as a hand loop."""
    x, y = _data(16)
    model = _NnxMLP(nnx.Rngs(3))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    optimizer = nnx.Optimizer(model, og.adam(1e-2), wrt=nnx.Param)

    def loss_of(p):
        return jnp.mean((nnx.merge(graphdef, p, rest)(x) - y) ** 2)

    tx = og.adam(1e-2)
    p, s = params, tx.init(params)
    for _ in range(5):
        grads = jax.grad(loss_of)(p)
        u, s = tx.update(grads, s, p)
        p = og.apply_updates(p, u)
        optimizer.update(model, nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model))
    expected = jax.tree.leaves(p)
    got = jax.tree.leaves(nnx.state(model, nnx.Param))
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
