"""Cosine annealing: alone, after a linear warmup, or repeated with warm restarts (SGDR)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optgrad import _check

from ._described import described
from ._join import join_schedules
from ._polynomial import linear_ramp
from ._util import (
    Schedule,
    blend,
    check_value,
    f32,
    fraction,
    non_negative_int,
    positive_int,
    power_and_complement,
)

_HALF_PI = math.pi / 2


def _cosine_weights(count: Any, steps: int, exponent: Any) -> tuple[jax.Array, jax.Array]:
    """``w = ((1 + cos(pi * t / steps)) / 2) ** exponent`` and ``1 - w``, for the clipped count
    ``t = clip(count, 0, steps)``.

    Evaluated as ``sin(pi/2 * (steps - t) / steps) ** 2`` and ``sin(pi/2 * t / steps) ** 2``
    (the same numbers for ``exponent=1``), which keep their relative accuracy at both ends of
    the decay, where ``1 + cos(...)`` and ``1 - cos(...)`` cancel.
    """
    done = jnp.clip(jnp.asarray(count), 0, steps)
    half_pi = np.float32(_HALF_PI)
    weight = jnp.sin(half_pi * fraction(steps - done, steps)) ** 2
    complement = jnp.sin(half_pi * fraction(done, steps)) ** 2
    return power_and_complement(weight, complement, exponent)


def _check_exponent(call: str, exponent: Any) -> None:
    check_value(call, "exponent", exponent)
    _check.positive(call, "exponent", exponent)


def cosine_decay_schedule(
    init_value: Any, decay_steps: int, alpha: Any = 0.0, exponent: Any = 1.0
) -> Schedule:
    r"""Half a cosine from ``init_value`` down to ``alpha * init_value`` over ``decay_steps``.

    With :math:`I` = ``init_value``, :math:`T` = ``decay_steps``, :math:`a` = ``alpha``,
    :math:`p` = ``exponent`` and :math:`t = \min(c, T)` for the count :math:`c`:

    .. math::
        f(c) = I \left( a + (1 - a) \left[\tfrac{1}{2}\left(1 + \cos\frac{\pi t}{T}\right)
        \right]^{p} \right)

    and :math:`f = a I` from step :math:`T` on (SGDR without restarts, Loshchilov & Hutter
    2017; ``torch.optim.lr_scheduler.CosineAnnealingLR`` for one half period, with
    ``eta_min = alpha * init_value``).

    Args:
      init_value: the value at step 0.
      decay_steps: positive integer, the length of the decay.
      alpha: the final value as a fraction of ``init_value``.
      exponent: positive power applied to the cosine factor (1 is plain cosine).

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.cosine_decay_schedule``: ``exponent <= 0`` raises
    ``ValueError``; the cosine factor is computed as ``sin(pi/2 * (T - t)/T) ** 2``, which
    agrees with Optax's ``(1 + cos(pi t/T)) / 2`` to float32 rounding of ``init_value`` but
    keeps full relative accuracy near the end, where Optax's cancels (with ``alpha=0`` and
    ``T=300``, Optax's values in the last steps are off by up to ~1e-4 relative).

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.cosine_decay_schedule(1.0, decay_steps=100, alpha=0.1)
      >>> [round(float(schedule(c)), 6) for c in (0, 50, 100, 200)]
      [1.0, 0.55, 0.1, 0.1]
    """
    call = "optgrad.schedules.cosine_decay_schedule"
    check_value(call, "init_value", init_value)
    steps = positive_int(call, "decay_steps", decay_steps)
    check_value(call, "alpha", alpha)
    _check_exponent(call, exponent)

    def schedule(count: Any) -> jax.Array:
        weight, _ = _cosine_weights(count, steps, exponent)
        return f32(init_value) * (f32(1.0 - alpha) * weight + f32(alpha))

    return described(
        "cosine_decay_schedule",
        schedule,
        init_value=init_value,
        decay_steps=decay_steps,
        alpha=alpha,
        exponent=exponent,
    )


def warmup_cosine_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    decay_steps: int,
    end_value: Any = 0.0,
    exponent: Any = 1.0,
) -> Schedule:
    r"""Linear warmup from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``.

    With :math:`W` = ``warmup_steps`` and :math:`D` = ``decay_steps`` (the total length,
    warmup included, as in Optax) and count :math:`c`:

    .. math::
        f(c) = \begin{cases}
          I + (P - I)\, c / W & c < W \\
          E + (P - E) \left[\tfrac{1}{2}\left(1 + \cos\frac{\pi \min(c - W,\, D - W)}{D - W}
          \right)\right]^{p} & c \ge W
        \end{cases}

    where :math:`I, P, E, p` are ``init_value``, ``peak_value``, ``end_value`` and
    ``exponent``. So the peak is reached at step :math:`W` and ``end_value`` at step
    :math:`D`, and held after.

    Args:
      init_value: the value at step 0.
      peak_value: the value at the end of the warmup.
      warmup_steps: non-negative integer, the warmup length (0 starts at ``peak_value``).
      decay_steps: positive integer greater than ``warmup_steps``: the total length of the
        schedule, warmup included (the cosine lasts ``decay_steps - warmup_steps`` steps).
      end_value: the value from step ``decay_steps`` on.
      exponent: positive power applied to the cosine factor.

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.warmup_cosine_decay_schedule``: ``decay_steps <= warmup_steps``,
    a negative ``warmup_steps`` and ``exponent <= 0`` raise ``ValueError`` with the argument
    named; with ``peak_value == 0`` Optax ignores ``end_value`` (it uses ``alpha = end/peak``
    and sets ``alpha = 0`` to avoid dividing by zero), while here the cosine still goes from
    0 to ``end_value``. Otherwise values agree to float32 rounding of the schedule's scale.

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.warmup_cosine_decay_schedule(
      ...     0.0, peak_value=1.0, warmup_steps=10, decay_steps=110, end_value=0.5)
      >>> [round(float(schedule(c)), 6) for c in (0, 5, 10, 60, 110, 200)]
      [0.0, 0.5, 1.0, 0.75, 0.5, 0.5]
    """
    call = "optgrad.schedules.warmup_cosine_decay_schedule"
    check_value(call, "init_value", init_value)
    check_value(call, "peak_value", peak_value)
    warmup = non_negative_int(call, "warmup_steps", warmup_steps)
    total = positive_int(call, "decay_steps", decay_steps)
    if total <= warmup:
        raise ValueError(
            f"{call}(decay_steps=...) must be greater than warmup_steps (decay_steps counts "
            f"the warmup), got decay_steps={decay_steps!r}, warmup_steps={warmup_steps!r}"
        )
    check_value(call, "end_value", end_value)
    _check_exponent(call, exponent)
    ramp = linear_ramp(init_value, peak_value, warmup) if warmup else None
    cosine_steps = total - warmup

    def schedule(count: Any) -> jax.Array:
        count = jnp.asarray(count)
        weight, complement = _cosine_weights(count - warmup, cosine_steps, exponent)
        value = blend(peak_value, end_value, weight, complement)
        if ramp is not None:
            value = jnp.where(count < warmup, ramp(count), value)
        return value

    return described(
        "warmup_cosine_decay_schedule",
        schedule,
        init_value=init_value,
        peak_value=peak_value,
        warmup_steps=warmup_steps,
        decay_steps=decay_steps,
        end_value=end_value,
        exponent=exponent,
    )


def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, Any]]) -> Schedule:
    r"""Stochastic gradient descent with warm restarts: warmup-cosine cycles, one after another.

    Each entry of ``cosine_kwargs`` holds the arguments of a
    :func:`warmup_cosine_decay_schedule`; cycle :math:`k` starts when the previous ones have
    run for their ``decay_steps`` (each cycle's total length, its warmup included), and counts
    from 0. After the last cycle its ``end_value`` is held. Loshchilov & Hutter, "SGDR:
    Stochastic Gradient Descent with Warm Restarts" (2017).

    Args:
      cosine_kwargs: a non-empty iterable of mappings, each the keyword arguments of
        :func:`warmup_cosine_decay_schedule` (``init_value``, ``peak_value``,
        ``warmup_steps``, ``decay_steps`` and optionally ``end_value``, ``exponent``).

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.sgdr_schedule``: those of :func:`warmup_cosine_decay_schedule`
    (``decay_steps <= warmup_steps`` raises; a zero ``peak_value`` still ends at
    ``end_value``); an empty ``cosine_kwargs`` raises ``ValueError``; errors in a cycle's
    arguments name the cycle.

    Example:
      >>> from optgrad import schedules
      >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=0, decay_steps=10)
      >>> schedule = schedules.sgdr_schedule([cycle, cycle])
      >>> [round(float(schedule(c)), 6) for c in (0, 5, 9, 10, 15, 20)]
      [1.0, 0.5, 0.024472, 1.0, 0.5, 0.0]
    """
    call = "optgrad.schedules.sgdr_schedule"
    if isinstance(cosine_kwargs, Mapping) or not isinstance(cosine_kwargs, Iterable):
        raise TypeError(
            f"{call}(cosine_kwargs=...) must be an iterable of mappings (the arguments of "
            f"each warmup_cosine_decay_schedule), got {type(cosine_kwargs).__name__}: "
            f"{cosine_kwargs!r}"
        )
    cycles = [dict(kwargs) if isinstance(kwargs, Mapping) else kwargs for kwargs in cosine_kwargs]
    if not cycles:
        raise ValueError(f"{call}(cosine_kwargs=...) must not be empty, got cosine_kwargs=[]")
    pieces, boundaries, start = [], [], 0
    for position, kwargs in enumerate(cycles):
        if not isinstance(kwargs, dict):
            raise TypeError(
                f"{call}(cosine_kwargs=...) must contain mappings, got "
                f"{type(kwargs).__name__} at position {position}: {kwargs!r}"
            )
        try:
            pieces.append(warmup_cosine_decay_schedule(**kwargs))
        except (TypeError, ValueError) as error:
            raise type(error)(f"{call}(cosine_kwargs=...) cycle {position}: {error}") from None
        start += kwargs["decay_steps"]
        boundaries.append(start)
    return described("sgdr_schedule", join_schedules(pieces, boundaries[:-1]), cosine_kwargs=cycles)
