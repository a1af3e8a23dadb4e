"""``scale_by_adadelta`` and ``adadelta`` against independent oracles.

- Optax 0.2.8 run in float64 on the same problem (``tests/_oracle.py``), over ``rho``,
  ``eps``, weight decay with masks and schedules (Optax's semantics are Zeiler's);
- the real ``torch.optim.Adadelta`` 2.13, which the docstring says ``adadelta`` equals.

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps (``_oracle``).
"""

from __future__ import annotations

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

PROB = oracle.problem(seed=12)
MASK = {"a": True, "b": False, "c": {"d": True}}


def lr_schedule(count):
    return 2.0 / (1.0 + 0.02 * count)


def wd_schedule(count):
    return 0.2 / (1.0 + 0.05 * count)


CASES = {
    "scale_by_adadelta": (
        og.chain(og.scale_by_adadelta(), og.scale(-1.0)),
        optax.chain(optax.scale_by_adadelta(), optax.scale(-1.0)),
    ),
    "scale_by_adadelta_nondefault": (
        og.chain(og.scale_by_adadelta(rho=0.7, eps=1e-3), og.scale(-0.5)),
        optax.chain(optax.scale_by_adadelta(rho=0.7, eps=1e-3), optax.scale(-0.5)),
    ),
    # Optax's default learning_rate=None ascends (see test_optax_default_ascends): compare 1.0.
    "adadelta": (og.adadelta(), optax.adadelta(1.0)),
    "adadelta_schedule": (
        og.adadelta(lr_schedule, rho=0.8, eps=1e-4),
        optax.adadelta(lr_schedule, rho=0.8, eps=1e-4),
    ),
    "adadelta_weight_decay_mask": (
        og.adadelta(2.0, eps=1e-4, weight_decay=wd_schedule, mask=MASK),
        optax.adadelta(2.0, eps=1e-4, weight_decay=wd_schedule, weight_decay_mask=MASK),
    ),
}
# name: (optgrad kwargs, torch.optim.Adadelta kwargs)
TORCH = {
    "torch_default": ({}, {}),
    "torch_nondefault": (
        dict(learning_rate=2.0, rho=0.8, eps=1e-4),
        dict(lr=2.0, rho=0.8, eps=1e-4),
    ),
    "torch_weight_decay": (
        dict(learning_rate=2.0, eps=1e-4, weight_decay=0.1),
        dict(lr=2.0, eps=1e-4, weight_decay=0.1),
    ),
}


@pytest.fixture(scope="module")
def runs():
    txs = {name: tx for name, (tx, _) in CASES.items()}
    txs.update({name: og.adadelta(**kw) for name, (kw, _) in TORCH.items()})
    ours = oracle.run_many(txs, PROB)
    theirs = oracle.run_optax64({name: ref for name, (_, ref) in CASES.items()}, PROB)
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name], theirs[name])


@pytest.mark.parametrize("name", TORCH)
def test_trajectory_matches_torch(runs, name):
    ours, _ = runs
    kwargs = TORCH[name][1]
    expected = run_torch(lambda params: torch.optim.Adadelta(params, **kwargs), PROB)
    oracle.assert_trajectories_close(ours[name], expected)


def eps_outside_the_roots(rho, eps, lr):
    """A plausible *wrong* Adadelta: eps added outside both roots (RMSprop-style)."""

    def step(g, theta, t, state):
        e_g = rho * state.get("e_g", 0.0) + (1 - rho) * g * g
        u = (np.sqrt(state.get("e_x", 0.0)) + eps) / (np.sqrt(e_g) + eps) * g
        state.update(e_g=e_g, e_x=rho * state.get("e_x", 0.0) + (1 - rho) * u * u)
        return -lr * u

    return step


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("scale_by_adadelta", "scale_by_adadelta_nondefault"),
        ("adadelta_schedule", "adadelta_weight_decay_mask"),
    ],
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


def test_eps_placement_matters(runs):
    _, theirs = runs
    wrong = oracle.run_numpy(eps_outside_the_roots(0.8, 1e-4, lr_schedule(0)), PROB)
    oracle.assert_distinguishable(theirs["adadelta_schedule"], wrong)


def test_optax_default_ascends():
    """Optax 0.2.8's ``adadelta()`` (``learning_rate=None``) skips the sign flip: its update
    points along the gradient. optgrad's default is torch's ``lr=1.0``, a descent step."""
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([1.0, -2.0, 0.5])}
    theirs, _ = optax.adadelta().update(grads, optax.adadelta().init(params), params)
    ours, _ = og.adadelta().update(grads, og.adadelta().init(params), params)
    assert np.all(np.sign(theirs["w"]) == np.sign(grads["w"]))
    np.testing.assert_allclose(ours["w"], -theirs["w"], rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_zero_gradients_give_zero_updates(dtype):
    tx = og.adadelta(weight_decay=0.0)
    params = {"w": jnp.ones((2, 3), dtype)}
    state = tx.init(params)
    for _ in range(2):
        updates, state = jax.jit(tx.update)({"w": jnp.zeros((2, 3), dtype)}, state, params)
        assert updates["w"].dtype == dtype
        np.testing.assert_array_equal(updates["w"], 0.0)


BAD_ARGUMENTS = [
    (
        og.adadelta,
        dict(learning_rate=-1.0),
        "optgrad.adadelta(learning_rate=...) must be non-negative, got learning_rate=-1.0",
    ),
    (og.adadelta, dict(rho=1.5), "optgrad.adadelta(rho=...) must be in [0, 1], got rho=1.5"),
    (
        og.adadelta,
        dict(eps=-1e-6),
        "optgrad.adadelta(eps=...) must be non-negative, got eps=-1e-06",
    ),
    (
        og.adadelta,
        dict(weight_decay=-0.1),
        "optgrad.adadelta(weight_decay=...) must be non-negative, got weight_decay=-0.1",
    ),
    (
        og.scale_by_adadelta,
        dict(rho=float("nan")),
        "optgrad.scale_by_adadelta(rho=...) must be in [0, 1], got rho=nan",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)
