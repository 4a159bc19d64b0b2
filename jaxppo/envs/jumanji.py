"""Jumanji environments behind the gymnax interface the algorithms step: ``env: jumanji/Snake-v1``.

Jumanji's ``reset(key) -> (state, timestep)`` and ``step(state, action) -> (state, timestep)`` become
gymnax 1.0's ``reset(key, params) -> (obs, state)`` and ``step(key, state, action, params) -> (obs,
state, reward, terminated, truncated, info)``:

* an episode ends where ``timestep.step_type`` is LAST; it *terminated* when the env set the discount
  to 0, and was *truncated* (a time limit that still bootstraps) when the discount stayed above 0;
* the adapter auto-resets with the step's key, and ``info["final_observation"]`` keeps the last
  observation of the ended episode, so truncated episodes bootstrap from their true last state;
* observations (Jumanji's are named tuples of arrays) are flattened into one float32 vector, every
  field but ``action_mask`` in field order; the mask travels in the adapter's state
  (``WithActionMask``) and ``action_mask(state, params)`` returns it, so PPO gives illegal actions
  probability zero and DQN acts and bootstraps over legal actions only (``action_mask: true``, the
  default); ``info["final_action_mask"]`` is the mask at ``info["final_observation"]``, for DQN's
  targets; an env without a mask allows every action.

Multi-discrete actions (``MultiDiscreteArray``, e.g. Tetris's rotation and column, Minesweeper's row and
column, Sudoku's cell and digit) become one discrete action over every combination: index ``i`` is the
combination ``unravel_index(i, num_values)`` (C order), and Jumanji's joint mask of shape ``num_values``
raveled the same way masks it exactly, so PPO and DQN need nothing new. That holds while the joint mask
exists and the combinations stay few (``MAX_JOINT_ACTIONS``); envs whose mask is per dimension (one row
per agent or machine: Connector, Cleaner, RobotWarehouse, JobShop ...) would need a factorised policy and
are refused in one line. Jumanji is imported only when a ``jumanji/`` env is made
(``pip install 'jaxppo[jumanji]'``).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxppo.envs.suite import (SuiteParams, WithActionMask, discrete_space, flat_layout, flat_observation,
                               restart_where_done, vector_space)

__all__ = ["PREFIX", "MAX_JOINT_ACTIONS", "JumanjiEnv", "adapt", "make", "registered_names"]

PREFIX = "jumanji/"
MASK_FIELD = "action_mask"
DESCRIPTION = ("discrete and multi-discrete actions (one action per combination), observations flattened to "
               "one vector, legal-action masks applied")
#: The most combinations a multi-discrete action space may have to be trained as one discrete action:
#: a policy head and a Q head of this many outputs are still small next to the observation layers
#: (FlatPack's 8,100 is the largest single-agent Jumanji space).
MAX_JOINT_ACTIONS = 10_000


class JumanjiEnv:
    """A Jumanji env stepped as a gymnax env (see the module docstring for the semantics)."""

    def __init__(self, env: Any, name: str):
        from jumanji import specs

        self._env = env
        self.name = name
        action_spec = env.action_spec
        #: ``num_values`` of a multi-discrete action (the combination each joint index stands for), else None.
        self.action_dims: tuple[int, ...] | None = None
        if isinstance(action_spec, specs.DiscreteArray):
            self.num_actions = int(action_spec.num_values)
        elif isinstance(action_spec, specs.MultiDiscreteArray):
            dims = tuple(int(n) for n in np.asarray(action_spec.num_values).reshape(-1))
            mask_spec = getattr(env.observation_spec, MASK_FIELD, None)
            mask_shape = None if mask_spec is None else tuple(mask_spec.shape)
            if mask_shape not in (None, dims):
                raise ValueError(f"env {PREFIX}{name} has a multi-discrete action {list(dims)} whose action mask is "
                                 f"per dimension ({list(mask_shape)}), not joint; jaxppo trains multi-discrete "
                                 "actions as one action per combination, which needs the joint mask.")
            if math.prod(dims) > MAX_JOINT_ACTIONS:
                raise ValueError(f"env {PREFIX}{name} has a multi-discrete action {list(dims)}: {math.prod(dims):,} "
                                 f"combinations, more than the {MAX_JOINT_ACTIONS:,} jaxppo trains as one action.")
            self.action_dims = dims
            self.num_actions = math.prod(dims)
        else:
            raise ValueError(f"env {PREFIX}{name} has a {type(action_spec).__name__} action spec; jaxppo's Jumanji "
                             "adapter supports discrete and multi-discrete actions.")
        self._time_limit = int(getattr(env, "time_limit", 1000) or 1000)

    @property
    def unwrapped(self) -> Any:
        return self._env

    @property
    def default_params(self) -> SuiteParams:
        return SuiteParams(max_steps_in_episode=self._time_limit)

    @property
    def observation_fields(self) -> dict[str, tuple[int, tuple[int, ...]]]:
        """Each observation field's ``(offset, shape)`` in the flat vector (``torso: conv`` with
        ``conv_field: grid`` convolves Snake's ``[12, 12, 5]`` grid and hands the rest to the MLP)."""
        _, timestep = jax.eval_shape(self._env.reset, jax.random.PRNGKey(0))
        return flat_layout(timestep.observation, leave_out=MASK_FIELD)

    @staticmethod
    def flatten_observation(observation: Any) -> jax.Array:
        """Every field but ``action_mask``, raveled and concatenated as float32, in field order."""
        return flat_observation(observation, leave_out=MASK_FIELD)

    def legal_actions(self, observation: Any) -> jax.Array:
        """The observation's ``action_mask`` field as ``[num_actions]`` bool; all True if it has none."""
        mask = getattr(observation, MASK_FIELD, None)
        if mask is None:
            return jnp.ones((self.num_actions,), bool)
        return jnp.asarray(mask, bool).reshape(self.num_actions)

    def env_action(self, action: Any) -> jax.Array:
        """The action Jumanji takes: the index itself, or a multi-discrete action's combination."""
        action = jnp.asarray(action, jnp.int32)
        if self.action_dims is None:
            return action
        return jnp.stack(jnp.unravel_index(action, self.action_dims), axis=-1).astype(jnp.int32)

    def action_mask(self, state: WithActionMask, params: Any = None) -> jax.Array:
        """The legal actions in ``state`` (from the observation that state produced)."""
        return state.action_mask

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, WithActionMask]:
        state, timestep = self._env.reset(key)
        observation = timestep.observation
        return self.flatten_observation(observation), WithActionMask(state, self.legal_actions(observation))

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None
             ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict]:
        from jumanji.types import StepType

        inner, timestep = self._env.step(state.state, self.env_action(action))
        last = timestep.step_type == StepType.LAST
        terminated = jnp.logical_and(last, timestep.discount == 0)
        truncated = jnp.logical_and(last, timestep.discount != 0)
        stepped = WithActionMask(inner, self.legal_actions(timestep.observation))
        restart_obs, restarted = self.reset(key)
        obs, state, info = restart_where_done(last, stepped, self.flatten_observation(timestep.observation),
                                              restarted, restart_obs)
        info["final_action_mask"] = stepped.action_mask  # legal at final_observation: DQN's target reads it
        return obs, state, jnp.asarray(timestep.reward, jnp.float32), terminated, truncated, info

    def action_space(self, params: Any = None) -> Any:
        return discrete_space(self.num_actions)

    def observation_space(self, params: Any = None) -> Any:
        return vector_space(self.reset)


def registered_names() -> list[str]:
    """``jumanji/<name>`` for every env Jumanji registers (raises ImportError without Jumanji)."""
    import jumanji

    return sorted(PREFIX + name for name in jumanji.registered_environments())


def make(name: str) -> tuple[JumanjiEnv, SuiteParams]:
    """``(env, params)`` for ``jumanji/<registered name>``."""
    import jumanji

    inner = name[len(PREFIX):] if name.startswith(PREFIX) else name
    env = JumanjiEnv(jumanji.make(inner), inner)
    return env, env.default_params


def adapt(env: Any, params: Any = None) -> tuple[JumanjiEnv, SuiteParams]:
    """A user's own Jumanji env (its ``time_limit``, if any, is the episode cap)."""
    adapted = JumanjiEnv(env, type(env).__name__)
    return adapted, adapted.default_params
