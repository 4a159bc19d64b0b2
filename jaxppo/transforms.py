"""Gradient-side stability controls as optax transforms.

* ``clip_by_global_norm``: the whole gradient is rescaled by ``min(1, max_norm / ||g||)``, which keeps
  its direction (rejax passes ``max_grad_norm`` to ``optax.clip``, which clips each element separately
  and so changes the direction; we do not).
* A separate learning rate for the critic (seed 001) via ``optax.multi_transform`` over a
  ``{"actor": ..., "critic": ...}`` parameter tree.
* ``optax.apply_if_finite``: an update with a NaN or Inf anywhere is replaced by zeros and counted, so
  one bad batch cannot poison the parameters.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "GradientStats",
    "gradient_stats",
    "linear_schedule",
    "make_optimizer",
    "nonfinite_update_count",
]

# apply_if_finite gives up after this many consecutive bad updates and applies them anyway; we never want
# that, so the limit is effectively infinite.
_NEVER_GIVE_UP = 2**30


class GradientStats(NamedTuple):
    """Seed 002's diagnostics: the raw global norm, and ``clipped / raw`` (1.0 when not clipped)."""

    grad_norm: jax.Array
    grad_clip_ratio: jax.Array


def gradient_stats(grads: Any, max_grad_norm: Optional[float | jax.Array]) -> GradientStats:
    """Global L2 norm of ``grads`` before clipping, and the factor ``clip_by_global_norm`` applies."""
    norm = optax.tree.norm(grads)
    if max_grad_norm is None:
        ratio = jnp.ones_like(norm)
    else:
        ratio = jnp.where(norm > max_grad_norm, max_grad_norm / jnp.maximum(norm, 1e-30), 1.0)
    return GradientStats(grad_norm=norm, grad_clip_ratio=ratio)


def linear_schedule(initial: float | jax.Array, total_steps: int) -> Callable[[jax.Array], jax.Array]:
    """Learning rate decaying linearly from ``initial`` to 0 over ``total_steps`` optimiser steps.

    Works with ``initial`` a tracer, so a vmapped sweep over learning rates shares one program.
    """

    def schedule(count: jax.Array) -> jax.Array:
        fraction = 1.0 - jnp.minimum(count, total_steps) / total_steps
        return initial * fraction

    return schedule


def make_optimizer(
    learning_rate: Any,
    *,
    max_grad_norm: Optional[float | jax.Array],
    adam_eps: float | jax.Array = 1e-8,
    critic_learning_rate: Any = None,
    skip_nonfinite: bool = True,
) -> optax.GradientTransformation:
    """Global-norm clipping, then Adam, guarded against non-finite updates.

    ``learning_rate`` (and ``critic_learning_rate``) may be a number or an optax schedule. When
    ``critic_learning_rate`` is given the parameters must be a dict ``{"actor": ..., "critic": ...}``
    and each half gets its own Adam; otherwise one Adam serves the whole tree.
    """
    if critic_learning_rate is None:
        step = optax.adam(learning_rate, eps=adam_eps)
    else:
        step = optax.multi_transform(
            {
                "actor": optax.adam(learning_rate, eps=adam_eps),
                "critic": optax.adam(critic_learning_rate, eps=adam_eps),
            },
            param_labels=_actor_critic_labels,
        )
    parts = [] if max_grad_norm is None else [optax.clip_by_global_norm(max_grad_norm)]
    chain = optax.chain(*parts, step)
    if skip_nonfinite:
        chain = optax.apply_if_finite(chain, max_consecutive_errors=_NEVER_GIVE_UP)
    return chain


def _actor_critic_labels(params: Any) -> Any:
    if not isinstance(params, dict) or set(params) != {"actor", "critic"}:
        raise ValueError("critic_learning_rate needs parameters shaped {'actor': ..., 'critic': ...}.")
    return {name: jax.tree.map(lambda _: name, subtree) for name, subtree in params.items()}


def nonfinite_update_count(opt_state: Any) -> jax.Array:
    """How many updates ``apply_if_finite`` has skipped so far (0 if the guard is off)."""
    found = optax.tree_utils.tree_get(opt_state, "total_notfinite", default=None)
    if found is None:
        return jnp.zeros((), jnp.int32)
    return jnp.asarray(found, jnp.int32)
