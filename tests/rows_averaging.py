"""Conformance rows: optimizers wrapped in parameter averaging and lookahead."""

from __future__ import annotations

import optgrad as og  # noqa: F401 - rows use it
from tests._row import Row

ROWS: list[Row] = []
