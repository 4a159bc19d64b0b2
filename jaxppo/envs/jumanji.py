"""Jumanji environments behind the gymnax interface the algorithms step: ``env: jumanji/Snake-v1``.

Jumanji's ``reset(key) -> (state, timestep)`` and ``step(state, action) -> (state, timestep)`` become
gymnax 1.0's ``reset(key, params) -> (obs, state)`` and ``step(key, state, action, params) -> (obs,
state, reward, terminated, truncated, info)``:

* an episode ends where ``timestep.step_type`` is LAST; it *terminated* when the env set the discount
  to 0, and was *truncated* (a time limit that still bootstraps) when the discount stayed above 0;
* the adapter auto-resets with the step's key, and ``info["final_observation"]`` keeps the last
  observation of the ended episode, so truncated episodes bootstrap from their true last state;
* observations (Jumanji's are named tuples of arrays) are flattened into one float32 vector, every
  field but ``action_mask`` in field order; the mask is passed on in ``info["action_mask"]``, not yet
  applied to the policy: an invalid action does what the env does with it (in Snake it ends the
  episode).

Only discrete action specs (``DiscreteArray``) are supported here; a multi-discrete env is refused in
one line. Jumanji is imported only when a ``jumanji/`` env is made (``pip install 'jaxppo[jumanji]'``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxppo.envs.stepping import where_done

__all__ = ["PREFIX", "JumanjiEnv", "JumanjiParams", "make", "registered_names"]

PREFIX = "jumanji/"
MASK_FIELD = "action_mask"
DESCRIPTION = "discrete actions, observations flattened to one vector, action mask not applied yet"


@struct.dataclass
class JumanjiParams:
    """What jaxppo reads from env params: the episode cap for greedy evaluation."""

    max_steps_in_episode: int = struct.field(pytree_node=False, default=1000)


def _field_name(path: tuple) -> str:
    names = [getattr(entry, "name", getattr(entry, "key", None)) for entry in path]
    return str(names[-1]) if names else ""


class JumanjiEnv:
    """A Jumanji env stepped as a gymnax env (see the module docstring for the semantics)."""

    def __init__(self, env: Any, name: str):
        from jumanji import specs

        self._env = env
        self.name = name
        action_spec = env.action_spec
        if not isinstance(action_spec, specs.DiscreteArray):
            raise ValueError(f"env {PREFIX}{name} has a {type(action_spec).__name__} action spec; jaxppo's "
                             "Jumanji adapter supports discrete (DiscreteArray) actions only so far.")
        self.num_actions = int(action_spec.num_values)
        self._time_limit = int(getattr(env, "time_limit", 1000) or 1000)

    @property
    def unwrapped(self) -> Any:
        return self._env

    @property
    def default_params(self) -> JumanjiParams:
        return JumanjiParams(max_steps_in_episode=self._time_limit)

    def flatten_observation(self, observation: Any) -> jax.Array:
        """Every field but ``action_mask``, raveled and concatenated as float32, in field order."""
        leaves = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(observation)
                  if _field_name(path) != MASK_FIELD]
        return jnp.concatenate([jnp.ravel(jnp.asarray(leaf)).astype(jnp.float32) for leaf in leaves])

    @staticmethod
    def action_mask(observation: Any) -> Any:
        return getattr(observation, MASK_FIELD, None)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        state, timestep = self._env.reset(key)
        return self.flatten_observation(timestep.observation), state

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None
             ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict]:
        from jumanji.types import StepType

        state, timestep = self._env.step(state, jnp.asarray(action, jnp.int32))
        last = timestep.step_type == StepType.LAST
        terminated = jnp.logical_and(last, timestep.discount == 0)
        truncated = jnp.logical_and(last, timestep.discount != 0)
        final_obs = self.flatten_observation(timestep.observation)
        reset_state, reset_timestep = self._env.reset(key)
        state = where_done(last, reset_state, state)
        obs = where_done(last, self.flatten_observation(reset_timestep.observation), final_obs)
        info = {"final_observation": final_obs}
        mask = self.action_mask(timestep.observation)
        if mask is not None:
            info["action_mask"] = mask
        return obs, state, jnp.asarray(timestep.reward, jnp.float32), terminated, truncated, info

    def action_space(self, params: Any = None) -> Any:
        from gymnax.environments import spaces

        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: Any = None) -> Any:
        from gymnax.environments import spaces

        obs, _ = jax.eval_shape(self.reset, jax.random.PRNGKey(0))
        return spaces.Box(-jnp.inf, jnp.inf, obs.shape, jnp.float32)


def registered_names() -> list[str]:
    """``jumanji/<name>`` for every env Jumanji registers (raises ImportError without Jumanji)."""
    import jumanji

    return sorted(PREFIX + name for name in jumanji.registered_environments())


def make(name: str) -> tuple[JumanjiEnv, JumanjiParams]:
    """``(env, params)`` for ``jumanji/<registered name>``."""
    import jumanji

    inner = name[len(PREFIX):] if name.startswith(PREFIX) else name
    env = JumanjiEnv(jumanji.make(inner), inner)
    return env, env.default_params
