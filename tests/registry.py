"""The conformance registry: every optimizer optgrad ships, one row each.

A row says how to build the optimizer from a learning rate (a float or a schedule) and what it
can do; the conformance suite (``tests/test_conformance.py``) runs every row through the same
checks. Adding an optimizer adds a row here or in one of the ``tests/rows_*.py`` files (one per
family of work). Capabilities are declared in the row, never as skip lists inside the tests.
"""

from __future__ import annotations

import optgrad as og
from tests import (
    rows_adaptive,
    rows_averaging,
    rows_catalogue,
    rows_lbfgs,
    rows_torch,
    rows_wrappers,
)
from tests._row import Row

__all__ = ["REGISTRY", "Row"]


def _rows() -> list[Row]:
    rows = [
        Row(
            "sgd",
            lambda lr: og.sgd(lr),
            0.1,
            rosenbrock_lr=2e-3,
            rosenbrock_steps=6000,
            complex_ok=True,
        ),
        Row(
            "sgd_momentum",
            lambda lr: og.sgd(lr, momentum=0.9, weight_decay=1e-6),
            0.05,
            rosenbrock_lr=5e-4,
            complex_ok=True,
        ),
        Row(
            "sgd_nesterov",
            lambda lr: og.sgd(lr, momentum=0.9, nesterov=True),
            0.05,
            rosenbrock_lr=5e-4,
            complex_ok=True,
        ),
        Row("adam", lambda lr: og.adam(lr), 0.05, rosenbrock_lr=0.02, complex_ok=True),
        Row(
            "adamw",
            lambda lr: og.adamw(lr, weight_decay=1e-5),
            0.05,
            rosenbrock_lr=0.02,
            complex_ok=True,
        ),
        Row("nadam", lambda lr: og.nadam(lr), 0.05, rosenbrock_lr=0.02, complex_ok=True),
        Row(
            "amsgrad",
            lambda lr: og.amsgrad(lr),
            0.05,
            rosenbrock_lr=0.5,
            rosenbrock_steps=6000,
            complex_ok=True,
        ),
        Row(
            "rmsprop",
            lambda lr: og.rmsprop(lr),
            0.01,
            rosenbrock_lr=3e-3,
            rosenbrock_steps=6000,
            complex_ok=True,
        ),
        Row(
            "rmsprop_centered_momentum",
            lambda lr: og.rmsprop(lr, centered=True, momentum=0.5),
            0.005,
            rosenbrock_lr=5e-4,
            complex_ok=True,
        ),
        Row("adagrad", lambda lr: og.adagrad(lr), 0.5, rosenbrock_steps=6000, complex_ok=True),
        Row(
            "clip_adamw",
            lambda lr: og.chain(og.clip_by_global_norm(1.0), og.adamw(lr, weight_decay=1e-5)),
            0.05,
            rosenbrock_lr=0.02,
            complex_ok=True,
        ),
    ]
    rows += _torch_rows()
    for part in (
        rows_adaptive,
        rows_catalogue,
        rows_lbfgs,
        rows_torch,
        rows_wrappers,
        rows_averaging,
    ):
        rows += part.ROWS
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
