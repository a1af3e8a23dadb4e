"""Linear and polynomial transitions from ``init_value`` to ``end_value``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optgrad import _check

from ._described import described
from ._util import (
    Schedule,
    blend,
    check_value,
    fraction,
    non_negative_int,
    positive_int,
    power_and_complement,
)


def _remaining(count: Any, begin: int, steps: int) -> tuple[jax.Array, jax.Array]:
    """Fractions of the transition still to go and already done, both in [0, 1] (float32).

    ``done = clip(count - begin, 0, steps)`` is computed on integers, so ``(steps - done) /
    steps`` keeps its relative accuracy (to an ulp) also close to the end of the transition,
    where ``1 - done / steps`` would not.
    """
    done = jnp.clip(jnp.asarray(count) - begin, 0, steps)
    return fraction(steps - done, steps), fraction(done, steps)


def linear_ramp(init_value: Any, end_value: Any, steps: int, begin: int = 0) -> Schedule:
    """Unchecked linear transition, shared with the warmup schedules."""

    def schedule(count: Any) -> jax.Array:
        left, done = _remaining(count, begin, steps)
        return blend(init_value, end_value, left, done)

    return schedule


def linear_schedule(
    init_value: Any, end_value: Any, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    r"""Moves linearly from ``init_value`` to ``end_value`` over ``transition_steps`` steps.

    With :math:`I` = ``init_value``, :math:`E` = ``end_value``, :math:`B` =
    ``transition_begin``, :math:`T` = ``transition_steps`` and :math:`c` = ``count``:

    .. math::
        f(c) = I + (E - I) \, \frac{\min(\max(c - B, 0), T)}{T}

    so :math:`f = I` up to step :math:`B` and :math:`f = E` from step :math:`B + T` on.

    Args:
      init_value: value before and at ``transition_begin``.
      end_value: value from ``transition_begin + transition_steps`` on.
      transition_steps: positive integer, the length of the transition.
      transition_begin: non-negative integer, the number of steps held at ``init_value``.

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.linear_schedule``: ``transition_steps <= 0`` (which Optax turns
    into a constant ``init_value``) and a negative ``transition_begin`` (which Optax clamps to
    0) raise ``ValueError`` instead.

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.linear_schedule(1.0, 0.0, transition_steps=100, transition_begin=10)
      >>> [float(schedule(c)) for c in (0, 10, 60, 110, 500)]
      [1.0, 1.0, 0.5, 0.0, 0.0]
    """
    call = "optgrad.schedules.linear_schedule"
    check_value(call, "init_value", init_value)
    check_value(call, "end_value", end_value)
    steps = positive_int(call, "transition_steps", transition_steps)
    begin = non_negative_int(call, "transition_begin", transition_begin)
    return described(
        "linear_schedule",
        linear_ramp(init_value, end_value, steps, begin),
        init_value=init_value,
        end_value=end_value,
        transition_steps=transition_steps,
        transition_begin=transition_begin,
    )


def polynomial_schedule(
    init_value: Any,
    end_value: Any,
    power: Any,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    r"""Moves from ``init_value`` to ``end_value`` along a polynomial of degree ``power``.

    With :math:`I` = ``init_value``, :math:`E` = ``end_value``, :math:`P` = ``power``,
    :math:`B` = ``transition_begin``, :math:`T` = ``transition_steps`` and :math:`c` =
    ``count``:

    .. math::
        f(c) = E + (I - E) \left(1 - \frac{\min(\max(c - B, 0), T)}{T}\right)^{P}

    ``power=1`` is :func:`linear_schedule`; ``power=2`` decays fast first, then flattens.

    Args:
      init_value: value before and at ``transition_begin``.
      end_value: value from ``transition_begin + transition_steps`` on.
      power: positive exponent of the polynomial.
      transition_steps: positive integer, the length of the transition.
      transition_begin: non-negative integer, the number of steps held at ``init_value``.

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.polynomial_schedule``: ``transition_steps <= 0`` (a constant in
    Optax), a negative ``transition_begin`` (clamped to 0 by Optax) and ``power <= 0``
    (accepted by Optax, where it never reaches ``end_value`` or divides by zero) raise
    ``ValueError``. The fraction ``1 - t/T`` is computed as ``(T - t)/T`` and the weight of
    ``end_value`` without cancellation, so values keep float32 relative accuracy where Optax's
    only have float32 accuracy relative to the schedule's scale (near the end of a decay to
    0, or the start of a rise from 0).

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.polynomial_schedule(1.0, 0.0, power=2, transition_steps=100)
      >>> [float(schedule(c)) for c in (0, 50, 100)]
      [1.0, 0.25, 0.0]
    """
    call = "optgrad.schedules.polynomial_schedule"
    check_value(call, "init_value", init_value)
    check_value(call, "end_value", end_value)
    check_value(call, "power", power)
    _check.positive(call, "power", power)
    steps = positive_int(call, "transition_steps", transition_steps)
    begin = non_negative_int(call, "transition_begin", transition_begin)

    def schedule(count: Any) -> jax.Array:
        weight, complement = power_and_complement(*_remaining(count, begin, steps), power)
        return blend(init_value, end_value, weight, complement)

    return described(
        "polynomial_schedule",
        schedule,
        init_value=init_value,
        end_value=end_value,
        power=power,
        transition_steps=transition_steps,
        transition_begin=transition_begin,
    )
