"""``optgrad.torch.load_state_dict``: N torch steps, conversion, M optgrad steps == N + M torch.

The oracle is the real ``torch.optim``: it runs ``N + M`` steps of the noisy quadratic of
``tests/_oracle.py`` (three leaves of different shapes); its ``state_dict()`` after ``N`` steps
is converted, and optgrad continues from torch's parameters for ``M`` steps. The two
trajectories over the last ``M`` steps must agree to float32 rounding. Starting optgrad from a
fresh state instead (what the conversion replaces) gives a distinguishable trajectory.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optgrad as og
from tests._oracle import assert_distinguishable, assert_trajectories_close, problem

N, M = 60, 80

CONFIGS = {
    "SGD momentum": (og.torch.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.1,
                                                         weight_decay=1e-2)),
    "SGD nesterov": (og.torch.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True)),
    "Adam": (og.torch.Adam, torch.optim.Adam, dict(lr=0.02, betas=(0.8, 0.99), weight_decay=1e-2)),
    "Adam amsgrad": (og.torch.Adam, torch.optim.Adam, dict(lr=0.02, amsgrad=True)),
    "AdamW": (og.torch.AdamW, torch.optim.AdamW, dict(lr=0.02, weight_decay=0.1)),
    "RMSprop": (og.torch.RMSprop, torch.optim.RMSprop, dict(lr=0.01, alpha=0.9)),
    "RMSprop centered momentum": (og.torch.RMSprop, torch.optim.RMSprop,
                                  dict(lr=0.005, momentum=0.5, centered=True, weight_decay=0.01)),
    "Adagrad": (og.torch.Adagrad, torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.01,
                                                            initial_accumulator_value=0.1)),
}  # fmt: skip


def _torch_run(make, prob, *, scheduler=None):
    """torch's parameters after each of ``N + M`` steps, and the state_dict after ``N``."""
    params = [torch.nn.Parameter(torch.tensor(np.asarray(x, np.float32))) for x in
              jax.tree.leaves(prob.theta0)]  # fmt: skip
    a = [torch.tensor(np.asarray(x, np.float32)) for x in jax.tree.leaves(prob.a)]
    noise = [torch.tensor(np.asarray(x, np.float32)) for x in jax.tree.leaves(prob.noise)]
    opt = make(params)
    sched = scheduler(opt) if scheduler else None
    traj, saved = [], None
    for t in range(N + M):
        if t == N:
            saved = copy.deepcopy(opt.state_dict())  # its tensors are the live buffers
            at_n = [p.detach().numpy().copy() for p in params]
        with torch.no_grad():
            for p, a_, n in zip(params, a, noise):
                p.grad = a_ * p + n[t]
        opt.step()
        if sched is not None:
            sched.step()
        if t >= N:
            traj.append(np.concatenate([p.detach().numpy().astype(np.float64).ravel()
                                        for p in params]))  # fmt: skip
    return np.stack(traj), saved, at_n


def _optgrad_runs(txs_and_states, prob, start):
    """optgrad's ``M`` steps from ``start`` (one tree per run), in one jitted scan."""
    treedef = jax.tree.structure(prob.theta0)
    a = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), prob.a)
    noise = jax.tree.map(lambda x: jnp.asarray(x[N:], jnp.float32), prob.noise)
    names = list(txs_and_states)

    @jax.jit
    def go(carry, noise):
        def step(carry, n_t):
            new = {}
            for name in names:
                tx = txs_and_states[name][0]
                theta, state = carry[name]
                g = jax.tree.map(lambda a_, th, n_: a_ * th + n_, a, theta, n_t)
                updates, state = tx.update(g, state, theta)
                new[name] = (og.apply_updates(theta, updates), state)
            flat = {n: jnp.concatenate([x.ravel() for x in jax.tree.leaves(th)])
                    for n, (th, _) in new.items()}  # fmt: skip
            return new, flat

        return jax.lax.scan(step, carry, noise)[1]

    carry = {}
    for name, (_, state) in txs_and_states.items():
        theta = jax.tree.unflatten(treedef, [jnp.asarray(x) for x in start[name]])
        carry[name] = (theta, state)
    out = go(carry, noise)
    return {name: np.asarray(out[name], np.float64) for name in names}


def test_torch_steps_then_optgrad_steps_equal_torch_steps():
    prob = problem(seed=3, steps=N + M)
    expected, runs, fresh, starts = {}, {}, {}, {}
    for name, (ours, theirs, kwargs) in CONFIGS.items():
        traj, saved, at_n = _torch_run(lambda p, t=theirs, k=kwargs: t(p, **k), prob)
        tx = ours(**kwargs)
        params = jax.tree.unflatten(jax.tree.structure(prob.theta0), [jnp.asarray(x) for x in at_n])
        expected[name] = traj
        runs[name] = (tx, og.torch.load_state_dict(tx, tx.init(params), saved, params))
        fresh[name] = (tx, tx.init(params))
        starts[name] = at_n
    got = _optgrad_runs(runs, prob, starts)
    unconverted = _optgrad_runs(fresh, prob, starts)
    for name in CONFIGS:
        assert_trajectories_close(got[name], expected[name])
        # Without the torch state (buffers, step count) the continuation is visibly different.
        assert_distinguishable(unconverted[name], expected[name])


