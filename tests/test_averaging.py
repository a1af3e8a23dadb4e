"""``ema_params`` and ``swa_params`` against the real ``torch.optim.swa_utils.AveragedModel``,
and the ``eval_params`` protocol.

The oracle: torch 2.13 trains the problem of ``tests/_oracle.py`` with a real ``torch.optim``
optimizer for 150 steps and calls ``swa_model.update_parameters(model)`` right after
``optimizer.step()`` on the averaging steps (the loop of torch's documentation). optgrad runs
``og.torch``'s same optimizer wrapped in the averaging transformation; the averages the two
evaluate at every step are compared with ``assert_trajectories_close``'s default tolerance.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.optim import swa_utils

import optgrad as og
from tests import _oracle as oracle
from tests.rows_averaging import on_plain_params
from tests.torch.conftest import run_torch

PROB = oracle.problem(seed=7, steps=150)
SGD = {"lr": 0.05, "momentum": 0.9}
ADAM = {"lr": 0.05, "betas": (0.8, 0.95)}

# name: (optimizer name, its kwargs, decay (None: SWA), start_step, every_k_steps)
CASES = {
    "ema_sgd": ("SGD", SGD, 0.9, 0, 1),
    "ema_sgd_small_decay": ("SGD", SGD, 0.3, 0, 1),  # torch.lerp's other branch (w >= 0.5)
    "ema_adam_start_every": ("Adam", ADAM, 0.95, 20, 3),
    "swa_sgd": ("SGD", SGD, None, 0, 1),
    "swa_adam_recipe": ("Adam", ADAM, None, 40, 10),  # "epochs" of 10 steps, burn-in 4
}


def _ours(opt, kwargs, decay, start, every):
    inner = getattr(og.torch, opt)(**kwargs)
    if decay is None:
        return og.swa_params(inner, start_step=start, every_k_steps=every)
    return og.ema_params(inner, decay, start_step=start, every_k_steps=every)


def run_eval(txs, prob, dtype=jnp.float32):
    """Like ``oracle.run_many``, with the trajectories of ``og.eval_params`` (by name)."""
    cast = lambda t: jax.tree.map(lambda x: jnp.asarray(x, dtype), t)  # noqa: E731

    @jax.jit
    def go(theta0, a, noise):
        def step(carry, n_t):
            new, evals = {}, {}
            for name, tx in txs.items():
                theta, state = carry[name]
                g = jax.tree.map(lambda a_, th, n_: (a_ * th + n_).astype(th.dtype), a, theta, n_t)
                updates, state = tx.update(g, state, theta)
                theta = og.apply_updates(theta, updates)
                new[name] = (theta, state)
                evals[name] = (theta, og.eval_params(state, theta))
            return new, evals

        init = {name: (theta0, tx.init(theta0)) for name, tx in txs.items()}
        first = {name: og.eval_params(s, th) for name, (th, s) in init.items()}
        final, traj = jax.lax.scan(step, init, noise)
        return first, traj, {name: s for name, (_, s) in final.items()}

    first, traj, states = go(cast(prob.theta0), cast(prob.a), cast(prob.noise))

    def flat(first_tree, trees):
        head = prob.flat(jax.tree.map(lambda x: np.asarray(x, np.float64), first_tree))
        rows = [np.asarray(x, np.float64).reshape(prob.steps, -1) for x in jax.tree.leaves(trees)]
        return np.vstack([head[None], np.concatenate(rows, axis=1)])

    return {
        name: (flat(prob.theta0, traj[name][0]), flat(first[name], traj[name][1]), states[name])
        for name in txs
    }


def _torch_run(opt, kwargs, decay, start, every):
    """The model's and the averaged model's trajectories under real torch."""
    holder, evals = {}, []

    def make(params):
        model = torch.nn.ParameterList(params)
        multi = None if decay is None else swa_utils.get_ema_multi_avg_fn(decay)
        holder["model"], holder["avg"] = model, swa_utils.AveragedModel(model, multi_avg_fn=multi)
        evals.append(np.concatenate([p.detach().numpy().astype(np.float64).ravel() for p in model]))
        return getattr(torch.optim, opt)(params, **kwargs)

    def after_step(_, t):
        count = t + 1
        if count > start and (count - start) % every == 0:
            holder["avg"].update_parameters(holder["model"])
        source = holder["avg"].module if holder["avg"].n_averaged > 0 else holder["model"]
        evals.append(
            np.concatenate([p.detach().numpy().astype(np.float64).ravel() for p in source])
        )

    params = run_torch(make, PROB, after_step=after_step)
    return params, np.stack(evals)


@pytest.fixture(scope="module")
def ours():
    return run_eval({name: _ours(*case) for name, case in CASES.items()}, PROB)


@pytest.mark.parametrize("name", CASES)
def test_matches_torch_averaged_model(ours, name):
    params, evals, state = ours[name]
    torch_params, torch_evals = _torch_run(*CASES[name])
    oracle.assert_trajectories_close(params, torch_params)
    oracle.assert_trajectories_close(evals, torch_evals)
    _, _, _, start, every = CASES[name]
    expected_n = max(0, (PROB.steps - start) // every)
    assert int(og.tree.get(state, "n_averaged")) == expected_n
    oracle.assert_distinguishable(evals, params)  # the average is not the last iterate


def _numpy_ema(traj, decay, start=0, every=1, *, after_step=True, zero_init=False):
    """EMA of a trajectory's rows (row t: the weights after step t), as the eval sequence."""
    out, avg, n = [traj[0]], None, 0
    for t in range(1, len(traj)):
        x = traj[t] if after_step else traj[t - 1]
        if t > start and (t - start) % every == 0:
            if avg is None:
                avg = np.zeros_like(x) if zero_init else x.copy()
            if n > 0 or zero_init:
                avg = decay(t - 1) * avg + (1 - decay(t - 1)) * x
            n += 1
        out.append(traj[t] if avg is None else avg)
    return np.stack(out)


