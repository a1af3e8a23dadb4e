"""PyTorch's ``torch.optim.swa_utils`` learning-rate scheduler, ``SWALR``, as a pure schedule."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from optgrad.schedules import _util

from ._schedulers_base import _EpochSchedule, check_lr, choice, sin2_pair


@dataclasses.dataclass(frozen=True, repr=False)
class SWALR(_EpochSchedule):
    r"""``torch.optim.swa_utils.SWALR``: anneal from ``lr`` to ``swa_lr`` in ``anneal_epochs``.

    .. math::
        \mathrm{lr}(c) = \mathrm{swa\_lr}\,a(t) + \mathrm{lr}\,(1 - a(t)), \qquad
        t = \min(1, e / \max(1, A)), \quad e = \lfloor c / k \rfloor

    with :math:`A` = ``anneal_epochs``, :math:`a(t) = (1 - \cos \pi t)/2` (``'cos'``) or
    :math:`t` (``'linear'``); ``anneal_epochs=0`` gives ``swa_lr`` from the first epoch, as
    in PyTorch. ``lr`` is the optimizer's rate when PyTorch builds the scheduler. PyTorch
    computes this by a recursion that recovers ``lr`` from the current rate; its values equal
    the closed form.

    Args:
      lr: the rate to anneal from, non-negative.
      swa_lr: the rate to anneal to, non-negative.
      anneal_epochs: non-negative integer.
      anneal_strategy: ``'cos'`` or ``'linear'``.
      steps_per_epoch: keyword-only positive integer, updates per ``scheduler.step()``.

    Example:
      >>> from optgrad.torch import swa_utils
      >>> s = swa_utils.SWALR(1.0, swa_lr=0.5, anneal_epochs=2, anneal_strategy="linear")
      >>> [float(s(c)) for c in range(4)]
      [1.0, 0.75, 0.5, 0.5]
    """

    _module: ClassVar[str] = "optgrad.torch.swa_utils"

    lr: Any
    swa_lr: Any
    anneal_epochs: int = 10
    anneal_strategy: str = "cos"

    def _check_arguments(self) -> None:
        super()._check_arguments()
        check_lr(self._call, self.lr)
        check_lr(self._call, self.swa_lr, "swa_lr")
        _util.non_negative_int(self._call, "anneal_epochs", self.anneal_epochs)
        choice(self._call, "anneal_strategy", self.anneal_strategy, ("cos", "linear"))

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        whole = max(1, self.anneal_epochs)
        if self.anneal_epochs == 0:
            done = jnp.full_like(epoch, whole)
        else:
            done = jnp.minimum(epoch, whole)
        if self.anneal_strategy == "cos":
            keep, move = sin2_pair(done, whole)
        else:
            move = _util.fraction(done, whole)
            keep = _util.f32(whole - done) / np.float32(whole)
        return _util.blend(self.lr, self.swa_lr, keep, move)
