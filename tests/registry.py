"""The conformance registry: every optimizer optgrad ships, one row each.

A row says how to build the optimizer from a learning rate (a float or a schedule) and what it
can do; the conformance suite (``tests/test_conformance.py``) runs every row through the same
checks. Adding an optimizer adds a row here. Capabilities are declared in the row, never as
skip lists inside the tests.
"""

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

    def __str__(self) -> str:
        return self.name


def _rows() -> list[Row]:
    rows = [
        Row("sgd", lambda lr: og.sgd(lr), 0.1, rosenbrock_lr=2e-3, rosenbrock_steps=6000),
        Row(
            "sgd_momentum",
            lambda lr: og.sgd(lr, momentum=0.9, weight_decay=1e-6),
            0.05,
            rosenbrock_lr=5e-4,
        ),
        Row(
            "sgd_nesterov",
            lambda lr: og.sgd(lr, momentum=0.9, nesterov=True),
            0.05,
            rosenbrock_lr=5e-4,
        ),
        Row("adam", lambda lr: og.adam(lr), 0.05, rosenbrock_lr=0.02),
        Row("adamw", lambda lr: og.adamw(lr, weight_decay=1e-5), 0.05, rosenbrock_lr=0.02),
        Row("nadam", lambda lr: og.nadam(lr), 0.05, rosenbrock_lr=0.02),
        Row("amsgrad", lambda lr: og.amsgrad(lr), 0.05, rosenbrock_lr=0.5, rosenbrock_steps=6000),
        Row("rmsprop", lambda lr: og.rmsprop(lr), 0.01, rosenbrock_lr=3e-3, rosenbrock_steps=6000),
        Row(
            "rmsprop_centered_momentum",
            lambda lr: og.rmsprop(lr, centered=True, momentum=0.5),
            0.005,
            rosenbrock_lr=5e-4,
        ),
        Row("adagrad", lambda lr: og.adagrad(lr), 0.5, rosenbrock_steps=6000),
        Row(
            "clip_adamw",
            lambda lr: og.chain(og.clip_by_global_norm(1.0), og.adamw(lr, weight_decay=1e-5)),
            0.05,
            rosenbrock_lr=0.02,
        ),
    ]
    rows += _torch_rows()
    return rows


def _torch_rows() -> list[Row]:
    torch_ns = og.torch
    return [
        Row(
            "torch.SGD",
            lambda lr: torch_ns.SGD(lr, momentum=0.9, dampening=0.1, weight_decay=1e-6),
            0.05,
            rosenbrock_lr=5e-4,
        ),
        Row(
            "torch.Adam_amsgrad",
            lambda lr: torch_ns.Adam(lr, amsgrad=True, weight_decay=1e-6),
            0.05,
            rosenbrock_lr=0.5,
            rosenbrock_steps=6000,
        ),
        Row(
            "torch.AdamW",
            lambda lr: torch_ns.AdamW(lr, weight_decay=1e-5),
            0.05,
            rosenbrock_lr=0.02,
        ),
        Row(
            "torch.RMSprop",
            lambda lr: torch_ns.RMSprop(lr, momentum=0.5, centered=True),
            0.005,
            rosenbrock_lr=5e-4,
            rosenbrock_tol=0.1,
        ),
        Row(
            "torch.Adagrad",
            lambda lr: torch_ns.Adagrad(lr, lr_decay=1e-4),
            0.5,
            rosenbrock_steps=6000,
        ),
    ]


REGISTRY: list[Row] = _rows()
