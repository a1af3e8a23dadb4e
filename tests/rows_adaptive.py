"""Conformance rows: Optax-named adaptive optimizers (Adam relatives, trust-ratio family)."""

from __future__ import annotations

import jax

import optgrad as og
from tests._row import Row


def matrices_only(params):  # a mask for any params tree (Rosenbrock's included)
    return jax.tree.map(lambda x: x.ndim > 1, params)


ROWS: list[Row] = [
    Row("adamax", lambda lr: og.adamax(lr), 0.1, complex_ok=True),
    Row(
        "adamaxw",
        lambda lr: og.adamaxw(lr, weight_decay=1e-5, mask=matrices_only),
        0.1,
        complex_ok=True,
    ),
    Row("adabelief", lambda lr: og.adabelief(lr), 0.05, complex_ok=True),
    Row("adabelief_nesterov", lambda lr: og.adabelief(lr, nesterov=True), 0.05, complex_ok=True),
    Row("yogi", lambda lr: og.yogi(lr), 0.05, complex_ok=True),
    # The first four steps (rho_t < 5) are momentum SGD on the raw gradient, about 200 at
    # Rosenbrock's start: above lr = 0.006 they throw the iterate out of the valley. At 0.004
    # the adaptive phase moves ~lr per step, so it needs more steps than Adam's 3000.
    Row(
        "radam",
        lambda lr: og.radam(lr),
        0.1,
        rosenbrock_lr=0.004,
        rosenbrock_steps=10000,
        complex_ok=True,
    ),
    Row(
        "adan",
        lambda lr: og.adan(lr, weight_decay=1e-5, mask=matrices_only),
        0.05,
        complex_ok=True,
    ),
    # Sign-based: every coordinate moves by exactly lr per step, so a constant learning rate
    # ends in a cycle of amplitude ~lr around the minimum. On Rosenbrock that needs a small lr
    # (1e-3 settles within 0.002) and therefore more steps to travel the curved valley.
    Row(
        "lion",
        lambda lr: og.lion(lr, weight_decay=1e-4, mask=matrices_only),
        0.015,
        rosenbrock_lr=1e-3,
        rosenbrock_steps=10000,
        complex_ok=True,
    ),
    Row(
        "novograd",
        lambda lr: og.novograd(lr, weight_decay=1e-5, mask=matrices_only),
        0.01,
        rosenbrock_lr=0.003,
        complex_ok=True,
    ),
    # Trust ratio: each step moves a leaf by ~lr * |theta|, so near the minimum LAMB cycles at
    # that amplitude (lr = 0.01 stalls 0.15 away); after passing near the origin it also needs
    # ~log(1/|theta|)/lr steps to grow the norm back, hence lr = 0.005 over 10000 steps.
    Row(
        "lamb",
        lambda lr: og.lamb(lr, weight_decay=1e-5, mask=matrices_only),
        0.01,
        rosenbrock_lr=0.005,
        rosenbrock_steps=10000,
        complex_ok=True,
    ),
    # Optax's default trust_coefficient=1e-3 scales the step: lr = 3 is a relative step of 0.003.
    Row(
        "lars", lambda lr: og.lars(lr, weight_decay=1e-6, mask=matrices_only), 3.0, complex_ok=True
    ),
    Row("fromage", lambda lr: og.fromage(lr), 0.01, complex_ok=True),
    Row(
        "nadamw",
        lambda lr: og.nadamw(lr, weight_decay=1e-5, mask=matrices_only),
        0.05,
        rosenbrock_lr=0.02,
        complex_ok=True,
    ),
]
