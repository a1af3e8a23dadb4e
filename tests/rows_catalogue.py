"""Conformance rows: the rest of the Optax-named catalogue."""

from __future__ import annotations

import optgrad as og
from tests._row import Row


def _polyak(scaling):
    # polyak_sgd's step multiplier is called `scaling` (Optax's name), and the suite finds the
    # learning rate by the name `learning_rate`: hold it under that name around the optimizer.
    return og.with_hyperparams(
        lambda learning_rate: og.polyak_sgd(scaling=learning_rate), learning_rate=scaling
    )


ROWS: list[Row] = [
    Row(
        "adadelta",
        lambda lr: og.adadelta(lr, weight_decay=1e-6),
        3.0,
        rosenbrock_lr=0.1,
        rosenbrock_steps=50000,
        # Adadelta crawls along Rosenbrock's curved valley: its step is a ratio of two running
        # RMS averages that shrink together there. After 50,000 steps it is 0.11 from (1, 1).
        rosenbrock_tol=0.15,
        complex_ok=True,
    ),
    Row(
        "adafactor",
        # min_dim_size_to_factor=2 so that the suite's matrices are factored.
        lambda lr: og.adafactor(lr, min_dim_size_to_factor=2, momentum=0.5, weight_decay=1e-6),
        0.03,
        rosenbrock_lr=0.01,
        rosenbrock_steps=6000,
        factored_state=True,
        complex_ok=True,
    ),
    Row(
        "sm3",
        lambda lr: og.sm3(lr),
        1.0,
        rosenbrock_steps=6000,
        factored_state=True,
        complex_ok=True,
    ),
    Row("rprop", lambda lr: og.rprop(lr), 0.01),
    # Sign methods move every coordinate by the learning rate at every step: a small one (many
    # steps) to follow Rosenbrock's valley.
    Row(
        "sign_sgd",
        lambda lr: og.sign_sgd(lr),
        0.01,
        rosenbrock_lr=3e-5,
        rosenbrock_steps=100000,
        complex_ok=True,
    ),
    Row(
        "signum",
        lambda lr: og.signum(lr),
        0.01,
        rosenbrock_lr=2e-4,
        rosenbrock_steps=20000,
        complex_ok=True,
    ),
    Row(
        "noisy_sgd",
        lambda lr: og.noisy_sgd(lr, key=0),
        0.1,
        rosenbrock_lr=2e-3,
        rosenbrock_steps=10000,
        complex_ok=True,
    ),
    Row(
        "optimistic_gradient_descent",
        lambda lr: og.optimistic_gradient_descent(lr),
        0.1,
        # 2 g_t - g_{t-1} halves gradient descent's stable step on Rosenbrock's stiff valley.
        rosenbrock_lr=5e-4,
        rosenbrock_steps=30000,
        complex_ok=True,
    ),
    Row(
        "optimistic_adam_v2",
        lambda lr: og.optimistic_adam_v2(lr),
        0.03,
        rosenbrock_lr=0.01,
        rosenbrock_steps=6000,
        complex_ok=True,
    ),
    Row("polyak_sgd", _polyak, 1.0, needs_value=True, complex_ok=True),
    Row(
        "dog",
        lambda lr: og.dog(lr, weight_decay=1e-6),
        1.0,
        rosenbrock_steps=20000,
        complex_ok=True,
    ),
    Row(
        "ldog",
        lambda lr: og.with_hyperparams(
            lambda learning_rate: og.chain(
                og.scale_by_distance_over_gradients(), og.scale_by_learning_rate(learning_rate)
            ),
            learning_rate=lr,
        ),
        1.0,
        rosenbrock_steps=20000,
        complex_ok=True,
    ),
]
