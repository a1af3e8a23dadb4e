"""``optgrad.torch.clip_grad_norm`` / ``clip_grad_value`` against ``torch.nn.utils``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optgrad as og
import optgrad.torch  # `og.torch`, until the facade imports it
from tests._oracle import assert_trajectories_close, problem, run

SHAPES = {"a": (4, 5), "b": (7,), "c": (2, 3, 5)}


def _grads(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return {k: (scale * rng.standard_normal(s)).astype(np.float32) for k, s in SHAPES.items()}


def _torch_clip(grads, clip, *args, **kwargs):
    """Runs ``clip(params, *args, **kwargs)`` on ``grads``; returns the new grads and the result."""
    params = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads.values()]
    for p, g in zip(params, grads.values(), strict=True):
        p.grad = torch.tensor(g)
    result = clip(params, *args, **kwargs)
    return {k: p.grad.numpy() for k, p in zip(grads, params, strict=True)}, result


def _ours(tx, grads):
    updates, state = jax.jit(tx.update)(jax.tree.map(jnp.asarray, grads), tx.init(grads))
    return jax.tree.map(np.asarray, updates), state


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, float("inf"), "inf"])
@pytest.mark.parametrize("ratio", [0.3, 1.0, 3.0], ids=["clipped", "at_norm", "unclipped"])
def test_clip_grad_norm_matches_torch(norm_type, ratio):
    # A small total norm makes torch's +1e-6 visible (a 1e-4 relative change at ratio=1).
    grads = _grads(0, scale=0.002)
    total = float(
        torch.nn.utils.get_total_norm([torch.tensor(g) for g in grads.values()], norm_type)
    )
    max_norm = ratio * total
    expected, expected_total = _torch_clip(
        grads, torch.nn.utils.clip_grad_norm_, max_norm, norm_type
    )
    actual, state = _ours(og.torch.clip_grad_norm(max_norm, norm_type), grads)
    np.testing.assert_allclose(og.tree.get(state, "total_norm"), expected_total, rtol=1e-6)
    for k in grads:
        np.testing.assert_allclose(actual[k], expected[k], rtol=1e-6, atol=0, err_msg=k)
    if ratio > 1:  # coef clamped to 1: the gradients pass bit for bit
        for k in grads:
            np.testing.assert_array_equal(actual[k], grads[k])
    if ratio == 1.0:  # always multiplied, even at the boundary (Optax would not touch them)
        assert not np.allclose(actual["a"], grads["a"], rtol=1e-5, atol=0)


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_clip_grad_norm_nonfinite(bad):
    grads = _grads(1)
    grads["b"][3] = bad
    # torch raises with error_if_nonfinite=True ...
    with pytest.raises(RuntimeError, match="non-finite"):
        _torch_clip(grads, torch.nn.utils.clip_grad_norm_, 1.0, error_if_nonfinite=True)
    # ... and without it clips anyway: zeros where finite, NaN at the inf (all NaN for a NaN).
    expected, expected_total = _torch_clip(grads, torch.nn.utils.clip_grad_norm_, 1.0)
    actual, state = _ours(og.torch.clip_grad_norm(1.0), grads)
    np.testing.assert_array_equal(og.tree.get(state, "total_norm"), expected_total)
    for k in grads:
        np.testing.assert_array_equal(actual[k], expected[k])
    assert int(og.tree.get(state, "nonfinite")) == 0  # not counted unless asked

    # A jitted step cannot raise: with error_if_nonfinite=True the state counts such updates.
    tx = og.torch.clip_grad_norm(1.0, error_if_nonfinite=True)
    update = jax.jit(tx.update)
    state = tx.init(grads)
    counts = []
    for g in (_grads(2), grads, _grads(3), grads):
        clipped, state = update(g, state)
        counts.append(int(og.tree.get(state, "nonfinite")))
    assert counts == [0, 1, 1, 2]
    np.testing.assert_array_equal(clipped["a"], expected["a"])  # clipped as without the flag


def test_clip_grad_value_matches_torch():
    grads = _grads(4, scale=3.0)
    expected, _ = _torch_clip(grads, torch.nn.utils.clip_grad_value_, 1.5)
    actual, _ = _ours(og.torch.clip_grad_value(1.5), grads)
    for k in grads:
        np.testing.assert_array_equal(actual[k], expected[k])


def test_clipped_training_matches_torch(torch_runner):
    """``chain(clip_grad_norm, SGD)`` is torch's loop ``clip_grad_norm_(...); opt.step()``;
    the norm torch returns is the one held in the state, step by step."""
    prob = problem(seed=2)
    torch_norms = []

    def clip(opt, t):
        params = opt.param_groups[0]["params"]
        torch_norms.append(float(torch.nn.utils.clip_grad_norm_(params, 3.0, norm_type=3.0)))

    expected = torch_runner(
        lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
        prob,
        before_step=clip,
    )
    tx = og.chain(og.torch.clip_grad_norm(3.0, norm_type=3.0), og.torch.SGD(lr=0.05, momentum=0.9))
    assert_trajectories_close(run(tx, prob), expected)
    assert min(torch_norms) < 3.0 < max(torch_norms)  # the clip both fired and did not

    a = jax.tree.map(jnp.float32, prob.a)
    theta = jax.tree.map(jnp.float32, prob.theta0)
    noise = jax.tree.map(jnp.float32, prob.noise)

    @jax.jit
    def step(theta, state, n_t):
        g = jax.tree.map(lambda a_, th, n_: a_ * th + n_, a, theta, n_t)
        updates, state = tx.update(g, state, theta)
        return og.apply_updates(theta, updates), state

    state, norms = tx.init(theta), []
    for t in range(prob.steps):
        theta, state = step(theta, state, jax.tree.map(lambda x, t=t: x[t], noise))
        norms.append(float(og.tree.get(state, "total_norm")))
    np.testing.assert_allclose(norms, torch_norms, rtol=1e-5)


@pytest.mark.parametrize(
    "build, error, message",
    [
        (
            lambda: og.torch.clip_grad_norm(-1.0),
            ValueError,
            r"clip_grad_norm\(max_norm=\.\.\.\) must be non-negative, got max_norm=-1\.0",
        ),
        (
            lambda: og.torch.clip_grad_norm(1.0, norm_type=0),
            ValueError,
            r"clip_grad_norm\(norm_type=\.\.\.\) must be positive",
        ),
        (
            lambda: og.torch.clip_grad_norm(1.0, norm_type="fro"),
            ValueError,
            r"must be a positive number or 'inf', got norm_type='fro'",
        ),
        (
            lambda: og.torch.clip_grad_norm(lambda c: 1.0),
            TypeError,
            r"clip_grad_norm\(max_norm=\.\.\.\) must be a number",
        ),
        (
            lambda: og.torch.clip_grad_value(-0.5),
            ValueError,
            r"clip_grad_value\(clip_value=\.\.\.\) must be non-negative",
        ),
    ],
)
def test_bad_arguments_are_refused_when_built(build, error, message):
    with pytest.raises(error, match=message):
        build()
