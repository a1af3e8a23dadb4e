"""Runs one (tree, optimizer, implementation) configuration and reports it as events.

The driver (``run.py``) starts one worker process per configuration, so that peak memory
belongs to that configuration alone and a configuration that hangs in compilation can be
killed.  A worker reports progress as it goes (``emit``), so a timed-out row still shows the
phases it finished.

Every framework goes through the same phases (:func:`measure_phases`): warm up the library on
a one-leaf tree, create params and grads, take the memory baseline, ``init``, first call,
warm-up steps, timed steps.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import os
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import measure, registry, trees

Emit = Callable[[dict[str, Any]], None]

WARM_UP_TREE = trees.TreeSpec("warm_up", "one 8-element leaf", {"w": (8,)})


class Unavailable(Exception):
    """The implementation cannot run here (library missing, no torch equivalent, ...)."""


@dataclasses.dataclass(frozen=True)
class Config:
    tree: str
    optimizer: str
    impl: str
    repeats: int = 20
    warmup: int = 3
    quick: bool = False
    gpu: bool = False
    torch_threads: int = 0  # 0: one per core


def cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_config(config: Config, emit: Emit) -> None:
    """Runs ``config``; the last event has ``status`` ok, unavailable or error."""
    impl = registry.IMPLEMENTATIONS[config.impl]
    case = registry.OPTIMIZERS[config.optimizer]
    runner = {"jax": JaxRun, "torch": TorchRun}[impl.framework]
    try:
        run = runner(config, case, impl)
        if not config.quick:  # --quick is a smoke test: skip the warm-up to save time
            run.setup(WARM_UP_TREE)
            run.warm_up()
        measure_phases(run, config, emit)
    except Unavailable as reason:
        emit({"status": "unavailable", "error": str(reason)})
        return
    except Exception as error:  # reported as an error row, not a crash
        traceback.print_exc()
        emit({"status": "error", "error": f"{type(error).__name__}: {error}"})
        return
    emit({"status": "ok"})


def measure_phases(run, config: Config, emit: Emit) -> None:
    run.setup(trees.build_tree(config.tree, config.quick))
    gc.collect()
    probe = run.memory_probe()
    emit({"device": run.device, "memory_method": probe.method})
    emit({"mem_base_mb": probe.baseline / measure.MB})

    init_s, _ = measure.timed(run.init)
    emit({"init_s": init_s, **_peak(probe, "init")})
    emit({**run.first_call(), **_peak(probe, "first")})

    probe.restart_peak()
    for _ in range(config.warmup):
        run.reset_grads()
        run.step()
    other_load = measure.OtherLoad()
    seconds = []
    for _ in range(config.repeats):
        run.reset_grads()  # untimed
        seconds.append(measure.timed(run.step)[0])
    emit({**measure.summarize_ms(seconds), "other_load_cores": other_load.cores()})
    emit({**_peak(probe, "steady"), "param_mean_abs": run.param_mean_abs()})


def _peak(probe, phase: str) -> dict[str, float]:
    return {f"peak_{phase}_mb": probe.peak_above_baseline() / measure.MB}


# --- JAX -------------------------------------------------------------------------------------


def _import_library(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise Unavailable(f"cannot import {name}: {error}") from error


class JaxRun:
    """``tx.init`` and a jitted ``tx.update`` + ``apply_updates`` step, params and state donated."""

    def __init__(self, config: Config, case: registry.OptimizerCase, impl: registry.Implementation):
        if impl.module not in case.jax_libraries:
            raise Unavailable(f"{config.optimizer} is not defined for {impl.module}")
        if config.gpu:
            os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        import jax

        self.jax = jax
        self.library = _import_library(impl.module)
        self.transformation = self._build(case, impl)
        self.packed = impl.packed
        self.device = str(jax.devices()[0])

    def _build(self, case: registry.OptimizerCase, impl: registry.Implementation):
        try:
            transformation = case.build_jax(self.library)
            return self.library.flatten(transformation) if impl.flatten else transformation
        except AttributeError as error:  # a library that does not (yet) have this optimizer
            raise Unavailable(f"{impl.module}: {error}") from error

    def _arrays(self, tree: trees.TreeSpec, values: trees.LeafValues):
        return trees.map_leaves(lambda shape: self.jax.device_put(values(shape)), tree.shapes)

    def setup(self, tree: trees.TreeSpec) -> None:
        """Params and grads on the default device.

        ``device_put`` copies the host values (so the host temporary is freed) and, unlike
        ``jnp.array``, compiles nothing: on 2000 distinct shapes that saves minutes and GBs.
        """
        self.params = self.state = None
        self.params = self._arrays(tree, trees.param_values())
        self.grads = self._arrays(tree, trees.grad_values())
        if self.packed:  # once, before training: a model reads them through og.unpack
            self.params = self.library.pack(self.params)
            self.grads = self.library.pack(self.grads)
        self.jax.block_until_ready((self.params, self.grads))

    def memory_probe(self):
        device = self.jax.devices()[0]
        if device.platform == "cpu":
            return measure.HostMemoryProbe()
        return measure.JaxDeviceMemoryProbe(device)

    def warm_up(self) -> None:
        self.init()
        self.first_call()

    def reset_grads(self) -> None:
        """Nothing to do: a jitted step cannot modify its (non-donated) grads."""

    def init(self) -> None:
        self.state = self.jax.block_until_ready(self.transformation.init(self.params))

    def _step_fn(self, params, state, grads):
        updates, state = self.transformation.update(grads, state, params)
        return self.library.apply_updates(params, updates), state

    def first_call(self) -> dict[str, float]:
        """Trace + lower, XLA compile and the first step, timed separately (AOT API)."""
        jitted = self.jax.jit(self._step_fn, donate_argnums=(0, 1))
        trace_s, lowered = measure.timed(lambda: jitted.lower(self.params, self.state, self.grads))
        compile_s, self.compiled = measure.timed(lowered.compile)
        first_step_s, _ = measure.timed(self.step)
        return {
            "trace_s": trace_s,
            "compile_s": compile_s,
            "first_step_s": first_step_s,
            "first_call_s": trace_s + compile_s + first_step_s,
        }

    def step(self) -> None:
        outputs = self.compiled(self.params, self.state, self.grads)
        self.params, self.state = self.jax.block_until_ready(outputs)

    def param_mean_abs(self) -> float:
        """Computed on the host: eager per-leaf ops would compile once per distinct shape."""
        leaves = [np.asarray(leaf) for leaf in self.jax.tree.leaves(self.params)]
        total = sum(float(np.abs(leaf).sum(dtype=np.float64)) for leaf in leaves)
        return total / sum(leaf.size for leaf in leaves)


# --- torch -----------------------------------------------------------------------------------


class TorchRun:
    """``clip_grad_norm_(foreach=True)`` (if the case clips) and ``optimizer.step()``.

    torch allocates optimizer state lazily inside the first ``step()``: ``init`` times the
    constructor alone and the first call includes the state allocation.
    """

    def __init__(self, config: Config, case: registry.OptimizerCase, impl: registry.Implementation):
        if case.build_torch is None:
            raise Unavailable(f"no torch equivalent of {config.optimizer}")
        try:
            import torch
        except ImportError as error:
            raise Unavailable(f"cannot import torch: {error}") from error
        torch.set_num_threads(config.torch_threads or cpu_count())
        self.torch = torch
        self.case = case
        self.kernel = impl.kernel
        self.device = "cuda" if config.gpu and torch.cuda.is_available() else "cpu"

    def _tensors(self, tree: trees.TreeSpec, values: trees.LeafValues) -> list:
        return [self.torch.from_numpy(values(s)).to(self.device) for s in tree.leaf_shapes]

    def setup(self, tree: trees.TreeSpec) -> None:
        """Leaf tensors with ``.grad`` assigned once, plus a pristine copy of the grads."""
        self.params = self.optimizer = self.saved_grads = None
        self.params = [p.requires_grad_() for p in self._tensors(tree, trees.param_values())]
        for param, grad in zip(self.params, self._tensors(tree, trees.grad_values()), strict=True):
            param.grad = grad
        self.saved_grads = [param.grad.clone() for param in self.params]
        self.n_params = tree.n_params

    def reset_grads(self) -> None:
        """Copies the original grads back into ``.grad``, before each step and untimed.

        torch writes into ``.grad``: ``clip_grad_norm_`` scales it, and ``SGD(foreach=True,
        nesterov=True)`` adds the momentum into it, so reused grads would drift (and blow up).
        """
        with self.torch.no_grad():
            for param, saved in zip(self.params, self.saved_grads, strict=True):
                param.grad.copy_(saved)

    def memory_probe(self):
        if self.device == "cuda":
            return measure.TorchCudaMemoryProbe(self.torch)
        return measure.HostMemoryProbe()

    def warm_up(self) -> None:
        self.init()
        self.first_call()

    def init(self) -> None:
        self.optimizer = self.case.build_torch(self.torch, self.params, self.kernel)

    def first_call(self) -> dict[str, float]:
        first_call_s, _ = measure.timed(self.step)
        return {"first_call_s": first_call_s, "threads": self.torch.get_num_threads()}

    def step(self) -> None:
        if self.case.torch_clip_norm is not None:
            self.torch.nn.utils.clip_grad_norm_(
                self.params, self.case.torch_clip_norm, foreach=True
            )
        self.optimizer.step()
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def param_mean_abs(self) -> float:
        with self.torch.no_grad():
            return sum(float(p.abs().sum()) for p in self.params) / self.n_params
