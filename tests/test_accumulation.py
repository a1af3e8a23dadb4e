"""``trace`` (momentum) against independent oracles.

- ``decay``, ``nesterov``, ``accumulator_dtype`` against Optax 0.2.8's ``trace`` run in float64
  on the same problem (``tests/_oracle.py``);
- ``dampening``, which Optax lacks, against a float64 NumPy implementation of
  ``torch.optim.SGD``'s rule: ``b_1 = g_1`` (undamped), ``b_t = mu b_{t-1} + (1 - tau) g_t``.

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

PROB = oracle.problem(seed=5)
LR = 0.05


def lr_schedule(count):
    return 0.08 / (1.0 + 0.02 * count)


CASES = {
    "trace": (
        og.chain(og.trace(0.8), og.scale(-LR)),
        optax.chain(optax.trace(0.8), optax.scale(-LR)),
    ),
    "trace_nesterov": (
        og.chain(og.trace(0.8, nesterov=True), og.scale(-LR)),
        optax.chain(optax.trace(0.8, nesterov=True), optax.scale(-LR)),
    ),
    "trace_schedule": (
        og.chain(og.trace(0.95), og.scale_by_learning_rate(lr_schedule)),
        optax.chain(optax.trace(0.95), optax.scale_by_learning_rate(lr_schedule)),
    ),
    "trace_nesterov_f32_accumulator": (
        og.chain(og.trace(0.95, True, jnp.float32), og.scale_by_learning_rate(lr_schedule)),
        optax.chain(
            optax.trace(0.95, True, jnp.float32), optax.scale_by_learning_rate(lr_schedule)
        ),
    ),
}


def torch_momentum(lr, mu, tau, nesterov, *, first_undamped=True):
    """``torch.optim.SGD(momentum=mu, dampening=tau)`` in float64 (torch_optim.md, 1.1).

    ``first_undamped=False`` is the *wrong* rule (a zero buffer, damped from the first step),
    used to show that the problem tells the two apart.
    """

    def step(g, theta, t, state):
        if t == 1 and first_undamped:
            b = g
        else:
            b = mu * state.get("b", 0.0) + (1 - tau) * g
        state["b"] = b
        return -lr(t - 1) * (g + mu * b if nesterov else b)

    return step


# name: (decay, dampening, nesterov)
DAMPENING = {"heavy_ball": (0.9, 0.3, False), "nesterov": (0.8, 0.5, True)}
OURS_ONLY = {
    f"dampening_{name}": og.chain(
        og.trace(mu, nesterov, dampening=tau), og.scale_by_learning_rate(lr_schedule)
    )
    for name, (mu, tau, nesterov) in DAMPENING.items()
}
OURS_ONLY["bf16_accumulator"] = og.chain(
    og.trace(0.8, accumulator_dtype=jnp.bfloat16), og.scale(-LR)
)


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many(
        {**{n: tx for n, (tx, _) in CASES.items()}, **OURS_ONLY}, PROB, with_state=True
    )
    theirs = oracle.run_optax64({name: ref for name, (_, ref) in CASES.items()}, PROB)
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name][0], theirs[name])


def test_the_problem_tells_nesterov_apart(runs):
    _, theirs = runs
    oracle.assert_distinguishable(theirs["trace"], theirs["trace_nesterov"])
    oracle.assert_distinguishable(
        theirs["trace_schedule"], theirs["trace_nesterov_f32_accumulator"]
    )


@pytest.mark.parametrize("name", DAMPENING)
def test_dampening_matches_torchs_rule(runs, name):
    ours, _ = runs
    mu, tau, nesterov = DAMPENING[name]
    expected = oracle.run_numpy(torch_momentum(lr_schedule, mu, tau, nesterov), PROB)
    oracle.assert_trajectories_close(ours[f"dampening_{name}"][0], expected)
    # Neither the zero-initialised damped buffer nor no dampening at all would pass.
    zero_init = torch_momentum(lr_schedule, mu, tau, nesterov, first_undamped=False)
    oracle.assert_distinguishable(expected, oracle.run_numpy(zero_init, PROB))
    undamped = torch_momentum(lr_schedule, mu, 0.0, nesterov)
    oracle.assert_distinguishable(expected, oracle.run_numpy(undamped, PROB))


def test_first_update_is_the_undamped_gradient():
    tx = og.trace(0.9, dampening=0.5)
    g = {"w": jnp.asarray([1.0, -2.0, 3.0])}
    step = jax.jit(tx.update)
    updates, state = step(g, tx.init(g))
    np.testing.assert_array_equal(updates["w"], g["w"])
    updates, state = step(g, state)
    np.testing.assert_allclose(updates["w"], (0.9 + 0.5) * g["w"], rtol=1e-6)


def test_state_counts_steps_and_holds_the_buffer(runs):
    ours, _ = runs
    state = ours["trace"][1][0]
    assert isinstance(state, og.TraceState)
    assert state.count.dtype == jnp.int32
    assert int(state.count) == PROB.steps


def test_count_saturates_instead_of_overflowing():
    tx = og.trace(0.9, dampening=0.1)
    g = {"w": jnp.ones(2)}
    state = tx.init(g)._replace(count=jnp.asarray(np.iinfo(np.int32).max, jnp.int32))
    _, state = jax.jit(tx.update)(g, state)
    assert int(state.count) == np.iinfo(np.int32).max


# ---- Dtypes --------------------------------------------------------------------------------


def test_bf16_accumulator_is_stored_in_bf16_and_stays_close(runs):
    """A bf16 buffer changes the trajectory only at bf16 precision (8 bits of mantissa)."""
    ours, theirs = runs
    traj, state = ours["bf16_accumulator"]
    assert oracle.dtypes(state[0].trace) == {jnp.dtype(jnp.bfloat16)}
    oracle.assert_trajectories_close(traj, theirs["trace"], rtol=1e-2, atol_rel=1e-2)


BF16 = {
    "trace": og.trace(0.9),
    "nesterov_dampening": og.trace(0.9, nesterov=True, dampening=0.1),
    "f32_accumulator": og.trace(0.9, accumulator_dtype=jnp.float32),
}


@pytest.fixture(scope="module")
def two_steps():
    def tree(step):
        return jax.tree.map(lambda x: jnp.asarray(x[step], jnp.bfloat16), PROB.noise)

    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.bfloat16), PROB.theta0)
    return oracle.step_twice(BF16, params, (tree(0), tree(1)))


@pytest.mark.parametrize("name", BF16)
def test_bf16_updates_and_stable_state(two_steps, name):
    updates, state0, state2 = two_steps[name]
    assert oracle.dtypes(updates) == {jnp.dtype(jnp.bfloat16)}
    assert oracle.signature(state0) == oracle.signature(state2)
    expected = jnp.float32 if name == "f32_accumulator" else jnp.bfloat16
    assert oracle.dtypes(state2.trace) == {jnp.dtype(expected)}


# ---- Errors at build time ------------------------------------------------------------------

NAN = float("nan")
BAD_ARGUMENTS = [
    (dict(decay=-0.1), "optgrad.trace(decay=...) must be non-negative, got decay=-0.1"),
    (dict(decay=NAN), "optgrad.trace(decay=...) must be non-negative, got decay=nan"),
    (
        dict(decay=0.9, dampening=1.5),
        "optgrad.trace(dampening=...) must be in [0, 1], got dampening=1.5",
    ),
    (
        dict(decay=0.9, dampening=-0.1),
        "optgrad.trace(dampening=...) must be in [0, 1], got dampening=-0.1",
    ),
    (
        dict(decay=0.9, dampening=NAN),
        "optgrad.trace(dampening=...) must be in [0, 1], got dampening=nan",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        og.trace(**kwargs)
