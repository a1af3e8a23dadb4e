"""A jitted step allocates no parameter-sized temporaries.

An optimizer step is memory-bound: every parameter-sized buffer that XLA materializes between
two fusions costs a write and a read per parameter (and, on CPU, fresh pages every step). The
step ``update`` + ``apply_updates`` with params and state donated must compute everything in
the state buffers it updates. This is a structural check on the compiled program, not a timing;
the speed itself is measured in ``benchmarks/``.

Not listed, because they materialize a temporary today (``benchmarks/README.md`` has the table):
coupled weight decay (``add_decayed_weights``) before an adaptive denominator whose quotient
feeds a momentum buffer (``og.torch.RMSprop(momentum>0)``): XLA:CPU does not duplicate
``g + wd * p`` into both the state update and the division, so it writes it out
(``og.torch.SGD``, ``og.torch.Adagrad`` and ``og.torch.RMSprop`` without momentum avoid it by
dividing a product with the learning rate, see ``optgrad.torch._optim.addcdiv_step`` and
``optgrad._accumulation.scaled_trace``); ``adadelta``'s, not analysed yet;
moments stored in bfloat16 (the float32 moment feeds both the stored copy and the direction);
trust ratios (``lamb``, ``lars``), which need the norm of the update before applying it; noise;
and the wrappers that branch with ``lax.cond`` (``MultiSteps``, ``monitor``), whose branches
return fresh buffers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import optgrad as og

SHAPE = (512, 1024)

OPTIMIZERS = {
    "sgd": lambda: og.sgd(1e-2),
    "sgd_nesterov": lambda: og.sgd(1e-2, momentum=0.9, nesterov=True),
    "adam": lambda: og.adam(1e-3),
    "adamw": lambda: og.adamw(1e-3, weight_decay=0.01),
    "clip_adamw": lambda: og.chain(og.clip_by_global_norm(1.0), og.adamw(1e-3)),
    "nadamw": lambda: og.nadamw(1e-3),
    "amsgrad": lambda: og.amsgrad(1e-3),
    "adagrad": lambda: og.adagrad(1e-2),
    "rmsprop": lambda: og.rmsprop(1e-3),
    "radam": lambda: og.radam(1e-3),
    "yogi": lambda: og.yogi(1e-3),
    "torch.Adam": lambda: og.torch.Adam(lr=1e-3),
    "torch.AdamW": lambda: og.torch.AdamW(lr=1e-3),
    "torch.SGD_nesterov": lambda: og.torch.SGD(lr=1e-2, momentum=0.9, nesterov=True),
    "torch.SGD_momentum_wd": lambda: og.torch.SGD(lr=1e-2, momentum=0.9, weight_decay=1e-4),
    "torch.Adagrad_wd": lambda: og.torch.Adagrad(lr=1e-2, lr_decay=0.1, weight_decay=1e-4),
    "torch.RMSprop_wd": lambda: og.torch.RMSprop(lr=1e-2, weight_decay=1e-4),
    "torch.RMSprop_centered_wd": lambda: og.torch.RMSprop(
        lr=1e-2, weight_decay=1e-4, centered=True
    ),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_allocates_no_parameter_sized_temporary(name):
    tx = OPTIMIZERS[name]()
    params = {"w": jnp.zeros(SHAPE), "b": jnp.zeros(SHAPE[1])}
    grads = jax.tree.map(jnp.ones_like, params)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return og.apply_updates(params, updates), state

    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), grads).compile()
    analysis = compiled.memory_analysis()
    if analysis is None:
        pytest.skip("this backend reports no memory analysis")
    param_bytes = sum(x.nbytes for x in jax.tree.leaves(params))
    assert analysis.temp_size_in_bytes < 0.05 * param_bytes, (
        f"{name}: the step materializes {analysis.temp_size_in_bytes / param_bytes:.2f}x the "
        "params in temporaries"
    )
