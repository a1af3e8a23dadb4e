"""Conformance rows: L-BFGS and line searches.

Every row reads ``value=``, ``grad=``, ``value_fn=`` (``needs_value``) except L-BFGS without a
line search; rows whose ``update`` runs a ``lax.while_loop`` are not differentiable. L-BFGS keeps
a history of differences (a leading memory axis), declared as ``factored_state``.
"""

from __future__ import annotations

import optgrad as og
from tests._row import Row

ROWS: list[Row] = [
    Row(
        "lbfgs",
        lambda lr: og.lbfgs(lr),
        1.0,
        steps=30,
        rosenbrock_steps=60,
        rosenbrock_tol=1e-3,
        needs_value=True,
        differentiable=False,
        factored_state=True,
    ),
    Row(
        "lbfgs_backtracking",
        lambda lr: og.lbfgs(
            lr,
            memory_size=5,
            linesearch=og.scale_by_backtracking_linesearch(
                30, increase_factor=float("inf"), store_grad=True
            ),
        ),
        1.0,
        steps=60,
        rosenbrock_steps=300,
        rosenbrock_tol=1e-2,
        needs_value=True,
        differentiable=False,
        factored_state=True,
    ),
    Row(
        "lbfgs_no_linesearch",
        lambda lr: og.lbfgs(lr, memory_size=5, linesearch=None),
        0.5,
        rosenbrock_lr=0.05,
        steps=100,
        factored_state=True,
    ),
    Row(
        "torch.LBFGS",
        lambda lr: og.torch.LBFGS(lr, max_iter=5, history_size=10),
        0.5,
        rosenbrock_lr=0.05,
        steps=40,
        rosenbrock_steps=400,
        needs_value=True,
        differentiable=False,
        factored_state=True,
    ),
    Row(
        "torch.LBFGS_strong_wolfe",
        lambda lr: og.torch.LBFGS(lr, max_iter=5, history_size=10, line_search_fn="strong_wolfe"),
        1.0,
        steps=20,
        rosenbrock_steps=40,
        rosenbrock_tol=1e-3,
        needs_value=True,
        differentiable=False,
        factored_state=True,
    ),
]
