"""Every optimizer in the registry through the same checks: the contract users rely on."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og
from tests._multi_steps_check import assert_works_inside_multi_steps
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


def _step(row: Row, tx, loss, p, s):
    """One update, passing the loss value, gradient and loss function to rows that read them."""
    value, g = jax.value_and_grad(loss)(p)
    if row.needs_value:
        return tx.update(g, s, p, value=value, grad=g, value_fn=loss)
    return tx.update(g, s, p)


def _run(row: Row, tx, loss, params, steps):
    def body(_, carry):
        p, s = carry
        u, s = _step(row, tx, loss, p, s)
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
    final, _ = _run(row, row.make(row.lr), loss, params, row.steps)
    assert float(loss(final)) < row.quadratic_tol * float(loss(params)), row.name


@ROWS
def test_converges_on_rosenbrock(row: Row):
    start = {"xy": jnp.array([-1.2, 1.0])}
    lr = row.rosenbrock_lr or row.lr
    final, _ = _run(row, row.make(lr), _rosenbrock, start, row.rosenbrock_steps)
    distance = float(jnp.linalg.norm(final["xy"] - 1.0))
    assert distance < row.rosenbrock_tol, (row.name, final["xy"])


@ROWS
def test_no_recompilation_on_second_step_nor_after_setting_a_hyperparameter(row: Row):
    params, loss = _quadratic()
    tx = row.make(row.lr)

    @jax.jit
    def step(p, s):
        u, s = _step(row, tx, loss, p, s)
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
    g = jax.grad(loss)(params)
    known = {"value": loss(params), "grad": g, "value_fn": loss} if row.needs_value else {}
    plain, _ = tx.update(g, tx.init(params), params, **known)
    if not row.needs_value:
        known = {"value": jnp.ones([])}
    extra, _ = tx.update(g, tx.init(params), params, **known, something_else="x")
    jax.tree.map(np.testing.assert_array_equal, plain, extra)


def _two_steps_in(row: Row, dtype, grad_scale: float):
    """Updates and params after two jitted steps in ``dtype`` with gradients
    ``grad_scale * (0.1 * params + 0.01)``, and the loss (for rows that read it) in ``dtype``."""
    params = _params(dtype)
    tx = row.make(row.lr)
    targets = jax.tree.map(lambda x: (0.5 * x).astype(dtype), params)

    def loss(p):
        terms = jax.tree.map(lambda x, t: 0.5 * grad_scale * jnp.sum((x - t) ** 2), p, targets)
        return sum(jax.tree.leaves(terms)).astype(dtype)

    step = jax.jit(lambda p, s: _step(row, tx, loss, p, s))
    state = tx.init(params)
    updates, state = step(params, state)
    params = og.apply_updates(params, updates)
    updates, state = step(params, state)
    return updates, og.apply_updates(params, updates)


def _all_finite(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(x.astype(jnp.float32)))) for x in jax.tree.leaves(tree))


DTYPES = pytest.mark.parametrize(
    "dtype",
    [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64],
    ids=["f16", "bf16", "f32", "f64"],
)


@ROWS
@DTYPES
def test_updates_keep_the_param_dtype(row: Row, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        updates, new = _two_steps_in(row, dtype, grad_scale=1.0)
        for u in jax.tree.leaves(updates):
            assert u.dtype == dtype, (row.name, u.dtype)
        assert all(x.dtype == dtype for x in jax.tree.leaves(new))
        assert _all_finite(updates) and _all_finite(new), row.name


@ROWS
def test_a_zero_gradient_float16_step_stays_finite(row: Row):
    """Optax #1754, #1784, #1789: eps underflows or 0/0 appears in float16 with zero gradients."""
    if not row.f16_ok:
        pytest.xfail(f"{row.name} declares f16_ok=False")
    updates, new = _two_steps_in(row, jnp.float16, grad_scale=0.0)
    assert _all_finite(updates) and _all_finite(new), row.name


