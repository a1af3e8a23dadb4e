"""The tables the harness iterates over: optimizers and implementations.

Both are plain ``name -> entry`` dicts.  To benchmark another optimizer, add an
:class:`OptimizerCase` whose ``build_jax`` takes the library module (``optgrad`` and ``optax``
share one API, so one builder serves both) and, if torch has an equivalent, a ``build_torch``.
To benchmark another implementation, add an entry to ``IMPLEMENTATIONS``.

Nothing here imports JAX or torch: a worker imports only the framework its row needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType
from typing import Any

JaxBuilder = Callable[[ModuleType], Any]
# (torch module, list of parameters, kernel kwargs such as {"fused": True}) -> optimizer
TorchBuilder = Callable[[ModuleType, list, dict], Any]


@dataclasses.dataclass(frozen=True)
class OptimizerCase:
    description: str
    bytes_per_param: int  # memory traffic of one step, used for the bandwidth bound
    build_jax: JaxBuilder
    build_torch: TorchBuilder | None = None
    torch_clip_norm: float | None = None  # clip_grad_norm_ before step(), as the JAX chain does
    jax_libraries: tuple[str, ...] = ("optgrad", "optax")  # modules that define build_jax


def _clip_adamw_jax(lib: ModuleType) -> Any:
    return lib.chain(lib.clip_by_global_norm(1.0), lib.adamw(1e-3, weight_decay=0.01))


def _adamw_torch(torch: ModuleType, params: list, kernel: dict) -> Any:
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, **kernel)


def _nesterov_jax(lib: ModuleType) -> Any:
    return lib.sgd(1e-3, momentum=0.9, nesterov=True)


def _nesterov_torch(torch: ModuleType, params: list, kernel: dict) -> Any:
    return torch.optim.SGD(params, lr=1e-3, momentum=0.9, nesterov=True, **kernel)


OPTIMIZERS: dict[str, OptimizerCase] = {
    "clip_adamw": OptimizerCase(
        description="clip_by_global_norm(1.0) + adamw(1e-3, weight_decay=0.01)",
        bytes_per_param=32,
        build_jax=_clip_adamw_jax,
        build_torch=_adamw_torch,
        torch_clip_norm=1.0,
    ),
    "sgd_nesterov": OptimizerCase(
        description="sgd(1e-3, momentum=0.9, nesterov=True)",
        bytes_per_param=20,
        build_jax=_nesterov_jax,
        build_torch=_nesterov_torch,
    ),
}


@dataclasses.dataclass(frozen=True)
class Implementation:
    framework: str  # "jax" or "torch"
    description: str
    module: str = ""  # jax: the library module to import
    flatten: bool = False  # jax: wrap the transformation in optax.flatten
    packed: bool = False  # jax: params and grads packed once with og.pack (one buffer per dtype)
    kernel: dict = dataclasses.field(default_factory=dict)  # torch: foreach / fused kwargs
    # Trees on which this implementation takes minutes to init + compile (--skip-slow); on
    # the 2-core reference machine optgrad and optax take 1-4 minutes on "many".
    slow_trees: tuple[str, ...] = ()


IMPLEMENTATIONS: dict[str, Implementation] = {
    "optgrad": Implementation(
        "jax", "optgrad, jit + donate", module="optgrad", slow_trees=("many",)
    ),
    "optgrad_packed": Implementation(
        "jax", "optgrad on og.pack(params), jit + donate", module="optgrad", packed=True
    ),
    "optax": Implementation("jax", "Optax, jit + donate", module="optax", slow_trees=("many",)),
    "optax_flatten": Implementation(
        "jax", "optax.flatten(...), jit + donate", module="optax", flatten=True
    ),
    "torch_foreach": Implementation("torch", "torch.optim foreach=True", kernel={"foreach": True}),
    "torch_fused": Implementation("torch", "torch.optim fused=True", kernel={"fused": True}),
}

# References for the ratio columns.
OPTAX_REFERENCE = "optax"
TORCH_REFERENCE = "torch_fused"
