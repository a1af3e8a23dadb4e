"""``python -m optgrad.demo``: the earlier name of the main job, now ``optgrad-train``.

It runs :func:`optgrad.train.main` with the same arguments; see ``optgrad-train --help``.
"""

from __future__ import annotations

import sys

from optgrad.train import main

if __name__ == "__main__":
    sys.exit(main())
