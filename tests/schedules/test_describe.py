"""Schedules you can see: ``repr``/``describe``, ``values`` and ``plot``."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import pytest

import optgrad as og
from optgrad import schedules

matplotlib.use("Agg")


def test_repr_is_the_factory_call_with_defaults():
    schedule = schedules.cosine_decay_schedule(0.1, 1000)
    expected = "cosine_decay_schedule(init_value=0.1, decay_steps=1000, alpha=0.0, exponent=1.0)"
    assert repr(schedule) == expected
    assert schedules.describe(schedule) == expected


def test_nested_and_positional_descriptions():
    warmup = schedules.linear_schedule(0.0, 1.0, 10)
    product = schedules.product_schedule(warmup, lambda c: 0.5)
    assert repr(product) == (
        "product_schedule(linear_schedule(init_value=0.0, end_value=1.0, transition_steps=10, "
        "transition_begin=0), <lambda>)"
    )
    joined = schedules.join_schedules([warmup, optax.cosine_decay_schedule(1.0, 10)], [10])
    assert repr(joined).startswith("join_schedules(schedules=[linear_schedule(")
    assert repr(joined).endswith(", schedule], boundaries=[10])")
    piecewise = schedules.piecewise_constant_schedule(jnp.float32(1.0), {10: 0.5})
    assert repr(piecewise) == (
        "piecewise_constant_schedule(init_value=1.0, boundaries_and_scales={10: 0.5})"
    )
    epochs = schedules.per_epoch(schedules.constant_schedule(2), steps_per_epoch=5)
    assert repr(epochs) == "per_epoch(schedule=constant_schedule(value=2), steps_per_epoch=5)"


def test_describe_falls_back_to_the_function_name():
    def warmup(count):
        return count / 10

    assert schedules.describe(warmup) == "warmup"
    assert schedules.describe(lambda count: 0.1) == "<lambda>"
    with pytest.raises(TypeError, match=r"^optgrad\.schedules\.describe\(schedule=\.\.\.\) must"):
        schedules.describe(0.1)


def test_every_factory_returns_a_described_schedule():
    built = [
        og.constant_schedule(1.0), og.linear_schedule(1.0, 0.0, 10),
        og.polynomial_schedule(1.0, 0.0, 2, 10), og.exponential_decay(1.0, 10, 0.5),
        og.cosine_decay_schedule(1.0, 10), og.warmup_cosine_decay_schedule(0.0, 1.0, 1, 10),
        og.piecewise_constant_schedule(1.0), og.inverse_time_decay(1.0, 0.5),
        og.join_schedules([abs], []), og.piecewise_interpolate_schedule("linear", 1.0),
        og.warmup_constant_schedule(0.0, 1.0, 5),
        og.warmup_exponential_decay_schedule(0.0, 1.0, 5, 10, 0.5),
        og.linear_onecycle_schedule(100, 1.0), og.cosine_onecycle_schedule(100, 1.0),
        og.sgdr_schedule([dict(init_value=0.0, peak_value=1.0, warmup_steps=1, decay_steps=5)]),
        og.warmup_stable_decay_schedule(0.0, 1.0, 5, 100), og.cyclic_schedule(0.1, 1.0, 5),
        og.product_schedule(abs), og.per_epoch(abs, 3),
    ]  # fmt: skip
    for schedule in built:
        text = repr(schedule)
        assert text.startswith(schedule.__name__ + "(") and "lambda" not in text, text
        # jit caches on the object like on a function: no recompilation for a new count.
        jitted = jax.jit(schedule)
        jitted(jnp.int32(1))
        jitted(jnp.int32(2))
        assert jitted._cache_size() == 1


def test_a_described_schedule_works_as_a_learning_rate():
    tx = og.sgd(schedules.warmup_constant_schedule(0.0, 1.0, 2))
    state = tx.init(jnp.zeros(1))
    for expected in (0.0, 0.5, 1.0):
        updates, state = tx.update(jnp.ones(1), state)
        assert float(og.tree.get(state, "learning_rate")) == expected
        assert float(updates[0]) == -expected


def test_values_in_one_call():
    schedule = schedules.cosine_decay_schedule(1.0, 100)
    got = schedules.values(schedule, 150)
    assert got.shape == (150,) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, schedule(jnp.arange(150)), rtol=1e-6, atol=1e-7)
    # Any function of the count: a scalar-only Optax schedule, an int-valued lambda.
    interpolate = optax.piecewise_interpolate_schedule("linear", 1.0, {4: 0.5})
    np.testing.assert_allclose(schedules.values(interpolate, 6), [1, 0.875, 0.75, 0.625, 0.5, 0.5])
    ints = schedules.values(lambda c: c * 2, 3)
    assert ints.dtype == jnp.float32 and ints.tolist() == [0.0, 2.0, 4.0]
    with pytest.raises(ValueError, match=r"values\(steps=\.\.\.\) must be a positive integer"):
        schedules.values(schedule, 0)


def test_plot_draws_one_line_per_schedule():
    import matplotlib.pyplot as plt

    named = {
        "warmup": schedules.warmup_constant_schedule(0.0, 1.0, 10),
        "decay": schedules.exponential_decay(1.0, 5, 0.5),
    }
    ax = schedules.plot(named, 30)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["warmup", "decay"]
    for line, schedule in zip(lines, named.values()):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(30))
        np.testing.assert_allclose(line.get_ydata(), schedules.values(schedule, 30))
    plt.close(ax.figure)

    _, ax = plt.subplots()
    listed = [schedules.cosine_decay_schedule(1.0, 20), lambda c: 0.5]
    assert schedules.plot(listed, 25, ax=ax) is ax
    assert [line.get_label() for line in ax.get_lines()] == [repr(listed[0]), "<lambda>"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), 0.5)
    assert len(schedules.plot(listed[0], 5).get_lines()) == 1
    plt.close("all")


def test_plot_without_matplotlib_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        schedules.plot(schedules.constant_schedule(1.0), 10)
