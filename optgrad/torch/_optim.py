"""What the optimizers of ``optgrad.torch`` share: ``maximize``, the momentum switch, the checks.

torch's ``foreach``, ``fused``, ``capturable`` and ``differentiable`` are accepted by every
optimizer here and have no effect: under ``jax.jit`` XLA fuses the whole step into a few kernels
(what ``foreach``/``fused`` buy in torch), the step count is a device array and nothing syncs
with the host (``capturable``), and ``update`` is a pure function that ``jax.grad`` can
differentiate (``differentiable``).
"""

from __future__ import annotations

from typing import Any

from .. import _check
from .._base import GradientTransformation
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
