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


@struct.dataclass
class MatchState(environment.EnvState):
    bit: jax.Array


@struct.dataclass
class MatchParams(environment.EnvParams):
    max_steps_in_episode: int = 100_000
    nan_reward_at_step: int = -1  # the reward of the step that brings the time to this value is NaN
    nan_obs_at_step: int = -1  # the observation at this time is NaN (-1: never)


class MatchBitEnv(environment.Environment):
    """The observation is a random bit, one-hot; reward 1 for the action equal to it, else 0.

    The best policy is known exactly (action = bit) and PPO learns it in a few updates, so a short run
    tells whether training still learns. Episodes are long (no termination, truncation after
    ``max_steps_in_episode``), so ``nan_*_at_step`` injects bad data exactly once per environment.
    """

    @property
    def default_params(self) -> MatchParams:
        return MatchParams()

    def step_env(self, key, state, action, params):
        time = state.time + 1
        reward = (action == state.bit).astype(jnp.float32)
        reward = jnp.where(time == params.nan_reward_at_step, jnp.nan, reward)
        new_state = MatchState(time=time, bit=jax.random.bernoulli(key).astype(jnp.int32))
        return self.get_obs(new_state, params), new_state, reward, jnp.array(False), {}

    def reset_env(self, key, params):
        state = MatchState(time=0, bit=jax.random.bernoulli(key).astype(jnp.int32))
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        obs = jax.nn.one_hot(state.bit, 2, dtype=jnp.float32)
        if params is None:
            return obs
        return jnp.where(state.time == params.nan_obs_at_step, jnp.nan, obs)

    def is_terminated(self, state, params):
        return jnp.array(False)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)
