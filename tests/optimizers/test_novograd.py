"""NovoGrad against independent oracles.

- ``scale_by_novograd`` and ``novograd`` against Optax 0.2.8 run in float64 on the same problem;
- against a float64 NumPy NovoGrad written from Ginsburg et al. (arXiv:1905.11286),
  Algorithm 1, layer by layer (one second moment per leaf), with a weight-decay schedule and a
  mask (optgrad additions that Optax cannot express).

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps.
"""

from __future__ import annotations

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests import _oracle as oracle
from tests.optimizers._settable import assert_settable

PROB = oracle.problem(seed=17)
LR = 0.02
MASK = {"a": True, "b": False, "c": {"d": True}}


def lr_schedule(count):
    return 0.03 / (1.0 + 0.02 * count)


def wd_schedule(count):
    return 0.3 / (1.0 + 0.05 * count)


NONDEFAULT = dict(b1=0.8, b2=0.5, eps=1e-3, eps_root=1e-4, weight_decay=0.2)
CASES = {
    "scale_by_novograd": (
        og.chain(og.scale_by_novograd(), og.scale(-LR)),
        optax.chain(optax.scale_by_novograd(), optax.scale(-LR)),
    ),
    "scale_by_novograd_nondefault": (
        og.chain(og.scale_by_novograd(**NONDEFAULT), og.scale(-LR)),
        optax.chain(optax.scale_by_novograd(**NONDEFAULT), optax.scale(-LR)),
    ),
    "novograd": (og.novograd(LR), optax.novograd(LR)),
    "novograd_schedule_decay": (
        og.novograd(lr_schedule, b1=0.7, b2=0.9, weight_decay=0.1),
        optax.novograd(lr_schedule, b1=0.7, b2=0.9, weight_decay=0.1),
    ),
}
OURS_ONLY = {
    "novograd_mask_wd_schedule": og.novograd(
        lr_schedule, b1=0.8, b2=0.5, eps=1e-3, weight_decay=wd_schedule, mask=MASK
    ),
}
THEIRS_ONLY = {"sgd_momentum": optax.sgd(LR, momentum=0.9)}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many(
        {**{name: tx for name, (tx, _) in CASES.items()}, **OURS_ONLY}, PROB, with_state=True
    )
    theirs = oracle.run_optax64(
        {**{name: ref for name, (_, ref) in CASES.items()}, **THEIRS_ONLY}, PROB
    )
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name][0], theirs[name])


def paper_novograd(lr, b1, b2, eps, wd, decayed, *, layerwise=True):
    """Ginsburg et al. (2019), Algorithm 1 in float64, per layer ``l``:
    ``v_1 = |g_1|^2``, ``v_t = b2 v + (1 - b2) |g_t|^2``,
    ``m_t = b1 m + g_t / (sqrt(v_t) + eps) + wd theta`` (``m_0 = 0``), ``theta -= lr m_t``.
    ``layerwise=False`` is the plausible mistake of one second moment for all layers."""
    bounds = np.cumsum([0, *PROB.sizes])
    layers = [slice(a, b) for a, b in itertools.pairwise(bounds)] if layerwise else [slice(None)]

    def step(g, theta, t, state):
        v = np.empty_like(g)
        for layer in layers:
            sq = np.sum(g[layer] ** 2)
            v[layer] = sq if t == 1 else b2 * state["v"][layer] + (1 - b2) * sq
        m = b1 * state.get("m", 0.0) + g / (np.sqrt(v) + eps) + wd(t - 1) * decayed * theta
        state.update(m=m, v=v)
        return -lr(t - 1) * m

    return step


def test_novograd_matches_the_paper_with_a_decay_schedule_and_mask(runs):
    ours, _ = runs
    decayed = np.concatenate([np.full(n, m) for n, m in zip(PROB.sizes, [1.0, 0.0, 1.0])])
    args = (lr_schedule, 0.8, 0.5, 1e-3, wd_schedule, decayed)
    expected = oracle.run_numpy(paper_novograd(*args), PROB)
    oracle.assert_trajectories_close(ours["novograd_mask_wd_schedule"][0], expected)
    oracle.assert_distinguishable(
        expected, oracle.run_numpy(paper_novograd(*args, layerwise=False), PROB)
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [("novograd", "sgd_momentum"), ("scale_by_novograd", "scale_by_novograd_nondefault")],
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


def test_state_holds_one_float32_second_moment_per_leaf():
    params = {"w": jnp.ones((3, 2), jnp.float16), "z": jnp.ones(2, jnp.complex64)}
    tx = og.scale_by_novograd()
    state = tx.init(params)
    assert isinstance(state, og.ScaleByNovogradState)
    assert {k: (v.shape, v.dtype) for k, v in state.nu.items()} == {
        "w": ((), jnp.float32),
        "z": ((), jnp.float32),
    }
    # 300**2 * 6 overflows float16 (max 65504): the norm is taken in float32.
    grads = {"w": jnp.full((3, 2), 300.0, jnp.float16), "z": jnp.array([3j, 4.0], jnp.complex64)}
    updates, state = jax.jit(tx.update)(grads, state, params)
    np.testing.assert_allclose(float(state.nu["w"]), 300.0**2 * 6, rtol=1e-6)
    np.testing.assert_allclose(float(state.nu["z"]), 25.0, rtol=1e-6)
    assert updates["w"].dtype == jnp.float16 and bool(jnp.all(jnp.isfinite(updates["w"])))
    np.testing.assert_allclose(np.asarray(updates["z"]), [0.6j, 0.8], rtol=1e-6)


def test_update_needs_the_params():
    tx = og.novograd(0.1)
    with pytest.raises(ValueError, match=re.escape("needs the params")):
        tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))


BAD_ARGUMENTS = [
    (
        og.novograd,
        dict(learning_rate=-1.0),
        "optgrad.novograd(learning_rate=...) must be non-negative",
    ),
    (
        og.novograd,
        dict(learning_rate=0.1, b2=1.0),
        "optgrad.novograd(b2=...) must be in [0, 1), got b2=1.0",
    ),
    (
        og.novograd,
        dict(learning_rate=0.1, weight_decay=-1.0),
        "optgrad.novograd(weight_decay=...) must be non-negative",
    ),
    (
        og.scale_by_novograd,
        dict(b1=-0.1),
        "optgrad.scale_by_novograd(b1=...) must be in [0, 1), got b1=-0.1",
    ),
    (
        og.scale_by_novograd,
        dict(eps=-1.0),
        "optgrad.scale_by_novograd(eps=...) must be non-negative, got eps=-1.0",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def test_hyperparameters_live_in_the_state_and_can_be_set():
    assert_settable(
        lambda **kw: og.novograd(0.1, **kw),
        dict(learning_rate=0.1, b1=0.9, b2=0.25, eps=1e-6, eps_root=0.0, weight_decay=0.0),
        b1=0.5,
        b2=0.6,
        eps=0.1,
        eps_root=0.01,
        weight_decay=0.3,
    )
