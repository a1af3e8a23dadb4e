"""Conformance rows: optimizers wrapped in parameter averaging and lookahead.

``lookahead`` works on ``LookaheadParams(fast, slow)``, not on the plain parameter trees the
suite passes, so its row runs it through :func:`on_plain_params`: a test-only adapter that
keeps the slow weights in its state and hands the fast ones to the caller. The suite's checks
(jit without recompiling, dtypes, state structure, ``jax.grad``, ...) then exercise
``lookahead`` itself; only the bookkeeping of the slow weights is the adapter's.
"""

from __future__ import annotations

from typing import Any

import jax

import optgrad as og
from tests._row import Row


def on_plain_params(tx: Any, params_type: Any = og.LookaheadParams) -> og.GradientTransformation:
    """``tx`` (a lookahead over ``params_type(fast, slow)``) as a transformation of the fast
    params alone; the state is ``(tx's state, slow params)``. ``params_type`` may be
    ``optax.LookaheadParams`` to run Optax's lookahead the same way."""

    def init_fn(params):
        return tx.init(params_type(fast=params, slow=params)), params

    def update_fn(updates, state, params=None, **extra_args):
        inner, slow = state
        both, inner = tx.update(updates, inner, params_type(fast=params, slow=slow), **extra_args)
        slow = jax.tree.map(lambda s, u: (s + u).astype(s.dtype), slow, both.slow)
        return both.fast, (inner, slow)

    return og.GradientTransformation(init_fn, update_fn)


ROWS: list[Row] = [
    Row(
        "lookahead_adam",
        lambda lr: on_plain_params(og.lookahead(og.adam(lr), sync_period=5, slow_step_size=0.5)),
        0.1,
        rosenbrock_lr=0.04,
        complex_ok=True,
    ),
    Row(
        "ema_params_adamw",
        lambda lr: og.ema_params(og.adamw(lr, weight_decay=1e-5), decay=0.99),
        0.05,
        rosenbrock_lr=0.02,
        complex_ok=True,
    ),
    Row(
        "swa_params_sgd_momentum",
        lambda lr: og.swa_params(og.sgd(lr, momentum=0.9), start_step=10, every_k_steps=2),
        0.05,
        rosenbrock_lr=5e-4,
        complex_ok=True,
    ),
]
