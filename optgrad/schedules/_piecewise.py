"""A value multiplied by given factors at given steps."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optgrad import _check

from ._util import Schedule, check_value, f32, stages_passed


def piecewise_constant_schedule(
    init_value: Any, boundaries_and_scales: Mapping[int, float] | None = None
) -> Schedule:
    r"""``init_value`` times the product of the scales whose boundary has been reached.

    .. math::
        f(c) = I \prod_{b_i \le c} s_i

    for ``boundaries_and_scales = {b_1: s_1, b_2: s_2, ...}``: at step ``b_i`` the value is
    multiplied by ``s_i`` (``torch.optim.lr_scheduler.MultiStepLR`` with per-milestone
    factors).

    Args:
      init_value: the value before the first boundary.
      boundaries_and_scales: optional mapping from step (a non-negative integer) to the
        non-negative factor applied from that step on. ``None`` or ``{}`` gives a constant.

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.piecewise_constant_schedule``: boundaries must be non-negative
    integers and scales finite (Optax checks only that scales are non-negative); the
    cumulative products are formed in float64 at build time, so Optax's float32 products agree
    only to a few float32 roundings per boundary.

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.piecewise_constant_schedule(1.0, {10: 0.5, 20: 0.5})
      >>> [float(schedule(c)) for c in (0, 9, 10, 19, 20, 100)]
      [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    call = "optgrad.schedules.piecewise_constant_schedule"
    check_value(call, "init_value", init_value)
    if boundaries_and_scales is None:
        boundaries_and_scales = {}
    if not isinstance(boundaries_and_scales, Mapping):
        raise TypeError(
            f"{call}(boundaries_and_scales=...) must be a mapping {{step: scale}} or None, "
            f"got {type(boundaries_and_scales).__name__}: {boundaries_and_scales!r}"
        )
    for step, scale in boundaries_and_scales.items():
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(
                f"{call}(boundaries_and_scales=...) must have non-negative integer steps as "
                f"keys, got boundaries_and_scales={boundaries_and_scales!r}"
            )
        factor = _check.concrete_float(scale)
        if factor is None or isinstance(scale, bool) or not (0 <= factor < math.inf):
            raise ValueError(
                f"{call}(boundaries_and_scales=...) must have non-negative finite numbers as "
                f"scales, got boundaries_and_scales={boundaries_and_scales!r}"
            )

    items = sorted((int(step), float(scale)) for step, scale in boundaries_and_scales.items())
    boundaries = tuple(step for step, _ in items)
    # factors[k] = product of the first k scales, in float64.
    factors = np.cumprod([1.0] + [scale for _, scale in items]).astype(np.float32)

    def schedule(count: Any) -> jax.Array:
        stage = stages_passed(jnp.asarray(count), boundaries)
        return f32(init_value) * jnp.asarray(factors)[stage]

    return schedule
