"""``SequentialLR`` and ``ChainedScheduler``: PyTorch's composite schedulers."""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from optgrad import _check
from optgrad.schedules import _util

from ._schedulers_base import _EpochSchedule, int_list
from ._schedulers_decay import MultiplicativeLR


def _children(call: str, schedulers: Any, rule: str, allowed: str) -> tuple[Any, ...]:
    if not isinstance(schedulers, Sequence) or isinstance(schedulers, str) or not schedulers:
        raise ValueError(
            f"{call}(schedulers=...) must be a non-empty list of schedulers, got "
            f"schedulers={schedulers!r}"
        )
    for i, child in enumerate(schedulers):
        if not getattr(type(child), rule, False):
            raise TypeError(f"{call}(schedulers=...) accepts {allowed}; got {child!r} at index {i}")
    return tuple(schedulers)


def _shared(call: str, children: tuple[Any, ...], given: int | None) -> int:
    """Checks that the children share one ``lr`` and ``steps_per_epoch``; returns the latter."""
    first = children[0]
    for i, child in enumerate(children[1:], 1):
        a, b = _check.concrete_float(first.lr), _check.concrete_float(child.lr)
        same = a == b if a is not None and b is not None else child.lr is first.lr
        if not same:
            raise ValueError(
                f"{call}(schedulers=...) must all be built with the same lr (PyTorch's children "
                f"share the optimizer's initial lr), got lr={first.lr!r} at index 0 and "
                f"lr={child.lr!r} at index {i}"
            )
    steps = {child.steps_per_epoch for child in children}
    if len(steps) > 1 or (given is not None and given not in steps):
        listed = [child.steps_per_epoch for child in children]
        raise ValueError(
            f"{call}(steps_per_epoch=...) must be the same for the composite and all its "
            f"schedulers (they step together), got steps_per_epoch={given!r} and "
            f"{listed} for the schedulers"
        )
    return steps.pop()


@dataclasses.dataclass(frozen=True, repr=False)
class SequentialLR(_EpochSchedule):
    r"""``torch.optim.lr_scheduler.SequentialLR``: one scheduler after another, at milestones.

    During epoch :math:`e`, child :math:`i = \#\{j : m_j \le e\}` runs on its local epoch
    :math:`e - m_{i-1}` (:math:`m_{-1} = 0`), restarting from ``lr``, as PyTorch's
    ``SequentialLR`` does: it switches with the child's closed form at local epoch 0 and
    then steps it. With a milestone 0 the first child never runs (PyTorch 2.13 picks the
    starting child with ``bisect_right(milestones, 0)``).

    One exception, as in PyTorch: a :class:`MultiplicativeLR` child has no closed form, so
    at its milestone :math:`m > 0` it *continues* from the rate of epoch :math:`m - 1`,
    multiplied by ``lr_lambda(0) * lr_lambda(1) * ... * lr_lambda(e - m)``.

    Children may be ``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``ConstantLR``,
    ``LinearLR``, ``PolynomialLR``, ``LambdaLR``, ``MultiplicativeLR``,
    ``CosineAnnealingLR`` and ``CosineAnnealingWarmRestarts``, all built with the same ``lr``
    and ``steps_per_epoch``. Not supported: ``CyclicLR`` and ``OneCycleLR`` (their
    construction rewrites the optimizer's ``initial_lr``, so PyTorch's result depends on
    the order in which the children were built), ``SWALR``, and nested composites.

    Args:
      schedulers: list of the children (optgrad schedules).
      milestones: ``len(schedulers) - 1`` non-decreasing non-negative integer epochs
        (PyTorch bisects them, which assumes them sorted).
      steps_per_epoch: keyword-only; the children's (the default ``None`` takes it from
        them; if given it must equal theirs).

    Example:
      >>> from optgrad.torch import lr_scheduler as S
      >>> warmup = S.LinearLR(1.0, start_factor=0.5, total_iters=2)
      >>> decay = S.ExponentialLR(1.0, gamma=0.5)
      >>> s = S.SequentialLR([warmup, decay], milestones=[2])
      >>> [float(s(c)) for c in range(5)]
      [0.5, 0.75, 1.0, 0.5, 0.25]
    """

    schedulers: Any
    milestones: Any
    steps_per_epoch: int | None = dataclasses.field(default=None, kw_only=True)  # type: ignore[assignment]

    def _check_arguments(self) -> None:
        call = self._call
        allowed = (
            "optgrad.torch.lr_scheduler schedulers other than composites, CyclicLR and OneCycleLR"
        )
        children = _children(call, self.schedulers, "_sequential_child", allowed)
        milestones = int_list(call, "milestones", self.milestones)
        if len(milestones) != len(children) - 1:
            raise ValueError(
                f"{call}(milestones=...) must have one entry fewer than schedulers "
                f"({len(children)} schedulers need {len(children) - 1} milestones), got "
                f"milestones={self.milestones!r}"
            )
        if list(milestones) != sorted(milestones):
            raise ValueError(
                f"{call}(milestones=...) must be non-decreasing, got milestones={self.milestones!r}"
            )
        steps = _shared(call, children, self.steps_per_epoch)
        object.__setattr__(self, "schedulers", children)
        object.__setattr__(self, "milestones", milestones)
        object.__setattr__(self, "steps_per_epoch", steps)
        super()._check_arguments()

    @property
    def lr(self) -> Any:
        return self.schedulers[0].lr

    def _child_value(self, i: int, epoch: Any) -> jax.Array:
        """Child ``i``'s rate at (global) ``epoch``, if it is the active one there."""
        child = self.schedulers[i]
        start = 0 if i == 0 else self.milestones[i - 1]
        local = jnp.maximum(jnp.asarray(epoch, jnp.int32) - start, 0)
        if isinstance(child, MultiplicativeLR) and start > 0:
            # The rate of epoch start - 1, from the child active then (an earlier one).
            before = bisect.bisect_right(self.milestones, start - 1)
            value = self._child_value(before, start - 1) * child._continued_factor(local)
        else:
            value = child._at_epoch(local)
        return _util.f32(value)

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        active = _util.stages_passed(epoch, self.milestones)
        result = self._child_value(0, epoch)
        for i in range(1, len(self.schedulers)):
            result = jnp.where(active == i, self._child_value(i, epoch), result)
        return result


