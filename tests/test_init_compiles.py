"""``init`` outside ``jit`` must not compile one XLA program per parameter shape.

On XLA:CPU every compile costs milliseconds, so a model with 2000 differently shaped arrays
took 15 s to ``init`` when each zero buffer was staged through ``jnp.asarray``. The number of
programs compiled by ``init`` has to stay constant as the number of distinct shapes grows.
"""

from __future__ import annotations

import logging

import jax
import numpy as np
import pytest

import optgrad as og


class _CompileCounter(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Compiling "):
            self.messages.append(message)


def _compiles(fn) -> list[str]:
    counter = _CompileCounter()
    logger = logging.getLogger("jax")
    old_level = logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles(True):
            jax.block_until_ready(fn())
    finally:
        logger.removeHandler(counter)
        logger.setLevel(old_level)
    return counter.messages


def _params(n_leaves: int, offset: int) -> dict:
    # Shapes no other test uses, so no compile cache can hide a per-shape program.
    rng = np.random.default_rng(offset)
    return {
        f"w{i}": jax.device_put(rng.normal(size=(3, 7919 + offset + i)).astype(np.float32))
        for i in range(n_leaves)
    }


@pytest.mark.parametrize(
    "name, make",
    [
        ("sgd", lambda: og.sgd(1e-2, momentum=0.9, nesterov=True)),
        ("clip_adamw", lambda: og.chain(og.clip_by_global_norm(1.0), og.adamw(1e-3))),
        ("lbfgs", lambda: og.lbfgs()),
        ("tree.zeros_like", None),
    ],
)
def test_init_compiles_no_program_per_shape(name, make):
    offset = {"sgd": 0, "clip_adamw": 1000, "lbfgs": 2000, "tree.zeros_like": 3000}[name]
    params = _params(40, offset)
    init = og.tree.zeros_like if make is None else make().init
    messages = _compiles(lambda: init(params))
    # A handful of scalar programs (step counts, hyperparameters) at most, never one per leaf.
    assert len(messages) <= 6, f"{name}.init compiled {len(messages)} programs:\n" + "\n".join(
        messages[:10]
    )
    zeros = jax.tree.leaves(og.tree.zeros_like(params))
    assert all(not z.committed for z in zeros), "an uncommitted param gave a committed state"
