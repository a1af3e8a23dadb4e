"""Schedules Optax lacks (WSD, cyclic, product, per_epoch) against float64 formulas from their
papers, and every schedule at extreme counts."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optgrad as og
from optgrad import schedules

COUNTS = np.arange(400)


def _evaluate(schedule, counts=COUNTS):
    values = jax.jit(jax.vmap(schedule))(jnp.asarray(counts, jnp.int32))
    return np.asarray(values, np.float64)


# --- warmup-stable-decay (Hu et al. 2024; Hägele et al. 2024) ------------------------------


def _ref_wsd(c, init_value, peak_value, warmup_steps, total_steps, decay_fraction=0.2,
             end_value=0.0, decay_shape="linear"):  # fmt: skip
    decay = round(decay_fraction * total_steps)
    p = np.clip(c - (total_steps - decay), 0, decay) / decay
    w = {"linear": 1 - p, "cosine": (1 + np.cos(np.pi * p)) / 2, "sqrt": 1 - np.sqrt(p)}
    after = end_value + (peak_value - end_value) * w[decay_shape]
    warm = init_value + (peak_value - init_value) * c / max(warmup_steps, 1)
    return np.where(c < warmup_steps, warm, after)


WSD = [
    dict(init_value=0.0, peak_value=1.0, warmup_steps=30, total_steps=300),
    dict(init_value=1e-5, peak_value=3e-4, warmup_steps=0, total_steps=350, decay_fraction=0.1,
         end_value=3e-6, decay_shape="sqrt"),
    dict(init_value=0.0, peak_value=1.0, warmup_steps=10, total_steps=100, decay_fraction=0.9,
         decay_shape="cosine"),
    dict(init_value=0.1, peak_value=0.5, warmup_steps=1, total_steps=2, decay_fraction=0.5,
         end_value=0.2, decay_shape="sqrt"),
    dict(init_value=0.0, peak_value=2.0, warmup_steps=50, total_steps=399,
         decay_fraction=1.0 - 50 / 399, decay_shape="cosine"),
]  # fmt: skip


@pytest.mark.parametrize("kwargs", WSD, ids=range(len(WSD)))
def test_warmup_stable_decay_matches_float64(kwargs):
    ours = _evaluate(schedules.warmup_stable_decay_schedule(**kwargs))
    exact = _ref_wsd(COUNTS.astype(np.float64), **kwargs)
    np.testing.assert_allclose(ours, exact, rtol=1e-6, atol=0)


def test_warmup_stable_decay_phases():
    schedule = schedules.warmup_stable_decay_schedule(0.0, 1.0, 10, 100, decay_fraction=0.2)
    values = _evaluate(schedule, np.arange(120))
    assert np.all(values[10:81] == 1.0)  # stable from the end of the warmup to T - D
    assert values[100] == 0.0 and np.all(values[100:] == 0.0)
    assert np.all(np.diff(values[80:101]) < 0)


# --- cyclic (Smith 2017) ------------------------------------------------------------------


def _ref_cyclic(c, base_value, max_value, step_size_up, step_size_down=None,
                mode="triangular", gamma=1.0):  # fmt: skip
    down = step_size_up if step_size_down is None else step_size_down
    period = step_size_up + down
    r, k = c % period, c // period
    h = np.where(r <= step_size_up, r / step_size_up, (period - r) / down)
    scale = {"triangular": 1.0, "triangular2": 0.5**k, "exp_range": gamma**c}[mode]
    return base_value + (max_value - base_value) * h * scale


CYCLIC = [
    dict(base_value=1e-3, max_value=1e-1, step_size_up=20),
    dict(base_value=1e-3, max_value=1e-1, step_size_up=10, step_size_down=30, mode="triangular2"),
    dict(base_value=0.01, max_value=1.0, step_size_up=7, mode="exp_range", gamma=0.99),
    dict(base_value=1.0, max_value=0.5, step_size_up=1, step_size_down=3),  # max below base
    dict(base_value=0.0, max_value=1.0, step_size_up=50, step_size_down=1, mode="triangular2"),
]


@pytest.mark.parametrize("kwargs", CYCLIC, ids=range(len(CYCLIC)))
def test_cyclic_matches_float64(kwargs):
    ours = _evaluate(schedules.cyclic_schedule(**kwargs))
    exact = _ref_cyclic(COUNTS.astype(np.float64), **kwargs)
    np.testing.assert_allclose(ours, exact, rtol=1e-6, atol=1e-7 * np.max(np.abs(exact)))


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_matches_torch_cycliclr(mode):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    scheduler = torch.optim.lr_scheduler.CyclicLR(
        opt, base_lr=1e-3, max_lr=0.1, step_size_up=7, step_size_down=13, mode=mode,
        gamma=0.995, cycle_momentum=False,
    )  # fmt: skip
    theirs = []
    for _ in range(120):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    ours = _evaluate(
        schedules.cyclic_schedule(1e-3, 0.1, 7, 13, mode=mode, gamma=0.995), np.arange(120)
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


# --- product and per_epoch -----------------------------------------------------------------


def test_product_schedule_is_the_pointwise_product():
    warmup = schedules.linear_schedule(0.0, 1.0, 50)
    decay = schedules.cosine_decay_schedule(0.1, 400)
    product = schedules.product_schedule(warmup, decay, lambda c: 2.0)
    np.testing.assert_allclose(
        _evaluate(product), _evaluate(warmup) * _evaluate(decay) * 2.0, rtol=1e-6
    )
    np.testing.assert_array_equal(_evaluate(schedules.product_schedule(decay)), _evaluate(decay))


def test_per_epoch_holds_the_value_within_an_epoch():
    by_epoch = schedules.exponential_decay(1.0, transition_steps=1, decay_rate=0.9)
    stepwise = schedules.per_epoch(by_epoch, steps_per_epoch=30)
    np.testing.assert_allclose(_evaluate(stepwise), 0.9 ** (COUNTS // 30), rtol=1e-6)


def test_product_and_per_epoch_errors():
    with pytest.raises(ValueError, match=r"^optgrad\.schedules\.product_schedule\(\*schedules\) "):
        schedules.product_schedule()
    message = "optgrad.schedules.product_schedule(schedules[1]=...) must be a schedule"
    with pytest.raises(TypeError, match="^" + re.escape(message)):
        schedules.product_schedule(abs, 0.5)
    message = (
        "optgrad.schedules.per_epoch(steps_per_epoch=...) must be a positive integer, "
        "got steps_per_epoch=0"
    )
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        schedules.per_epoch(abs, 0)


NEW_ERRORS = [
    (
        "warmup_stable_decay_schedule",
        dict(init_value=0.0, peak_value=1.0, warmup_steps=10, total_steps=0),
        ValueError,
        "total_steps=...) must be a positive integer, got total_steps=0",
    ),
    (
        "warmup_stable_decay_schedule",
        dict(init_value=0.0, peak_value=1.0, warmup_steps=10, total_steps=100, decay_fraction=0.0),
        ValueError,
        "decay_fraction=...) must be in (0, 1], got decay_fraction=0.0",
    ),
    (
        "warmup_stable_decay_schedule",
        dict(init_value=0.0, peak_value=1.0, warmup_steps=90, total_steps=100),
        ValueError,
        "decay_fraction=...) must leave a decay of at least one step that does not overlap "
        "the warmup",
    ),
    (
        "warmup_stable_decay_schedule",
        dict(init_value=0.0, peak_value=1.0, warmup_steps=1, total_steps=100, decay_shape="exp"),
        ValueError,
        "decay_shape=...) must be one of 'linear', 'cosine', 'sqrt', got decay_shape='exp'",
    ),
    (
        "cyclic_schedule",
        dict(base_value=0.0, max_value=1.0, step_size_up=0),
        ValueError,
        "step_size_up=...) must be a positive integer, got step_size_up=0",
    ),
    (
        "cyclic_schedule",
        dict(base_value=0.0, max_value=1.0, step_size_up=2, step_size_down=-1),
        ValueError,
        "step_size_down=...) must be a positive integer, got step_size_down=-1",
    ),
    (
        "cyclic_schedule",
        dict(base_value=0.0, max_value=1.0, step_size_up=2, mode="sine"),
        ValueError,
        "mode=...) must be one of 'triangular', 'triangular2', 'exp_range', got mode='sine'",
    ),
    (
        "cyclic_schedule",
        dict(base_value=0.0, max_value=1.0, step_size_up=2, gamma=1.5),
        ValueError,
        "gamma=...) must be in (0, 1], got gamma=1.5",
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "error", "message"), NEW_ERRORS)
def test_new_schedule_errors(name, kwargs, error, message):
    expected = f"optgrad.schedules.{name}({message}"
    with pytest.raises(error, match="^" + re.escape(expected)):
        getattr(schedules, name)(**kwargs)


# --- every schedule: extreme counts, no NaN, float32 ---------------------------------------

INT32_MAX = 2**31 - 1
ALL = {
    "constant_schedule": lambda: og.constant_schedule(0.5),
    "linear_schedule": lambda: og.linear_schedule(1.0, 0.1, 300, 10),
    "polynomial_schedule": lambda: og.polynomial_schedule(1.0, 0.1, 0.5, 300, 10),
    "exponential_decay": lambda: og.exponential_decay(1.0, 10, 0.9, 5, False, None),
    "exponential_growth": lambda: og.exponential_decay(1e-3, 10, 1.5, end_value=1.0),
    "cosine_decay_schedule": lambda: og.cosine_decay_schedule(1.0, 300, 0.1, 2.0),
    "warmup_cosine_decay_schedule": lambda: og.warmup_cosine_decay_schedule(0.0, 1.0, 20, 300),
    "piecewise_constant_schedule": lambda: og.piecewise_constant_schedule(1.0, {10: 0.5}),
    "join_schedules": lambda: og.join_schedules(
        [og.linear_schedule(0.0, 1.0, 10), og.cosine_decay_schedule(1.0, 90)], [10]
    ),
    "inverse_time_decay": lambda: og.inverse_time_decay(1.0, 0.5, 10),
    "piecewise_interpolate_schedule": lambda: og.piecewise_interpolate_schedule(
        "cosine", 1.0, {10: 0.5, 2**30: 0.1}
    ),
    "warmup_constant_schedule": lambda: og.warmup_constant_schedule(0.0, 1.0, 10),
    "warmup_exponential_decay_schedule": lambda: og.warmup_exponential_decay_schedule(
        0.0, 1.0, 10, 10, 0.5
    ),
    "linear_onecycle_schedule": lambda: og.linear_onecycle_schedule(1000, 1.0),
    "cosine_onecycle_schedule": lambda: og.cosine_onecycle_schedule(1000, 1.0),
    "sgdr_schedule": lambda: og.sgdr_schedule(
        [dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=50)] * 3
    ),
    "warmup_stable_decay_schedule": lambda: og.warmup_stable_decay_schedule(0.0, 1.0, 10, 1000),
    "cyclic_triangular": lambda: og.cyclic_schedule(0.1, 1.0, 7, 5),
    "cyclic_triangular2": lambda: og.cyclic_schedule(0.1, 1.0, 7, 5, "triangular2"),
    "cyclic_exp_range": lambda: og.cyclic_schedule(0.1, 1.0, 7, 5, "exp_range", 0.999),
    "product_schedule": lambda: og.product_schedule(
        og.warmup_constant_schedule(0.0, 1.0, 10), og.cosine_decay_schedule(1.0, 100)
    ),
    "per_epoch": lambda: og.per_epoch(og.exponential_decay(1.0, 1, 0.5), 100),
}
BIG = np.array([0, 1, 2**24 - 1, 2**24, 2**24 + 1, 2**30, INT32_MAX - 1, INT32_MAX], np.int64)


@pytest.mark.parametrize("name", sorted(ALL))
def test_huge_counts_are_finite_and_settled(name):
    schedule = ALL[name]()
    values = _evaluate(schedule, BIG)
    eager = np.asarray(schedule(INT32_MAX))
    assert eager.dtype == np.float32
    assert np.all(np.isfinite(values)) and np.isfinite(eager), values
    np.testing.assert_allclose(eager, values[-1], rtol=1e-6)
    assert np.all(values >= 0) and np.all(values <= 1.0)


def test_schedules_match_at_int32_max_their_limit():
    limits = {
        "linear_schedule": 0.1, "polynomial_schedule": 0.1, "cosine_decay_schedule": 0.1,
        "warmup_cosine_decay_schedule": 0.0, "exponential_decay": 0.0, "exponential_growth": 1.0,
        "warmup_stable_decay_schedule": 0.0, "cosine_onecycle_schedule": 1.0 / 25 / 1e4,
        "linear_onecycle_schedule": 1.0 / 25 / 1e4, "cyclic_triangular2": 0.1,
        "per_epoch": 0.0, "warmup_constant_schedule": 1.0,
    }  # fmt: skip
    for name, limit in limits.items():
        assert float(ALL[name]()(INT32_MAX)) == pytest.approx(limit, rel=1e-6, abs=1e-30), name
