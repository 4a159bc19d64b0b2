"""XLand-MiniGrid behind the gymnax interface the algorithms step: ``env: xminigrid/MiniGrid-Empty-5x5``.

XLand-MiniGrid's ``reset(params, key) -> TimeStep`` and ``step(params, timestep, action) -> TimeStep``
(dm_env-style step types) become gymnax 1.0's ``reset`` and 6-value ``step``:

* an episode ends where ``timestep.step_type`` is LAST; it *terminated* when the discount is 0 (the
  goal was reached) and was *truncated* (``params.max_steps`` reached, bootstrapped) otherwise;
* the env's own params are passed through as ``SuiteParams.inner``, a pytree, so a ruleset or grid
  size can be vmapped like any params; the episode cap is ``max_steps``;
* the adapter auto-resets with the step's key; ``info["final_observation"]`` keeps the ended episode's
  last observation;
* the observation (the agent's view, ``uint8`` of shape ``[view, view, 2]``) is a float32 grid of that
  shape: an MLP flattens it, ``torso: conv`` convolves it.

The ``XLand-MiniGrid-R*`` envs are meant to be given a ruleset from XLand's benchmarks (a download,
``xminigrid.load_benchmark``), set in the params; made by name they use the env's default rule.
``pip install 'jaxppo[xminigrid]'``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxppo.envs.suite import SuiteParams, discrete_space, observation_array, restart_where_done, vector_space

__all__ = ["PREFIX", "DESCRIPTION", "XMiniGridEnv", "adapt", "make", "registered_names"]

PREFIX = "xminigrid/"
DESCRIPTION = "discrete actions, the agent's [7, 7, 2] view (torso: conv reads it), time limit from the env's params"
LAST = 2  # xminigrid.types.StepType.LAST


class XMiniGridEnv:
    """An XLand-MiniGrid env stepped as a gymnax env (see the module docstring for the semantics)."""

    def __init__(self, env: Any, params: Any, name: str):
        self._env = env
        self._params = params
        self.name = name
        self.num_actions = int(env.num_actions(params))

    @property
    def unwrapped(self) -> Any:
        return self._env

    @property
    def default_params(self) -> SuiteParams:
        return SuiteParams(inner=self._params, max_steps_in_episode=int(self._params.max_steps))

    def _inner(self, params: Any) -> Any:
        return self._params if params is None else params.inner

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        timestep = self._env.reset(self._inner(params), key)
        return observation_array(timestep.observation), timestep

    def step(self, key: jax.Array, timestep: Any, action: Any, params: Any = None
             ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict]:
        inner = self._inner(params)
        timestep = self._env.step(inner, timestep, jnp.asarray(action, jnp.int32))
        last = timestep.step_type == LAST
        terminated = jnp.logical_and(last, timestep.discount == 0)
        truncated = jnp.logical_and(last, timestep.discount != 0)
        reward = jnp.asarray(timestep.reward, jnp.float32)
        reset_timestep = self._env.reset(inner, key)
        obs, timestep, info = restart_where_done(last, timestep, observation_array(timestep.observation),
                                                 reset_timestep, observation_array(reset_timestep.observation))
        return obs, timestep, reward, terminated, truncated, info

    def action_space(self, params: Any = None) -> Any:
        return discrete_space(self.num_actions)

    def observation_space(self, params: Any = None) -> Any:
        return vector_space(lambda key: self.reset(key, params))


def registered_names() -> list[str]:
    """``xminigrid/<name>`` for every env XLand-MiniGrid registers (raises ImportError without it)."""
    import xminigrid

    return sorted(PREFIX + name for name in xminigrid.registered_environments())


def make(name: str) -> tuple[XMiniGridEnv, SuiteParams]:
    """``(env, params)`` for ``xminigrid/<registered name>``."""
    import xminigrid

    inner = name[len(PREFIX):] if name.startswith(PREFIX) else name
    env, params = xminigrid.make(inner)
    adapted = XMiniGridEnv(env, params, inner)
    return adapted, adapted.default_params


def adapt(env: Any, params: Any = None) -> tuple[XMiniGridEnv, SuiteParams]:
    """A user's own XLand-MiniGrid env; ``params`` are its ``EnvParams`` (a ruleset, a grid size), which
    XLand-MiniGrid envs cannot be stepped without."""
    if params is None:
        raise ValueError("an XLand-MiniGrid env needs its params: make_train(config, env=env, env_params=params) "
                         "with (env, params) = xminigrid.make(name).")
    inner = params.inner if isinstance(params, SuiteParams) else params
    adapted = XMiniGridEnv(env, inner, type(env).__name__)
    return adapted, adapted.default_params
