"""``optgrad.torch.RAdam`` against ``torch.optim.RAdam`` (rectification, RAdamW)."""

from __future__ import annotations

import jax.numpy as jnp
import torch

import optgrad as og
from tests._oracle import assert_distinguishable, run_many
from tests.torch import _compare

CONFIGS = [
    {"lr": 0.05},
    {"lr": 0.05, "betas": (0.8, 0.95)},
    {"lr": 0.05, "betas": (0.8, 0.95), "eps": 0.1, "weight_decay": 0.1},
    {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
    {"lr": 0.05, "betas": (0.8, 0.95), "maximize": True},
    {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
]


def test_trajectories_match_torch(torch_runner):
    ours = _compare.check_against_torch(og.torch.RAdam, torch.optim.RAdam, CONFIGS, torch_runner)
    # Without the rectification (and its warm-up of plain momentum) RAdam is Adam.
    prob = _compare.problems()[False]
    adam = run_many({"adam": og.torch.Adam(0.05, betas=(0.8, 0.95))}, prob)["adam"]
    assert_distinguishable(ours[_compare.label(CONFIGS[1])], adam)


def test_the_first_steps_are_plain_momentum_until_rho_exceeds_5():
    """With beta2 = 0.999, rho_t <= 5 for t <= 5 (rho_5 = 4.996): a constant gradient then
    moves by lr * g per step (bias-corrected momentum); the sixth step is rectified and
    normalised (about lr * r_6 with r_6 small)."""
    tx = og.torch.RAdam(lr=0.1)
    params = {"w": jnp.zeros(2)}
    state = tx.init(params)
    for t in range(6):
        updates, state = tx.update({"w": jnp.full(2, 3.0)}, state, params)
        if t < 5:
            assert abs(float(updates["w"][0]) + 0.3) < 1e-6, t
    assert abs(float(updates["w"][0]) + 0.3) > 0.1


def test_signature_matches_torch():
    _compare.check_signature(og.torch.RAdam, torch.optim.RAdam)


def test_hyperparameters_are_held_under_torch_names():
    expected = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    _compare.check_hyperparams(og.torch.RAdam(), expected)
    _compare.check_flags_accepted(og.torch.RAdam, {"foreach", "capturable", "differentiable"})


def test_bad_arguments_are_refused_when_built():
    _compare.check_errors(
        [
            (lambda: og.torch.RAdam(lr=-1.0), ValueError, r"RAdam\(lr=\.\.\.\) must be non-neg"),
            (
                lambda: og.torch.RAdam(betas=(0.9, -0.1)),
                ValueError,
                r"optgrad\.torch\.RAdam\(betas=\.\.\.\) must be in \[0, 1\), got betas\[1\]=-0\.1",
            ),
            (lambda: og.torch.RAdam(eps=-1.0), ValueError, r"RAdam\(eps=\.\.\.\) must be non-neg"),
            (
                lambda: og.torch.RAdam(weight_decay=-1.0),
                ValueError,
                r"RAdam\(weight_decay=\.\.\.\) must be non-negative",
            ),
        ]
    )
