"""Argument checks shared by the optimizer families."""

from __future__ import annotations

from typing import Any

from .. import _check


def check_learning_rate(call: str, learning_rate: Any, name: str = "learning_rate") -> None:
    _check.scalar_or_schedule(call, name, learning_rate)
    _check.non_negative(call, name, learning_rate)


def check_hyperparams(call: str, **rules: tuple[str, Any]) -> None:
    """``rules`` maps an argument name to ``(rule, value)``; rules: ``"unit"`` for ``[0, 1)``,
    ``"nonneg"`` for ``>= 0``, ``"closed_unit"`` for ``[0, 1]``, ``"lr"`` for a learning rate."""
    for name, (rule, value) in rules.items():
        _check.scalar_or_schedule(call, name, value)
        if rule == "unit":
            _check.unit_interval(call, name, value)
        elif rule == "closed_unit":
            _check.number(call, name, value, low=0.0, high=1.0)
        elif rule in ("nonneg", "lr"):
            _check.non_negative(call, name, value)
        else:  # pragma: no cover - a programming error in optgrad itself
            raise AssertionError(rule)
