"""``ReduceLROnPlateau``: divide the learning rate when a metric stops improving."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _check
from .. import tree as _tree
from .._base import GradientTransformation
from .._numerics import zero_count
from ..schedules import _util

_CALL = "optgrad.torch.lr_scheduler.ReduceLROnPlateau"


class ReduceLROnPlateauState(NamedTuple):
    """PyTorch's ``ReduceLROnPlateau`` attributes, and the wrapped optimizer's state.

    ``best`` (float32), ``num_bad_epochs`` and ``cooldown_counter`` (int32) are PyTorch's;
    ``epoch_sum`` and ``epoch_steps`` accumulate the values of the current epoch when
    ``steps_per_epoch > 1``. The learning rate is the optimizer's own ``lr`` entry, in
    ``inner_state``: ``optgrad.tree.get(state, "lr")``.
    """

    best: jax.Array
    num_bad_epochs: jax.Array
    cooldown_counter: jax.Array
    epoch_sum: jax.Array
    epoch_steps: jax.Array
    inner_state: Any


def ReduceLROnPlateau(
    optimizer: GradientTransformation,
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float = 0,
    eps: float = 1e-8,
    *,
    steps_per_epoch: int = 1,
) -> GradientTransformation:
    r"""``torch.optim.lr_scheduler.ReduceLROnPlateau``, wrapped around the optimizer it drives.

    As in PyTorch, it takes the optimizer (an ``optgrad.torch`` optimizer, or any
    transformation whose state holds a constant learning rate named ``lr``) and changes that
    optimizer's learning rate, which lives in the optimizer's state as PyTorch's lives in
    ``param_groups``. The metric is the ``value=`` argument of ``update``::

        tx = og.torch.lr_scheduler.ReduceLROnPlateau(og.torch.SGD(lr=0.1, momentum=0.9),
                                                     patience=5)
        updates, state = tx.update(grads, state, params, value=loss)
        og.tree.get(state, "lr")  # the rate the next update uses

    Why a wrapper and not a transformation chained after an optimizer built with ``lr=1.0``:
    the optimizer applies the rate itself, exactly as PyTorch's does (``Adagrad``'s
    ``lr_decay`` or AdamW's decoupled decay are not linear in the rate, and Adam divides it by
    its bias correction before multiplying), and the state holds a single ``lr``, the one the
    optimizer uses, readable and settable by name.

    Each update first runs the optimizer with the current rate, then does what PyTorch's
    ``scheduler.step(metric)`` does after ``optimizer.step()``: with ``a`` the metric,

    * better (``'min'``/``'rel'``: ``a < best * (1 - threshold)``; ``'min'``/``'abs'``:
      ``a < best - threshold``; ``'max'``: ``a > best * (1 + threshold)`` or
      ``a > best + threshold``): ``best = a``, ``num_bad_epochs = 0``; else
      ``num_bad_epochs += 1``;
    * in cooldown: ``cooldown_counter -= 1`` and ``num_bad_epochs = 0``;
    * if ``num_bad_epochs > patience``: ``new = max(lr * factor, min_lr)``, taken if
      ``lr - new > eps``; then ``cooldown_counter = cooldown``, ``num_bad_epochs = 0``.

    So ``optgrad.tree.get(state, "lr")`` after an update is PyTorch's
    ``param_groups[0]["lr"]`` after ``scheduler.step(metric)``: the rate of the *next*
    update. With ``steps_per_epoch = k > 1`` the rule runs once every ``k`` updates on the
    **mean** of the ``k`` values given in that epoch (the usual metric passed to PyTorch's
    ``step`` once per epoch is an epoch average; a last value would be one noisy batch).
    Comparisons run in float32 (PyTorch's in double): a metric within float32 rounding of
    the threshold may be judged differently.

    The optimizer's ``lr`` must be a constant: a scheduled rate is recomputed from the step
    count at every update and would override this one. ``min_lr`` is one number (PyTorch
    also takes one per parameter group).

    Args:
      optimizer: the transformation whose ``lr`` is reduced.
      mode: ``'min'`` (the metric should decrease) or ``'max'``.
      factor: in ``[0, 1)``, the rate's multiplier on a plateau.
      patience: non-negative integer, epochs without improvement tolerated.
      threshold: non-negative, the improvement that counts.
      threshold_mode: ``'rel'`` or ``'abs'``.
      cooldown: non-negative integer, epochs to wait after a reduction.
      min_lr: non-negative lower bound of the rate.
      eps: non-negative; smaller reductions are skipped.
      steps_per_epoch: keyword-only positive integer, updates per plateau step.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
      >>> import jax.numpy as jnp, optgrad as og
      >>> from optgrad.torch import lr_scheduler
      >>> tx = lr_scheduler.ReduceLROnPlateau(og.torch.SGD(lr=1.0), factor=0.5, patience=1)
      >>> params = {"w": jnp.zeros(2)}
      >>> state = tx.init(params)
      >>> lrs = []
      >>> for loss in (3.0, 2.0, 2.0, 2.0, 2.0):
      ...     _, state = tx.update({"w": jnp.ones(2)}, state, params, value=loss)
      ...     lrs.append(float(og.tree.get(state, "lr")))
      >>> lrs
      [1.0, 1.0, 1.0, 0.5, 0.5]
    """
    if not isinstance(optimizer, GradientTransformation):
        raise TypeError(
            f"{_CALL}(optimizer=...) must be an optimizer (a GradientTransformation such as "
            f"optgrad.torch.SGD(lr=0.1)), got {type(optimizer).__name__}: {optimizer!r}"
        )
    _check.one_of(_CALL, "mode", mode, ("min", "max"))
    _check.number(_CALL, "factor", factor, low=0.0, high=1.0, high_open=True)
    _util.non_negative_int(_CALL, "patience", patience)
    _check.non_negative(_CALL, "threshold", _util.concrete_number(_CALL, "threshold", threshold))
    _check.one_of(_CALL, "threshold_mode", threshold_mode, ("rel", "abs"))
    _util.non_negative_int(_CALL, "cooldown", cooldown)
    _check.non_negative(_CALL, "min_lr", _util.concrete_number(_CALL, "min_lr", min_lr))
    _check.non_negative(_CALL, "eps", _util.concrete_number(_CALL, "eps", eps))
    _util.positive_int(_CALL, "steps_per_epoch", steps_per_epoch)
    sign = 1.0 if mode == "min" else -1.0

    def is_better(a: jax.Array, best: jax.Array) -> jax.Array:
        if threshold_mode == "rel":
            bound = best * np.float32(1.0 - sign * threshold)
        else:
            bound = best - np.float32(sign * threshold)
        return a < bound if mode == "min" else a > bound

    def init_fn(params):
        inner_state = optimizer.init(params)
        try:
            _tree.get(inner_state, "lr")
        except KeyError as error:
            raise ValueError(
                f"{_CALL}(optimizer=...) must hold its learning rate in its state under the "
                "name 'lr', as the optgrad.torch optimizers do, e.g. "
                f"`{_CALL}(optgrad.torch.SGD(lr=0.1))`. ({error.args[0]})"
            ) from None
        worst = np.float32(np.inf * sign)
        zero = zero_count()
        return ReduceLROnPlateauState(
            jnp.asarray(worst), zero, zero, jnp.zeros([], jnp.float32), zero, inner_state
        )

    def update_fn(updates, state, params=None, value=None, **extra_args):
        if value is None:
            raise ValueError(
                f"{_CALL}: update(...) needs the metric as value=, e.g. "
                "`tx.update(grads, state, params, value=loss)`"
            )
        updates, inner_state = optimizer.update(
            updates, state.inner_state, params, value=value, **extra_args
        )
        value = jnp.asarray(value, jnp.float32).reshape(())
        total = state.epoch_sum + value
        steps = state.epoch_steps + 1
        metric = total / np.float32(steps_per_epoch)
        lr = _util.f32(_tree.get(inner_state, "lr"))

        better = is_better(metric, state.best)
        best = jnp.where(better, metric, state.best)
        bad = jnp.where(better, 0, state.num_bad_epochs + 1)
        cooling = state.cooldown_counter > 0
        cool = jnp.where(cooling, state.cooldown_counter - 1, state.cooldown_counter)
        bad = jnp.where(cooling, 0, bad)
        reduce = bad > patience
        lowered = jnp.maximum(lr * np.float32(factor), np.float32(min_lr))
        new_lr = jnp.where(reduce & (lr - lowered > np.float32(eps)), lowered, lr)
        cool = jnp.where(reduce, cooldown, cool).astype(jnp.int32)
        bad = jnp.where(reduce, 0, bad).astype(jnp.int32)

        done = steps >= steps_per_epoch
        keep = lambda new, old: jnp.where(done, new, old)  # noqa: E731
        state = ReduceLROnPlateauState(
            keep(best, state.best),
            keep(bad, state.num_bad_epochs),
            keep(cool, state.cooldown_counter),
            keep(jnp.zeros_like(total), total),
            keep(jnp.zeros_like(steps), steps),
            _tree.set(inner_state, lr=keep(new_lr, lr)),
        )
        return updates, state

    return GradientTransformation(init_fn, update_fn)
