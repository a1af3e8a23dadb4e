"""Clipping: by value, by the global norm of the whole tree, by the RMS of each leaf."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation, init_empty_state
from ._numerics import abs_sq, as_scalar
from .tree import norm as tree_norm


def clip(max_delta: float | jax.Array) -> GradientTransformation:
    """Clips every element of the updates to ``[-max_delta, max_delta]``."""
    _check.non_negative("optgrad.clip", "max_delta", max_delta)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        bound = as_scalar(max_delta)
        return jax.tree.map(lambda u: jnp.clip(u, -bound, bound).astype(u.dtype), updates), state

    return GradientTransformation(init_empty_state, update_fn)


class ClipByGlobalNormState(NamedTuple):
    """``global_norm``: the norm of the updates *before* clipping, at the last update."""

    global_norm: jax.Array


def clip_by_global_norm(max_norm: float | jax.Array) -> GradientTransformation:
    r"""Rescales the updates so that their global L2 norm is at most ``max_norm``.

    .. math:: u \leftarrow u \cdot \min\!\left(1, \frac{c}{\lVert u \rVert_2}\right)

    Updates whose norm is below ``c`` pass unchanged (Optax's semantics; for torch's
    ``clip_grad_norm_``, which always multiplies by ``c / (norm + 1e-6)``, use
    :func:`optgrad.torch.clip_grad_norm`). The pre-clip norm is kept in the state, so it can be
    logged without computing it twice: ``optgrad.tree.get(state, "global_norm")``. Pascanu et
    al., "On the difficulty of training recurrent neural networks" (2013).
    """
    _check.positive("optgrad.clip_by_global_norm", "max_norm", max_norm)

    def init_fn(params):
        del params
        return ClipByGlobalNormState(jnp.zeros([], jnp.float32))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        g_norm = tree_norm(updates)
        factor = jnp.where(g_norm < max_norm, 1.0, as_scalar(max_norm) / g_norm)
        updates = jax.tree.map(lambda u: (u * factor.astype(u.dtype)).astype(u.dtype), updates)
        return updates, ClipByGlobalNormState(g_norm.astype(jnp.float32))

    return GradientTransformation(init_fn, update_fn)


def clip_by_block_rms(threshold: float | jax.Array) -> GradientTransformation:
    r"""Rescales each leaf so that its root-mean-square is at most ``threshold``.

    .. math:: u \leftarrow u / \max\!\left(1, \operatorname{rms}(u) / c\right)
    """
    _check.positive("optgrad.clip_by_block_rms", "threshold", threshold)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        c = as_scalar(threshold)

        def clip_leaf(u):
            rms = jnp.sqrt(jnp.mean(abs_sq(u).astype(jnp.float32)))
            return (u / jnp.maximum(1.0, rms / c).astype(u.dtype)).astype(u.dtype)

        return jax.tree.map(clip_leaf, updates), state

    return GradientTransformation(init_empty_state, update_fn)
