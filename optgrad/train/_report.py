"""The reports: a table on the terminal, a PNG of the curves, TensorBoard events, JSON."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from ._extras import require
from ._loop import RunResult

# The TensorBoard tag of each curve.
TAGS = {
    "loss": "train/loss",
    "test_metric": "test/{metric}",
    "learning_rate": "optim/learning_rate",
    "grad_norm": "optim/grad_norm",
    "clipped_grad_norm": "optim/grad_norm_clipped",
    "update_ratio": "optim/update_param_ratio",
}


class EventWriter:
    """TensorBoard event files for one run (``tensorboardX``, no TensorFlow needed)."""

    def __init__(self, logdir: str, metric: str):
        tensorboardx = require("tensorboardX", "optgrad-train (TensorBoard event files)")
        self.writer = tensorboardx.SummaryWriter(logdir=logdir)
        self.tags = {k: v.format(metric=metric.replace("test ", "")) for k, v in TAGS.items()}
        self.done = 0

    def write(self, records: dict[str, np.ndarray]) -> None:
        n = len(records["loss"])
        for name, tag in self.tags.items():
            for i, value in enumerate(np.asarray(records[name], np.float64)):
                self.writer.add_scalar(tag, float(value), self.done + i + 1)
        self.done += n

    def close(self) -> None:
        self.writer.close()


def _fmt(value: float, spec: str, std: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = format(value, spec)
    return f"{text}±{format(std, spec)}" if std else text


def table(summaries: dict[str, dict[str, Any]], metric: str, target: float) -> str:
    """The comparison table, one row per optimizer (means over the seeds)."""
    better = ">=" if "accuracy" in metric else "<="
    header = [
        "optimizer",
        "schedule",
        "train loss",
        metric,
        f"steps to {better}{target:g}",
        "time to target s",
        "compile s",
        "train s",
    ]
    rows = []
    for label, s in summaries.items():
        spec = ".3f" if "accuracy" in metric else ".2f"
        reached = _fmt(s["steps_to_target"], ".0f")
        if s["seeds"] > 1 and s["reached"]:
            reached += f" ({s['reached']}/{s['seeds']})"
        rows.append(
            [
                label,
                s["schedule"],
                _fmt(s["train_loss"], ".4f", s["train_loss_std"]),
                _fmt(s["test_metric"], spec, s["test_metric_std"]),
                reached,
                _fmt(s["time_to_target_s"], ".2f"),
                _fmt(s["compile_s"], ".2f"),
                _fmt(s["train_s"], ".2f"),
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _ema(x: np.ndarray, beta: float = 0.9) -> np.ndarray:
    out, acc = np.empty_like(x), 0.0
    for i, v in enumerate(x):
        acc = beta * acc + (1 - beta) * v
        out[i] = acc / (1 - beta ** (i + 1))
    return out


def plot(runs: dict[str, list[RunResult]], metric: str, path: str) -> None:
    """The curves against the step, one line per optimizer (mean over seeds, min-max band)."""
    matplotlib = require("matplotlib", "optgrad-train (the PNG plot)")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "optgrad-train (the PNG plot)")
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    panels = [
        ("loss", "train loss (minibatch, smoothed)", True, True),
        ("test_metric", metric, False, False),
        ("learning_rate", "learning rate (read from the optimizer state)", True, False),
        ("grad_norm", "gradient norm before clipping (smoothed)", True, True),
        ("update_ratio", "||update|| / ||params|| (smoothed)", True, True),
    ]
    for ax, (name, title, log, smooth) in zip(axes.flat, panels):
        for label, group in runs.items():
            curves = np.stack([_ema(r.curves[name]) if smooth else r.curves[name] for r in group])
            steps = np.arange(1, curves.shape[1] + 1)
            (line,) = ax.plot(steps, curves.mean(0), label=label, lw=1.2)
            if len(group) > 1:
                ax.fill_between(
                    steps, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.2, lw=0
                )
        ax.set_title(title)
        ax.set_xlabel("step")
        if log:
            ax.set_yscale("log")
    if "accuracy" in metric:  # zoom on the part where the optimizers differ
        tail = [np.mean([r.curves["test_metric"] for r in g], 0) for g in runs.values()]
        low = min(float(np.min(t[len(t) // 10 :])) for t in tail)
        axes.flat[1].set_ylim(max(0.0, low - 0.02), 1.0)
    legend = axes.flat[5]
    legend.axis("off")
    legend.legend(*axes.flat[0].get_legend_handles_labels(), loc="center", title="optimizer")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_json(path: str, config: dict[str, Any], summaries: dict[str, Any]) -> None:
    clean = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
    data = {
        "config": config,
        "results": {k: {n: clean(v) for n, v in s.items()} for k, s in summaries.items()},
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=2)


def run_dir(out: str, label: str, seed: int) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in label)
    return os.path.join(out, "tensorboard", f"{safe}-seed{seed}")
