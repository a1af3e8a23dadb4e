"""Working with Optax."""

from __future__ import annotations

from typing import Any

from ._base import GradientTransformation


def to_optax(tx: GradientTransformation) -> Any:
    """``tx`` as an ``optax.GradientTransformationExtraArgs``.

    ``optax.chain`` passes extra keyword arguments (``value=loss``, ...) only to members of its
    own extra-args type and drops them for every other object, so an optgrad transformation
    that reads extra arguments needs this adapter inside ``optax.chain``. Without extra
    arguments optgrad transformations work in Optax as they are. Optax is imported here and
    nowhere else: it is not a dependency of optgrad.

    Args:
        tx: the optgrad transformation to wrap.

    Returns:
        An ``optax.GradientTransformation`` with the same ``init`` and ``update``.

    Example:
        >>> import optax, optgrad as og
        >>> tx = optax.chain(og.to_optax(og.clip_by_global_norm(1.0)), optax.sgd(0.1))
    """
    import optax

    return optax.GradientTransformationExtraArgs(tx.init, tx.update)