@dataclasses.dataclass(frozen=True, repr=False)
class ChainedScheduler(_EpochSchedule):
    r"""``torch.optim.lr_scheduler.ChainedScheduler``: every child steps every epoch.

    PyTorch steps each child in turn on the optimizer's current rate. For the children whose
    step multiplies the current rate by a factor (``StepLR``, ``MultiStepLR``,
    ``ExponentialLR``, ``ConstantLR``, ``LinearLR``, ``PolynomialLR``, ``MultiplicativeLR``),
    the result is ``lr`` times the product of their factors, which is what this computes:

    .. math:: \mathrm{lr}(c) = \mathrm{lr} \prod_i f_i(e), \qquad e = \lfloor c / k \rfloor

    Only those children are supported. PyTorch's other schedulers do not compose this way
    (``CosineAnnealingLR``'s step is an affine recursion on the current rate, so chained its
    values depend on the other children's; ``LambdaLR``, ``CyclicLR``, ``OneCycleLR`` and
    ``CosineAnnealingWarmRestarts`` overwrite the rate), and are refused when built.

    Args:
      schedulers: list of the children, all built with the same ``lr`` and
        ``steps_per_epoch``.
      steps_per_epoch: keyword-only; the children's (``None`` takes it from them).

    Example:
      >>> from optgrad.torch import lr_scheduler as S
      >>> s = S.ChainedScheduler([S.ExponentialLR(1.0, 0.5), S.StepLR(1.0, 2, gamma=0.1)])
      >>> [round(float(s(c)), 6) for c in range(4)]
      [1.0, 0.5, 0.025, 0.0125]
    """

    schedulers: Any
    steps_per_epoch: int | None = dataclasses.field(default=None, kw_only=True)  # type: ignore[assignment]

    def _check_arguments(self) -> None:
        call = self._call
        allowed = (
            "StepLR, MultiStepLR, ExponentialLR, ConstantLR, LinearLR, PolynomialLR and "
            "MultiplicativeLR (whose PyTorch step multiplies the current rate)"
        )
        children = _children(call, self.schedulers, "_multiplicative", allowed)
        steps = _shared(call, children, self.steps_per_epoch)
        object.__setattr__(self, "schedulers", children)
        object.__setattr__(self, "steps_per_epoch", steps)
        super()._check_arguments()

    @property
    def lr(self) -> Any:
        return self.schedulers[0].lr

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        value = _util.f32(self.lr)
        for child in self.schedulers:
            value = value * child._factor_at_epoch(epoch)
        return value
