"""Low-precision state and parameters: state bytes, bf16 moments, stochastic rounding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og


def _state_bytes_per_param(tx, params):
    n = sum(x.size for x in jax.tree.leaves(params))
    leaves = jax.tree.leaves(tx.init(params))
    big = sum(x.size * x.dtype.itemsize for x in leaves if x.ndim)
    scalars = [x for x in leaves if not x.ndim]
    assert all(x.dtype in (jnp.float32, jnp.int32) for x in scalars)  # scalars stay 32-bit
    return big / n


@pytest.mark.parametrize(
    "mu_dtype, nu_dtype, expected",
    [(None, None, 8), (jnp.bfloat16, None, 6), (jnp.bfloat16, jnp.bfloat16, 4)],
)
def test_adam_state_bytes_per_parameter(mu_dtype, nu_dtype, expected):
    params = {"w": jnp.zeros((64, 32)), "b": jnp.zeros(32)}
    tx = og.adamw(1e-3, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    assert _state_bytes_per_param(tx, params) == expected
    state = tx.init(params)
    assert og.tree.get(state, "b1").dtype == jnp.float32  # 0.9 must not become bf16's 0.8984


def test_stochastic_round_is_unbiased_and_exact_on_representable_values():
    x = jnp.full((100_000,), 1.0 + 2.0**-10, jnp.float32)  # a quarter of a bf16 ulp above 1
    rounded = og.stochastic_round(x, jnp.bfloat16, jax.random.PRNGKey(0)).astype(jnp.float32)
    assert set(np.unique(rounded).tolist()) == {1.0, 1.0 + 2.0**-7}
    np.testing.assert_allclose(float(rounded.mean()), 1.0 + 2.0**-10, rtol=2e-4)
    exact = jnp.array([1.0, -2.5, 0.0, jnp.inf, -jnp.inf], jnp.float32)
    out = og.stochastic_round(exact, jnp.bfloat16, jax.random.PRNGKey(1)).astype(jnp.float32)
    np.testing.assert_array_equal(out, exact)
    assert bool(
        jnp.isnan(og.stochastic_round(jnp.array([jnp.nan]), jnp.bfloat16, jax.random.PRNGKey(2)))[0]
    )


def test_small_updates_survive_in_bf16_params_with_stochastic_rounding():
    params = jnp.ones(4096, jnp.bfloat16)
    updates = jnp.full(4096, 1e-3, jnp.float32)  # far below half a bf16 ulp at 1.0 (2**-8)
    nearest = stochastic = params
    step = jax.jit(lambda p, k: og.apply_updates(p, updates, key=k))
    for i in range(500):
        nearest = og.apply_updates(nearest, updates)
        stochastic = step(stochastic, jax.random.PRNGKey(i))
    assert float(nearest.astype(jnp.float32).mean()) == 1.0  # every update lost
    assert stochastic.dtype == jnp.bfloat16
    np.testing.assert_allclose(float(stochastic.astype(jnp.float32).mean()), 1.5, rtol=0.01)


def test_small_changes_to_bf16_moments_survive_with_stochastic_rounding():
    """A slow average (b1 = 0.999) of a constant gradient stalls in bf16 with nearest rounding."""
    params = jnp.zeros(4096)
    grads = jnp.ones(4096)

    def final_mu(stochastic):
        tx = og.scale_by_adam(b1=0.999, mu_dtype=jnp.bfloat16, stochastic_rounding=stochastic)
        step = jax.jit(lambda s: tx.update(grads, s)[1])
        state = tx.init(params)
        for _ in range(2000):
            state = step(state)
        return float(state.mu.astype(jnp.float32).mean())

    exact = 1.0 - 0.999**2000  # 0.8649
    assert abs(final_mu(False) - exact) > 0.05  # stalls where increments fall below half an ulp
    assert abs(final_mu(True) - exact) < 0.01
