"""``monitor`` and ``metrics``: the recorded statistics against an independent float64 NumPy
computation from the same gradients, params and returned updates; the wrapped optimizer's
trajectory unchanged; found anywhere in a nested state; sharded over a named axis."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests import _oracle as oracle

SHAPES = {"a": (4, 5), "b": (7,), "c": {"d": (2, 3, 5)}}
PATHS = ["a", "b", "c/d"]  # jax.tree order


def tree(rng, scale=1.0):
    return {"a": jnp.asarray(scale * rng.normal(size=(4, 5)), jnp.float32),
            "b": jnp.asarray(scale * rng.normal(size=7), jnp.float32),
            "c": {"d": jnp.asarray(scale * rng.normal(size=(2, 3, 5)), jnp.float32)}}  # fmt: skip


def flat(t):
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(t)])


def run_steps(tx, steps=3, seed=0, scale=3.0):
    """A few jitted steps; returns (grads, params, updates, state) of the last one."""
    rng = np.random.default_rng(seed)
    params = tree(rng)
    state = tx.init(params)
    step = jax.jit(tx.update)
    for _ in range(steps):
        grads = tree(rng, scale)
        updates, state = step(grads, state, params)
        last = (grads, params, updates, state)
        params = og.apply_updates(params, updates)
    return last


SCHEDULE = og.linear_schedule(0.1, 0.01, 10)


def test_statistics_match_numpy():
    tx = og.monitor(og.adamw(SCHEDULE, weight_decay=0.1), og.clip_by_global_norm(2.0), every_k=1)
    grads, params, updates, state = run_steps(tx)
    g, p, u = flat(grads), flat(params), flat(updates)
    m = og.metrics(state)
    assert set(m) == {"grad_norm", "grad_norm_clipped", "update_norm", "param_norm",
                      "update_param_ratio", "nonfinite_count", "learning_rate",
                      "metrics_step"}  # fmt: skip
    assert float(m["metrics_step"]) == 3
    assert all(v.dtype == jnp.float32 and v.shape == () for v in m.values())
    np.testing.assert_allclose(m["grad_norm"], np.linalg.norm(g), rtol=1e-6)
    assert np.linalg.norm(g) > 2.0  # the clip binds
    np.testing.assert_allclose(m["grad_norm_clipped"], 2.0, rtol=1e-6)
    np.testing.assert_allclose(m["update_norm"], np.linalg.norm(u), rtol=1e-6)
    np.testing.assert_allclose(m["param_norm"], np.linalg.norm(p), rtol=1e-6)
    np.testing.assert_allclose(
        m["update_param_ratio"], np.linalg.norm(u) / np.linalg.norm(p), rtol=1e-6
    )
    assert float(m["nonfinite_count"]) == 0
    np.testing.assert_allclose(m["learning_rate"], 0.1 + (0.01 - 0.1) * 2 / 10, rtol=1e-6)
    # the same numbers through og.tree.get, and learning_rate stays unambiguous
    assert float(og.tree.get(state, "grad_norm")) == float(m["grad_norm"])
    assert og.tree.get(state, "learning_rate") == m["learning_rate"]


def test_effective_lr_from_lr_or_from_the_ratio():
    _, _, _, state = run_steps(og.monitor(og.torch.SGD(lr=0.03, momentum=0.9), every_k=1))
    np.testing.assert_allclose(og.metrics(state)["learning_rate"], 0.03, rtol=1e-7)
    # no learning rate in the state (Optax's adam has none): |update| / |clipped gradient|
    tx = og.monitor(optax.adam(1e-2), og.clip_by_global_norm(1.0), every_k=1)
    grads, _, updates, state = run_steps(tx)
    m = og.metrics(state)
    clipped = flat(grads) * min(1.0, 1.0 / np.linalg.norm(flat(grads)))
    expected = np.linalg.norm(flat(updates)) / np.linalg.norm(clipped)
    np.testing.assert_allclose(m["learning_rate"], expected, rtol=1e-6)
    assert not np.isclose(expected, 1e-2, rtol=1e-2)  # the ratio is not the Adam lr itself


def test_per_leaf_norms_keyed_by_path():
    tx = og.monitor(og.sgd(0.1), per_leaf=True, every_k=3)  # update 3 is measured
    grads, _, updates, state = run_steps(tx)
    m = og.metrics(state)
    for path, g, u in zip(PATHS, jax.tree.leaves(grads), jax.tree.leaves(updates)):
        np.testing.assert_allclose(m[f"grad_norm/{path}"], np.linalg.norm(g), rtol=1e-6)
        np.testing.assert_allclose(m[f"update_norm/{path}"], np.linalg.norm(u), rtol=1e-6)
    total = np.sqrt(sum(float(m[f"grad_norm/{p}"]) ** 2 for p in PATHS))
    np.testing.assert_allclose(m["grad_norm"], total, rtol=1e-6)


def test_nonfinite_entries_are_counted_and_zero_float16_grads_stay_finite():
    tx = og.monitor(og.sgd(0.1))
    params = {"w": jnp.ones(5), "v": jnp.ones((2, 2))}
    grads = {"w": jnp.asarray([1.0, np.nan, np.inf, 0.0, -np.inf]), "v": jnp.ones((2, 2))}
    _, state = jax.jit(tx.update)(grads, tx.init(params), params)
    assert float(og.metrics(state)["nonfinite_count"]) == 3
    half = jax.tree.map(lambda x: x.astype(jnp.float16), params)
    updates, state = jax.jit(tx.update)(og.tree.zeros_like(half), tx.init(half), half)
    assert updates["w"].dtype == jnp.float16
    assert all(np.isfinite(float(v)) for v in og.metrics(state).values())
    assert float(og.metrics(state)["learning_rate"]) == pytest.approx(0.1)


def test_the_trajectory_is_that_of_the_chain():
    prob = oracle.problem(seed=3)
    inner, clip = og.adam(0.05, b1=0.8), og.clip_by_global_norm(3.0)
    runs = oracle.run_many(
        {"monitored": og.monitor(inner, clip, per_leaf=True), "plain": og.chain(clip, inner)}, prob
    )
    np.testing.assert_array_equal(runs["monitored"], runs["plain"])


def test_found_anywhere_and_prefixed_when_several():
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.asarray([1.0, 2.0, 2.0])}
    tx = og.named_chain(("opt", og.monitor(og.sgd(0.5))), ("after", og.scale(1.0)))
    _, state = tx.update(grads, tx.init(params), params)
    assert float(og.metrics(state)["grad_norm"]) == 3.0
    two = og.chain(og.monitor(og.scale(2.0)), og.monitor(og.sgd(0.5)))
    _, state = two.update(grads, two.init(params), params)
    m = og.metrics(state)
    assert float(m["0/grad_norm"]) == 3.0 and float(m["1/grad_norm"]) == 6.0
    with pytest.raises(ValueError, match=re.escape("optgrad.metrics: the state holds no")):
        og.metrics(og.sgd(0.1).init(params))


def test_jit_once_bf16_and_metrics_inside_jit():
    tx = og.monitor(og.adamw(1e-3), og.clip_by_global_norm(1.0))
    params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), tree(np.random.default_rng(0)))

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return og.apply_updates(params, updates), state, og.metrics(state)

    state = tx.init(params)
    for _ in range(2):
        params, state, m = step(params, state, params)
    assert step._cache_size() == 1
    assert og.tree.dtype(params) == jnp.bfloat16
    assert {v.dtype for v in m.values()} == {jnp.dtype(jnp.float32)}
    assert oracle.signature(state) == oracle.signature(tx.init(params))


def test_axis_name_gives_the_unsharded_statistics():
    rng = np.random.default_rng(5)
    params = {"k": jnp.asarray(rng.normal(size=(8, 3)), jnp.float32),
              "v": jnp.asarray(rng.normal(size=8), jnp.float32)}  # fmt: skip
    grads = {"k": jnp.asarray(rng.normal(size=(8, 3)) * 2, jnp.float32),
             "v": jnp.asarray([1.0, 0.5, 0, 0, 0, 0, 0, 2.0], jnp.float32)}  # fmt: skip
    grads_bad = {**grads, "v": grads["v"].at[6].set(np.inf)}

    def build(axis_name):
        clip = og.clip_by_global_norm(1.0, axis_name=axis_name)
        return og.monitor(og.sgd(0.1), clip, per_leaf=True, axis_name=axis_name, every_k=2)

    def shards(t):
        return jax.tree.map(lambda x: x.reshape(4, 2, *x.shape[1:]), t)

    whole_tx, sharded_tx = build(None), build("d")
    for g in (grads, grads_bad):
        _, whole = jax.jit(whole_tx.update)(g, whole_tx.init(params), params)
        _, sharded = jax.jit(
            jax.vmap(lambda g, p: sharded_tx.update(g, sharded_tx.init(p), p), axis_name="d")
        )(shards(g), shards(params))
        for name, value in og.metrics(whole).items():
            got = np.asarray(og.metrics(sharded)[name])
            np.testing.assert_allclose(got, np.full(4, value), rtol=1e-6, err_msg=name)
    assert float(og.metrics(whole)["nonfinite_count"]) == 1


def test_every_k_holds_the_last_measurement_and_derives_the_free_metrics_every_update():
    rng = np.random.default_rng(7)
    params = tree(rng)
    gradients = [tree(rng, 2.0) for _ in range(7)]
    sampled = og.monitor(og.adamw(SCHEDULE), og.clip_by_global_norm(1.5), every_k=3)
    every = og.monitor(og.adamw(SCHEDULE), og.clip_by_global_norm(1.5), every_k=1)
    s_sampled, s_every = sampled.init(params), every.init(params)
    step_sampled, step_every = jax.jit(sampled.update), jax.jit(every.update)
    history = []  # metrics of every update, from every_k=1
    for n, grads in enumerate(gradients, start=1):
        u_sampled, s_sampled = step_sampled(grads, s_sampled, params)
        u_every, s_every = step_every(grads, s_every, params)
        jax.tree.map(np.testing.assert_array_equal, u_sampled, u_every)  # same trajectory
        history.append(og.metrics(s_every))
        m = og.metrics(s_sampled)
        measured = 1 if n < 3 else n - n % 3  # updates 1, 3, 6 are measured
        assert float(m["metrics_step"]) == measured
        for name in ("update_norm", "param_norm", "update_param_ratio"):
            np.testing.assert_allclose(m[name], history[measured - 1][name], rtol=1e-6)
        # from the clip's own norm and the state: this update's, whatever every_k
        np.testing.assert_allclose(m["grad_norm"], np.linalg.norm(flat(grads)), rtol=1e-6)
        np.testing.assert_allclose(m["grad_norm_clipped"], 1.5, rtol=1e-6)
        np.testing.assert_allclose(m["learning_rate"], SCHEDULE(n - 1), rtol=1e-6)
        assert float(m["nonfinite_count"]) == 0
        params = og.apply_updates(params, u_sampled)
    assert len({float(h["update_norm"]) for h in history}) == len(history)  # all distinct
    # without a global-norm clip, the gradient norm is measured every_k updates too
    tx = og.monitor(og.sgd(0.1), every_k=2)
    state = tx.init(params)
    for grads in gradients[:3]:
        _, state = tx.update(grads, state, params)
    assert float(og.metrics(state)["metrics_step"]) == 2
    np.testing.assert_allclose(
        og.metrics(state)["grad_norm"], np.linalg.norm(flat(gradients[1])), rtol=1e-6
    )


def test_every_k_cond_passes_grad_and_vmap():
    """Meta-gradients flow through a monitored update, and it vmaps over a batch of problems."""
    params = {"w": jnp.asarray([1.0, -2.0, 0.5])}
    grads = {"w": jnp.asarray([0.3, 0.1, -0.2])}

    def loss(lr, every_k):
        tx = og.monitor(og.sgd(lr), og.clip_by_global_norm(1.0), every_k=every_k)
        state = tx.init(params)
        for _ in range(3):
            updates, state = tx.update(grads, state, params)
        new = og.apply_updates(params, updates)
        return jnp.sum(new["w"] ** 2) + og.metrics(state)["update_norm"]

    # d/dlr of |p - lr g|^2 + lr |g| (update 3 measured with every_k=1 and every_k=3)
    expected = float(-2 * jnp.vdot(params["w"] - 0.1 * grads["w"], grads["w"]))
    expected += float(jnp.linalg.norm(grads["w"]))
    for k in (1, 3):
        np.testing.assert_allclose(jax.grad(loss)(0.1, k), expected, rtol=1e-5)
    tx = og.monitor(og.sgd(0.1), every_k=2)
    batch = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), grads)
    _, states = jax.vmap(lambda g: tx.update(g, tx.init(params), params))(batch)
    np.testing.assert_allclose(
        og.metrics(states)["grad_norm"],
        [np.linalg.norm(grads["w"]), 2 * np.linalg.norm(grads["w"])],
        rtol=1e-6,
    )


def test_errors():
    with pytest.raises(TypeError, match=re.escape("optgrad.monitor: member inner must be")):
        og.monitor(3)
    with pytest.raises(TypeError, match=re.escape("optgrad.monitor(per_leaf=...) must be a bool")):
        og.monitor(og.sgd(0.1), per_leaf=1)
    for bad in (0, -3, 2.0, True):
        with pytest.raises(
            ValueError,
            match=re.escape(
                f"optgrad.monitor(every_k=...) must be a positive integer, got every_k={bad!r}"
            ),
        ):
            og.monitor(og.sgd(0.1), every_k=bad)
    tx = og.monitor(og.sgd(0.1))
    with pytest.raises(ValueError, match=re.escape("expected a MonitorState")):
        tx.update({"w": jnp.ones(1)}, og.sgd(0.1).init({"w": jnp.ones(1)}))
