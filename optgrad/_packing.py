"""Packed parameters: a model's many leaves kept as a few contiguous buffers.

XLA on CPU compiles and launches at least one kernel per output array, so an optimizer step
over a tree of thousands of small leaves pays for thousands of kernels: tens of milliseconds
of compilation each and ~15 us of launch each per step. Packing the leaves once, at the start
of training, into one buffer per dtype (or per user-chosen group) makes every optimizer see a
handful of large leaves instead; the model reads its parameters through :func:`unpack`, whose
gradient is a single concatenation. Nothing is copied per step that the model would not read
anyway.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Params

GroupFn = Callable[[str, Any], str]


@dataclasses.dataclass(frozen=True)
class _Slot:
    """Where one leaf of the original tree lives: its group, offset and shape."""

    group: str
    offset: int
    shape: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class PackSpec:
    """The static layout of a :class:`Packed` tree: hashable, so it is part of the treedef."""

    treedef: Any
    slots: tuple[_Slot, ...]
    groups: tuple[str, ...]
    sizes: tuple[int, ...]
    dtypes: tuple[str, ...]

    def group_slots(self, group: str) -> list[tuple[int, _Slot]]:
        return [(i, s) for i, s in enumerate(self.slots) if s.group == group]


@jax.tree_util.register_pytree_with_keys_class
class Packed:
    """Parameters packed into one flat buffer per group (by default, per dtype).

    A pytree whose leaves are the buffers, keyed by group name, so every optimizer, mask and
    ``og.tree`` tool works on it as on any tree: state mirrors the buffers. Read the original
    tree back with :func:`unpack` (inside the loss function, so gradients come back packed).

    Args:
        buffers: the flat buffers, keyed by group name.
        spec: the static layout (:class:`PackSpec`) that maps them back to the original tree.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> packed = og.pack({"a": jnp.ones(2), "b": jnp.zeros(3)})
        >>> packed.groups
        ('float32',)
    """

    def __init__(self, buffers: dict[str, Any], spec: PackSpec):
        self.buffers = dict(buffers)
        self.spec = spec

    @property
    def groups(self) -> tuple[str, ...]:
        """The group names, in buffer order."""
        return self.spec.groups

    def tree_flatten_with_keys(self):
        children = [(jax.tree_util.DictKey(g), self.buffers[g]) for g in self.spec.groups]
        return children, self.spec

    def tree_flatten(self):
        return [self.buffers[g] for g in self.spec.groups], self.spec

    @classmethod
    def tree_unflatten(cls, spec: PackSpec, children):
        return cls(dict(zip(spec.groups, children)), spec)

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{g}: {d}[{n}]" for g, d, n in zip(self.spec.groups, self.spec.dtypes, self.spec.sizes)
        )
        return f"Packed({len(self.spec.slots)} leaves in {{{parts}}})"


def _path_name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)


def pack(params: Params, groups: GroupFn | None = None) -> Packed:
    r"""Packs a tree of arrays into one contiguous buffer per group.

    Leaves are raveled and laid end to end in tree order. Without ``groups`` there is one
    buffer per dtype (named after it); with ``groups(path, leaf) -> label`` leaves are grouped
    by label (and by dtype within a label: ``"label:dtype"`` when a label holds several), so a
    mask or :func:`optgrad.partition` can still treat, say, biases differently.

    Concrete arrays are packed on the host (no XLA compilation, whatever the number of
    shapes); inside ``jit`` the packing is a concatenation.

    Args:
      params: a tree of arrays (or anything with ``shape`` and ``dtype``).
      groups: optional ``(path, leaf) -> str``; ``path`` is ``/``-separated (``"dense/bias"``).

    Returns:
      a :class:`Packed` tree; :func:`unpack` returns the original tree.

    Example:
      >>> import jax.numpy as jnp, optgrad as og
      >>> params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
      >>> packed = og.pack(params)
      >>> packed
      Packed(2 leaves in {float32: float32[9]})
      >>> og.unpack(packed)["w"].shape
      (2, 3)
      >>> by_kind = og.pack(params, groups=lambda path, x: "matrix" if x.ndim > 1 else "vector")
      >>> by_kind.groups
      ('vector', 'matrix')
    """
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(params)
    if not leaves_with_paths:
        raise ValueError("optgrad.pack(params) needs at least one array leaf, got an empty tree")
    labels = []
    for path, leaf in leaves_with_paths:
        dtype = jnp.dtype(leaf.dtype).name
        label = dtype if groups is None else groups(_path_name(path), leaf)
        if not isinstance(label, str):
            raise TypeError(
                f"optgrad.pack(groups=...) must return a str for every leaf, got {label!r} "
                f"for {_path_name(path)!r}"
            )
        labels.append((label, dtype))
    mixed = {lab for lab, _ in labels if len({d for l2, d in labels if l2 == lab}) > 1}
    names = [f"{lab}:{d}" if lab in mixed else lab for lab, d in labels]
    order = list(dict.fromkeys(names))
    offsets = dict.fromkeys(order, 0)
    slots = []
    for name, (_, leaf) in zip(names, leaves_with_paths):
        shape = tuple(int(d) for d in np.shape(leaf))
        slots.append(_Slot(name, offsets[name], shape))
        offsets[name] += int(np.prod(shape, dtype=np.int64))
    dtypes = {name: d for name, (_, d) in zip(names, labels)}
    spec = PackSpec(
        treedef,
        tuple(slots),
        tuple(order),
        tuple(offsets[g] for g in order),
        tuple(dtypes[g] for g in order),
    )
    leaves = [leaf for _, leaf in leaves_with_paths]
    traced = any(isinstance(x, jax.core.Tracer) for x in leaves)
    buffers = {}
    for group in order:
        parts = [leaves[i] for i, _ in spec.group_slots(group)]
        if traced:
            buffers[group] = jnp.concatenate([jnp.ravel(x) for x in parts])
        else:
            host = np.concatenate([np.ravel(np.asarray(x)) for x in parts])
            buffers[group] = jax.device_put(host)
    return Packed(buffers, spec)


def unpack(packed: Packed) -> Params:
    """The tree that :func:`pack` packed, as views of the buffers.

    Use it inside the loss function: ``jax.grad(lambda p: loss(og.unpack(p)))(packed)`` is a
    :class:`Packed` gradient assembled by one concatenation per buffer (the transpose of the
    single ``split`` used here), whatever the number of leaves.

    Args:
      packed: a :class:`Packed` tree (params, gradients, updates or any state that mirrors
        them).

    Returns:
      the original tree structure with the original shapes.

    Example:
      >>> import jax, jax.numpy as jnp, optgrad as og
      >>> packed = og.pack({"w": jnp.ones((2, 2)), "b": jnp.ones(2)})
      >>> grads = jax.grad(lambda p: jnp.sum(og.unpack(p)["w"] ** 2))(packed)
      >>> grads.buffers["float32"].tolist()
      [0.0, 0.0, 2.0, 2.0, 2.0, 2.0]
    """
    if not isinstance(packed, Packed):
        raise TypeError(
            f"optgrad.unpack(packed) expects the Packed tree returned by optgrad.pack, got "
            f"{type(packed).__name__}"
        )
    spec = packed.spec
    leaves: list[Any] = [None] * len(spec.slots)
    for group in spec.groups:
        members = spec.group_slots(group)
        buffer = packed.buffers[group]
        sizes = [int(np.prod(s.shape, dtype=np.int64)) for _, s in members]
        pieces = jax.lax.split(jnp.asarray(buffer), sizes) if len(sizes) > 1 else [buffer]
        for (i, slot), piece in zip(members, pieces):
            leaves[i] = jnp.reshape(piece, slot.shape)
    return spec.treedef.unflatten(leaves)
