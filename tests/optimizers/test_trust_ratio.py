"""Trust ratios and LAMB, LARS, Fromage against independent oracles.

- ``scale_by_trust_ratio``, ``scale_by_param_block_norm``, ``scale_by_param_block_rms``,
  ``lamb``, ``lars`` (both masks, Nesterov) and ``fromage`` against Optax 0.2.8 run in float64
  on the same problem;
- float64 NumPy references written from the papers, layer by layer: LAMB (You et al., ICLR
  2020, Algorithm 2), LARS (You, Gitman & Ginsburg 2017, Algorithm 1; its local rate
  ``|w| / (|g| + wd |w|)`` differs from Optax's ``|w| / |g + wd w|``, which optgrad follows:
  both are checked) and Fromage (Bernstein et al., NeurIPS 2020, Algorithm 1);
- zero norms: a zero parameter block or a zero update gives ratio 1, finite in float16 and
  under ``jax.grad``.

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps.
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
from tests.optimizers._settable import assert_settable

PROB = oracle.problem(seed=18)
LR = 0.02
MASK = {"a": True, "b": False, "c": {"d": True}}
TRUST_MASK = {"a": False, "b": True, "c": True}


def lr_schedule(count):
    return 0.03 / (1.0 + 0.02 * count)


def wd_schedule(count):
    return 0.2 / (1.0 + 0.05 * count)


def scaled(name, **kwargs):
    return (
        og.chain(getattr(og, name)(**kwargs), og.scale(-LR)),
        optax.chain(getattr(optax, name)(**kwargs), optax.scale(-LR)),
    )


LARS = dict(weight_decay=0.1, trust_coefficient=0.02, eps=0.01, momentum=0.8, nesterov=True)
CASES = {
    "scale_by_trust_ratio": scaled("scale_by_trust_ratio"),
    "scale_by_trust_ratio_nondefault": scaled(
        "scale_by_trust_ratio", min_norm=2.0, trust_coefficient=0.3, eps=0.1
    ),
    "scale_by_param_block_norm": scaled("scale_by_param_block_norm"),
    "scale_by_param_block_rms": scaled("scale_by_param_block_rms", min_scale=0.9),
    "lamb": (og.lamb(LR), optax.lamb(LR)),
    "lamb_decay_mask_schedules": (
        og.lamb(lr_schedule, b1=0.8, b2=0.95, eps=1e-3, weight_decay=wd_schedule, mask=MASK),
        optax.lamb(lr_schedule, b1=0.8, b2=0.95, eps=1e-3, weight_decay=wd_schedule, mask=MASK),
    ),
    "lars": (og.lars(10.0), optax.lars(10.0)),
    "lars_masks_nesterov": (
        og.lars(lr_schedule, **LARS, mask=MASK, trust_ratio_mask=TRUST_MASK),
        optax.lars(lr_schedule, **LARS, weight_decay_mask=MASK, trust_ratio_mask=TRUST_MASK),
    ),
    "fromage": (og.fromage(LR), optax.fromage(LR)),
    "fromage_schedule": (og.fromage(lr_schedule, min_norm=0.5), optax.fromage(lr_schedule, 0.5)),
}
OURS_ONLY = {
    "lamb_paper": og.lamb(lr_schedule, b1=0.8, b2=0.95, eps=1e-3, weight_decay=0.3),
    "lars_paper": og.lars(lr_schedule, weight_decay=0.3, trust_coefficient=0.05, momentum=0.8),
    "fromage_paper": og.fromage(lr_schedule, min_norm=0.0),
}
THEIRS_ONLY = {"adamw": optax.adamw(LR, weight_decay=0.0)}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many({**{name: tx for name, (tx, _) in CASES.items()}, **OURS_ONLY}, PROB)
    theirs = oracle.run_optax64(
        {**{name: ref for name, (_, ref) in CASES.items()}, **THEIRS_ONLY}, PROB
    )
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name], theirs[name])


LAYERS = [slice(a, b) for a, b in zip(np.cumsum([0, *PROB.sizes])[:-1], np.cumsum(PROB.sizes))]


def norm(x):
    return np.sqrt(np.sum(x * x))


def paper_lamb(lr, b1, b2, eps, wd):
    """You et al. (2020), Algorithm 2 in float64, per layer: ``r = m_hat / (sqrt(v_hat) + eps)``
    and ``x -= lr |x| / |r + wd x| (r + wd x)`` (scaling function the identity)."""

    def step(g, theta, t, state):
        m = b1 * state.get("m", 0.0) + (1 - b1) * g
        v = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        state.update(m=m, v=v)
        r = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps) + wd * theta
        out = np.empty_like(g)
        for layer in LAYERS:
            out[layer] = -lr(t - 1) * norm(theta[layer]) / norm(r[layer]) * r[layer]
        return out

    return step


def paper_lars(lr, wd, eta, momentum, *, optax_rate=True):
    """You, Gitman & Ginsburg (2017), Algorithm 1 in float64, per layer: local rate
    ``eta |w| / (|g| + wd |w|)`` (``optax_rate``: ``eta |w| / |g + wd w|``), then
    ``v = momentum v + lr * rate * (g + wd w)`` and ``w -= v``."""

    def step(g, theta, t, state):
        u = g + wd * theta
        scaled = np.empty_like(g)
        for layer in LAYERS:
            w = norm(theta[layer])
            den = norm(u[layer]) if optax_rate else norm(g[layer]) + wd * w
            scaled[layer] = eta * w / den * u[layer]
        v = momentum * state.get("v", 0.0) + lr(t - 1) * scaled
        state["v"] = v
        return -v

    return step


def paper_fromage(lr):
    """Bernstein et al. (2020), Algorithm 1 in float64, per layer:
    ``w <- (w - lr |w| / |g| g) / sqrt(1 + lr^2)``."""

    def step(g, theta, t, state):
        eta = lr(t - 1)
        new = np.empty_like(g)
        for layer in LAYERS:
            w = theta[layer]
            new[layer] = (w - eta * norm(w) / norm(g[layer]) * g[layer]) / np.sqrt(1 + eta**2)
        return new - theta

    return step


def test_lamb_matches_the_paper(runs):
    ours, theirs = runs
    expected = oracle.run_numpy(paper_lamb(lr_schedule, 0.8, 0.95, 1e-3, 0.3), PROB)
    oracle.assert_trajectories_close(ours["lamb_paper"], expected)
    oracle.assert_distinguishable(theirs["lamb"], theirs["adamw"])


def test_lars_matches_optax_rate_and_differs_from_the_papers_with_weight_decay(runs):
    ours, _ = runs
    expected = oracle.run_numpy(paper_lars(lr_schedule, 0.3, 0.05, 0.8), PROB)
    oracle.assert_trajectories_close(ours["lars_paper"], expected)
    paper_rate = oracle.run_numpy(paper_lars(lr_schedule, 0.3, 0.05, 0.8, optax_rate=False), PROB)
    oracle.assert_distinguishable(expected, paper_rate)


def test_fromage_matches_the_paper(runs):
    ours, _ = runs
    expected = oracle.run_numpy(paper_fromage(lr_schedule), PROB)
    oracle.assert_trajectories_close(ours["fromage_paper"], expected)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("scale_by_trust_ratio", "scale_by_trust_ratio_nondefault"),
        ("lars", "lars_masks_nesterov"),
        ("fromage", "scale_by_trust_ratio"),
        ("scale_by_param_block_norm", "scale_by_param_block_rms"),
    ],
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.float32])
def test_zero_norms_give_ratio_one_finite_values_and_finite_gradients(dtype):
    tx = og.scale_by_trust_ratio()
    params = {"zero": jnp.zeros(3, dtype), "w": jnp.full(3, 400.0, dtype)}  # |w|^2 > f16 max
    grads = {"zero": jnp.ones(3, dtype), "w": jnp.zeros(3, dtype)}
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(updates["zero"], np.float32), 1.0)
    np.testing.assert_array_equal(np.asarray(updates["w"], np.float32), 0.0)
    assert updates["zero"].dtype == dtype

    def loss(p):
        u, _ = tx.update(jax.tree.map(lambda x: 0.0 * x, p), tx.init(p), p)
        return sum(jnp.sum(x.astype(jnp.float32)) for x in jax.tree.leaves(u))

    g = jax.grad(loss)({"zero": jnp.zeros(3), "w": jnp.ones(3)})
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))


def test_param_block_scalings():
    p = {"a": jnp.array([3.0, 4.0]), "b": jnp.zeros(4)}
    u = {"a": jnp.ones(2), "b": jnp.ones(4)}
    norm_tx, rms_tx = og.scale_by_param_block_norm(), og.scale_by_param_block_rms(min_scale=0.1)
    scaled_norm, _ = norm_tx.update(u, norm_tx.init(p), p)
    scaled_rms, _ = rms_tx.update(u, rms_tx.init(p), p)
    np.testing.assert_allclose(scaled_norm["a"], 5.0)
    np.testing.assert_allclose(scaled_norm["b"], 1e-3)  # the floor
    np.testing.assert_allclose(scaled_rms["a"], np.sqrt(12.5), rtol=1e-6)
    np.testing.assert_allclose(scaled_rms["b"], 0.1)


def test_lars_has_one_mask_spelling():
    """``mask`` is optgrad's one spelling; Optax's ``weight_decay_mask`` is refused by Python."""
    with pytest.raises(TypeError, match="weight_decay_mask"):
        og.lars(0.1, weight_decay_mask=MASK)  # type: ignore[call-arg]


@pytest.mark.parametrize("tx", [og.scale_by_trust_ratio(), og.lamb(0.1), og.fromage(0.1)])
def test_update_needs_the_params(tx):
    with pytest.raises(ValueError, match=re.escape("needs the params")):
        tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))


BAD_ARGUMENTS = [
    (og.lamb, dict(learning_rate=-1.0), "optgrad.lamb(learning_rate=...) must be non-negative"),
    (
        og.lamb,
        dict(learning_rate=0.1, b1=1.0),
        "optgrad.lamb(b1=...) must be in [0, 1), got b1=1.0",
    ),
    (
        og.lamb,
        dict(learning_rate=0.1, weight_decay=-1.0),
        "optgrad.lamb(weight_decay=...) must be non-negative",
    ),
    (
        og.lars,
        dict(learning_rate=0.1, momentum=-0.9),
        "optgrad.lars(momentum=...) must be non-negative, got momentum=-0.9",
    ),
    (
        og.lars,
        dict(learning_rate=0.1, trust_coefficient=-1.0),
        "optgrad.lars(trust_coefficient=...) must be non-negative",
    ),
    (
        og.fromage,
        dict(learning_rate=-0.1),
        "optgrad.fromage(learning_rate=...) must be non-negative",
    ),
    (
        og.fromage,
        dict(learning_rate=0.1, min_norm=-1.0),
        "optgrad.fromage(min_norm=...) must be non-negative",
    ),
    (
        og.scale_by_trust_ratio,
        dict(eps=-1.0),
        "optgrad.scale_by_trust_ratio(eps=...) must be non-negative, got eps=-1.0",
    ),
    (
        og.scale_by_param_block_norm,
        dict(min_scale=-1.0),
        "optgrad.scale_by_param_block_norm(min_scale=...) must be non-negative",
    ),
    (
        og.scale_by_param_block_rms,
        dict(min_scale=float("nan")),
        "optgrad.scale_by_param_block_rms(min_scale=...) must be non-negative",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def test_trust_ratio_mask_structure_mismatch_is_reported_at_init():
    tx = og.lars(0.1, trust_ratio_mask={"a": True})
    with pytest.raises(ValueError, match="tree structure of the params"):
        tx.init(jax.tree.map(jnp.asarray, PROB.theta0))


@pytest.mark.parametrize(
    ("make", "defaults", "changes"),
    [
        (
            lambda **kw: og.lamb(0.1, **kw),
            dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0, weight_decay=0.0),
            dict(b1=0.5, b2=0.6, eps=0.1, eps_root=0.01, weight_decay=0.3),
        ),
        (
            lambda **kw: og.lars(0.1, **kw),
            dict(learning_rate=0.1, weight_decay=0.0, trust_coefficient=1e-3, eps=0.0),
            dict(weight_decay=0.3, trust_coefficient=0.5, eps=0.1, momentum=0.5),
        ),
        (
            lambda **kw: og.fromage(**{"learning_rate": 0.1, **kw}),
            dict(learning_rate=0.1, min_norm=1e-6),
            dict(learning_rate=0.3, min_norm=5.0),
        ),
    ],
    ids=["lamb", "lars", "fromage"],
)
def test_hyperparameters_live_in_the_state_and_can_be_set(make, defaults, changes):
    assert_settable(make, defaults, **changes)
