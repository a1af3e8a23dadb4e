"""``scale_by_rprop`` and ``rprop`` against independent oracles.

- a float64 NumPy implementation of Rprop as Riedmiller & Braun (1993) define it without
  weight-backtracking (the rule ``torch.optim.Rprop`` documents), over several settings;
- the real ``torch.optim.Rprop`` 2.13 on the same problem (``tests/torch/conftest.py``);
- Optax 0.2.8, to document that its ``rprop`` lags one step behind (it returns the previous
  step's update), so that optgrad's difference from it is deliberate.

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps (``_oracle``) against
torch, which rounds the same float32 operations. Against the float64 reference ``atol`` is
``5e-6 * max|theta|``: a step size is a product of up to 120 factors, each rounded in float32
(about 6e-8 relative), and Rprop does not contract these errors (the update uses only the sign
of the gradient), so they add up along the trajectory to a few 1e-6 of its scale.
"""

from __future__ import annotations

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optgrad as og
from tests import _oracle as oracle
from tests.torch.conftest import run_torch

PROB = oracle.problem(seed=11)
F64_ATOL_REL = 5e-6  # see the module docstring

# name: (kwargs of optgrad.rprop, the same for torch.optim.Rprop)
SETTINGS = {
    "default": dict(learning_rate=0.01),
    "fast": dict(learning_rate=0.05, eta_minus=0.3, eta_plus=1.5),
    "clamped": dict(learning_rate=0.02, min_step_size=0.005, max_step_size=0.05),
    "slow_growth": dict(learning_rate=0.1, eta_minus=0.7, eta_plus=1.05, max_step_size=0.3),
}


def torch_kwargs(kw):
    return dict(
        lr=kw["learning_rate"],
        etas=(kw.get("eta_minus", 0.5), kw.get("eta_plus", 1.2)),
        step_sizes=(kw.get("min_step_size", 1e-6), kw.get("max_step_size", 50.0)),
    )


def rprop_reference(
    learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0, *, lag=False
):
    """Rprop in float64 (Riedmiller & Braun 1993, eqs. 4-5, without backtracking): the step
    size grows by ``eta_plus`` while the gradient keeps its sign, shrinks by ``eta_minus`` when
    it flips, and after a flip the coordinate rests and its gradient is forgotten.

    ``lag=True`` is the *wrong* rule of Optax 0.2.8: each step applied one iteration late (and
    dropped if the gradient has flipped sign since), used to show that the problem tells the
    two apart.
    """

    def step(g, theta, t, state):
        prev = state.get("prev", np.zeros_like(g))
        size = state.get("size", np.full_like(g, learning_rate))
        s = np.sign(g) * np.sign(prev)
        size = np.clip(
            size * np.where(s > 0, eta_plus, np.where(s < 0, eta_minus, 1.0)),
            min_step_size,
            max_step_size,
        )
        g = np.where(s < 0, 0.0, g)
        update = -np.sign(g) * size
        late = state.get("late", np.zeros_like(g))
        state.update(prev=g, size=size, late=update)
        return np.where(s < 0, 0.0, late) if lag else update

    return step


@pytest.fixture(scope="module")
def ours():
    txs = {name: og.rprop(**kw) for name, kw in SETTINGS.items()}
    txs["primitive"] = og.chain(og.scale_by_rprop(0.05, eta_plus=1.5), og.scale(-1.0))
    return oracle.run_many(txs, PROB)


@pytest.mark.parametrize("name", SETTINGS)
def test_trajectory_matches_the_float64_reference(ours, name):
    expected = oracle.run_numpy(rprop_reference(**SETTINGS[name]), PROB)
    oracle.assert_trajectories_close(ours[name], expected, atol_rel=F64_ATOL_REL)
    late = oracle.run_numpy(rprop_reference(**SETTINGS[name], lag=True), PROB)
    oracle.assert_distinguishable(expected, late)


def test_the_primitive_is_the_alias_without_the_sign(ours):
    expected = oracle.run_numpy(rprop_reference(0.05, eta_plus=1.5), PROB)
    oracle.assert_trajectories_close(ours["primitive"], expected, atol_rel=F64_ATOL_REL)


@pytest.mark.parametrize("name", SETTINGS)
def test_trajectory_matches_torch(ours, name):
    kw = torch_kwargs(SETTINGS[name])
    expected = run_torch(lambda params: torch.optim.Rprop(params, **kw), PROB)
    oracle.assert_trajectories_close(ours[name], expected)


def test_the_settings_are_told_apart():
    refs = [oracle.run_numpy(rprop_reference(**kw), PROB) for kw in SETTINGS.values()]
    for a, b in itertools.pairwise(refs):
        oracle.assert_distinguishable(a, b)


