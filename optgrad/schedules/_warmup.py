"""A linear warmup followed by a constant, an exponential decay, or warmup-stable-decay (WSD)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optgrad import _check

from ._described import described
from ._exponential import exponential_decay
from ._polynomial import linear_ramp
from ._util import (
    Schedule,
    blend,
    check_value,
    concrete_number,
    flag,
    fraction,
    non_negative_int,
    positive_int,
)

_HALF_PI = np.float32(math.pi / 2)
_SHAPES = ("linear", "cosine", "sqrt")


def _after_warmup(init_value: Any, peak_value: Any, warmup: int, then: Schedule | None) -> Schedule:
    """The linear warmup for ``warmup`` steps, then ``then(count - warmup)`` (or the peak)."""
    ramp = linear_ramp(init_value, peak_value, warmup) if warmup else None

    def schedule(count: Any) -> jax.Array:
        count = jnp.asarray(count)
        if then is None:
            value = jnp.broadcast_to(jnp.asarray(peak_value, jnp.float32), jnp.shape(count))
        else:
            value = then(jnp.maximum(count - warmup, 0))
        if ramp is not None:
            value = jnp.where(count < warmup, ramp(count), value)
        return value

    return schedule


def warmup_constant_schedule(init_value: Any, peak_value: Any, warmup_steps: int) -> Schedule:
    r"""Linear warmup from ``init_value`` to ``peak_value`` over ``warmup_steps``, then constant.

    .. math::
        f(c) = I + (P - I) \min(c, W) / W

    with :math:`I, P, W` = ``init_value``, ``peak_value``, ``warmup_steps``.

    Args:
      init_value: the value at step 0.
      peak_value: the value from step ``warmup_steps`` on.
      warmup_steps: non-negative integer, the warmup length.

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.warmup_constant_schedule``: ``warmup_steps=0`` gives
    ``peak_value`` at every step (Optax gives ``init_value``, as its ``linear_schedule`` does
    for a transition of 0 steps); a negative ``warmup_steps`` raises ``ValueError``.

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.warmup_constant_schedule(0.0, 1.0, warmup_steps=4)
      >>> [float(schedule(c)) for c in (0, 2, 4, 100)]
      [0.0, 0.5, 1.0, 1.0]
    """
    call = "optgrad.schedules.warmup_constant_schedule"
    check_value(call, "init_value", init_value)
    check_value(call, "peak_value", peak_value)
    warmup = non_negative_int(call, "warmup_steps", warmup_steps)
    return described(
        "warmup_constant_schedule",
        _after_warmup(init_value, peak_value, warmup, None),
        init_value=init_value,
        peak_value=peak_value,
        warmup_steps=warmup_steps,
    )


def warmup_exponential_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Any = None,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then :func:`exponential_decay` from it.

    For :math:`c < W` (``warmup_steps``) the value moves linearly from ``init_value`` to
    ``peak_value``; from step :math:`W` on it is ``exponential_decay(peak_value,
    transition_steps, decay_rate, transition_begin, staircase, end_value)`` evaluated at
    :math:`c - W` (so ``transition_begin`` counts from the end of the warmup, and the bound
    ``end_value`` applies only after the warmup).

    Args:
      init_value: the value at step 0.
      peak_value: the value at the end of the warmup.
      warmup_steps: non-negative integer, the warmup length (0 starts at ``peak_value``).
      transition_steps: positive integer, the number of steps per factor ``decay_rate``.
      decay_rate: positive concrete number; ``< 1`` decays, ``> 1`` grows.
      transition_begin: non-negative integer, the steps held at ``peak_value`` after warmup.
      staircase: if True, decay in discrete jumps every ``transition_steps`` steps.
      end_value: optional bound (from below when decaying, from above when growing).

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.warmup_exponential_decay_schedule``: those of
    :func:`exponential_decay` (bad rates and step counts raise ``ValueError``; the powers are
    accurate to float32 rounding also after many decays).

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.warmup_exponential_decay_schedule(
      ...     0.0, 1.0, warmup_steps=10, transition_steps=10, decay_rate=0.5)
      >>> [float(schedule(c)) for c in (0, 5, 10, 20, 30)]
      [0.0, 0.5, 1.0, 0.5, 0.25]
    """
    call = "optgrad.schedules.warmup_exponential_decay_schedule"
    check_value(call, "init_value", init_value)
    check_value(call, "peak_value", peak_value)
    warmup = non_negative_int(call, "warmup_steps", warmup_steps)
    positive_int(call, "transition_steps", transition_steps)
    _check.positive(call, "decay_rate", concrete_number(call, "decay_rate", decay_rate))
    non_negative_int(call, "transition_begin", transition_begin)
    flag(call, "staircase", staircase)
    if end_value is not None:
        check_value(call, "end_value", end_value)
    decay = exponential_decay(
        peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )
    return described(
        "warmup_exponential_decay_schedule",
        _after_warmup(init_value, peak_value, warmup, decay),
        init_value=init_value,
        peak_value=peak_value,
        warmup_steps=warmup_steps,
        transition_steps=transition_steps,
        decay_rate=decay_rate,
        transition_begin=transition_begin,
        staircase=staircase,
        end_value=end_value,
    )


