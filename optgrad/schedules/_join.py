"""Several schedules one after the other."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._described import described
from ._util import Schedule, f32, non_negative_int, stages_passed


def join_schedules(
    schedules: Sequence[Callable[[Any], Any]], boundaries: Sequence[int]
) -> Schedule:
    r"""Runs ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]``, and so on.

    With boundaries :math:`b_1 \le b_2 \le \dots` and :math:`b_0 = 0`, the value at count
    :math:`c` is :math:`s_k(c - b_k)` where :math:`k` is the number of boundaries
    :math:`\le c`: each schedule starts counting from 0 at its boundary. A schedule whose
    boundary is repeated by the next one is skipped; a first boundary of 0 skips
    ``schedules[0]``.

    Args:
      schedules: non-empty sequence of schedules (functions of the step count; any
        ``count -> scalar`` function works, including Optax schedules). All of them are
        evaluated at every call (under ``jit`` this is how a branch-free selection works), so
        they must accept counts before their own start (negative local counts).
      boundaries: non-decreasing, non-negative integers, one fewer than ``schedules``.

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.join_schedules``: boundaries that are not non-decreasing
    non-negative integers, or whose number is not ``len(schedules) - 1`` (Optax silently
    ignores extra schedules or boundaries), raise ``ValueError``.

    Example:
      >>> from optgrad import schedules
      >>> warmup = schedules.linear_schedule(0.0, 1.0, transition_steps=10)
      >>> decay = schedules.exponential_decay(1.0, transition_steps=10, decay_rate=0.5)
      >>> schedule = schedules.join_schedules([warmup, decay], boundaries=[10])
      >>> [float(schedule(c)) for c in (0, 5, 10, 20)]
      [0.0, 0.5, 1.0, 0.5]
    """
    call = "optgrad.schedules.join_schedules"
    if isinstance(schedules, (str, bytes)) or not isinstance(schedules, Sequence):
        raise TypeError(
            f"{call}(schedules=...) must be a sequence of schedules, got "
            f"{type(schedules).__name__}: {schedules!r}"
        )
    schedules = tuple(schedules)
    if not schedules:
        raise ValueError(f"{call}(schedules=...) must not be empty, got schedules={schedules!r}")
    for position, item in enumerate(schedules):
        if not callable(item):
            raise TypeError(
                f"{call}(schedules=...) must contain only schedules (callables), got "
                f"{type(item).__name__} at position {position}: {item!r}"
            )
    if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, Sequence):
        raise TypeError(
            f"{call}(boundaries=...) must be a sequence of integers, got "
            f"{type(boundaries).__name__}: {boundaries!r}"
        )
    boundaries = tuple(boundaries)
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"{call}(boundaries=...) must have one entry fewer than schedules, got "
            f"{len(boundaries)} boundaries for {len(schedules)} schedules: "
            f"boundaries={list(boundaries)!r}"
        )
    for step in boundaries:
        try:
            non_negative_int(call, "boundaries", step)
        except ValueError:
            raise ValueError(
                f"{call}(boundaries=...) must contain non-negative integers, got "
                f"boundaries={list(boundaries)!r}"
            ) from None
    if any(later < earlier for earlier, later in itertools.pairwise(boundaries)):
        raise ValueError(
            f"{call}(boundaries=...) must be non-decreasing, got boundaries={list(boundaries)!r}"
        )
    boundaries = tuple(int(step) for step in boundaries)
    starts = (0, *boundaries)

    def schedule(count: Any) -> jax.Array:
        count = jnp.asarray(count)
        stage = stages_passed(count, boundaries)
        value = f32(schedules[0](count))
        for k in range(1, len(schedules)):
            value = jnp.where(stage >= k, f32(schedules[k](count - starts[k])), value)
        return value

    return described(
        "join_schedules", schedule, schedules=list(schedules), boundaries=list(boundaries)
    )
