"""The per-optimizer table: every optimizer of the catalogue, against Optax and torch.optim.

``python benchmarks/run.py --catalogue --trees gpt`` adds these cases to the run. Each case
names the optgrad/Optax builder (both libraries share the Optax names) and, where torch has
the algorithm, the ``torch.optim`` class that ``optgrad.torch`` mirrors. ``bytes_per_param``
is the traffic of a fused step: params read and written (8), the gradient read (4) and every
per-parameter state buffer read and written (8 each).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from benchmarks.registry import OptimizerCase

LR = 1e-3


def _bytes(buffers: int) -> int:
    return 12 + 8 * buffers


def _optax_named(name: str, buffers: int, optax: bool = True, **kwargs: Any) -> OptimizerCase:
    def build(lib: ModuleType) -> Any:
        return getattr(lib, name)(LR, **kwargs)

    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return OptimizerCase(
        description=f"{name}({LR}{', ' + args if args else ''})",
        bytes_per_param=_bytes(buffers),
        build_jax=build,
        jax_libraries=("optgrad", "optax") if optax else ("optgrad",),
    )


def _torch_named(name: str, buffers: int, lr: float = LR, **kwargs: Any) -> OptimizerCase:
    """``og.torch.<name>`` against ``torch.optim.<name>`` with the same arguments."""

    def build_jax(lib: ModuleType) -> Any:
        return getattr(lib.torch, name)(lr, **kwargs)

    def build_torch(torch: ModuleType, params: list, kernel: dict) -> Any:
        cls = getattr(torch.optim, name)
        import inspect

        accepted = inspect.signature(cls).parameters
        extra = {k: v for k, v in kernel.items() if k in accepted}
        return cls(params, lr=lr, **kwargs, **extra)

    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return OptimizerCase(
        description=f"og.torch.{name}(lr={lr}{', ' + args if args else ''})",
        bytes_per_param=_bytes(buffers),
        build_jax=build_jax,
        build_torch=build_torch,
        jax_libraries=("optgrad",),
    )


CATALOGUE: dict[str, OptimizerCase] = {
    "sgd": _optax_named("sgd", 0),
    "sgd_momentum": _optax_named("sgd", 1, momentum=0.9),
    "adam": _optax_named("adam", 2),
    "adamw": _optax_named("adamw", 2),
    "nadam": _optax_named("nadam", 2),
    "nadamw": _optax_named("nadamw", 2),
    "amsgrad": _optax_named("amsgrad", 3),
    "adamax": _optax_named("adamax", 2),
    "adamaxw": _optax_named("adamaxw", 2),
    "adabelief": _optax_named("adabelief", 2),
    "adadelta": _optax_named("adadelta", 2),
    "adafactor": _optax_named("adafactor", 0),
    "adagrad": _optax_named("adagrad", 1),
    "adan": _optax_named("adan", 4),
    "fromage": _optax_named("fromage", 0),
    "lamb": _optax_named("lamb", 2),
    "lars": _optax_named("lars", 1),
    "lion": _optax_named("lion", 1),
    "noisy_sgd": _optax_named("noisy_sgd", 0),
    "novograd": _optax_named("novograd", 1),
    "optimistic_gradient_descent": _optax_named("optimistic_gradient_descent", 1),
    "optimistic_adam_v2": _optax_named("optimistic_adam_v2", 3),
    "radam": _optax_named("radam", 2),
    "rmsprop": _optax_named("rmsprop", 1),
    "rprop": _optax_named("rprop", 3),
    "sign_sgd": _optax_named("sign_sgd", 0),
    "signum": _optax_named("signum", 1),
    "sm3": _optax_named("sm3", 1),
    "yogi": _optax_named("yogi", 2),
    "torch.SGD": _torch_named("SGD", 1, momentum=0.9),
    "torch.Adam": _torch_named("Adam", 2),
    "torch.AdamW": _torch_named("AdamW", 2),
    "torch.Adagrad": _torch_named("Adagrad", 1),
    "torch.RMSprop": _torch_named("RMSprop", 1),
    "torch.Adadelta": _torch_named("Adadelta", 2, lr=1.0),
    "torch.Adamax": _torch_named("Adamax", 2),
    "torch.NAdam": _torch_named("NAdam", 2),
    "torch.RAdam": _torch_named("RAdam", 2),
    "torch.ASGD": _torch_named("ASGD", 2),
    "torch.Rprop": _torch_named("Rprop", 2),
    "torch.Adafactor": _torch_named("Adafactor", 1),
}
