"""``optgrad.torch.Rprop`` against ``torch.optim.Rprop``."""

from __future__ import annotations

import jax.numpy as jnp
import optax
import torch

import optgrad as og
from tests._oracle import assert_distinguishable, run_many
from tests.torch import _compare

CONFIGS = [
    {"lr": 0.01},
    {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2)},
    {"lr": 0.02, "maximize": True},
]


def test_trajectories_match_torch(torch_runner):
    ours = _compare.check_against_torch(og.torch.Rprop, torch.optim.Rprop, CONFIGS, torch_runner)
    # Optax 0.2.8's rprop returns the previous step's update (its first update is 0).
    prob = _compare.problems()[False]
    optax_rprop = run_many({"optax": optax.rprop(0.01)}, prob)["optax"]
    assert_distinguishable(ours[_compare.label(CONFIGS[0])], optax_rprop)


def test_lr_is_only_the_initial_step_size():
    tx = og.torch.Rprop(lr=0.1)
    params, grads = {"w": jnp.zeros(2)}, {"w": jnp.array([1.0, -1.0])}
    state = og.tree.set(tx.init(params), lr=0.2)  # before the first step: used
    updates, state = tx.update(grads, state, params)
    assert updates["w"].tolist() == [-0.20000000298023224, 0.20000000298023224]
    state = og.tree.set(state, lr=5.0)  # after it: the step sizes live on in the state
    updates, state = tx.update(grads, state, params)
    assert [round(x, 6) for x in updates["w"].tolist()] == [-0.24, 0.24]


def test_signature_matches_torch():
    _compare.check_signature(og.torch.Rprop, torch.optim.Rprop)


def test_hyperparameters_are_held_under_torch_names():
    expected = {"lr": 1e-2, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0)}
    _compare.check_hyperparams(og.torch.Rprop(), expected)
    _compare.check_flags_accepted(og.torch.Rprop, {"foreach", "capturable", "differentiable"})


def test_bad_arguments_are_refused_when_built():
    rule = r"optgrad\.torch\.Rprop\(etas=\.\.\.\) must satisfy 0 < etaminus < 1 < etaplus"
    _compare.check_errors(
        [
            (lambda: og.torch.Rprop(lr=-1.0), ValueError, r"Rprop\(lr=\.\.\.\) must be non-neg"),
            (
                lambda: og.torch.Rprop(etas=(1.5, 1.2)),
                ValueError,
                rule + r", got etas=\(1\.5, 1\.2\)",
            ),
            (lambda: og.torch.Rprop(etas=(0.5, 0.9)), ValueError, rule),
            (lambda: og.torch.Rprop(etas=0.5), ValueError, r"Rprop\(etas=\.\.\.\) must be a pair"),
            (
                lambda: og.torch.Rprop(step_sizes=(-1.0, 50)),
                ValueError,
                r"Rprop\(step_sizes\[0\]=\.\.\.\) must be non-negative",
            ),
        ]
    )
    for etas in [(1.5, 1.2), (0.5, 0.9)]:  # torch refuses the same
        try:
            torch.optim.Rprop([torch.nn.Parameter(torch.zeros(1))], etas=etas)
        except ValueError:
            continue
        raise AssertionError(f"torch accepted etas={etas}")
