"""Constraints on the parameters, enforced through the updates."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._base import GradientTransformation, init_empty_state


def _is_none(x):
    return x is None


def keep_params_nonnegative() -> GradientTransformation:
    r"""Changes the updates so that the parameters stay non-negative.

    .. math:: u \leftarrow \begin{cases} -\theta & \text{if } \theta + u < 0 \\
        u & \text{otherwise} \end{cases}

    so a step that would cross zero stops at zero. Put it last in a chain (after the learning
    rate), since it reasons about the final update. Expects non-negative params: a negative
    parameter is moved to zero. Same as ``optax.keep_params_nonnegative`` (Optax 0.2.8), whose
    state is an empty ``NonNegativeParamsState``; here it is :class:`optgrad.EmptyState`.

    Returns:
        A stateless transformation that needs ``params``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.keep_params_nonnegative()
        >>> params = jnp.array([1.0, 1.0])
        >>> tx.update(jnp.array([-2.0, -0.5]), tx.init(params), params)[0].tolist()
        [-1.0, -0.5]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(
                "optgrad.keep_params_nonnegative.update needs `params` to keep them "
                "non-negative. Call `update(updates, state, params)`."
            )

        def keep(p, u):
            if p is None:
                return None
            return jnp.where(p + u < 0, -p, u).astype(jnp.result_type(u))

        return jax.tree.map(keep, params, updates, is_leaf=_is_none), state

    return GradientTransformation(init_empty_state, update_fn)
