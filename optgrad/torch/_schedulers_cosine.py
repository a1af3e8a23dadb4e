"""``CosineAnnealingLR`` and ``CosineAnnealingWarmRestarts``."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from optgrad.schedules import _util

from ._schedulers_base import _EpochSchedule, check_lr, sin2_pair

_INT32_MAX = 2**31 - 1


def _anneal(lr: Any, eta_min: Any, part: jax.Array, whole: Any) -> jax.Array:
    """``eta_min + (lr - eta_min) * (1 + cos(pi * part / whole)) / 2``, as a blend of two
    non-negative weights (accurate near the trough, also with ``eta_min != 0``)."""
    weight, complement = sin2_pair(part, whole)
    return _util.blend(lr, eta_min, weight, complement)


@dataclasses.dataclass(frozen=True, repr=False)
class CosineAnnealingLR(_EpochSchedule):
    r"""``torch.optim.lr_scheduler.CosineAnnealingLR``: half a cosine from ``lr`` to ``eta_min``.

    .. math::
        \mathrm{lr}(c) = \eta_{min} + (\mathrm{lr} - \eta_{min})
            \frac{1 + \cos(\pi e / T)}{2}, \qquad e = \lfloor c / k \rfloor

    with :math:`T` = ``T_max``. As in PyTorch, the rate is **not** held at ``eta_min`` after
    ``T_max`` epochs: it rises back to ``lr`` at ``2 T_max`` and keeps oscillating with period
    ``2 T_max``. PyTorch computes it by a recursion on the current rate; used alone (or as a
    ``SequentialLR`` child) that recursion equals this closed form, ``eta_min != 0`` and the
    troughs included (checked against PyTorch over several periods). (Chained with other
    schedulers in ``ChainedScheduler`` it does not: see :class:`ChainedScheduler`.) For a
    cosine that stops at ``eta_min``, use ``optgrad.schedules.cosine_decay_schedule``.

    Args:
      lr: base learning rate, non-negative.
      T_max: positive integer, epochs of the half period.
      eta_min: the minimum rate, non-negative.
      steps_per_epoch: keyword-only positive integer, updates per ``scheduler.step()``.

    Example:
      >>> from optgrad.torch import lr_scheduler
      >>> schedule = lr_scheduler.CosineAnnealingLR(1.0, T_max=2)
      >>> [round(float(schedule(c)), 6) for c in (0, 1, 2, 3, 4)]
      [1.0, 0.5, 0.0, 0.5, 1.0]
    """

    _sequential_child: ClassVar[bool] = True

    lr: Any
    T_max: int
    eta_min: Any = 0.0

    def _check_arguments(self) -> None:
        super()._check_arguments()
        check_lr(self._call, self.lr)
        _util.positive_int(self._call, "T_max", self.T_max)
        check_lr(self._call, self.eta_min, "eta_min")

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        period = 2 * self.T_max
        phase = epoch % period
        folded = jnp.minimum(phase, period - phase)  # distance to the last peak, in [0, T_max]
        return _anneal(self.lr, self.eta_min, folded, self.T_max)


@dataclasses.dataclass(frozen=True, repr=False)
class CosineAnnealingWarmRestarts(_EpochSchedule):
    r"""``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`` (SGDR).

    .. math::
        \mathrm{lr}(c) = \eta_{min} + (\mathrm{lr} - \eta_{min})
            \frac{1 + \cos(\pi T_{cur} / T_i)}{2}

    where the epoch :math:`e = \lfloor c / k \rfloor` falls in restart period :math:`i`
    (periods last :math:`T_0, T_0 m, T_0 m^2, \dots` epochs with :math:`m` = ``T_mult``),
    :math:`T_i = T_0 m^i` and :math:`T_{cur}` is the epoch within that period, all computed in
    integers as PyTorch's per-step recursion does (its ``step()`` without an argument).

    Args:
      lr: base learning rate, non-negative.
      T_0: positive integer, epochs of the first period.
      T_mult: integer ``>= 1``, growth of each period.
      eta_min: the minimum rate, non-negative.
      steps_per_epoch: keyword-only positive integer, updates per ``scheduler.step()``.

    Example:
      >>> from optgrad.torch import lr_scheduler
      >>> schedule = lr_scheduler.CosineAnnealingWarmRestarts(1.0, T_0=2, T_mult=2)
      >>> [round(float(schedule(c)), 6) for c in (0, 1, 2, 3, 4, 5, 6)]
      [1.0, 0.5, 1.0, 0.853553, 0.5, 0.146447, 1.0]
    """

    _sequential_child: ClassVar[bool] = True

    lr: Any
    T_0: int
    T_mult: int = 1
    eta_min: Any = 0.0

    def _check_arguments(self) -> None:
        super()._check_arguments()
        check_lr(self._call, self.lr)
        _util.positive_int(self._call, "T_0", self.T_0)
        _util.positive_int(self._call, "T_mult", self.T_mult)
        check_lr(self._call, self.eta_min, "eta_min")

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        if self.T_mult == 1:
            return _anneal(self.lr, self.eta_min, epoch % self.T_0, self.T_0)
        # Period i starts at T_0 (m^i - 1) / (m - 1); tabulate the starts that fit in int32.
        starts, lengths = [0], [self.T_0]
        while starts[-1] + lengths[-1] <= _INT32_MAX and len(starts) < 64:
            starts.append(starts[-1] + lengths[-1])
            lengths.append(lengths[-1] * self.T_mult)
        period = _util.stages_passed(epoch, tuple(starts[1:]))
        start = jnp.asarray(np.asarray(starts, np.int64).clip(max=_INT32_MAX), jnp.int32)
        length = jnp.asarray(np.asarray(lengths, np.float64), jnp.float32)
        return _anneal(self.lr, self.eta_min, epoch - start[period], length[period])
