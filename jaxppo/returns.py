"""Return estimators over one trajectory: GAE, Monte Carlo, TD(lambda), n-step and one-step TD targets.

Each function is unbatched: arrays are ``[T]`` in time order, and the caller adds the environment
axis with ``jax.vmap`` (``in_axes=1`` for ``[T, N]`` rollouts). Backward recursions are
``lax.scan(reverse=True)``.

Time-limit truncation is not termination. Every step carries ``bootstrap_value_t``: the value of the
observation that *followed* step t in the same episode, i.e. V(s_{t+1}) normally and
V(``info["final_observation"]``) when the episode was truncated at t (gymnax auto-resets, so the next
observation in the rollout already belongs to a new episode). A terminated step bootstraps from zero.
"""

from __future__ import annotations

from typing import Optional

import chex
import jax
import jax.numpy as jnp

__all__ = ["gae_advantages", "monte_carlo_returns", "lambda_returns", "n_step_returns", "td_targets",
           "running_discounted_return", "symlog", "symexp"]


def gae_advantages(
    r_t: jax.Array,
    v_t: jax.Array,
    bootstrap_value_t: jax.Array,
    terminated_t: jax.Array,
    done_t: jax.Array,
    gamma: float | jax.Array,
    gae_lambda: float | jax.Array,
) -> jax.Array:
    """Generalised advantage estimates (Schulman et al., 2016) for one trajectory.

    delta_t = r_t + gamma * (1 - terminated_t) * bootstrap_value_t - v_t
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   A_T = 0

    ``done_t = terminated_t or truncated_t`` cuts the recursion at every episode boundary; the last
    step of the rollout needs no special case because its ``bootstrap_value_t`` already is V(s_T).
    Returns ``A_t`` with shape ``[T]``; the value target is ``A_t + v_t``.
    """
    chex.assert_rank([r_t, v_t, bootstrap_value_t, terminated_t, done_t], 1)
    chex.assert_equal_shape([r_t, v_t, bootstrap_value_t, terminated_t, done_t])
    not_terminated = 1.0 - terminated_t.astype(jnp.float32)
    not_done = 1.0 - done_t.astype(jnp.float32)
    delta_t = r_t + gamma * not_terminated * bootstrap_value_t - v_t

    def backward(advantage_next, inputs):
        delta, continues = inputs
        advantage = delta + gamma * gae_lambda * continues * advantage_next
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros((), delta_t.dtype), (delta_t, not_done), reverse=True
    )
    return advantages


def monte_carlo_returns(
    r_t: jax.Array,
    bootstrap_value_t: jax.Array,
    terminated_t: jax.Array,
    done_t: jax.Array,
    gamma: float | jax.Array,
) -> jax.Array:
    """Discounted returns G_t of one trajectory, computed from rewards alone inside each episode.

    G_t = r_t + gamma * G_{t+1}                       inside an episode
    G_t = r_t                                          at termination
    G_t = r_t + gamma * bootstrap_value_t              at truncation, and at the rollout's last step

    The rollout's last step bootstraps because the episode continues beyond the window; cutting it
    there would make every late step's target wrongly small. (With ``gae_lambda = 1`` GAE satisfies
    ``A_t + v_t = G_t``; the tests check that identity.)
    """
    chex.assert_rank([r_t, bootstrap_value_t, terminated_t, done_t], 1)
    chex.assert_equal_shape([r_t, bootstrap_value_t, terminated_t, done_t])
    not_terminated = 1.0 - terminated_t.astype(jnp.float32)
    done = done_t.astype(jnp.float32)
    # The last step's "next return" is its bootstrap value, exactly like a truncation.
    is_last = jnp.zeros_like(done).at[-1].set(1.0)
    cut = jnp.maximum(done, is_last)

    def backward(return_next, inputs):
        reward, bootstrap, continues, cut_here = inputs
        next_value = cut_here * bootstrap + (1.0 - cut_here) * return_next
        g = reward + gamma * continues * next_value
        return g, g

    _, returns = jax.lax.scan(
        backward,
        jnp.zeros((), r_t.dtype),
        (r_t, bootstrap_value_t, not_terminated, cut),
        reverse=True,
    )
    return returns


