"""``optgrad.torch``'s optimizers against the real ``torch.optim``, trajectory for trajectory.

Every configuration runs 120 steps of a noisy separable quadratic over a tree of three leaves
(``tests/_oracle.py``); the gradient depends on the current parameters, so any formula that
differs from torch's changes every later gradient. The same keyword arguments build both
optimizers: the names and their meaning are the same. Tolerance: ``|optgrad - torch| <=
1e-6 * max|theta| + 1e-5 * |theta|`` at every step (float32 rounding, including torch's
double-precision scalars and fused multiply-adds, stays a few times below it).
"""

from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optgrad as og
import optgrad.torch  # `og.torch`, until the facade imports it
from tests._oracle import assert_trajectories_close, problem, run

PAIRS = {
    "SGD": (lambda: og.torch.SGD, torch.optim.SGD),
    "Adam": (lambda: og.torch.Adam, torch.optim.Adam),
    "AdamW": (lambda: og.torch.AdamW, torch.optim.AdamW),
    "RMSprop": (lambda: og.torch.RMSprop, torch.optim.RMSprop),
    "Adagrad": (lambda: og.torch.Adagrad, torch.optim.Adagrad),
}

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1, "maximize": True}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-3}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.95), "amsgrad": True}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.95), "weight_decay": 0.1}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.95), "weight_decay": 0.1, "amsgrad": True}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.95), "weight_decay": 0.1, "maximize": True}),
    ("AdamW", {"lr": 0.05, "betas": (0.8, 0.95), "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.05, "betas": (0.8, 0.95), "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-2}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.8}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.8}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.8, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "maximize": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.1, "eps": 0.1}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1, "lr_decay": 0.01}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "maximize": True}),
]


def _id(config):
    name, kwargs = config
    return name + "-" + ",".join(f"{k}={v}" for k, v in kwargs.items())


def _problem(kwargs):
    # Ascent on a concave quadratic contracts like descent on a convex one.
    curvature = (-2.0, -0.2) if kwargs.get("maximize") else (0.2, 2.0)
    return problem(seed=1, curvature=curvature)


@pytest.mark.parametrize("config", CONFIGS, ids=_id)
def test_trajectory_matches_torch(config, torch_runner):
    name, kwargs = config
    ours, theirs = PAIRS[name]
    prob = _problem(kwargs)
    expected = torch_runner(lambda params: theirs(params, **kwargs), prob)
    assert_trajectories_close(run(ours()(**kwargs), prob), expected)


def _run_stepwise(tx, prob, names):
    """The trajectory of ``tx`` on ``prob`` with a jitted step in a Python loop, and the
    hyperparameters ``names`` read from the state after each update."""
    a = jax.tree.map(jnp.float32, prob.a)
    theta = jax.tree.map(jnp.float32, prob.theta0)
    noise = jax.tree.map(jnp.float32, prob.noise)

    @jax.jit
    def step(theta, state, n_t):
        g = jax.tree.map(lambda a_, th, n_: a_ * th + n_, a, theta, n_t)
        updates, state = tx.update(g, state, theta)
        return og.apply_updates(theta, updates), state

    state = tx.init(theta)
    traj, used = [prob.flat(theta)], {n: [] for n in names}
    for t in range(prob.steps):
        theta, state = step(theta, state, jax.tree.map(lambda x, t=t: x[t], noise))
        traj.append(prob.flat(theta))
        for n in names:
            used[n].append(np.asarray(og.tree.get(state, n)))
    return np.stack(traj).astype(np.float64), used


def _lambda(t):
    """A piecewise, decaying learning-rate factor (torch ``LambdaLR``'s ``lr_lambda``)."""
    return 0.5 ** (t // 25) * (1.0 + 0.5 * math.cos(t / 7))


def _schedules():
    """``(name, optgrad schedule of the update count, torch scheduler factory)``."""
    base = 0.05
    out = [
        (
            "LambdaLR",
            lambda count: base * 0.5 ** (count // 25) * (1.0 + 0.5 * jnp.cos(count / 7)),
            lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, _lambda),
        )
    ]
    out.append(
        (
            "StepLR",
            og.torch.lr_scheduler.StepLR(base, step_size=30, gamma=0.5),
            lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.5),
        )
    )
    return out


