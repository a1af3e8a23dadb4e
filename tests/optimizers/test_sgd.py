"""``sgd`` against Optax 0.2.8 run in float64 on the same problem (``tests/_oracle.py``).

Optax's ``sgd`` has no weight decay; optgrad's ``weight_decay``/``mask`` is coupled L2, so the
oracle for it is ``optax.chain(optax.add_decayed_weights(wd, mask), optax.sgd(...))``.

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

PROB = oracle.problem(seed=2)
LR = 0.05
MASK = {"a": True, "b": False, "c": {"d": True}}
PREFIX_MASK = {"a": False, "b": True, "c": True}


def lr_schedule(count):
    return 0.08 / (1.0 + 0.02 * count)


def wd_schedule(count):
    return 0.3 / (1.0 + 0.05 * count)


def matrices_only(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


def l2(weight_decay, mask, **sgd):
    return optax.chain(optax.add_decayed_weights(weight_decay, mask), optax.sgd(**sgd))


CASES = {
    "plain": (og.sgd(LR), optax.sgd(LR)),
    "schedule": (og.sgd(lr_schedule), optax.sgd(lr_schedule)),
    "momentum": (og.sgd(LR, momentum=0.8), optax.sgd(LR, momentum=0.8)),
    "nesterov": (
        og.sgd(LR, momentum=0.8, nesterov=True),
        optax.sgd(LR, momentum=0.8, nesterov=True),
    ),
    "nesterov_schedule": (
        og.sgd(lr_schedule, momentum=0.8, nesterov=True),
        optax.sgd(lr_schedule, momentum=0.8, nesterov=True),
    ),
    "weight_decay": (
        og.sgd(LR, momentum=0.8, weight_decay=0.2),
        l2(0.2, None, learning_rate=LR, momentum=0.8),
    ),
    "weight_decay_no_momentum": (
        og.sgd(LR, weight_decay=0.2),
        l2(0.2, None, learning_rate=LR),
    ),
    "weight_decay_schedules_mask_nesterov": (
        og.sgd(lr_schedule, momentum=0.8, nesterov=True, weight_decay=wd_schedule, mask=MASK),
        l2(wd_schedule, MASK, learning_rate=lr_schedule, momentum=0.8, nesterov=True),
    ),
    "weight_decay_prefix_mask": (
        og.sgd(LR, momentum=0.8, weight_decay=0.2, mask=PREFIX_MASK),
        l2(0.2, PREFIX_MASK, learning_rate=LR, momentum=0.8),
    ),
    "weight_decay_mask_fn": (
        og.sgd(LR, momentum=0.8, weight_decay=0.2, mask=matrices_only),
        l2(0.2, matrices_only, learning_rate=LR, momentum=0.8),
    ),
}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many({name: tx for name, (tx, _) in CASES.items()}, PROB)
    theirs = oracle.run_optax64({name: ref for name, (_, ref) in CASES.items()}, PROB)
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name], theirs[name])


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("plain", "momentum"),
        ("momentum", "nesterov"),
        ("momentum", "weight_decay"),
        ("plain", "weight_decay_no_momentum"),
        ("weight_decay", "weight_decay_prefix_mask"),
        ("weight_decay", "weight_decay_mask_fn"),
        ("nesterov_schedule", "weight_decay_schedules_mask_nesterov"),
    ],
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


# ---- Dtypes and state ----------------------------------------------------------------------


def _params(dtype=jnp.float32):
    return jax.tree.map(lambda x: jnp.asarray(x, dtype), PROB.theta0)


def _grads(dtype=jnp.float32):
    first = jax.tree.map(lambda x: jnp.asarray(x[0], dtype), PROB.noise)
    second = jax.tree.map(lambda x: jnp.asarray(x[1], dtype), PROB.noise)
    return first, second


BF16 = {
    "plain": og.sgd(0.1),
    "momentum": og.sgd(0.1, momentum=0.9),
    "nesterov_weight_decay_mask": og.sgd(
        0.1, momentum=0.9, nesterov=True, weight_decay=1e-2, mask=MASK
    ),
}


@pytest.fixture(scope="module")
def two_steps():
    bf16 = oracle.step_twice(BF16, _params(jnp.bfloat16), _grads(jnp.bfloat16))
    f32 = oracle.step_twice(
        {"bf16_accumulator": og.sgd(0.1, momentum=0.9, accumulator_dtype=jnp.bfloat16)},
        _params(),
        _grads(),
    )
    return bf16, f32


@pytest.mark.parametrize("name", BF16)
def test_bf16_params_give_bf16_updates_and_stable_state(two_steps, name):
    updates, state0, state2 = two_steps[0][name]
    assert oracle.dtypes(updates) == {jnp.dtype(jnp.bfloat16)}
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))
    assert oracle.signature(state0) == oracle.signature(state2)


def test_accumulator_dtype_is_honoured(two_steps):
    updates, state0, state2 = two_steps[1]["bf16_accumulator"]
    assert oracle.dtypes(updates) == {jnp.dtype(jnp.float32)}
    assert oracle.dtypes(og.tree.get(state2, "trace")) == {jnp.dtype(jnp.bfloat16)}
    assert oracle.signature(state0) == oracle.signature(state2)


def test_first_momentum_step_is_the_plain_step():
    """The buffer starts from the gradient: the first update is ``-lr * g`` either way."""
    params, (g, _) = _params(), _grads()
    tx = og.sgd(0.1, momentum=0.9, nesterov=False)
    updates, _ = jax.jit(tx.update)(g, tx.init(params), params)
    jax.tree.map(lambda u, x: np.testing.assert_allclose(u, -0.1 * x, rtol=1e-6), updates, g)


# ---- Errors at build time ------------------------------------------------------------------

NAN = float("nan")
BAD_ARGUMENTS = [
    (
        dict(learning_rate=-0.1),
        "optgrad.sgd(learning_rate=...) must be non-negative, got learning_rate=-0.1",
    ),
    (
        dict(learning_rate=NAN),
        "optgrad.sgd(learning_rate=...) must be non-negative, got learning_rate=nan",
    ),
    (dict(learning_rate=0.1, nesterov=True), "optgrad.sgd(nesterov=True) needs momentum"),
    (
        dict(learning_rate=0.1, momentum=-0.9),
        "optgrad.sgd(momentum=...) must be non-negative, got momentum=-0.9",
    ),
    (
        dict(learning_rate=0.1, momentum=NAN),
        "optgrad.sgd(momentum=...) must be non-negative, got momentum=nan",
    ),
    (
        dict(learning_rate=0.1, weight_decay=-1e-4),
        "optgrad.sgd(weight_decay=...) must be non-negative, got weight_decay=-0.0001",
    ),
    (
        dict(learning_rate=jnp.ones(2)),
        "optgrad.sgd(learning_rate=...) must be a scalar or a schedule, got an array of shape (2,)",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        og.sgd(**kwargs)


@pytest.mark.parametrize(
    "mask", [{"a": True, "b": False}, {"a": True, "b": False, "c": {"d": True, "e": False}}]
)
def test_mask_structure_mismatch_is_reported_at_init(mask):
    params = _params()
    tx = og.sgd(0.1, momentum=0.9, weight_decay=1e-4, mask=mask)
    with pytest.raises(ValueError, match="mask must have the tree structure of the params") as info:
        tx.init(params)
    assert str(jax.tree.structure(params)) in str(info.value)
    assert str(jax.tree.structure(mask)) in str(info.value)
