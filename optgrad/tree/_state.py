"""Walking an optimizer state: every entry with a name, and the buffers that mirror the params."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from ._access import _format, _matches, _walk


def get_all_with_path(state: Any, name: str) -> list[tuple[str, Any]]:
    """Every entry of ``state`` called ``name``, with its ``/``-separated path.

    Unlike :func:`optgrad.tree.get`, several matches are not an error: a chain holding two
    ``scale_by_adam`` has two ``count`` entries, and this lists both. ``name`` may itself be a
    path suffix (``"inner_state/0/count"``). Paths run from the root of ``state``; entries in
    the order of a depth-first walk. No match gives an empty list.

    Args:
        state: an optimizer state.
        name: the entry's name, or a ``/``-separated path suffix.

    Returns:
        A list of ``(path, value)`` pairs, empty when nothing matches.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.chain(og.scale_by_adam(), og.scale_by_adam())
        >>> [path for path, _ in og.tree.get_all_with_path(tx.init(jnp.zeros(2)), "count")]
        ['0/count', '1/count']
    """
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"optgrad.tree.get_all_with_path: a name must be a non-empty string, got {name!r}"
        )
    query = tuple(name.strip("/").split("/"))
    return [(_format(path), value) for path, value in _walk(state) if _matches(path, query)]


@jax.tree_util.register_pytree_node_class
class _Marker:
    """A tree without leaves standing in for the params: ``init`` copies it wherever the state
    mirrors the params (``jax.tree.map`` over a leafless node rebuilds the node)."""

    def tree_flatten(self):
        return (), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        del aux, children
        return cls()


def _is_marker(x: Any) -> bool:
    return isinstance(x, _Marker)


def map_params(
    initable: Any,
    fn: Callable[..., Any],
    state: Any,
    /,
    *rest: Any,
    transform_non_params: Callable[[Any], Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> Any:
    """``state`` with ``fn`` applied leafwise to every subtree that mirrors the params.

    Which subtrees mirror the params is found by calling ``initable.init`` (or ``initable``
    itself, a function ``params -> state``) on a marker object in place of the params: the
    state it returns holds the marker exactly where a real state holds a copy of the params tree
    (moments, traces...), and plain arrays elsewhere (counts, hyperparameters). ``fn(leaf,
    *rest_leaves)`` is then mapped over each mirroring subtree together with ``rest`` (trees of
    the params' structure, e.g. the params' shardings); ``transform_non_params`` (default:
    identity) is applied to every other leaf. ``is_leaf`` is passed to that ``jax.tree.map``.
    ``state`` may hold arrays or ``jax.ShapeDtypeStruct``; nothing is computed.

    The typical use: derive the shardings (or ``PartitionSpec``s) of an optimizer state from
    those of the params, for ``jax.jit(..., out_shardings=...)``.

    Args:
        initable: the :class:`optgrad.GradientTransformation` (or function
            ``params -> state``) that built ``state``.
        fn: the function applied to the leaves of each subtree that mirrors the params.
        state: the state to map over (arrays or ``jax.ShapeDtypeStruct``).
        *rest: further trees of the params' structure, passed to ``fn`` leaf by leaf.
        transform_non_params: applied to every other leaf; ``None`` (default) keeps it.
        is_leaf: passed on to ``jax.tree.map``; ``None`` by default.

    Returns:
        A tree of the structure of ``state`` with the mapped leaves.

    Example:
        >>> import jax, jax.numpy as jnp, optgrad as og
        >>> tx = og.adam(1e-3)
        >>> params = {"w": jnp.zeros((4, 2)), "b": jnp.zeros(2)}
        >>> specs = {"w": "row-sharded", "b": "replicated"}
        >>> state_specs = og.tree.map_params(
        ...     tx, lambda _, spec: spec, tx.init(params), specs,
        ...     transform_non_params=lambda _: "replicated")
        >>> state_specs.inner_state[0].mu
        {'b': 'replicated', 'w': 'row-sharded'}

    Raises:
        TypeError: ``initable`` has no ``init`` and is not callable, or its ``init`` reads
            the params' values or shapes (the marker has none); the message says how to tell.
        ValueError: ``state`` does not have the structure ``init`` gives.
    """
    init = getattr(initable, "init", initable)
    if not callable(init):
        raise TypeError(
            "optgrad.tree.map_params: `initable` must be an optimizer (with `init`) or a "
            f"function params -> state, got {type(initable).__name__}: {initable!r}"
        )
    try:
        skeleton = init(_Marker())
    except Exception as err:  # an init that looks inside the params cannot be traced this way
        raise TypeError(
            "optgrad.tree.map_params: calling `init` on a stand-in for the params failed "
            f"({type(err).__name__}: {err}). This `init` reads the params' values or shapes "
            "rather than only mapping over them, so the buffers that mirror the params cannot be "
            "located; map over the state with `jax.tree.map` instead."
        ) from err

    def leaves(value):
        return value if transform_non_params is None else jax.tree.map(transform_non_params, value)

    def walk(mark, value, path):
        if _is_marker(mark):
            return jax.tree.map(fn, value, *rest, is_leaf=is_leaf)
        if isinstance(mark, dict) and not mark and isinstance(value, dict):
            return leaves(value)  # per-leaf statistics keyed by path: not a copy of the params
        if isinstance(mark, tuple) and hasattr(mark, "_fields") and type(value) is type(mark):
            return type(mark)(
                *(walk(m, v, (*path, f)) for f, m, v in zip(mark._fields, mark, value))
            )
        if (
            isinstance(mark, (list, tuple))
            and type(value) is type(mark)
            and len(mark) == len(value)
        ):
            return type(mark)(walk(m, v, (*path, i)) for i, (m, v) in enumerate(zip(mark, value)))
        if isinstance(mark, dict) and isinstance(value, dict) and set(mark) == set(value):
            return type(value)({k: walk(mark[k], value[k], (*path, k)) for k in value})
        expected = jax.tree.structure(mark, is_leaf=_is_marker)
        try:
            parts = expected.flatten_up_to(value)
        except (ValueError, TypeError) as err:
            where = "/".join(map(str, path)) or "the top"
            raise ValueError(
                "optgrad.tree.map_params: `state` does not have the structure that "
                f"`initable.init` gives, at {where}.\n  expected: {expected}\n"
                f"  got: {jax.tree.structure(value)}\nWas `state` made by this optimizer?"
            ) from err
        marks = jax.tree.leaves(mark, is_leaf=_is_marker)
        done = [walk(m, v, path) if _is_marker(m) else leaves(v) for m, v in zip(marks, parts)]
        return jax.tree.unflatten(expected, done)

    return walk(skeleton, state, ())


def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def leaf_paths(tree: Any) -> list[str]:
    """The ``/``-separated path of every leaf of ``tree``, in ``jax.tree.leaves`` order
    (``"root"`` for a tree that is a single leaf): keys for per-leaf statistics."""
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    return ["/".join(_key_name(k) for k in p) or "root" for p in paths]
