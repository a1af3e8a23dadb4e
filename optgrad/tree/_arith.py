"""Arithmetic over whole trees, written to keep XLA graphs small for trees with many leaves.

Elementwise operations (``add``, ``scale``, ``where``, ...) map leaf by leaf. Reductions
(``sum``, ``vdot``, ``norm``, ``max``, ...) reduce each leaf to a scalar, then reduce the stacked
scalars in one balanced operation: the depth of the graph does not grow with the number of
leaves (a Python ``sum`` over 2000 leaves is a chain of 2000 dependent additions that XLA
compiles slowly). Floating-point reductions accumulate in at least float32, so a bfloat16 tree
is not summed in bfloat16.

Every reduction takes ``axis_name``: inside ``shard_map``, ``pmap`` or a named ``vmap`` where
each device holds a *shard* of every leaf, the per-device partial result is combined over that
axis (``lax.psum`` for sums, ``lax.pmax``/``pmin`` for extrema), so every device gets the value
of the whole, unsharded tree.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .._numerics import abs_sq

AxisName = Hashable | Sequence[Hashable] | None


def _leaves(tree: Any) -> list[jax.Array]:
    return [jnp.asarray(x) for x in jax.tree.leaves(tree)]


def _acc_dtype(dtype: Any) -> Any:
    """The accumulation dtype of a reduction: at least float32 for floats, unchanged otherwise."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.inexact):
        return jnp.promote_types(dtype, jnp.float32)
    return dtype


def _combine(parts: list[jax.Array], reduce: Callable[..., jax.Array], empty: Any) -> jax.Array:
    """Reduces per-leaf scalars in one balanced step: stack them, reduce once."""
    if not parts:
        return jnp.asarray(empty, jnp.float32)
    if len(parts) == 1:
        return parts[0]
    dtype = jnp.result_type(*parts)
    return reduce(jnp.stack([p.astype(dtype) for p in parts]))


def _across(value: jax.Array, axis_name: AxisName, collective: Callable[..., jax.Array]):
    return value if axis_name is None else collective(value, axis_name)


def _check_like(call: str, tree_x: Any, tree_y: Any, what: str = "tree_y") -> None:
    def_x, def_y = jax.tree.structure(tree_x), jax.tree.structure(tree_y)
    if def_x != def_y:
        raise ValueError(
            f"{call}: `{what}` must have the same tree structure as `tree_x`.\n"
            f"  expected (tree_x): {def_x}\n  got ({what}): {def_y}"
        )


def _keep_dtype(result: jax.Array, like: jax.Array) -> jax.Array:
    """``result`` in ``like``'s dtype, unless a complex scalar made a real leaf complex."""
    if jnp.iscomplexobj(result) and not jnp.iscomplexobj(like):
        return result
    return result.astype(like.dtype)


# ---- elementwise ------------------------------------------------------------------------------


def add(tree_x: Any, tree_y: Any, *other_trees: Any) -> Any:
    """The leafwise sum of two or more trees of the same structure (NumPy type promotion).

    Args:
        tree_x: the first tree.
        tree_y: a tree of the same structure.
        *other_trees: further trees of that structure, added in turn.

    Returns:
        A tree of that structure holding the leafwise sums.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.add({"a": jnp.ones(2)}, {"a": jnp.ones(2)}, {"a": jnp.ones(2)})["a"].tolist()
        [3.0, 3.0]
    """
    for i, other in enumerate((tree_y, *other_trees)):
        _check_like("optgrad.tree.add", tree_x, other, "tree_y" if i == 0 else f"tree {i + 2}")
    return jax.tree.map(lambda x, *ys: builtins.sum(ys, x), tree_x, tree_y, *other_trees)


def sub(tree_x: Any, tree_y: Any) -> Any:
    """The leafwise difference ``tree_x - tree_y``.

    Args:
        tree_x: the tree subtracted from.
        tree_y: the tree subtracted, of the same structure.

    Returns:
        A tree of that structure holding the differences.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.sub({"w": jnp.array([3.0, 1.0])}, {"w": jnp.array([1.0, 2.0])})["w"].tolist()
        [2.0, -1.0]
    """
    _check_like("optgrad.tree.sub", tree_x, tree_y)
    return jax.tree.map(lambda x, y: x - y, tree_x, tree_y)


def mul(tree_x: Any, tree_y: Any) -> Any:
    """The leafwise (Hadamard) product ``tree_x * tree_y``.

    Args:
        tree_x: the first tree.
        tree_y: a tree of the same structure.

    Returns:
        A tree of that structure holding the products.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.mul({"w": jnp.array([2.0, 3.0])}, {"w": jnp.array([0.5, 2.0])})["w"].tolist()
        [1.0, 6.0]
    """
    _check_like("optgrad.tree.mul", tree_x, tree_y)
    return jax.tree.map(lambda x, y: x * y, tree_x, tree_y)


