"""Per-environment episode returns and lengths, carried as pure state through a rollout."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["EpisodeTracker", "init_tracker", "track_episodes", "finished_episode_means", "step_counters",
           "counter_metrics"]


@struct.dataclass
class EpisodeTracker:
    """Running (undiscounted, raw-reward) return and length of the episode each env is in."""

    episode_return: jax.Array  # [num_envs]
    episode_length: jax.Array  # [num_envs]


def init_tracker(num_envs: int) -> EpisodeTracker:
    """Zeroed per-env episode return and length, leaves ``[num_envs]``."""
    return EpisodeTracker(
        episode_return=jnp.zeros((num_envs,), jnp.float32),
        episode_length=jnp.zeros((num_envs,), jnp.int32),
    )


def track_episodes(
    tracker: EpisodeTracker, reward: jax.Array, done: jax.Array
) -> tuple[EpisodeTracker, jax.Array, jax.Array]:
    """Adds one step; returns the new tracker and, per env, the finished return/length (0 if not done)."""
    chex.assert_equal_shape([tracker.episode_return, reward, done])
    total_return = tracker.episode_return + reward.astype(jnp.float32)
    total_length = tracker.episode_length + 1
    finished_return = jnp.where(done, total_return, 0.0)
    finished_length = jnp.where(done, total_length, 0)
    new = EpisodeTracker(
        episode_return=jnp.where(done, 0.0, total_return),
        episode_length=jnp.where(done, 0, total_length),
    )
    return new, finished_return, finished_length


def finished_episode_means(
    done: jax.Array,
    finished_return: jax.Array,
    finished_length: jax.Array,
    previous_return: jax.Array,
    previous_length: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mean return and length over episodes that ended in this batch, and how many ended.

    When none ended, the previous update's means are carried forward, so the metric is always a
    finite number that a learning curve can plot (``episodes_completed`` says whether it is new).
    """
    count = jnp.sum(done.astype(jnp.float32))
    safe = jnp.maximum(count, 1.0)
    mean_return = jnp.where(count > 0, jnp.sum(finished_return) / safe, previous_return)
    mean_length = jnp.where(count > 0, jnp.sum(finished_length.astype(jnp.float32)) / safe, previous_length)
    return mean_return, mean_length, count


def step_counters(info: dict) -> dict[str, jax.Array]:
    """The per-step counters an env reports in ``info["counters"]`` (``{}`` for envs that report none)."""
    return dict(info.get("counters", {}))


def counter_metrics(env: Any, counters: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Sums each counter over a batch (any shape) and lets the env turn the sums into metrics.

    An env with ``summarize_counters(totals)`` (``IntrusionDetection-v0``: confusion counts and F1)
    decides the metric names; otherwise the sums are reported under the counters' own names.
    """
    totals = {name: jnp.sum(value.astype(jnp.float32)) for name, value in counters.items()}
    summarize = getattr(env, "summarize_counters", None)
    if summarize is None or not totals:
        return totals
    return summarize(totals)
