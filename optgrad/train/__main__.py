"""``python -m optgrad.train``: the same as the ``optgrad-train`` command."""

from __future__ import annotations

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