def _numpy_swa(traj, start, every):
    """SWA of a trajectory's rows, as the eval sequence: the mean of the averaged rows."""
    out, taken = [traj[0]], []
    for t in range(1, len(traj)):
        if t > start and (t - start) % every == 0:
            taken.append(traj[t])
        out.append(np.mean(taken, axis=0) if taken else traj[t])
    return np.stack(out)


def test_numpy_references_agree_and_tell_plausible_mistakes_apart(ours):
    params, evals, _ = ours["ema_sgd"]
    oracle.assert_trajectories_close(evals, _numpy_ema(params, lambda t: 0.9))
    for wrong in (
        _numpy_ema(params, lambda t: 0.9, after_step=False),  # averaged before the step
        _numpy_ema(params, lambda t: 0.9, zero_init=True),  # optax.ema-like zero start
    ):
        oracle.assert_distinguishable(evals, wrong)
    params, evals, _ = ours["swa_adam_recipe"]
    oracle.assert_trajectories_close(evals, _numpy_swa(params, 40, 10))
    oracle.assert_distinguishable(evals, _numpy_swa(params, 30, 10))  # one "epoch" early
    oracle.assert_distinguishable(evals, _numpy_swa(params, 40, 5))


def test_decay_is_a_settable_hyperparameter_and_may_be_a_schedule():
    warmup = lambda count: jnp.minimum(0.9, (1.0 + count) / (10.0 + count))  # noqa: E731
    out = run_eval({"s": og.ema_params(og.sgd(0.05, momentum=0.9), warmup)}, PROB)
    params, evals, state = out["s"]
    expected = _numpy_ema(params, lambda t: min(0.9, (1.0 + t) / (10.0 + t)))
    oracle.assert_trajectories_close(evals, expected)
    assert float(og.tree.get(state, "decay")) == pytest.approx(0.9)

    tx = og.ema_params(og.sgd(1.0), decay=0.5)
    step = jax.jit(lambda p, s: tx.update({"w": -jnp.ones(2)}, s, p))
    p = {"w": jnp.zeros(2)}
    u, s = step(p, tx.init(p))
    p = og.apply_updates(p, u)
    s = og.tree.set(s, decay=0.0)  # the average now tracks the params exactly
    u, s = step(p, s)
    p = og.apply_updates(p, u)
    assert step._cache_size() == 1
    np.testing.assert_array_equal(og.eval_params(s, p)["w"], p["w"])


def test_dtypes_are_preserved_and_the_accumulator_dtype_is_honoured():
    p = {"w": jnp.ones(3, jnp.bfloat16), "b": jnp.ones((), jnp.float32)}
    g = jax.tree.map(lambda x: jnp.full_like(x, 0.5), p)
    for tx, avg_dtype in (
        (og.ema_params(og.adam(0.1)), jnp.bfloat16),
        (og.swa_params(og.adam(0.1), accumulator_dtype=jnp.float32), jnp.float32),
    ):
        s = tx.init(p)
        for _ in range(2):
            u, s = jax.jit(tx.update)(g, s, p)
        assert u["w"].dtype == jnp.bfloat16 and u["b"].dtype == jnp.float32
        assert og.tree.get(s, "average")["w"].dtype == avg_dtype
        assert og.tree.get(s, "n_averaged").dtype == jnp.int32
        ev = og.eval_params(s, p)
        assert ev["w"].dtype == jnp.bfloat16 and ev["b"].dtype == jnp.float32


