"""Schedules made from other schedules: products, and counting in epochs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._described import described
from ._util import Schedule, f32, positive_int


def _check_schedule(call: str, name: str, value: Any) -> None:
    if not callable(value):
        raise TypeError(
            f"{call}({name}=...) must be a schedule (a function of the step count), got "
            f"{type(value).__name__}: {value!r}"
        )


def product_schedule(*schedules: Callable[[Any], Any]) -> Schedule:
    r"""The pointwise product :math:`f(c) = \prod_i s_i(c)` of one or more schedules.

    Builds a schedule from factors, e.g. a warmup factor times a decay, the way
    ``torch.optim.lr_scheduler.ChainedScheduler`` composes multiplicative schedulers. Any
    function of the step count works as a factor (Optax schedules and lambdas included).

    Args:
      *schedules: one or more schedules.

    Returns:
      A function of the step count returning float32 values.

    Example:
      >>> from optgrad import schedules
      >>> warmup = schedules.linear_schedule(0.0, 1.0, transition_steps=10)
      >>> decay = schedules.exponential_decay(0.1, transition_steps=10, decay_rate=0.5)
      >>> schedule = schedules.product_schedule(warmup, decay)
      >>> [round(float(schedule(c)), 6) for c in (0, 5, 10, 20)]
      [0.0, 0.035355, 0.05, 0.025]
    """
    call = "optgrad.schedules.product_schedule"
    if not schedules:
        raise ValueError(f"{call}(*schedules) needs at least one schedule, got none")
    for position, item in enumerate(schedules):
        _check_schedule(call, f"schedules[{position}]", item)

    def schedule(count: Any) -> jax.Array:
        value = f32(schedules[0](count))
        for factor in schedules[1:]:
            value = value * f32(factor(count))
        return jnp.broadcast_to(value, jnp.shape(count))

    return described("product_schedule", schedule, *schedules)


def per_epoch(schedule: Callable[[Any], Any], steps_per_epoch: int) -> Schedule:
    r"""``schedule`` counted in epochs: :math:`f(c) = s(\lfloor c / E \rfloor)`.

    Turns a schedule written for epochs (as PyTorch's schedulers are, stepped once an epoch)
    into one of the optimizer's step count, constant within each epoch of :math:`E` =
    ``steps_per_epoch`` steps.

    Args:
      schedule: a function of the epoch number.
      steps_per_epoch: positive integer, the optimizer steps in one epoch.

    Returns:
      A function of the step count returning float32 values.

    Example:
      >>> from optgrad import schedules
      >>> by_epoch = schedules.exponential_decay(1.0, transition_steps=1, decay_rate=0.5)
      >>> schedule = schedules.per_epoch(by_epoch, steps_per_epoch=100)
      >>> [float(schedule(c)) for c in (0, 99, 100, 250)]
      [1.0, 1.0, 0.5, 0.25]
    """
    call = "optgrad.schedules.per_epoch"
    _check_schedule(call, "schedule", schedule)
    steps = positive_int(call, "steps_per_epoch", steps_per_epoch)

    def stepwise(count: Any) -> jax.Array:
        count = jnp.asarray(count)
        return jnp.broadcast_to(f32(schedule(count // steps)), jnp.shape(count))

    return described("per_epoch", stepwise, schedule=schedule, steps_per_epoch=steps_per_epoch)
