"""The optimizers and schedules the command compares, by name.

An optimizer is named by a preset (``adamw``, ``torch.SGD``, ...) or by any optimizer of
``optgrad`` (``nadam``) or ``optgrad.torch`` (``torch.RMSprop``) that takes a learning rate,
optionally followed by keyword arguments: ``torch.SGD:lr=0.1,momentum=0.9,nesterov=True``.
``lr`` (or ``learning_rate``) sets the peak of the schedule.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from typing import Any

import optgrad as og

from ._model import decay_mask

Schedule = Callable[[Any], Any]


def _warmup(steps: int) -> int:
    return max(1, steps // 20)


SCHEDULES: dict[str, tuple[str, Callable[[float, int], Schedule]]] = {
    "constant": ("constant", lambda peak, steps: og.constant_schedule(peak)),
    "cosine": (
        "cosine decay to 1% of the peak",
        lambda peak, steps: og.cosine_decay_schedule(peak, steps, alpha=0.01),
    ),
    "warmup-cosine": (
        "5% linear warmup, cosine decay to 1%",
        lambda peak, steps: og.warmup_cosine_decay_schedule(
            0.0, peak, _warmup(steps), steps, end_value=0.01 * peak
        ),
    ),
    "wsd": (
        "warmup-stable-decay: 5% warmup, linear decay over the last 20%",
        lambda peak, steps: og.warmup_stable_decay_schedule(
            0.0, peak, _warmup(steps), steps, decay_fraction=0.2
        ),
    ),
    "onecycle": (
        "cosine one-cycle (30% up)",
        lambda peak, steps: og.cosine_onecycle_schedule(steps, peak),
    ),
    "exponential": (
        "exponential decay to 1%",
        lambda peak, steps: og.exponential_decay(peak, steps, 0.01),
    ),
    "linear": ("linear decay to 0", lambda peak, steps: og.linear_schedule(peak, 0.0, steps)),
    "multistep": (
        "torch MultiStepLR: x0.1 at 50% and 75%",
        lambda peak, steps: og.torch.lr_scheduler.MultiStepLR(
            peak, milestones=[steps // 2, 3 * steps // 4], gamma=0.1
        ),
    ),
}


@dataclasses.dataclass(frozen=True)
class Preset:
    """``factory(<lr keyword>=schedule, **kwargs)`` with ``peak`` learning rate and a schedule."""

    factory: Callable[..., og.GradientTransformation]
    peak: float
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    schedule: str = "warmup-cosine"
    note: str = ""


PRESETS: dict[str, Preset] = {
    "sgd": Preset(og.sgd, 0.2, note="plain SGD"),
    "momentum": Preset(og.sgd, 0.05, {"momentum": 0.9}, note="heavy ball, 0.9"),
    "nesterov": Preset(og.sgd, 0.05, {"momentum": 0.9, "nesterov": True}, note="0.9"),
    "adam": Preset(og.adam, 3e-3),
    "adamw": Preset(
        og.adamw,
        3e-3,
        {"weight_decay": 0.05, "mask": decay_mask},
        note="decay 0.05 on matrices only",
    ),
    "rmsprop": Preset(og.rmsprop, 1e-3),
    "adagrad": Preset(og.adagrad, 0.1, schedule="constant", note="anneals by itself"),
    "torch.SGD": Preset(og.torch.SGD, 0.05, {"momentum": 0.9, "weight_decay": 5e-4}),
    "torch.Adam": Preset(og.torch.Adam, 3e-3),
    "torch.AdamW": Preset(og.torch.AdamW, 3e-3),
    "torch.RMSprop": Preset(og.torch.RMSprop, 1e-3),
    "torch.Adagrad": Preset(og.torch.Adagrad, 0.05, schedule="constant"),
}

DEFAULT = ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"]


@dataclasses.dataclass(frozen=True)
class Choice:
    """One optimizer as asked for on the command line, ready to build for a number of steps."""

    label: str
    factory: Callable[..., og.GradientTransformation]
    lr_name: str
    peak: float
    kwargs: dict[str, Any]
    schedule: str

    def build(self, steps: int) -> tuple[og.GradientTransformation, Schedule]:
        schedule = SCHEDULES[self.schedule][1](self.peak, steps)
        return self.factory(**{self.lr_name: schedule}, **self.kwargs), schedule


def _lr_name(factory: Callable[..., Any]) -> str:
    import inspect

    names = inspect.signature(factory).parameters
    for name in ("learning_rate", "lr"):
        if name in names:
            return name
    raise ValueError(f"{factory.__module__}.{factory.__name__} takes no learning rate")


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse(spec: str, schedule: str | None) -> Choice:
    """``NAME[:key=value,...]`` as a :class:`Choice`; ``schedule`` overrides the preset's."""
    name, _, rest = spec.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, text = item.partition("=")
        if not eq:
            raise ValueError(f"expected key=value after ':', got {item!r}")
        kwargs[key.strip()] = _value(text.strip())
    preset = PRESETS.get(name)
    if preset is None:
        module, attr = (og.torch, name[6:]) if name.startswith("torch.") else (og, name)
        factory = getattr(module, attr, None)
        if not callable(factory) or attr.startswith("_"):
            raise ValueError(
                f"unknown optimizer {name!r}. Presets: {', '.join(PRESETS)}; or "
                "any optimizer of optgrad (e.g. nadam) or optgrad.torch (e.g. torch.RMSprop)."
            )
        preset = Preset(factory, 1e-3)
    lr_name = _lr_name(preset.factory)
    peak = preset.peak
    for key in ("lr", "learning_rate"):
        if key in kwargs:
            peak = float(kwargs.pop(key))
    return Choice(
        spec,
        preset.factory,
        lr_name,
        peak,
        {**preset.kwargs, **kwargs},
        schedule or preset.schedule,
    )
