"""PPO's loss terms as pure functions on flat minibatch arrays ``[B]``.

Value clipping acts on predictions, so it lives here as part of the loss, not as a gradient transform.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

__all__ = [
    "normalize_advantages",
    "clipped_policy_loss",
    "elementwise_value_loss",
    "clip_value_prediction",
    "value_clip_radius",
    "value_loss",
    "PolicyLossParts",
]


def normalize_advantages(advantages: jax.Array, std_floor: float | jax.Array) -> jax.Array:
    """Centre the advantages, and divide by their std only when it is above ``std_floor``.

    Report 001's robust rule: when every advantage is nearly the same (a converged or frozen batch),
    dividing by a tiny std turns float noise into unit-variance "signal"; centring alone keeps
    the sign information and the scale honest.
    """
    chex.assert_rank(advantages, 1)
    mean = jnp.mean(advantages)
    std = jnp.std(advantages)
    centred = advantages - mean
    return jnp.where(std > std_floor, centred / (std + 1e-8), centred)


class PolicyLossParts(NamedTuple):
    loss: jax.Array
    ratio: jax.Array
    log_ratio: jax.Array


def clipped_policy_loss(
    log_prob_new: jax.Array,
    log_prob_old: jax.Array,
    advantages: jax.Array,
    clip_epsilon: float | jax.Array,
) -> PolicyLossParts:
    """The clipped surrogate, negated for minimisation:
    ``-mean(min(r A, clip(r, 1-eps, 1+eps) A))`` with ``r = exp(log pi_new - log pi_old)``."""
    chex.assert_equal_shape([log_prob_new, log_prob_old, advantages])
    log_ratio = log_prob_new - log_prob_old
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_epsilon, 1.0 + clip_epsilon) * advantages
    return PolicyLossParts(loss=-jnp.mean(jnp.minimum(unclipped, clipped)), ratio=ratio, log_ratio=log_ratio)


def elementwise_value_loss(prediction: jax.Array, target: jax.Array, kind: str,
                           huber_delta: float | jax.Array) -> jax.Array:
    """Per-sample value error.

    * ``mse``: ``(v - R)**2`` (no 1/2: the loss reads 1.0 exactly when a critic predicts the mean of
      unit-variance targets, which is how report 003 recognised its bug; ``value_loss_coef`` = 0.5 gives
      the usual factor);
    * ``huber``: ``0.5 x**2`` for ``|x| <= delta``, else ``delta (|x| - delta / 2)``, robust to outliers;
    * ``mixed``: report 001's ``0.5 * mse + 0.5 * huber``.
    """
    error = prediction - target
    if kind == "mse":
        return error**2
    huber = optax.huber_loss(prediction, target, delta=huber_delta)
    if kind == "huber":
        return huber
    if kind == "mixed":
        return 0.5 * error**2 + 0.5 * huber
    raise ValueError(f"unknown value loss {kind!r}")


def value_clip_radius(old_prediction: jax.Array, mode: str, epsilon: float | jax.Array,
                      floor: float | jax.Array) -> jax.Array:
    """How far the critic's output may move from its rollout-time value in one update.

    * ``absolute``: ``eps`` (PPO2). With returns in the thousands a fixed ``eps = 0.2`` lets the critic
      move 0.2 per update and it never catches up (report 000);
    * ``relative``: ``eps * max(|v_old|, floor)``, so it scales with the values; ``floor`` keeps it from
      collapsing to zero when ``v_old`` is near 0.
    """
    if mode == "absolute":
        return jnp.broadcast_to(jnp.asarray(epsilon, jnp.float32), jnp.shape(old_prediction))
    if mode == "relative":
        return epsilon * jnp.maximum(jnp.abs(old_prediction), floor)
    raise ValueError(f"unknown value clipping mode {mode!r}")


def clip_value_prediction(prediction: jax.Array, old_prediction: jax.Array, mode: str,
                          epsilon: float | jax.Array, floor: float | jax.Array) -> jax.Array:
    """``v_old + clip(v - v_old, -radius, radius)`` with ``value_clip_radius``; ``off`` returns ``v``."""
    if mode == "off":
        return prediction
    radius = value_clip_radius(old_prediction, mode, epsilon, floor)
    return old_prediction + jnp.clip(prediction - old_prediction, -radius, radius)


def value_loss(
    prediction: jax.Array,
    old_prediction: jax.Array,
    target: jax.Array,
    *,
    kind: str = "mse",
    clipping: str = "off",
    clip_epsilon: float | jax.Array = 0.2,
    clip_floor: float | jax.Array = 0.0,
    huber_delta: float | jax.Array = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """Mean value loss and the fraction of samples whose prediction moved further than the clip radius.

    The defaults are a plain squared error without clipping; ``PPOConfig`` passes its own fields.

    With clipping on, each sample takes the larger of the clipped and unclipped losses (the
    pessimistic bound of PPO2), so clipping can only slow the critic down, never speed it up. The
    fraction compares the change ``|v - v_old|`` with the radius: testing ``clipped != v`` instead
    counts float rounding in ``v_old + (v - v_old)`` as clipping (4% of samples where the clip never
    binds).
    """
    chex.assert_equal_shape([prediction, old_prediction, target])
    unclipped = elementwise_value_loss(prediction, target, kind, huber_delta)
    if clipping == "off":
        return jnp.mean(unclipped), jnp.zeros((), jnp.float32)
    radius = value_clip_radius(old_prediction, clipping, clip_epsilon, clip_floor)
    change = prediction - old_prediction
    clipped = elementwise_value_loss(old_prediction + jnp.clip(change, -radius, radius), target, kind, huber_delta)
    fraction = jnp.mean((jnp.abs(change) > radius).astype(jnp.float32))
    return jnp.mean(jnp.maximum(unclipped, clipped)), fraction
