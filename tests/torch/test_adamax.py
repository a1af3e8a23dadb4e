"""``optgrad.torch.Adamax`` against ``torch.optim.Adamax``."""

from __future__ import annotations

import numpy as np
import torch

import optgrad as og
from tests._oracle import assert_distinguishable, run_numpy
from tests.torch import _compare

CONFIGS = [
    {"lr": 0.05},
    {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-3},
    {"lr": 0.05, "betas": (0.8, 0.95), "weight_decay": 0.1},
    {"lr": 0.05, "weight_decay": 0.1, "maximize": True},
]


def test_trajectories_match_torch(torch_runner):
    ours = _compare.check_against_torch(og.torch.Adamax, torch.optim.Adamax, CONFIGS, torch_runner)

    # A plausible mistake: no bias correction of the first moment.
    def wrong(g, theta, t, state):
        m = state["m"] = 0.9 * state.get("m", 0.0) + 0.1 * g
        u = state["u"] = np.maximum(0.999 * state.get("u", 0.0), np.abs(g) + 1e-8)
        return -0.05 * m / u

    prob = _compare.problems()[False]
    assert_distinguishable(ours[_compare.label(CONFIGS[0])], run_numpy(wrong, prob))


def test_signature_matches_torch():
    _compare.check_signature(og.torch.Adamax, torch.optim.Adamax)


def test_hyperparameters_are_held_under_torch_names():
    expected = {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    _compare.check_hyperparams(og.torch.Adamax(), expected)
    _compare.check_flags_accepted(og.torch.Adamax, {"foreach", "capturable", "differentiable"})


def test_bad_arguments_are_refused_when_built():
    _compare.check_errors(
        [
            (lambda: og.torch.Adamax(lr=-1.0), ValueError, r"Adamax\(lr=\.\.\.\) must be non-neg"),
            (
                lambda: og.torch.Adamax(betas=(0.9, 1.0)),
                ValueError,
                r"optgrad\.torch\.Adamax\(betas=\.\.\.\) must be in \[0, 1\), got betas\[1\]=1\.0",
            ),
            (
                lambda: og.torch.Adamax(betas=0.9),
                ValueError,
                r"Adamax\(betas=\.\.\.\) must be a pair",
            ),
            (
                lambda: og.torch.Adamax(eps=-1.0),
                ValueError,
                r"Adamax\(eps=\.\.\.\) must be non-neg",
            ),
            (
                lambda: og.torch.Adamax(weight_decay=-1.0),
                ValueError,
                r"Adamax\(weight_decay=\.\.\.\) must be non-negative",
            ),
        ]
    )
