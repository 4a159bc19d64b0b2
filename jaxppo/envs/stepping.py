"""Vectorised env stepping with the randomness of a whole rollout drawn before its loop.

gymnax's ``step`` splits its key, steps, draws a fresh reset state and keeps it where the episode ended.
Inside a ``lax.scan`` that is several random-number calls per step, and on the CPU every threefry call
lowers to its own small loop (XLA thunks launched one by one), so a rollout of 128 steps paid for
hundreds of tiny loops per update. Here the same auto-reset is written out with its inputs drawn up
front for all ``[T, N]`` steps in a few batched calls:

    draw_step_noise(env, params, key, (T, N))   step keys and reset states for every step
    step_envs(env, params, states, actions, noise_t)   gymnax's auto-reset step for N envs

The result is gymnax 1.0's ``step`` exactly (``obs, state, reward, terminated, truncated, info`` with
``info["final_observation"]``), with another random stream. That replay is only taken where it is
provably the env's own semantics: the env is a gymnax ``Environment`` whose class does not override
``step`` or ``reset`` (or jaxppo's ``ScaledReward`` around one). Every other env, including any
wrapper (gymnax's ``GymnaxWrapper`` subclasses forward ``step_env`` and friends to the inner env
through ``__getattr__``, so those names prove nothing), is stepped through its own public ``step``
with the pre-split keys.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

__all__ = ["StepNoise", "presamples_resets", "draw_step_noise", "step_envs", "where_done"]


class StepNoise(NamedTuple):
    """The randomness of vectorised env steps; leaves ``[..., N]`` (``[T, N]`` for a rollout)."""

    step_key: jax.Array  # one key per env step, for environments whose dynamics are random
    reset_obs: Optional[Any]  # the observation an env restarts from if its episode ends at this step
    reset_state: Optional[Any]  # the matching env state (None when the env is stepped through its own step)


def _class_attribute(cls: type, name: str) -> Any:
    """``name`` as the class defines it, found without descriptors or an instance's ``__getattr__``."""
    try:
        return inspect.getattr_static(cls, name)
    except AttributeError:
        return None


def presamples_resets(env: Any) -> bool:
    """True when ``env.step`` is gymnax's own ``Environment.step``, so its auto-reset can be replayed.

    That holds for a gymnax ``Environment`` whose class overrides neither ``step`` nor ``reset`` (its
    ``step_env``, ``reset_env`` and ``is_truncated`` are then what ``step`` calls), and for a wrapper
    whose *class* sets ``replays_as_gymnax_step = True`` (its own ``step_env``, ``reset_env`` and
    ``is_truncated`` change what its ``step`` changes, as jaxppo's ``ScaledReward`` does) around such an
    env. The flag is read from the class, so a wrapper forwarding attributes through ``__getattr__``
    cannot pass it on by accident. Any other env is stepped through its own ``step``.
    """
    if _class_attribute(type(env), "replays_as_gymnax_step") is True:
        return presamples_resets(env.inner)
    try:
        from gymnax.environments.environment import Environment
    except ImportError:  # pragma: no cover - gymnax is a dependency
        return False
    if not isinstance(env, Environment):
        return False
    cls = type(env)
    return all(_class_attribute(cls, name) is _class_attribute(Environment, name) for name in ("step", "reset"))


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


def where_done(done: jax.Array, reset: Any, kept: Any) -> Any:
    """The auto-reset's choice, leaf by leaf: ``reset`` where the episode ended at this step, else ``kept``.

    Shared by this module's replay and the suite adapters (``jaxppo.envs.brax``, ``jaxppo.envs.jumanji``)."""
    return jax.tree.map(lambda r, k: jax.lax.select(done, r, k), reset, kept)


def _step_one(env: Any, params: Any, state: Any, action: Any, noise: StepNoise
              ) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict]:
    """gymnax 1.0's ``Environment.step`` for one env, with the reset taken from ``noise``."""
    obs_step, state_step, reward, terminated, info = env.step_env(noise.step_key, state, action, params)
    truncated = env.is_truncated(state_step, params)
    done = jnp.logical_or(terminated, truncated)
    state_next = where_done(done, noise.reset_state, state_step)
    obs_next = where_done(done, noise.reset_obs, obs_step)
    info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_step}
    return obs_next, state_next, reward, terminated, truncated, info


def step_envs(env: Any, params: Any, states: Any, actions: jax.Array, noise: StepNoise
              ) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict]:
    """One auto-resetting step of ``N`` envs (leaves ``[N, ...]``), gymnax 1.0's 6-value ``step`` contract."""
    if noise.reset_state is None:
        return jax.vmap(env.step, in_axes=(0, 0, 0, None))(noise.step_key, states, actions, params)
    return jax.vmap(_step_one, in_axes=(None, None, 0, 0, 0))(env, params, states, actions, noise)
