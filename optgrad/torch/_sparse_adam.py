"""``torch.optim.SparseAdam``: lazy Adam, emulated on dense arrays.

torch's SparseAdam takes sparse gradients and updates only the entries they store: the
moments and parameters of the others are left alone. JAX has no sparse gradients; here an
entry whose gradient is exactly zero is treated as absent, which is what torch does with a
gradient made by ``dense.to_sparse()`` (it drops the zeros). An embedding's gradient rows for
tokens not in the batch are exactly zero, so this is the lazy update embeddings want.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import (
    abs_sq,
    as_scalar,
    bias_correction,
    safe_increment,
    zero_count,
    zeros_like,
)
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from ._optim import check_betas, maximize_first


class SparseAdamState(NamedTuple):
    """``count`` (int32), torch's ``exp_avg`` :math:`m` and ``exp_avg_sq`` :math:`v`."""

    count: jax.Array
    exp_avg: Any
    exp_avg_sq: Any


def _scale_by_lazy_adam(b1: Any, b2: Any, eps: Any) -> GradientTransformation:
    call = "optgrad.torch.SparseAdam"

    def init_fn(params):
        return SparseAdamState(zero_count(), zeros_like(params), zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.exp_avg, "exp_avg")
        beta1, beta2, e = map(as_scalar, (b1, b2, eps))
        count = safe_increment(state.count)
        factor = jnp.sqrt(bias_correction(beta2, count)) / bias_correction(beta1, count)

        def one(g, m, v):
            present = g != 0
            m_new = m + (1.0 - beta1) * (g - m)
            v_new = v + (1.0 - beta2) * (abs_sq(g) - v)
            step = factor * m_new / (jnp.sqrt(v_new) + e)
            return (
                jnp.where(present, step, 0.0).astype(g.dtype),
                jnp.where(present, m_new, m).astype(m.dtype),
                jnp.where(present, v_new, v).astype(v.dtype),
            )

        triples = jax.tree.map(one, updates, state.exp_avg, state.exp_avg_sq)
        treedef = jax.tree.structure(updates)
        out, exp_avg, exp_avg_sq = (
            treedef.unflatten(list(x)) for x in zip(*treedef.flatten_up_to(triples))
        )
        return out, SparseAdamState(count, exp_avg, exp_avg_sq)

    return GradientTransformation(init_fn, update_fn)


def SparseAdam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: ScalarOrSchedule = 1e-8,
    maximize: bool = False,
) -> GradientTransformation:
    r"""``torch.optim.SparseAdam``, step for step: Adam that leaves absent entries alone.

    .. math::
        I_t &= \{ i : g_{t,i} \neq 0 \} \\
        m_{t,I} &= m_{t-1,I} + (1-\beta_1)(g_{t,I} - m_{t-1,I}), \qquad
        v_{t,I} = v_{t-1,I} + (1-\beta_2)(g_{t,I}^2 - v_{t-1,I}) \\
        \theta_{t,I} &= \theta_{t-1,I} - \gamma_t\, \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
            \frac{m_{t,I}}{\sqrt{v_{t,I}} + \epsilon}

    and outside :math:`I_t` nothing changes: not the parameter, not its moments. The step
    count :math:`t` advances at every update (torch counts steps per parameter, not per
    entry). :math:`\epsilon` is added to the uncorrected :math:`\sqrt{v}`. There is no weight
    decay, as in torch. Kingma & Ba (2015), applied lazily.

    JAX has no sparse gradients: an entry whose gradient is exactly zero counts as absent, as
    it does in torch for a gradient made with ``dense.to_sparse()``. A torch sparse gradient
    may store an explicit zero, which torch treats as present; that case cannot be expressed
    here. Unlike torch, dense gradients are accepted (that is all there is).

    ``lr``, ``betas`` (a pair) and ``eps`` are held in the state under these names and may be
    schedules of the update count; the buffers are ``exp_avg`` and ``exp_avg_sq``. Real
    parameters only (torch refuses complex ones). As in torch, ``lr`` and ``eps`` must be
    positive.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        betas: the pair :math:`(\beta_1, \beta_2)` of moment decays.
        eps: the :math:`\epsilon` that keeps the denominator away from zero.
        maximize: ascend the objective instead of descending it (default ``False``).

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.SparseAdam(lr=0.1)
        >>> params = {"emb": jnp.zeros((3, 2))}
        >>> grads = {"emb": jnp.array([[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]])}
        >>> updates, state = tx.update(grads, tx.init(params), params)
        >>> [round(x, 4) for x in updates["emb"][:, 0].tolist()]  # row 1 is absent
        [-0.1, -0.0, -0.1]
    """
    call = "optgrad.torch.SparseAdam"
    _check.scalar_or_schedule(call, "lr", lr)
    _check.positive(call, "lr", lr)
    betas = check_betas(call, betas)
    _check.scalar_or_schedule(call, "eps", eps)
    _check.positive(call, "eps", eps)

    def build(lr, betas, eps):
        return chain(
            *maximize_first(maximize), _scale_by_lazy_adam(*betas, eps), scale_by_learning_rate(lr)
        )

    return with_hyperparams(build, lr=lr, betas=betas, eps=eps)
