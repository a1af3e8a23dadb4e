"""``optgrad.schedules`` against two oracles: Optax 0.2.8 and float64 NumPy formulas.

Every Optax-named schedule is evaluated at counts 0..399 for fixed edge cases and seeded random
configurations, and compared

* with Optax, at ``rtol=1e-6`` plus ``atol=1e-6 * scale`` (``scale`` = the largest value of the
  schedule): Optax evaluates in float32 with an *absolute* error of a few ulps of the scale
  (``1 - t/T`` and ``1 + cos(pi t/T)`` cancel near the end of a transition, and an exponent
  below 1 magnifies that), so near zero its values are only that accurate;
* with the exact formula in float64, at ``rtol=1e-6`` (plus ``atol=5e-7 * scale`` when the
  schedule crosses zero, where relative accuracy is impossible): optgrad keeps its relative
  accuracy where Optax loses it.

Deliberate differences from Optax are tested explicitly at the end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optgrad import schedules

COUNTS = np.arange(400)
_RNG = np.random.default_rng(20240611)


def _evaluate(schedule: Callable[[Any], Any], counts: np.ndarray = COUNTS) -> np.ndarray:
    values = schedule(jnp.asarray(counts, jnp.int32))
    return np.broadcast_to(np.asarray(values, np.float64), counts.shape)


def _f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (a decay rate Optax can represent exactly)."""
    return float(np.float32(x))


# --- float64 references, written from the documented formulas -------------------------------


def _ref_linear(c, init_value, end_value, transition_steps, transition_begin=0):
    done = np.clip(c - transition_begin, 0, transition_steps)
    return init_value + (end_value - init_value) * done / transition_steps


def _ref_polynomial(c, init_value, end_value, power, transition_steps, transition_begin=0):
    done = np.clip(c - transition_begin, 0, transition_steps)
    return end_value + (init_value - end_value) * (1 - done / transition_steps) ** power


def _ref_exponential(
    c, init_value, transition_steps, decay_rate, transition_begin=0, staircase=False, end_value=None
):
    p = np.maximum(c - transition_begin, 0) / transition_steps
    if staircase:
        p = np.floor(p)
    with np.errstate(over="ignore"):
        value = init_value * np.exp(p * math.log(decay_rate))
    if end_value is not None:
        value = (np.maximum if decay_rate < 1 else np.minimum)(value, end_value)
    return value


def _half_cosine(t, steps):
    return 0.5 * (1 + np.cos(np.pi * t / steps))


def _ref_cosine(c, init_value, decay_steps, alpha=0.0, exponent=1.0):
    t = np.minimum(c, decay_steps)
    return init_value * (alpha + (1 - alpha) * _half_cosine(t, decay_steps) ** exponent)


def _ref_warmup_cosine(
    c, init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0
):
    warm = init_value + (peak_value - init_value) * c / max(warmup_steps, 1)
    t = np.clip(c - warmup_steps, 0, decay_steps - warmup_steps)
    cosine = _half_cosine(t, decay_steps - warmup_steps) ** exponent
    return np.where(c < warmup_steps, warm, end_value + (peak_value - end_value) * cosine)


def _ref_piecewise(c, init_value, boundaries_and_scales=None):
    value = np.full(c.shape, float(init_value))
    for step, scale in (boundaries_and_scales or {}).items():
        value = np.where(c >= step, value * scale, value)
    return value


def _ref_constant(c, value):
    return np.full(c.shape, float(value))


# --- configurations: edge cases first, then seeded random ones --------------------------------


def _random_linear(n):
    for _ in range(n):
        yield dict(
            init_value=float(_RNG.uniform(-1, 1)),
            end_value=float(_RNG.uniform(-1, 1)),
            transition_steps=int(_RNG.integers(1, 400)),
            transition_begin=int(_RNG.integers(0, 100)),
        )


LINEAR = [
    dict(init_value=1.0, end_value=0.0, transition_steps=300),
    dict(init_value=0.1, end_value=1e-4, transition_steps=250, transition_begin=50),
    dict(init_value=0.0, end_value=3e-3, transition_steps=100),  # warmup
    dict(init_value=-1.0, end_value=2.0, transition_steps=333, transition_begin=17),
    dict(init_value=2.0, end_value=2.0, transition_steps=10, transition_begin=5),
    dict(init_value=5.0, end_value=1.0, transition_steps=1, transition_begin=399),
    *_random_linear(4),
]

