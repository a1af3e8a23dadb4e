"""The Optax-named schedules added after the first nine, against Optax 0.2.8 and float64 NumPy.

Same tolerances as ``test_schedules.py``: Optax at ``rtol=1e-6`` plus ``atol=1e-6 * scale``
(its float32 arithmetic is accurate relative to the schedule's scale only), the float64 formula
at ``rtol=1e-6``. The one-cycle schedules are also compared with ``torch.optim.lr_scheduler
.OneCycleLR``, which places its phases one step earlier.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from optgrad import schedules

COUNTS = np.arange(400)
_RNG = np.random.default_rng(5)


def _evaluate(schedule, counts=COUNTS):
    # vmap: Optax's interpolating schedules accept only scalar counts.
    values = jax.jit(jax.vmap(schedule))(jnp.asarray(counts, jnp.int32))
    return np.broadcast_to(np.asarray(values, np.float64), counts.shape)


# --- float64 references, from the formulas in the docstrings -------------------------------


def _ref_interpolate(c, interpolate_type, init_value, boundaries_and_scales=None):
    items = sorted((boundaries_and_scales or {}).items())
    bounds = [0] + [b for b, _ in items]
    levels = init_value * np.cumprod([1.0] + [s for _, s in items])
    out = np.full(c.shape, levels[-1])
    for k in range(len(items)):
        lo, hi = bounds[k], bounds[k + 1]
        p = (c - lo) / max(hi - lo, 1)
        w = p if interpolate_type == "linear" else (1 - np.cos(np.pi * p)) / 2
        out = np.where((c >= lo) & (c < hi), levels[k] + (levels[k + 1] - levels[k]) * w, out)
    return out


def _ref_linear_onecycle(
    c, transition_steps, peak_value, pct_start=0.3, pct_final=0.85, div_factor=25.0,
    final_div_factor=1e4,
):  # fmt: skip
    t, p = transition_steps, peak_value
    s, e = p / div_factor, p / div_factor / final_div_factor
    k1, k2 = int(pct_start * t), int(pct_final * t)
    return np.select(
        [c < k1, c < k2, c < t],
        [s + (p - s) * c / max(k1, 1), p + (s - p) * (c - k1) / (k2 - k1),
         s + (e - s) * (c - k2) / (t - k2)],
        e,
    )  # fmt: skip


def _ref_cosine_onecycle(
    c, transition_steps, peak_value, pct_start=0.3, div_factor=25.0, final_div_factor=1e4
):
    t, p = transition_steps, peak_value
    s, e = p / div_factor, p / div_factor / final_div_factor
    k = int(pct_start * t)
    up = p + (s - p) * (1 + np.cos(np.pi * c / max(k, 1))) / 2
    down = e + (p - e) * (1 + np.cos(np.pi * (c - k) / (t - k))) / 2
    return np.select([c < k, c < t], [up, down], e)


def _ref_warmup_constant(c, init_value, peak_value, warmup_steps):
    return init_value + (peak_value - init_value) * np.minimum(c, warmup_steps) / warmup_steps


def _ref_warmup_exponential(
    c, init_value, peak_value, warmup_steps, transition_steps, decay_rate, transition_begin=0,
    staircase=False, end_value=None,
):  # fmt: skip
    warm = init_value + (peak_value - init_value) * c / max(warmup_steps, 1)
    p = np.maximum(c - warmup_steps - transition_begin, 0) / transition_steps
    if staircase:
        p = np.floor(p)
    decay = peak_value * np.exp(p * math.log(decay_rate))
    if end_value is not None:
        decay = (np.maximum if decay_rate < 1 else np.minimum)(decay, end_value)
    return np.where(c < warmup_steps, warm, decay)


def _ref_warmup_cosine(c, init_value, peak_value, warmup_steps, decay_steps, end_value=0.0,
                       exponent=1.0):  # fmt: skip
    warm = init_value + (peak_value - init_value) * c / max(warmup_steps, 1)
    t = np.clip(c - warmup_steps, 0, decay_steps - warmup_steps)
    cosine = (0.5 * (1 + np.cos(np.pi * t / (decay_steps - warmup_steps)))) ** exponent
    return np.where(c < warmup_steps, warm, end_value + (peak_value - end_value) * cosine)


def _ref_sgdr(c, cosine_kwargs):
    out, start = None, 0
    for kwargs in cosine_kwargs:
        value = _ref_warmup_cosine(c - start, **kwargs)
        out = value if out is None else np.where(c >= start, value, out)
        start += kwargs["decay_steps"]
    return out


# --- configurations ------------------------------------------------------------------------

INTERPOLATE = [
    dict(interpolate_type="linear", init_value=1.0),
    dict(interpolate_type="cosine", init_value=0.5, boundaries_and_scales={}),
    dict(interpolate_type="linear", init_value=1.0, boundaries_and_scales={4: 0.1, 8: 0.01}),
    dict(interpolate_type="cosine", init_value=0.1, boundaries_and_scales={100: 10.0, 300: 1e-4}),
    dict(interpolate_type="linear", init_value=2.0, boundaries_and_scales={0: 0.5, 50: 3.0}),
    dict(interpolate_type="cosine", init_value=-1.0, boundaries_and_scales={250: 0.1, 20: 2.0}),
    dict(interpolate_type="linear", init_value=1.0, boundaries_and_scales={1: 0.5, 2: 0.0}),
    dict(interpolate_type="cosine", init_value=1.0, boundaries_and_scales={1000: 0.1}),
    *(
        dict(
            interpolate_type=["linear", "cosine"][i % 2],
            init_value=float(_RNG.uniform(1e-3, 1)),
            boundaries_and_scales={
                int(b): float(s) for b, s in zip(_RNG.integers(0, 400, 3), _RNG.uniform(0, 3, 3))
            },
        )
        for i in range(4)
    ),
]

LINEAR_ONECYCLE = [
    dict(transition_steps=300, peak_value=1.0),
    dict(transition_steps=100, peak_value=0.1, pct_start=0.25, pct_final=0.75, div_factor=10),
    dict(transition_steps=399, peak_value=3e-3, pct_start=0.1, pct_final=0.9, final_div_factor=100),
    dict(transition_steps=10, peak_value=1.0, pct_start=0.05, pct_final=0.5),  # rise of 0 steps
    dict(transition_steps=7, peak_value=2.0, pct_start=0.3, pct_final=0.6, div_factor=1.0),
    *(
        dict(
            transition_steps=int(_RNG.integers(20, 400)),
            peak_value=float(_RNG.uniform(1e-4, 1)),
            pct_start=float(_RNG.uniform(0.1, 0.4)),
            pct_final=float(_RNG.uniform(0.5, 0.9)),
            div_factor=float(_RNG.uniform(2, 50)),
            final_div_factor=float(_RNG.uniform(10, 1e4)),
        )
        for _ in range(3)
    ),
]

COSINE_ONECYCLE = [
    dict(transition_steps=300, peak_value=1.0),
    dict(transition_steps=100, peak_value=0.1, pct_start=0.25, div_factor=10),
    dict(transition_steps=399, peak_value=3e-3, pct_start=0.9, final_div_factor=1e6),
    dict(transition_steps=3, peak_value=1.0, pct_start=0.3),  # rise of 0 steps
    dict(transition_steps=1, peak_value=0.5, pct_start=0.5),
    *(
        dict(
            transition_steps=int(_RNG.integers(2, 400)),
            peak_value=float(_RNG.uniform(1e-4, 1)),
            pct_start=float(_RNG.uniform(0.05, 0.95)),
            div_factor=float(_RNG.uniform(2, 50)),
            final_div_factor=float(_RNG.uniform(10, 1e4)),
        )
        for _ in range(3)
    ),
]

WARMUP_CONSTANT = [
    dict(init_value=0.0, peak_value=1.0, warmup_steps=100),
    dict(init_value=1e-5, peak_value=3e-4, warmup_steps=1),
    dict(init_value=0.5, peak_value=-1.0, warmup_steps=399),
    dict(init_value=0.1, peak_value=0.1, warmup_steps=7),
]

WARMUP_EXPONENTIAL = [
    dict(init_value=0.0, peak_value=1.0, warmup_steps=50, transition_steps=10, decay_rate=0.5),
    dict(init_value=1e-4, peak_value=0.1, warmup_steps=0, transition_steps=7, decay_rate=0.75,
         transition_begin=20, staircase=True),
    dict(init_value=0.0, peak_value=1.0, warmup_steps=30, transition_steps=3, decay_rate=0.5,
         end_value=0.01),
    dict(init_value=0.0, peak_value=1e-3, warmup_steps=5, transition_steps=5, decay_rate=2.0,
         end_value=0.5),
    dict(init_value=0.2, peak_value=1.0, warmup_steps=1, transition_steps=1,
         decay_rate=0.96875),
]  # fmt: skip

SGDR = [
    dict(cosine_kwargs=[dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100)]),
    dict(
        cosine_kwargs=[
            dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100),
            dict(init_value=0.1, peak_value=0.5, warmup_steps=0, decay_steps=150, end_value=0.01),
            dict(init_value=0.0, peak_value=0.25, warmup_steps=20, decay_steps=80, exponent=2.0),
        ]
    ),
    dict(cosine_kwargs=[dict(init_value=0.0, peak_value=1.0, warmup_steps=0, decay_steps=1)] * 5),
]

CASES = [
    ("piecewise_interpolate_schedule", _ref_interpolate, INTERPOLATE),
    ("linear_onecycle_schedule", _ref_linear_onecycle, LINEAR_ONECYCLE),
    ("cosine_onecycle_schedule", _ref_cosine_onecycle, COSINE_ONECYCLE),
    ("warmup_constant_schedule", _ref_warmup_constant, WARMUP_CONSTANT),
    ("warmup_exponential_decay_schedule", _ref_warmup_exponential, WARMUP_EXPONENTIAL),
    ("sgdr_schedule", _ref_sgdr, SGDR),
]


def _atol_for(reference, relative):
    return relative * float(np.max(np.abs(reference), initial=0.0))


@pytest.mark.parametrize(
    ("name", "reference", "kwargs"),
    [
        pytest.param(name, reference, kwargs, id=f"{name}-{i}")
        for name, reference, configs in CASES
        for i, kwargs in enumerate(configs)
    ],
)
def test_matches_optax_and_float64(name, reference, kwargs):
    ours = _evaluate(getattr(schedules, name)(**kwargs))
    theirs = _evaluate(getattr(optax, name)(**kwargs))
    exact = reference(COUNTS.astype(np.float64), **kwargs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=_atol_for(exact, 1e-6))
    crosses_zero = exact.min() < 0 < exact.max()
    atol = _atol_for(exact, 5e-7) if crosses_zero else 0.0
    np.testing.assert_allclose(ours, exact, rtol=1e-6, atol=atol)


# --- one-cycle: Optax's phase placement is one step later than torch's -----------------------


def _torch_onecycle(total_steps, peak_value, pct_start, div_factor, final_div_factor):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=peak_value)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=peak_value, total_steps=total_steps, pct_start=pct_start,
        anneal_strategy="cos", cycle_momentum=False, div_factor=div_factor,
        final_div_factor=final_div_factor,
    )  # fmt: skip
    lrs = []
    for _ in range(total_steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step() if len(lrs) < total_steps else None
    return np.asarray(lrs)


def test_cosine_onecycle_is_one_step_later_than_torch():
    kwargs = dict(peak_value=1.0, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    theirs = _torch_onecycle(100, **kwargs)
    ours = _evaluate(schedules.cosine_onecycle_schedule(100, **kwargs), np.arange(101))
    final = 1.0 / 25.0 / 1e4
    # Same start; the peak at step 30 (floor(pct_start * T)) here, 29 (pct_start * T - 1) in torch.
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6)
    assert int(np.argmax(ours)) == 30 and int(np.argmax(theirs)) == 29
    assert ours[30] == np.float32(1.0) and theirs[29] == pytest.approx(1.0)
    # torch ends its cycle at step T - 1 = 99, this schedule at step T = 100.
    assert theirs[99] == pytest.approx(final, rel=1e-9)
    assert ours[100] == np.float32(final) and ours[99] > 100 * final
    # Shifting torch's phases one step later gives this schedule's rising phase exactly:
    # torch rises over 29 steps, cos(pi * e / 29); this one over 30, cos(pi * c / 30).
    rise = _ref_cosine_onecycle(np.arange(31.0), 100, **kwargs)
    np.testing.assert_allclose(ours[:31], rise, rtol=1e-6)
    torch_rise = 1.0 + (1 / 25 - 1.0) * (1 + np.cos(np.pi * np.arange(30) / 29)) / 2
    np.testing.assert_allclose(theirs[:30], torch_rise, rtol=1e-6)


# --- deliberate differences ----------------------------------------------------------------


def test_warmup_constant_with_no_warmup_starts_at_the_peak():
    assert float(optax.warmup_constant_schedule(0.1, 1.0, 0)(5)) == pytest.approx(0.1)
    np.testing.assert_array_equal(
        _evaluate(schedules.warmup_constant_schedule(0.1, 1.0, 0), np.arange(5)), 1.0
    )


def test_linear_onecycle_refuses_phases_that_optax_merges():
    # floor(0.3 * 10) == floor(0.35 * 10) == 3: Optax's dict keeps only one of the two steps
    # and never reaches the peak.
    assert np.max(_evaluate(optax.linear_onecycle_schedule(10, 1.0, 0.3, 0.35), np.arange(20))) < 1
    with pytest.raises(ValueError, match=r"is too short for pct_start=0.3 and pct_final=0.35"):
        schedules.linear_onecycle_schedule(10, 1.0, 0.3, 0.35)


def test_sgdr_with_zero_peak_still_reaches_end_value():
    cycle = dict(init_value=0.0, peak_value=0.0, warmup_steps=0, decay_steps=10, end_value=0.1)
    assert float(optax.sgdr_schedule([cycle])(10)) == 0.0
    assert float(schedules.sgdr_schedule([cycle])(10)) == np.float32(0.1)


def test_cosine_onecycle_is_accurate_near_the_end():
    exact = _ref_cosine_onecycle(np.arange(290.0, 300.0), 300, 1.0)
    ours = _evaluate(schedules.cosine_onecycle_schedule(300, 1.0), np.arange(290, 300))
    theirs = _evaluate(optax.cosine_onecycle_schedule(300, 1.0), np.arange(290, 300))
    assert np.max(np.abs(theirs / exact - 1)) > 1e-4
    np.testing.assert_allclose(ours, exact, rtol=1e-6)


# --- build-time errors ---------------------------------------------------------------------

VALID = {
    "piecewise_interpolate_schedule": dict(interpolate_type="linear", init_value=1.0),
    "linear_onecycle_schedule": dict(transition_steps=100, peak_value=1.0),
    "cosine_onecycle_schedule": dict(transition_steps=100, peak_value=1.0),
    "warmup_constant_schedule": dict(init_value=0.0, peak_value=1.0, warmup_steps=10),
    "warmup_exponential_decay_schedule": dict(
        init_value=0.0, peak_value=1.0, warmup_steps=10, transition_steps=10, decay_rate=0.5
    ),
    "sgdr_schedule": dict(
        cosine_kwargs=[dict(init_value=0.0, peak_value=1.0, warmup_steps=1, decay_steps=10)]
    ),
}

ERRORS = [
    (
        "cosine_onecycle_schedule",
        dict(pct_start=1.5),
        ValueError,
        "pct_start=...) must be in (0, 1), got pct_start=1.5",
    ),
    (
        "cosine_onecycle_schedule",
        dict(pct_start=0.0),
        ValueError,
        "pct_start=...) must be in (0, 1), got pct_start=0.0",
    ),
    (
        "linear_onecycle_schedule",
        dict(pct_start=-0.1),
        ValueError,
        "pct_start=...) must be in (0, 1), got pct_start=-0.1",
    ),
    (
        "cosine_onecycle_schedule",
        dict(transition_steps=0),
        ValueError,
        "transition_steps=...) must be a positive integer, got transition_steps=0",
    ),
    (
        "linear_onecycle_schedule",
        dict(transition_steps=-3),
        ValueError,
        "transition_steps=...) must be a positive integer, got transition_steps=-3",
    ),
    (
        "linear_onecycle_schedule",
        dict(pct_final=0.3),
        ValueError,
        "pct_final=...) must be in (pct_start, 1) = (0.3, 1), got pct_final=0.3",
    ),
    (
        "linear_onecycle_schedule",
        dict(pct_start=0.5, pct_final=0.4),
        ValueError,
        "pct_final=...) must be in (pct_start, 1) = (0.5, 1), got pct_final=0.4",
    ),
    (
        "linear_onecycle_schedule",
        dict(pct_final=1.0),
        ValueError,
        "pct_final=...) must be in (pct_start, 1) = (0.3, 1), got pct_final=1.0",
    ),
    (
        "cosine_onecycle_schedule",
        dict(div_factor=0.0),
        ValueError,
        "div_factor=...) must be positive, got div_factor=0.0",
    ),
    (
        "linear_onecycle_schedule",
        dict(final_div_factor=-1.0),
        ValueError,
        "final_div_factor=...) must be positive, got final_div_factor=-1.0",
    ),
    (
        "cosine_onecycle_schedule",
        dict(peak_value=float("nan")),
        ValueError,
        "peak_value=...) must be a finite number, got peak_value=nan",
    ),
    (
        "piecewise_interpolate_schedule",
        dict(interpolate_type="cubic"),
        ValueError,
        "interpolate_type=...) must be one of 'linear', 'cosine', got interpolate_type='cubic'",
    ),
    (
        "piecewise_interpolate_schedule",
        dict(boundaries_and_scales={-1: 0.5}),
        ValueError,
        "boundaries_and_scales=...) must have non-negative integer steps as keys",
    ),
    (
        "piecewise_interpolate_schedule",
        dict(boundaries_and_scales={5: -0.5}),
        ValueError,
        "boundaries_and_scales=...) must have non-negative finite numbers as scales",
    ),
    (
        "piecewise_interpolate_schedule",
        dict(boundaries_and_scales=[(5, 0.5)]),
        TypeError,
        "boundaries_and_scales=...) must be a mapping {step: scale} or None, got list",
    ),
    (
        "warmup_constant_schedule",
        dict(warmup_steps=-1),
        ValueError,
        "warmup_steps=...) must be a non-negative integer, got warmup_steps=-1",
    ),
    (
        "warmup_exponential_decay_schedule",
        dict(transition_steps=0),
        ValueError,
        "transition_steps=...) must be a positive integer, got transition_steps=0",
    ),
    (
        "warmup_exponential_decay_schedule",
        dict(decay_rate=0.0),
        ValueError,
        "decay_rate=...) must be positive, got decay_rate=0.0",
    ),
    (
        "warmup_exponential_decay_schedule",
        dict(warmup_steps=2.5),
        ValueError,
        "warmup_steps=...) must be a non-negative integer, got warmup_steps=2.5",
    ),
    (
        "sgdr_schedule",
        dict(cosine_kwargs=[]),
        ValueError,
        "cosine_kwargs=...) must not be empty, got cosine_kwargs=[]",
    ),
    (
        "sgdr_schedule",
        dict(cosine_kwargs=dict(decay_steps=10)),
        TypeError,
        "cosine_kwargs=...) must be an iterable of mappings",
    ),
    (
        "sgdr_schedule",
        dict(cosine_kwargs=[dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=10)]),
        ValueError,
        "cosine_kwargs=...) cycle 0: optgrad.schedules.warmup_cosine_decay_schedule("
        "decay_steps=...) must be greater than warmup_steps",
    ),
]


@pytest.mark.parametrize(("name", "overrides", "error", "message"), ERRORS)
def test_errors(name, overrides, error, message):
    expected = f"optgrad.schedules.{name}({message}"
    with pytest.raises(error, match="^" + re.escape(expected)):
        getattr(schedules, name)(**{**VALID[name], **overrides})
