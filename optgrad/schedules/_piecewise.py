"""A value multiplied by given factors at given steps, held or interpolated in between."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optgrad import _check

from ._described import described
from ._util import Schedule, blend, check_value, f32, stages_passed

_HALF_PI = np.float32(math.pi / 2)
_KINDS = ("linear", "cosine")


def _cumulative_factors(
    call: str, boundaries_and_scales: Any
) -> tuple[tuple[int, ...], np.ndarray]:
    """Checks ``{step: scale}``; returns the sorted steps and the float64 running products.

    ``factors[k]`` is the product of the scales of the first ``k`` steps (``factors[0] = 1``).
    """
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
    return boundaries, np.cumprod([1.0] + [scale for _, scale in items])


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
    boundaries, factors = _cumulative_factors(call, boundaries_and_scales)
    factors = factors.astype(np.float32)

    def schedule(count: Any) -> jax.Array:
        stage = stages_passed(jnp.asarray(count), boundaries)
        return f32(init_value) * jnp.asarray(factors)[stage]

    return described(
        "piecewise_constant_schedule",
        schedule,
        init_value=init_value,
        boundaries_and_scales=dict(boundaries_and_scales),
    )


def interpolator(
    kind: str, scale: Any, boundaries: tuple[int, ...], levels: np.ndarray
) -> Schedule:
    """Unchecked: ``scale * levels[k]`` at ``boundaries[k - 1]`` (with ``boundaries[-1] = 0``),
    moving to the next level along a line or half a cosine, and ``scale * levels[-1]`` from the
    last boundary on. ``boundaries`` are sorted non-negative steps, possibly repeated (a repeated
    step gives an empty segment); ``levels`` has one more entry. Shared with the one-cycle
    schedules.
    """
    levels = np.asarray(levels, np.float32)
    last = len(boundaries)
    starts = np.asarray((0, *boundaries), np.int32)
    ends = np.asarray((*boundaries, boundaries[-1] if boundaries else 0), np.int32)

    def schedule(count: Any) -> jax.Array:
        count = jnp.asarray(count)
        values = f32(scale) * jnp.asarray(levels)
        if not last:
            return jnp.broadcast_to(values[0], jnp.shape(count))
        stage = stages_passed(count, boundaries)
        begin = jnp.asarray(starts)[stage]
        size = jnp.maximum(jnp.asarray(ends)[stage] - begin, 1)
        done = jnp.clip(count - begin, 0, size)
        # Both weights from integers, pinned at the ends (see `_util.fraction`).
        left = jnp.where(done == 0, 1.0, f32(size - done) / f32(size))
        right = jnp.where(done == size, 1.0, f32(done) / f32(size))
        if kind == "cosine":
            left, right = jnp.sin(_HALF_PI * left) ** 2, jnp.sin(_HALF_PI * right) ** 2
        following = values[jnp.minimum(stage + 1, last)]
        value = blend(values[stage], following, left, right)
        return jnp.where(stage == last, values[last], value)

    return schedule


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: Any,
    boundaries_and_scales: Mapping[int, float] | None = None,
) -> Schedule:
    r"""Like :func:`piecewise_constant_schedule`, but moving smoothly between the levels.

    With ``boundaries_and_scales = {b_1: s_1, ..., b_n: s_n}`` sorted by step, the levels are
    :math:`v_0 = I` (``init_value``) and :math:`v_k = I \prod_{i \le k} s_i`, reached at step
    :math:`b_k`. Between :math:`b_{k-1}` and :math:`b_k` (with :math:`b_0 = 0`) the value moves
    from :math:`v_{k-1}` to :math:`v_k` with progress :math:`p = (c - b_{k-1}) / (b_k -
    b_{k-1})`:

    .. math::
        f(c) = v_{k-1} + (v_k - v_{k-1})\, w(p), \qquad
        w(p) = p \ \text{(linear)} \quad\text{or}\quad \tfrac{1}{2}(1 - \cos \pi p)
        \ \text{(cosine)}

    and :math:`f = v_n` from :math:`b_n` on. The scales multiply: ``{4: 0.1, 8: 0.01}`` goes to
    ``0.1 * I`` at step 4 and ``0.001 * I`` at step 8.

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"``.
      init_value: the value at step 0.
      boundaries_and_scales: optional mapping from step (a non-negative integer) to the
        non-negative factor reached at that step. ``None`` or ``{}`` gives a constant.

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.piecewise_interpolate_schedule``: boundaries must be non-negative
    integers and scales finite; a negative count gives ``init_value`` (Optax gives 0); the
    levels are products formed in float64 at build time and the cosine weights are computed as
    ``sin(pi/2 * x) ** 2``, which keeps relative accuracy where Optax's ``1 + cos`` cancels.

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.piecewise_interpolate_schedule("linear", 1.0, {4: 0.1, 8: 0.01})
      >>> [round(float(schedule(c)), 6) for c in (0, 2, 4, 6, 8, 10)]
      [1.0, 0.55, 0.1, 0.0505, 0.001, 0.001]
    """
    call = "optgrad.schedules.piecewise_interpolate_schedule"
    _check.one_of(call, "interpolate_type", interpolate_type, _KINDS)
    check_value(call, "init_value", init_value)
    if boundaries_and_scales is None:
        boundaries_and_scales = {}
    boundaries, levels = _cumulative_factors(call, boundaries_and_scales)
    return described(
        "piecewise_interpolate_schedule",
        interpolator(interpolate_type, init_value, boundaries, levels),
        interpolate_type=interpolate_type,
        init_value=init_value,
        boundaries_and_scales=dict(boundaries_and_scales),
    )
