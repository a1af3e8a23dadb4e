r"""Euclidean projections of a tree (all its leaves taken as one vector) onto convex sets.

Each function returns :math:`\operatorname{argmin}_{y \in S} \lVert x - y\rVert_2` for its set
:math:`S`, as a tree of the structure, shapes and dtypes of ``x``. All are jit- and
vmap-compatible and differentiable almost everywhere. Use them after an update for projected
gradient descent::

    params = og.projections.projection_simplex(og.apply_updates(params, updates))
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ..tree import _arith


def _flatten(tree: Any) -> tuple[jax.Array, Any]:
    """All leaves raveled into one vector (promoted dtype, at least float32), and the way back."""
    leaves, treedef = jax.tree.flatten(tree)
    leaves = [jnp.asarray(x) for x in leaves]
    dtype = _arith._acc_dtype(jnp.result_type(*leaves)) if leaves else jnp.float32
    flat = jnp.concatenate([x.ravel().astype(dtype) for x in leaves]) if leaves else jnp.zeros(0)

    def unflatten(vector: jax.Array) -> Any:
        out, start = [], 0
        for x in leaves:
            out.append(vector[start : start + x.size].reshape(x.shape).astype(x.dtype))
            start += x.size
        return jax.tree.unflatten(treedef, out)

    return flat, unflatten


def _onto_simplex(v: jax.Array, scale: Any) -> jax.Array:
    """The projection of a vector onto ``{y >= 0, sum(y) = scale}`` (sort-based, O(n log n))."""
    u = jnp.sort(v)[::-1]
    excess = jnp.cumsum(u) - scale
    k = jnp.arange(1, v.shape[0] + 1, dtype=v.dtype)
    support = jnp.count_nonzero(u - excess / k > 0)  # >= 1 whenever scale > 0
    threshold = excess[jnp.maximum(support, 1) - 1] / jnp.maximum(support, 1).astype(v.dtype)
    return jnp.maximum(v - threshold, 0)


def _scalar_like(value: Any, tree: Any) -> Any:
    return jnp.asarray(value, _arith._acc_dtype(jnp.result_type(*jax.tree.leaves(tree), 0.0)))


def projection_non_negative(tree: Any) -> Any:
    r"""Projection onto the non-negative orthant: :math:`\max(x, 0)` elementwise.

    .. math:: \operatorname{argmin}_{p} \lVert x - p \rVert_2 \ \text{s.t.}\ p \ge 0

    Args:
        tree: the tree to project.

    Returns:
        The projected tree.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.projections.projection_non_negative({"w": jnp.array([-1.0, 2.0])})["w"].tolist()
        [0.0, 2.0]
    """
    return jax.tree.map(lambda x: jnp.maximum(x, 0).astype(jnp.asarray(x).dtype), tree)


def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
    r"""Projection onto the box :math:`\{p : \text{lower} \le p \le \text{upper}\}`:
    :math:`\min(\max(x, l), u)` elementwise.

    ``lower`` and ``upper`` are scalars or trees of the structure of ``tree``.

    Args:
        tree: the tree to project.
        lower: the lower bound, a scalar or a tree like ``tree``.
        upper: the upper bound, a scalar or a tree like ``tree``.

    Returns:
        The projected tree.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> x = {"w": jnp.array([-2.0, 0.5, 3.0])}
        >>> og.projections.projection_box(x, -1.0, 1.0)["w"].tolist()
        [-1.0, 0.5, 1.0]
    """
    struct = jax.tree.structure(tree)

    def as_tree(bound, name):
        if jax.tree.structure(bound) == struct:
            return bound
        if jax.tree_util.treedef_is_leaf(jax.tree.structure(bound)) and jnp.ndim(bound) == 0:
            return jax.tree.map(lambda _: bound, tree)
        raise ValueError(
            f"optgrad.projections.projection_box({name}=...) must be a scalar or a tree with the "
            f"structure of `tree` ({struct}), got {jax.tree.structure(bound)}"
        )

    lo, hi = as_tree(lower, "lower"), as_tree(upper, "upper")
    return jax.tree.map(
        lambda x, l, u: jnp.clip(x, l, u).astype(jnp.asarray(x).dtype), tree, lo, hi
    )


def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the hypercube :math:`[0, \text{scale}]^n` (unit by default):
    :func:`projection_box` with ``lower=0, upper=scale``.

    Args:
        tree: the tree to project.
        scale: the side length of the cube (default 1).

    Returns:
        The projected tree.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.projections.projection_hypercube({"w": jnp.array([-1.0, 0.5, 2.0])})["w"].tolist()
        [0.0, 0.5, 1.0]
    """
    return projection_box(tree, 0, scale)


