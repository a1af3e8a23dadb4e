"""``torch.optim.Muon``: momentum orthogonalised by a Newton–Schulz iteration, for matrices."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation
from .._hyperparams import with_hyperparams
from .._numerics import as_scalar, zeros_like
from .._optimizers._common import check_hyperparams
from .._update import check_state_mirrors
from ._rounding import lerp, rounded

_ADJUSTMENTS = (None, "original", "match_rms_adamw")


class MuonState(NamedTuple):
    """torch's ``momentum_buffer`` :math:`B`, mirroring the (2-D) params."""

    momentum_buffer: Any


def _check_matrices(call: str, tree: Any) -> None:
    """Every leaf is a real 2-D array; the error names the first that is not, by its path."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        where = "params" + jax.tree_util.keystr(path)
        shape = tuple(jnp.shape(leaf))
        if len(shape) != 2:
            raise ValueError(
                f"{call} optimizes 2-D parameters (matrices) only, but {where} has shape "
                f"{shape}. As torch's documentation advises, optimize biases, norms, "
                "embeddings and other non-matrix parameters with another optimizer (for "
                "example optgrad.torch.AdamW) by partitioning the parameters."
            )
        if jnp.issubdtype(jnp.result_type(leaf), jnp.complexfloating):
            raise TypeError(f"{call} does not support complex parameters, got one at {where}")


def _round(x: jax.Array) -> jax.Array:
    """``x`` rounded to bfloat16, as torch's bfloat16 kernels round each result."""
    return x.astype(jnp.bfloat16)


def _matmul(x: jax.Array, y: jax.Array) -> jax.Array:
    """A bfloat16 product accumulated in float32 (exact products, like torch's CPU kernels)."""
    return jnp.matmul(x, y, preferred_element_type=jnp.float32)


def _newton_schulz(u: jax.Array, coefficients: Any, steps: int, eps: jax.Array) -> jax.Array:
    """:math:`k` quintic Newton–Schulz steps in bfloat16, each product rounded as torch rounds.

    .. math:: X_0 = U / \\max(\\|U\\|_F, \\epsilon), \\quad A = X X^\\top, \\quad
        X \\leftarrow a X + (b A + c A^2) X

    on the wide orientation of :math:`U` (transposed when it has more rows than columns).
    """
    a, b, c = coefficients
    x = _round(u)
    tall = u.shape[0] > u.shape[1]
    if tall:
        x = x.T
    norm = _round(jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float32)))))
    norm = jnp.maximum(norm, _round(eps))
    x = _round(x.astype(jnp.float32) / norm.astype(jnp.float32))
    for _ in range(steps):
        gram = _round(_matmul(x, x.T))
        poly = _round(b * gram.astype(jnp.float32) + c * _matmul(gram, gram))
        x = _round(a * x.astype(jnp.float32) + _matmul(poly, x))
    return x.T if tall else x


def _lr_ratio(shape: tuple[int, ...], adjust_lr_fn: str | None) -> float:
    """torch's per-matrix learning-rate factor for a ``(rows, cols)`` parameter."""
    rows, cols = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1.0, rows / cols))


