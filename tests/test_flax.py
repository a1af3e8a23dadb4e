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

    @jax.jit
    def plain_step(p, s):
        u, s = tx.update(jax.grad(loss_of)(p), s, p)
        return og.apply_updates(p, u), s

    @nnx.jit
    def nnx_step(model, optimizer):
        optimizer.update(model, nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model))

    p, s = params, tx.init(params)
    for _ in range(5):
        p, s = plain_step(p, s)
        nnx_step(model, optimizer)
    expected = jax.tree.leaves(p)
    got = jax.tree.leaves(nnx.state(model, nnx.Param))
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def _labels(params):
    """PyTorch-style parameter groups: 'decay' for matrices, 'no_decay' for biases and norms."""
    return jax.tree.map(lambda p: "decay" if jnp.ndim(p) > 1 else "no_decay", params)


WD = 0.5
GROUPED = {
    # `mask` on adamw: one optimizer, decay only where the mask is True.
    "mask": lambda lr: og.chain(
        og.clip_by_global_norm(1.0), og.adamw(lr, weight_decay=WD, mask=_decay_mask)
    ),
    # `partition`: one optimizer per group, like torch's param_groups.
    "partition": lambda lr: og.chain(
        og.clip_by_global_norm(1.0),
        og.partition({"decay": og.adamw(lr, weight_decay=WD), "no_decay": og.adam(lr)}, _labels),
    ),
}


@pytest.mark.parametrize("kind", list(GROUPED))
def test_nnx_parameter_groups_decay_matrices_only(kind):
    """With zero gradients only weight decay moves the parameters: each kernel shrinks by
    prod_t (1 - lr_t * wd); biases and LayerNorm scales and biases stay where they are."""
    if kind == "partition" and not hasattr(og, "partition"):
        pytest.skip("optgrad.partition is not available")
    schedule = og.warmup_cosine_decay_schedule(0.0, 0.05, 3, 20)
    model = _NnxMLP(nnx.Rngs(4))
    before = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))
    optimizer = nnx.Optimizer(model, GROUPED[kind](schedule), wrt=nnx.Param)
    x, _ = _data(8)

    @nnx.jit
    def step(model, optimizer):
        grads = nnx.grad(lambda m: 0.0 * jnp.sum(m(x)))(model)
        optimizer.update(model, grads)

    for _ in range(12):
        step(model, optimizer)
    shrink = float(np.prod([1.0 - WD * float(schedule(t)) for t in range(12)]))
    after = nnx.state(model, nnx.Param)
    for path, old in jax.tree_util.tree_leaves_with_path(before):
        new = dict(jax.tree_util.tree_leaves_with_path(after))[path]
        expected = old * shrink if old.ndim > 1 else old
        np.testing.assert_allclose(new, expected, rtol=1e-6, atol=1e-7, err_msg=str(path))
    assert shrink < 0.9  # the decay is visible: the check above is not vacuous
    # The learning rate the last update used, read from the optimizer state.
    opt_state = nnx.as_pure(optimizer.opt_state)
    name = "decay/inner_state/hyperparams/learning_rate" if kind == "partition" else "learning_rate"
    np.testing.assert_allclose(og.tree.get(opt_state, name), schedule(11), rtol=1e-6)


def _train_linen(tx, steps=30):
    x, y = _data()
    model = _LinenMLP()
    state = train_state.TrainState.create(
        apply_fn=model.apply, params=model.init(jax.random.PRNGKey(1), x)["params"], tx=tx
    )

    @jax.jit
    def step(state):
        grads = jax.grad(lambda p: jnp.mean((state.apply_fn({"params": p}, x) - y) ** 2))(
            state.params
        )
        return state.apply_gradients(grads=grads)

    for _ in range(steps):
        state = step(state)
    return state


def _train_nnx(tx, steps=30):
    x, y = _data()
    model = _NnxMLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        optimizer.update(model, nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model))

    for _ in range(steps):
        step(model, optimizer)
    return nnx.state(model, nnx.Param), nnx.as_pure(optimizer.opt_state)


def _assert_trees_close(a, b):
    scale = max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(b))
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6 * scale)


def test_optax_chain_and_optgrad_interoperate_in_flax():
    """Optax's clipping inside og.chain (nnx) and optgrad's AdamW inside optax.chain (linen)
    give the parameters the all-optgrad optimizer gives (Optax is the oracle for clipping)."""
    optax = pytest.importorskip("optax")
    schedule = og.warmup_cosine_decay_schedule(0.0, 1e-2, 5, 30)

    def adamw():
        return og.adamw(schedule, weight_decay=0.01, mask=_decay_mask)

    pure = og.chain(og.clip_by_global_norm(0.5), adamw())
    optgrad_in_optax = optax.chain(optax.clip_by_global_norm(0.5), adamw())
    optax_in_optgrad = og.chain(optax.clip_by_global_norm(0.5), adamw())

    expected = _train_linen(pure)
    got = _train_linen(optgrad_in_optax)
    _assert_trees_close(got.params, expected.params)
    np.testing.assert_allclose(og.tree.get(got.opt_state, "learning_rate"), schedule(29), rtol=1e-6)
    # Clipping acted (the gradients exceed 0.5 early on), so Optax's clip was exercised.
    unclipped = _train_linen(adamw())
    assert (
        max(
            float(jnp.max(jnp.abs(u - v)))
            for u, v in zip(jax.tree.leaves(unclipped.params), jax.tree.leaves(expected.params))
        )
        > 1e-4
    )

    expected_params, _ = _train_nnx(pure)
    got_params, got_state = _train_nnx(optax_in_optgrad)
    _assert_trees_close(got_params, expected_params)
    np.testing.assert_allclose(og.tree.get(got_state, "learning_rate"), schedule(29), rtol=1e-6)
