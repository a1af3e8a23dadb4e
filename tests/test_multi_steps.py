"""``MultiSteps`` and ``apply_every``: gradient accumulation.

Oracles: Optax 0.2.8's ``MultiSteps`` and ``apply_every`` (float64 trajectories on the noisy
quadratic of ``tests/_oracle.py``), the same optimizer trained on the k-times larger batch (an
MLP, mean loss), and hand-computed learning rates and byte counts.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests._multi_steps_check import assert_works_inside_multi_steps
from tests._oracle import (
    assert_distinguishable,
    assert_trajectories_close,
    problem,
    run_many,
    run_optax64,
)
from tests.registry import REGISTRY


def _skip_when_b_sums_positive(updates, gradient_step, params):
    del gradient_step, params
    total = jnp.sum(updates["b"])
    return total > 0, {"total": total}


def test_trajectories_match_optax_multisteps():
    prob = problem(3, steps=150)
    every = lambda step: 1 + step % 3  # noqa: E731 - a batch size that varies over training
    configs = {
        "adam_k3": lambda M, o: M(o.adam(0.05), 3),
        "sgd_momentum_sum_k2": lambda M, o: M(o.sgd(0.02, momentum=0.9), 2, use_grad_mean=False),
        "adamw_varying_k": lambda M, o: M(o.adamw(0.05, weight_decay=0.1), every),
        "adam_k4_skipping": lambda M, o: M(
            o.adam(0.05), 4, should_skip_update_fn=_skip_when_b_sums_positive
        ),
        "schedule_k3": lambda M, o: M(o.adam(o.linear_schedule(0.1, 0.01, 30)), 3),
    }
    ours = run_many({n: c(og.MultiSteps, og) for n, c in configs.items()}, prob)
    # Optax accumulates in float32 by default; its float64 oracle accumulates in float64.
    optax_multi_steps = functools.partial(optax.MultiSteps, accumulator_dtype=jnp.float64)
    expected = run_optax64({n: c(optax_multi_steps, optax) for n, c in configs.items()}, prob)
    for name in configs:
        assert_trajectories_close(ours[name], expected[name])
    plain = run_many({"adam": og.adam(0.05)}, prob)["adam"]
    assert_distinguishable(ours["adam_k3"], plain)


@pytest.mark.parametrize("use_grad_mean", [True, False])
def test_learning_rate_at_optimizer_step_k_is_the_schedule_at_k(use_grad_mean):
    """For every_k = 1..8, the update emitted at optimizer step j (0-based) is
    -schedule(j) * mean (or sum) of its micro-batch gradients, and the state reports
    schedule(j): the inner count advances once per optimizer step, never per micro-step."""
    schedule = lambda count: 0.5 + 0.25 * count  # noqa: E731
    ks = range(1, 9)
    txs = {k: og.MultiSteps(og.sgd(schedule), k, use_grad_mean=use_grad_mean) for k in ks}
    micro_steps = 40

    @jax.jit
    def go():
        def body(states, i):
            g = jnp.full((1,), i + 1, jnp.float32)  # micro-batch gradient i + 1
            out = {}
            for k, tx in txs.items():
                u, states[k] = tx.update(g, states[k])
                out[k] = (u[0], og.tree.get(states[k], "learning_rate"))
            return states, out

        init = {k: tx.init(jnp.zeros(1)) for k, tx in txs.items()}
        return jax.lax.scan(body, init, jnp.arange(micro_steps, dtype=jnp.float32))[1]

    out = go()
    for k in ks:
        updates, lrs = (np.asarray(x) for x in out[k])
        for i in range(micro_steps):
            j, phase = divmod(i, k)
            if phase < k - 1:
                assert updates[i] == 0.0, (k, i)
                continue
            grads = np.arange(i - k + 1, i + 1) + 1.0
            g = grads.mean() if use_grad_mean else grads.sum()
            np.testing.assert_allclose(updates[i], -schedule(j) * g, rtol=1e-6)
            np.testing.assert_allclose(lrs[i], schedule(j), rtol=1e-7)


def _mlp_problem():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((32, 8)), jnp.float32)
    y = jnp.asarray(rng.standard_normal((32, 1)), jnp.float32)
    shapes = {"w1": (8, 16), "b1": (16,), "w2": (16, 1), "b2": (1,)}
    params = {k: jnp.asarray(0.3 * rng.standard_normal(s), jnp.float32) for k, s in shapes.items()}

    def loss(p, x, y):
        h = jnp.tanh(x @ p["w1"] + p["b1"])
        return jnp.mean((h @ p["w2"] + p["b2"] - y) ** 2)

    return params, loss, x, y


def test_four_micro_batches_equal_one_step_on_the_four_times_larger_batch():
    params, loss, x, y = _mlp_problem()
    schedule = og.warmup_cosine_decay_schedule(0.0, 0.05, 5, 25)
    make = lambda: og.chain(og.clip_by_global_norm(1.0), og.adamw(schedule, weight_decay=0.1))  # noqa: E731
    big, acc = make(), og.MultiSteps(make(), 4)
    steps = 25

    @jax.jit
    def go(params):
        def big_step(carry, _):
            p, s = carry
            u, s = big.update(jax.grad(loss)(p, x, y), s, p)
            return (og.apply_updates(p, u), s), None

        def micro_step(carry, i):
            p, s = carry
            xb, yb = (
                jax.lax.dynamic_slice_in_dim(x, 8 * (i % 4), 8),
                jax.lax.dynamic_slice_in_dim(y, 8 * (i % 4), 8),
            )
            u, s = acc.update(jax.grad(loss)(p, xb, yb), s, p)
            return (og.apply_updates(p, u), s), None

        (p_big, _), _ = jax.lax.scan(big_step, (params, big.init(params)), None, steps)
        (p_acc, s_acc), _ = jax.lax.scan(
            micro_step, (params, acc.init(params)), jnp.arange(4 * steps)
        )
        return p_big, p_acc, s_acc

    p_big, p_acc, s_acc = go(params)
    assert int(s_acc.gradient_step) == steps
    moved = max(float(jnp.max(jnp.abs(p_big[k] - params[k]))) for k in params)
    assert moved > 0.1  # the run trains
    flat = lambda p: np.concatenate([np.ravel(x) for x in jax.tree.leaves(p)])[None]  # noqa: E731
    # float32 rounding: atol = 1e-6 * max|theta| over the model, rtol = 1e-5.
    assert_trajectories_close(flat(p_acc), flat(p_big))
    assert float(loss(p_acc, x, y)) < 0.9 * float(loss(params, x, y))


def _nbytes(tree) -> int:
    return sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree))


def test_state_holds_exactly_one_gradient_sized_buffer():
    params, *_ = _mlp_problem()
    for inner in (og.adam(1e-3), og.sgd(0.1, momentum=0.9), og.sgd(0.1)):
        state = og.MultiSteps(inner, 4).init(params)
        counters = 2 * 4  # mini_step and gradient_step, int32 scalars
        assert _nbytes(state) == _nbytes(inner.init(params)) + _nbytes(params) + counters
        _, state = jax.jit(og.MultiSteps(inner, 4).update)(params, state, params)
        assert _nbytes(state) == _nbytes(inner.init(params)) + _nbytes(params) + counters


def test_zero_updates_between_steps_keep_the_gradient_dtype_and_accumulate_in_float32():
    params = {"w": jnp.ones(3, jnp.bfloat16), "z": jnp.ones(2, jnp.complex64)}
    tx = og.MultiSteps(og.sgd(1.0), 2)
    state = tx.init(params)
    assert state.acc_grads["w"].dtype == jnp.float32  # bf16 gradients accumulate in float32
    assert state.acc_grads["z"].dtype == jnp.complex64  # complex ones keep their phase
    grads = {"w": jnp.full(3, 1.0, jnp.bfloat16), "z": jnp.full(2, 1 + 2j, jnp.complex64)}
    u, state = jax.jit(tx.update)(grads, state)
    assert u["w"].dtype == jnp.bfloat16 and not bool(jnp.any(u["w"]))
    grads = {"w": jnp.full(3, 2.0, jnp.bfloat16), "z": jnp.full(2, 3 + 4j, jnp.complex64)}
    u, state = jax.jit(tx.update)(grads, state)
    assert u["w"].dtype == jnp.bfloat16 and u["z"].dtype == jnp.complex64
    np.testing.assert_allclose(np.asarray(u["w"], np.float32), -1.5)
    np.testing.assert_allclose(np.asarray(u["z"]), -(2 + 3j))


def test_interface_chain_and_extra_arguments():
    def reads_value():
        def update_fn(updates, state, params=None, *, value=1.0):
            return jax.tree.map(lambda u: u * value, updates), state

        return og.GradientTransformation(og.init_empty_state, update_fn)

    tx = og.MultiSteps(reads_value(), 2)
    assert isinstance(tx.gradient_transformation(), og.GradientTransformation)
    chained = og.chain(og.scale(2.0), tx)
    state = chained.init(jnp.zeros(2))
    u, state = chained.update(jnp.ones(2), state, value=5.0, unknown="ignored")
    assert not bool(tx.has_updated(state[1])) and not bool(jnp.any(u))
    u, state = chained.update(jnp.ones(2), state, value=5.0, unknown="ignored")
    assert bool(tx.has_updated(state[1]))
    np.testing.assert_allclose(u, 10.0)
    assert tx.inner_opt is not None


def test_hyperparameters_are_read_and_set_through_the_state_without_recompiling():
    tx = og.MultiSteps(og.sgd(0.1), 2)
    step = jax.jit(tx.update)
    state = tx.init(jnp.zeros(1))
    u, state = step(jnp.ones(1), state)
    u, state = step(jnp.ones(1), state)
    np.testing.assert_allclose(u, -0.1)
    state = og.tree.set(state, learning_rate=0.5)
    assert float(og.tree.get(state, "learning_rate")) == 0.5
    u, state = step(jnp.ones(1), state)
    u, state = step(jnp.ones(1), state)
    np.testing.assert_allclose(u, -0.5)
    assert step._cache_size() == 1


def test_skip_functions_match_optax_inside_multisteps():
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((24, 5)).astype(np.float32)
    grads[[3, 4, 11]] = np.nan
    grads[17, 2] = np.inf
    grads[[7, 20]] *= 10.0
    for skip_name, threshold in (("skip_not_finite", None), ("skip_large_updates", 20.0)):
        fns = {m: getattr(m, skip_name) for m in (og, optax)}
        if threshold is not None:
            fns = {m: functools.partial(f, max_squared_norm=threshold) for m, f in fns.items()}
        ours = og.MultiSteps(og.adam(0.1), 3, should_skip_update_fn=fns[og])
        ref = optax.MultiSteps(optax.adam(0.1), 3, should_skip_update_fn=fns[optax])
        s_ours, s_ref = ours.init(jnp.zeros(5)), ref.init(jnp.zeros(5))
        step_ours, step_ref = jax.jit(ours.update), jax.jit(ref.update)
        for g in grads:
            u_ours, s_ours = step_ours(jnp.asarray(g), s_ours)
            u_ref, s_ref = step_ref(jnp.asarray(g), s_ref)
            # Optax's float32 bias correction 1 - b**t is off by ~1e-5 relative at small t.
            np.testing.assert_allclose(u_ours, u_ref, rtol=2e-5, atol=1e-7)
            assert int(s_ours.mini_step) == int(s_ref.mini_step)
            assert int(s_ours.gradient_step) == int(s_ref.gradient_step)
            for key in s_ref.skip_state:
                np.testing.assert_allclose(s_ours.skip_state[key], s_ref.skip_state[key], 1e-6)
        assert int(s_ours.gradient_step) < 8  # some micro-steps were skipped


def test_apply_every_matches_optax():
    prob = problem(5)
    ours = run_many({"tx": og.chain(og.apply_every(3), og.sgd(0.02, momentum=0.5))}, prob)
    ref = run_optax64({"tx": optax.chain(optax.apply_every(3), optax.sgd(0.02, 0.5))}, prob)
    assert_trajectories_close(ours["tx"], ref["tx"])


def test_errors_name_what_was_expected_and_what_came():
    with pytest.raises(ValueError, match=r"every_k_schedule=0"):
        og.MultiSteps(og.sgd(0.1), 0)
    with pytest.raises(TypeError, match=r"every_k_schedule=.*got float"):
        og.MultiSteps(og.sgd(0.1), 2.0)
    with pytest.raises(ValueError, match=r"apply_every\(k=...\) must be a positive integer"):
        og.apply_every(0)
    bad = og.MultiSteps(og.sgd(0.1), 2, should_skip_update_fn=lambda u, s, p: (jnp.ones(2), ()))
    with pytest.raises(ValueError, match=r"boolean scalar.*shape \(2,\)"):
        bad.update(jnp.ones(1), bad.init(jnp.zeros(1)))
    tx = og.MultiSteps(og.sgd(0.1), 2)
    with pytest.raises(ValueError, match=r"expected a MultiStepsState.*got tuple"):
        tx.update(jnp.ones(1), (og.EmptyState(),))
    with pytest.raises(ValueError, match=r"acc_grads"):
        tx.update({"a": jnp.ones(1)}, tx.init(jnp.zeros(1)))


@pytest.mark.parametrize("name", ["adam", "sgd_momentum", "torch.AdamW", "rmsprop"])
def test_registry_rows_work_inside_multisteps(name):
    row = next(r for r in REGISTRY if r.name == name)
    params = {"a": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.array([0.5, -2.0])}
    loss = lambda p: sum(jnp.sum(jnp.cosh(x)) for x in jax.tree.leaves(p))  # noqa: E731
    assert_works_inside_multi_steps(lambda: row.make(row.lr), params, jax.grad(loss))
