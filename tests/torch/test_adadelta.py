"""``optgrad.torch.Adadelta`` against ``torch.optim.Adadelta``."""

from __future__ import annotations

import numpy as np
import torch

import optgrad as og
from tests._oracle import assert_distinguishable, run_numpy
from tests.torch import _compare

CONFIGS = [
    {"lr": 0.5},
    {"lr": 1.0, "rho": 0.8, "eps": 1e-4},
    {"lr": 1.0, "rho": 0.95, "eps": 1e-3, "weight_decay": 0.1},
    {"lr": 0.5, "eps": 1e-3, "weight_decay": 0.1, "maximize": True},
]


def test_trajectories_match_torch(torch_runner):
    ours = _compare.check_against_torch(
        og.torch.Adadelta, torch.optim.Adadelta, CONFIGS, torch_runner
    )

    # A plausible mistake: eps outside the roots, sqrt(u) / (sqrt(v) + eps).
    def wrong(g, theta, t, state):
        rho, eps = 0.8, 1e-4
        v = state["v"] = rho * state.get("v", 0.0) + (1 - rho) * g * g
        u = state.get("u", 0.0)
        delta = np.sqrt(u) / (np.sqrt(v) + eps) * g
        state["u"] = rho * u + (1 - rho) * delta * delta
        return -delta

    prob = _compare.problems()[False]
    assert_distinguishable(ours[_compare.label(CONFIGS[1])], run_numpy(wrong, prob))


def test_signature_matches_torch():
    _compare.check_signature(og.torch.Adadelta, torch.optim.Adadelta)


def test_hyperparameters_are_held_under_torch_names():
    tx = og.torch.Adadelta()
    _compare.check_hyperparams(tx, {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0})
    _compare.check_flags_accepted(og.torch.Adadelta, {"foreach", "capturable", "differentiable"})


def test_bad_arguments_are_refused_when_built():
    _compare.check_errors(
        [
            (
                lambda: og.torch.Adadelta(lr=-1.0),
                ValueError,
                r"Adadelta\(lr=\.\.\.\) must be non-neg",
            ),
            (
                lambda: og.torch.Adadelta(rho=1.5),
                ValueError,
                r"optgrad\.torch\.Adadelta\(rho=\.\.\.\) must be in \[0, 1\], got rho=1\.5",
            ),
            (lambda: og.torch.Adadelta(eps=-1.0), ValueError, r"Adadelta\(eps=\.\.\.\) must be"),
            (
                lambda: og.torch.Adadelta(weight_decay=-0.1),
                ValueError,
                r"Adadelta\(weight_decay=\.\.\.\) must be non-negative",
            ),
        ]
    )