class _Shift(NamedTuple):
    amount: jax.Array


def test_eval_params_finds_the_state_wherever_it_is_nested():
    p = {"w": jnp.zeros(2)}
    grads = {"w": -jnp.ones(2)}

    def two_steps(tx, params=p):
        s = tx.init(params)
        for _ in range(2):
            u, s = tx.update(grads, s, params)
            params = og.apply_updates(params, u)
        return params, s

    # Identity for an ordinary optimizer.
    params, s = two_steps(og.adam(0.1))
    assert og.eval_params(s, params) is params
    # The average, nested in chain, named_chain and with_hyperparams.
    ema = og.ema_params(og.sgd(1.0), decay=0.5)  # averages 1, then 2: 1.5
    for tx in (
        ema,
        og.chain(og.clip(5.0), ema),
        og.named_chain(("clip", og.clip(5.0)), ("opt", og.chain(og.identity(), ema))),
        og.with_hyperparams(lambda m: og.chain(og.scale(m), ema), m=1.0),
    ):
        params, s = two_steps(tx)
        np.testing.assert_allclose(params["w"], 2.0)
        np.testing.assert_allclose(jax.jit(og.eval_params)(s, params)["w"], 1.5)
    # Lookahead's slow weights, alone, in a chain, and averaged.
    la = og.lookahead(og.sgd(1.0), sync_period=3, slow_step_size=0.5)
    lp = og.LookaheadParams.init_synced(p)
    for tx, expected in ((la, 0.0), (og.named_chain(("la", la)), 0.0), (og.ema_params(la), 0.0)):
        params, s = two_steps(tx, lp)
        np.testing.assert_allclose(params.fast["w"], 2.0)
        np.testing.assert_allclose(og.eval_params(s, params)["w"], expected)
    params, s = two_steps(og.ema_params(og.lookahead(og.sgd(1.0), 1, 0.5), decay=0.5), lp)
    np.testing.assert_allclose(params.slow["w"], 1.0)  # slow: 0.5 then 1.0
    np.testing.assert_allclose(og.eval_params(s, params)["w"], 0.75)  # the average of the slow
    # Before the first average (start_step), the params themselves.
    params, s = two_steps(og.ema_params(og.sgd(1.0), start_step=5))
    np.testing.assert_allclose(og.eval_params(s, params)["w"], 2.0)
    # A state type registered from outside.
    og.register_eval_params(_Shift, lambda state, params: params + state.amount)
    assert og.eval_params({"x": (og.EmptyState(), _Shift(jnp.ones(())))}, 1.0) == 2.0


def test_eval_params_refuses_two_candidates_side_by_side():
    tx = og.chain(og.ema_params(og.sgd(0.1)), og.swa_params(og.identity()))
    p = {"w": jnp.zeros(2)}
    with pytest.raises(ValueError, match="more than one transformation"):
        og.eval_params(tx.init(p), p)
    with pytest.raises(TypeError, match=r"register_eval_params\(state_type=...\)"):
        og.register_eval_params("x", lambda s, p: p)


def test_lookahead_row_adapter_matches_direct_use():
    """The conformance row's adapter reproduces lookahead on LookaheadParams."""
    tx = og.lookahead(og.sgd(0.5), 2, 0.5)
    wrapped = on_plain_params(tx)
    p = {"w": jnp.ones(2)}
    lp = og.LookaheadParams.init_synced(p)
    s, ws = tx.init(lp), wrapped.init(p)
    for _ in range(3):
        u, s = tx.update(lp.fast, s, lp)
        lp = og.apply_updates(lp, u)
        wu, ws = wrapped.update(p, ws, p)
        p = og.apply_updates(p, wu)
    np.testing.assert_array_equal(p["w"], lp.fast["w"])
    np.testing.assert_array_equal(ws[1]["w"], lp.slow["w"])


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda: og.ema_params(og.sgd(0.1), 1.5), ValueError, r"decay=...\) must be in \[0, 1\]"),
        (lambda: og.ema_params(og.sgd(0.1), start_step=-1), ValueError, r"start_step=-1"),
        (lambda: og.swa_params(og.sgd(0.1), every_k_steps=0), ValueError, r"every_k_steps=0"),
        (lambda: og.swa_params(0.1), TypeError, r"swa_params\(inner=...\) must be a gradient"),
    ],
)
def test_bad_arguments_fail_at_build_time(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_update_without_params_is_a_clear_error():
    tx = og.ema_params(og.sgd(0.1))
    p = {"w": jnp.zeros(2)}
    with pytest.raises(ValueError, match=r"ema_params.update needs `params`"):
        tx.update(p, tx.init(p))