def div(tree_x: Any, tree_y: Any) -> Any:
    """The leafwise quotient ``tree_x / tree_y``.

    Args:
        tree_x: the numerator tree.
        tree_y: the denominator tree, of the same structure.

    Returns:
        A tree of that structure holding the quotients.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.div({"w": jnp.array([3.0, 1.0])}, {"w": jnp.array([2.0, 4.0])})["w"].tolist()
        [1.5, 0.25]
    """
    _check_like("optgrad.tree.div", tree_x, tree_y)
    return jax.tree.map(lambda x, y: x / y, tree_x, tree_y)


def scale(scalar: Any, tree: Any) -> Any:
    r"""Every leaf times ``scalar``: :math:`\alpha x`, each leaf keeping its dtype.

    A float32 ``scalar`` does not promote a bfloat16 tree (unlike ``scalar * x``); a complex
    scalar makes real leaves complex.

    Args:
        scalar: the factor :math:`\alpha`, a scalar (possibly traced).
        tree: the tree to scale.

    Returns:
        A tree of the same structure holding :math:`\alpha x`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.scale(jnp.float32(0.5), {"w": jnp.ones(2, jnp.bfloat16)})["w"].dtype
        dtype(bfloat16)
    """
    return jax.tree.map(lambda x: _keep_dtype(scalar * jnp.asarray(x), jnp.asarray(x)), tree)


def add_scale(tree_x: Any, scalar: Any, tree_y: Any) -> Any:
    r""":math:`x + \alpha y` leaf by leaf (an "axpy"); the scalar does not promote the leaves.

    Args:
        tree_x: the tree :math:`x`.
        scalar: the factor :math:`\alpha`, a scalar (possibly traced).
        tree_y: the tree :math:`y`, of the structure of ``tree_x``.

    Returns:
        A tree of that structure holding :math:`x + \alpha y`, leaves in the dtypes of ``tree_x``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.add_scale({"w": jnp.ones(2)}, 2.0, {"w": jnp.ones(2)})["w"].tolist()
        [3.0, 3.0]
    """
    _check_like("optgrad.tree.add_scale", tree_x, tree_y)

    def axpy(x, y):
        x, y = jnp.asarray(x), jnp.asarray(y)
        like = jnp.zeros((), jnp.result_type(x, y))
        return _keep_dtype(x + scalar * y, like)

    return jax.tree.map(axpy, tree_x, tree_y)


def clip(tree: Any, min_value: Any = None, max_value: Any = None) -> Any:
    """Every element clipped to ``[min_value, max_value]`` (``None``: unbounded on that side);
    each leaf keeps its dtype.

    Args:
        tree: the tree to clip.
        min_value: the lower bound, a scalar; ``None`` (default) for no lower bound.
        max_value: the upper bound, a scalar; ``None`` (default) for no upper bound.

    Returns:
        A tree of the same structure and dtypes with clipped elements.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.clip({"w": jnp.array([-2.0, 0.5, 3.0])}, -1.0, 1.0)["w"].tolist()
        [-1.0, 0.5, 1.0]
    """
    return jax.tree.map(
        lambda x: jnp.clip(x, min_value, max_value).astype(jnp.asarray(x).dtype), tree
    )


def where(condition: Any, tree_x: Any, tree_y: Any) -> Any:
    """``jnp.where(condition, x, y)`` leaf by leaf.

    ``condition`` is either one boolean (scalar or broadcastable array) used for every leaf, or a
    tree of booleans with the structure of ``tree_x``.

    Args:
        condition: one boolean (scalar or broadcastable array), or a tree of booleans
            shaped like ``tree_x``.
        tree_x: the values taken where ``condition`` holds.
        tree_y: the values taken elsewhere, of the structure of ``tree_x``.

    Returns:
        A tree of the structure of ``tree_x``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.where(jnp.bool_(False), {"w": jnp.ones(2)}, {"w": jnp.zeros(2)})["w"].tolist()
        [0.0, 0.0]
    """
    _check_like("optgrad.tree.where", tree_x, tree_y)
    struct = jax.tree.structure(tree_x)
    if jax.tree.structure(condition) == struct and struct.num_leaves > 1:
        return jax.tree.map(jnp.where, condition, tree_x, tree_y)
    if jax.tree.structure(condition).num_leaves != 1:
        raise ValueError(
            "optgrad.tree.where: `condition` must be one boolean (or array) for every leaf or a "
            f"tree with the structure of `tree_x` ({struct}), got {jax.tree.structure(condition)}"
        )
    cond = jax.tree.leaves(condition)[0]
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), tree_x, tree_y)


