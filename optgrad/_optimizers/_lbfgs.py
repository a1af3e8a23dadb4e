"""L-BFGS: ``scale_by_lbfgs`` (the two-loop direction) and the alias ``lbfgs``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from .. import _check
from .._base import GradientTransformation, ScalarOrSchedule, identity
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._linesearch import real_dot, scalar_dtype
from .._numerics import safe_increment, zero_count, zeros_like
from .._scale import scale, scale_by_learning_rate
from .._update import check_state_mirrors
from .._zoom_linesearch import scale_by_zoom_linesearch
from ..tree import _arith as tree_ops
from ._common import check_learning_rate


class ScaleByLBFGSState(NamedTuple):
    """The state of :func:`scale_by_lbfgs`.

    ``count`` (int32) updates so far; ``params`` and ``updates`` seen by the last update;
    ``diff_params_memory`` and ``diff_updates_memory``, ring buffers of the last
    ``memory_size`` differences :math:`s_k = w_{k+1} - w_k` and :math:`y_k = u_{k+1} - u_k`:
    each leaf is its parameter's shape with a leading axis of length ``memory_size`` (slot
    ``k % memory_size`` holds pair ``k``); ``weights_memory`` the matching
    :math:`\\rho_k = 1/\\langle s_k, y_k\\rangle`, shape ``(memory_size,)``.
    """

    count: jax.Array
    params: Any
    updates: Any
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: jax.Array


def _memory_like(x: Any, memory_size: int) -> jax.Array:
    """Zeros of shape ``(memory_size, *x.shape)``; a sharded parameter's memory is sharded the
    same way, replicated along the memory axis. Made on the host outside a trace (no compile
    per shape; see ``optgrad._numerics.zeros_like``)."""
    shape = (memory_size, *x.shape)
    if isinstance(x, jax.core.Tracer):
        return jnp.zeros(shape, x.dtype)
    host = np.zeros(shape, x.dtype)
    sharding = getattr(x, "sharding", None)
    if isinstance(sharding, NamedSharding) and getattr(x, "committed", True):
        spec = PartitionSpec(None, *sharding.spec)
        return jax.device_put(host, NamedSharding(sharding.mesh, spec))
    return jax.device_put(host) if isinstance(x, jax.Array) else jnp.asarray(host)


def _slot(memory: Any, index: jax.Array) -> Any:
    return jax.tree.map(lambda m: m[index], memory)


def _axpy(x: Any, a: jax.Array, y: Any) -> Any:
    return jax.tree.map(lambda xi, yi: (xi + a * yi).astype(xi.dtype), x, y)


def two_loop(q, s_memory, y_memory, rho, gamma, order, dtype):
    r""":math:`H q` for the L-BFGS inverse-Hessian estimate :math:`H` (Nocedal & Wright,
    Algorithm 7.4): ``order`` lists the memory slots from oldest to newest; a slot with
    :math:`\rho = 0` (empty) changes nothing."""

    def newest_first(q, index):
        alpha = rho[index] * real_dot(_slot(s_memory, index), q, dtype)
        return _axpy(q, -alpha, _slot(y_memory, index)), alpha

    q, alphas = jax.lax.scan(newest_first, q, order, reverse=True)
    r = jax.tree.map(lambda x: (gamma * x).astype(x.dtype), q)

    def oldest_first(r, index_alpha):
        index, alpha = index_alpha
        beta = rho[index] * real_dot(_slot(y_memory, index), r, dtype)
        return _axpy(r, alpha - beta, _slot(s_memory, index)), None

    r, _ = jax.lax.scan(oldest_first, r, (order, alphas))
    return r


def scale_by_lbfgs(
    memory_size: int = 10, scale_init_precond: bool = True
) -> GradientTransformation:
    r"""The L-BFGS direction :math:`P_k u_k`: the updates times an inverse-Hessian estimate.

    .. math::
        s_k &= w_{k+1} - w_k, \quad y_k = u_{k+1} - u_k, \quad
            \rho_k = 1 / \langle s_k, y_k\rangle \\
        P_k &= V_{k-1}^\top \cdots V_{k-m}^\top (\gamma_k I) V_{k-m} \cdots V_{k-1}
            + \textstyle\sum_j (\ldots) \rho_j s_j s_j^\top, \qquad
            V_j = I - \rho_j y_j s_j^\top

    over the last :math:`m` = ``memory_size`` pairs (the BFGS update applied :math:`m` times to
    :math:`\gamma_k I`), computed by the two-loop recursion without forming :math:`P_k`. With
    ``scale_init_precond``, :math:`\gamma_k = \langle s_{k-1}, y_{k-1}\rangle / \lVert y_{k-1}
    \rVert^2` and, on the first update, :math:`\gamma_0 = \min(1, 1/\lVert u_0\rVert)`; else
    :math:`\gamma_k = 1`. A pair with :math:`\langle s, y\rangle = 0` gets :math:`\rho = 0`
    (ignored); pairs of negative curvature are kept, as in Optax.

    Returns the direction of *ascent*: chain a negative scale and a line search after it
    (:func:`lbfgs`). ``params`` must be given to ``update``. The state keeps the last params and
    updates and ring buffers of the :math:`s_k, y_k` that mirror the params with a leading
    axis of length ``memory_size`` (:class:`ScaleByLBFGSState`): memory is
    :math:`(2m + 2)` times the params'. Same numbers as Optax 0.2.8's ``scale_by_lbfgs``.

    Args:
        memory_size: the number of past curvature pairs kept (default 10).
        scale_init_precond: scale the initial inverse Hessian by the latest curvature pair (default
            ``True``).

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByLBFGSState`.

    References:
        Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006), Algorithms 7.4 and 7.5;
        Liu & Nocedal, "On the limited memory BFGS method for large scale optimization",
        Math. Programming 45 (1989).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_lbfgs(memory_size=3)
        >>> state = tx.init({"w": jnp.zeros(2)})
        >>> state.diff_params_memory["w"].shape
        (3, 2)
    """
    call = "optgrad.scale_by_lbfgs"
    _check.positive_int(call, "memory_size", memory_size)

    def init_fn(params):
        dtype = scalar_dtype(params)
        memory = jax.tree.map(lambda x: _memory_like(x, memory_size), params)
        return ScaleByLBFGSState(
            count=zero_count(),
            params=zeros_like(params),
            updates=zeros_like(params),
            diff_params_memory=memory,
            diff_updates_memory=jax.tree.map(lambda m: m, memory),
            weights_memory=jnp.zeros([memory_size], dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise TypeError(f"{call}.update needs `params` (L-BFGS remembers their differences)")
        check_state_mirrors(call, updates, state.updates, "updates")
        dtype = scalar_dtype(params)
        started = state.count > 0
        newest = (state.count - 1) % memory_size
        s = jax.tree.map(lambda p, q: jnp.where(started, p - q, 0).astype(p.dtype), params,
                         state.params)  # fmt: skip
        y = jax.tree.map(lambda u, v: jnp.where(started, u - v, 0).astype(u.dtype), updates,
                         state.updates)  # fmt: skip
        sy = real_dot(y, s, dtype)
        rho = jnp.where(sy == 0.0, 0.0, 1.0 / sy).astype(dtype)

        def store(memory, new):
            return jax.tree.map(lambda m, x: m.at[newest].set(x.astype(m.dtype)), memory, new)

        s_memory = store(state.diff_params_memory, s)
        y_memory = store(state.diff_updates_memory, y)
        weights = state.weights_memory.at[newest].set(rho)
        if scale_init_precond:
            yy = tree_ops.sum_of_squares(y).astype(dtype)
            gamma = jnp.where(yy > 0.0, sy / yy, 1.0)
            first = jnp.minimum(1.0, 1.0 / tree_ops.norm(updates).astype(dtype))
            gamma = jnp.where(started, gamma, first).astype(dtype)
        else:
            gamma = jnp.ones([], dtype)
        order = (state.count + jnp.arange(memory_size)) % memory_size
        direction = two_loop(updates, s_memory, y_memory, weights, gamma, order, dtype)
        new_state = ScaleByLBFGSState(
            safe_increment(state.count), params, updates, s_memory, y_memory, weights
        )
        return direction, new_state

    return GradientTransformation(init_fn, update_fn)


_DEFAULT_LINESEARCH = scale_by_zoom_linesearch(
    max_linesearch_steps=20, initial_guess_strategy="one"
)
"""Optax's default for :func:`lbfgs`: the zoom line search starting from a unit step."""


def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: GradientTransformation | None = _DEFAULT_LINESEARCH,
) -> GradientTransformation:
    r"""L-BFGS: :math:`w_{k+1} = w_k - \eta_k\, \alpha\, P_k \nabla f(w_k)`.

    :math:`P_k` is the inverse-Hessian estimate of :func:`scale_by_lbfgs` (see there for the
    maths), :math:`\alpha` the optional ``learning_rate`` (1 if ``None``) and :math:`\eta_k`
    the step a ``linesearch`` finds along :math:`-\alpha P_k \nabla f` -- by default the
    strong-Wolfe search :func:`scale_by_zoom_linesearch` starting from 1 each time; ``None``
    takes :math:`\eta_k = 1`. ``update`` then needs ``value=``, ``grad=`` and ``value_fn=``
    (the loss at ``params``, its gradient, the loss function);
    :func:`optgrad.value_and_grad_from_state` reuses what the line search computed. A given
    ``learning_rate`` is held in the state (``optgrad.tree.get(state, "learning_rate")``).
    Same arguments and, in float64, the same iterates as Optax 0.2.8's ``lbfgs``. For
    ``torch.optim.LBFGS``'s algorithm (several iterations per step, its own line search) use
    ``optgrad.torch.LBFGS``.

    Args:
        learning_rate: the factor :math:`\alpha`, a number or a schedule of the step count. ``None``
            (default) means 1.
        memory_size: the number of past curvature pairs kept (default 10).
        scale_init_precond: scale the initial inverse Hessian by the latest curvature pair (default
            ``True``).
        linesearch: the line search run along the direction (default: a zoom line search); ``None``
            for none.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the curvature memory and the
            line search's state.

    References:
        Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006), Algorithms 7.4, 7.5 and
        3.5/3.6; Liu & Nocedal (1989).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> loss = lambda w: jnp.sum((w - 2.0) ** 2)
        >>> tx, w = og.lbfgs(), jnp.zeros(3)
        >>> state, value_and_grad = tx.init(w), og.value_and_grad_from_state(loss)
        >>> for _ in range(3):
        ...     value, grad = value_and_grad(w, state=state)
        ...     updates, state = tx.update(grad, state, w, value=value, grad=grad, value_fn=loss)
        ...     w = og.apply_updates(w, updates)
        >>> [round(x, 5) for x in w.tolist()]
        [2.0, 2.0, 2.0]
    """
    call = "optgrad.lbfgs"
    _check.positive_int(call, "memory_size", memory_size)
    if linesearch is not None and not (
        callable(getattr(linesearch, "init", None))
        and callable(getattr(linesearch, "update", None))
    ):
        raise TypeError(
            f"{call}(linesearch=...) must be a gradient transformation such as "
            f"optgrad.scale_by_zoom_linesearch(20) or None, got {linesearch!r}"
        )
    search = identity() if linesearch is None else linesearch
    direction = scale_by_lbfgs(memory_size, scale_init_precond)
    if learning_rate is None:
        return chain(direction, scale(-1.0), search)
    check_learning_rate(call, learning_rate)

    def build(learning_rate):
        return chain(direction, scale_by_learning_rate(learning_rate), search)

    return with_hyperparams(build, learning_rate=learning_rate)
