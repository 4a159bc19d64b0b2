"""TD errors, their losses, and the diagnostics report 002 reads (Q range, greedy agreement, action mix).

Shapes: ``q_tm1 [B, A]`` are online action values of the sampled observations, ``a_tm1 [B]`` the actions
taken, ``q_t_target [B, A]`` / ``q_t_online [B, A]`` the target and online values of the *next*
observation (the pre-reset final observation when the episode was truncated or terminated there).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp

from jaxppo.returns import symexp, symlog, td_targets

__all__ = [
    "elementwise_loss",
    "bootstrap_values",
    "mask_q_values",
    "TDOutput",
    "q_learning_loss",
    "greedy_agreement",
    "greedy_action_histogram",
]


def elementwise_loss(td_error: jax.Array, kind: str, huber_delta: float | jax.Array) -> jax.Array:
    """``0.5 x**2`` (mse), or Huber: ``0.5 x**2`` for ``|x| <= delta`` else ``delta (|x| - delta / 2)``.

    Both use the 0.5 factor so the two agree exactly inside ``[-delta, delta]``: switching ``loss``
    changes only how outliers are weighted, never the step size on ordinary errors. Huber's gradient
    is bounded by ``delta``, which is why it is the default (report 002).
    """
    if kind == "mse":
        return 0.5 * td_error**2
    if kind == "huber":
        abs_error = jnp.abs(td_error)
        quadratic = jnp.minimum(abs_error, huber_delta)
        return 0.5 * quadratic**2 + huber_delta * (abs_error - quadratic)
    raise ValueError(f"loss={kind!r} is not one of ['mse', 'huber'].")


def bootstrap_values(q_t_target: jax.Array, q_t_online: jax.Array, double_dqn: bool) -> jax.Array:
    """``max_a Q_target(s', a)``, or for double DQN ``Q_target(s', argmax_a Q_online(s', a))``.

    Double DQN (van Hasselt et al., 2016) picks the action with one network and scores it with the
    other, removing the max operator's upward bias.
    """
    chex.assert_equal_shape([q_t_target, q_t_online])
    if not double_dqn:
        return jnp.max(q_t_target, axis=-1)
    best = jnp.argmax(q_t_online, axis=-1)
    return jnp.take_along_axis(q_t_target, best[..., None], axis=-1)[..., 0]


MASKED_Q = -1e9  # finite, so a masked value times a zero discount stays 0 (not NaN)


def mask_q_values(q_values: jax.Array, action_mask: Optional[jax.Array]) -> jax.Array:
    """``q_values [..., A]`` with illegal actions (``action_mask`` False) at ``MASKED_Q``, so argmax and max
    see legal actions only. A row with no legal action (an episode's terminal observation may have
    none) is left as it is; ``None`` masks nothing."""
    if action_mask is None:
        return q_values
    chex.assert_equal_shape([q_values, action_mask])
    keep = jnp.logical_or(action_mask, ~jnp.any(action_mask, axis=-1, keepdims=True))
    return jnp.where(keep, q_values, MASKED_Q)


class TDOutput(NamedTuple):
    loss: jax.Array  # scalar, mean over the batch
    q_taken: jax.Array  # [B] Q(s, a) of the online network
    target: jax.Array  # [B] TD targets (after clipping)
    target_clip_fraction: jax.Array  # fraction of targets the clip changed


def q_learning_loss(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    terminated_t: jax.Array,
    q_t_target: jax.Array,
    q_t_online: jax.Array,
    *,
    gamma: float | jax.Array = 0.99,
    double_dqn: bool = False,
    kind: str = "mse",
    huber_delta: float | jax.Array = 1.0,
    target_clip: Optional[float | jax.Array] = None,
    value_transform: str = "off",
) -> TDOutput:
    """Mean loss of ``Q(s, a) - stop_gradient(y)`` with ``y = returns.td_targets(r, bootstrap, terminated)``.

    The target is held fixed (``stop_gradient``): gradients flow only through ``Q(s, a)``. With
    ``value_transform="symlog"`` the network predicts ``symlog(Q)``: the bootstrap is read back with
    ``symexp``, the TD target is formed (and clipped) in return units, and the loss compares
    ``symlog(y)`` with the prediction (Pohlen et al. 2018's transformed Bellman target with DreamerV3's
    ``symlog``), so its scale no longer grows with the rewards'. ``q_taken`` and ``target`` are then in
    symlog units too.
    """
    chex.assert_rank([q_tm1, a_tm1, r_t, terminated_t], [2, 1, 1, 1])
    chex.assert_equal_shape([q_tm1, q_t_target])
    q_next = bootstrap_values(q_t_target, q_t_online, double_dqn)
    if value_transform == "symlog":
        q_next = symexp(q_next)
    elif value_transform != "off":
        raise ValueError(f"value_transform={value_transform!r} is not one of ['off', 'symlog'].")
    unclipped = td_targets(r_t, q_next, terminated_t, gamma)
    target = td_targets(r_t, q_next, terminated_t, gamma, target_clip)
    if value_transform == "symlog":
        unclipped, target = symlog(unclipped), symlog(target)
    target = jax.lax.stop_gradient(target)
    q_taken = jnp.take_along_axis(q_tm1, a_tm1[:, None].astype(jnp.int32), axis=-1)[:, 0]
    loss = jnp.mean(elementwise_loss(q_taken - target, kind, huber_delta))
    clip_fraction = jnp.mean((target != unclipped).astype(jnp.float32))
    return TDOutput(loss, q_taken, target, clip_fraction)


def greedy_agreement(q_online: jax.Array, q_target: jax.Array) -> jax.Array:
    """Fraction of rows where the online and target networks choose the same greedy action.

    Report 002's early warning: it sat at 84-90% while learning was healthy and fell to 10% before the
    loss exploded. Ties resolve to the lowest action index in both networks (``argmax``).
    """
    chex.assert_equal_shape([q_online, q_target])
    same = jnp.argmax(q_online, axis=-1) == jnp.argmax(q_target, axis=-1)
    return jnp.mean(same.astype(jnp.float32))


def greedy_action_histogram(q_values: jax.Array) -> jax.Array:
    """Fraction of rows whose greedy action is each action: ``[num_actions]``, summing to 1."""
    chex.assert_rank(q_values, 2)
    counts = jax.nn.one_hot(jnp.argmax(q_values, axis=-1), q_values.shape[-1], dtype=jnp.float32)
    return jnp.mean(counts, axis=0)
