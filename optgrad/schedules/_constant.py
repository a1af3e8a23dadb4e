"""A schedule that returns the same value at every step."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ._described import described
from ._util import Schedule, check_value, f32


def constant_schedule(value: Any) -> Schedule:
    """Returns the schedule ``count -> value``.

    Args:
      value: the value returned at every step (a finite number, or a scalar array).

    Returns:
      A function of the step count returning ``value`` as float32; an array of counts gives an
      array of the same shape.

    Unlike ``optax.constant_schedule``, which hands back ``value`` unchanged (a Python ``int``
    stays an ``int``), the result is always a float32 array, like every optgrad schedule.

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.constant_schedule(0.5)
      >>> float(schedule(0)), float(schedule(1000))
      (0.5, 0.5)
    """
    check_value("optgrad.schedules.constant_schedule", "value", value)

    def schedule(count: Any):
        return jnp.broadcast_to(f32(value), jnp.shape(count))

    return described("constant_schedule", schedule, value=value)