def projection_simplex(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the simplex :math:`\{p \ge 0,\ \sum_i p_i = s\}` (the probability
    simplex for :math:`s` = ``scale`` = 1).

    .. math:: p_i = \max(x_i - \tau, 0), \quad \tau \text{ such that } \textstyle\sum_i p_i = s

    :math:`\tau` is found exactly by sorting :math:`x` (Held, Wolfe & Crowder 1974; Duchi et al.
    2008): with :math:`u` sorted in decreasing order and :math:`\rho` the largest :math:`k` with
    :math:`u_k > (\sum_{j\le k} u_j - s)/k`, :math:`\tau = (\sum_{j \le \rho} u_j - s)/\rho`.

    Args:
        tree: the tree to project.
        scale: the radius :math:`s` (default 1).

    Returns:
        The projected tree.

    References:
        Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient Projections onto the l1-Ball for
        Learning in High Dimensions" (ICML 2008), Figure 1.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> p = og.projections.projection_simplex({"w": jnp.array([2.5, 3.2]), "b": jnp.array(0.5)})
        >>> round(float(og.tree.sum(p)), 5), p["w"].tolist()
        (1.0, [0.15000009536743164, 0.8500001430511475])
    """
    flat, unflatten = _flatten(tree)
    return unflatten(_onto_simplex(flat, _scalar_like(scale, tree)))


def projection_l1_sphere(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the l1 sphere :math:`\{p : \lVert p\rVert_1 = s\}`.

    The magnitudes are projected onto the simplex and the signs restored:
    :math:`p = \operatorname{sign}(x) \odot \Pi_{\Delta_s}(|x|)`. Entries equal to zero count as
    positive, so the zero tree maps onto the sphere (Optax 0.2.8 gives zero there).

    Args:
        tree: the tree to project.
        scale: the radius :math:`s` (default 1).

    Returns:
        The projected tree.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.projections.projection_l1_sphere({"w": jnp.array([-2.0, 1.0])})["w"].tolist()
        [-1.0, 0.0]
    """
    flat, unflatten = _flatten(tree)
    sign = jnp.where(flat < 0, -1, 1).astype(flat.dtype)
    return unflatten(sign * _onto_simplex(jnp.abs(flat), _scalar_like(scale, tree)))


def projection_l1_ball(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the l1 ball :math:`\{p : \lVert p\rVert_1 \le s\}`: ``tree`` itself if
    inside, else :func:`projection_l1_sphere`.

    Args:
        tree: the tree to project.
        scale: the radius :math:`s` (default 1).

    Returns:
        The projected tree.

    References:
        Duchi, Shalev-Shwartz, Singer & Chandra (ICML 2008), section 4.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> p = og.projections.projection_l1_ball({"w": jnp.array([2.5, 3.2]), "b": jnp.array(0.5)})
        >>> round(float(og.tree.norm(p, 1)), 5)
        1.0
    """
    flat, unflatten = _flatten(tree)
    s = _scalar_like(scale, tree)
    sign = jnp.where(flat < 0, -1, 1).astype(flat.dtype)
    inside = jnp.sum(jnp.abs(flat)) <= s
    projected = jax.lax.cond(
        inside, lambda v: v, lambda v: sign * _onto_simplex(jnp.abs(v), s), flat
    )
    return unflatten(projected)


def projection_l2_sphere(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the l2 sphere: :math:`p = s\, x / \lVert x\rVert_2` (undefined, NaN, for
    the zero tree).

    Args:
        tree: the tree to project.
        scale: the radius :math:`s` (default 1).

    Returns:
        The projected tree.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.projections.projection_l2_sphere({"w": jnp.array([3.0, 4.0])})["w"].tolist()
        [0.6000000238418579, 0.800000011920929]
    """
    return _arith.scale(_scalar_like(scale, tree) / _arith.norm(tree), tree)


def projection_l2_ball(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the l2 ball: :math:`p = x \cdot s / \max(\lVert x\rVert_2, s)`.

    Args:
        tree: the tree to project.
        scale: the radius :math:`s` (default 1).

    Returns:
        The projected tree.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.projections.projection_l2_ball({"w": jnp.array([3.0, 4.0])}, 10.0)["w"].tolist()
        [3.0, 4.0]
    """
    s = _scalar_like(scale, tree)
    return _arith.scale(s / jnp.maximum(_arith.norm(tree), s), tree)


def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the l-infinity ball :math:`\{p : \max_i |p_i| \le s\}`: clip each entry
    to :math:`[-s, s]`.

    Args:
        tree: the tree to project.
        scale: the radius :math:`s` (default 1).

    Returns:
        The projected tree.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.projections.projection_linf_ball({"w": jnp.array([-3.0, 0.5, 2.0])})["w"].tolist()
        [-1.0, 0.5, 1.0]
    """
    return projection_box(tree, -jnp.asarray(scale), jnp.asarray(scale))


def projection_vector(x: Any, a: Any) -> Any:
    r"""Projection of ``x`` onto the line spanned by the tree ``a``:
    :math:`\frac{\langle x, a\rangle}{\langle a, a\rangle} a`.

    Args:
        x: the tree to project.
        a: the direction, a tree of the structure of ``x``.

    Returns:
        The projected tree.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> x, a = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([1.0, 0.0])}
        >>> og.projections.projection_vector(x, a)["w"].tolist()
        [1.0, 0.0]
    """
    return _arith.scale(_arith.vdot(x, a) / _arith.vdot(a, a), a)


def projection_hyperplane(x: Any, a: Any, b: Any) -> Any:
    r"""Projection onto the hyperplane :math:`\{y : \langle a, y\rangle = b\}`:
    :math:`x + \frac{b - \langle a, x\rangle}{\langle a, a\rangle} a`.

    Args:
        x: the tree to project.
        a: the normal vector, a tree of the structure of ``x``.
        b: the offset, a scalar.

    Returns:
        The projected tree.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> x, a = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([1.0, 1.0])}
        >>> og.projections.projection_hyperplane(x, a, 1.0)["w"].tolist()
        [0.0, 1.0]
    """
    return _arith.add_scale(x, (b - _arith.vdot(a, x)) / _arith.vdot(a, a), a)


def projection_halfspace(x: Any, a: Any, b: Any) -> Any:
    r"""Projection onto the halfspace :math:`\{y : \langle a, y\rangle \le b\}`:
    :math:`x + \frac{\min(0,\, b - \langle a, x\rangle)}{\langle a, a\rangle} a`.

    Args:
        x: the tree to project.
        a: the normal vector, a tree of the structure of ``x``.
        b: the offset, a scalar.

    Returns:
        The projected tree.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> x, a = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([1.0, 1.0])}
        >>> og.projections.projection_halfspace(x, a, 5.0)["w"].tolist()
        [1.0, 2.0]
    """
    step = jnp.minimum(b - _arith.vdot(a, x), 0) / _arith.vdot(a, a)
    return _arith.add_scale(x, step, a)
