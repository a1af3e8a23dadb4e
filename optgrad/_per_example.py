"""Per-example gradient clipping (for differentially private training): functions of a batch of
per-example gradients, each leaf with the examples on axis 0."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from . import _check
from ._numerics import abs_sq


def _batch_size(call: str, grads: Any) -> int:
    leaves = jax.tree.leaves(grads)
    if not leaves:
        raise ValueError(f"{call}: `grads` has no leaves")
    sizes = {jnp.shape(g)[0] if jnp.ndim(g) else None for g in leaves}
    if len(sizes) != 1 or None in sizes:
        shapes = jax.tree.map(jnp.shape, grads)
        raise ValueError(
            f"{call}: every leaf of `grads` must hold per-example gradients with the examples on "
            f"axis 0 (the same batch size for every leaf), got shapes {shapes}. Compute them with "
            "`jax.vmap(jax.grad(loss), in_axes=(None, 0))(params, batch)`."
        )
    return sizes.pop()


def _example_sq_norms(leaves: list[jax.Array]) -> jax.Array:
    """``(batch,)``: the squared norm of each example's gradient over ``leaves``, >= float32."""
    parts = []
    for g in leaves:
        g = jnp.asarray(g)
        wide = g.astype(jnp.promote_types(g.dtype, jnp.float32))
        parts.append(jnp.sum(abs_sq(wide), axis=tuple(range(1, g.ndim))))
    dtype = jnp.result_type(*parts)
    return jnp.sum(jnp.stack([p.astype(dtype) for p in parts]), axis=0)


def _clip_and_sum(leaves: list[jax.Array], l2_norm_clip: Any) -> tuple[list[jax.Array], jax.Array]:
    norms = jnp.sqrt(_example_sq_norms(leaves))
    # 0/0 (a zero gradient with a zero bound) and inf/inf count as "not clipped": factor 1.
    factors = jnp.nan_to_num(jnp.minimum(l2_norm_clip / norms, 1.0), nan=1.0)
    num_clipped = jnp.sum(factors < 1.0, dtype=jnp.int32)

    def weighted_sum(g):
        g = jnp.asarray(g)
        total = jnp.tensordot(factors.astype(jnp.promote_types(g.dtype, factors.dtype)), g, 1)
        return total.astype(g.dtype) if jnp.issubdtype(g.dtype, jnp.inexact) else total

    return [weighted_sum(g) for g in leaves], num_clipped


def per_example_global_norm_clip(grads: Any, l2_norm_clip: Any) -> tuple[Any, jax.Array]:
    r"""Clips each example's gradient to global L2 norm ``l2_norm_clip``, then sums them.

    With :math:`g^{(b)}` the gradient of example :math:`b` (all leaves as one vector) and
    :math:`C` = ``l2_norm_clip``:

    .. math:: \sum_b g^{(b)} \min\!\Big(1, \frac{C}{\lVert g^{(b)}\rVert_2}\Big)

    The step of DP-SGD before the noise is added (add Gaussian noise of scale :math:`\sigma C`
    and divide by the batch size to finish it). Optax's semantics and signature.

    Args:
        grads: per-example gradients: a tree whose leaves all have the examples on axis 0.
        l2_norm_clip: :math:`C`, non-negative (may be ``inf``; ``0`` zeroes every non-zero
            example).

    Returns:
        ``(clipped_sum, num_clipped)``: the sum over examples (a tree without the batch axis,
        float leaves in their dtype) and how many examples were rescaled (int32).

    References:
        Abadi et al., "Deep Learning with Differential Privacy" (CCS 2016), Algorithm 1.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> grads = {"w": jnp.array([[0.0, 0.0], [3.0, 4.0], [0.6, 0.8]])}
        >>> total, n = og.per_example_global_norm_clip(grads, 1.0)
        >>> [round(x, 4) for x in total["w"].tolist()], int(n)
        ([1.2, 1.6], 1)
    """
    call = "optgrad.per_example_global_norm_clip"
    _check.number(call, "l2_norm_clip", l2_norm_clip, low=0.0, allow_inf=True)
    _batch_size(call, grads)
    leaves, treedef = jax.tree.flatten(grads)
    summed, num_clipped = _clip_and_sum(leaves, l2_norm_clip)
    return treedef.unflatten(summed), num_clipped


def per_example_layer_norm_clip(
    grads: Any, global_l2_norm_clip: Any, uniform: bool = True
) -> tuple[Any, Any]:
    r"""Clips each example's gradient leaf by leaf (layer by layer), then sums over examples.

    Leaf :math:`i` of :math:`K` is clipped as in :func:`per_example_global_norm_clip` to its
    own bound :math:`C_i`, chosen so that :math:`\sum_i C_i^2 = C^2` with :math:`C` =
    ``global_l2_norm_clip`` (the whole example then has norm at most :math:`C`):

    .. math::
        C_i = \frac{C}{\sqrt{K}} \;\; (\texttt{uniform=True}), \qquad
        C_i = C\sqrt{D_i / D} \;\; (\texttt{uniform=False})

    with :math:`D_i` the number of parameters of leaf :math:`i` and :math:`D` their total.
    Optax's semantics and signature (``uniform`` may be passed by position, as there).

    Args:
        grads: per-example gradients: every leaf with the examples on axis 0.
        global_l2_norm_clip: :math:`C`, non-negative.
        uniform: the same bound for every leaf, or bounds proportional to the root of the
            leaves' sizes.

    Returns:
        ``(clipped_sum, num_clipped)``: two trees of ``grads``' structure, the sum over examples
        of each clipped leaf and, per leaf, how many examples were rescaled (int32).

    References:
        McMahan, Ramage, Talwar & Zhang, "Learning Differentially Private Recurrent Language
        Models" (ICLR 2018), per-layer clipping.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> grads = {"a": jnp.array([[3.0], [0.1]]), "b": jnp.array([[4.0], [0.1]])}
        >>> total, n = og.per_example_layer_norm_clip(grads, 2.0 ** 0.5)
        >>> round(float(total["a"][0]), 4), int(n["a"]), int(n["b"])
        (1.1, 1, 1)
    """
    call = "optgrad.per_example_layer_norm_clip"
    _check.number(call, "global_l2_norm_clip", global_l2_norm_clip, low=0.0, allow_inf=True)
    if not isinstance(uniform, bool):
        raise TypeError(f"{call}(uniform=...) must be a bool, got uniform={uniform!r}")
    _batch_size(call, grads)
    leaves, treedef = jax.tree.flatten(grads)
    sizes = [math.prod(jnp.shape(g)[1:]) for g in leaves]
    total = sum(sizes)
    summed, counts = [], []
    for g, d in zip(leaves, sizes):
        share = 1.0 / len(leaves) if uniform else (d / total if total else 0.0)
        (s,), n = _clip_and_sum([g], global_l2_norm_clip * share**0.5)
        summed.append(s)
        counts.append(n)
    return treedef.unflatten(summed), treedef.unflatten(counts)
