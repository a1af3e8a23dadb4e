"""Shardings of an optimizer state, derived from those of the params (and ZeRO-1)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec, Sharding

from .tree._state import map_params

_CALL = "optgrad.state_shardings"


def _is_sharding_leaf(x: Any) -> bool:
    return isinstance(x, (Sharding, PartitionSpec)) or x is None


def _find_mesh(shardings: list[Any], mesh: Mesh | None) -> Mesh | None:
    if mesh is not None:
        return mesh
    for s in shardings:
        if isinstance(s, NamedSharding):
            return s.mesh
    return None


def _padded(spec: PartitionSpec, ndim: int) -> list[Any]:
    entries = list(spec)
    return entries + [None] * (ndim - len(entries))


def _axis_names(entry: Any) -> tuple[str, ...]:
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def _zero_spec(shape: Sequence[int], spec: list[Any], mesh: Any, axes: tuple[str, ...]):
    """``spec`` with ``axes`` added on the largest dimension not yet sharded that they divide."""
    used = {name for entry in spec for name in _axis_names(entry)}
    if used & set(axes):
        return spec
    ways = math.prod(mesh.shape[a] for a in axes)
    free = [d for d, n in enumerate(shape) if spec[d] is None and n % ways == 0 and n >= ways]
    if not free:
        return spec
    dim = max(free, key=lambda d: (shape[d], -d))
    spec = list(spec)
    spec[dim] = axes[0] if len(axes) == 1 else axes
    return spec


def state_shardings(
    tx: Any,
    params: Any,
    shardings: Any = None,
    *,
    mesh: Mesh | None = None,
    zero_axis: str | Sequence[str] | None = None,
) -> Any:
    r"""The shardings of ``tx``'s state for params placed with ``shardings``.

    The state's shapes come from ``jax.eval_shape(tx.init, params)`` (nothing is computed or
    allocated). Each state leaf that mirrors a parameter (moments, traces: found with
    :func:`optgrad.tree.map_params`) gets that parameter's sharding; a mirroring leaf with
    extra leading dimensions (L-BFGS's history ``[m, *shape]``) gets the parameter's
    ``PartitionSpec`` behind unsharded leading dimensions; a mirroring leaf of another shape (a
    factored second moment of Adafactor or SM3) and every other leaf (step counts,
    hyperparameters, scalars) is replicated over the mesh.

    Pass the result as ``out_shardings`` of a jitted ``tx.init`` or train step, or to
    ``jax.device_put``. With Auto mesh axes a jitted ``init`` otherwise lets the compiler
    place the zeros (often replicated); with Explicit axes, and for an ``init`` called outside
    ``jit`` on placed params, the state already has these shardings.

    **ZeRO-1** (``zero_axis``): the optimizer state is additionally sharded over the
    data-parallel mesh axis (or tuple of axes) while the params stay replicated over it
    (Rajbhandari et al., 2020, stage 1). Each mirroring leaf is split along its largest
    dimension that is not sharded yet and that the axis size divides; a leaf with no such
    dimension (e.g. a bias of 10 entries on 8 devices), and any leaf already sharded over that
    axis, keeps the placement above. Each device then holds about :math:`1/n` of the state.
    Jit the train step with these as the state's ``in_shardings``/``out_shardings`` and the
    params' own (replicated) shardings for the params: XLA computes each state shard on its
    device and all-gathers the updated params.

    Args:
        tx: the optimizer (anything with ``init``).
        params: the params, as arrays or ``jax.ShapeDtypeStruct`` (only shapes and dtypes are
            read, and the shardings if ``shardings`` is not given).
        shardings: a tree like ``params`` of ``jax.sharding.Sharding`` (or ``PartitionSpec``
            with ``mesh``). Default: each param's ``.sharding``.
        mesh: the mesh for replicated leaves and ``PartitionSpec`` entries. Default: the mesh of
            the first ``NamedSharding`` among ``shardings``.
        zero_axis: the data-parallel mesh axis name(s) to shard the state over (ZeRO-1).

    Returns:
        A tree with the structure of ``tx.init(params)`` whose leaves are ``Sharding`` objects.

    References:
        Rajbhandari, Rasley, Ruwase & He, "ZeRO: Memory Optimizations Toward Training Trillion
        Parameter Models" (SC 2020).

    Example:
        >>> import jax, jax.numpy as jnp, optgrad as og
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((1,), ("data",))
        >>> params = {"w": jax.device_put(jnp.zeros((4, 2)), NamedSharding(mesh, P()))}
        >>> tx = og.adam(1e-3)
        >>> specs = og.state_shardings(tx, params, zero_axis="data")
        >>> specs.inner_state[0].mu["w"].spec, specs.inner_state[0].count.spec
        (P('data', None), P())
    """
    if not hasattr(tx, "init"):
        raise TypeError(f"{_CALL}: `tx` must be an optimizer with `init`, got {tx!r}")
    if shardings is None:
        try:
            shardings = jax.tree.map(lambda p: p.sharding, params)
        except AttributeError as err:
            raise ValueError(
                f"{_CALL}: `shardings` is not given and a param has no `.sharding` ({err}). "
                "Pass placed arrays, `jax.ShapeDtypeStruct(..., sharding=...)`, or `shardings`."
            ) from err
    flat = jax.tree.leaves(shardings, is_leaf=_is_sharding_leaf)
    mesh = _find_mesh(flat, mesh)
    zero_axes = (zero_axis,) if isinstance(zero_axis, str) else tuple(zero_axis or ())
    if zero_axes and mesh is None:
        raise ValueError(f"{_CALL}(zero_axis={zero_axis!r}) needs a mesh: pass `mesh=`")
    for axis in zero_axes:
        if axis not in mesh.shape:
            raise ValueError(
                f"{_CALL}(zero_axis=...) must name axes of the mesh {dict(mesh.shape)}, "
                f"got zero_axis={zero_axis!r}"
            )

    if mesh is not None:
        replicated: Sharding = NamedSharding(mesh, PartitionSpec())
    else:
        devices = {d for s in flat if isinstance(s, Sharding) for d in s.device_set}
        if len(devices) > 1:
            raise ValueError(
                f"{_CALL}: the params' shardings are not `NamedSharding`s, so there is no mesh "
                "to replicate scalars over; pass `mesh=`."
            )
        device = devices.pop() if devices else jax.devices()[0]
        replicated = jax.sharding.SingleDeviceSharding(device)

    def as_sharding(s: Any) -> Any:
        if isinstance(s, PartitionSpec):
            if mesh is None:
                raise ValueError(f"{_CALL}: `PartitionSpec` shardings need `mesh=`")
            return NamedSharding(mesh, s)
        return s

    shardings = jax.tree.map(as_sharding, shardings, is_leaf=_is_sharding_leaf)
    shapes = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    abstract_state = jax.eval_shape(tx.init, shapes)

    def spec_for(shape: tuple[int, ...], spec: list[Any]) -> Sharding:
        if zero_axes:
            spec = _zero_spec(shape, spec, mesh, zero_axes)
        return NamedSharding(mesh, PartitionSpec(*spec))

    def mirrored(leaf: Any, param: Any, sharding: Any) -> Sharding:
        if not leaf.shape:
            return replicated
        named = isinstance(sharding, NamedSharding)
        if leaf.shape == tuple(param.shape):
            if not named:
                return sharding if sharding is not None else replicated
            spec = _padded(sharding.spec, len(param.shape))
        elif named and leaf.shape[len(leaf.shape) - len(param.shape) :] == tuple(param.shape):
            extra = len(leaf.shape) - len(param.shape)
            spec = [None] * extra + _padded(sharding.spec, len(param.shape))
        else:
            spec = [None] * len(leaf.shape)
        return spec_for(leaf.shape, spec) if mesh is not None else replicated

    treedef = jax.tree.structure(shapes)
    param_leaves = list(zip(jax.tree.leaves(shapes), treedef.flatten_up_to(shardings)))

    def mirror(value: Any, _: Any) -> Any:
        # A whole subtree that mirrors the params; its part for one parameter may itself be a
        # tree (SM3 keeps a list of accumulators per parameter, `masked` an empty node).
        try:
            parts = treedef.flatten_up_to(value)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"{_CALL}: a part of the state that mirrors the params does not have their "
                f"structure.\n  params: {treedef}\n  state part: {jax.tree.structure(value)}"
            ) from err
        done = [
            jax.tree.map(lambda leaf, p=p, s=s: mirrored(leaf, p, s), part)
            for part, (p, s) in zip(parts, param_leaves)
        ]
        return treedef.unflatten(done)

    return map_params(
        tx,
        mirror,
        abstract_state,
        shapes,
        transform_non_params=lambda _: replicated,
        is_leaf=lambda _: True,
    )
