"""Conformance rows: optimizers wrapped in training utilities (lookahead, MultiSteps, ...)."""

from __future__ import annotations

import jax

import optgrad as og
from tests._row import Row


def _by_ndim(matrices: str, vectors: str):
    return lambda p: jax.tree.map(lambda x: matrices if x.ndim > 1 else vectors, p)


def _matrices(p):
    return jax.tree.map(lambda x: x.ndim > 1, p)


def _vectors(p):
    return jax.tree.map(lambda x: x.ndim == 1, p)


ROWS: list[Row] = [
    # Two param groups: AdamW with decay on matrices, torch's Adam on vectors (its learning
    # rate is named `lr`, so `learning_rate` names AdamW's alone). Rosenbrock's one parameter
    # is a vector: it runs the second group only.
    Row(
        "partition_adamw_torch_adam",
        lambda lr: og.partition(
            {"decay": og.adamw(lr, weight_decay=1e-5), "no_decay": og.torch.Adam(lr=lr)},
            _by_ndim("decay", "no_decay"),
        ),
        0.05,
        rosenbrock_lr=0.02,
    ),
    # Adam on the matrices, torch's SGD with momentum on the vectors.
    Row(
        "masked_adam_with_sgd",
        lambda lr: og.chain(
            og.masked(og.adam(lr), _matrices),
            og.masked(og.torch.SGD(lr=lr, momentum=0.9), _vectors),
        ),
        0.05,
        rosenbrock_lr=5e-4,
    ),
    # Two micro-steps per optimizer step: twice the steps for the same progress.
    Row(
        "multi_steps_adam_k2",
        lambda lr: og.MultiSteps(og.adam(lr), every_k_schedule=2),
        0.05,
        rosenbrock_lr=0.02,
        steps=1000,
        rosenbrock_steps=6000,
        complex_ok=True,  # accumulates complex gradients in complex64 (Optax: float32)
    ),
    Row(
        "apply_if_finite_adamw",
        lambda lr: og.apply_if_finite(og.adamw(lr, weight_decay=1e-5), max_consecutive_errors=3),
        0.05,
        rosenbrock_lr=0.02,
        complex_ok=True,
    ),
    Row(
        "selective_transform_adam",
        lambda lr: og.selective_transform(og.adam(lr), freeze_mask=False),
        0.05,
        rosenbrock_lr=0.02,
        complex_ok=True,
    ),
]
