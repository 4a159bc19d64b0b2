"""Vectorised env stepping with the randomness of a whole rollout drawn before its loop.

gymnax's ``step`` splits its key, steps, draws a fresh reset state and keeps it where the episode ended.
Inside a ``lax.scan`` that is several random-number calls per step, and on the CPU every threefry call
lowers to its own small loop (XLA thunks launched one by one), so a rollout of 128 steps paid for
hundreds of tiny loops per update. Here the same auto-reset is written out with its inputs drawn up
front for all ``[T, N]`` steps in a few batched calls:

    draw_step_noise(env, params, key, (T, N))   step keys and reset states for every step
    step_envs(env, params, states, actions, noise_t)   gymnax's auto-reset step for N envs

The result is gymnax 1.0's ``step`` exactly (``obs, state, reward, terminated, truncated, info`` with
``info["final_observation"]``), with another random stream. Environments that are not gymnax
``Environment`` subclasses (no ``step_env`` / ``reset_env`` / ``is_truncated``) are stepped through
their own ``step`` with the pre-split keys, so any gymnax-compatible env keeps working.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

__all__ = ["StepNoise", "presamples_resets", "draw_step_noise", "step_envs"]


class StepNoise(NamedTuple):
    """The randomness of vectorised env steps; leaves ``[..., N]`` (``[T, N]`` for a rollout)."""

    step_key: jax.Array  # one key per env step, for environments whose dynamics are random
    reset_obs: Optional[Any]  # the observation an env restarts from if its episode ends at this step
    reset_state: Optional[Any]  # the matching env state (None when the env is stepped through its own step)


def presamples_resets(env: Any) -> bool:
    """True for gymnax ``Environment``-style envs, whose auto-reset can be replayed from drawn resets."""
    inner = getattr(env, "unwrapped", env)  # a wrapper has step_env whether or not the env inside does
    return all(callable(getattr(inner, name, None)) for name in ("step_env", "reset_env", "is_truncated"))


def draw_step_noise(env: Any, params: Any, key: jax.Array, shape: tuple[int, ...]) -> StepNoise:
    """Step keys and (for gymnax envs) reset states for ``shape`` env steps, in batched calls."""
    step_key, reset_key = jax.random.split(key)
    size = math.prod(shape)
    step_keys = jax.random.split(step_key, size)
    step_keys = step_keys.reshape(shape + step_keys.shape[1:])
    if not presamples_resets(env):
        return StepNoise(step_keys, None, None)
    reset_obs, reset_state = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(reset_key, size), params)
    unflatten = lambda x: x.reshape(shape + x.shape[1:])  # noqa: E731
    return StepNoise(step_keys, jax.tree.map(unflatten, reset_obs), jax.tree.map(unflatten, reset_state))


def _step_one(env: Any, params: Any, state: Any, action: Any, noise: StepNoise
              ) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict]:
    """gymnax 1.0's ``Environment.step`` for one env, with the reset taken from ``noise``."""
    obs_step, state_step, reward, terminated, info = env.step_env(noise.step_key, state, action, params)
    truncated = env.is_truncated(state_step, params)
    done = jnp.logical_or(terminated, truncated)
    state_next = jax.tree.map(lambda reset, kept: jax.lax.select(done, reset, kept), noise.reset_state, state_step)
    obs_next = jax.tree.map(lambda reset, kept: jax.lax.select(done, reset, kept), noise.reset_obs, obs_step)
    info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_step}
    return obs_next, state_next, reward, terminated, truncated, info


def step_envs(env: Any, params: Any, states: Any, actions: jax.Array, noise: StepNoise
              ) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict]:
    """One auto-resetting step of ``N`` envs (leaves ``[N, ...]``), gymnax 1.0's 6-value ``step`` contract."""
    if noise.reset_state is None:
        return jax.vmap(env.step, in_axes=(0, 0, 0, None))(noise.step_key, states, actions, params)
    return jax.vmap(_step_one, in_axes=(None, None, 0, 0, 0))(env, params, states, actions, noise)
