"""scikit-learn's bundled datasets, split and standardized (nothing is downloaded)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ._extras import require

# name -> (loader in sklearn.datasets, task, default target: test accuracy to reach, or test
# error (RMSE, in the target's units) to get under).
DATASETS = {
    "digits": ("load_digits", "classification", 0.95),
    "breast_cancer": ("load_breast_cancer", "classification", 0.96),
    "wine": ("load_wine", "classification", 0.97),
    "iris": ("load_iris", "classification", 0.95),
    "diabetes": ("load_diabetes", "regression", 58.0),
}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Standardized train/test arrays (float32 features; int32 classes or float32 targets)."""

    name: str
    task: str  # "classification" or "regression"
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_outputs: int  # classes, or 1 for regression
    y_mean: float = 0.0  # regression: targets are trained standardized; errors are reported
    y_std: float = 1.0  # in the original units

    @property
    def default_target(self) -> float:
        return DATASETS[self.name][2]

    @property
    def metric(self) -> str:
        return "test accuracy" if self.task == "classification" else "test RMSE"


def load(name: str, test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """The dataset ``name``, shuffled with ``split_seed`` and split; features standardized with
    the training statistics (constant features left at 0)."""
    datasets = require("sklearn.datasets", "optgrad-train (the datasets)")
    loader, task, _ = DATASETS[name]
    x, y = getattr(datasets, loader)(return_X_y=True)
    x = np.asarray(x, np.float64)
    order = np.random.default_rng(split_seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = round((1.0 - test_fraction) * len(x))
    mean, std = x[:cut].mean(0), x[:cut].std(0)
    x = ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
    if task == "classification":
        y = np.asarray(y, np.int32)
        return Dataset(name, task, x[:cut], y[:cut], x[cut:], y[cut:], int(y.max()) + 1)
    y = np.asarray(y, np.float64)
    y_mean, y_std = float(y[:cut].mean()), float(y[:cut].std())
    y = ((y - y_mean) / y_std).astype(np.float32)
    return Dataset(name, task, x[:cut], y[:cut], x[cut:], y[cut:], 1, y_mean, y_std)
