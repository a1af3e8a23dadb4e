"""``scale_by_rss`` and ``adagrad`` against independent oracles.

- Optax's convention (``eps`` inside the root, 0 where the sum is 0) against Optax 0.2.8 run in
  float64 on the same problem (``tests/_oracle.py``);
- ``eps_in_sqrt=False`` (``torch.optim.Adagrad``'s ``g / (sqrt(s) + eps)``, which Optax lacks)
  against a float64 NumPy implementation of torch's documented rule.

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

PROB = oracle.problem(seed=4)
LR = 0.1


def lr_schedule(count):
    return 0.2 / (1.0 + 0.02 * count)


CASES = {
    "scale_by_rss": (
        og.chain(og.scale_by_rss(), og.scale(-LR)),
        optax.chain(optax.scale_by_rss(), optax.scale(-LR)),
    ),
    "scale_by_rss_nondefault": (
        og.chain(og.scale_by_rss(initial_accumulator_value=0.0, eps=1e-2), og.scale(-LR)),
        optax.chain(optax.scale_by_rss(initial_accumulator_value=0.0, eps=1e-2), optax.scale(-LR)),
    ),
    "adagrad": (og.adagrad(LR), optax.adagrad(LR)),
    "adagrad_nondefault": (
        og.adagrad(lr_schedule, initial_accumulator_value=0.5, eps=1e-2),
        optax.adagrad(lr_schedule, initial_accumulator_value=0.5, eps=1e-2),
    ),
}


def torch_adagrad(lr, initial_accumulator_value, eps):
    """``torch.optim.Adagrad``'s rule (lr_decay=0) in float64 (torch_optim.md, section 1.4):
    ``s = s + g^2``, ``theta -= lr * g / (sqrt(s) + eps)``."""

    def step(g, theta, t, state):
        s = state.get("s", initial_accumulator_value) + g * g
        state["s"] = s
        return -lr(t - 1) * g / (np.sqrt(s) + eps)

    return step


# name: (initial_accumulator_value, eps); each run with eps outside the root and inside it.
TORCH_CASES = {
    "zero_init": (0.0, 1e-2),
    "positive_init": (0.3, 1e-2),
}
OURS_ONLY = {
    f"torch_{name}_{where}": og.chain(
        og.scale_by_rss(init, eps, eps_in_sqrt=where == "in_sqrt"),
        og.scale_by_learning_rate(lr_schedule),
    )
    for name, (init, eps) in TORCH_CASES.items()
    for where in ("outside", "in_sqrt")
}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many({**{n: tx for n, (tx, _) in CASES.items()}, **OURS_ONLY}, PROB)
    theirs = oracle.run_optax64({name: ref for name, (_, ref) in CASES.items()}, PROB)
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name], theirs[name])


@pytest.mark.parametrize(
    ("a", "b"), [("scale_by_rss", "scale_by_rss_nondefault"), ("adagrad", "adagrad_nondefault")]
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


@pytest.mark.parametrize("name", TORCH_CASES)
def test_eps_outside_the_root_matches_torchs_rule(runs, name):
    ours, _ = runs
    expected = oracle.run_numpy(torch_adagrad(lr_schedule, *TORCH_CASES[name]), PROB)
    oracle.assert_trajectories_close(ours[f"torch_{name}_outside"], expected)
    oracle.assert_distinguishable(ours[f"torch_{name}_in_sqrt"], expected)


@pytest.mark.parametrize("eps_in_sqrt", [True, False])
def test_zero_gradient_on_a_zero_accumulator_gives_a_zero_update(eps_in_sqrt):
    """Optax guards ``rsqrt(0 + eps)`` with ``where(s > 0, ..., 0)``; torch's form is finite
    since ``eps > 0``. Either way a coordinate that never had a gradient does not move."""
    tx = og.scale_by_rss(initial_accumulator_value=0.0, eps_in_sqrt=eps_in_sqrt)
    g = {"w": jnp.asarray([0.0, 2.0, 0.0, -3.0])}
    updates, state = jax.jit(tx.update)(g, tx.init(g))
    np.testing.assert_array_equal(np.asarray(updates["w"])[[0, 2]], 0.0)
    assert bool(jnp.all(jnp.isfinite(updates["w"])))
    np.testing.assert_array_equal(state.sum_of_squares["w"], [0.0, 4.0, 0.0, 9.0])


# ---- Dtypes and state ----------------------------------------------------------------------

BF16 = {
    "scale_by_rss": og.scale_by_rss(),
    "scale_by_rss_eps_outside": og.scale_by_rss(0.0, 1e-10, eps_in_sqrt=False),
    "adagrad": og.adagrad(0.1),
}


@pytest.fixture(scope="module")
def two_steps():
    def tree(step):
        return jax.tree.map(lambda x: jnp.asarray(x[step], jnp.bfloat16), PROB.noise)

    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.bfloat16), PROB.theta0)
    return oracle.step_twice(BF16, params, (tree(0), tree(1)))


@pytest.mark.parametrize("name", BF16)
def test_bf16_params_give_bf16_updates_and_stable_state(two_steps, name):
    updates, state0, state2 = two_steps[name]
    assert oracle.dtypes(updates) == {jnp.dtype(jnp.bfloat16)}
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))
    assert oracle.signature(state0) == oracle.signature(state2)
    assert oracle.dtypes(og.tree.get(state2, "sum_of_squares")) == {jnp.dtype(jnp.bfloat16)}


# ---- Errors at build time ------------------------------------------------------------------

NAN = float("nan")
BAD_ARGUMENTS = [
    (
        og.adagrad,
        dict(learning_rate=-0.1),
        "optgrad.adagrad(learning_rate=...) must be non-negative, got learning_rate=-0.1",
    ),
    (
        og.adagrad,
        dict(learning_rate=NAN),
        "optgrad.adagrad(learning_rate=...) must be non-negative, got learning_rate=nan",
    ),
    (
        og.adagrad,
        dict(learning_rate=0.1, eps=-1e-7),
        "optgrad.adagrad(eps=...) must be non-negative, got eps=-1e-07",
    ),
    (
        og.adagrad,
        dict(learning_rate=0.1, initial_accumulator_value=-0.1),
        "optgrad.adagrad(initial_accumulator_value=...) must be non-negative, "
        "got initial_accumulator_value=-0.1",
    ),
    (
        og.scale_by_rss,
        dict(eps=-1.0),
        "optgrad.scale_by_rss(eps=...) must be non-negative, got eps=-1.0",
    ),
    (
        og.scale_by_rss,
        dict(initial_accumulator_value=NAN),
        "optgrad.scale_by_rss(initial_accumulator_value=...) must be non-negative, "
        "got initial_accumulator_value=nan",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)