def test_optax_lags_one_step_behind():
    """Optax 0.2.8's ``rprop`` returns, at step ``t``, the update optgrad returns at ``t - 1``
    (0 at the first step, and 0 where the gradient has flipped sign since): the same step sizes
    and signs, applied one iteration late. With gradients that do not depend on the params the
    two update sequences are shifts of each other; in a real run the late steps follow another
    trajectory (see ``test_trajectory_matches_the_float64_reference``)."""
    rng = np.random.default_rng(0)
    grads = jnp.asarray(rng.standard_normal((30, 40)) + 0.3, jnp.float32)

    def updates_of(tx):
        def body(state, g):
            u, state = tx.update(g, state, jnp.zeros(40))
            return state, u

        return np.asarray(jax.lax.scan(body, tx.init(jnp.zeros(40)), grads)[1])

    mine, theirs = updates_of(og.rprop(0.01)), updates_of(optax.rprop(0.01))
    np.testing.assert_array_equal(theirs[0], 0.0)
    # optgrad's updates point against the gradient: a flip is a gradient along the last update.
    flipped = np.sign(np.asarray(grads[1:])) * np.sign(mine[:-1]) > 0
    np.testing.assert_allclose(theirs[1:], np.where(flipped, 0.0, mine[:-1]), rtol=1e-6)
    assert np.all(mine[0] != 0.0) and np.any(flipped) and np.any(~flipped)


def test_optax_trajectory_is_the_lagged_rule():
    """The float64 reference with ``lag=True`` reproduces Optax, which is what makes
    ``assert_distinguishable`` above a statement about Optax's behaviour."""
    theirs = oracle.run_optax64({"rprop": optax.rprop(0.05, eta_plus=1.5)}, PROB)["rprop"]
    late = oracle.run_numpy(rprop_reference(0.05, eta_plus=1.5, lag=True), PROB)
    oracle.assert_trajectories_close(theirs, late, atol_rel=F64_ATOL_REL)


def test_learning_rate_sets_the_initial_step_sizes_and_the_state_keeps_them():
    tx = og.rprop(0.3, max_step_size=1.0)
    params = {"w": jnp.zeros(3)}
    state = tx.init(params)
    np.testing.assert_allclose(og.tree.get(state, "step_sizes")["w"], 0.3)
    grads = {"w": jnp.array([1.0, -2.0, 0.0])}
    updates, state = tx.update(grads, state, params)
    np.testing.assert_allclose(updates["w"], [-0.3, 0.3, 0.0])
    # The same signs again: steps grow by eta_plus; a flip shrinks and rests.
    updates, state = tx.update({"w": jnp.array([2.0, 1.0, 1.0])}, state, params)
    np.testing.assert_allclose(updates["w"], [-0.36, 0.0, -0.3], rtol=1e-6)
    np.testing.assert_allclose(og.tree.get(state, "step_sizes")["w"], [0.36, 0.15, 0.3], rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_zero_gradients_give_zero_updates(dtype):
    tx = og.rprop(0.01)
    params = {"w": jnp.ones((2, 3), dtype)}
    state = tx.init(params)
    for _ in range(2):
        updates, state = jax.jit(tx.update)({"w": jnp.zeros((2, 3), dtype)}, state, params)
        assert updates["w"].dtype == dtype
        np.testing.assert_array_equal(updates["w"], 0.0)


BAD_ARGUMENTS = [
    (
        dict(learning_rate=-0.1),
        "optgrad.rprop(learning_rate=...) must be non-negative, got learning_rate=-0.1",
    ),
    (
        dict(learning_rate=0.1, eta_minus=1.5),
        "optgrad.rprop(eta_minus=...) must be in (0, 1], got eta_minus=1.5",
    ),
    (
        dict(learning_rate=0.1, eta_minus=0.0),
        "optgrad.rprop(eta_minus=...) must be in (0, 1], got eta_minus=0.0",
    ),
    (
        dict(learning_rate=0.1, eta_plus=0.9),
        "optgrad.rprop(eta_plus=...) must be >= 1, got eta_plus=0.9",
    ),
    (
        dict(learning_rate=0.1, min_step_size=-1.0),
        "optgrad.rprop(min_step_size=...) must be non-negative, got min_step_size=-1.0",
    ),
    (
        dict(learning_rate=0.1, min_step_size=2.0, max_step_size=1.0),
        "optgrad.rprop(min_step_size=..., max_step_size=...) must satisfy min_step_size <= "
        "max_step_size, got min_step_size=2.0, max_step_size=1.0",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        og.rprop(**kwargs)
    primitive = message.replace("optgrad.rprop", "optgrad.scale_by_rprop")
    with pytest.raises(ValueError, match=re.escape(primitive)):
        og.scale_by_rprop(**kwargs)
