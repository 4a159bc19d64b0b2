"""brax environments behind the gymnax interface the algorithms step: ``env: brax/inverted_pendulum``.

brax's ``reset(key) -> State`` and ``step(state, action) -> State`` (``State.obs``, ``.reward``,
``.done``) become gymnax 1.0's ``reset`` and 6-value ``step``. The same adapter serves every env with
brax's API, MuJoCo Playground's included (``jaxppo.envs.playground``):

* the time limit is brax's own ``EpisodeWrapper`` (``episode_length`` steps, 1000 by default, as brax's
  training wrappers use), which marks a time-limit end in ``info["truncation"]``; an episode that ends
  there is *truncated* (it bootstraps), any other end is *terminated*;
* brax's ``AutoResetWrapper`` would overwrite the last observation with the reset one, so it is not
  used: the adapter resets with the step's key itself and keeps the ended episode's last observation
  in ``info["final_observation"]``, so a truncated episode bootstraps from its true last state;
* a dict observation (Playground's locomotion envs give ``{"state", "privileged_state"}``) is read at
  its ``"state"`` key, what the policy may see; any other pytree is flattened;
* actions are a box in [-1, 1] per actuator (brax's convention); PPO samples unbounded and clips.

brax is imported only when a ``brax/`` env is made (``pip install 'jaxppo[brax]'``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxppo.envs.suite import SuiteParams, flat_observation, restart_where_done, vector_space

__all__ = ["PREFIX", "EPISODE_LENGTH", "DESCRIPTION", "BraxEnv", "adapt", "make", "registered_names"]

PREFIX = "brax/"
EPISODE_LENGTH = 1000
DESCRIPTION = "continuous actions in [-1, 1], 1000-step time limit"


def _brax_envs() -> Any:
    """``brax.envs``, imported quietly: brax prints a line per optional backend it cannot find (warp)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        from brax import envs
        from brax.envs.wrappers import training  # noqa: F401  (its import prints too)
    return envs


def policy_observation(obs: Any) -> jax.Array:
    """The observation the policy sees: an array as it is, a dict's ``"state"``, else all leaves flat."""
    if isinstance(obs, dict) and "state" in obs:
        obs = obs["state"]
    if isinstance(obs, jax.Array) and obs.ndim == 1:
        return obs.astype(jnp.float32)
    return flat_observation(obs)


class BraxEnv:
    """An env with brax's API and a time limit, stepped as a gymnax env (see the module docstring)."""

    def __init__(self, env: Any, name: str, episode_length: int = EPISODE_LENGTH, action_repeat: int = 1):
        _brax_envs()
        from brax.envs.wrappers.training import EpisodeWrapper

        self._inner = env
        self._env = EpisodeWrapper(env, int(episode_length), action_repeat=int(action_repeat))
        self.name = name
        self.episode_length = int(episode_length)
        self.action_size = int(env.action_size)

    @property
    def unwrapped(self) -> Any:
        return self._inner

    @property
    def default_params(self) -> SuiteParams:
        return SuiteParams(max_steps_in_episode=self.episode_length)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        state = self._env.reset(key)
        return policy_observation(state.obs), state

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None
             ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict]:
        state = self._env.step(state, jnp.asarray(action, jnp.float32))
        done = state.done > 0.5
        truncated = jnp.logical_and(done, state.info["truncation"] > 0.5)
        terminated = jnp.logical_and(done, jnp.logical_not(truncated))
        reward = jnp.asarray(state.reward, jnp.float32)
        reset_state = self._env.reset(key)
        obs, state, info = restart_where_done(done, state, policy_observation(state.obs),
                                              reset_state, policy_observation(reset_state.obs))
        return obs, state, reward, terminated, truncated, info

    def action_space(self, params: Any = None) -> Any:
        from gymnax.environments import spaces

        return spaces.Box(-1.0, 1.0, (self.action_size,), jnp.float32)

    def observation_space(self, params: Any = None) -> Any:
        return vector_space(self.reset)


def registered_names() -> list[str]:
    """``brax/<name>`` for every environment brax registers (raises ImportError without brax)."""
    envs = _brax_envs()
    return sorted(PREFIX + name for name in envs._envs)  # brax has no public listing of its registry


def make(name: str) -> tuple[BraxEnv, SuiteParams]:
    """``(env, params)`` for ``brax/<registered name>``."""
    import warnings

    envs = _brax_envs()
    inner = name[len(PREFIX):] if name.startswith(PREFIX) else name
    with warnings.catch_warnings():  # brax points every user at MJX once per env; we say so in docs/envs.md
        warnings.simplefilter("ignore", UserWarning)
        env = BraxEnv(envs.get_environment(inner), inner)
    return env, env.default_params


def adapt(env: Any, params: Any = None) -> tuple[BraxEnv, SuiteParams]:
    """A user's own env with brax's API (brax or Playground), with the default 1000-step time limit
    unless ``params`` is a ``SuiteParams`` naming another."""
    length = getattr(params, "max_steps_in_episode", EPISODE_LENGTH)
    adapted = BraxEnv(env, type(env).__name__, episode_length=length)
    return adapted, adapted.default_params
