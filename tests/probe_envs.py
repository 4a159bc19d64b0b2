"""Tiny gymnax-compatible environments whose values are known exactly (user-defined env path)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class ProbeState(environment.EnvState):
    pass


@struct.dataclass
class ProbeParams(environment.EnvParams):
    max_steps_in_episode: int = 5
    reward: float = 1.0
    nan_at_step: int = -1  # emit a NaN reward at this time step (-1: never)


class ConstantRewardEnv(environment.Environment):
    """Constant observation, reward ``params.reward`` every step, never terminates, truncated at
    ``max_steps_in_episode``. Since truncation is not termination, the true value of the (single)
    state is ``reward / (1 - gamma)``; treating truncation as termination would give less."""

    @property
    def default_params(self) -> ProbeParams:
        return ProbeParams()

    def step_env(self, key, state, action, params):
        time = state.time + 1
        reward = jnp.where(time == params.nan_at_step, jnp.nan, params.reward)
        new_state = ProbeState(time=time)
        return self.get_obs(new_state), new_state, reward, jnp.array(False), {}

    def reset_env(self, key, params):
        state = ProbeState(time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.ones((2,), jnp.float32)

    def is_terminated(self, state, params):
        return jnp.array(False)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)
