"""Conformance rows: optgrad.torch optimizers beyond SGD/Adam/AdamW/RMSprop/Adagrad."""

from __future__ import annotations

import optgrad as og  # noqa: F401 - rows use it
from tests._row import Row

ROWS: list[Row] = []
