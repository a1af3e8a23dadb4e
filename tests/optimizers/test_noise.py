"""``add_noise`` and ``noisy_sgd``.

The noise is random, so the oracles are:

- Optax 0.2.8 with the same key. optgrad draws the same stream (split the state's key, then
  one key per leaf), so the runs are compared trajectory for trajectory; both run in float32
  here, because ``jax.random.normal`` draws different numbers in float64 (Optax's float64 run
  would use other noise, not other maths);
- the law of the noise, checked statistically against Neelakantan et al. (2015), section 2:
  zero mean and variance ``eta / t**gamma`` at step ``t``, on 200,000 draws per step (the
  sample variance then has a relative standard error of ``sqrt(2 / n) = 0.3%``; the test allows
  2%, over six standard errors, and a wrong annealing, e.g. ``(1 + t)**gamma``, is off by 46%
  at ``t = 1``).

Tolerance for trajectories: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps.
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

PROB = oracle.problem(seed=19)


def lr_schedule(count):
    return 0.05 / (1.0 + 0.02 * count)


CASES = {
    "noisy_sgd": (og.noisy_sgd(0.05, key=3), optax.noisy_sgd(0.05, key=3)),
    "noisy_sgd_loud": (
        og.noisy_sgd(lr_schedule, eta=0.5, gamma=0.3, key=jax.random.key(7)),
        optax.noisy_sgd(lr_schedule, eta=0.5, gamma=0.3, key=jax.random.key(7)),
    ),
    "add_noise": (
        og.chain(og.add_noise(0.3, 0.55, 11), og.scale(-0.05)),
        optax.chain(optax.add_noise(0.3, 0.55, 11), optax.scale(-0.05)),
    ),
}
OURS_ONLY = {
    "seed_spelling": og.noisy_sgd(0.05, seed=3),
    "other_key": og.noisy_sgd(0.05, key=4),
    "no_noise": og.noisy_sgd(0.05, eta=0.0, key=3),
}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many({**{n: tx for n, (tx, _) in CASES.items()}, **OURS_ONLY}, PROB)
    theirs = oracle.run_many({n: ref for n, (_, ref) in CASES.items()}, PROB)
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax_with_the_same_key(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name], theirs[name])


def test_the_key_decides_the_noise(runs):
    ours, _ = runs
    np.testing.assert_array_equal(ours["seed_spelling"], ours["noisy_sgd"])
    oracle.assert_distinguishable(ours["noisy_sgd"], ours["other_key"], factor=10.0)
    oracle.assert_distinguishable(ours["noisy_sgd"], ours["no_noise"], factor=10.0)


def test_noise_has_zero_mean_and_the_annealed_variance():
    eta, gamma, n = 0.3, 0.55, 200_000
    tx = og.add_noise(eta, gamma, key=5)

    @jax.jit
    def draws(state):
        def body(state, _):
            u, state = tx.update({"a": jnp.zeros(n // 2), "b": jnp.zeros((2, n // 4))}, state)
            return state, jnp.concatenate([u["a"], u["b"].ravel()])

        return jax.lax.scan(body, state, length=5)[1]

    samples = np.asarray(draws(tx.init(None)), np.float64)
    for t, x in enumerate(samples, start=1):
        variance = eta / t**gamma
        assert abs(x.mean()) < 6 * np.sqrt(variance / n), t
        np.testing.assert_allclose(x.var(), variance, rtol=0.02, err_msg=f"step {t}")
    # The steps draw independent noise.
    assert abs(np.corrcoef(samples[0], samples[1])[0, 1]) < 6 / np.sqrt(n)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_updates_keep_the_dtype(dtype):
    tx = og.noisy_sgd(0.1, key=0)
    params = {"w": jnp.zeros(4, dtype)}
    updates, _ = jax.jit(tx.update)({"w": jnp.zeros(4, dtype)}, tx.init(params), params)
    assert updates["w"].dtype == dtype
    assert bool(jnp.all(jnp.isfinite(updates["w"]))) and bool(jnp.any(updates["w"] != 0))


BAD_ARGUMENTS = [
    (
        og.noisy_sgd,
        dict(learning_rate=0.1, eta=-1.0),
        ValueError,
        "optgrad.noisy_sgd(eta=...) must be non-negative, got eta=-1.0",
    ),
    (
        og.noisy_sgd,
        dict(learning_rate=0.1, key=1, seed=1),
        ValueError,
        "optgrad.noisy_sgd(key=..., seed=...): pass only one of them",
    ),
    (
        og.add_noise,
        dict(eta=0.1, gamma=0.5, key="abc"),
        TypeError,
        "optgrad.add_noise(key=...) must be an int seed or a PRNG key",
    ),
    (
        og.add_noise,
        dict(eta=0.1, gamma=-0.5),
        ValueError,
        "optgrad.add_noise(gamma=...) must be non-negative, got gamma=-0.5",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "error", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        factory(**kwargs)
