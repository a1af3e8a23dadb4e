"""``scale_by_factored_rms``, ``scale_by_param_block_rms`` and ``adafactor`` against Optax 0.2.8
run in float64 on the same problem (``tests/_oracle.py``): factored (``min_dim_size_to_factor``
small enough for the (4, 5) and (2, 3, 5) leaves) and unfactored leaves, momentum, weight decay
with a mask, clipping on and off, ``decay_offset``. Optax's Adafactor is the intended semantics
here (the T5 variant); ``torch.optim.Adafactor`` is another algorithm (``optgrad.torch``).

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

PROB = oracle.problem(seed=13)
MASK = {"a": True, "b": False, "c": {"d": True}}


def lr_schedule(count):
    return 0.05 / (1.0 + 0.02 * count)


def both(**kwargs):
    """optgrad's and Optax's adafactor from the same arguments (Optax's weight-decay names)."""
    ours = dict(kwargs)
    if "weight_decay_rate" in ours:
        ours["weight_decay"] = ours.pop("weight_decay_rate")
    if "weight_decay_mask" in ours:
        ours["mask"] = ours.pop("weight_decay_mask")
    return og.adafactor(**ours), optax.adafactor(**kwargs)


CASES = {
    "factored_rms": (
        og.chain(og.scale_by_factored_rms(min_dim_size_to_factor=2), og.scale(-0.01)),
        optax.chain(optax.scale_by_factored_rms(min_dim_size_to_factor=2), optax.scale(-0.01)),
    ),
    "factored_rms_unfactored": (
        og.chain(og.scale_by_factored_rms(decay_rate=0.5, epsilon=1e-4), og.scale(-0.01)),
        optax.chain(optax.scale_by_factored_rms(decay_rate=0.5, epsilon=1e-4), optax.scale(-0.01)),
    ),
    "factored_rms_offset": (
        og.chain(
            og.scale_by_factored_rms(step_offset=-5, min_dim_size_to_factor=3), og.scale(-0.01)
        ),
        optax.chain(
            optax.scale_by_factored_rms(step_offset=-5, min_dim_size_to_factor=3),
            optax.scale(-0.01),
        ),
    ),
    "param_block_rms": (
        og.chain(og.scale_by_param_block_rms(0.5), og.scale(-0.1)),
        optax.chain(optax.scale_by_param_block_rms(0.5), optax.scale(-0.1)),
    ),
    "adafactor_default": both(learning_rate=0.05),
    "adafactor_factored": both(learning_rate=0.05, min_dim_size_to_factor=2),
    "adafactor_not_factored": both(learning_rate=0.05, min_dim_size_to_factor=2, factored=False),
    "adafactor_momentum_decay": both(
        learning_rate=lr_schedule,
        min_dim_size_to_factor=4,
        momentum=0.8,
        weight_decay_rate=0.01,
        weight_decay_mask=MASK,
        decay_offset=-3,
    ),
    "adafactor_plain": both(
        learning_rate=0.01,
        min_dim_size_to_factor=2,
        clipping_threshold=None,
        multiply_by_parameter_scale=False,
        decay_rate=0.6,
        eps=1e-6,
    ),
    "adafactor_clip_2": both(learning_rate=0.05, min_dim_size_to_factor=2, clipping_threshold=2.0),
}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many({name: tx for name, (tx, _) in CASES.items()}, PROB, with_state=True)
    theirs = oracle.run_optax64(
        {name: ref for name, (_, ref) in CASES.items()}, PROB, with_state=True
    )
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name][0], theirs[name][0])


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("adafactor_factored", "adafactor_not_factored"),
        ("adafactor_factored", "adafactor_clip_2"),
        ("adafactor_factored", "adafactor_default"),
        ("factored_rms", "factored_rms_offset"),
    ],
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a][0], theirs[b][0])


def test_factored_state_holds_row_and_column_statistics(runs):
    """Factored leaves keep one statistic per row and per column (the two largest axes), the
    others the full second moment, as Optax's; unused fields are scalars (Optax: shape (1,))."""
    ours, theirs = runs
    state = og.tree.get(ours["factored_rms"][1], "0")
    ref = theirs["factored_rms"][1][0]
    # (4, 5): rows over axis 1 (the largest) -> (4,), columns -> (5,); (2, 3, 5): (2, 3), (2, 5).
    assert state.v_row["a"].shape == (4,) and state.v_col["a"].shape == (5,)
    assert state.v_row["c"]["d"].shape == (2, 3) and state.v_col["c"]["d"].shape == (2, 5)
    assert state.v["b"].shape == (7,) and state.v["a"].shape == ()
    for field in ("v_row", "v_col"):
        for mine, expected in zip(
            jax.tree.leaves(getattr(state, field)), jax.tree.leaves(getattr(ref, field))
        ):
            if mine.shape:
                np.testing.assert_allclose(mine, expected, rtol=1e-4)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_zero_gradients_stay_finite(dtype):
    """``epsilon=1e-30`` is 0 in float16: the statistics are computed in float32 so a zero
    gradient gives a zero update, not 0 * inf."""
    tx = og.adafactor(0.01, min_dim_size_to_factor=2, momentum=0.9)
    params = {"w": jnp.ones((3, 4), dtype), "b": jnp.ones(3, dtype)}
    zeros = jax.tree.map(jnp.zeros_like, params)
    state = tx.init(params)
    for _ in range(2):
        updates, state = jax.jit(tx.update)(zeros, state, params)
        for u in jax.tree.leaves(updates):
            assert u.dtype == dtype
            np.testing.assert_array_equal(u, 0.0)


def test_init_works_on_abstract_params():
    params = {"w": jax.ShapeDtypeStruct((3, 4), jnp.float32)}
    state = og.adafactor(0.01, min_dim_size_to_factor=2).init(params)
    assert og.tree.get(state, "v_row")["w"].shape == (3,)


BAD_ARGUMENTS = [
    (
        og.adafactor,
        dict(learning_rate=-1.0),
        "optgrad.adafactor(learning_rate=...) must be non-negative, got learning_rate=-1.0",
    ),
    (
        og.adafactor,
        dict(clipping_threshold=0.5),
        "optgrad.adafactor(clipping_threshold=...) must be >= 1, got clipping_threshold=0.5",
    ),
    (
        og.adafactor,
        dict(momentum=1.5),
        "optgrad.adafactor(momentum=...) must be in [0, 1], got momentum=1.5",
    ),
    (
        og.adafactor,
        dict(weight_decay=-1.0),
        "optgrad.adafactor(weight_decay=...) must be non-negative, got weight_decay=-1.0",
    ),
    (
        og.adafactor,
        dict(mask=MASK),
        "optgrad.adafactor(mask=...) selects leaves for weight decay: pass weight_decay too",
    ),
    (
        og.scale_by_factored_rms,
        dict(epsilon=-1.0),
        "optgrad.scale_by_factored_rms(epsilon=...) must be non-negative, got epsilon=-1.0",
    ),
    (
        og.scale_by_param_block_rms,
        dict(min_scale=-1.0),
        "optgrad.scale_by_param_block_rms(min_scale=...) must be non-negative, got min_scale=-1.0",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def test_min_dim_size_to_factor_must_be_an_int():
    message = "optgrad.scale_by_factored_rms(min_dim_size_to_factor=...) must be an int, got 2.5"
    with pytest.raises(TypeError, match=re.escape(message)):
        og.scale_by_factored_rms(min_dim_size_to_factor=2.5)
