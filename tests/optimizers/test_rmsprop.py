"""``scale_by_rms``, ``scale_by_stddev`` and ``rmsprop`` against Optax 0.2.8 run in float64 on
the same problem (``tests/_oracle.py``), over every switch: ``eps_in_sqrt``,
``bias_correction``, ``initial_scale``, ``centered``, ``momentum``, ``nesterov``.

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps (float32 rounding; see
``_oracle.assert_trajectories_close``).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import optax
import pytest

import optgrad as og
from tests import _oracle as oracle

PROB = oracle.problem(seed=3)
LR = 0.01


def lr_schedule(count):
    return 0.02 / (1.0 + 0.02 * count)


def scaled(ours, theirs, **kwargs):
    return og.chain(ours(**kwargs), og.scale(-LR)), optax.chain(theirs(**kwargs), optax.scale(-LR))


# Every primitive variant, for scale_by_rms and for scale_by_stddev.
VARIANTS = {
    "default": {},
    "eps_in_sqrt": dict(decay=0.8, eps=1e-2),
    "eps_outside": dict(decay=0.8, eps=1e-2, eps_in_sqrt=False),
    "bias_correction": dict(decay=0.8, eps=1e-2, bias_correction=True),
    "bias_correction_eps_outside": dict(
        decay=0.8, eps=1e-2, eps_in_sqrt=False, bias_correction=True
    ),
    "initial_scale": dict(eps=1e-2, initial_scale=0.5),
    "initial_scale_bias_correction": dict(eps=1e-2, initial_scale=0.5, bias_correction=True),
}
# Centered with bias correction starts from a variance of exactly 0 (v_1 / (1 - rho) = g_1^2 =
# (m_1 / (1 - rho))^2), so its first step is g / eps or g / sqrt(eps) computed from a difference
# that is pure rounding: no two implementations agree there (Optax's own float64 gives NaN with
# eps outside the root). A positive initial_scale keeps that comparison well-conditioned; the
# degenerate start is checked for finiteness below.
STDDEV_VARIANTS = {
    **VARIANTS,
    "bias_correction_eps_outside": dict(
        decay=0.8, eps=1e-2, eps_in_sqrt=False, bias_correction=True, initial_scale=0.2
    ),
}
CASES = {
    **{f"rms_{k}": scaled(og.scale_by_rms, optax.scale_by_rms, **v) for k, v in VARIANTS.items()},
    **{
        f"stddev_{k}": scaled(og.scale_by_stddev, optax.scale_by_stddev, **v)
        for k, v in STDDEV_VARIANTS.items()
    },
    "rmsprop": (og.rmsprop(LR), optax.rmsprop(LR)),
    "rmsprop_torch_eps_schedule": (
        og.rmsprop(lr_schedule, decay=0.8, eps=1e-2, eps_in_sqrt=False),
        optax.rmsprop(lr_schedule, decay=0.8, eps=1e-2, eps_in_sqrt=False),
    ),
    "rmsprop_momentum": (og.rmsprop(LR, momentum=0.7), optax.rmsprop(LR, momentum=0.7)),
    "rmsprop_nesterov": (
        og.rmsprop(LR, eps=1e-2, momentum=0.7, nesterov=True, initial_scale=0.3, eps_in_sqrt=False),
        optax.rmsprop(
            LR, eps=1e-2, momentum=0.7, nesterov=True, initial_scale=0.3, eps_in_sqrt=False
        ),
    ),
    "rmsprop_centered": (
        og.rmsprop(LR, centered=True, momentum=0.7),
        optax.rmsprop(LR, centered=True, momentum=0.7),
    ),
    "rmsprop_everything": (
        og.rmsprop(
            lr_schedule,
            decay=0.8,
            eps=1e-2,
            centered=True,
            momentum=0.7,
            nesterov=True,
            bias_correction=True,
            initial_scale=0.1,
        ),
        optax.rmsprop(
            lr_schedule,
            decay=0.8,
            eps=1e-2,
            centered=True,
            momentum=0.7,
            nesterov=True,
            bias_correction=True,
            initial_scale=0.1,
        ),
    ),
    "rmsprop_bias_correction_no_momentum": (
        og.rmsprop(LR, decay=0.8, bias_correction=True, eps_in_sqrt=False),
        optax.rmsprop(LR, decay=0.8, bias_correction=True, eps_in_sqrt=False),
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
        ("rms_eps_in_sqrt", "rms_eps_outside"),
        ("rms_eps_in_sqrt", "rms_bias_correction"),
        ("rms_eps_outside", "rms_bias_correction_eps_outside"),
        ("rms_default", "rms_initial_scale"),
        ("rms_initial_scale", "rms_initial_scale_bias_correction"),
        ("stddev_eps_in_sqrt", "stddev_eps_outside"),
        ("stddev_eps_in_sqrt", "stddev_bias_correction"),
        ("stddev_eps_outside", "stddev_bias_correction_eps_outside"),
        ("stddev_default", "stddev_initial_scale"),
        ("stddev_initial_scale", "stddev_initial_scale_bias_correction"),
        ("rms_default", "stddev_default"),
        ("rmsprop", "rmsprop_momentum"),
        ("rmsprop_momentum", "rmsprop_centered"),
    ],
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


@pytest.mark.parametrize("eps_in_sqrt", [True, False])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
def test_centered_bias_corrected_first_step_is_finite(eps_in_sqrt, dtype):
    """The variance estimate at the first step is 0 up to rounding, which may be negative;
    its root must not be NaN (Optax's can be, in float64 too)."""
    grads = {"w": jnp.asarray([0.3, 1.7, -2.9, 1e-3, 5.0, 0.77, -1e-6], dtype)}
    tx = og.scale_by_stddev(bias_correction=True, eps=1e-8, eps_in_sqrt=eps_in_sqrt)
    updates, _ = jax.jit(tx.update)(grads, tx.init(grads))
    assert updates["w"].dtype == dtype
    assert bool(jnp.all(jnp.isfinite(updates["w"])))
    assert bool(jnp.all(jnp.sign(updates["w"]) == jnp.sign(grads["w"])))


# ---- Dtypes and state ----------------------------------------------------------------------

BF16 = {
    "scale_by_rms": og.scale_by_rms(bias_correction=True),
    "scale_by_stddev": og.scale_by_stddev(bias_correction=True, eps_in_sqrt=False),
    "rmsprop": og.rmsprop(1e-3, centered=True, momentum=0.9, nesterov=True),
}


@pytest.fixture(scope="module")
def two_steps():
    def tree(dtype, step):
        return jax.tree.map(lambda x: jnp.asarray(x[step], dtype), PROB.noise)

    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.bfloat16), PROB.theta0)
    grads = (tree(jnp.bfloat16, 0), tree(jnp.bfloat16, 1))
    return oracle.step_twice(BF16, params, grads)