def _muon_step(
    lr: Any,
    weight_decay: Any,
    momentum: Any,
    nesterov: bool,
    ns_coefficients: Any,
    eps: Any,
    ns_steps: int,
    adjust_lr_fn: str | None,
) -> GradientTransformation:
    """The whole Muon step, returned as ``new_params - params``.

    torch writes ``theta <- fma(-lr s, O, fl(theta * (1 - lr wd)))``; the update is computed
    as the difference between that and ``theta``, which ``apply_updates`` adds back exactly
    (Sterbenz) for steps smaller than the parameter. This matters here more than elsewhere:
    one float32 ulp of difference in a parameter can flip a bfloat16 rounding in a later
    Newton-Schulz input, and that flip moves the trajectory by ``lr * 2**-9``.
    """
    call = "optgrad.torch.Muon"

    def init_fn(params):
        _check_matrices(call, params)
        return MuonState(zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _check_matrices(call, updates)
        if params is None:
            raise ValueError(
                f"{call}.update needs the params: call `tx.update(grads, state, params)`"
            )
        check_state_mirrors(call, updates, state.momentum_buffer, "momentum_buffer")
        gamma, wd, mu, e = map(as_scalar, (lr, weight_decay, momentum, eps))
        coefficients = tuple(as_scalar(x) for x in ns_coefficients)
        keep = 1.0 - gamma * wd
        buffers = jax.tree.map(lambda g, b: lerp(b, g, 1.0 - mu), updates, state.momentum_buffer)

        def step(g, b, p):
            u = lerp(g, b, mu) if nesterov else b
            o = _newton_schulz(u, coefficients, ns_steps, e).astype(jnp.float32)
            p32 = p.astype(jnp.promote_types(p.dtype, jnp.float32))
            alpha = -(gamma * _lr_ratio(g.shape, adjust_lr_fn))
            # torch rounds the decay, then adds `alpha * o` in one fused multiply-add (so
            # does XLA once the decayed product is kept rounded).
            new = rounded(p32 * keep) + alpha * o
            return (new - p32).astype(g.dtype)

        out = jax.tree.map(step, updates, buffers, params)
        buffers = jax.tree.map(lambda n, b: n.astype(b.dtype), buffers, state.momentum_buffer)
        return out, MuonState(buffers)

    return GradientTransformation(init_fn, update_fn)


def Muon(
    lr: Any = 1e-3,
    weight_decay: Any = 0.1,
    momentum: Any = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
    eps: Any = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
) -> GradientTransformation:
    r"""``torch.optim.Muon``, step for step: orthogonalised momentum for 2-D parameters.

    .. math::
        B_t &= \mu B_{t-1} + (1-\mu)\, g_t, \qquad
        \tilde B_t = \begin{cases} (1-\mu)\, g_t + \mu B_t & \text{nesterov} \\
            B_t & \text{otherwise} \end{cases} \\
        O_t &= \mathrm{NS}^{(a,b,c)}_k(\tilde B_t), \qquad
        \theta_t = (1 - \gamma_t\lambda)\,\theta_{t-1} - \gamma_t\, s(A, B)\, O_t

    with :math:`\mu` = ``momentum``, :math:`\lambda` = ``weight_decay`` (decoupled),
    :math:`\gamma` = ``lr``; the momentum is an exponential average, as torch's code computes it
    (its docstring writes :math:`\mu B + g`). :math:`\mathrm{NS}` is ``ns_steps`` :math:`=k`
    steps of :math:`X \leftarrow aX + (bXX^\top + c(XX^\top)^2)X` from
    :math:`X_0 = \tilde B/\max(\|\tilde B\|_F, \epsilon)`, with :math:`(a, b, c)` =
    ``ns_coefficients``, run in bfloat16 on the wide orientation of the matrix as torch runs
    it (every product accumulated in float32 and rounded to bfloat16). For an
    :math:`A \times B` parameter, ``adjust_lr_fn`` gives :math:`s = \sqrt{\max(1, A/B)}` for
    ``None`` or ``"original"`` (Jordan) and :math:`s = 0.2\sqrt{\max(A, B)}` for
    ``"match_rms_adamw"`` (Liu et al.). Jordan et al., "Muon: An optimizer for hidden layers in
    neural networks" (2024); Liu et al., "Muon is Scalable for LLM Training" (2025).

    Every parameter must be a real 2-D array; any other is refused when the state is built
    (``init``, or the trace of ``update``) with its path and shape. Optimize the others with
    another optimizer through a partition of the parameters. Like torch, there is no
    ``maximize``. ``lr``, ``weight_decay``, ``momentum``, ``eps`` and ``ns_coefficients`` (a
    triple) are held in the state under these names and may be schedules of the update count;
    the buffer is ``momentum_buffer``. On small matrices the bfloat16 iteration matches
    torch's bit for bit; on large ones the order of float32 accumulation inside the products
    can differ (here and between torch's own kernels) and flip a bfloat16 rounding.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        weight_decay: the decay rate :math:`\lambda` (0 for none).
        momentum: the momentum factor :math:`\mu` (0 for none).
        nesterov: use Nesterov momentum.
        ns_coefficients: the three coefficients of the Newton-Schulz iteration.
        eps: the :math:`\epsilon` that keeps the denominator away from zero.
        ns_steps: the number of Newton-Schulz iterations.
        adjust_lr_fn: how the learning rate is scaled by the matrix shape (``None`` for torch's
            default).

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.Muon(lr=0.1, weight_decay=0.0)
        >>> params = {"w": jnp.zeros((2, 2))}
        >>> updates, _ = tx.update({"w": jnp.eye(2)}, tx.init(params), params)
        >>> [round(x, 2) for x in updates["w"][0].tolist()]  # about -0.1 * I (NS is inexact)
        [-0.11, 0.0]
        >>> og.torch.Muon().init({"b": jnp.zeros(3)})
        Traceback (most recent call last):
        ...
        ValueError: optgrad.torch.Muon optimizes 2-D parameters (matrices) only, but ...
    """
    call = "optgrad.torch.Muon"
    check_hyperparams(
        call,
        lr=("lr", lr),
        weight_decay=("nonneg", weight_decay),
        momentum=("nonneg", momentum),
        eps=("nonneg", eps),
    )
    if not (isinstance(ns_coefficients, (tuple, list)) and len(ns_coefficients) == 3):
        raise ValueError(
            f"{call}(ns_coefficients=...) must be a triple (a, b, c), e.g. "
            f"ns_coefficients=(3.4445, -4.775, 2.0315), got ns_coefficients={ns_coefficients!r}"
        )
    for x in ns_coefficients:
        _check.scalar_or_schedule(call, "ns_coefficients", x)
        _check.number(call, "ns_coefficients", x)
    _check.positive_int(call, "ns_steps", ns_steps)
    if ns_steps >= 100:
        raise ValueError(
            f"{call}(ns_steps=...) must be less than 100 (torch's rule), got {ns_steps}"
        )
    _check.one_of(call, "adjust_lr_fn", adjust_lr_fn, _ADJUSTMENTS)

    def build(lr, weight_decay, momentum, eps, ns_coefficients):
        return _muon_step(
            lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn
        )

    return with_hyperparams(
        build,
        lr=lr,
        weight_decay=weight_decay,
        momentum=momentum,
        eps=eps,
        ns_coefficients=tuple(ns_coefficients),
    )