SCHEDULED = [
    # A changing lr is where torch's conventions show: it multiplies SGD's whole velocity,
    # RMSprop's buffer holds unscaled steps, Adagrad's lr_decay multiplies it.
    ("SGD", {"momentum": 0.9, "dampening": 0.1}),
    ("Adam", {"betas": (0.8, 0.95), "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RMSprop", {"alpha": 0.9, "momentum": 0.8, "centered": True}),
    ("Adagrad", {"lr_decay": 0.02}),
]


@pytest.mark.parametrize("schedule", _schedules(), ids=lambda s: s[0])
@pytest.mark.parametrize("config", SCHEDULED, ids=_id)
def test_lr_schedule_matches_torch_scheduler(config, schedule, torch_runner):
    name, kwargs = config
    ours, theirs = PAIRS[name]
    _, lr_schedule, make_scheduler = schedule
    prob = _problem(kwargs)
    torch_lrs, schedulers = [], []

    def make(params):
        opt = theirs(params, lr=0.05, **kwargs)
        schedulers.append(make_scheduler(opt))
        return opt

    expected = torch_runner(
        make,
        prob,
        before_step=lambda opt, t: torch_lrs.append(opt.param_groups[0]["lr"]),
        after_step=lambda opt, t: schedulers[0].step(),
    )
    actual, used = _run_stepwise(ours()(lr=lr_schedule, **kwargs), prob, ["lr"])
    # The lr each update used, as torch's param group held it for that step (a float64 there).
    np.testing.assert_allclose(used["lr"], torch_lrs, rtol=1e-6)
    assert_trajectories_close(actual, expected)


def test_momentum_and_betas_schedules_match_torch(torch_runner):
    """Any hyperparameter may be a schedule; torch's equivalent is writing the param group."""
    prob = _problem({})

    def mu(t):
        return 0.5 + 0.4 * (t % 10) / 10

    expected = torch_runner(
        lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.5, nesterov=True),
        prob,
        before_step=lambda opt, t: opt.param_groups[0].update(momentum=mu(t)),
    )
    tx = og.torch.SGD(lr=0.05, momentum=lambda c: mu(c), nesterov=True)
    actual, used = _run_stepwise(tx, prob, ["momentum"])
    np.testing.assert_allclose(used["momentum"], [mu(t) for t in range(prob.steps)], rtol=1e-7)
    assert_trajectories_close(actual, expected)

    expected = torch_runner(
        lambda params: torch.optim.Adam(params, lr=0.05, amsgrad=True),
        prob,
        before_step=lambda opt, t: opt.param_groups[0].update(betas=(mu(t), 0.95)),
    )
    tx = og.torch.Adam(lr=0.05, betas=(lambda c: mu(c), 0.95), amsgrad=True)
    actual, used = _run_stepwise(tx, prob, ["betas"])
    assert_trajectories_close(actual, expected)


def test_hyperparameters_are_held_under_torch_names():
    params = {"w": jnp.zeros(3)}
    expected = {
        "SGD": {"lr": 1e-3, "weight_decay": 0.0},
        "Adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
        "AdamW": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2},
        "RMSprop": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0},
        "Adagrad": {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "eps": 1e-10},
    }
    for name, values in expected.items():
        state = PAIRS[name][0]()().init(params)
        assert set(og.tree.get(state, "hyperparams")) == set(values), name
        for key, value in values.items():
            np.testing.assert_allclose(og.tree.get(state, key), value, rtol=1e-7, err_msg=name)
    state = og.torch.SGD(momentum=0.9, dampening=0.1).init(params)
    assert float(og.tree.get(state, "momentum")) == pytest.approx(0.9)
    assert float(og.tree.get(state, "dampening")) == pytest.approx(0.1)
    state = og.torch.RMSprop(momentum=0.5).init(params)
    assert float(og.tree.get(state, "momentum")) == pytest.approx(0.5)


