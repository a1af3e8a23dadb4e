"""Every optimizer in the registry through the same checks: the contract users rely on."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og
from tests.registry import REGISTRY, Row

ROWS = pytest.mark.parametrize("row", REGISTRY, ids=str)


def _params(dtype=jnp.float32):
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "a": jax.random.normal(k1, (3, 4), dtype),
        "b": jax.random.normal(k2, (5,), dtype),
        "c": {"d": jax.random.normal(k3, (2, 2), dtype)},
    }


def _quadratic():
    params = _params()
    curvature = jax.tree.map(lambda x: jnp.linspace(0.5, 2.0, x.size).reshape(x.shape), params)
    target = jax.tree.map(
        lambda x: jnp.cos(jnp.arange(x.size, dtype=x.dtype)).reshape(x.shape), params
    )

    def loss(p):
        terms = jax.tree.map(lambda x, h, t: 0.5 * jnp.sum(h * (x - t) ** 2), p, curvature, target)
        return sum(jax.tree.leaves(terms))

    return params, loss


def _rosenbrock(xy):
    x, y = xy["xy"][0], xy["xy"][1]
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def _run(tx, loss, params, steps):
    def body(_, carry):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return og.apply_updates(p, u), s

    return jax.jit(lambda p: jax.lax.fori_loop(0, steps, body, (p, tx.init(p))))(params)


def _lr_name(state) -> str:
    for name in ("learning_rate", "lr"):
        try:
            og.tree.get(state, name)
            return name
        except KeyError:
            continue
    raise AssertionError("no learning rate in the state")


@ROWS
def test_converges_on_a_quadratic(row: Row):
    params, loss = _quadratic()
    final, _ = _run(row.make(row.lr), loss, params, row.steps)
    assert float(loss(final)) < 1e-3 * float(loss(params)), row.name


@ROWS
def test_converges_on_rosenbrock(row: Row):
    start = {"xy": jnp.array([-1.2, 1.0])}
    lr = row.rosenbrock_lr or row.lr
    final, _ = _run(row.make(lr), _rosenbrock, start, row.rosenbrock_steps)
    distance = float(jnp.linalg.norm(final["xy"] - 1.0))
    assert distance < row.rosenbrock_tol, (row.name, final["xy"])


@ROWS
def test_no_recompilation_on_second_step_nor_after_setting_a_hyperparameter(row: Row):
    params, loss = _quadratic()
    tx = row.make(row.lr)

    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return og.apply_updates(p, u), s

    p, s = step(params, tx.init(params))
    p, s = step(p, s)
    s = og.tree.set(s, **{_lr_name(s): 0.5 * row.lr})
    p, s = step(p, s)
    assert step._cache_size() == 1


@ROWS
def test_unknown_extra_arguments_are_accepted(row: Row):
    params, loss = _quadratic()
    tx = row.make(row.lr)
    plain, _ = tx.update(jax.grad(loss)(params), tx.init(params), params)
    extra, _ = tx.update(
        jax.grad(loss)(params), tx.init(params), params, value=jnp.ones([]), something_else="x"
    )
    jax.tree.map(np.testing.assert_array_equal, plain, extra)


@ROWS
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
def test_updates_keep_the_gradient_dtype(row: Row, dtype):
    params = _params(dtype)
    tx = row.make(row.lr)
    grads = jax.tree.map(lambda x: (0.1 * x + 0.01).astype(dtype), params)
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    updates, _ = jax.jit(tx.update)(grads, state, params)
    for u in jax.tree.leaves(updates):
        assert u.dtype == dtype
        assert bool(jnp.all(jnp.isfinite(u.astype(jnp.float32))))
    new = og.apply_updates(params, updates)
    assert all(x.dtype == dtype for x in jax.tree.leaves(new))


@ROWS
def test_state_structure_shapes_and_dtypes_are_stable(row: Row):
    params, loss = _quadratic()
    tx = row.make(row.lr)
    state = tx.init(params)
    before = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), state)
    step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p)[1])
    after = jax.tree.map(
        lambda x: (jnp.shape(x), jnp.result_type(x)), step(params, step(params, state))
    )
    assert jax.tree.structure(state) == jax.tree.structure(step(params, state))
    assert before == after


@ROWS
def test_init_works_on_shape_dtype_structs(row: Row):
    params, _ = _quadratic()
    tx = row.make(row.lr)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    expected = jax.tree.map(lambda x: (x.shape, x.dtype), jax.eval_shape(tx.init, params))
    got = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), tx.init(abstract))
    assert got == expected


@ROWS
def test_state_mirrors_the_params(row: Row):
    """Every state leaf is either a scalar or shaped like a parameter (so it inherits sharding)."""
    params, _ = _quadratic()
    shapes = {x.shape for x in jax.tree.leaves(params)}
    for leaf in jax.tree.leaves(row.make(row.lr).init(params)):
        assert jnp.shape(leaf) == () or jnp.shape(leaf) in shapes


@ROWS
def test_a_constant_schedule_equals_the_float(row: Row):
    params, loss = _quadratic()
    with_float, _ = _run(row.make(row.lr), loss, params, 20)
    with_schedule, _ = _run(row.make(og.constant_schedule(row.lr)), loss, params, 20)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        with_float,
        with_schedule,
    )


@ROWS
def test_jax_grad_flows_through_update(row: Row):
    """Updates are pure functions, so meta-gradients through a step are defined and finite."""
    params, loss = _quadratic()
    tx = row.make(row.lr)

    def after_two_steps(p):
        s = tx.init(p)
        for _ in range(2):
            u, s = tx.update(jax.grad(loss)(p), s, p)
            p = og.apply_updates(p, u)
        return loss(p)

    g = jax.grad(after_two_steps)(jax.tree.map(lambda x: x + 0.1, params))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))
