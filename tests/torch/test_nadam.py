"""``optgrad.torch.NAdam`` against ``torch.optim.NAdam`` (momentum schedule, NAdamW)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import torch

import optgrad as og
from tests._oracle import assert_distinguishable, run_many
from tests.torch import _compare

CONFIGS = [
    {"lr": 0.05},
    {"lr": 0.05, "betas": (0.8, 0.95), "momentum_decay": 0.05},
    {"lr": 0.05, "betas": (0.8, 0.95), "weight_decay": 0.1},
    {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
    {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-3, "maximize": True},
    {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
]


def test_trajectories_match_torch(torch_runner):
    ours = _compare.check_against_torch(og.torch.NAdam, torch.optim.NAdam, CONFIGS, torch_runner)
    # Optax's NAdam (constant momentum, no running product) is the plausible mistake; coupled
    # and decoupled decay must differ too.
    prob = _compare.problems()[False]
    optax_like = run_many({"nadam": og.nadam(0.05)}, prob)["nadam"]
    assert_distinguishable(ours[_compare.label(CONFIGS[0])], optax_like)
    assert_distinguishable(ours[_compare.label(CONFIGS[3])], ours[_compare.label(CONFIGS[0])])


def test_mu_product_is_the_running_product_of_the_momentum_schedule():
    tx = og.torch.NAdam(lr=0.1, betas=(0.9, 0.999), momentum_decay=0.004)
    params = {"w": jnp.zeros(3)}
    state = tx.init(params)
    assert float(og.tree.get(state, "mu_product")) == 1.0
    for _ in range(5):
        _, state = tx.update({"w": jnp.ones(3)}, state, params)
    t = np.arange(1, 6)
    expected = np.prod(0.9 * (1 - 0.5 * 0.96 ** (t * 0.004)))
    np.testing.assert_allclose(float(og.tree.get(state, "mu_product")), expected, rtol=1e-6)


def test_signature_matches_torch():
    _compare.check_signature(og.torch.NAdam, torch.optim.NAdam)


def test_hyperparameters_are_held_under_torch_names():
    expected = {
        "lr": 2e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum_decay": 4e-3,
    }
    _compare.check_hyperparams(og.torch.NAdam(), expected)
    _compare.check_flags_accepted(og.torch.NAdam, {"foreach", "capturable", "differentiable"})


def test_bad_arguments_are_refused_when_built():
    _compare.check_errors(
        [
            (lambda: og.torch.NAdam(lr=-1.0), ValueError, r"NAdam\(lr=\.\.\.\) must be non-neg"),
            (
                lambda: og.torch.NAdam(betas=(1.5, 0.9)),
                ValueError,
                r"optgrad\.torch\.NAdam\(betas=\.\.\.\) must be in \[0, 1\), got betas\[0\]=1\.5",
            ),
            (lambda: og.torch.NAdam(eps=-1.0), ValueError, r"NAdam\(eps=\.\.\.\) must be non-neg"),
            (
                lambda: og.torch.NAdam(momentum_decay=-1.0),
                ValueError,
                r"NAdam\(momentum_decay=\.\.\.\) must be non-negative, got momentum_decay=-1\.0",
            ),
            (
                lambda: og.torch.NAdam(weight_decay=-1.0),
                ValueError,
                r"NAdam\(weight_decay=\.\.\.\) must be non-negative",
            ),
        ]
    )
