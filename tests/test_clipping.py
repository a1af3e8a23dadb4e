"""``clip``, ``clip_by_global_norm`` and ``clip_by_block_rms`` against Optax 0.2.8 run in float64
on the same problem (``tests/_oracle.py``), with thresholds that clip on some steps and leaves
and not on others; and the pre-clip norm that ``clip_by_global_norm`` keeps in its state.

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

PROB = oracle.problem(seed=7)
LR = 0.05
MAX_NORM = 5.0  # the gradient norm starts near 10 and settles between 3 and 4
MAX_DELTA = 0.8
THRESHOLD = 0.6


def lr_schedule(count):
    return 0.08 / (1.0 + 0.02 * count)


CASES = {
    "none": (og.scale(-LR), optax.scale(-LR)),
    "clip": (
        og.chain(og.clip(MAX_DELTA), og.scale(-LR)),
        optax.chain(optax.clip(MAX_DELTA), optax.scale(-LR)),
    ),
    "clip_array": (
        og.chain(og.clip(jnp.asarray(MAX_DELTA)), og.scale(-LR)),
        optax.chain(optax.clip(jnp.asarray(MAX_DELTA)), optax.scale(-LR)),
    ),
    "clip_by_global_norm": (
        og.chain(og.clip_by_global_norm(MAX_NORM), og.scale(-LR)),
        optax.chain(optax.clip_by_global_norm(MAX_NORM), optax.scale(-LR)),
    ),
    "clip_by_global_norm_momentum_schedule": (
        og.chain(
            og.clip_by_global_norm(MAX_NORM), og.trace(0.8), og.scale_by_learning_rate(lr_schedule)
        ),
        optax.chain(
            optax.clip_by_global_norm(MAX_NORM),
            optax.trace(0.8),
            optax.scale_by_learning_rate(lr_schedule),
        ),
    ),
    "clip_by_block_rms": (
        og.chain(og.clip_by_block_rms(THRESHOLD), og.scale(-LR)),
        optax.chain(optax.clip_by_block_rms(THRESHOLD), optax.scale(-LR)),
    ),
    "clip_by_global_norm_adam": (
        og.chain(og.clip_by_global_norm(MAX_NORM), og.adam(LR, b1=0.8, eps=1e-3)),
        optax.chain(optax.clip_by_global_norm(MAX_NORM), optax.adam(LR, b1=0.8, eps=1e-3)),
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


@pytest.mark.parametrize("name", ["clip", "clip_by_global_norm", "clip_by_block_rms"])
def test_clipping_changes_the_trajectory(runs, name):
    _, theirs = runs
    oracle.assert_distinguishable(theirs["none"], theirs[name])


def _gradients(traj):
    """The float64 gradients of each step from a trajectory of the flat params."""
    noise = np.concatenate(
        [np.reshape(x, (PROB.steps, -1)) for x in jax.tree.leaves(PROB.noise)], 1
    )
    return PROB.flat(PROB.a) * traj[:-1] + noise


def _blocks(flat):
    return np.split(flat, np.cumsum(PROB.sizes)[:-1], axis=-1)


def test_thresholds_bind_on_some_steps_and_not_on_others(runs):
    """Each threshold is crossed on some steps (or leaves) and not on others, so both branches
    of every clipping rule are compared."""
    _, theirs = runs
    norms = np.linalg.norm(_gradients(theirs["clip_by_global_norm"]), axis=1)
    assert 5 < np.sum(norms > MAX_NORM) < PROB.steps - 5
    values = np.abs(_gradients(theirs["clip"]))
    assert 0.05 < np.mean(values > MAX_DELTA) < 0.95
    rms = np.stack(
        [np.sqrt(np.mean(b**2, axis=1)) for b in _blocks(_gradients(theirs["clip_by_block_rms"]))]
    )
    assert 0.05 < np.mean(rms > THRESHOLD) < 0.95


def test_state_holds_the_norm_of_the_last_gradient_before_clipping(runs):
    ours, _ = runs
    traj, state = ours["clip_by_global_norm_momentum_schedule"]
    expected = np.linalg.norm(_gradients(traj)[-1])
    assert expected > 0
    np.testing.assert_allclose(og.tree.get(state, "global_norm"), expected, rtol=1e-5)


@pytest.mark.parametrize("scale", [0.1, 10.0], ids=["below", "above"])
def test_global_norm_is_the_pre_clip_norm(scale):
    rng = np.random.default_rng(0)
    grads = jax.tree.map(
        lambda x: jnp.asarray(scale * rng.standard_normal(x.shape), jnp.float32), PROB.theta0
    )
    flat = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(grads)])
    norm = np.linalg.norm(flat)
    tx = og.named_chain(("clip", og.clip_by_global_norm(MAX_NORM)), ("sgd", og.sgd(0.1)))
    updates, state = jax.jit(tx.update)(grads, tx.init(grads), grads)
    np.testing.assert_allclose(og.tree.get(state, "global_norm"), norm, rtol=1e-6)
    clipped = (
        np.concatenate([np.ravel(np.asarray(u, np.float64)) for u in jax.tree.leaves(updates)])
        / -0.1
    )
    if norm < MAX_NORM:
        np.testing.assert_allclose(clipped, flat, rtol=1e-6)
    else:
        np.testing.assert_allclose(clipped, flat * MAX_NORM / norm, rtol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(clipped), MAX_NORM, rtol=1e-6)


def test_updates_below_the_threshold_pass_unchanged():
    grads = {"a": jnp.asarray([0.1, -0.2, 0.3]), "b": jnp.asarray([[0.05]])}
    for tx in (og.clip(1.0), og.clip_by_global_norm(1.0), og.clip_by_block_rms(1.0)):
        updates, _ = jax.jit(tx.update)(grads, tx.init(grads))
        jax.tree.map(np.testing.assert_array_equal, updates, grads)


# ---- Dtypes --------------------------------------------------------------------------------

BF16 = {
    "clip": og.clip(0.5),
    "clip_by_global_norm": og.clip_by_global_norm(1.0),
    "clip_by_block_rms": og.clip_by_block_rms(0.5),
}


@pytest.fixture(scope="module")
def two_steps():
    def tree(step):
        return jax.tree.map(lambda x: jnp.asarray(3.0 * x[step], jnp.bfloat16), PROB.noise)

    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.bfloat16), PROB.theta0)
    return oracle.step_twice(BF16, params, (tree(0), tree(1)))


@pytest.mark.parametrize("name", BF16)
def test_bf16_updates_and_stable_state(two_steps, name):
    updates, state0, state2 = two_steps[name]
    assert oracle.dtypes(updates) == {jnp.dtype(jnp.bfloat16)}
    assert oracle.signature(state0) == oracle.signature(state2)


def test_bf16_global_norm_is_kept_in_float32(two_steps):
    _, _, state = two_steps["clip_by_global_norm"]
    assert state.global_norm.dtype == jnp.float32
    assert float(state.global_norm) > 1.0


# ---- Errors --------------------------------------------------------------------------------

NAN = float("nan")
BAD_ARGUMENTS = [
    (
        og.clip,
        dict(max_delta=-1.0),
        "optgrad.clip(max_delta=...) must be non-negative, got max_delta=-1.0",
    ),
    (
        og.clip,
        dict(max_delta=NAN),
        "optgrad.clip(max_delta=...) must be non-negative, got max_delta=nan",
    ),
    (
        og.clip_by_global_norm,
        dict(max_norm=0.0),
        "optgrad.clip_by_global_norm(max_norm=...) must be positive, got max_norm=0.0",
    ),
    (
        og.clip_by_global_norm,
        dict(max_norm=-1.0),
        "optgrad.clip_by_global_norm(max_norm=...) must be positive, got max_norm=-1.0",
    ),
    (
        og.clip_by_global_norm,
        dict(max_norm=NAN),
        "optgrad.clip_by_global_norm(max_norm=...) must be positive, got max_norm=nan",
    ),
    (
        og.clip_by_block_rms,
        dict(threshold=0.0),
        "optgrad.clip_by_block_rms(threshold=...) must be positive, got threshold=0.0",
    ),
    (
        og.clip_by_block_rms,
        dict(threshold=NAN),
        "optgrad.clip_by_block_rms(threshold=...) must be positive, got threshold=nan",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


# ---- What each clip measured, and sharded global norms --------------------------------------


def test_block_rms_state_holds_each_leafs_rms_before_clipping():
    rng = np.random.default_rng(2)
    grads = jax.tree.map(
        lambda x: jnp.asarray(rng.standard_normal(x.shape), jnp.float32), PROB.theta0
    )
    tx = og.clip_by_block_rms(THRESHOLD)
    _, state = jax.jit(tx.update)(grads, tx.init(grads))
    rms = og.tree.get(state, "block_rms")
    assert sorted(rms) == ["a", "b", "c/d"]
    for path, leaf in zip(["a", "b", "c/d"], jax.tree.leaves(grads)):
        expected = np.sqrt(np.mean(np.asarray(leaf, np.float64) ** 2))
        np.testing.assert_allclose(rms[path], expected, rtol=1e-6)
    assert max(float(v) for v in rms.values()) > THRESHOLD  # a leaf that was clipped


def test_global_norm_clip_with_axis_name_equals_the_unsharded_clip():
    rng = np.random.default_rng(4)
    grads = {"k": jnp.asarray(rng.normal(size=(8, 3)), jnp.float32),
             "v": jnp.asarray(rng.normal(size=8), jnp.float32)}  # fmt: skip
    tx = og.clip_by_global_norm(2.0)
    whole, whole_state = jax.jit(tx.update)(grads, tx.init(grads))
    sharded_tx = og.clip_by_global_norm(2.0, axis_name="d")
    shards = jax.tree.map(lambda x: x.reshape(4, 2, *x.shape[1:]), grads)
    out, state = jax.jit(
        jax.vmap(lambda g: sharded_tx.update(g, sharded_tx.init(g)), axis_name="d")
    )(shards)
    assert float(whole_state.global_norm) > 2.0
    for k in grads:
        np.testing.assert_allclose(out[k].reshape(grads[k].shape), whole[k], rtol=1e-6)
    np.testing.assert_allclose(state.global_norm, np.full(4, whole_state.global_norm), rtol=1e-6)
