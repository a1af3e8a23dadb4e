"""Trees made like another tree: constant fills, casts, dtypes and random draws."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .. import _numerics

_HANDLERS = (None, "promote", "highest", "lowest")


def _as_array_like(x: Any) -> Any:
    """Arrays and ``ShapeDtypeStruct``s as they are; Python numbers as arrays."""
    return x if hasattr(x, "shape") and hasattr(x, "dtype") else jnp.asarray(x)


def zeros_like(tree: Any, dtype: Any = None) -> Any:
    """Zeros shaped like every leaf of ``tree`` (in ``dtype``, default each leaf's own).

    Each leaf is placed like the leaf it mirrors (same sharding), and outside ``jit`` it is made
    on the host without compiling one program per shape, so this is cheap on trees with
    thousands of leaves. Works on arrays and ``jax.ShapeDtypeStruct``.

    Args:
        tree: the tree whose leaf shapes (and placements) are copied.
        dtype: the dtype of the new leaves; ``None`` (default) keeps each leaf's own.

    Returns:
        A tree of the structure of ``tree`` filled with zeros.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.zeros_like({"w": jnp.ones(2, jnp.bfloat16)})["w"].dtype
        dtype(bfloat16)
    """
    return full_like(tree, 0, dtype)


def ones_like(tree: Any, dtype: Any = None) -> Any:
    """Ones shaped like every leaf of ``tree``; see :func:`zeros_like`.

    Args:
        tree: the tree whose leaf shapes are copied.
        dtype: the dtype of the new leaves; ``None`` (default) keeps each leaf's own.

    Returns:
        A tree of the structure of ``tree`` filled with ones.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.ones_like({"w": jnp.zeros(2)})["w"].tolist()
        [1.0, 1.0]
    """
    return full_like(tree, 1, dtype)


def full_like(tree: Any, fill_value: Any, dtype: Any = None) -> Any:
    """``fill_value`` (a scalar, possibly traced) shaped like every leaf; see :func:`zeros_like`.

    Args:
        tree: the tree whose leaf shapes are copied.
        fill_value: the scalar value of every element.
        dtype: the dtype of the new leaves; ``None`` (default) keeps each leaf's own.

    Returns:
        A tree of the structure of ``tree`` filled with ``fill_value``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.full_like({"w": jnp.zeros(2)}, 3.0)["w"].tolist()
        [3.0, 3.0]
    """
    dtype = _numerics.canonical_dtype(dtype)
    tree = jax.tree.map(_as_array_like, tree)
    return _numerics.full_like(tree, fill_value, dtype)


def cast(tree: Any, dtype: Any) -> Any:
    """Every leaf cast to ``dtype``; ``dtype=None`` returns ``tree`` unchanged.

    Args:
        tree: any tree of arrays.
        dtype: the target dtype, or ``None`` to keep the tree as it is.

    Returns:
        The tree with every leaf in ``dtype``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.cast({"w": jnp.ones(2)}, jnp.bfloat16)["w"].dtype
        dtype(bfloat16)
    """
    if dtype is None:
        return tree
    return jax.tree.map(lambda x: jnp.asarray(x).astype(dtype), tree)


def cast_like(tree: Any, other_tree: Any) -> Any:
    """Every leaf of ``tree`` cast to the dtype of the matching leaf of ``other_tree``.

    Args:
        tree: the tree to cast.
        other_tree: a tree of the same structure whose leaf dtypes are copied.

    Returns:
        ``tree`` with each leaf in the dtype of its counterpart in ``other_tree``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.tree.cast_like({"w": jnp.ones(2)}, {"w": jnp.zeros(2, jnp.int32)})["w"].tolist()
        [1, 1]
    """
    def_x, def_y = jax.tree.structure(tree), jax.tree.structure(other_tree)
    if def_x != def_y:
        raise ValueError(
            "optgrad.tree.cast_like: `other_tree` must have the structure of `tree`.\n"
            f"  expected (tree): {def_x}\n  got (other_tree): {def_y}"
        )
    return jax.tree.map(lambda x, y: jnp.asarray(x).astype(jnp.result_type(y)), tree, other_tree)


def dtype(tree: Any, mixed_dtype_handler: str | None = None) -> Any:
    """The dtype of the leaves of ``tree``.

    ``mixed_dtype_handler`` says what to do when the leaves disagree: ``None`` (default) raises
    a ``ValueError``; ``"promote"`` gives their promoted dtype (``jnp.result_type``);
    ``"highest"`` / ``"lowest"`` give the leaf dtype that every other promotes to / from
    (an error if the dtypes are not ordered by promotion, e.g. int32 and uint32). A tree without
    leaves has JAX's default float dtype.

    Args:
        tree: the tree whose leaf dtype is read.
        mixed_dtype_handler: ``None`` (default), ``"promote"``, ``"highest"`` or
            ``"lowest"``, as above.

    Returns:
        A NumPy ``dtype``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tree = {"a": jnp.ones(1, jnp.bfloat16), "b": jnp.ones(1, jnp.float32)}
        >>> og.tree.dtype(tree, "lowest"), og.tree.dtype(tree, "highest")
        (dtype(bfloat16), dtype('float32'))
    """
    if mixed_dtype_handler not in _HANDLERS:
        raise ValueError(
            "optgrad.tree.dtype(mixed_dtype_handler=...) must be one of None, 'promote', "
            f"'highest', 'lowest', got mixed_dtype_handler={mixed_dtype_handler!r}"
        )
    dtypes = list(dict.fromkeys(jnp.result_type(x) for x in jax.tree.leaves(tree)))
    if not dtypes:
        return jnp.dtype(jnp.asarray(0.0).dtype)
    if len(dtypes) == 1:
        return dtypes[0]
    if mixed_dtype_handler is None:
        raise ValueError(
            f"optgrad.tree.dtype: the leaves have different dtypes {[str(d) for d in dtypes]}; "
            "pass mixed_dtype_handler='promote', 'highest' or 'lowest' to choose one"
        )
    if mixed_dtype_handler == "promote":
        return jnp.result_type(*dtypes)
    high = mixed_dtype_handler == "highest"
    for candidate in dtypes:
        if all(jnp.promote_types(candidate, d) == (candidate if high else d) for d in dtypes):
            return candidate
    raise ValueError(
        f"optgrad.tree.dtype(mixed_dtype_handler={mixed_dtype_handler!r}): the dtypes "
        f"{[str(d) for d in dtypes]} have no {mixed_dtype_handler} element under promotion; "
        "use 'promote'"
    )


def split_key_like(rng_key: jax.Array, target_tree: Any) -> Any:
    """One independent PRNG key per leaf of ``target_tree``, in a tree of its structure.

    Args:
        rng_key: the PRNG key to split.
        target_tree: the tree whose structure is copied.

    Returns:
        A tree of the structure of ``target_tree`` holding one key per leaf.

    Example:
        >>> import jax, jax.numpy as jnp, optgrad as og
        >>> keys = og.tree.split_key_like(jax.random.key(0), {"a": jnp.ones(2), "b": jnp.ones(3)})
        >>> sorted(keys)
        ['a', 'b']
    """
    treedef = jax.tree.structure(target_tree)
    keys = jax.random.split(rng_key, treedef.num_leaves)
    return jax.tree.unflatten(treedef, list(keys))


def random_like(
    rng_key: jax.Array,
    target_tree: Any,
    sampler: Callable[[jax.Array, tuple[int, ...], Any], jax.Array] = jax.random.normal,
    dtype: Any = None,
) -> Any:
    """A random tree shaped like ``target_tree``: leaf ``i`` is ``sampler(key_i, shape, dtype)``.

    Each leaf gets its own key (:func:`split_key_like`); ``dtype`` defaults to each leaf's own.
    ``sampler`` is any ``jax.random`` function with that signature (``normal``, ``uniform``,
    ``rademacher``...), or a ``functools.partial`` of one.

    Args:
        rng_key: a PRNG key, split once per leaf.
        target_tree: the tree whose structure and shapes are copied.
        sampler: a ``jax.random`` function ``(key, shape, dtype) -> array``;
            ``jax.random.normal`` by default.
        dtype: the dtype of the samples; ``None`` (default) keeps each leaf's own.

    Returns:
        A tree of the structure of ``target_tree`` holding the samples.

    Example:
        >>> import jax, jax.numpy as jnp, optgrad as og
        >>> noise = og.tree.random_like(jax.random.key(0), {"w": jnp.zeros((2, 3), jnp.bfloat16)})
        >>> noise["w"].shape, noise["w"].dtype
        ((2, 3), dtype(bfloat16))
    """
    keys = split_key_like(rng_key, target_tree)
    return jax.tree.map(
        lambda x, k: sampler(k, jnp.shape(x), dtype or jnp.result_type(x)), target_tree, keys
    )