def test_no_momentum_buffer_without_momentum():
    """As in torch, no buffer when momentum is 0; then momentum is not in the state either
    (so setting it later fails loudly instead of being ignored). A schedule keeps the buffer."""
    params = {"w": jnp.zeros(3)}
    for tx in (og.torch.SGD(0.1), og.torch.RMSprop(0.1)):
        state = tx.init(params)
        with pytest.raises(KeyError, match="no entry named 'trace'"):
            og.tree.get(state, "trace")
        with pytest.raises(KeyError, match="no entry named 'momentum'"):
            og.tree.get(state, "momentum")
    state = og.torch.SGD(0.1, momentum=lambda count: 0.0).init(params)
    assert og.tree.get(state, "trace")["w"].shape == (3,)


def test_set_hyperparameter_between_steps():
    """Writing ``lr`` into the state is torch's ``param_groups[0]["lr"] = ...``."""
    params, grads = {"w": jnp.ones(2)}, {"w": jnp.ones(2)}
    tx = og.torch.SGD(lr=0.1, weight_decay=0.0)
    step = jax.jit(tx.update)
    state = og.tree.set(tx.init(params), lr=0.5, weight_decay=1.0)
    updates, state = step(grads, state, params)
    np.testing.assert_allclose(updates["w"], [-1.0, -1.0])
    assert float(og.tree.get(state, "lr")) == 0.5


@pytest.mark.parametrize("name", list(PAIRS))
def test_signature_matches_torch(name):
    """Same argument names, order, kinds and defaults as torch (less ``params``)."""
    ours, theirs = PAIRS[name]
    mine = list(inspect.signature(ours()).parameters.values())
    torch_params = list(inspect.signature(theirs.__init__).parameters.values())[2:]
    assert [(p.name, p.kind, p.default) for p in mine] == [
        (p.name, p.kind, p.default) for p in torch_params
    ]


def test_flags_without_effect_are_accepted():
    params, grads = {"w": jnp.arange(3.0)}, {"w": jnp.array([0.5, -1.0, 2.0])}
    flags = {"foreach": True, "capturable": True, "differentiable": True, "fused": True}
    cases = [
        (og.torch.SGD, {"foreach", "differentiable", "fused"}),
        (og.torch.Adam, set(flags)),
        (og.torch.AdamW, set(flags)),
        (og.torch.RMSprop, {"foreach", "capturable", "differentiable"}),
        (og.torch.Adagrad, {"foreach", "differentiable", "fused"}),
    ]
    for make, accepted in cases:
        plain, flagged = make(0.1), make(0.1, **{k: flags[k] for k in accepted})
        np.testing.assert_array_equal(
            plain.update(grads, plain.init(params), params)[0]["w"],
            flagged.update(grads, flagged.init(params), params)[0]["w"],
        )