POLYNOMIAL = [
    dict(init_value=1.0, end_value=0.0, power=2, transition_steps=300),
    dict(init_value=0.1, end_value=1e-4, power=0.5, transition_steps=250, transition_begin=50),
    dict(init_value=1.0, end_value=0.01, power=3, transition_steps=399, transition_begin=1),
    dict(init_value=-1.0, end_value=2.0, power=1.7, transition_steps=333, transition_begin=17),
    dict(init_value=0.0, end_value=1.0, power=1, transition_steps=200),
    dict(init_value=0.0, end_value=1.0, power=2.0, transition_steps=200),
    *(dict(cfg, power=float(_RNG.uniform(0.3, 4))) for cfg in _random_linear(4)),
]

EXPONENTIAL = [
    dict(init_value=1.0, transition_steps=10, decay_rate=0.5),
    dict(init_value=0.1, transition_steps=7, decay_rate=0.75, transition_begin=20, staircase=True),
    dict(init_value=1.0, transition_steps=3, decay_rate=0.5, end_value=0.01),  # clipped below
    dict(init_value=1e-3, transition_steps=5, decay_rate=2.0, transition_begin=10, end_value=0.5),
    dict(init_value=1.0, transition_steps=1, decay_rate=0.96875),  # 399 decays
    dict(init_value=2.0, transition_steps=4, decay_rate=1.0, transition_begin=3, end_value=1.5),
    dict(init_value=1.0, transition_steps=10, decay_rate=0.5, end_value=2.0),  # bound > init
    dict(init_value=-3.0, transition_steps=30, decay_rate=0.25, staircase=True, end_value=-1.0),
    *(
        dict(
            init_value=float(_RNG.uniform(1e-4, 1)),
            transition_steps=int(_RNG.integers(1, 50)),
            # Optax rounds the rate to float32 before raising it to a power (see
            # test_exponential_decay_is_more_accurate_than_optax); use rates it holds exactly.
            decay_rate=_f32(_RNG.uniform(0.5, 1.5)),
            transition_begin=int(_RNG.integers(0, 50)),
            staircase=bool(_RNG.integers(2)),
            end_value=[None, float(_RNG.uniform(1e-3, 1))][int(_RNG.integers(2))],
        )
        for _ in range(5)
    ),
]

COSINE = [
    dict(init_value=1.0, decay_steps=300),
    dict(init_value=0.1, decay_steps=250, alpha=0.1),
    dict(init_value=1.0, decay_steps=100, exponent=2.0),
    dict(init_value=3e-4, decay_steps=350, alpha=0.05, exponent=0.5),
    dict(init_value=-1.0, decay_steps=200, alpha=-0.5),  # crosses zero
    dict(init_value=1.0, decay_steps=1),
    dict(init_value=0.5, decay_steps=150, alpha=2.0),  # increasing
    *(
        dict(
            init_value=float(_RNG.uniform(1e-4, 1)),
            decay_steps=int(_RNG.integers(1, 500)),
            alpha=float(_RNG.uniform(0, 1)),
            exponent=float(_RNG.uniform(0.5, 3)),
        )
        for _ in range(4)
    ),
]

WARMUP_COSINE = [
    dict(init_value=0.0, peak_value=1.0, warmup_steps=50, decay_steps=300),
    dict(init_value=1e-5, peak_value=3e-4, warmup_steps=0, decay_steps=250, end_value=1e-5),
    dict(init_value=0.1, peak_value=1.0, warmup_steps=100, decay_steps=101),
    dict(
        init_value=0.0,
        peak_value=1.0,
        warmup_steps=10,
        decay_steps=200,
        end_value=0.1,
        exponent=3.0,
    ),
    dict(init_value=0.5, peak_value=-1.0, warmup_steps=20, decay_steps=380, end_value=0.25),
    dict(init_value=0.0, peak_value=1.0, warmup_steps=1, decay_steps=2),
    *(
        dict(
            init_value=float(_RNG.uniform(0, 1e-3)),
            peak_value=float(_RNG.uniform(1e-3, 1)),
            warmup_steps=int(_RNG.integers(0, 100)),
            decay_steps=int(_RNG.integers(100, 500)),
            end_value=float(_RNG.uniform(0, 1e-3)),
            exponent=float(_RNG.uniform(0.5, 2)),
        )
        for _ in range(4)
    ),
]

