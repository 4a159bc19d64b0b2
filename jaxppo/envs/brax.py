"""brax environments behind the gymnax interface the algorithms step: ``env: brax/inverted_pendulum``.

brax's ``reset(key) -> State`` and ``step(state, action) -> State`` (``State.obs``, ``.reward``,
``.done``) become gymnax 1.0's ``reset`` and 6-value ``step``:

* the time limit is brax's own ``EpisodeWrapper`` (``episode_length`` steps, 1000 by default, as brax's
  training wrappers use), which marks a time-limit end in ``info["truncation"]``; an episode that ends
  there is *truncated* (it bootstraps), any other end is *terminated*;
* brax's ``AutoResetWrapper`` would overwrite the last observation with the reset one, so it is not
  used: the adapter resets with the step's key itself and keeps the ended episode's last observation
  in ``info["final_observation"]``, so a truncated episode bootstraps from its true last state;
* actions are a box in [-1, 1] per actuator (brax's convention); PPO samples unbounded and clips.

brax is imported only when a ``brax/`` env is made (``pip install 'jaxppo[brax]'``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxppo.envs.stepping import where_done

__all__ = ["PREFIX", "EPISODE_LENGTH", "DESCRIPTION", "BraxEnv", "BraxParams", "make", "registered_names"]

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


@struct.dataclass
class BraxParams:
    """What jaxppo reads from env params: the episode cap for greedy evaluation."""

    max_steps_in_episode: int = struct.field(pytree_node=False, default=EPISODE_LENGTH)


class BraxEnv:
    """A brax env with its time limit, stepped as a gymnax env (see the module docstring)."""

    def __init__(self, env: Any, name: str, episode_length: int = EPISODE_LENGTH):
        _brax_envs()
        from brax.envs.wrappers.training import EpisodeWrapper

        self._inner = env
        self._env = EpisodeWrapper(env, episode_length, action_repeat=1)
        self.name = name
        self.episode_length = int(episode_length)
        self.action_size = int(env.action_size)

    @property
    def unwrapped(self) -> Any:
        return self._inner

    @property
    def default_params(self) -> BraxParams:
        return BraxParams(max_steps_in_episode=self.episode_length)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        state = self._env.reset(key)
        return state.obs, state

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None
             ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict]:
        state = self._env.step(state, jnp.asarray(action, jnp.float32))
        done = state.done > 0.5
        truncated = jnp.logical_and(done, state.info["truncation"] > 0.5)
        terminated = jnp.logical_and(done, jnp.logical_not(truncated))
        final_obs = state.obs
        reward = jnp.asarray(state.reward, jnp.float32)
        reset_state = self._env.reset(key)
        next_state = where_done(done, reset_state, state)
        obs = where_done(done, reset_state.obs, final_obs)
        return obs, next_state, reward, terminated, truncated, {"final_observation": final_obs}

    def action_space(self, params: Any = None) -> Any:
        from gymnax.environments import spaces

        return spaces.Box(-1.0, 1.0, (self.action_size,), jnp.float32)

    def observation_space(self, params: Any = None) -> Any:
        from gymnax.environments import spaces

        obs, _ = jax.eval_shape(self.reset, jax.random.PRNGKey(0))
        return spaces.Box(-jnp.inf, jnp.inf, obs.shape, jnp.float32)


def registered_names() -> list[str]:
    """``brax/<name>`` for every environment brax registers (raises ImportError without brax)."""
    envs = _brax_envs()
    return sorted(PREFIX + name for name in envs._envs)  # brax has no public listing of its registry


def make(name: str) -> tuple[BraxEnv, BraxParams]:
    """``(env, params)`` for ``brax/<registered name>``."""
    import warnings

    envs = _brax_envs()
    inner = name[len(PREFIX):] if name.startswith(PREFIX) else name
    with warnings.catch_warnings():  # brax points every user at MJX once per env; we say so in docs/envs.md
        warnings.simplefilter("ignore", UserWarning)
        env = BraxEnv(envs.get_environment(inner), inner)
    return env, env.default_params
