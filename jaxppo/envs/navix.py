"""Navix grid worlds behind the gymnax interface the algorithms step: ``env: navix/Navix-Empty-5x5-v0``.

Navix's ``reset(key) -> Timestep`` and ``step(timestep, action) -> Timestep`` become gymnax 1.0's
``reset`` and 6-value ``step``:

* ``timestep.step_type`` says how a step ended: 2 is a *termination* (goal reached or lost), 1 a
  *truncation* (the env's ``max_steps``, which bootstraps), 0 a transition;
* Navix resets lazily, one call *after* the end (that call ignores its action and returns reward 0).
  The adapter resets in the same step instead, with the step's key, so every step the agent takes is
  a real one; ``info["final_observation"]`` keeps the ended episode's last observation;
* observations (Navix's default is the symbolic grid, ``uint8`` of shape ``[H, W, 3]``) are float32
  grids of that shape: an MLP flattens them, ``torso: conv`` convolves them.

``navix.make(name)`` caps episodes at 100 steps unless told otherwise; that cap is the env's
``max_steps`` and greedy evaluation's episode cap. ``pip install 'jaxppo[navix]'``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxppo.envs.suite import SuiteParams, discrete_space, observation_array, restart_where_done, vector_space

__all__ = ["PREFIX", "DESCRIPTION", "NavixEnv", "adapt", "make", "registered_names"]

PREFIX = "navix/"
DESCRIPTION = "discrete actions, [H, W, 3] grid observations (torso: conv reads them), 100-step time limit"
TRUNCATION, TERMINATION = 1, 2  # navix.environments.environment.StepType


class NavixEnv:
    """A Navix env stepped as a gymnax env (see the module docstring for the semantics)."""

    def __init__(self, env: Any, name: str):
        self._env = env
        self.name = name
        self.num_actions = int(env.action_space.n)
        self.max_steps = int(env.max_steps)

    @property
    def unwrapped(self) -> Any:
        return self._env

    @property
    def default_params(self) -> SuiteParams:
        return SuiteParams(max_steps_in_episode=self.max_steps)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        timestep = self._env.reset(key)
        return observation_array(timestep.observation), timestep

    def step(self, key: jax.Array, timestep: Any, action: Any, params: Any = None
             ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict]:
        timestep = self._env.step(timestep, jnp.asarray(action, jnp.int32))
        terminated = timestep.step_type == TERMINATION
        truncated = timestep.step_type == TRUNCATION
        reward = jnp.asarray(timestep.reward, jnp.float32)
        reset_timestep = self._env.reset(key)
        obs, timestep, info = restart_where_done(
            jnp.logical_or(terminated, truncated), timestep, observation_array(timestep.observation),
            reset_timestep, observation_array(reset_timestep.observation))
        return obs, timestep, reward, terminated, truncated, info

    def action_space(self, params: Any = None) -> Any:
        return discrete_space(self.num_actions)

    def observation_space(self, params: Any = None) -> Any:
        return vector_space(self.reset)


def registered_names() -> list[str]:
    """``navix/<name>`` for every env Navix registers (raises ImportError without Navix)."""
    import navix

    return sorted(PREFIX + name for name in navix.registry())


def make(name: str) -> tuple[NavixEnv, SuiteParams]:
    """``(env, params)`` for ``navix/<registered name>``."""
    import navix

    inner = name[len(PREFIX):] if name.startswith(PREFIX) else name
    env = NavixEnv(navix.make(inner), inner)
    return env, env.default_params


def adapt(env: Any, params: Any = None) -> tuple[NavixEnv, SuiteParams]:
    """A user's own Navix env (its ``max_steps`` is the episode cap)."""
    adapted = NavixEnv(env, type(env).__name__)
    return adapted, adapted.default_params