PIECEWISE = [
    dict(init_value=1.0),
    dict(init_value=1.0, boundaries_and_scales={}),
    dict(init_value=0.1, boundaries_and_scales={100: 0.1, 200: 0.1, 300: 0.5}),
    dict(init_value=2.0, boundaries_and_scales={0: 0.5, 50: 2.0, 399: 0.0}),  # boundary at 0
    dict(init_value=-1.0, boundaries_and_scales={300: 3.0, 10: 0.25}),  # unsorted keys
    dict(init_value=1.0, boundaries_and_scales={1: 0.9, 2: 0.9, 3: 0.9, 4: 0.3, 5: 0.7}),
    dict(init_value=1.0, boundaries_and_scales={1000: 0.1}),  # never reached
    *(
        dict(
            init_value=float(_RNG.uniform(1e-3, 1)),
            boundaries_and_scales={
                int(b): float(s)
                for b, s in zip(_RNG.integers(0, 400, 4), _RNG.uniform(0, 3, 4), strict=True)
            },
        )
        for _ in range(3)
    ),
]

CONSTANT = [dict(value=0.5), dict(value=3), dict(value=-2.5e-3), dict(value=0.0)]

# (name, reference, configurations); optgrad's and Optax's factories share the name.
CASES = [
    ("constant_schedule", _ref_constant, CONSTANT),
    ("linear_schedule", _ref_linear, LINEAR),
    ("polynomial_schedule", _ref_polynomial, POLYNOMIAL),
    ("exponential_decay", _ref_exponential, EXPONENTIAL),
    ("cosine_decay_schedule", _ref_cosine, COSINE),
    ("warmup_cosine_decay_schedule", _ref_warmup_cosine, WARMUP_COSINE),
    ("piecewise_constant_schedule", _ref_piecewise, PIECEWISE),
]
PARAMS = [
    pytest.param(name, reference, kwargs, id=f"{name}-{i}")
    for name, reference, configs in CASES
    for i, kwargs in enumerate(configs)
]


def _atol_for(reference: np.ndarray, relative: float) -> float:
    return relative * float(np.max(np.abs(reference), initial=0.0))


@pytest.mark.parametrize(("name", "reference", "kwargs"), PARAMS)
def test_matches_optax_and_float64(name, reference, kwargs):
    ours = _evaluate(getattr(schedules, name)(**kwargs))
    theirs = _evaluate(getattr(optax, name)(**kwargs))
    exact = reference(COUNTS.astype(np.float64), **kwargs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=_atol_for(exact, 1e-6))
    crosses_zero = exact.min() < 0 < exact.max()
    atol = _atol_for(exact, 5e-7) if crosses_zero else 0.0
    np.testing.assert_allclose(ours, exact, rtol=1e-6, atol=atol)


# --- join_schedules ---------------------------------------------------------------------------

JOIN_BOUNDARIES = [[100, 250], [0, 100], [50, 50], [0, 0], [399, 399], [1, 2]]


@pytest.mark.parametrize("boundaries", JOIN_BOUNDARIES, ids=str)
def test_join_schedules_matches_optax(boundaries):
    # The same pieces joined by both libraries: the joining itself must agree exactly.
    pieces = [
        optax.linear_schedule(0.0, 1.0, 100),
        optax.cosine_decay_schedule(1.0, 150, alpha=0.1),
        optax.exponential_decay(0.1, 10, 0.5),
    ]
    ours = _evaluate(schedules.join_schedules(pieces, boundaries))
    theirs = _evaluate(optax.join_schedules(pieces, boundaries))
    np.testing.assert_array_equal(ours, theirs)

    # optgrad's own pieces against Optax's.
    own = [
        schedules.linear_schedule(0.0, 1.0, 100),
        schedules.cosine_decay_schedule(1.0, 150, alpha=0.1),
        schedules.exponential_decay(0.1, 10, 0.5),
    ]
    ours = _evaluate(schedules.join_schedules(own, boundaries))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_join_schedules_single_schedule_and_tuple_input():
    piece = schedules.linear_schedule(1.0, 0.0, 10)
    joined = schedules.join_schedules((piece,), ())
    np.testing.assert_array_equal(_evaluate(joined), _evaluate(piece))


