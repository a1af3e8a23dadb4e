"""One row of the conformance registry (see ``tests/registry.py``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import optgrad as og


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    make: Callable[[Any], og.GradientTransformation]
    """Builds the optimizer from a learning rate (a float or a schedule)."""
    lr: float
    """A learning rate that converges on the quadratic and Rosenbrock problems."""
    rosenbrock_lr: float | None = None
    """A learning rate for Rosenbrock, if different (``None``: use ``lr``)."""
    steps: int = 500
    rosenbrock_steps: int = 3000
    rosenbrock_tol: float = 0.05
    """Distance from the minimum (1, 1) after ``rosenbrock_steps``."""

    complex_ok: bool = False
    """The algorithm is defined for complex parameters (the conformance suite then checks it)."""
    needs_value: bool = False
    """``update`` reads ``value=``, ``grad=`` and ``value_fn=`` (line searches, Polyak)."""
    differentiable: bool = True
    """``jax.grad`` flows through ``update`` (false for ``while_loop`` line searches)."""
    factored_state: bool = False
    """State leaves may be factored (row/column statistics) rather than parameter-shaped."""
    quadratic_tol: float = 1e-3
    """Loss after ``steps`` relative to the start, on the quadratic."""
    f16_ok: bool = True
    """A zero-gradient float16 step stays finite (every optimizer should; Optax #1754)."""

    def __str__(self) -> str:
        return self.name
