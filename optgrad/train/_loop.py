"""One training run: a jitted ``lax.scan`` over chunks of steps, with telemetry per step.

Each step draws a minibatch, computes the loss and gradients, clips them, applies the
optimizer and evaluates the test metric. The optimizer is wrapped in :func:`optgrad.monitor`,
so its state records the learning rate the update used, the gradient norm before and after
clipping and the ratio ``||update|| / ||params||``; :func:`optgrad.metrics` reads them inside
the jitted step. The host sees the records once per chunk (to move the progress
bar and write TensorBoard events), so the Python loop costs nothing per step.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import optgrad as og

from ._data import Dataset
from ._model import make_mlp

CURVES = ("loss", "test_metric", "learning_rate", "grad_norm", "clipped_grad_norm", "update_ratio")


@dataclasses.dataclass
class RunResult:
    """What one run (an optimizer and a seed) measured; ``curves`` hold one value per step."""

    label: str
    seed: int
    curves: dict[str, np.ndarray]
    train_loss: float
    test_metric: float
    steps_to_target: int | None
    time_to_target: float | None
    compile_s: float
    train_s: float


def chunk_size(steps: int, pieces: int = 25) -> int:
    """The largest divisor of ``steps`` that is at most ``steps / pieces`` (at least 1)."""
    limit = max(1, steps // pieces)
    return max(d for d in range(1, limit + 1) if steps % d == 0)


class Trainer:
    """Compiles the training of ``tx`` on ``data`` once; :meth:`run` trains from a seed."""

    def __init__(
        self,
        tx: og.GradientTransformation,
        data: Dataset,
        hidden: Sequence[int],
        *,
        steps: int,
        batch_size: int,
        clip: float,
    ):
        from flax import nnx

        self.data, self.hidden, self.steps = data, tuple(hidden), steps
        self.chunk = chunk_size(steps)
        # Small models: measuring every step is cheap, and TensorBoard wants every step.
        self.tx = og.monitor(tx, og.clip_by_global_norm(clip) if clip > 0 else None, every_k=1)
        classify = data.task == "classification"
        model = make_mlp(data.x_train.shape[1], self.hidden, data.num_outputs, 0)
        self.graphdef, _, self.rest = nnx.split(model, nnx.Param, ...)
        graphdef, rest, tx = self.graphdef, self.rest, self.tx

        def predict(params, x):
            return nnx.merge(graphdef, params, rest)(x)

        def loss_fn(params, x, y):
            out = predict(params, x)
            if classify:
                logp = jax.nn.log_softmax(out)
                return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
            return jnp.mean((out[:, 0] - y) ** 2)

        def metric(params, x, y):
            out = predict(params, x)
            if classify:
                return jnp.mean(jnp.argmax(out, -1) == y)
            return jnp.sqrt(jnp.mean((out[:, 0] - y) ** 2)) * data.y_std

        def step(carry, key, arrays):
            params, opt_state = carry
            x_train, y_train, x_test, y_test = arrays
            idx = jax.random.randint(key, (batch_size,), 0, x_train.shape[0])
            loss, grads = jax.value_and_grad(loss_fn)(params, x_train[idx], y_train[idx])
            updates, opt_state = tx.update(grads, opt_state, params)
            params = og.apply_updates(params, updates)
            stats = og.metrics(opt_state)
            record = {
                "loss": loss,
                "test_metric": metric(params, x_test, y_test),
                "learning_rate": stats["learning_rate"],
                "grad_norm": stats["grad_norm"],
                "clipped_grad_norm": stats["grad_norm_clipped"],
                "update_ratio": stats["update_param_ratio"],
            }
            return (params, opt_state), record

        def chunk(carry, keys, arrays):
            return jax.lax.scan(lambda c, k: step(c, k, arrays), carry, keys)

        self._chunk = jax.jit(chunk)
        self._loss = jax.jit(loss_fn)
        self.arrays = tuple(
            jnp.asarray(a) for a in (data.x_train, data.y_train, data.x_test, data.y_test)
        )
        self._compiled: Callable[..., Any] | None = None
        self.compile_s = 0.0

    def _init(self, seed: int):
        from flax import nnx

        model = make_mlp(self.data.x_train.shape[1], self.hidden, self.data.num_outputs, seed)
        params = nnx.state(model, nnx.Param)
        return params, self.tx.init(params)

    def _keys(self, seed: int) -> jax.Array:
        keys = jax.random.split(jax.random.key(seed + 1_000_003), self.steps)
        return keys.reshape(self.steps // self.chunk, self.chunk)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def compile(self) -> float:
        """Compiles the chunk of steps (once for all seeds); returns the seconds it took."""
        if self._compiled is None:
            start = time.perf_counter()
            carry = self._init(0)
            self._compiled = self._chunk.lower(carry, self._keys(0)[0], self.arrays).compile()
            self.compile_s = time.perf_counter() - start
        return self.compile_s

    def run(
        self,
        label: str,
        seed: int,
        target: float,
        on_chunk: Callable[[int, dict[str, np.ndarray]], None] = lambda done, records: None,
    ) -> RunResult:
        """Trains from ``seed``; ``on_chunk(steps_done, records)`` after each chunk."""
        self.compile()
        carry = self._init(seed)
        jax.block_until_ready(carry)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in CURVES}
        ends, done = [0.0], 0  # seconds of training (reporting excluded) after each chunk
        for keys in self._keys(seed):
            start = time.perf_counter()
            carry, records = self._compiled(carry, keys, self.arrays)
            records = jax.device_get(records)
            ends.append(ends[-1] + time.perf_counter() - start)
            done += len(keys)
            for name in CURVES:
                parts[name].append(np.asarray(records[name], np.float64))
            on_chunk(done, records)
        train_s = ends[-1]
        curves = {name: np.concatenate(parts[name]) for name in CURVES}
        metric = curves["test_metric"]
        hit = metric >= target if self.data.task == "classification" else metric <= target
        steps_to, time_to = None, None
        if hit.any():
            first = int(np.argmax(hit))  # 0-based: target reached after `first + 1` steps
            steps_to = first + 1
            k, within = divmod(first, self.chunk)
            time_to = ends[k] + (ends[k + 1] - ends[k]) * (within + 1) / self.chunk
        x, y = self.arrays[0], self.arrays[1]
        train_loss = float(self._loss(carry[0], x, y))
        return RunResult(
            label,
            seed,
            curves,
            train_loss,
            float(metric[-1]),
            steps_to,
            time_to,
            self.compile_s,
            train_s,
        )


def summarize(runs: list[RunResult]) -> dict[str, Any]:
    """Mean (and spread) over the seeds of one optimizer's runs."""
    reached = [r for r in runs if r.steps_to_target is not None]
    mean = lambda xs: float(np.mean(xs)) if xs else math.nan  # noqa: E731
    return {
        "train_loss": mean([r.train_loss for r in runs]),
        "train_loss_std": float(np.std([r.train_loss for r in runs])),
        "test_metric": mean([r.test_metric for r in runs]),
        "test_metric_std": float(np.std([r.test_metric for r in runs])),
        "reached": len(reached),
        "seeds": len(runs),
        "steps_to_target": mean([r.steps_to_target for r in reached]),
        "time_to_target_s": mean([r.time_to_target for r in reached]),
        "compile_s": runs[0].compile_s,
        "train_s": mean([r.train_s for r in runs]),
    }
