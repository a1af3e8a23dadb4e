"""``optgrad.torch.LBFGS`` against the real ``torch.optim.LBFGS``, ``opt.step(closure)`` for
``update``.

The problem is smooth and not quadratic, over three parameter tensors of different shapes:
``f = s * (sum_k [1/2 sum h_k (x_k - c_k)^2 + 0.1 sum x_k^4] + 2 (sum_k <u_k, x_k>)^2)`` (a
separable part, a quartic, and a rank-one coupling of all the tensors), written once for both
libraries. Each configuration runs several outer steps (each up to ``max_iter`` inner
iterations); we compare the params after every step *and* torch's counters ``n_iter`` and
``func_evals`` (so every branch of the inner loop, the line search and the stopping rules took
the same path).

Float64, in both libraries: the whole run, through convergence and the tolerance stops, agrees
to ~1e-15 of the scale; we assert 1e-10.

Float32: exact parity is impossible past the first few steps, for two precise reasons. (1) The
stopping rules compare float32 quantities with ``tolerance_change = 1e-9``: ``|f_k - f_{k-1}|
< 1e-9`` only holds when two float32 losses of size ~1 round to the same number, and whether
they do depends on the last bit of a reduction whose order differs between torch's flat-vector
BLAS dot and XLA's per-tensor sums. Near the optimum the two libraries then stop the inner
loop at different iterations (measured: the counters differ from the 5th step on). (2) The
pairs ``y = g_k - g_{k-1}`` are differences of nearly equal gradients, which amplifies the
gradients' last-bit differences (torch's autograd and XLA round differently) by ``|g|/|y|``: we
measured 1.4e-6 of the scale after two iterations when the first step is short (``t =
1/|g|_1``). So the float32 test covers the first 3 outer steps, before any tolerance stop, on the
problem scaled so that ``|g|_1 < 1`` (full first step): there the counters agree and the params
agree to ``atol = 1e-6 * max|theta|, rtol = 1e-5``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optgrad as og
from tests._oracle import assert_distinguishable, assert_trajectories_close

SHAPES = {"a": (4, 5), "b": (7,), "c": (2, 3, 5)}
KEYS = sorted(SHAPES)

CONFIGS = {
    "fixed_step": {"lr": 1, "max_iter": 4, "history_size": 3},
    "fixed_step_long_history": {"lr": 0.5, "max_iter": 5, "history_size": 10},
    "strong_wolfe": {"max_iter": 5, "history_size": 3, "line_search_fn": "strong_wolfe"},
    "strong_wolfe_max_eval": {
        "lr": 0.75,
        "max_iter": 3,
        "max_eval": 5,
        "history_size": 2,
        "line_search_fn": "strong_wolfe",
    },
}


def _data(dtype):
    rng = np.random.default_rng(0)
    n = sum(int(np.prod(s)) for s in SHAPES.values())

    def draw(f):
        return {k: f(s).astype(dtype) for k, s in SHAPES.items()}

    theta0 = draw(rng.standard_normal)
    h = draw(lambda s: rng.uniform(0.2, 3.0, s))
    c = draw(rng.standard_normal)
    u = draw(lambda s: rng.standard_normal(s) / np.sqrt(n))
    return theta0, h, c, u


def _loss(p, h, c, u, lib, scale):
    total, coupling = 0.0, 0.0
    for k in KEYS:
        x = p[k]
        total = total + 0.5 * lib.sum(h[k] * (x - c[k]) ** 2) + 0.1 * lib.sum(x**4)
        coupling = coupling + lib.sum(u[k] * x)
    return scale * (total + 2.0 * coupling**2)


def _run_optgrad(configs, steps, dtype, scale):
    """For each config: the params after each step, ``(steps, n)``, and the counters."""
    theta0, h, c, u = _data(dtype)
    data = jax.tree.map(jnp.asarray, (h, c, u))

    def loss(p, h, c, u):
        return _loss(p, h, c, u, jnp, scale)

    def one(kwargs, p0, data):
        tx = og.torch.LBFGS(**kwargs)

        def step(carry, _):
            p, s = carry
            value, g = jax.value_and_grad(loss)(p, *data)
            updates, s = tx.update(g, s, p, value=value, value_fn=loss, h=data[0], c=data[1],
                                   u=data[2])  # fmt: skip
            p = og.apply_updates(p, updates)
            inner = s.inner_state
            return (p, s), (p, inner.n_iter, inner.func_evals)

        _, out = jax.lax.scan(step, (p0, tx.init(p0)), None, length=steps)
        return out

    run = jax.jit(lambda p0, data: {name: one(kw, p0, data) for name, kw in configs.items()})
    out = run(jax.tree.map(jnp.asarray, theta0), data)
    result = {}
    for name, (traj, n_iter, func_evals) in out.items():
        flat = np.concatenate([np.asarray(traj[k], np.float64).reshape(steps, -1) for k in KEYS], 1)
        result[name] = (flat, np.asarray(n_iter), np.asarray(func_evals))
    return result


def _run_torch(kwargs, steps, dtype, scale):
    theta0, h, c, u = _data(dtype)
    as_tensors = lambda d: {k: torch.tensor(v) for k, v in d.items()}  # noqa: E731
    params = {k: torch.nn.Parameter(v) for k, v in as_tensors(theta0).items()}
    h, c, u = as_tensors(h), as_tensors(c), as_tensors(u)
    opt = torch.optim.LBFGS([params[k] for k in KEYS], **kwargs)

    def closure():
        opt.zero_grad()
        value = _loss(params, h, c, u, torch, scale)
        value.backward()
        return value

    traj, n_iter, func_evals = [], [], []
    for _ in range(steps):
        opt.step(closure)
        traj.append(np.concatenate([params[k].detach().numpy().ravel() for k in KEYS]))
        state = opt.state[opt._params[0]]
        n_iter.append(state["n_iter"])
        func_evals.append(state["func_evals"])
    return np.stack(traj).astype(np.float64), np.array(n_iter), np.array(func_evals)


@pytest.fixture(scope="module")
def float64_runs():
    with jax.enable_x64(True):
        ours = _run_optgrad(CONFIGS, 10, np.float64, 1.0)
    theirs = {name: _run_torch(kw, 10, np.float64, 1.0) for name, kw in CONFIGS.items()}
    return ours, theirs


@pytest.mark.parametrize("name", list(CONFIGS))
def test_float64_trajectory_and_counters_match_torch(name, float64_runs):
    ours, theirs = float64_runs
    (traj, n_iter, evals), (t_traj, t_n_iter, t_evals) = ours[name], theirs[name]
    np.testing.assert_array_equal(n_iter, t_n_iter)
    np.testing.assert_array_equal(evals, t_evals)
    assert_trajectories_close(traj, t_traj, rtol=1e-10, atol_rel=1e-10)
    # The run reaches the tolerance stops: later steps do (almost) nothing.
    assert np.diff(t_n_iter)[-1] < CONFIGS[name]["max_iter"]


def test_the_configurations_are_distinguishable(float64_runs):
    ours, _ = float64_runs
    assert_distinguishable(ours["fixed_step"][0][:3], ours["strong_wolfe"][0][:3])
    assert_distinguishable(
        ours["fixed_step"][0][:3], ours["fixed_step_long_history"][0][:3], factor=10
    )


FLOAT32 = {k: CONFIGS[k] for k in ("fixed_step_long_history", "strong_wolfe_max_eval")}


def test_float32_trajectory_matches_torch_before_convergence():
    steps, scale = 3, 0.01
    ours = _run_optgrad(FLOAT32, steps, np.float32, scale)
    for name, kwargs in FLOAT32.items():
        traj, n_iter, evals = ours[name]
        t_traj, t_n_iter, t_evals = _run_torch(kwargs, steps, np.float32, scale)
        np.testing.assert_array_equal(n_iter, t_n_iter)
        np.testing.assert_array_equal(evals, t_evals)
        assert_trajectories_close(traj, t_traj)


def test_first_step_without_a_closure_is_torchs_scaled_gradient_step():
    """``max_iter=1`` without a line search never calls the closure again: no ``value_fn``
    needed, and the first step is ``-min(1, 1/|g|_1) * lr * g`` (torch's rule)."""
    tx = og.torch.LBFGS(lr=0.5, max_iter=1)
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    grads = {"w": jnp.array([0.3, -0.1]), "b": jnp.array(0.2)}
    updates, state = tx.update(grads, tx.init(params), params)
    factor = 0.5 * min(1.0, 1.0 / 0.6)
    for k in params:
        np.testing.assert_allclose(updates[k], -factor * grads[k], rtol=1e-6)
    assert int(og.tree.get(state, "func_evals")) == 1
    assert int(og.tree.get(state, "n_iter")) == 1


def test_a_gradient_below_tolerance_grad_returns_at_once():
    """torch returns before any iteration: only ``func_evals`` counts the closure's call."""
    tx = og.torch.LBFGS(tolerance_grad=1e-3, max_iter=2)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    updates, new = jax.jit(
        lambda g, s, p: tx.update(g, s, p, value=jnp.float32(1.0), value_fn=lambda q: 1.0)
    )({"w": jnp.full(3, 1e-4)}, state, params)
    assert float(jnp.max(jnp.abs(updates["w"]))) == 0.0
    assert int(og.tree.get(new, "func_evals")) == 1
    assert int(og.tree.get(new, "n_iter")) == 0


def test_hyperparameters_are_held_in_the_state_by_torchs_names():
    tx = og.torch.LBFGS(lr=0.25, tolerance_change=1e-6)
    state = tx.init({"w": jnp.zeros(2)})
    assert float(og.tree.get(state, "lr")) == 0.25
    assert float(og.tree.get(state, "tolerance_change")) == np.float32(1e-6)
    state = og.tree.set(state, lr=0.5)
    assert float(og.tree.get(state, "lr")) == 0.5
    memory = og.tree.get(state, "old_dirs")["w"]
    assert memory.shape == (100, 2)


def test_update_without_the_closure_says_how_to_call_it():
    tx = og.torch.LBFGS()
    params = {"w": jnp.ones(2)}
    with pytest.raises(TypeError, match=r"(?s)needs value_fn: torch's closure.*value_fn=loss"):
        tx.update(params, tx.init(params), params, value=1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -1.0}, r"LBFGS\(lr=\.\.\.\) must be non-negative, got lr=-1\.0"),
        ({"max_iter": 0}, r"LBFGS\(max_iter=\.\.\.\) must be a positive integer, got max_iter=0"),
        ({"max_eval": 2.5}, r"max_eval=\.\.\.\) must be a positive integer"),
        ({"history_size": 0}, r"history_size=\.\.\.\) must be a positive integer"),
        ({"tolerance_grad": -1e-7}, r"tolerance_grad=\.\.\.\) must be non-negative"),
        ({"line_search_fn": "armijo"}, r"line_search_fn=\.\.\.\) must be one of None, "),
    ],
)
def test_bad_arguments_fail_when_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        og.torch.LBFGS(**kwargs)