ERRORS = [
    (
        lambda: og.torch.SGD(lr=-0.1),
        r"optgrad\.torch\.SGD\(lr=\.\.\.\) must be non-negative, got lr=-0\.1",
    ),
    (lambda: og.torch.SGD(momentum=-0.5), r"SGD\(momentum=\.\.\.\) must be non-negative"),
    (lambda: og.torch.SGD(weight_decay=-1.0), r"SGD\(weight_decay=\.\.\.\) must be non-negative"),
    (
        lambda: og.torch.SGD(nesterov=True),
        r"SGD\(nesterov=True\) requires momentum > 0 and dampening=0",
    ),
    (
        lambda: og.torch.SGD(momentum=0.9, dampening=0.1, nesterov=True),
        r"requires momentum > 0 and dampening=0, got momentum=0\.9, dampening=0\.1",
    ),
    (lambda: og.torch.SGD(lr=float("nan")), r"SGD\(lr=\.\.\.\) must be non-negative, got lr=nan"),
    (
        lambda: og.torch.Adam(betas=(1.5, 0.9)),
        r"optgrad\.torch\.Adam\(betas=\.\.\.\) must be in \[0, 1\), got betas\[0\]=1\.5",
    ),
    (
        lambda: og.torch.Adam(betas=(0.9, 1.0)),
        r"Adam\(betas=\.\.\.\) must be in \[0, 1\), got betas\[1\]=1\.0",
    ),
    (lambda: og.torch.Adam(betas=0.9), r"Adam\(betas=\.\.\.\) must be a pair"),
    (lambda: og.torch.Adam(eps=-1e-8), r"Adam\(eps=\.\.\.\) must be non-negative"),
    (lambda: og.torch.Adam(weight_decay=-1.0), r"Adam\(weight_decay=\.\.\.\) must be non-negative"),
    (lambda: og.torch.AdamW(lr=-1.0), r"AdamW\(lr=\.\.\.\) must be non-negative"),
    (
        lambda: og.torch.AdamW(betas=(0.9, -0.1)),
        r"AdamW\(betas=\.\.\.\) must be in \[0, 1\), got betas\[1\]",
    ),
    (
        lambda: og.torch.AdamW(weight_decay=-0.1),
        r"AdamW\(weight_decay=\.\.\.\) must be non-negative",
    ),
    (lambda: og.torch.RMSprop(alpha=-0.1), r"RMSprop\(alpha=\.\.\.\) must be in \[0, 1\]"),
    (lambda: og.torch.RMSprop(eps=-1.0), r"RMSprop\(eps=\.\.\.\) must be non-negative"),
    (lambda: og.torch.RMSprop(momentum=-0.1), r"RMSprop\(momentum=\.\.\.\) must be non-negative"),
    (
        lambda: og.torch.RMSprop(weight_decay=-0.1),
        r"RMSprop\(weight_decay=\.\.\.\) must be non-negative",
    ),
    (lambda: og.torch.Adagrad(lr_decay=-0.1), r"Adagrad\(lr_decay=\.\.\.\) must be non-negative"),
    (
        lambda: og.torch.Adagrad(initial_accumulator_value=-1.0),
        r"Adagrad\(initial_accumulator_value=\.\.\.\) must be non-negative",
    ),
    (lambda: og.torch.Adagrad(eps=-1.0), r"Adagrad\(eps=\.\.\.\) must be non-negative"),
    (
        lambda: og.torch.Adagrad(weight_decay=-1.0),
        r"Adagrad\(weight_decay=\.\.\.\) must be non-negative",
    ),
]


@pytest.mark.parametrize("build, message", ERRORS)
def test_bad_arguments_are_refused_when_built(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_argument_types_are_refused_when_built():
    with pytest.raises(TypeError, match=r"SGD\(lr=\.\.\.\) must be a number or a schedule"):
        og.torch.SGD(lr="0.1")
    with pytest.raises(
        TypeError, match=r"Adagrad\(initial_accumulator_value=\.\.\.\) must be a number"
    ):
        og.torch.Adagrad(initial_accumulator_value=lambda count: 0.1)


def test_torch_refuses_the_same_arguments():
    """The rules are torch's: each case above is also refused by ``torch.optim``."""
    p = [torch.nn.Parameter(torch.zeros(2))]
    for make, kwargs in [
        (torch.optim.SGD, {"lr": -0.1}),
        (torch.optim.SGD, {"nesterov": True}),
        (torch.optim.SGD, {"momentum": 0.9, "dampening": 0.1, "nesterov": True}),
        (torch.optim.Adam, {"betas": (1.5, 0.9)}),
        (torch.optim.Adam, {"betas": (0.9, 1.0)}),
        (torch.optim.AdamW, {"weight_decay": -0.1}),
        (torch.optim.RMSprop, {"alpha": -0.1}),
        (torch.optim.Adagrad, {"initial_accumulator_value": -1.0}),
    ]:
        with pytest.raises(ValueError):
            make(p, **kwargs)