def test_join_schedules_accepts_python_callables():
    joined = schedules.join_schedules([lambda c: 1, lambda c: c * 0.5], [3])
    np.testing.assert_array_equal(_evaluate(joined, np.arange(6)), [1, 1, 1, 0, 0.5, 1.0])


# --- inverse_time_decay: float64 NumPy -----------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(init_value=1.0, decay_rate=0.5),
        dict(init_value=0.1, decay_rate=1e-2, decay_steps=7),
        dict(init_value=3e-4, decay_rate=0.9, decay_steps=25, staircase=True),
        dict(init_value=-2.0, decay_rate=3.0, decay_steps=1, staircase=True),
        dict(init_value=1.0, decay_rate=0.0, decay_steps=10),
        *(
            dict(
                init_value=float(_RNG.uniform(1e-4, 1)),
                decay_rate=float(_RNG.uniform(0, 5)),
                decay_steps=int(_RNG.integers(1, 100)),
                staircase=bool(_RNG.integers(2)),
            )
            for _ in range(4)
        ),
    ],
    ids=lambda kwargs: ",".join(f"{k}={v:.3g}" for k, v in kwargs.items()),
)
def test_inverse_time_decay_matches_float64(kwargs):
    counts = np.arange(3000)
    ours = _evaluate(schedules.inverse_time_decay(**kwargs), counts)
    t = counts / kwargs.get("decay_steps", 1)
    if kwargs.get("staircase", False):
        t = np.floor(t)
    exact = kwargs["init_value"] / (1 + kwargs["decay_rate"] * t)
    np.testing.assert_allclose(ours, exact, rtol=1e-6, atol=0)


# --- accuracy far into a decay ---------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.96, 0.9, 0.99, 0.999, 0.1, 1.01, 0.9999])
@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay_accurate_for_many_steps(rate, staircase):
    counts = np.concatenate([np.arange(20_000), np.arange(2**24 - 1000, 2**24)])
    kwargs = dict(init_value=1.0, transition_steps=3, decay_rate=rate, staircase=staircase)
    ours = _evaluate(schedules.exponential_decay(**kwargs), counts)
    exact = _ref_exponential(counts.astype(np.float64), **kwargs)
    normal = (exact > 1e-37) & (exact < 3e38)  # float32's normal range
    np.testing.assert_allclose(ours[normal], exact[normal], rtol=2.5e-7, atol=0)


def test_exponential_decay_is_more_accurate_than_optax():
    # Optax computes float32(0.96) ** count; 0.96 is not a float32, and its rounding error is
    # raised to the power count: about 2e-8 * 400 = 9e-6 relative at count 400.
    counts = np.arange(400)
    exact = 0.96 ** counts.astype(np.float64)
    ours = _evaluate(schedules.exponential_decay(1.0, 1, 0.96), counts)
    theirs = _evaluate(optax.exponential_decay(1.0, 1, 0.96), counts)
    assert np.max(np.abs(theirs / exact - 1)) > 5e-6
    np.testing.assert_allclose(ours, exact, rtol=2e-7)


def test_cosine_decay_is_more_accurate_than_optax_near_the_end():
    # Optax's 1 + cos(pi t / T) cancels near t = T; sin(pi/2 (T - t)/T)**2 does not.
    counts = np.arange(290, 300)
    exact = _ref_cosine(counts.astype(np.float64), 1.0, 300)
    ours = _evaluate(schedules.cosine_decay_schedule(1.0, 300), counts)
    theirs = _evaluate(optax.cosine_decay_schedule(1.0, 300), counts)
    assert np.max(np.abs(theirs / exact - 1)) > 1e-4
    np.testing.assert_allclose(ours, exact, rtol=1e-6)