@pytest.mark.parametrize("name", BF16)
def test_bf16_params_give_bf16_updates_and_stable_state(two_steps, name):
    updates, state0, state2 = two_steps[name]
    assert oracle.dtypes(updates) == {jnp.dtype(jnp.bfloat16)}
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))
    assert oracle.signature(state0) == oracle.signature(state2)
    assert oracle.dtypes(og.tree.get(state2, "nu")) == {jnp.dtype(jnp.bfloat16)}


# ---- Errors at build time ------------------------------------------------------------------

NAN = float("nan")
BAD_ARGUMENTS = [
    (
        og.rmsprop,
        dict(learning_rate=0.1, nesterov=True),
        "optgrad.rmsprop(nesterov=True) needs momentum",
    ),
    (
        og.rmsprop,
        dict(learning_rate=-0.1),
        "optgrad.rmsprop(learning_rate=...) must be non-negative, got learning_rate=-0.1",
    ),
    (
        og.rmsprop,
        dict(learning_rate=NAN),
        "optgrad.rmsprop(learning_rate=...) must be non-negative, got learning_rate=nan",
    ),
    (
        og.rmsprop,
        dict(learning_rate=0.1, decay=1.5),
        "optgrad.rmsprop(decay=...) must be in [0, 1], got decay=1.5",
    ),
    (
        og.rmsprop,
        dict(learning_rate=0.1, eps=-1e-8),
        "optgrad.rmsprop(eps=...) must be non-negative, got eps=-1e-08",
    ),
    (
        og.rmsprop,
        dict(learning_rate=0.1, momentum=-0.5),
        "optgrad.rmsprop(momentum=...) must be non-negative, got momentum=-0.5",
    ),
    (
        og.rmsprop,
        dict(learning_rate=0.1, initial_scale=-1.0),
        "optgrad.rmsprop(initial_scale=...) must be non-negative, got initial_scale=-1.0",
    ),
    (
        og.scale_by_rms,
        dict(decay=-0.1),
        "optgrad.scale_by_rms(decay=...) must be in [0, 1], got decay=-0.1",
    ),
    (
        og.scale_by_rms,
        dict(eps=NAN),
        "optgrad.scale_by_rms(eps=...) must be non-negative, got eps=nan",
    ),
    (
        og.scale_by_stddev,
        dict(decay=2.0),
        "optgrad.scale_by_stddev(decay=...) must be in [0, 1], got decay=2.0",
    ),
    (
        og.scale_by_stddev,
        dict(initial_scale=-1.0),
        "optgrad.scale_by_stddev(initial_scale=...) must be non-negative, got initial_scale=-1.0",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)
