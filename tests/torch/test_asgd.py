"""``optgrad.torch.ASGD`` against ``torch.optim.ASGD`` (eta/mu schedules, the average ``ax``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch

import optgrad as og
from tests._oracle import assert_distinguishable, assert_trajectories_close, run_many, run_numpy
from tests.torch import _compare

CONFIGS = [
    {"lr": 0.05},
    {"lr": 0.1, "lambd": 0.05, "alpha": 0.6, "t0": 30},
    {"lr": 0.1, "lambd": 0.01, "t0": 10, "weight_decay": 0.1},
    {"lr": 0.1, "lambd": 0.05, "t0": 20, "maximize": True},
]


def _ax_of_torch(torch_runner, kwargs, prob):
    """torch's trajectory and its final ``ax`` (concatenated like the trajectory)."""
    holder = []

    def make(params):
        holder.append(torch.optim.ASGD(params, **kwargs))
        return holder[0]

    traj = torch_runner(make, prob)
    opt = holder[0]
    ax = np.concatenate(
        [
            opt.state[p]["ax"].numpy().astype(np.float64).ravel()
            for p in opt.param_groups[0]["params"]
        ]
    )
    return traj, ax


def test_trajectories_and_averages_match_torch(torch_runner):
    probs = _compare.problems()
    outs = {}
    for maximize in (False, True):
        group = {
            _compare.label(k): og.torch.ASGD(**k)
            for k in CONFIGS
            if bool(k.get("maximize")) == maximize
        }
        outs.update(run_many(group, probs[maximize], with_state=True))
    for kwargs in CONFIGS:
        prob = probs[bool(kwargs.get("maximize"))]
        expected, expected_ax = _ax_of_torch(torch_runner, kwargs, prob)
        traj, state = outs[_compare.label(kwargs)]
        assert_trajectories_close(traj, expected)
        ax = prob.flat(og.tree.get(state, "ax"))
        np.testing.assert_allclose(
            ax, expected_ax, rtol=1e-5, atol=1e-6 * np.max(np.abs(expected_ax))
        )
    # Averaging is on from t0 = 30: the average differs from the last iterate.
    traj, state = outs[_compare.label(CONFIGS[1])]
    assert np.max(np.abs(prob.flat(og.tree.get(state, "ax")) - traj[-1])) > 1e-2

    # A plausible mistake: eta computed for the current step (lr / (1 + lambd lr t)^alpha)
    # instead of the one computed at the end of the previous step.
    def wrong(g, theta, t, state):
        eta = 0.1 / (1 + 0.05 * 0.1 * t) ** 0.6
        return -(0.05 * eta) * theta - eta * g

    assert_distinguishable(traj, run_numpy(wrong, probs[False]))


def test_a_scheduled_lr_reaches_eta_one_step_late_as_in_torch(torch_runner):
    """torch computes eta at the end of a step from that step's lr."""
    prob = _compare.problems()[False]
    kwargs = {"lambd": 0.05, "t0": 40}
    schedulers = []

    def make(params):
        opt = torch.optim.ASGD(params, lr=0.1, **kwargs)
        schedulers.append(torch.optim.lr_scheduler.StepLR(opt, step_size=25, gamma=0.5))
        return opt

    expected = torch_runner(make, prob, after_step=lambda opt, t: schedulers[0].step())
    lr = og.torch.lr_scheduler.StepLR(0.1, step_size=25, gamma=0.5)
    actual = run_many({"asgd": og.torch.ASGD(lr, **kwargs)}, prob)["asgd"]
    assert_trajectories_close(actual, expected)


def test_float16_zero_gradients_stay_finite():
    params = {"w": jnp.ones((2, 3), jnp.float16)}
    tx = og.torch.ASGD(lr=0.1, t0=0.0)
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update(jax.tree.map(jnp.zeros_like, params), state, params)
        params = og.apply_updates(params, updates)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves((params, state)))


def test_signature_matches_torch():
    _compare.check_signature(og.torch.ASGD, torch.optim.ASGD)


def test_hyperparameters_are_held_under_torch_names():
    expected = {"lr": 1e-2, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6, "weight_decay": 0.0}
    _compare.check_hyperparams(og.torch.ASGD(), expected)
    _compare.check_flags_accepted(og.torch.ASGD, {"foreach", "capturable", "differentiable"})
    state = og.torch.ASGD().init({"w": jnp.zeros(3)})
    assert float(og.tree.get(state, "eta")) == np.float32(1e-2)
    assert float(og.tree.get(state, "mu")) == 1.0


def test_bad_arguments_are_refused_when_built():
    _compare.check_errors(
        [
            (
                lambda: og.torch.ASGD(lr=-1.0),
                ValueError,
                r"optgrad\.torch\.ASGD\(lr=\.\.\.\) must be non-negative, got lr=-1\.0",
            ),
            (
                lambda: og.torch.ASGD(weight_decay=-1.0),
                ValueError,
                r"ASGD\(weight_decay=\.\.\.\) must be non-neg",
            ),
            (
                lambda: og.torch.ASGD(lambd=-1.0),
                ValueError,
                r"ASGD\(lambd=\.\.\.\) must be non-neg",
            ),
        ]
    )