def test_polynomial_has_no_nan_under_jit():
    # Under jit XLA computes t / T as t * (1 / T), fused into an FMA: Optax's 1 - t/T goes
    # slightly negative at the end of the transition and a fractional power gives NaN.
    kwargs = dict(init_value=0.1, end_value=1e-4, power=0.5, transition_steps=250)
    counts = jnp.arange(400, dtype=jnp.int32)
    assert np.isnan(jax.jit(optax.polynomial_schedule(**kwargs))(counts)).any()
    ours = jax.jit(schedules.polynomial_schedule(**kwargs))(counts)
    exact = _ref_polynomial(np.arange(400.0), **kwargs)
    np.testing.assert_allclose(ours, exact, rtol=1e-6)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_endpoints_are_exact(jit):
    wrap = jax.jit if jit else (lambda f: f)
    for count, expected in [(0, 0.1), (2, 0.1), (9, 0.003), (10, 0.003)]:
        linear = wrap(schedules.linear_schedule(0.1, 0.003, transition_steps=7, transition_begin=2))
        assert float(linear(jnp.int32(count))) == np.float32(expected)
    warmup = wrap(schedules.warmup_cosine_decay_schedule(0.0, 0.3, 10, 100, end_value=1e-3))
    assert float(warmup(jnp.int32(10))) == np.float32(0.3)
    assert float(warmup(jnp.int32(100))) == np.float32(1e-3)
    polynomial = wrap(schedules.polynomial_schedule(0.7, 0.2, 1.5, transition_steps=333))
    assert float(polynomial(jnp.int32(0))) == np.float32(0.7)
    assert float(polynomial(jnp.int32(333))) == np.float32(0.2)
    exponential = wrap(schedules.exponential_decay(1.0, 1, 0.5))
    assert float(exponential(jnp.int32(30))) == 2.0**-30


# --- jit, vmap, dtype, shape, traced hyperparameters ---------------------------------------

