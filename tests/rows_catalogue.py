"""Conformance rows: the rest of the Optax-named catalogue."""

from __future__ import annotations

import optgrad as og  # noqa: F401 - rows use it
from tests._row import Row

ROWS: list[Row] = []