def lambda_returns(
    r_t: jax.Array,
    discount_t: jax.Array,
    bootstrap_value_t: jax.Array,
    lambda_: float | jax.Array = 1.0,
) -> jax.Array:
    """TD(lambda) returns (Sutton and Barto, 2018, section 12.1) for one trajectory.

    G_t = r_t + discount_t * ((1 - lambda) * bootstrap_value_t + lambda * G_{t+1}),
    G_{T-1} = r_{T-1} + discount_{T-1} * bootstrap_value_{T-1}

    ``discount_t`` is ``gamma`` where the episode continues after step t and 0 where it terminated;
    ``bootstrap_value_t`` is V(s_{t+1}) (the final observation's value on truncation, see above).
    Where an episode is truncated or reset at t, pass ``lambda_`` 0 for that step by cutting the
    trajectory there, or use ``gae_advantages``, whose ``done_t`` does the cut. ``lambda_ = 0`` gives
    one-step TD targets, ``lambda_ = 1`` Monte Carlo returns bootstrapped at the end. Returns ``[T]``.
    """
    chex.assert_rank([r_t, discount_t, bootstrap_value_t], 1)
    chex.assert_equal_shape([r_t, discount_t, bootstrap_value_t])

    def backward(g_next, inputs):
        r, discount, value = inputs
        g = r + discount * ((1.0 - lambda_) * value + lambda_ * g_next)
        return g, g

    _, returns = jax.lax.scan(backward, bootstrap_value_t[-1], (r_t, discount_t, bootstrap_value_t), reverse=True)
    return returns


def n_step_returns(
    r_t: jax.Array,
    discount_t: jax.Array,
    bootstrap_value_t: jax.Array,
    n: int,
) -> jax.Array:
    """n-step returns for one trajectory: ``n`` rewards, then the bootstrap value (Sutton and Barto 7.1).

    G_t = r_t + d_t r_{t+1} + ... + (d_t ... d_{t+m-2}) r_{t+m-1} + (d_t ... d_{t+m-1}) bootstrap_value_{t+m-1}

    with ``m = min(n, T - t)``: near the end of the trajectory fewer rewards are summed and the last
    step's bootstrap value closes the sum. Same conventions as ``lambda_returns``; ``n = T`` equals
    ``lambda_returns`` with ``lambda_ = 1`` and ``n = 1`` the one-step target. Returns ``[T]``.
    """
    chex.assert_rank([r_t, discount_t, bootstrap_value_t], 1)
    chex.assert_equal_shape([r_t, discount_t, bootstrap_value_t])
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be a positive integer.")
    length = r_t.shape[0]
    t = jnp.arange(length)
    returns = bootstrap_value_t[jnp.minimum(t + n - 1, length - 1)]
    for k in reversed(range(n)):
        index = jnp.minimum(t + k, length - 1)
        returns = jnp.where(t + k < length, r_t[index] + discount_t[index] * returns, returns)
    return returns


def td_targets(
    r_t: jax.Array,
    q_next_t: jax.Array,
    terminated_t: jax.Array,
    gamma: float | jax.Array,
    target_clip: Optional[float | jax.Array] = None,
) -> jax.Array:
    """One-step Q-learning targets ``y = r + gamma * (1 - terminated) * q_next``, optionally clipped.

    ``q_next_t`` is the bootstrap value of the next state (max of the target network, or the target
    network's value of the online network's argmax for double DQN), evaluated on the *final*
    observation when the episode was truncated, so truncation still bootstraps. ``target_clip``
    clips the target to ``[-target_clip, target_clip]`` (report 002 uses 50).
    """
    chex.assert_equal_shape([r_t, q_next_t, terminated_t])
    not_terminated = 1.0 - terminated_t.astype(jnp.float32)
    target = r_t + gamma * not_terminated * q_next_t
    if target_clip is not None:
        target = jnp.clip(target, -target_clip, target_clip)
    return target


def running_discounted_return(previous: jax.Array, r_t: jax.Array, done_t: jax.Array, gamma: float | jax.Array
                              ) -> tuple[jax.Array, jax.Array]:
    """One step of ``G_t = r_t + gamma * G_{t-1}``, the statistic reward scaling reads.

    Returns ``(G_t, carry)``: ``G_t`` to record, and the sum to continue from, restarted at 0 where the
    episode ended or where ``G_t`` is non-finite (carried on, a NaN reward would make every later sample
    of the episode non-finite and left out of the statistics).
    """
    current = previous * gamma + r_t
    restart = jnp.logical_or(done_t, ~jnp.isfinite(current))
    return current, jnp.where(restart, 0.0, current)


def symlog(x: jax.Array) -> jax.Array:
    """``sign(x) * log(1 + |x|)`` (Hafner et al. 2023, DreamerV3): compresses returns of any magnitude
    into a range a critic can fit (1e5 -> 11.5) while staying the identity's slope near 0."""
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(y: jax.Array) -> jax.Array:
    """The inverse of ``symlog``: ``sign(y) * (exp(|y|) - 1)``."""
    return jnp.sign(y) * jnp.expm1(jnp.abs(y))
