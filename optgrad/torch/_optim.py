"""What the optimizers of ``optgrad.torch`` share: ``maximize``, the momentum switch, the checks.

torch's ``foreach``, ``fused``, ``capturable`` and ``differentiable`` are accepted by every
optimizer here and have no effect: under ``jax.jit`` XLA fuses the whole step into a few kernels
(what ``foreach``/``fused`` buy in torch), the step count is a device array and nothing syncs
with the host (``capturable``), and ``update`` is a pure function that ``jax.grad`` can
differentiate (``differentiable``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from .. import _check
from .._base import GradientTransformation
from .._combine import _check_state, chain
from .._scale import scale


def maximize_first(maximize: bool) -> list[GradientTransformation]:
    """``[g -> -g]`` when ``maximize``, else ``[]``: torch negates the gradient before anything
    else, weight decay included."""
    return [scale(-1.0)] if maximize else []


def keeps_buffer(momentum: Any) -> bool:
    """Whether a momentum buffer is kept, decided once from the value given to the factory.

    torch keeps ``momentum_buffer`` only when ``momentum != 0``. A schedule (or a traced value)
    keeps the buffer, since it may be non-zero later.
    """
    return _check.concrete_float(momentum) != 0.0


def check_betas(call: str, betas: Any) -> tuple[Any, Any]:
    """``betas`` as a tuple of two numbers (or schedules), each in ``[0, 1)``."""
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(
            f"{call}(betas=...) must be a pair (beta1, beta2), e.g. betas=(0.9, 0.999), "
            f"got betas={betas!r}"
        )
    for i, beta in enumerate(betas):
        _check.scalar_or_schedule(call, "betas", beta)
        x = _check.concrete_float(beta)
        if x is not None and not 0.0 <= x < 1.0:
            raise ValueError(f"{call}(betas=...) must be in [0, 1), got betas[{i}]={beta!r}")
    return tuple(betas)


def addcdiv_step(
    call: str,
    prefix: Sequence[GradientTransformation],
    accumulator: GradientTransformation,
    learning_rate: GradientTransformation,
    denominator: Callable[[Any], Any],
) -> GradientTransformation:
    r"""``chain(*prefix, accumulator, learning_rate)``, with the step divided last, as torch does.

    torch ends Adagrad and RMSprop with ``param.addcdiv_(grad, denom, value=-lr)``, which
    computes :math:`(-\eta g) / d`; the chain computes :math:`-\eta (g / d)`. Here the
    accumulator is run for its new state only (XLA drops the direction it also computes), the
    learning-rate transform scales the gradient, and the result is divided by
    ``denominator(new accumulator state)``. The state is exactly the chain's.

    Two reasons. The rounding is torch's. And XLA:CPU, when a division reads the coupled
    weight-decay gradient :math:`g + \lambda\theta` directly, writes that gradient out as a
    parameter-sized temporary instead of recomputing it in the accumulator's loop and the
    parameter loop (it recomputes it when the division reads a product with a scalar), which
    costs a write and a read per parameter every step.

    Args:
        call: the public name, for error messages.
        prefix: the transformations before the accumulator (``maximize``, weight decay).
        accumulator: the transformation whose state holds the denominator's statistics.
        learning_rate: ``scale_by_learning_rate(...)``.
        denominator: new accumulator state -> tree of denominators, shaped like the updates.
    """
    reference = chain(*prefix, accumulator, learning_rate)
    k = len(prefix)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _check_state(call, state, k + 2, tuple)
        new_state = []
        for tx, s in zip(prefix, state[:k]):
            updates, s = tx.update(updates, s, params)
            new_state.append(s)
        _, accumulated = accumulator.update(updates, state[k], params)
        scaled, lr_state = learning_rate.update(updates, state[k + 1], params)
        updates = jax.tree.map(
            lambda u, d: (u / d).astype(u.dtype), scaled, denominator(accumulated)
        )
        return updates, (*new_state, accumulated, lr_state)

    return GradientTransformation(reference.init, update_fn)
