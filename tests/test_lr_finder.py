"""``optgrad.lr_finder`` (the LR range test) and ``optgrad.lr_sweep`` (vmapped training)."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

import optgrad as og

matplotlib.use("Agg")


def _quadratic(curvature: float, dim: int = 8):
    """``0.5 * sum(h_i w_i^2)`` with ``h`` from ``curvature / 10`` to ``curvature``: gradient
    descent is best at ``1 / curvature`` and diverges above ``2 / curvature``."""
    h = jnp.linspace(curvature / 10, curvature, dim)
    return lambda w: 0.5 * jnp.sum(h * w**2), jnp.ones(dim)


@pytest.mark.parametrize("curvature", [4.0, 100.0])
def test_suggestion_is_within_2x_of_the_best_step_on_a_quadratic(curvature):
    loss, w = _quadratic(curvature)
    result = og.lr_finder(loss, w)
    assert result.diverged
    assert 0.5 / curvature <= result.suggestion <= 2.0 / curvature
    assert result.suggestion == result.lr_at_min / 10
    assert result.steepest_lr < result.lr_at_min
    # The learning rates grow geometrically from min_lr; the record stops at divergence.
    n = len(result.lrs)
    assert 10 < n < 100 and result.losses.shape == result.raw_losses.shape == (n,)
    np.testing.assert_allclose(result.lrs, 1e-7 * 1e8 ** (np.arange(n) / 99), rtol=2e-6)
    assert np.all(np.isfinite(result.losses))


def test_records_the_same_losses_as_a_python_loop():
    loss, w = _quadratic(4.0, dim=3)
    result = og.lr_finder(loss, w, optimizer=og.adam, min_lr=1e-3, max_lr=1.0, num_steps=30)
    schedule = og.exponential_decay(1e-3, 29, 1e3, end_value=1.0)
    tx = og.adam(schedule)
    state, raw = tx.init(w), []
    for _ in range(len(result.lrs)):
        value, grads = jax.value_and_grad(loss)(w)
        raw.append(float(value))
        updates, state = tx.update(grads, state, w)
        w = og.apply_updates(w, updates)
    np.testing.assert_allclose(result.raw_losses, raw, rtol=1e-5)
    beta = 0.98
    average, smoothed = 0.0, []
    for i, value in enumerate(raw):
        average = beta * average + (1 - beta) * value
        smoothed.append(average / (1 - beta ** (i + 1)))
    np.testing.assert_allclose(result.losses, smoothed, rtol=1e-5)


def _regression(n_batches: int = 7, batch: int = 16, dim: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_batches, batch, dim)).astype(np.float32)
    y = x @ rng.normal(size=dim).astype(np.float32) + 0.1 * rng.normal(size=(n_batches, batch))
    params = {"w": jnp.zeros(dim), "b": jnp.zeros(())}

    def loss(p, data):
        inputs, targets = data
        return jnp.mean((inputs @ p["w"] + p["b"] - targets) ** 2)

    return loss, params, (jnp.asarray(x), jnp.asarray(y, jnp.float32))


def test_batches_are_cycled_and_traced_once():
    loss, params, batches = _regression()
    traces = []

    def counted(p, data):
        traces.append(None)
        return loss(p, data)

    result = og.lr_finder(counted, params, batches, num_steps=20, min_lr=1e-4, max_lr=1.0)
    assert len(traces) == 1  # one scan body: one trace, one compilation
    assert len(result.lrs) == 20 and not result.diverged
    # Step i used batch i % 7.
    first = float(loss(params, jax.tree.map(lambda leaf: leaf[0], batches)))
    assert result.raw_losses[0] == pytest.approx(first, rel=1e-6)


def test_plot_draws_raw_and_smoothed_losses():
    import matplotlib.pyplot as plt

    loss, w = _quadratic(4.0)
    result = og.lr_finder(loss, w, num_steps=60)
    ax = result.plot()
    raw, smooth = ax.get_lines()[:2]
    np.testing.assert_allclose(raw.get_ydata(), result.raw_losses)
    np.testing.assert_allclose(smooth.get_ydata(), result.losses)
    np.testing.assert_allclose(smooth.get_xdata(), result.lrs)
    assert ax.get_xscale() == "log"
    plt.close("all")


LR_FINDER_ERRORS = [
    (dict(min_lr=1.0, max_lr=0.1), "max_lr=...) must be greater than min_lr, got max_lr=0.1"),
    (dict(min_lr=0.0), "min_lr=...) must be positive, got min_lr=0.0"),
    (dict(num_steps=1), "num_steps=...) must be at least 2, got num_steps=1"),
    (dict(smooth=1.0), "smooth=...) must be in [0, 1), got smooth=1.0"),
    (dict(diverge_factor=1.0), "diverge_factor=...) must be > 1, got diverge_factor=1.0"),
]


@pytest.mark.parametrize(("kwargs", "message"), LR_FINDER_ERRORS)
def test_lr_finder_errors(kwargs, message):
    loss, w = _quadratic(1.0)
    with pytest.raises(ValueError, match="^" + re.escape(f"optgrad.lr_finder({message}")):
        og.lr_finder(loss, w, **kwargs)


def test_batches_must_share_a_leading_axis():
    loss, params, (x, y) = _regression()
    with pytest.raises(ValueError, match=r"^optgrad\.lr_finder\(batches=\.\.\.\) must be None"):
        og.lr_finder(loss, params, (x, y[:3]))


# --- lr_sweep ------------------------------------------------------------------------------


def _train_alone(loss, params, batches, optimizer, lr, num_steps):
    tx = optimizer(lr)
    state = tx.init(params)

    @jax.jit
    def step(params, state, batch):
        value, grads = jax.value_and_grad(loss)(params, batch)
        updates, state = tx.update(grads, state, params)
        return og.apply_updates(params, updates), state, value

    n = jax.tree.leaves(batches)[0].shape[0]
    losses = []
    for i in range(num_steps):
        params, state, value = step(params, state, jax.tree.map(lambda x, i=i: x[i % n], batches))
        losses.append(float(value))
    final = float(loss(params, jax.tree.map(lambda x: x[num_steps % n], batches)))
    return np.asarray(losses), final, params


@pytest.mark.parametrize(
    "optimizer",
    [og.sgd, og.adam, lambda lr: og.chain(og.clip_by_global_norm(1.0), og.sgd(lr, momentum=0.9))],
    ids=["sgd", "adam", "clipped-momentum"],
)
def test_sweep_equals_separate_runs(optimizer):
    loss, params, batches = _regression()
    lrs = [1e-3, 1e-2, 0.1, 0.3]
    sweep = og.lr_sweep(loss, params, batches, lrs, optimizer, num_steps=15)
    assert sweep.losses.shape == (4, 15) and sweep.final_losses.shape == (4,)
    for k, lr in enumerate(lrs):
        losses, final, trained = _train_alone(loss, params, batches, optimizer, lr, 15)
        np.testing.assert_allclose(sweep.losses[k], losses, rtol=2e-6, atol=1e-7)
        np.testing.assert_allclose(sweep.final_losses[k], final, rtol=2e-6, atol=1e-7)
        np.testing.assert_allclose(sweep.params["w"][k], trained["w"], rtol=2e-6, atol=1e-7)


def test_sweep_compiles_once_for_any_number_of_learning_rates():
    loss, params, batches = _regression()
    counts = []
    for lrs in ([0.1], list(np.geomspace(1e-4, 1.0, 16))):
        traces = []

        def counted(p, data, traces=traces):
            traces.append(None)
            return loss(p, data)

        og.lr_sweep(counted, params, batches, lrs)
        counts.append(len(traces))
    # One trace of the scan body and one of the final evaluation, however many lrs.
    assert counts == [2, 2]


def test_sweep_without_batches_and_errors():
    sweep = og.lr_sweep(lambda w: 0.5 * jnp.sum(w**2), jnp.ones(2), None, [0.5, 1.0], num_steps=3)
    np.testing.assert_allclose(sweep.final_losses, [0.25**3, 0.0])
    with pytest.raises(ValueError, match=r"^optgrad\.lr_sweep\(num_steps=\.\.\.\) is required"):
        og.lr_sweep(lambda w: jnp.sum(w), jnp.ones(2), None, [0.1])
    with pytest.raises(ValueError, match=r"^optgrad\.lr_sweep\(lrs=\.\.\.\) must be a non-empty"):
        og.lr_sweep(lambda w: jnp.sum(w), jnp.ones(2), None, [], num_steps=2)


def test_numpy_batches_give_the_same_result_as_device_arrays():
    loss, params, batches = _regression()
    host = jax.tree.map(np.asarray, batches)
    on_device = og.lr_finder(loss, params, batches, num_steps=12, min_lr=1e-4, max_lr=1.0)
    on_host = og.lr_finder(loss, params, host, num_steps=12, min_lr=1e-4, max_lr=1.0)
    np.testing.assert_array_equal(np.asarray(on_host.losses), np.asarray(on_device.losses))
    lrs = jnp.array([1e-3, 1e-2])
    sweep_host = og.lr_sweep(loss, params, host, lrs, og.sgd, num_steps=5)
    sweep_device = og.lr_sweep(loss, params, batches, lrs, og.sgd, num_steps=5)
    np.testing.assert_array_equal(
        np.asarray(sweep_host.final_losses), np.asarray(sweep_device.final_losses)
    )
