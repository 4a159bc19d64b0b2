"""Craftax (Classic and full, symbolic and pixels) behind the gymnax interface: ``env: craftax/Craftax-Classic-Symbolic-v1``.

Craftax's envs keep gymnax's older 5-value ``step`` (``obs, state, reward, done, info``). The adapter
makes the env without Craftax's own auto-reset and turns it into gymnax 1.0's 6-value ``step``:

* ``done`` covers both kinds of end. The episode *terminated* where the env's own ``is_terminal``
  says so under params whose time limit is never reached (death, lava, the final boss beaten); an
  end that only the time limit (``params.max_timesteps``, 10,000 steps) explains is *truncated* and
  bootstraps;
* the adapter auto-resets with the step's key; ``info["final_observation"]`` keeps the ended episode's
  last observation; Craftax's own ``info`` (achievements, discount) is passed on;
* the env's params travel as ``SuiteParams.inner``; symbolic observations are one float32 vector
  already, pixel observations keep their ``[H, W, 3]`` shape (an MLP flattens them, ``torso: conv``
  convolves them).

Craftax compiles slowly on a CPU (tens of seconds for one step function). ``pip install 'jaxppo[craftax]'``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxppo.envs.suite import SuiteParams, discrete_space, observation_array, restart_where_done, vector_space

__all__ = ["PREFIX", "DESCRIPTION", "NAMES", "CraftaxEnv", "adapt", "make", "registered_names"]

PREFIX = "craftax/"
DESCRIPTION = "discrete actions, symbolic vectors or [H, W, 3] pixels, 10,000-step time limit"
NAMES = ("Craftax-Classic-Symbolic-v1", "Craftax-Classic-Pixels-v1", "Craftax-Symbolic-v1", "Craftax-Pixels-v1")
_NEVER = 2**30  # a time limit no episode reaches: what is terminal under it is not a time limit


class CraftaxEnv:
    """A Craftax env (made without its auto-reset) stepped as a gymnax 1.0 env; see the module docstring."""

    def __init__(self, env: Any, name: str, params: Any = None):
        self._env = env
        self.name = name
        self._params = env.default_params if params is None else params
        self.num_actions = int(env.action_space(self._params).n)

    @property
    def unwrapped(self) -> Any:
        return self._env

    @property
    def default_params(self) -> SuiteParams:
        return SuiteParams(inner=self._params, max_steps_in_episode=int(self._params.max_timesteps))

    def _inner(self, params: Any) -> Any:
        return self._params if params is None else params.inner

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        obs, state = self._env.reset(key, self._inner(params))
        return observation_array(obs), state

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None
             ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict]:
        inner = self._inner(params)
        step_key, reset_key = jax.random.split(key)
        obs, state, reward, done, info = self._env.step(step_key, state, jnp.asarray(action, jnp.int32), inner)
        terminated = jnp.logical_and(done, self._env.is_terminal(state, inner.replace(max_timesteps=_NEVER)))
        truncated = jnp.logical_and(done, jnp.logical_not(terminated))
        reset_obs, reset_state = self._env.reset(reset_key, inner)
        obs, state, restart_info = restart_where_done(done, state, observation_array(obs),
                                                      reset_state, observation_array(reset_obs))
        return obs, state, jnp.asarray(reward, jnp.float32), terminated, truncated, {**info, **restart_info}

    def action_space(self, params: Any = None) -> Any:
        return discrete_space(self.num_actions)

    def observation_space(self, params: Any = None) -> Any:
        return vector_space(lambda key: self.reset(key, params))


def registered_names() -> list[str]:
    """``craftax/<name>`` for Craftax's four envs (raises ImportError without Craftax)."""
    import craftax  # noqa: F401

    return sorted(PREFIX + name for name in NAMES)


def make(name: str) -> tuple[CraftaxEnv, SuiteParams]:
    """``(env, params)`` for ``craftax/<name>``, made without Craftax's own auto-reset."""
    from craftax.craftax_env import make_craftax_env_from_name

    inner = name[len(PREFIX):] if name.startswith(PREFIX) else name
    env = CraftaxEnv(make_craftax_env_from_name(inner, auto_reset=False), inner)
    return env, env.default_params


def adapt(env: Any, params: Any = None) -> tuple[CraftaxEnv, SuiteParams]:
    """A user's own Craftax env, which must be made without Craftax's auto-reset (its auto-reset drops
    the last observation and the reason an episode ended); ``params`` may be its ``EnvParams``."""
    from craftax.environment_base.environment_bases import EnvironmentNoAutoReset

    if not isinstance(env, EnvironmentNoAutoReset):
        raise ValueError("a Craftax env must be made without its own auto-reset: "
                         "craftax.craftax_env.make_craftax_env_from_name(name, auto_reset=False).")
    inner = params.inner if isinstance(params, SuiteParams) else params
    adapted = CraftaxEnv(env, type(env).__name__, inner)
    return adapted, adapted.default_params
