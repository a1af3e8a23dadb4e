"""Parameter groups: ``partition`` by label, ``freeze`` and ``selective_transform``."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, NamedTuple

import jax

from ._base import GradientTransformation, set_to_zero
from ._combine import _as_transformation, _extra_args_filter
from ._masked import MaskedState, mask_tree, masked, masked_update
from ._masking import resolve_mask, static_bools


class PartitionState(NamedTuple):
    """One :class:`MaskedState` per label, keyed by label (as ``optax.PartitionState``)."""

    inner_states: dict[Hashable, Any]


def _label_set(labels: Any) -> set[Hashable]:
    return set(jax.tree.leaves(labels))


def _listing(labels: Any) -> str:
    return ", ".join(repr(k) for k in labels) or "none"


def _check_labels(call: str, labels: Any, keys: list[Hashable]) -> None:
    used = _label_set(labels)
    unknown = used - set(keys)
    if unknown:
        unused = [k for k in keys if k not in used]
        raise ValueError(
            f"{call}: some parameters are labelled with no transformation to apply.\n"
            f"  labels without a transformation: {_listing(sorted(unknown, key=repr))}\n"
            f"  transformations without a label: {_listing(unused)}\n"
            f"  transformations given:           {_listing(keys)}\n"
            "Every label in `param_labels` must be a key of `transforms`; to leave some "
            "parameters unchanged map their label to `optgrad.set_to_zero()` (frozen) or "
            "`optgrad.identity()` (raw gradient)."
        )


def _partition(
    call: str,
    transforms: Mapping[Hashable, Any],
    param_labels: Any,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformation:
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            f"{call}(transforms=...) must be a non-empty mapping from labels to "
            f"transformations, got {type(transforms).__name__}: {transforms!r}"
        )
    members = {k: _as_transformation(call, k, tx) for k, tx in transforms.items()}
    filters = {k: _extra_args_filter(tx.update) for k, tx in members.items()}
    keys = list(members)
    if not callable(param_labels):
        _check_labels(call, param_labels, keys)  # a static label tree fails at build time

    def labels_for(tree):
        labels = resolve_mask(call, param_labels, tree, what="param_labels")
        _check_labels(call, labels, keys)
        return labels

    def group_mask(labels, key):
        return static_bools(call, jax.tree.map(lambda label: label == key, labels))

    def init_fn(params):
        labels = labels_for(params)
        return PartitionState(
            {
                k: MaskedState(tx.init(mask_tree(params, group_mask(labels, k))))
                for k, tx in members.items()
            }
        )

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, PartitionState) or set(state.inner_states) != set(keys):
            got = (
                f"a PartitionState with labels {_listing(state.inner_states)}"
                if isinstance(state, PartitionState)
                else f"a {type(state).__name__}"
            )
            raise ValueError(
                f"{call}.update: expected the state made by this partition's `init` (a "
                f"PartitionState with labels {_listing(keys)}), got {got}. Was "
                "`init` called with a different optimizer?"
            )
        labels = labels_for(updates)
        new_states = {}
        for k, tx in members.items():
            updates, inner = masked_update(
                tx,
                filters[k],
                group_mask(labels, k),
                updates,
                state.inner_states[k].inner_state,
                params,
                extra_args,
                mask_compatible_extra_args,
            )
            new_states[k] = MaskedState(inner)
        return updates, PartitionState(new_states)

    return GradientTransformation(init_fn, update_fn)


def partition(
    transforms: Mapping[Hashable, Any],
    param_labels: Any,
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformation:
    r"""Parameter groups: a different transformation for each label of the parameters.

    .. math::
        u_i \leftarrow \mathrm{tx}_{\ell(i)}(u)_i

    where :math:`\ell(i)` is the label of leaf :math:`i`. Each transformation sees only its own
    leaves (the others are :class:`MaskedNode` placeholders), so it keeps state for its group
    alone, like PyTorch's ``param_groups``. Same semantics and state as ``optax.partition``.
    A label with no transformation is an error raised when the optimizer is built (labels
    given as a tree) or at ``init`` (labels given as a function); the message lists the labels
    without a transformation and the transformations without a label, to spot a misspelling.
    A transformation that labels no parameters is allowed (its state is empty).

    Args:
        transforms: a mapping from label to transformation.
        param_labels: a tree of labels with the structure of the params, or a prefix of it
            (one label for a whole subtree), or a function ``params -> such a tree``.
        mask_compatible_extra_args: also mask the extra arguments whose tree has the
            structure of the updates.

    Returns:
        A transformation whose state is a :class:`PartitionState`; read a group's
        hyperparameter by a path suffix that names the label, e.g.
        ``og.tree.get(state, "decay/inner_state/hyperparams/learning_rate")``.

    Example:
        >>> import jax, jax.numpy as jnp, optgrad as og
        >>> params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
        >>> labels = lambda p: jax.tree.map(lambda x: "decay" if x.ndim > 1 else "rest", p)
        >>> tx = og.partition({"decay": og.adamw(0.1, weight_decay=0.1), "rest": og.sgd(0.5)},
        ...                   labels)
        >>> state = tx.init(params)
        >>> float(og.tree.get(state, "rest/inner_state/hyperparams/learning_rate"))
        0.5
    """
    return _partition("optgrad.partition", transforms, param_labels, mask_compatible_extra_args)


def freeze(mask: Any) -> GradientTransformation:
    r"""Zeroes the updates of the leaves ``mask`` selects (``True``: frozen), keeping no state.

    .. math::
        u_i \leftarrow \begin{cases} 0 & m_i \\ u_i & \text{otherwise} \end{cases}

    ``masked(set_to_zero(), mask)``, as ``optax.freeze``. To also keep an optimizer from
    storing state for frozen leaves, use :func:`selective_transform`.

    Args:
        mask: a boolean, or a tree of booleans with the structure of the params (or a prefix
            of it), or a function ``params -> such a tree``. Static.

    Returns:
        A :class:`optgrad.GradientTransformation` without state.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.chain(og.sgd(1.0), og.freeze({"w": True, "b": False}))
        >>> params = {"w": jnp.ones(2), "b": jnp.ones(2)}
        >>> updates, _ = tx.update(params, tx.init(params))
        >>> updates["w"].tolist(), updates["b"].tolist()
        ([0.0, 0.0], [-1.0, -1.0])
    """
    return masked(set_to_zero(), mask)


def selective_transform(optimizer: Any, *, freeze_mask: Any) -> GradientTransformation:
    r"""Runs ``optimizer`` on the trainable leaves only; frozen leaves get zero updates.

    ``partition({"train": optimizer, "freeze": set_to_zero()}, labels)`` with the label
    ``"freeze"`` where ``freeze_mask`` is true, as ``optax.selective_transform``: the optimizer
    keeps no state for frozen leaves (Adam on a frozen backbone costs no moment buffers).

    Args:
        optimizer: the optimizer of the trainable leaves.
        freeze_mask: a boolean, or a tree of booleans (``True``: frozen) with the structure
            of the params or a prefix of it, or a function ``params -> such a tree``. Static.

    Returns:
        A :class:`optgrad.GradientTransformation` that keeps state only for the unfrozen leaves.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.selective_transform(og.adam(0.1), freeze_mask={"w": True, "b": False})
        >>> state = tx.init({"w": jnp.ones(3), "b": jnp.ones(2)})
        >>> state.inner_states["train"].inner_state.inner_state[0].mu
        {'b': Array([0., 0.], dtype=float32), 'w': MaskedNode()}
    """

    def labels(params):
        frozen = resolve_mask("optgrad.selective_transform", freeze_mask, params, "freeze_mask")
        return jax.tree.map(lambda m: "freeze" if m else "train", frozen)

    return _partition(
        "optgrad.selective_transform", {"train": optimizer, "freeze": set_to_zero()}, labels
    )
