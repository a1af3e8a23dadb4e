"""Lookahead: a fast optimizer explores, slow weights follow it every ``sync_period`` steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation, Params
from ._hyperparams import with_hyperparams
from ._numerics import as_scalar, zero_count
from ._optimizers._common import check_hyperparams
from ._update import check_same_structure


class LookaheadParams(NamedTuple):
    """The parameters :func:`lookahead` works on: ``fast`` (take gradients here) and ``slow``
    (evaluate these: :func:`optgrad.eval_params` returns them).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> p = og.LookaheadParams.init_synced({"w": jnp.ones(2)})
        >>> p.fast is p.slow
        True
    """

    fast: Params
    slow: Params

    @classmethod
    def init_synced(cls, params: Params) -> LookaheadParams:
        """Fast and slow parameters both equal to ``params`` (the start of training)."""
        return cls(fast=params, slow=params)


class LookaheadState(NamedTuple):
    """``fast_state`` (the fast optimizer's) and ``steps_since_sync`` (int32, in
    ``[0, sync_period)``). Defines ``eval_params``: the slow weights."""

    fast_state: Any
    steps_since_sync: jax.Array

    def eval_params(self, params: Any) -> Any:
        """The slow weights of ``params`` (a :class:`LookaheadParams`)."""
        return _require_lookahead_params("optgrad.eval_params", params).slow


def _require_lookahead_params(call: str, params: Any) -> LookaheadParams:
    if not isinstance(params, LookaheadParams):
        got = "None" if params is None else type(params).__name__
        raise ValueError(
            f"{call}: lookahead needs `params` to be an optgrad.LookaheadParams(fast, slow), "
            f"got {got}. Start from `params = og.LookaheadParams.init_synced(params)`, take "
            "gradients at `params.fast`, and pass `params` to `update`."
        )
    return params


def lookahead(
    fast_optimizer: GradientTransformation,
    sync_period: int,
    slow_step_size: float,
    reset_state: bool = False,
) -> GradientTransformation:
    r"""Lookahead (Zhang et al., 2019): ``sync_period`` fast steps forward, one step back.

    The fast weights :math:`\theta` take steps :math:`\theta \leftarrow \theta + u` from
    ``fast_optimizer``; after every :math:`k` = ``sync_period`` fast steps the slow weights
    :math:`\phi` move toward them and the fast weights restart from there:

    .. math::
        \phi \leftarrow \phi + \alpha\,(\theta_k - \phi), \qquad \theta \leftarrow \phi

    with :math:`\alpha` = ``slow_step_size``. The parameters are a :class:`LookaheadParams`
    ``(fast, slow)``; gradients are taken at ``params.fast`` and the updates returned are a
    ``LookaheadParams`` too, to be applied unchanged with :func:`optgrad.apply_updates`
    (put ``lookahead`` outermost: a transformation after it would desynchronise the pair).
    Evaluate the slow weights: ``og.eval_params(state, params)`` returns ``params.slow``.

    Same updates as ``optax.lookahead`` (Optax 0.2.8); ``slow_step_size`` lives in the state
    (``og.tree.get(state, "slow_step_size")``, settable without recompiling).

    Args:
        fast_optimizer: the inner optimizer; it sees ``params.fast``.
        sync_period: :math:`k`, a positive integer.
        slow_step_size: :math:`\alpha` in ``[0, 1]`` (a number or a schedule of the step).
        reset_state: re-initialise the fast optimizer's state at every synchronisation
            (all of it, as Optax does: its step counts restart, so do its schedules, and
            hyperparameters changed with ``og.tree.set`` return to their initial values).

    Returns:
        The transformation; its state is a ``HyperparamsState`` around a
        :class:`LookaheadState`.

    References:
        Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step back"
        (NeurIPS 2019), Algorithm 1.

    Example:
        >>> import jax, jax.numpy as jnp, optgrad as og
        >>> tx = og.lookahead(og.sgd(0.1), sync_period=2, slow_step_size=0.5)
        >>> params = og.LookaheadParams.init_synced({"w": jnp.ones(2)})
        >>> state = tx.init(params)
        >>> for _ in range(2):
        ...     grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params.fast)
        ...     updates, state = tx.update(grads, state, params)
        ...     params = og.apply_updates(params, updates)
        >>> [round(x, 4) for x in og.eval_params(state, params)["w"].tolist()]
        [0.82, 0.82]
    """
    call = "optgrad.lookahead"
    _check.positive_int(call, "sync_period", sync_period)
    check_hyperparams(call, slow_step_size=("closed_unit", slow_step_size))
    if not (
        callable(getattr(fast_optimizer, "init", None))
        and callable(getattr(fast_optimizer, "update", None))
    ):
        raise TypeError(
            f"{call}(fast_optimizer=...) must be a gradient transformation, got "
            f"{type(fast_optimizer).__name__}"
        )

    def build(slow_step_size):
        def init_fn(params):
            fast = params.fast if isinstance(params, LookaheadParams) else params
            return LookaheadState(fast_optimizer.init(fast), zero_count())

        def update_fn(updates, state, params=None, **extra_args):
            params = _require_lookahead_params(f"{call}.update", params)
            check_same_structure(f"{call}.update", params.fast, updates, "updates")
            updates, fast_state = fast_optimizer.update(
                updates, state.fast_state, params.fast, **extra_args
            )
            sync = state.steps_since_sync == sync_period - 1
            alpha = as_scalar(slow_step_size)
            # Where the fast weights would land, relative to the slow ones.
            gap = jax.tree.map(lambda f, u, s: f + u - s, params.fast, updates, params.slow)
            slow_updates = jax.tree.map(
                lambda d, s: jnp.where(sync, alpha * d, 0).astype(s.dtype), gap, params.slow
            )
            fast_updates = jax.tree.map(
                lambda u, d: jnp.where(sync, u - (1 - alpha) * d, u).astype(u.dtype),
                updates,
                gap,
            )
            if reset_state:
                fresh = fast_optimizer.init(params.fast)
                fast_state = jax.tree.map(
                    lambda new, old: jnp.where(sync, new, old), fresh, fast_state
                )
            steps = jnp.where(sync, 0, state.steps_since_sync + 1).astype(jnp.int32)
            return LookaheadParams(fast_updates, slow_updates), LookaheadState(fast_state, steps)

        return GradientTransformation(init_fn, update_fn)

    return with_hyperparams(build, slow_step_size=slow_step_size)