def conj(tree: Any) -> Any:
    """The complex conjugate of every leaf (real leaves unchanged).

    Args:
        tree: a tree of real or complex arrays.

    Returns:
        A tree of the same structure holding the conjugates.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.conj({"z": jnp.array([1.0 + 2.0j])})["z"].tolist()
        [(1-2j)]
    """
    return jax.tree.map(jnp.conj, tree)


def real(tree: Any) -> Any:
    """The real part of every leaf.

    Args:
        tree: a tree of real or complex arrays.

    Returns:
        A tree of the same structure with real leaves.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.real({"z": jnp.array([1.0 + 2.0j])})["z"].tolist()
        [1.0]
    """
    return jax.tree.map(jnp.real, tree)


def size(tree: Any) -> int:
    """The number of elements in all the leaves (a Python int, known when tracing).

    Args:
        tree: any tree of arrays (or ``jax.ShapeDtypeStruct``).

    Returns:
        A Python ``int``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.size({"a": jnp.ones((2, 3)), "b": jnp.ones(4)})
        10
    """
    return builtins.sum(int(jnp.size(x)) for x in jax.tree.leaves(tree))


# ---- reductions -------------------------------------------------------------------------------


def sum(tree: Any, *, axis_name: AxisName = None) -> jax.Array:  # noqa: A001 - Optax's name
    r""":math:`\sum_i x_i` over every element of every leaf; floats accumulate in >= float32.

    Args:
        tree: any tree of arrays.
        axis_name: a named axis over which the leaves are shards (``psum``); ``None`` (default):
            none.

    Returns:
        A scalar array.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> float(og.tree.sum({"a": jnp.ones(3), "b": jnp.full((2, 2), 0.5)}))
        5.0
    """
    parts = [jnp.sum(x, dtype=_acc_dtype(x.dtype)) for x in _leaves(tree)]
    return _across(_combine(parts, jnp.sum, 0.0), axis_name, jax.lax.psum)


def vdot(tree_x: Any, tree_y: Any, *, axis_name: AxisName = None) -> jax.Array:
    r"""The inner product :math:`\langle x, y\rangle = \sum_i \bar x_i y_i` of two trees taken as
    vectors (the first argument conjugated, as in ``jnp.vdot``); accumulates in >= float32.

    Args:
        tree_x: the first tree (conjugated).
        tree_y: a tree of the same structure.
        axis_name: a named axis over which the leaves are shards; ``None`` (default) for none.

    Returns:
        A scalar array.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> float(og.tree.vdot({"a": jnp.arange(3.0)}, {"a": jnp.ones(3)}))
        3.0
    """
    _check_like("optgrad.tree.vdot", tree_x, tree_y)

    def leaf(x, y):
        acc = _acc_dtype(jnp.result_type(x, y))
        return jnp.sum(jnp.conj(x).astype(acc) * y.astype(acc))

    parts = [leaf(x, y) for x, y in zip(_leaves(tree_x), _leaves(tree_y))]
    return _across(_combine(parts, jnp.sum, 0.0), axis_name, jax.lax.psum)


def max(tree: Any, *, axis_name: AxisName = None) -> jax.Array:  # noqa: A001 - Optax's name
    """The largest element of the tree (``-inf`` for a tree without leaves).

    Args:
        tree: any tree of real arrays.
        axis_name: a named axis over which the leaves are shards (``pmax``); ``None`` (default):
            none.

    Returns:
        A scalar array.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> float(og.tree.max({"a": jnp.array([1.0, 5.0]), "b": jnp.array(-2.0)}))
        5.0
    """
    parts = [jnp.max(x) for x in _leaves(tree)]
    return _across(_combine(parts, jnp.max, -jnp.inf), axis_name, jax.lax.pmax)


def min(tree: Any, *, axis_name: AxisName = None) -> jax.Array:  # noqa: A001 - Optax's name
    """The smallest element of the tree (``inf`` for a tree without leaves).

    Args:
        tree: any tree of real arrays.
        axis_name: a named axis over which the leaves are shards (``pmin``); ``None`` (default):
            none.

    Returns:
        A scalar array.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> float(og.tree.min({"a": jnp.array([1.0, 5.0]), "b": jnp.array(-2.0)}))
        -2.0
    """
    parts = [jnp.min(x) for x in _leaves(tree)]
    return _across(_combine(parts, jnp.min, jnp.inf), axis_name, jax.lax.pmin)


