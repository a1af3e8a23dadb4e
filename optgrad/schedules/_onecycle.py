"""The one-cycle policy (Smith & Topin 2017): up to a peak, then far below the start."""

from __future__ import annotations

from typing import Any

import numpy as np

from optgrad import _check

from ._described import described
from ._piecewise import interpolator
from ._util import Schedule, check_value, concrete_number, positive_int


def _check_common(call: str, transition_steps, peak_value, pct_start, div_factor, final_div):
    steps = positive_int(call, "transition_steps", transition_steps)
    check_value(call, "peak_value", peak_value)
    start = concrete_number(call, "pct_start", pct_start)
    _check.number(call, "pct_start", start, low=0.0, high=1.0, low_open=True, high_open=True)
    div = concrete_number(call, "div_factor", div_factor)
    _check.positive(call, "div_factor", div)
    final = concrete_number(call, "final_div_factor", final_div)
    _check.positive(call, "final_div_factor", final)
    return steps, start, div, final


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: Any,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""Three linear phases: up to ``peak_value``, back down to the start, then far below it.

    With :math:`T` = ``transition_steps``, :math:`P` = ``peak_value``, the start value
    :math:`S = P / d` (:math:`d` = ``div_factor``) and the final value :math:`S / D`
    (:math:`D` = ``final_div_factor``), the value moves linearly

    * from :math:`S` at step 0 to :math:`P` at step :math:`\lfloor p_s T \rfloor`
      (:math:`p_s` = ``pct_start``),
    * back to :math:`S` at step :math:`\lfloor p_f T \rfloor` (:math:`p_f` = ``pct_final``),
    * down to :math:`S / D` at step :math:`T`, and stays there.

    This is Optax's schedule (Smith & Topin, "Super-Convergence", 2017). It differs from
    ``torch.optim.lr_scheduler.OneCycleLR(anneal_strategy="linear", three_phase=True)``, whose
    peak is at step :math:`p_s T - 1`, whose second phase ends at :math:`2 p_s T - 2` (there
    is no ``pct_final``) and whose last value is reached at step :math:`T - 1`.

    Args:
      transition_steps: positive integer, the length of the cycle.
      peak_value: the highest value.
      pct_start: fraction of the cycle spent rising, in (0, 1).
      pct_final: fraction of the cycle at which the value is back to the start, in
        (``pct_start``, 1).
      div_factor: positive; the start value is ``peak_value / div_factor``.
      final_div_factor: positive; the final value is ``peak_value / div_factor /
        final_div_factor``.

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.linear_onecycle_schedule``: ``pct_start`` outside (0, 1),
    ``pct_final`` outside (``pct_start``, 1), non-positive factors, and a cycle so short that
    two phases would change at the same step (which Optax silently merges into a different
    schedule, dropping the peak) raise ``ValueError``. The levels are computed in float64.

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.linear_onecycle_schedule(100, peak_value=1.0, div_factor=10)
      >>> [round(float(schedule(c)), 6) for c in (0, 30, 85, 100)]
      [0.1, 1.0, 0.1, 1e-05]
    """
    call = "optgrad.schedules.linear_onecycle_schedule"
    steps, start, div, final = _check_common(
        call, transition_steps, peak_value, pct_start, div_factor, final_div_factor
    )
    end = concrete_number(call, "pct_final", pct_final)
    if not start < end < 1.0:
        raise ValueError(
            f"{call}(pct_final=...) must be in (pct_start, 1) = ({start:g}, 1), "
            f"got pct_final={pct_final!r}"
        )
    peak_step, down_step = int(start * steps), int(end * steps)
    if peak_step == down_step or down_step == steps:
        raise ValueError(
            f"{call}(transition_steps=...) is too short for pct_start={pct_start!r} and "
            f"pct_final={pct_final!r}: the phases must change at distinct steps, got "
            f"floor(pct_start * {steps}) = {peak_step}, floor(pct_final * {steps}) = "
            f"{down_step} and transition_steps={steps}"
        )
    levels = np.array([1.0 / div, 1.0, 1.0 / div, 1.0 / (div * final)])
    return described(
        "linear_onecycle_schedule",
        interpolator("linear", peak_value, (peak_step, down_step, steps), levels),
        transition_steps=transition_steps,
        peak_value=peak_value,
        pct_start=pct_start,
        pct_final=pct_final,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: Any,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""Half a cosine up to ``peak_value``, then half a cosine down to far below the start.

    With :math:`T` = ``transition_steps``, :math:`P` = ``peak_value``, the start value
    :math:`S = P / d` (:math:`d` = ``div_factor``), :math:`K = \lfloor p_s T \rfloor`
    (:math:`p_s` = ``pct_start``) and the final value :math:`E = S / D` (:math:`D` =
    ``final_div_factor``):

    .. math::
        f(c) = \begin{cases}
          P + (S - P)\, \tfrac{1}{2}\left(1 + \cos \frac{\pi c}{K}\right) & c < K \\
          E + (P - E)\, \tfrac{1}{2}\left(1 + \cos \frac{\pi (c - K)}{T - K}\right) & K \le c < T
          \\ E & c \ge T
        \end{cases}

    Smith & Topin, "Super-Convergence" (2017), as in Optax.

    **Off by one from PyTorch.** ``torch.optim.lr_scheduler.OneCycleLR(total_steps=T,
    pct_start=p_s)`` (two phases, ``anneal_strategy="cos"``) reaches the peak at step
    :math:`p_s T - 1` and the final value at step :math:`T - 1`; this schedule, like Optax's,
    at :math:`\lfloor p_s T \rfloor` and :math:`T`. With :math:`T = 100` the peak is at step
    30 here and 29 in torch, and torch's last value (step 99) is this schedule's at step 100.
    Neither cycles momentum.

    Args:
      transition_steps: positive integer, the length of the cycle.
      peak_value: the highest value.
      pct_start: fraction of the cycle spent rising, in (0, 1).
      div_factor: positive; the start value is ``peak_value / div_factor``.
      final_div_factor: positive; the final value is ``peak_value / div_factor /
        final_div_factor``.

    Returns:
      A function of the step count returning float32 values.

    Differences from ``optax.cosine_onecycle_schedule``: ``pct_start`` outside (0, 1) and
    non-positive factors raise ``ValueError``; the cosine weights are computed as
    ``sin(pi/2 * x) ** 2``, so the last steps keep their relative accuracy (Optax's
    ``1 + cos`` cancels there: its values are accurate only relative to ``peak_value``).

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.cosine_onecycle_schedule(100, peak_value=1.0, div_factor=10)
      >>> [round(float(schedule(c)), 6) for c in (0, 15, 30, 65, 100)]
      [0.1, 0.55, 1.0, 0.500005, 1e-05]
    """
    call = "optgrad.schedules.cosine_onecycle_schedule"
    steps, start, div, final = _check_common(
        call, transition_steps, peak_value, pct_start, div_factor, final_div_factor
    )
    levels = np.array([1.0 / div, 1.0, 1.0 / (div * final)])
    return described(
        "cosine_onecycle_schedule",
        interpolator("cosine", peak_value, (int(start * steps), steps), levels),
        transition_steps=transition_steps,
        peak_value=peak_value,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
