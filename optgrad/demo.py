"""Train a small MLP on scikit-learn's bundled ``digits`` with several optimizers and compare.

Run ``python -m optgrad.demo --help``. The dataset ships inside scikit-learn, so nothing is
downloaded. This is the short example of the foundation; a fuller command-line tool (Flax
models, plots, TensorBoard) grows from it.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import optgrad as og

OPTIMIZERS: dict[str, Callable[[int], og.GradientTransformation]] = {
    "sgd": lambda steps: og.sgd(og.cosine_decay_schedule(0.5, steps)),
    "momentum": lambda steps: og.sgd(og.cosine_decay_schedule(0.1, steps), momentum=0.9),
    "nesterov": lambda steps: og.sgd(
        og.cosine_decay_schedule(0.1, steps), momentum=0.9, nesterov=True
    ),
    "adam": lambda steps: og.adam(og.warmup_cosine_decay_schedule(0.0, 3e-3, steps // 10, steps)),
    "adamw": lambda steps: og.chain(
        og.clip_by_global_norm(1.0),
        og.adamw(og.warmup_cosine_decay_schedule(0.0, 3e-3, steps // 10, steps), weight_decay=0.01),
    ),
    "rmsprop": lambda steps: og.rmsprop(og.cosine_decay_schedule(1e-3, steps)),
    "adagrad": lambda steps: og.adagrad(og.constant_schedule(0.05)),
    "torch.SGD": lambda steps: og.torch.SGD(
        lr=og.torch.lr_scheduler.StepLR(0.1, step_size=max(1, steps // 3), gamma=0.3),
        momentum=0.9,
        weight_decay=5e-4,
    ),
    "torch.AdamW": lambda steps: og.torch.AdamW(
        lr=og.torch.lr_scheduler.ExponentialLR(3e-3, 0.995)
    ),
}


def load_digits(seed: int):
    from sklearn.datasets import load_digits as sk_load_digits

    x, y = sk_load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def init_mlp(key, sizes):
    params = []
    for k, (fan_in, fan_out) in zip(
        jax.random.split(key, len(sizes) - 1), itertools.pairwise(sizes)
    ):
        w = jax.random.normal(k, (fan_in, fan_out)) * jnp.sqrt(2.0 / fan_in)
        params.append({"w": w, "b": jnp.zeros(fan_out)})
    return params


def mlp(params, x):
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss_fn(params, x, y):
    logits = mlp(params, x)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def train(name, tx, data, steps, batch_size, seed, hidden):
    (x_train, y_train), (x_test, y_test) = jax.tree.map(jnp.asarray, data)
    params = init_mlp(jax.random.PRNGKey(seed), [x_train.shape[1], hidden, 10])
    state = tx.init(params)

    @jax.jit
    def step(params, state, idx):
        loss, grads = jax.value_and_grad(loss_fn)(params, x_train[idx], y_train[idx])
        updates, state = tx.update(grads, state, params)
        return og.apply_updates(params, updates), state, loss

    rng = np.random.default_rng(seed)
    batches = rng.integers(0, len(x_train), size=(steps, batch_size))
    start = time.perf_counter()
    params, state, _ = step(params, state, batches[0])
    jax.block_until_ready(params)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for idx in batches[1:]:
        params, state, _ = step(params, state, idx)
    jax.block_until_ready(params)
    train_s = time.perf_counter() - start
    accuracy = float(jnp.mean(jnp.argmax(mlp(params, x_test), -1) == y_test))
    return {
        "optimizer": name,
        "train_loss": float(loss_fn(params, x_train, y_train)),
        "test_accuracy": accuracy,
        "compile_s": compile_s,
        "train_s": train_s,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m optgrad.demo",
        description="Train an MLP on scikit-learn's digits with several optgrad optimizers.",
    )
    parser.add_argument(
        "--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS)
    )
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps per run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64, help="hidden layer width")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = load_digits(args.seed)
    print(f"digits: {len(data[0][0])} train / {len(data[1][0])} test images, {args.steps} steps")
    print(f"{'optimizer':<12} {'train loss':>10} {'test acc':>9} {'compile s':>9} {'train s':>8}")
    for name in args.optimizers:
        tx = OPTIMIZERS[name](args.steps)
        r = train(name, tx, data, args.steps, args.batch_size, args.seed, args.hidden)
        print(
            f"{r['optimizer']:<12} {r['train_loss']:>10.4f} {r['test_accuracy']:>9.3f} "
            f"{r['compile_s']:>9.2f} {r['train_s']:>8.2f}"
        )


if __name__ == "__main__":
    main()
