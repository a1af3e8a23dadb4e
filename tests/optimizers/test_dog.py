"""DoG: ``scale_by_distance_over_gradients`` (layer-wise, Optax's main namespace),
``scale_by_dog`` and ``dog`` (global, ``optax.contrib``) against independent oracles.

- Optax 0.2.8 run in float64, against optgrad run in float64 too. DoG's first steps move the
  params by ``r_eps ~ 1e-6`` of their norm, and in float32 the distance ``|x_t - x_0|`` of such
  a step is rounding noise (6e-8 relative per coordinate), which the step-size rule then
  amplifies: float32 and float64 DoG legitimately part ways by ~1e-3. The maths is what is
  compared, in float64; one well-conditioned float32 run is compared too.
- a float64 NumPy implementation of DoG from Ivgi et al. (2023), eq. (1).

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps (``_oracle``).
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

PROB = oracle.problem(seed=21)
MASK = {"a": True, "b": False, "c": {"d": True}}


def lr_schedule(count):
    return 1.0 / (1.0 + 0.02 * count)


def ldog(ours, **kwargs):
    ns = og if ours else optax
    return ns.chain(ns.scale_by_distance_over_gradients(**kwargs), ns.scale(-1.0))


def dog(ours, **kwargs):
    return (og.dog if ours else optax.contrib.dog)(**kwargs)


SETTINGS = {
    "ldog": (ldog, dict(param_dtype=jnp.float64)),
    "ldog_nondefault": (
        ldog,
        dict(reps_rel=1e-3, eps=1e-4, global_scale=0.5, param_dtype=jnp.float64),
    ),
    "dog": (dog, {}),
    "dog_distance": (dog, dict(init_step=("distance", 1e-3))),
    "dog_learning_rate": (
        dog,
        dict(learning_rate=0.5, init_step=("learning_rate", 0.05), weight_decay=0.01, mask=MASK),
    ),
    "dog_schedule": (dog, dict(learning_rate=lr_schedule, init_step=("heuristic", 1e-4))),
}


@pytest.fixture(scope="module")
def runs():
    with jax.enable_x64(True):
        ours = oracle.run_many(
            {n: make(True, **kw) for n, (make, kw) in SETTINGS.items()}, PROB, jnp.float64
        )
    theirs = oracle.run_optax64({n: make(False, **kw) for n, (make, kw) in SETTINGS.items()}, PROB)
    ours32 = oracle.run_many(
        {"dog_learning_rate": dog(True, **SETTINGS["dog_learning_rate"][1])}, PROB
    )
    return ours, theirs, ours32


@pytest.mark.parametrize("name", SETTINGS)
def test_trajectory_matches_optax(runs, name):
    ours, theirs, _ = runs
    oracle.assert_trajectories_close(ours[name], theirs[name])


def test_float32_trajectory_matches_optax_when_well_conditioned(runs):
    _, theirs, ours32 = runs
    oracle.assert_trajectories_close(ours32["dog_learning_rate"], theirs["dog_learning_rate"])


def dog_reference(lr, r_eps_rel=1e-6, eps=1e-8, *, accumulate=True):
    """Global DoG in float64 (Ivgi et al. 2023, eq. 1): ``eta_t = rbar_t / sqrt(G_t + eps)``,
    ``rbar_t = max(r_eps, max_{k<=t} |x_k - x_0|)``, ``G_t = sum_{k<=t} |g_k|^2``, with the
    paper's ``r_eps = 1e-6 (1 + |x_0|)``. ``accumulate=False`` is the *wrong* rule that forgets
    past gradients (``G_t = |g_t|^2``: normalised steps of length ``rbar_t``)."""

    def step(g, theta, t, state):
        x0 = state.setdefault("x0", theta.copy())
        r_eps = r_eps_rel * (1 + np.linalg.norm(x0))
        dist = np.linalg.norm(theta - x0)
        state["rbar"] = max(state.get("rbar", r_eps), dist)
        state["G"] = (state.get("G", 0.0) if accumulate else 0.0) + g @ g
        return -lr(t - 1) * state["rbar"] / np.sqrt(state["G"] + eps) * g

    return step


def test_dog_matches_the_papers_rule(runs):
    ours, _, _ = runs
    expected = oracle.run_numpy(dog_reference(lr_schedule, 1e-4), PROB)
    oracle.assert_trajectories_close(ours["dog_schedule"], expected)
    wrong = oracle.run_numpy(dog_reference(lr_schedule, 1e-4, accumulate=False), PROB)
    oracle.assert_distinguishable(expected, wrong)


@pytest.mark.parametrize(
    ("a", "b"), [("ldog", "dog"), ("dog", "dog_distance"), ("ldog", "ldog_nondefault")]
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs, _ = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


@pytest.mark.parametrize("make", [lambda: og.dog(), lambda: ldog(True)], ids=["dog", "ldog"])
def test_initial_params_are_those_of_the_first_update(make):
    """``init`` needs only shapes (it works on ``jax.ShapeDtypeStruct``); the first update
    records the params it is given as ``x_0``, so both inits give the same steps."""
    tx = make()
    params = {"w": jnp.arange(1.0, 4.0), "m": jnp.ones((2, 2))}
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    grads = jax.tree.map(lambda x: 0.5 * x, params)
    u1, _ = tx.update(grads, tx.init(params), params)
    u2, s2 = tx.update(grads, tx.init(abstract), params)
    jax.tree.map(np.testing.assert_array_equal, u1, u2)
    jax.tree.map(np.testing.assert_array_equal, og.tree.get(s2, "init_params"), params)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_zero_gradients_give_zero_updates(dtype):
    for tx in (og.dog(), ldog(True)):
        params = {"w": jnp.ones((2, 3), dtype)}
        state = tx.init(params)
        for _ in range(2):
            updates, state = jax.jit(tx.update)({"w": jnp.zeros((2, 3), dtype)}, state, params)
            assert updates["w"].dtype == dtype
            np.testing.assert_array_equal(updates["w"], 0.0)


def test_meta_gradient_at_the_first_step_is_finite():
    """``|x_1 - x_0| = 0`` at the first step: its root must not give a NaN derivative."""

    def after_one_step(x):
        tx = og.dog()
        params = {"w": x}
        updates, _ = tx.update(params, tx.init(params), params)
        return jnp.sum(og.apply_updates(params, updates)["w"])

    assert bool(jnp.all(jnp.isfinite(jax.grad(after_one_step)(jnp.ones(3)))))


BAD_ARGUMENTS = [
    (
        og.dog,
        dict(init_step=("guess", 1e-6)),
        ValueError,
        "optgrad.dog(init_step[0]=...) must be one of 'distance', 'learning_rate', 'heuristic', "
        "got init_step[0]='guess'",
    ),
    (og.dog, dict(init_step=1e-6), TypeError, "optgrad.dog(init_step=...) must be a pair"),
    (
        og.dog,
        dict(weight_decay=-1.0),
        ValueError,
        "optgrad.dog(weight_decay=...) must be non-negative, got weight_decay=-1.0",
    ),
    (
        og.scale_by_distance_over_gradients,
        dict(reps_rel=0.0),
        ValueError,
        "optgrad.scale_by_distance_over_gradients(reps_rel=...) must be positive, got reps_rel=0.0",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "error", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        factory(**kwargs)
