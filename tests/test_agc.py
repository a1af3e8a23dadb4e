"""``adaptive_grad_clip`` against Optax 0.2.8 (float64) over 120 steps on leaves of every rank
AGC distinguishes, against a float64 NumPy reference of one step (Brock et al. 2021, sec. 4.1),
and sharded over a named axis."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests import _oracle as oracle

SHAPES = {
    "vec": (7,),
    "squeezable": (1, 6, 1),
    "dense": (4, 5),
    "heads": (3, 2, 4),
    "conv": (2, 2, 3, 4),
    "conv3d": (2, 1, 2, 3, 2),
}
PROB = oracle.problem(seed=11, shapes=SHAPES)
LR, CLIP = 0.05, 2.0

CASES = {
    "none": (og.scale(-LR), optax.scale(-LR)),
    "agc": (
        og.chain(og.adaptive_grad_clip(CLIP), og.scale(-LR)),
        optax.chain(optax.adaptive_grad_clip(CLIP), optax.scale(-LR)),
    ),
    "agc_eps": (
        og.chain(og.adaptive_grad_clip(CLIP, eps=0.5), og.scale(-LR)),
        optax.chain(optax.adaptive_grad_clip(CLIP, eps=0.5), optax.scale(-LR)),
    ),
    "agc_axis0_momentum": (
        og.chain(og.adaptive_grad_clip(CLIP, axis=0), og.trace(0.8), og.scale(-LR)),
        optax.chain(optax.adaptive_grad_clip(CLIP, axis=0), optax.trace(0.8), optax.scale(-LR)),
    ),
}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many({n: tx for n, (tx, _) in CASES.items()}, PROB, with_state=True)
    theirs = oracle.run_optax64({n: ref for n, (_, ref) in CASES.items()}, PROB)
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name][0], theirs[name])


def test_clipping_binds_and_the_units_matter(runs):
    ours, theirs = runs
    oracle.assert_distinguishable(theirs["none"], theirs["agc"])
    oracle.assert_distinguishable(theirs["agc"], theirs["agc_eps"])
    # per-unit norms (the default) versus one axis for every leaf
    ref = oracle.run_optax64(
        {"axis0": optax.chain(optax.adaptive_grad_clip(CLIP, axis=0), optax.scale(-LR))}, PROB
    )
    oracle.assert_distinguishable(theirs["agc"], ref["axis0"])
    # over the run, the bound binds for some units at some steps and not for others
    traj = theirs["agc"]
    noise = np.concatenate([x.reshape(PROB.steps, -1) for x in jax.tree.leaves(PROB.noise)], 1)
    grads = PROB.flat(PROB.a) * traj[:-1] + noise
    fractions = [numpy_agc(unflat(g), unflat(w), CLIP, 1e-3)[3] for g, w in zip(grads, traj)]
    assert 0.1 < np.mean(fractions) < 0.9, np.mean(fractions)
    last = float(og.tree.get(ours["agc"][1], "clipped_fraction"))
    np.testing.assert_allclose(last, fractions[-1], atol=1e-6)


def unflat(vector):
    names = sorted(SHAPES)
    sizes = [int(np.prod(SHAPES[k])) for k in names]
    parts = np.split(vector, np.cumsum(sizes)[:-1])
    return {k: p.reshape(SHAPES[k]) for k, p in zip(names, parts)}


# ---- one step against NumPy -----------------------------------------------------------------

UNIT_AXES = {"vec": None, "squeezable": None, "dense": (0,), "heads": (0,), "conv": (0, 1, 2),
             "conv3d": (0, 1, 2, 3)}  # fmt: skip


def numpy_agc(grads, params, clipping, eps):
    out, sq, ratios, clipped, units = {}, 0.0, [], 0, 0
    for name, g in grads.items():
        w = params[name]
        axes = UNIT_AXES[name]
        g_norm = np.sqrt(np.sum(g**2, axis=axes, keepdims=True))
        w_norm = np.maximum(np.sqrt(np.sum(w**2, axis=axes, keepdims=True)), eps)
        limit = clipping * w_norm
        out[name] = np.where(g_norm < limit, g, g * limit / np.maximum(g_norm, 1e-6))
        sq += np.sum(g**2)
        ratios.append(np.max(g_norm / w_norm))
        clipped += np.sum(g_norm > limit)
        units += g_norm.size
    return out, np.sqrt(sq), max(ratios), clipped / units


def test_one_step_matches_numpy():
    rng = np.random.default_rng(0)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    params["vec"] *= 0.0  # zero weights: the eps floor decides
    grads = {k: rng.normal(size=s) * rng.uniform(0.1, 2.0) for k, s in SHAPES.items()}
    f32 = lambda t: jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), t)  # noqa: E731
    tx = og.adaptive_grad_clip(0.5, eps=1e-2)
    updates, state = jax.jit(tx.update)(f32(grads), tx.init(f32(params)), f32(params))
    expected, norm, ratio, fraction = numpy_agc(grads, params, 0.5, 1e-2)
    for k in SHAPES:
        np.testing.assert_allclose(updates[k], expected[k], rtol=2e-6, atol=1e-7, err_msg=k)
    np.testing.assert_allclose(state.global_norm, norm, rtol=1e-6)
    np.testing.assert_allclose(state.max_ratio, ratio, rtol=1e-6)
    np.testing.assert_allclose(state.clipped_fraction, fraction, rtol=1e-6)
    assert 0 < fraction < 1


def test_axis_name_sums_unit_norms_over_shards():
    """A kernel split by input rows and a vector split in pieces: the same as unsharded."""
    rng = np.random.default_rng(1)
    params = {"k": jnp.asarray(rng.normal(size=(8, 3)), jnp.float32),
              "v": jnp.asarray(rng.normal(size=8), jnp.float32)}  # fmt: skip
    grads = jax.tree.map(lambda p: 0.6 * p + jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
    tx = og.adaptive_grad_clip(0.8)
    whole, whole_state = jax.jit(tx.update)(grads, tx.init(params), params)
    sharded_tx = og.adaptive_grad_clip(0.8, axis_name="d")

    def shards(t):
        return jax.tree.map(lambda x: x.reshape(4, 2, *x.shape[1:]), t)

    out, state = jax.vmap(lambda g, p: sharded_tx.update(g, sharded_tx.init(p), p), axis_name="d")(
        shards(grads), shards(params)
    )
    for k in params:
        np.testing.assert_allclose(out[k].reshape(whole[k].shape), whole[k], rtol=1e-6)
    np.testing.assert_allclose(state.global_norm, np.full(4, whole_state.global_norm), rtol=1e-6)
    assert 0 < float(whole_state.clipped_fraction) < 1
    # without the collective each shard would clip against its own part: the test can tell
    local = jax.jit(jax.vmap(lambda g, p: tx.update(g, tx.init(p), p)[0]))(
        shards(grads), shards(params)
    )
    assert not np.allclose(local["k"].reshape(8, 3), whole["k"])


def test_bf16_updates_keep_their_dtype():
    params = {"w": jnp.ones((4, 3), jnp.bfloat16)}
    grads = {"w": jnp.full((4, 3), 5.0, jnp.bfloat16)}
    tx = og.adaptive_grad_clip(0.1)
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    assert updates["w"].dtype == jnp.bfloat16 and state.global_norm.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(updates["w"], np.float32), 0.1, rtol=1e-2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(clipping=-1.0), "optgrad.adaptive_grad_clip(clipping=...) must be non-negative, "
                              "got clipping=-1.0"),
        (dict(clipping=0.1, eps=float("nan")), "optgrad.adaptive_grad_clip(eps=...) must be "
                                               "non-negative, got eps=nan"),
        (dict(clipping=0.1, axis=[0]), "optgrad.adaptive_grad_clip(axis=...) must be None, an int "
                                       "or a tuple of ints, got [0]"),
    ],
)  # fmt: skip
def test_bad_arguments_are_rejected_when_built(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        og.adaptive_grad_clip(**kwargs)


def test_update_errors_name_the_problem():
    tx = og.adaptive_grad_clip(0.1)
    with pytest.raises(ValueError, match=re.escape("needs the params")):
        tx.update({"w": jnp.ones(2)}, tx.init(None))
    six = jnp.ones((2,) * 6)
    with pytest.raises(ValueError, match=re.escape("got a leaf of shape (2, 2, 2, 2, 2, 2)")):
        tx.update(six, tx.init(six), six)
