"""The optional packages of the ``examples`` extra, imported with an error that says what to do."""

from __future__ import annotations

import importlib
from types import ModuleType

HINT = 'pip install "optgrad[examples]"'

# import name -> distribution name, for the message.
PACKAGES = {
    "flax": "flax",
    "sklearn": "scikit-learn",
    "tqdm": "tqdm",
    "matplotlib": "matplotlib",
    "tensorboardX": "tensorboardX",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names it and the extra to install."""


def missing(modules: tuple[str, ...] = tuple(PACKAGES)) -> list[str]:
    """The distributions among ``modules`` that cannot be imported."""
    out = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            out.append(PACKAGES.get(module, module))
    return out


def require(module: str, purpose: str) -> ModuleType:
    """``import module``, or a :class:`MissingExtraError` saying ``purpose`` needs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        name = PACKAGES.get(module.split(".")[0], module)
        raise MissingExtraError(
            f"{purpose} needs {name}, an optional dependency that is not installed. "
            f"Install the examples extra: {HINT}"
        ) from error
