"""``optgrad-train``: train a Flax model on a scikit-learn dataset with several optimizers.

The main job of the project, as a command (``optgrad-train``, ``python -m optgrad.train``):
a Flax ``nnx`` MLP is trained on one of the datasets bundled in scikit-learn (nothing is
downloaded) with each chosen optimizer and schedule, and the runs are compared in a table, a
PNG plot of the curves and TensorBoard event files. Run ``optgrad-train --help``. It needs the
``examples`` extra: ``pip install "optgrad[examples]"``.

Importing this package is cheap: Flax, scikit-learn, tqdm, matplotlib and tensorboardX are
imported only when :func:`main` runs.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Runs ``optgrad-train`` with the command-line arguments ``argv`` (``sys.argv`` if None).

    Returns the exit status (0). See ``optgrad-train --help`` for the arguments.
    """
    from ._cli import main as cli_main

    return cli_main(argv)
