"""Cyclical learning rates (Smith 2017): triangular waves between two values."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from optgrad import _check

from ._described import described
from ._util import Schedule, check_value, concrete_number, f32, fraction, positive_int, power

_MODES = ("triangular", "triangular2", "exp_range")


def cyclic_schedule(
    base_value: Any,
    max_value: Any,
    step_size_up: int,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> Schedule:
    r"""A triangular wave: up from ``base_value`` to ``max_value`` and back, again and again.

    With :math:`B, M` = ``base_value``, ``max_value``, :math:`U` = ``step_size_up``,
    :math:`V` = ``step_size_down`` (default :math:`U`), the period :math:`T = U + V`, the
    position in the cycle :math:`r = c \bmod T` and the cycle number :math:`k = \lfloor c / T
    \rfloor`:

    .. math::
        f(c) = B + (M - B)\, h(r)\, s(c), \qquad
        h(r) = \begin{cases} r / U & r \le U \\ (T - r) / V & r > U \end{cases}

    with the amplitude scale :math:`s = 1` (``"triangular"``), :math:`s = 2^{-k}`
    (``"triangular2"``: the amplitude halves every cycle) or :math:`s = \gamma^{c}`
    (``"exp_range"``). Smith, "Cyclical Learning Rates for Training Neural Networks" (WACV
    2017); the same values as ``torch.optim.lr_scheduler.CyclicLR`` (its learning rates, not
    its momentum cycling) at step count :math:`c`.

    Args:
      base_value: the value at the start of every cycle.
      max_value: the value at the top of the first cycle (may be below ``base_value``).
      step_size_up: positive integer, the steps from the bottom to the top.
      step_size_down: positive integer, the steps from the top back down (default
        ``step_size_up``).
      mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
      gamma: the per-step factor of ``"exp_range"``, in (0, 1] (a concrete number).

    Returns:
      A function of the step count returning float32 values.

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.cyclic_schedule(0.0, 1.0, step_size_up=2, mode="triangular2")
      >>> [float(schedule(c)) for c in range(9)]
      [0.0, 0.5, 1.0, 0.5, 0.0, 0.25, 0.5, 0.25, 0.0]
    """
    call = "optgrad.schedules.cyclic_schedule"
    check_value(call, "base_value", base_value)
    check_value(call, "max_value", max_value)
    up = positive_int(call, "step_size_up", step_size_up)
    down = up if step_size_down is None else positive_int(call, "step_size_down", step_size_down)
    _check.one_of(call, "mode", mode, _MODES)
    rate = concrete_number(call, "gamma", gamma)
    _check.number(call, "gamma", rate, low=0.0, high=1.0, low_open=True)
    period = up + down
    log2_gamma = math.log2(rate)

    def schedule(count: Any) -> jax.Array:
        count = jnp.maximum(jnp.asarray(count), 0)
        where = count % period
        height = jnp.where(where <= up, fraction(where, up), fraction(period - where, down))
        if mode == "triangular2":
            height = height * power(count // period, -1.0)
        elif mode == "exp_range":
            height = height * power(count, log2_gamma)
        return f32(base_value) + (f32(max_value) - f32(base_value)) * height

    return described(
        "cyclic_schedule",
        schedule,
        base_value=base_value,
        max_value=max_value,
        step_size_up=step_size_up,
        step_size_down=step_size_down,
        mode=mode,
        gamma=gamma,
    )