EXAMPLES = {
    "constant_schedule": lambda: schedules.constant_schedule(0.5),
    "linear_schedule": lambda: schedules.linear_schedule(1.0, 0.1, 300, 10),
    "polynomial_schedule": lambda: schedules.polynomial_schedule(1.0, 0.1, 2.5, 300, 10),
    "exponential_decay": lambda: schedules.exponential_decay(1.0, 10, 0.9, 5, True, 0.1),
    "cosine_decay_schedule": lambda: schedules.cosine_decay_schedule(1.0, 300, 0.1, 2.0),
    "warmup_cosine_decay_schedule": lambda: schedules.warmup_cosine_decay_schedule(
        0.0, 1.0, 20, 300, 0.1
    ),
    "piecewise_constant_schedule": lambda: schedules.piecewise_constant_schedule(
        1.0, {10: 0.5, 100: 0.1}
    ),
    "join_schedules": lambda: schedules.join_schedules(
        [schedules.linear_schedule(0.0, 1.0, 10), schedules.cosine_decay_schedule(1.0, 90)], [10]
    ),
    "inverse_time_decay": lambda: schedules.inverse_time_decay(1.0, 0.5, 10),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_float32_scalar_jit_without_recompiling_and_vmap(name):
    schedule = EXAMPLES[name]()
    eager = _evaluate(schedule)
    for count in (0, 7, np.int32(7), jnp.int32(250), jnp.asarray(399, jnp.int32)):
        value = schedule(count)
        assert value.dtype == jnp.float32
        assert value.shape == ()
        # Eager and jitted evaluation may differ by an ulp (XLA multiplies by reciprocals).
        np.testing.assert_allclose(value, eager[int(count)], rtol=1e-6, atol=1e-7)

    traces = []

    def traced(count):
        traces.append(count)
        return schedule(count)

    jitted = jax.jit(traced)
    values = [jitted(jnp.int32(c)) for c in (0, 1, 17, 250, 399)]
    assert len(traces) == 1
    assert jitted._cache_size() == 1
    assert all(v.dtype == jnp.float32 and v.shape == () for v in values)
    np.testing.assert_allclose(values, eager[[0, 1, 17, 250, 399]], rtol=1e-6, atol=1e-7)

    mapped = jax.vmap(schedule)(jnp.asarray(COUNTS, jnp.int32))
    assert mapped.dtype == jnp.float32
    assert mapped.shape == COUNTS.shape
    np.testing.assert_allclose(mapped, eager, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "make",
    [
        lambda lr: schedules.constant_schedule(lr),
        lambda lr: schedules.linear_schedule(lr, 0.0, 10),
        lambda lr: schedules.polynomial_schedule(lr, 0.0, 2, 10),
        lambda lr: schedules.exponential_decay(lr, 5, 0.5, end_value=lr / 8),
        lambda lr: schedules.cosine_decay_schedule(lr, 10),
        lambda lr: schedules.warmup_cosine_decay_schedule(0.0, lr, 2, 10, lr / 10),
        lambda lr: schedules.piecewise_constant_schedule(lr, {3: 0.5}),
        lambda lr: schedules.inverse_time_decay(lr, 1.0),
    ],
)
def test_built_under_vmap_over_the_value(make):
    # The value arguments may be traced (e.g. vmap over learning rates).
    lrs = [0.1, 1.0, 3.0]
    counts = jnp.arange(12)
    batched = jax.jit(jax.vmap(lambda lr: make(lr)(counts)))(jnp.asarray(lrs))
    for lr, row in zip(lrs, batched, strict=True):
        np.testing.assert_allclose(row, jax.jit(make(lr))(counts), rtol=1e-6)


# --- build-time errors ----------------------------------------------------------------------

# Valid arguments for each factory; each error case overrides some of them.
VALID = {
    "constant_schedule": dict(value=1.0),
    "linear_schedule": dict(init_value=1.0, end_value=0.0, transition_steps=10),
    "polynomial_schedule": dict(init_value=1.0, end_value=0.0, power=2, transition_steps=10),
    "exponential_decay": dict(init_value=1.0, transition_steps=10, decay_rate=0.5),
    "cosine_decay_schedule": dict(init_value=1.0, decay_steps=10),
    "warmup_cosine_decay_schedule": dict(
        init_value=0.0, peak_value=1.0, warmup_steps=1, decay_steps=10
    ),
    "piecewise_constant_schedule": dict(init_value=1.0),
    "inverse_time_decay": dict(init_value=1.0, decay_rate=1.0),
    "join_schedules": dict(schedules=[abs, abs], boundaries=[1]),
}
NAN, INF = float("nan"), float("inf")
POSITIVE_INT = "must be a positive integer, got"
NON_NEGATIVE_INT = "must be a non-negative integer, got"
POSITIVE = "must be positive, got"
FINITE = "must be a finite number, got"
FLAG = "must be True or False, got"

# (factory, argument, bad value, rule): the message is
# "optgrad.schedules.<factory>(<argument>=...) <rule> <argument>=<value!r>".
ARGUMENT_ERRORS = [
    ("linear_schedule", "transition_steps", 0, POSITIVE_INT),
    ("linear_schedule", "transition_steps", 10.0, POSITIVE_INT),
    ("linear_schedule", "transition_begin", -1, NON_NEGATIVE_INT),
    ("linear_schedule", "init_value", NAN, FINITE),
    ("linear_schedule", "end_value", INF, FINITE),
    ("polynomial_schedule", "power", 0, POSITIVE),
    ("polynomial_schedule", "power", NAN, FINITE),
    ("polynomial_schedule", "transition_steps", -5, POSITIVE_INT),
    ("polynomial_schedule", "transition_begin", 2.0, NON_NEGATIVE_INT),
    ("exponential_decay", "transition_steps", 0, POSITIVE_INT),
    ("exponential_decay", "decay_rate", -0.5, POSITIVE),
    ("exponential_decay", "decay_rate", 0.0, POSITIVE),
    ("exponential_decay", "decay_rate", NAN, FINITE),
    ("exponential_decay", "transition_begin", -3, NON_NEGATIVE_INT),
    ("exponential_decay", "staircase", None, FLAG),
    ("exponential_decay", "end_value", NAN, FINITE),
    ("cosine_decay_schedule", "decay_steps", 0, POSITIVE_INT),
    ("cosine_decay_schedule", "exponent", -1.0, POSITIVE),
    ("cosine_decay_schedule", "alpha", NAN, FINITE),
    ("warmup_cosine_decay_schedule", "warmup_steps", -1, NON_NEGATIVE_INT),
    ("warmup_cosine_decay_schedule", "decay_steps", 0, POSITIVE_INT),
    ("warmup_cosine_decay_schedule", "peak_value", NAN, FINITE),
    ("warmup_cosine_decay_schedule", "end_value", -INF, FINITE),
    ("warmup_cosine_decay_schedule", "exponent", 0, POSITIVE),
    ("constant_schedule", "value", NAN, FINITE),
    ("inverse_time_decay", "decay_rate", -1.0, "must be non-negative, got"),
    ("inverse_time_decay", "decay_steps", 0, POSITIVE_INT),
    ("inverse_time_decay", "staircase", "yes", FLAG),
]


@pytest.mark.parametrize(("name", "argument", "value", "rule"), ARGUMENT_ERRORS)
def test_argument_errors(name, argument, value, rule):
    expected = f"optgrad.schedules.{name}({argument}=...) {rule} {argument}={value!r}"
    with pytest.raises(ValueError, match="^" + re.escape(expected) + "$"):
        getattr(schedules, name)(**{**VALID[name], argument: value})


SCALES = "must have non-negative finite numbers as scales, got boundaries_and_scales="
KEYS = "must have non-negative integer steps as keys, got boundaries_and_scales="
ONE_FEWER = "must have one entry fewer than schedules, got"

# (factory, arguments, error, message after "optgrad.schedules.<factory>(").
OTHER_ERRORS = [
    (
        "warmup_cosine_decay_schedule",
        dict(warmup_steps=10, decay_steps=10),
        ValueError,
        "decay_steps=...) must be greater than warmup_steps (decay_steps counts the warmup), "
        "got decay_steps=10, warmup_steps=10",
    ),
    ("piecewise_constant_schedule", dict(boundaries_and_scales={10: -0.5}), ValueError,
     f"boundaries_and_scales=...) {SCALES}{{10: -0.5}}"),
    ("piecewise_constant_schedule", dict(boundaries_and_scales={5: NAN}), ValueError,
     f"boundaries_and_scales=...) {SCALES}{{5: nan}}"),
    ("piecewise_constant_schedule", dict(boundaries_and_scales={-1: 0.5}), ValueError,
     f"boundaries_and_scales=...) {KEYS}{{-1: 0.5}}"),
    ("piecewise_constant_schedule", dict(boundaries_and_scales={2.5: 0.5}), ValueError,
     f"boundaries_and_scales=...) {KEYS}{{2.5: 0.5}}"),
    ("join_schedules", dict(boundaries=[]), ValueError,
     f"boundaries=...) {ONE_FEWER} 0 boundaries for 2 schedules: boundaries=[]"),
    ("join_schedules", dict(boundaries=[1, 2]), ValueError,
     f"boundaries=...) {ONE_FEWER} 2 boundaries for 2 schedules: boundaries=[1, 2]"),
    ("join_schedules", dict(schedules=[abs] * 3, boundaries=[10, 5]), ValueError,
     "boundaries=...) must be non-decreasing, got boundaries=[10, 5]"),
    ("join_schedules", dict(boundaries=[2.5]), ValueError,
     "boundaries=...) must contain non-negative integers, got boundaries=[2.5]"),
    ("join_schedules", dict(boundaries=[-1]), ValueError,
     "boundaries=...) must contain non-negative integers, got boundaries=[-1]"),
    ("join_schedules", dict(schedules=[], boundaries=[]), ValueError,
     "schedules=...) must not be empty, got schedules=()"),
    ("join_schedules", dict(schedules=[abs, 0.1]), TypeError,
     "schedules=...) must contain only schedules (callables), got float at position 1: 0.1"),
    ("join_schedules", dict(schedules=abs), TypeError,
     "schedules=...) must be a sequence of schedules, got builtin_function_or_method"),
    ("join_schedules", dict(boundaries=5), TypeError,
     "boundaries=...) must be a sequence of integers, got int: 5"),
    ("linear_schedule", dict(init_value="1"), TypeError,
     "init_value=...) must be a number, got str: '1'"),
    ("constant_schedule", dict(value=True), TypeError,
     "value=...) must be a number, got bool: True"),
    ("cosine_decay_schedule", dict(init_value=None), TypeError,
     "init_value=...) must be a number, got NoneType: None"),
    ("exponential_decay", dict(decay_rate=jnp.ones(2)), TypeError,
     "decay_rate=...) must be a concrete real number (not a traced or non-scalar array)"),
    ("piecewise_constant_schedule", dict(boundaries_and_scales=[(5, 0.5)]), TypeError,
     "boundaries_and_scales=...) must be a mapping {step: scale} or None, got list"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "overrides", "error", "message"), OTHER_ERRORS)
def test_other_errors(name, overrides, error, message):
    expected = f"optgrad.schedules.{name}({message}"
    with pytest.raises(error, match="^" + re.escape(expected)):
        getattr(schedules, name)(**{**VALID[name], **overrides})


# --- deliberate differences from Optax ------------------------------------------------------


def test_optax_accepts_what_optgrad_refuses():
    # Optax turns these into constants or clamps them, silently (it only logs).
    assert float(optax.linear_schedule(1.0, 0.0, transition_steps=0)(5)) == 1.0
    assert float(optax.exponential_decay(1.0, 10, decay_rate=0.0)(50)) == 1.0
    assert float(optax.polynomial_schedule(1.0, 0.0, 1, 10, transition_begin=-5)(5)) == 0.5
    assert float(optax.join_schedules([abs, abs, abs], [1])(5)) == 4
    for make in (
        lambda: schedules.linear_schedule(1.0, 0.0, transition_steps=0),
        lambda: schedules.exponential_decay(1.0, 10, decay_rate=0.0),
        lambda: schedules.polynomial_schedule(1.0, 0.0, 1, 10, transition_begin=-5),
        lambda: schedules.join_schedules([abs, abs, abs], [1]),
    ):
        with pytest.raises(ValueError, match=r"^optgrad\.schedules\."):
            make()


def test_warmup_cosine_with_zero_peak_still_reaches_end_value():
    kwargs = dict(init_value=0.0, peak_value=0.0, warmup_steps=10, decay_steps=110, end_value=0.1)
    theirs = _evaluate(optax.warmup_cosine_decay_schedule(**kwargs))
    ours = _evaluate(schedules.warmup_cosine_decay_schedule(**kwargs))
    assert np.all(theirs == 0.0)  # Optax drops end_value when peak_value == 0
    exact = _ref_warmup_cosine(COUNTS.astype(np.float64), **kwargs)
    np.testing.assert_allclose(ours, exact, rtol=1e-6)
    assert ours[-1] == np.float32(0.1)


def test_constant_schedule_returns_float32_arrays():
    assert optax.constant_schedule(3)(0) == 3  # Optax hands back the Python int
    value = schedules.constant_schedule(3)(0)
    assert isinstance(value, jax.Array) and value.dtype == jnp.float32 and float(value) == 3.0
    np.testing.assert_array_equal(schedules.constant_schedule(3)(jnp.arange(4)), [3.0] * 4)


def test_public_names():
    public = {name for name in dir(schedules) if not name.startswith("_")}
    assert public == {
        "constant_schedule",
        "cosine_decay_schedule",
        "cosine_onecycle_schedule",
        "cyclic_schedule",
        "describe",
        "exponential_decay",
        "inverse_time_decay",
        "join_schedules",
        "linear_onecycle_schedule",
        "linear_schedule",
        "per_epoch",
        "piecewise_constant_schedule",
        "piecewise_interpolate_schedule",
        "plot",
        "polynomial_schedule",
        "product_schedule",
        "sgdr_schedule",
        "values",
        "warmup_constant_schedule",
        "warmup_cosine_decay_schedule",
        "warmup_exponential_decay_schedule",
        "warmup_stable_decay_schedule",
    }