def test_step_count_drives_a_schedule_and_hyperparameters_come_from_param_groups():
    """torch's StepLR has moved lr after N steps: the step count restores it in optgrad; and a
    constant lr changed in torch's param_groups is the one optgrad uses."""
    prob = problem(seed=5, steps=N + M)
    traj, saved, at_n = _torch_run(
        lambda p: torch.optim.Adam(p, lr=0.05),
        prob,
        scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=25, gamma=0.5),
    )
    params = jax.tree.unflatten(jax.tree.structure(prob.theta0), [jnp.asarray(x) for x in at_n])
    scheduled = og.torch.Adam(lr=og.torch.lr_scheduler.StepLR(0.05, step_size=25, gamma=0.5))
    state = og.torch.load_state_dict(scheduled, None, saved, params)
    assert int(state.count) == N
    np.testing.assert_allclose(og.tree.get(state, "lr"), saved["param_groups"][0]["lr"])
    got = _optgrad_runs({"s": (scheduled, state)}, prob, {"s": at_n})["s"]
    assert_trajectories_close(got, traj)

    # A constant-lr torch run whose lr was edited by hand in param_groups.
    traj, saved, at_n = _torch_run(lambda p: torch.optim.SGD(p, lr=0.03, momentum=0.9), prob)
    constant = og.torch.SGD(lr=0.1, momentum=0.9)  # lr overwritten by the state_dict's 0.03
    state = og.torch.load_state_dict(constant, None, saved, params)
    assert float(og.tree.get(state, "lr")) == pytest.approx(0.03)
    got = _optgrad_runs({"c": (constant, state)}, prob, {"c": at_n})["c"]
    assert_trajectories_close(got, traj)


def test_to_params_maps_torch_order_and_layout():
    """torch's Linear weight is (out, in); a JAX model may keep (in, out) and other key order."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(16, 4), torch.randn(16, 2)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    def to_params(ts):  # the weight-porting function, reused for the buffers
        return {"dense1": {"kernel": ts[0].T, "bias": ts[1]},
                "dense2": {"kernel": ts[2].T, "bias": ts[3]}}  # fmt: skip

    params = to_params([p.detach().numpy() for p in model.parameters()])
    tx = og.torch.Adam(lr=1e-2)
    state = og.torch.load_state_dict(tx, None, opt.state_dict(), params, to_params=to_params)
    exp_avg = opt.state_dict()["state"][2]["exp_avg"].numpy()
    np.testing.assert_array_equal(og.tree.get(state, "mu")["dense2"]["kernel"], exp_avg.T)
    assert int(state.count) == 5

    with pytest.raises(ValueError, match=r"has shape \(3, 4\) but the parameter"):
        flat = jax.tree.leaves(params)  # torch order, but (in, out) kernels: shapes differ
        order = {"a": flat[0], "b": flat[1], "c": flat[2], "d": flat[3]}
        og.torch.load_state_dict(tx, None, opt.state_dict(), order)


def _sd(**group):
    params = np.zeros((2, 3), np.float32), np.zeros(3, np.float32)
    state = {0: {"step": np.float32(4), "exp_avg": params[0], "exp_avg_sq": params[0]},
             1: {"step": np.float32(4), "exp_avg": params[1], "exp_avg_sq": params[1]}}  # fmt: skip
    base = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)
    return {"state": state, "param_groups": [{**base, **group, "params": [0, 1]}]}


def test_mismatches_are_explained():
    params = {"b": jnp.zeros(3), "w": jnp.zeros((2, 3))}  # leaves: b, w (torch order: w, b)
    good = {"w": jnp.zeros((2, 3)), "z": jnp.zeros(3)}
    adam = og.torch.Adam()
    assert int(og.torch.load_state_dict(adam, None, _sd(), good).count) == 4
    with pytest.raises(ValueError, match=r"torch's 'exp_avg' \(torch parameter 0\) has shape"):
        og.torch.load_state_dict(adam, None, _sd(), params)
    with pytest.raises(ValueError, match="holds 2 parameters but `params` has 1 leaves"):
        og.torch.load_state_dict(adam, None, _sd(), {"w": jnp.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"comes from torch.optim.Adam/AdamW, but `tx` is "
                                         r"optgrad.torch.SGD"):  # fmt: skip
        og.torch.load_state_dict(og.torch.SGD(0.1), None, _sd(), good)
    # Adam's hyperparameter names, other optimizers: told apart by the state's types.
    similar = [getattr(og.torch, n)() for n in ("RAdam", "NAdam") if hasattr(og.torch, n)]
    for other in (og.adam(1e-3), *similar):
        with pytest.raises(ValueError, match=r"`tx` is not optgrad\.torch\.SGD, Adam, AdamW"):
            og.torch.load_state_dict(other, None, _sd(), good)
    with pytest.raises(ValueError, match="amsgrad = True but `tx` was built with amsgrad = False"):
        og.torch.load_state_dict(adam, None, _sd(amsgrad=True), good)
    with pytest.raises(ValueError, match="2 parameter groups"):
        two = _sd()
        two["param_groups"] = [two["param_groups"][0]] * 2
        og.torch.load_state_dict(adam, None, two, good)
    with pytest.raises(TypeError, match=r"model\.state_dict"):
        og.torch.load_state_dict(adam, None, {"fc.weight": np.zeros(3)}, good)
    with pytest.raises(ValueError, match="different torch step counts"):
        uneven = _sd()
        uneven["state"][1]["step"] = np.float32(3)
        og.torch.load_state_dict(adam, None, uneven, good)
    with pytest.raises(ValueError, match="not a state of `tx`"):
        og.torch.load_state_dict(adam, og.torch.SGD(0.1).init(good), _sd(), good)
