"""``optgrad.torch.Muon`` against ``torch.optim.Muon``.

torch runs the Newton-Schulz iteration in bfloat16. optgrad rounds every product where torch
rounds it and agrees bit for bit on most steps; but a float32 ulp of difference in an input
(torch holds hyperparameters in float64 and optgrad in float32; XLA and torch sum a matrix
product in different orders) now and then flips a bfloat16 rounding, which moves that step by
about ``lr * 2**-8`` - beyond the float32 tolerance - and in a free-running trajectory the flip
then cascades. So the exact check is made step by step: every one of 120 steps starts from
torch's own parameters and momentum buffer and must land on torch's next parameters within
the float32 tolerance, except for a few steps (flips) that must stay within a few bfloat16
ulps. The free-running 120-step trajectories are compared with a loose tolerance (1e-2 of
the scale), which a wrong formula exceeds by far.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optgrad as og
from tests._oracle import (
    ATOL_REL,
    RTOL,
    assert_distinguishable,
    assert_trajectories_close,
    run_many,
    run_numpy,
)
from tests.torch import _compare

SHAPES = {"a": (4, 5), "b": (7, 3), "c": {"d": (6, 6)}}
LEAF_SHAPES = [(4, 5), (7, 3), (6, 6)]
CONFIGS = [
    {"lr": 0.02},  # torch's defaults otherwise
    {"lr": 0.02, "momentum": 0.9, "nesterov": False},
    {"lr": 0.03, "weight_decay": 0.05, "adjust_lr_fn": "match_rms_adamw"},
    {"lr": 0.02, "momentum": 0.8, "adjust_lr_fn": "original", "weight_decay": 0.2},
    {"lr": 0.05, "ns_coefficients": (2.0, -1.5, 0.5), "ns_steps": 3, "eps": 1e-3},
]


def _torch_steps(kwargs, prob):
    """torch's parameters, momentum buffers and gradients before every step, and its
    parameters after it, each as a list of per-step trees (leaves in ``LEAF_SHAPES`` order)."""
    params = [
        torch.nn.Parameter(torch.tensor(np.asarray(x, np.float32)))
        for x in jax.tree.leaves(prob.theta0)
    ]
    a = [torch.tensor(np.asarray(x, np.float32)) for x in jax.tree.leaves(prob.a)]
    noise = [torch.tensor(np.asarray(x, np.float32)) for x in jax.tree.leaves(prob.noise)]
    opt = torch.optim.Muon(params, **kwargs)
    record = {"theta": [], "buffer": [], "grad": [], "next": []}
    for t in range(prob.steps):
        with torch.no_grad():
            for p, a_, n in zip(params, a, noise):
                p.grad = a_ * p + n[t]
        record["theta"].append([p.detach().numpy().copy() for p in params])
        record["grad"].append([p.grad.numpy().copy() for p in params])
        record["buffer"].append(
            [
                opt.state[p]["momentum_buffer"].numpy().copy()
                if p in opt.state
                else np.zeros(p.shape, np.float32)
                for p in params
            ]
        )
        opt.step()
        record["next"].append([p.detach().numpy().copy() for p in params])
    return {
        k: [np.stack([step[i] for step in v]) for i in range(len(params))]
        for k, v in record.items()
    }


def _one_step_each(tx, record):
    """optgrad's next parameters from each of torch's states (one jitted, vmapped step)."""

    def one(theta, buffer, grad):
        state = og.tree.set(tx.init(theta), momentum_buffer=buffer)
        updates, _ = tx.update(grad, state, theta)
        return og.apply_updates(theta, updates)

    return jax.jit(jax.vmap(one))(record["theta"], record["buffer"], record["grad"])


@pytest.mark.parametrize("kwargs", CONFIGS, ids=_compare.label)
def test_every_step_matches_torch_from_torchs_state(kwargs):
    prob = _compare.problems(shapes=SHAPES)[False]
    record = _torch_steps(kwargs, prob)
    ours = _one_step_each(og.torch.Muon(**kwargs), record)
    scale = max(float(np.max(np.abs(x))) for x in record["next"])
    lr = kwargs["lr"]
    flips = set()
    for mine, theirs, shape in zip(ours, record["next"], LEAF_SHAPES):
        err = np.abs(np.asarray(mine, np.float64) - theirs)
        tol = ATOL_REL * scale + RTOL * np.abs(theirs)
        bad = np.any((err > tol).reshape(len(err), -1), axis=1)
        flips |= set(np.nonzero(bad)[0].tolist())
        ratio = (
            0.2 * np.sqrt(max(shape)) if kwargs.get("adjust_lr_fn") == "match_rms_adamw" else 1.5
        )
        assert np.max(err) <= lr * ratio * 2**-6, (shape, np.max(err))
    assert len(flips) <= 3, (
        f"{len(flips)} of 120 steps differ beyond float32 rounding: {sorted(flips)}"
    )


def _wrong(lr, mu, wd):
    """A plausible mistake, in float64: momentum as ``mu B + g`` with Nesterov ``g + mu B``
    (torch's docstring) and the exact orthogonalisation ``U V^T`` of the SVD."""
    sizes = [int(np.prod(s)) for s in LEAF_SHAPES]

    def step(g, theta, t, state):
        out, start = [], 0
        for i, (shape, size) in enumerate(zip(LEAF_SHAPES, sizes)):
            gi, ti = g[start : start + size].reshape(shape), theta[start : start + size]
            b = state[i] = mu * state.get(i, 0.0) + gi
            u, _, vt = np.linalg.svd(gi + mu * b, full_matrices=False)
            ratio = np.sqrt(max(1.0, shape[0] / shape[1]))
            out.append(-lr * wd * ti - lr * ratio * (u @ vt).ravel())
            start += size
        return np.concatenate(out)

    return step


def test_free_running_trajectories_follow_torch(torch_runner):
    prob = _compare.problems(shapes=SHAPES)[False]
    ours = run_many({_compare.label(k): og.torch.Muon(**k) for k in CONFIGS}, prob)
    for kwargs in CONFIGS:
        expected = torch_runner(lambda p, k=kwargs: torch.optim.Muon(p, **k), prob)
        assert_trajectories_close(ours[_compare.label(kwargs)], expected, rtol=0.0, atol_rel=1e-2)
    wrong = run_numpy(_wrong(0.02, 0.95, 0.1), prob)
    assert_distinguishable(ours[_compare.label(CONFIGS[0])], wrong, factor=1e5)  # > 1e-1


def test_non_matrix_parameters_are_refused_with_their_path_and_shape():
    tx = og.torch.Muon()
    params = {"layer": {"w": jnp.zeros((3, 4)), "b": jnp.zeros(4)}}
    with pytest.raises(
        ValueError,
        match=r"optgrad\.torch\.Muon optimizes 2-D parameters \(matrices\) only, but "
        r"params\['layer'\]\['b'\] has shape \(4,\)",
    ):
        tx.init(params)
    with pytest.raises(ValueError, match=r"params\['t'\] has shape \(2, 3, 4\)"):
        jax.eval_shape(tx.init, {"t": jax.ShapeDtypeStruct((2, 3, 4), jnp.float32)})
    state = tx.init({"w": jnp.zeros((3, 4))})
    with pytest.raises(ValueError, match=r"params\['w'\] has shape \(12,\)"):
        jax.jit(tx.update)({"w": jnp.zeros(12)}, state)
    with pytest.raises(
        TypeError, match=r"does not support complex parameters, got one at params\['w'\]"
    ):
        tx.init({"w": jnp.zeros((2, 2), jnp.complex64)})


def test_low_precision_and_zero_gradients_stay_finite_and_keep_dtypes():
    for dtype in (jnp.float16, jnp.bfloat16):
        params = {"w": jnp.ones((3, 4), dtype)}
        tx = og.torch.Muon(lr=0.02)
        state = tx.init(params)
        for _ in range(2):
            updates, state = jax.jit(tx.update)({"w": jnp.zeros((3, 4), dtype)}, state, params)
            params = og.apply_updates(params, updates)
        assert updates["w"].dtype == dtype and params["w"].dtype == dtype
        assert bool(jnp.all(jnp.isfinite(params["w"].astype(jnp.float32))))


def test_setting_a_hyperparameter_does_not_recompile():
    tx = og.torch.Muon(lr=0.02)
    params = {"w": jnp.ones((3, 4))}
    step = jax.jit(tx.update)
    state = tx.init(params)
    _, state = step({"w": jnp.ones((3, 4))}, state, params)
    _, state = step({"w": jnp.ones((3, 4))}, og.tree.set(state, lr=0.01, momentum=0.5), params)
    assert step._cache_size() == 1


def test_signature_matches_torch():
    _compare.check_signature(og.torch.Muon, torch.optim.Muon)


def test_hyperparameters_are_held_under_torch_names():
    expected = {
        "lr": 1e-3,
        "weight_decay": 0.1,
        "momentum": 0.95,
        "eps": 1e-7,
        "ns_coefficients": (3.4445, -4.775, 2.0315),
    }
    _compare.check_hyperparams(og.torch.Muon(), expected)


def test_bad_arguments_are_refused_when_built():
    _compare.check_errors(
        [
            (
                lambda: og.torch.Muon(lr=-1.0),
                ValueError,
                r"optgrad\.torch\.Muon\(lr=\.\.\.\) must be non-negative, got lr=-1\.0",
            ),
            (
                lambda: og.torch.Muon(momentum=-0.5),
                ValueError,
                r"Muon\(momentum=\.\.\.\) must be non-neg",
            ),
            (
                lambda: og.torch.Muon(weight_decay=-1.0),
                ValueError,
                r"Muon\(weight_decay=\.\.\.\) must be non-neg",
            ),
            (
                lambda: og.torch.Muon(adjust_lr_fn="rms"),
                ValueError,
                r"Muon\(adjust_lr_fn=\.\.\.\) must be one of None, 'original', "
                r"'match_rms_adamw', got adjust_lr_fn='rms'",
            ),
            (
                lambda: og.torch.Muon(ns_coefficients=(1.0, 2.0)),
                ValueError,
                r"Muon\(ns_coefficients=\.\.\.\) must be a triple",
            ),
            (
                lambda: og.torch.Muon(ns_steps=0),
                ValueError,
                r"Muon\(ns_steps=\.\.\.\) must be a positive integer",
            ),
            (
                lambda: og.torch.Muon(ns_steps=100),
                ValueError,
                r"Muon\(ns_steps=\.\.\.\) must be less than 100",
            ),
        ]
    )
    with pytest.raises(ValueError):  # torch refuses an unknown adjustment too
        torch.optim.Muon([torch.nn.Parameter(torch.zeros(2, 2))], adjust_lr_fn="rms")