@ROWS
def test_complex_parameters_converge(row: Row):
    """For complex params the descent direction is the conjugate of ``jax.grad`` (JAX returns
    the gradient w.r.t. the conjugate's convention); optimizers that support complex numbers
    minimise a real loss of complex parameters."""
    if not row.complex_ok:
        pytest.skip(f"{row.name} declares complex_ok=False (not supported or not verified)")
    params = jax.tree.map(lambda x: (x + 0.5j * x[::-1]).astype(jnp.complex64), _params())
    target = jax.tree.map(lambda x: jnp.full_like(x, 0.3 - 0.2j), params)

    def loss(p):
        terms = jax.tree.map(lambda x, t: 0.5 * jnp.sum(jnp.abs(x - t) ** 2), p, target)
        return sum(jax.tree.leaves(terms))

    tx = row.make(row.lr)

    def body(_, carry):
        p, s = carry
        value, g = jax.value_and_grad(loss)(p)
        g = jax.tree.map(jnp.conj, g)
        extra = {"value": value, "grad": g, "value_fn": loss} if row.needs_value else {}
        u, s = tx.update(g, s, p, **extra)
        return og.apply_updates(p, u), s

    final, _ = jax.jit(lambda p: jax.lax.fori_loop(0, row.steps, body, (p, tx.init(p))))(params)
    assert all(x.dtype == jnp.complex64 for x in jax.tree.leaves(final))
    assert float(loss(final)) < row.quadratic_tol * float(loss(params)), row.name


@ROWS
def test_state_structure_shapes_and_dtypes_are_stable(row: Row):
    params, loss = _quadratic()
    tx = row.make(row.lr)
    state = tx.init(params)
    before = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), state)
    step = jax.jit(lambda p, s: _step(row, tx, loss, p, s)[1])
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
    state = row.make(row.lr).init(params)
    if row.factored_state:
        # Factored statistics (Adafactor, SM3) or histories (L-BFGS): bounded, not mirrored.
        size = sum(x.size for x in jax.tree.leaves(params))
        assert sum(jnp.size(x) for x in jax.tree.leaves(state)) <= 64 * size
        return
    for leaf in jax.tree.leaves(state):
        assert jnp.shape(leaf) == () or jnp.shape(leaf) in shapes


@ROWS
def test_a_constant_schedule_equals_the_float(row: Row):
    params, loss = _quadratic()
    with_float, _ = _run(row, row.make(row.lr), loss, params, 20)
    with_schedule, _ = _run(row, row.make(og.constant_schedule(row.lr)), loss, params, 20)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        with_float,
        with_schedule,
    )


@ROWS
def test_jax_grad_flows_through_update(row: Row):
    """Updates are pure functions, so meta-gradients through a step are defined and finite."""
    if not row.differentiable:
        pytest.skip(f"{row.name} declares differentiable=False (a while_loop has no VJP)")
    params, loss = _quadratic()
    tx = row.make(row.lr)

    def after_two_steps(p):
        s = tx.init(p)
        for _ in range(2):
            u, s = _step(row, tx, loss, p, s)
            p = og.apply_updates(p, u)
        return loss(p)

    g = jax.grad(after_two_steps)(jax.tree.map(lambda x: x + 0.1, params))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))


@ROWS
def test_works_inside_gradient_accumulation(row: Row):
    """``og.MultiSteps(opt, k)`` fed each gradient ``k`` times equals ``opt`` stepped once per
    gradient; micro-steps return zeros and leave the optimizer state alone (see
    ``tests/_multi_steps_check.py``)."""
    if row.needs_value:
        pytest.skip(
            f"{row.name} reads the loss value at the current params: accumulated micro-batch "
            "gradients define no loss value for it"
        )
    params = {"a": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.array([0.5, -2.0])}

    def loss(p):
        return sum(jnp.sum(jnp.cosh(x)) for x in jax.tree.leaves(p))

    assert_works_inside_multi_steps(lambda: row.make(row.lr), params, jax.grad(loss))