def sum_of_squares(tree: Any, *, axis_name: AxisName = None) -> jax.Array:
    r""":math:`\sum_i |x_i|^2` over every element of every leaf, in float32 (or wider).

    The per-leaf partial sums are stacked and reduced once, so the reduction is balanced rather
    than a chain of ``len(leaves)`` dependent additions. With ``axis_name``, the partial sums of
    the shards are added over that named axis (``lax.psum``).

    Args:
        tree: any tree of arrays.
        axis_name: a named axis over which the leaves are shards; ``None`` (default) for none.

    Returns:
        A scalar array in float32 or wider.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> float(og.tree.sum_of_squares({"a": jnp.array([3.0]), "b": jnp.array([[4.0]])}))
        25.0
    """
    return _across(_combine(_sum_of_squares_parts(tree), jnp.sum, 0.0), axis_name, jax.lax.psum)


def _sum_of_squares_parts(tree: Any) -> list[jax.Array]:
    """:math:`\\sum_i |x_i|^2` of each leaf, each leaf behind its own optimization barrier.

    Without the barrier, XLA's common-subexpression elimination merges the ``x * x`` here with
    an identical ``x * x`` elsewhere in the step (Adam's second moment squares the same
    gradients); the shared product then has two consumers, so XLA:CPU writes it out as a
    tree-sized temporary instead of fusing it into the reduction, and that temporary is freshly
    allocated and page-faulted at every call: in a jitted AdamW step on a 40M-parameter tree a
    global norm of the gradients cost +110% instead of the +10% of one more read of them. The
    barrier leaves the values (and ``jax.grad``, ``vmap``, collectives) unchanged.
    """
    leaves = [jax.lax.optimization_barrier(x) for x in _leaves(tree)]
    return [jnp.sum(abs_sq(x), dtype=_acc_dtype(x.real.dtype)) for x in leaves]


def norm(
    tree: Any,
    ord: float | int | str | None = 2,  # noqa: A002 - numpy's name
    *,
    squared: bool = False,
    axis_name: AxisName = None,
) -> jax.Array:
    r"""The norm of all the elements of a tree taken as one vector.

    .. math:: \lVert x \rVert_p = \Big(\sum_i |x_i|^p\Big)^{1/p}, \qquad
              \lVert x \rVert_\infty = \max_i |x_i|

    ``ord`` is ``2`` (default; ``None`` means 2 as in Optax), any positive number, or ``inf`` /
    ``"inf"`` for the largest absolute value. Matches ``torch.nn.utils.get_total_norm`` for the
    same ``norm_type``. ``squared=True`` returns :math:`\lVert x\rVert_p^2` (without a square
    root for ``ord=2``). With ``axis_name``, leaves are shards of a larger tree and the norm is
    the one of the whole tree (partial sums ``psum``-ed, maxima ``pmax``-ed over the axis).

    Args:
        tree: any tree of arrays.
        ord: the order :math:`p` (default 2), or ``inf`` / ``"inf"``.
        squared: return the norm squared (default ``False``).
        axis_name: a named axis over which the leaves are shards; ``None`` (default) for none.

    Returns:
        A scalar array (float32 or wider).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> float(og.tree.norm({"a": jnp.array([3.0]), "b": jnp.array([-4.0])}))
        5.0
        >>> float(og.tree.norm({"a": jnp.array([3.0]), "b": jnp.array([-4.0])}, 1))
        7.0
    """
    if ord is None or ord == 2:
        total = sum_of_squares(tree, axis_name=axis_name)
        return total if squared else jnp.sqrt(total)
    if ord in ("inf", float("inf")):
        parts = [jnp.max(jnp.abs(x)).astype(_acc_dtype(x.real.dtype)) for x in _leaves(tree)]
        value = _across(_combine(parts, jnp.max, 0.0), axis_name, jax.lax.pmax)
    else:
        try:
            p = float(ord)
        except (TypeError, ValueError):
            p = float("nan")
        if not p > 0:
            raise ValueError(
                f"optgrad.tree.norm(ord=...) must be positive, 'inf' or None, got ord={ord!r}"
            )

        def leaf(x):
            a = jnp.abs(x).astype(_acc_dtype(x.real.dtype))
            return jnp.sum(a if p == 1 else a**p)

        parts = [leaf(x) for x in _leaves(tree)]
        total = _across(_combine(parts, jnp.sum, 0.0), axis_name, jax.lax.psum)
        value = total if p == 1 else total ** (1.0 / p)
    return value * value if squared else value
