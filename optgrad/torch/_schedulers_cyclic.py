"""``CyclicLR`` and ``OneCycleLR``: per-batch schedulers that also cycle the momentum."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optgrad import _check
from optgrad.schedules import _util

from ._schedulers_base import _EpochSchedule, _Schedule, check_lr, choice


@dataclasses.dataclass(frozen=True, repr=False)
class CycledMomentum:
    """The momentum (or Adam's ``beta1``) that a cyclic scheduler writes into the optimizer:
    a schedule ``count -> float32``, e.g. ``og.torch.SGD(lr=s, momentum=s.momentum)``.

    Args:
        scheduler: the scheduler whose momentum cycle is read.

    Example:
        >>> from optgrad.torch import lr_scheduler
        >>> s = lr_scheduler.OneCycleLR(1.0, total_steps=10, anneal_strategy="linear")
        >>> round(float(lr_scheduler.CycledMomentum(s)(2)), 4)
        0.85
    """

    scheduler: Any

    def __call__(self, count: Any) -> jax.Array:
        return self.scheduler._momentum(count)

    def __repr__(self) -> str:
        return f"{self.scheduler!r}.momentum"


class _CyclesMomentum:
    """``momentum`` and ``betas(beta2)`` for schedulers with ``cycle_momentum``."""

    cycle_momentum: bool
    _call: str

    @property
    def momentum(self) -> CycledMomentum:
        """The momentum schedule PyTorch writes into ``param_groups[i]['momentum']``."""
        if not self.cycle_momentum:
            raise ValueError(
                f"{self._call}(cycle_momentum=False) leaves the optimizer's momentum alone: "
                "pass the optimizer a constant momentum instead of `.momentum`"
            )
        return CycledMomentum(self)

    def betas(self, beta2: Any = 0.999) -> tuple[CycledMomentum, Any]:
        """``(momentum schedule, beta2)``: Adam's ``betas`` as PyTorch cycles ``betas[0]``.

        Example: ``og.torch.Adam(lr=s, betas=s.betas(0.999))``.
        """
        return (self.momentum, beta2)


def _momentum_args(call: str, base: Any, top: Any) -> None:
    for name, value in (("base_momentum", base), ("max_momentum", top)):
        _util.concrete_number(call, name, value)
        _check.non_negative(call, name, value)


@dataclasses.dataclass(frozen=True, repr=False)
class CyclicLR(_CyclesMomentum, _EpochSchedule):
    r"""``torch.optim.lr_scheduler.CyclicLR``: a triangle wave between ``base_lr`` and ``max_lr``.

    With :math:`u` = ``step_size_up``, :math:`d` = ``step_size_down`` (default :math:`u`),
    :math:`e` the iteration (``count // steps_per_epoch``; PyTorch steps this scheduler after
    every batch, so the default 1 is the usual one), :math:`r = e \bmod (u + d)` and
    :math:`n = \lfloor e / (u + d) \rfloor + 1` the cycle:

    .. math::
        h = \begin{cases} r / u & r \le u \\ (u + d - r) / d & r > u \end{cases}, \qquad
        \mathrm{lr} = b + (M - b)\, h\, s, \qquad
        \mathrm{momentum} = M_m - (M_m - b_m)\, h\, s

    with :math:`s = 1` (``'triangular'``), :math:`2^{1-n}` (``'triangular2'``),
    :math:`\gamma^{e}` (``'exp_range'``), or ``scale_fn(n)`` / ``scale_fn(e)`` (int32 arrays,
    by ``scale_mode``; ``scale_fn`` must be written with ``jax.numpy``).

    With ``cycle_momentum=True`` (PyTorch's default) PyTorch also writes the momentum above
    into the optimizer (``momentum``, or ``betas[0]`` for Adam); reproduce that with
    ``og.torch.SGD(lr=s, momentum=s.momentum)`` or ``og.torch.Adam(lr=s, betas=s.betas())``.

    Stricter than PyTorch: ``step_size_up``/``step_size_down`` must be positive integers,
    ``scale_mode`` one of ``'cycle'``, ``'iterations'``, ``gamma`` positive; the rates are
    scalars (PyTorch also takes one per parameter group).

    Args:
        base_lr: the lower learning-rate bound of the cycle.
        max_lr: the upper (peak) learning-rate bound.
        step_size_up: the number of steps of the increasing half-cycle.
        step_size_down: the number of steps of the decreasing half-cycle (``None``:
            ``step_size_up``).
        mode: the policy (see above).
        gamma: the multiplicative decay constant.
        scale_fn: a custom amplitude scaling function (``None``: from ``mode``).
        scale_mode: whether ``scale_fn`` reads the cycle (``"cycle"``) or the iteration
            (``"iterations"``).
        cycle_momentum: cycle the momentum inversely to the learning rate.
        base_momentum: the lower momentum bound.
        max_momentum: the upper momentum bound.
        steps_per_epoch: the number of optimizer updates per epoch (default 1).

    Example:
      >>> from optgrad.torch import lr_scheduler
      >>> s = lr_scheduler.CyclicLR(0.1, 0.5, step_size_up=2)
      >>> [round(float(s(c)), 6) for c in range(5)], round(float(s.momentum(1)), 6)
      ([0.1, 0.3, 0.5, 0.3, 0.1], 0.85)
    """

    base_lr: Any
    max_lr: Any
    step_size_up: int = 2000
    step_size_down: int | None = None
    mode: str = "triangular"
    gamma: float = 1.0
    scale_fn: Callable[[Any], Any] | None = None
    scale_mode: str = "cycle"
    cycle_momentum: bool = True
    base_momentum: float = 0.8
    max_momentum: float = 0.9

    def _check_arguments(self) -> None:
        super()._check_arguments()
        call = self._call
        check_lr(call, self.base_lr, "base_lr")
        check_lr(call, self.max_lr, "max_lr")
        _util.positive_int(call, "step_size_up", self.step_size_up)
        if self.step_size_down is not None:
            _util.positive_int(call, "step_size_down", self.step_size_down)
        if self.scale_fn is None:
            choice(call, "mode", self.mode, ("triangular", "triangular2", "exp_range"))
        elif not callable(self.scale_fn):
            raise TypeError(f"{call}(scale_fn=...) must be a function, got {self.scale_fn!r}")
        choice(call, "scale_mode", self.scale_mode, ("cycle", "iterations"))
        _util.concrete_number(call, "gamma", self.gamma)
        _check.positive(call, "gamma", self.gamma)
        _util.flag(call, "cycle_momentum", self.cycle_momentum)
        _momentum_args(call, self.base_momentum, self.max_momentum)

    def _height(self, epoch: jax.Array) -> jax.Array:
        """``h * s``: the fraction of the way from the base to the peak."""
        up = self.step_size_up
        down = up if self.step_size_down is None else self.step_size_down
        total = up + down
        r = epoch % total
        cycle = epoch // total + 1
        h = jnp.where(
            r <= up, _util.f32(r) / np.float32(up), _util.f32(total - r) / np.float32(down)
        )
        if self.scale_fn is not None:
            argument = cycle if self.scale_mode == "cycle" else epoch
            return h * _util.f32(self.scale_fn(argument))
        if self.mode == "triangular":
            return h
        if self.mode == "triangular2":
            return h * _util.power(cycle - 1, -1.0)
        return h * _util.power(epoch, math.log2(self.gamma))

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        base = _util.f32(self.base_lr)
        return base + (_util.f32(self.max_lr) - base) * self._height(epoch)

    def _momentum(self, count: Any) -> jax.Array:
        epoch = (jnp.maximum(jnp.asarray(count), 0) // self.steps_per_epoch).astype(jnp.int32)
        top = np.float32(self.max_momentum)
        return _util.f32(top - (top - np.float32(self.base_momentum)) * self._height(epoch))


@dataclasses.dataclass(frozen=True, repr=False)
class OneCycleLR(_CyclesMomentum, _Schedule):
    r"""``torch.optim.lr_scheduler.OneCycleLR``: warm up to ``max_lr``, then anneal far below.

    PyTorch steps it after every batch, so it is a function of the update count itself;
    ``steps_per_epoch`` has PyTorch's meaning: with ``epochs`` it gives
    ``total_steps = epochs * steps_per_epoch``. The rate starts at ``max_lr / div_factor``,
    reaches ``max_lr`` at step ``pct_start * total_steps - 1`` and ends at
    ``max_lr / div_factor / final_div_factor`` at step ``total_steps - 1``; with
    ``three_phase=True`` it first comes back to ``max_lr / div_factor`` at step
    ``2 * pct_start * total_steps - 2``. Within a phase from step :math:`a` to :math:`b`
    (floats, as in PyTorch) and :math:`p = (c - a) / (b - a)`, the value goes from :math:`x`
    to :math:`y` as :math:`y + (x - y)(1 + \cos \pi p)/2` (``'cos'``) or
    :math:`x + (y - x) p` (``'linear'``). The momentum goes ``max_momentum -> base_momentum
    -> max_momentum`` the same way (and stays at ``max_momentum`` in the third phase).

    PyTorch raises once it is stepped past ``total_steps`` (count ``total_steps`` is the
    last it computes, by extending the last phase); here counts past ``total_steps`` keep the
    value at ``total_steps``. With ``cycle_momentum=True`` (the default) reproduce PyTorch's
    momentum with ``og.torch.SGD(lr=s, momentum=s.momentum)`` or
    ``og.torch.Adam(lr=s, betas=s.betas())`` (PyTorch then sets it even on an SGD built with
    ``momentum=0``).

    Stricter than PyTorch: a phase of length 0 that PyTorch would divide by (e.g.
    ``pct_start * total_steps == 1``, or ``pct_start=1.0`` without ``three_phase``) is refused
    when built.

    Args:
        max_lr: the upper (peak) learning-rate bound.
        total_steps: the length of the cycle in steps (or give ``epochs`` and ``steps_per_epoch``).
        epochs: the number of epochs (with ``steps_per_epoch``).
        steps_per_epoch: the number of optimizer updates per epoch (default 1).
        pct_start: the fraction of the cycle spent increasing the learning rate.
        anneal_strategy: ``"cos"`` or ``"linear"`` annealing.
        cycle_momentum: cycle the momentum inversely to the learning rate.
        base_momentum: the lower momentum bound.
        max_momentum: the upper momentum bound.
        div_factor: the initial learning rate is ``max_lr / div_factor``.
        final_div_factor: the final learning rate is the initial one over this.
        three_phase: use a third phase that anneals below the initial rate.

    Example:
      >>> from optgrad.torch import lr_scheduler
      >>> s = lr_scheduler.OneCycleLR(1.0, total_steps=10, anneal_strategy="linear")
      >>> [round(float(s(c)), 4) for c in (0, 1, 2, 9)], round(float(s.momentum(2)), 4)
      ([0.04, 0.52, 1.0, 0.0], 0.85)
    """

    max_lr: Any
    total_steps: int | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    pct_start: float = 0.3
    anneal_strategy: str = "cos"
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False

    def _check_arguments(self) -> None:
        call = self._call
        check_lr(call, self.max_lr, "max_lr")
        if self.total_steps is not None:
            _util.positive_int(call, "total_steps", self.total_steps)
        elif self.epochs is not None and self.steps_per_epoch is not None:
            _util.positive_int(call, "epochs", self.epochs)
            _util.positive_int(call, "steps_per_epoch", self.steps_per_epoch)
        else:
            raise ValueError(
                f"{call}(total_steps=...) is required, or both epochs=... and "
                f"steps_per_epoch=...; got total_steps=None, epochs={self.epochs!r}, "
                f"steps_per_epoch={self.steps_per_epoch!r}. For example "
                f"`{call}(0.1, total_steps=len(loader) * epochs)`."
            )
        pct = _util.concrete_number(call, "pct_start", self.pct_start)
        _check.number(call, "pct_start", pct, low=0.0, high=1.0)
        choice(call, "anneal_strategy", self.anneal_strategy, ("cos", "linear"))
        _util.flag(call, "cycle_momentum", self.cycle_momentum)
        _util.flag(call, "three_phase", self.three_phase)
        _momentum_args(call, self.base_momentum, self.max_momentum)
        _check.positive(
            call, "div_factor", _util.concrete_number(call, "div_factor", self.div_factor)
        )
        _check.positive(
            call,
            "final_div_factor",
            _util.concrete_number(call, "final_div_factor", self.final_div_factor),
        )
        ends = [0.0] + [end for end, *_ in self._phases()]
        first_empty = ends[1] == 0.0
        last_empty = ends[-1] == ends[-2]
        if first_empty or last_empty:
            raise ValueError(
                f"{call}(pct_start=...) makes a phase of the schedule empty (PyTorch divides "
                f"by its length, 0, and fails): phases end at steps {ends[1:]} with "
                f"total_steps={self._total}, pct_start={self.pct_start!r}, "
                f"three_phase={self.three_phase!r}"
            )

    @property
    def _total(self) -> int:
        if self.total_steps is not None:
            return self.total_steps
        return self.epochs * self.steps_per_epoch  # type: ignore[operator]

    def _phases(self) -> list[tuple[float, str, str, str, str]]:
        """PyTorch's phases: ``(end_step, start_lr, end_lr, start_momentum, end_momentum)``."""
        total, pct = self._total, float(self.pct_start)
        if self.three_phase:
            return [
                (float(pct * total) - 1, "initial", "max", "max", "base"),
                (float(2 * pct * total) - 2, "max", "initial", "base", "max"),
                (float(total - 1), "initial", "min", "max", "max"),
            ]
        return [
            (float(pct * total) - 1, "initial", "max", "max", "base"),
            (float(total - 1), "max", "min", "base", "max"),
        ]

    def _progress(self, count: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The phase of ``count`` and ``(p, 1 - p)`` within it, both accurate."""
        step = jnp.minimum(jnp.maximum(jnp.asarray(count), 0), self._total).astype(jnp.int32)
        phases = self._phases()
        ends = [end for end, *_ in phases]
        starts = [0.0, *ends[:-1]]
        # First phase whose end is >= step, else the last one (PyTorch's loop).
        inside = [step <= end for end in ends[:-1]] + [jnp.ones_like(step, bool)]
        index = jnp.argmax(jnp.stack(inside, axis=-1), axis=-1)

        def split(values: list[float]) -> tuple[jax.Array, jax.Array]:
            whole = np.floor(values)
            return (
                jnp.asarray(whole.astype(np.int32))[index],
                jnp.asarray((np.asarray(values) - whole).astype(np.float32))[index],
            )

        start_int, start_frac = split(starts)
        end_int, end_frac = split(ends)
        length = jnp.asarray(np.asarray(ends) - np.asarray(starts), jnp.float32)[index]
        done = (_util.f32(step - start_int) - start_frac) / length
        left = (_util.f32(end_int - step) + end_frac) / length
        return index, done, left

    def _values(self, count: Any, kind: str) -> jax.Array:
        index, done, left = self._progress(count)
        max_lr = float(self.max_lr) if _check.concrete_float(self.max_lr) is not None else None
        if kind == "lr":
            top = _util.f32(self.max_lr)
            initial = top / np.float32(self.div_factor)
            named = {
                "max": top,
                "initial": initial,
                "min": initial / np.float32(self.final_div_factor),
            }
            if max_lr is not None:  # float64 constants, as PyTorch computes them
                initial64 = max_lr / self.div_factor
                named["initial"] = _util.f32(initial64)
                named["min"] = _util.f32(initial64 / self.final_div_factor)
            columns = (1, 2)
        else:
            named = {
                "max": _util.f32(self.max_momentum),
                "base": _util.f32(self.base_momentum),
            }
            columns = (3, 4)
        phases = self._phases()
        first = jnp.stack([named[p[columns[0]]] for p in phases])[index]
        last = jnp.stack([named[p[columns[1]]] for p in phases])[index]
        if self.anneal_strategy == "linear":
            weight, complement = left, done
        else:
            weight, complement = _cos_weights(done, left)
        return first * weight + last * complement

    def __call__(self, count: Any) -> jax.Array:
        return _util.f32(self._values(count, "lr"))

    def _momentum(self, count: Any) -> jax.Array:
        return _util.f32(self._values(count, "momentum"))


def _cos_weights(done: jax.Array, left: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``((1 + cos(pi p)) / 2, (1 - cos(pi p)) / 2)`` from ``p`` and ``1 - p`` (each accurate,
    also past the phase's end, where PyTorch extends the cosine)."""
    half_pi = np.float32(math.pi / 2)
    near = jnp.sin(left * half_pi)
    far = jnp.sin(done * half_pi)
    return near * near, far * far
