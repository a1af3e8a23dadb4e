"""``apply_if_finite``, ``zero_nans``, ``skip_not_finite`` and ``skip_large_updates``.

Oracles: a clean run of the same training that skips the same steps (an MLP on scikit-learn's
digits with NaN/Inf injected at random steps), and Optax 0.2.8's wrappers (counters and
trajectories, float64).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_digits

import optgrad as og
from tests._oracle import assert_trajectories_close, problem

NAN, INF = 1, 2


def _faults(rng, steps, max_run):
    """Per step: 0 (clean), NAN or INF, in runs of 1..max_run consecutive faulty steps."""
    faults = np.zeros(steps, np.int32)
    t = 5
    while t < steps - 5:
        run = int(rng.integers(1, max_run + 1))
        faults[t : t + run] = rng.choice([NAN, INF], size=run)
        t += run + int(rng.integers(1, 12))
    return faults


def _expected_counters(faults, max_errors):
    """``(notfinite_count, last_finite, total_notfinite, applied)`` after every step."""
    count = total = 0
    rows = []
    for f in faults:
        finite = f == 0
        count = 0 if finite else count + 1
        total += not finite
        rows.append((count, finite, total, finite or count > max_errors))
    return np.array(rows, np.int64)


def _inject(grads, fault):
    """``grads`` with a NaN (fault 1) or an Inf (fault 2) written into one entry of a leaf."""
    leaves, treedef = jax.tree.flatten(grads)
    bad = jnp.where(fault == NAN, jnp.nan, jnp.inf).astype(leaves[0].dtype)
    first = leaves[0].reshape(-1)
    first = first.at[3].set(jnp.where(fault > 0, bad, first[3])).reshape(leaves[0].shape)
    return treedef.unflatten([first, *leaves[1:]])


def _digits():
    x, y = load_digits(return_X_y=True)
    x = jnp.asarray(x / 16.0, jnp.float32)
    y = jnp.asarray(y, jnp.int32)
    rng = np.random.default_rng(0)
    params = {
        "w1": jnp.asarray(rng.standard_normal((64, 32)) / 8.0, jnp.float32),
        "b1": jnp.zeros(32, jnp.float32),
        "w2": jnp.asarray(rng.standard_normal((32, 10)) / 6.0, jnp.float32),
        "b2": jnp.zeros(10, jnp.float32),
    }

    def loss(p, xb, yb):
        logits = jnp.tanh(xb @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, yb))

    return params, loss, x, y


def test_fault_injection_on_digits_counters_are_exact_and_the_run_equals_the_clean_skipping_run():
    params, loss, x, y = _digits()
    steps, batch, max_errors = 150, 64, 3
    faults = _faults(np.random.default_rng(1), steps, max_run=max_errors)
    assert 10 < int(np.sum(faults > 0)) and np.any(faults == NAN) and np.any(faults == INF)
    tx = og.apply_if_finite(og.adam(og.cosine_decay_schedule(0.01, steps)), max_errors)
    clean = og.adam(og.cosine_decay_schedule(0.01, steps))

    def batch_at(t):
        start = (t * batch) % (x.shape[0] - batch)
        return (
            jax.lax.dynamic_slice_in_dim(x, start, batch),
            jax.lax.dynamic_slice_in_dim(y, start, batch),
        )

    @jax.jit
    def go(params, faults):
        def wrapped(carry, tf):
            p, s = carry
            t, fault = tf
            g = _inject(jax.grad(loss)(p, *batch_at(t)), fault)
            u, s = tx.update(g, s, p)
            counters = (s.notfinite_count, s.last_finite, s.total_notfinite)
            return (og.apply_updates(p, u), s), counters

        def reference(carry, tf):
            """Plain Adam that leaves params and state untouched at the faulty steps."""
            p, s = carry
            t, fault = tf
            u, s_new = clean.update(jax.grad(loss)(p, *batch_at(t)), s, p)
            skip = fault > 0
            keep = lambda old, new: jax.tree.map(lambda a, b: jnp.where(skip, a, b), old, new)  # noqa: E731
            return (keep(p, og.apply_updates(p, u)), keep(s, s_new)), None

        ts = (jnp.arange(steps), faults)
        (p_w, s_w), counters = jax.lax.scan(wrapped, (params, tx.init(params)), ts)
        (p_c, _), _ = jax.lax.scan(reference, (params, clean.init(params)), ts)
        return p_w, p_c, s_w, counters

    p_w, p_c, s_w, counters = go(params, jnp.asarray(faults))
    expected = _expected_counters(faults, max_errors)
    np.testing.assert_array_equal(np.asarray(counters[0]), expected[:, 0])
    np.testing.assert_array_equal(np.asarray(counters[1]), expected[:, 1].astype(bool))
    np.testing.assert_array_equal(np.asarray(counters[2]), expected[:, 2])
    # The inner optimizer stepped exactly at the finite steps (its count and schedule).
    assert int(s_w.inner_state.count) == int(np.sum(faults == 0))
    loss_w, loss_c, loss_0 = (float(loss(p, x, y)) for p in (p_w, p_c, params))
    assert loss_w < 0.5 * loss_0  # the run trains
    np.testing.assert_allclose(loss_w, loss_c, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), p_w, p_c)


def _run_with_faults(tx, prob, faults, dtype):
    cast = lambda t: jax.tree.map(lambda v: jnp.asarray(v, dtype), t)  # noqa: E731
    theta0, a, noise = cast(prob.theta0), cast(prob.a), cast(prob.noise)

    @jax.jit
    def go(faults):
        def step(carry, inputs):
            theta, s = carry
            n_t, fault = inputs
            g = jax.tree.map(lambda a_, th, n_: a_ * th + n_, a, theta, n_t)
            u, s = tx.update(_inject(g, fault), s, theta)
            theta = og.apply_updates(theta, u)
            out = (s.notfinite_count, s.last_finite, s.total_notfinite)
            return (theta, s), (theta, out)

        return jax.lax.scan(step, (theta0, tx.init(theta0)), (noise, faults))[1]

    traj, counters = go(jnp.asarray(faults))
    rows = np.concatenate(
        [np.asarray(v, np.float64).reshape(prob.steps, -1) for v in jax.tree.leaves(traj)], 1
    )
    first = prob.flat(prob.theta0)[None].astype(np.float64)
    return np.vstack([first, rows]), [np.asarray(c) for c in counters]


def test_trajectory_and_counters_match_optax_apply_if_finite():
    prob = problem(7)
    faults = _faults(np.random.default_rng(2), prob.steps, max_run=2)
    ours, c_ours = _run_with_faults(
        og.apply_if_finite(og.adamw(0.05, weight_decay=0.1), 2), prob, faults, jnp.float32
    )
    with jax.enable_x64(True):
        ref, c_ref = _run_with_faults(
            optax.apply_if_finite(optax.adamw(0.05, weight_decay=0.1), 2),
            prob,
            faults,
            jnp.float64,
        )
    assert_trajectories_close(ours, ref)
    for a, b in zip(c_ours, c_ref):
        np.testing.assert_array_equal(a, b)


def test_gives_up_after_max_consecutive_errors_as_optax_does():
    faults = np.array([0, 1, 1, 2, 1, 0, 2, 0, 1, 1, 1], np.int32)
    for n in (0, 1, 2):
        out = {}
        for lib, params in ((og, jnp.ones(5)), (optax, jnp.ones(5))):
            tx = lib.apply_if_finite(lib.sgd(0.1), n)
            step = jax.jit(tx.update)
            state, rows = tx.init(params), []
            for f in faults:
                g = _inject(jnp.full(5, 2.0), jnp.asarray(f))
                u, state = step(g, state, params)
                rows.append(
                    (
                        bool(jnp.any(jnp.isnan(u))),
                        bool(jnp.any(u != 0)),
                        int(state.notfinite_count),
                        bool(state.last_finite),
                        int(state.total_notfinite),
                    )
                )
            out[lib.__name__] = rows
        assert out["optgrad"] == out["optax"], n
        expected = _expected_counters(faults, n)
        assert [r[2:] for r in out["optgrad"]] == [
            (int(c), bool(f), int(t)) for c, f, t, _ in expected
        ]
        # A step that gives up is applied: its updates are non-finite.
        assert [r[0] or r[1] for r in out["optgrad"]] == [bool(a) for a in expected[:, 3]]


def test_extra_arguments_hyperparameters_and_one_compilation():
    def reads_value():
        def update_fn(updates, state, params=None, *, value=1.0):
            return jax.tree.map(lambda u: u * value, updates), state

        return og.GradientTransformation(og.init_empty_state, update_fn)

    tx = og.apply_if_finite(og.chain(reads_value(), og.sgd(0.1)), 1)
    step = jax.jit(lambda g, s: tx.update(g, s, value=3.0, unknown="x"))
    state = tx.init(jnp.zeros(2))
    u, state = step(jnp.ones(2), state)
    np.testing.assert_allclose(u, -0.3, rtol=1e-6)
    state = og.tree.set(state, learning_rate=1.0)
    u, state = step(jnp.array([jnp.nan, 1.0]), state)
    np.testing.assert_array_equal(u, 0.0)
    u, state = step(jnp.ones(2), state)
    np.testing.assert_allclose(u, -3.0)
    assert step._cache_size() == 1
    assert float(og.tree.get(state, "learning_rate")) == 1.0


def test_zero_nans_matches_optax():
    grads = {"a": jnp.array([1.0, jnp.nan, jnp.inf]), "b": jnp.array([[2.0, 3.0]])}
    ours, s_ours = og.zero_nans().update(grads, og.zero_nans().init(grads))
    ref, s_ref = optax.zero_nans().update(grads, optax.zero_nans().init(grads))
    jax.tree.map(np.testing.assert_array_equal, ours, ref)
    jax.tree.map(np.testing.assert_array_equal, s_ours.found_nan, s_ref.found_nan)
    assert bool(s_ours.found_nan["a"]) and not bool(s_ours.found_nan["b"])


def test_skip_functions_match_optax():
    trees = [
        {"a": jnp.array([1.0, 2.0]), "b": jnp.array([3.0])},
        {"a": jnp.array([jnp.nan, 2.0]), "b": jnp.array([jnp.inf])},
        {"a": jnp.array([0.1, 0.2]), "b": jnp.array([0.3])},
    ]
    for tree in trees:
        for ours, ref in (
            (og.skip_not_finite(tree, 0, None), optax.skip_not_finite(tree, 0, None)),
            (
                og.skip_large_updates(tree, 0, None, max_squared_norm=10.0),
                optax.skip_large_updates(tree, 0, None, max_squared_norm=10.0),
            ),
        ):
            assert bool(ours[0]) == bool(ref[0])
            assert ours[1].keys() == ref[1].keys()
            for key in ref[1]:
                np.testing.assert_allclose(ours[1][key], ref[1][key], rtol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match=r"max_consecutive_errors=-1"):
        og.apply_if_finite(og.sgd(0.1), -1)
    with pytest.raises(TypeError, match=r"member inner must be a gradient transformation"):
        og.apply_if_finite("adam", 1)
    tx = og.apply_if_finite(og.sgd(0.1), 1)
    with pytest.raises(ValueError, match=r"expected an ApplyIfFiniteState.*got EmptyState"):
        tx.update(jnp.ones(1), og.EmptyState())
