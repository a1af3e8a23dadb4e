"""Parameter averaging: an exponential (EMA) or equal-weight (SWA) average of the weights, kept
in the optimizer state, exactly as ``torch.optim.swa_utils.AveragedModel`` keeps it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation
from ._eval_params import eval_params
from ._hyperparams import with_hyperparams
from ._numerics import as_scalar, canonical_dtype, safe_increment, zero_count, zeros_like
from ._optimizers._common import check_hyperparams


class AveragedParamsState(NamedTuple):
    """The state of :func:`ema_params` and :func:`swa_params`.

    ``inner_state`` (the wrapped optimizer's), ``count`` (optimizer steps taken, int32),
    ``n_averaged`` (weights averaged so far, int32; ``AveragedModel.n_averaged``) and
    ``average`` (mirrors the params; meaningful once ``n_averaged > 0``). Defines
    ``eval_params``: the average, or the params themselves before the first average.
    """

    inner_state: Any
    count: jax.Array
    n_averaged: jax.Array
    average: Any

    def eval_params(self, params: Any) -> Any:
        """The average (cast to the params' dtypes) once one is taken, else ``params``; then
        the wrapped optimizer's own rule applied to it (e.g. Lookahead's slow weights)."""
        started = self.n_averaged > 0
        chosen = jax.tree.map(
            lambda a, p: jnp.where(started, a.astype(jnp.result_type(p)), p),
            self.average,
            params,
        )
        return eval_params(self.inner_state, chosen)


Rule = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def _check_inner(call: str, inner: Any) -> None:
    if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
        raise TypeError(
            f"{call}(inner=...) must be a gradient transformation (an object with `init` and "
            f"`update`), got {type(inner).__name__}: {inner!r}"
        )


def _check_schedule(call: str, start_step: Any, every_k_steps: Any) -> None:
    if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
        raise ValueError(
            f"{call}(start_step=...) must be a non-negative integer, got start_step={start_step!r}"
        )
    _check.positive_int(call, "every_k_steps", every_k_steps)


def _averaged(
    call: str,
    inner: GradientTransformation,
    rule: Rule,
    start_step: int,
    every_k_steps: int,
    accumulator_dtype: Any,
) -> GradientTransformation:
    """``inner``, followed by ``average <- rule(average, params + updates, n_averaged)`` after
    the steps ``start_step + every_k_steps * j`` (``j >= 1``); the first average copies."""

    def init_fn(params):
        return AveragedParamsState(
            inner.init(params), zero_count(), zero_count(), zeros_like(params, accumulator_dtype)
        )

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(
                f"{call}.update needs `params`: it averages the weights after the step "
                "(params + updates). Call `update(grads, state, params)`."
            )
        if not isinstance(state, AveragedParamsState):
            raise ValueError(
                f"{call}.update: expected an AveragedParamsState, got {type(state).__name__}. "
                "Was `init` called with this optimizer?"
            )
        updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
        count = safe_increment(state.count)
        due = (count > start_step) & ((count - start_step) % every_k_steps == 0)
        first = state.n_averaged == 0

        def average(a, p, u):
            # The weights after the step, rounded as `apply_updates` rounds them.
            new = jnp.asarray(p + u).astype(jnp.result_type(p))
            compute = jnp.promote_types(a.dtype, jnp.float32)
            a_, new_ = a.astype(compute), new.astype(compute)
            moved = jnp.where(first, new_, rule(a_, new_, state.n_averaged))
            return jnp.where(due, moved, a_).astype(a.dtype)

        avg = jax.tree.map(average, state.average, params, updates)
        n_averaged = jnp.where(due, safe_increment(state.n_averaged), state.n_averaged)
        return updates, AveragedParamsState(inner_state, count, n_averaged, avg)

    return GradientTransformation(init_fn, update_fn)


def ema_params(
    inner: GradientTransformation,
    decay: float = 0.999,
    *,
    start_step: int = 0,
    every_k_steps: int = 1,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
    r"""``inner``, keeping an exponential moving average of the weights it produces.

    After an averaging step :math:`t` (with :math:`\theta_t` the weights after the update):

    .. math::
        \bar\theta \leftarrow \theta_t \ \text{(the first time)}, \qquad
        \bar\theta \leftarrow \delta\,\bar\theta + (1-\delta)\,\theta_t \ \text{(after)}

    with :math:`\delta` = ``decay``. The same numbers as
    ``AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))`` updated right after
    each ``optimizer.step()`` (``torch.optim.swa_utils``, 2.13): started from the first
    averaged weights, so no zero start and no debiasing (unlike ``optax.ema``, which averages
    updates). Averaging happens after the steps ``start_step + every_k_steps * j``,
    :math:`j \ge 1`; the updates pass through unchanged. ``og.eval_params(state, params)``
    returns the average (``params`` before the first one). ``decay`` lives in the state
    (``og.tree.get(state, "decay")``) and may be a schedule of the step count.

    Args:
        inner: the optimizer whose weights are averaged.
        decay: :math:`\delta` in ``[0, 1]``.
        start_step: steps to take before averaging starts (a static non-negative integer).
        every_k_steps: average every this many steps (a static positive integer).
        accumulator_dtype: the average's dtype (default: the params'); float32 keeps a bf16
            model's average from stalling.

    Returns:
        The transformation; its state is a ``HyperparamsState`` around an
        :class:`AveragedParamsState`.

    References:
        Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging" (SIAM J.
        Control Optim., 1992); ``torch.optim.swa_utils.get_ema_multi_avg_fn``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.ema_params(og.sgd(1.0), decay=0.9)
        >>> params = {"w": jnp.zeros(1)}
        >>> state = tx.init(params)
        >>> for _ in range(2):
        ...     updates, state = tx.update({"w": -jnp.ones(1)}, state, params)
        ...     params = og.apply_updates(params, updates)
        >>> round(og.eval_params(state, params)["w"].item(), 4)
        1.1
    """
    call = "optgrad.ema_params"
    _check_inner(call, inner)
    check_hyperparams(call, decay=("closed_unit", decay))
    _check_schedule(call, start_step, every_k_steps)
    accumulator_dtype = canonical_dtype(accumulator_dtype)

    def build(decay):
        weight = 1.0 - as_scalar(decay)

        def lerp(a, x, n):
            # torch.lerp(a, x, w) as `_foreach_lerp_` computes it (a, x: float32 or wider).
            del n
            return jnp.where(weight < 0.5, a + weight * (x - a), x - (x - a) * (1 - weight))

        return _averaged(call, inner, lerp, start_step, every_k_steps, accumulator_dtype)

    return with_hyperparams(build, decay=decay)


def swa_params(
    inner: GradientTransformation,
    *,
    start_step: int = 0,
    every_k_steps: int = 1,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
    r"""``inner``, keeping the equal-weight running mean of the weights it produces (SWA).

    After the :math:`n`-th averaging step (:math:`n = 0, 1, \dots`):

    .. math:: \bar\theta \leftarrow \bar\theta + \frac{\theta_t - \bar\theta}{n + 1}

    (a copy when :math:`n = 0`), so :math:`\bar\theta` is the mean of the averaged weights.
    The same numbers as ``torch.optim.swa_utils.AveragedModel(model)`` updated right after
    ``optimizer.step()``. The common recipe (Izmailov et al.) averages once per epoch after a
    burn-in: ``start_step=burn_in_epochs * steps_per_epoch,
    every_k_steps=steps_per_epoch``, which averages after the steps
    ``start_step + every_k_steps * j``, :math:`j \ge 1` (torch's ``if epoch > swa_start``
    with ``start_step = (swa_start + 1) * steps_per_epoch``). Pair it with a cyclic or
    constant learning rate (``og.torch.swa_utils.SWALR``). ``og.eval_params(state, params)``
    returns the mean (``params`` before the first average). Batch-norm statistics are not
    parameters: recompute them for the averaged weights (torch's ``update_bn``).

    Args:
        inner: the optimizer whose weights are averaged.
        start_step: steps to take before averaging starts (a static non-negative integer).
        every_k_steps: average every this many steps (a static positive integer).
        accumulator_dtype: the mean's dtype (default: the params').

    Returns:
        The transformation; its state is an :class:`AveragedParamsState`.

    References:
        Izmailov, Podoprikhin, Garipov, Vetrov & Wilson, "Averaging Weights Leads to Wider
        Optima and Better Generalization" (UAI 2018), Algorithm 1.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.swa_params(og.sgd(1.0), start_step=1)
        >>> params = {"w": jnp.zeros(1)}
        >>> state = tx.init(params)
        >>> for _ in range(3):
        ...     updates, state = tx.update({"w": -jnp.ones(1)}, state, params)
        ...     params = og.apply_updates(params, updates)
        >>> og.eval_params(state, params)["w"].tolist()
        [2.5]
    """
    call = "optgrad.swa_params"
    _check_inner(call, inner)
    _check_schedule(call, start_step, every_k_steps)

    def mean(a, x, n):
        return a + (x - a) / (n + 1).astype(a.dtype)

    return _averaged(
        call, inner, mean, start_step, every_k_steps, canonical_dtype(accumulator_dtype)
    )
