"""Weight decay: adding ``weight_decay * params`` to the updates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from . import _check
from ._base import GradientTransformation, ScalarOrSchedule
from ._masking import resolve_mask, where_mask
from ._numerics import as_scalar, safe_increment, zero_count


class AddDecayedWeightsState(NamedTuple):
    """``count`` updates so far; used only when ``weight_decay`` is a schedule."""

    count: jax.Array


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0, mask: Any = None
) -> GradientTransformation:
    r"""Adds :math:`\lambda\,\theta` to the updates, :math:`\lambda` = ``weight_decay``.

    Placed *before* an adaptive scaling (``scale_by_adam``), this is L2 regularisation folded
    into the gradient (torch's ``Adam(weight_decay=...)``); placed after it and before
    ``scale_by_learning_rate``, it is decoupled weight decay multiplied by the learning rate
    (AdamW; Loshchilov & Hutter, 2019, as implemented by PyTorch and Optax).

    Args:
        weight_decay: :math:`\lambda \ge 0`, a number or a schedule of the step count.
        mask: a tree of booleans mirroring the params (or a prefix of it), or a function of the
            params returning one; leaves where it is ``False`` are not decayed (biases, norms).

    Returns:
        A :class:`optgrad.GradientTransformation`; its state holds the current ``weight_decay``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.add_decayed_weights(0.5)
        >>> params = {"w": jnp.array([2.0, -4.0])}
        >>> tx.update({"w": jnp.zeros(2)}, tx.init(params), params)[0]["w"].tolist()
        [1.0, -2.0]
    """
    call = "optgrad.add_decayed_weights"
    _check.scalar_or_schedule(call, "weight_decay", weight_decay)
    _check.non_negative(call, "weight_decay", weight_decay)
    scheduled = callable(weight_decay)

    def init_fn(params):
        if mask is not None:
            resolve_mask(call, mask, params)  # fail at init, not at the first update
        return AddDecayedWeightsState(zero_count())

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(
                f"{call}.update needs the params: call `tx.update(grads, state, params)`"
            )
        wd = as_scalar(weight_decay(state.count) if scheduled else weight_decay)
        masks = (
            resolve_mask(call, mask, params)
            if mask is not None
            else jax.tree.map(lambda _: True, params)
        )
        updates = jax.tree.map(
            lambda u, p, m: where_mask(m, (u + wd * p).astype(u.dtype), u), updates, params, masks
        )
        return updates, AddDecayedWeightsState(safe_increment(state.count))

    return GradientTransformation(init_fn, update_fn)
