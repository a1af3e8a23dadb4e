"""Slowly moving copies of the parameters (target networks): ``periodic_update`` and
``incremental_update``. Plain tree functions, not transformations."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from . import _check
from ._base import Params


def _is_none(x):
    return x is None


def incremental_update(new_tensors: Params, old_tensors: Params, step_size: Any) -> Params:
    r"""A Polyak (exponential moving) average step of ``old_tensors`` toward ``new_tensors``.

    .. math:: \text{old} \leftarrow \tau\, \text{new} + (1 - \tau)\, \text{old}

    with :math:`\tau` = ``step_size`` in ``[0, 1]`` (a soft target-network update, e.g.
    ``tau = 0.005`` in DDPG/SAC). Each result has its ``old_tensors`` leaf's dtype; ``None``
    leaves stay ``None``. Same as ``optax.incremental_update`` (Optax 0.2.8). Jittable;
    ``step_size`` may be traced.

    Args:
        new_tensors: the online weights.
        old_tensors: the averaged (target) weights.
        step_size: :math:`\tau` in ``[0, 1]``, the weight given to ``new_tensors``.

    Returns:
        A tree of the structure of ``old_tensors`` with the averaged weights.

    References:
        Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging" (SIAM J.
        Control Optim., 1992); Lillicrap et al., "Continuous control with deep reinforcement
        learning" (ICLR 2016).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.incremental_update({"w": jnp.ones(2)}, {"w": jnp.zeros(2)}, 0.25)["w"].tolist()
        [0.25, 0.25]
    """
    _check.number("optgrad.incremental_update", "step_size", step_size, low=0.0, high=1.0)

    def step(new, old):
        if new is None:
            return None
        old = jnp.asarray(old)
        return (step_size * new + (1.0 - step_size) * old).astype(old.dtype)

    return jax.tree.map(step, new_tensors, old_tensors, is_leaf=_is_none)


def periodic_update(
    new_tensors: Params, old_tensors: Params, steps: Any, update_period: Any
) -> Params:
    r"""``new_tensors`` when ``steps`` is a multiple of ``update_period``, else ``old_tensors``.

    A hard target-network update: a copy of the online weights refreshed every
    ``update_period`` steps (DQN; BYOL uses :func:`incremental_update`). Each result has its
    ``old_tensors`` leaf's dtype. Same as ``optax.periodic_update`` (Optax 0.2.8), including
    ``steps = 0`` counting as a multiple. Jittable: ``steps`` (and ``update_period``) may be
    traced.

    Args:
        new_tensors: the latest weights.
        old_tensors: the slow copy.
        steps: the number of updates of the online weights (an integer, may be traced).
        update_period: a positive integer.

    Returns:
        A tree of the structure of ``old_tensors``: the new or the old weights.

    References:
        Mnih et al., "Human-level control through deep reinforcement learning" (Nature 2015);
        Grill et al., "Bootstrap Your Own Latent" (NeurIPS 2020).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> [og.periodic_update(1.0, 0.0, s, 3).item() for s in range(4)]
        [1.0, 0.0, 0.0, 1.0]
    """
    call = "optgrad.periodic_update"
    period = _check.concrete_float(update_period)
    if period is not None and not (period > 0 and period.is_integer()):
        raise ValueError(
            f"{call}(update_period=...) must be a positive integer, got "
            f"update_period={update_period!r}"
        )
    refresh = jnp.mod(steps, update_period) == 0

    def pick(new, old):
        if new is None:
            return None
        old = jnp.asarray(old)
        return jnp.where(refresh, new, old).astype(old.dtype)

    return jax.tree.map(pick, new_tensors, old_tensors, is_leaf=_is_none)