def _decay_weights(shape: str, done: jax.Array, steps: int) -> tuple[jax.Array, jax.Array]:
    """Weights of the peak and of the end value after ``done`` of ``steps`` decay steps."""
    left, right = fraction(steps - done, steps), fraction(done, steps)
    if shape == "cosine":
        return jnp.sin(_HALF_PI * left) ** 2, jnp.sin(_HALF_PI * right) ** 2
    if shape == "sqrt":
        root = jnp.sqrt(right)
        return left / (1.0 + root), root  # 1 - sqrt(p) without cancellation near p = 1
    return left, right


def warmup_stable_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    total_steps: int,
    decay_fraction: float = 0.2,
    end_value: Any = 0.0,
    decay_shape: str = "linear",
) -> Schedule:
    r"""Warmup-stable-decay (WSD, "trapezoidal"): warm up, hold the peak, decay at the end.

    With :math:`I, P, E` = ``init_value``, ``peak_value``, ``end_value``, :math:`W` =
    ``warmup_steps``, :math:`T` = ``total_steps``, :math:`D = \operatorname{round}(\phi T)`
    the decay length (:math:`\phi` = ``decay_fraction``) and :math:`p = \min(\max(c - (T - D),
    0), D) / D` the progress of the decay:

    .. math::
        f(c) = \begin{cases}
          I + (P - I)\, c / W & c < W \\
          E + (P - E)\, w(p) & c \ge W
        \end{cases}
        \qquad w(p) = \begin{cases}
          1 - p & \texttt{"linear"} \\
          \tfrac{1}{2}(1 + \cos \pi p) & \texttt{"cosine"} \\
          1 - \sqrt{p} & \texttt{"sqrt"}
        \end{cases}

    so the value is ``peak_value`` from step :math:`W` to :math:`T - D`, reaches
    ``end_value`` at step :math:`T` and stays there. Unlike a cosine over the whole run, the
    long constant phase can be resumed or extended, and a decay started from any checkpoint
    (Hu et al., "MiniCPM", 2024; Hägele et al., "Scaling Laws and Compute-Optimal Training
    Beyond Fixed Training Durations", 2024, who recommend the ``"sqrt"`` shape, their
    "1 - sqrt" cooldown, over about 20% of the run).

    Args:
      init_value: the value at step 0.
      peak_value: the value held between warmup and decay.
      warmup_steps: non-negative integer, the warmup length.
      total_steps: positive integer, the length of the whole schedule.
      decay_fraction: fraction of ``total_steps`` spent decaying, in (0, 1].
      end_value: the value from step ``total_steps`` on.
      decay_shape: ``"linear"``, ``"cosine"`` or ``"sqrt"`` (``1 - sqrt(p)``).

    Returns:
      A function of the step count returning float32 values.

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.warmup_stable_decay_schedule(
      ...     0.0, 1.0, warmup_steps=10, total_steps=100, decay_fraction=0.2)
      >>> [float(schedule(c)) for c in (0, 5, 10, 80, 90, 100, 120)]
      [0.0, 0.5, 1.0, 1.0, 0.5, 0.0, 0.0]
    """
    call = "optgrad.schedules.warmup_stable_decay_schedule"
    check_value(call, "init_value", init_value)
    check_value(call, "peak_value", peak_value)
    warmup = non_negative_int(call, "warmup_steps", warmup_steps)
    total = positive_int(call, "total_steps", total_steps)
    share = concrete_number(call, "decay_fraction", decay_fraction)
    _check.number(call, "decay_fraction", share, low=0.0, high=1.0, low_open=True)
    check_value(call, "end_value", end_value)
    _check.one_of(call, "decay_shape", decay_shape, _SHAPES)
    steps = round(share * total)
    if steps < 1 or warmup + steps > total:
        raise ValueError(
            f"{call}(decay_fraction=...) must leave a decay of at least one step that does "
            f"not overlap the warmup: round(decay_fraction * total_steps) = {steps} decay "
            f"steps, with warmup_steps={warmup_steps!r} and total_steps={total_steps!r}; got "
            f"decay_fraction={decay_fraction!r}"
        )
    begin = total - steps

    def decay(count: Any) -> jax.Array:  # count is measured from the end of the warmup
        done = jnp.clip(count + warmup - begin, 0, steps)
        return blend(peak_value, end_value, *_decay_weights(decay_shape, done, steps))

    return described(
        "warmup_stable_decay_schedule",
        _after_warmup(init_value, peak_value, warmup, decay),
        init_value=init_value,
        peak_value=peak_value,
        warmup_steps=warmup_steps,
        total_steps=total_steps,
        decay_fraction=decay_fraction,
        end_value=end_value,
        decay_shape=decay_shape,
    )
