"""Environment wrappers that keep the gymnax >= 1.0 interface (6-value ``step``, auto-reset)."""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["ScaledReward", "scale_rewards", "MaskedObservation"]


class ScaledReward:
    """Multiplies every reward by ``scale`` before the learner, the episode tracker or evaluation see it.

    Everything else (observations, termination, ``info``, spaces, params, extra methods such as a
    held-out evaluation) is the wrapped env's. ``scale`` may be a traced array: a sweep that vmaps over
    stacked configs builds one wrapper per trace, so one compiled program serves every scale.
    """

    # Its step_env, reset_env and is_truncated below change exactly what its step changes, so
    # jaxppo.envs.stepping may replay gymnax's auto-reset through them (presamples_resets).
    replays_as_gymnax_step = True

    def __init__(self, env: Any, scale: Any):
        self._env = env
        self.scale = scale

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes this wrapper lacks: default_params, name, num_actions, ...
        return getattr(self._env, name)

    @property
    def inner(self) -> Any:
        """The env whose rewards this wrapper scales."""
        return self._env

    @property
    def unwrapped(self) -> Any:
        return getattr(self._env, "unwrapped", self._env)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        return self._env.reset(key, params)

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None
             ) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict]:
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward * self.scale, terminated, truncated, info

    def step_env(self, key: jax.Array, state: Any, action: Any, params: Any) -> tuple[Any, Any, jax.Array,
                                                                                    jax.Array, dict]:
        """gymnax's step without the auto-reset (``jaxppo.envs.stepping`` replays that), reward scaled too.

        Defined here rather than left to ``__getattr__``, which would hand out the wrapped env's
        ``step_env`` and with it unscaled rewards. Raises AttributeError if the wrapped env has none.
        """
        obs, state, reward, terminated, info = self._env.step_env(key, state, action, params)
        return obs, state, reward * self.scale, terminated, info

    def reset_env(self, key: jax.Array, params: Any) -> tuple[Any, Any]:
        return self._env.reset_env(key, params)

    def is_truncated(self, state: Any, params: Any) -> jax.Array:
        return self._env.is_truncated(state, params)

    def action_space(self, params: Any = None) -> Any:
        return self._env.action_space(params)

    def observation_space(self, params: Any = None) -> Any:
        return self._env.observation_space(params)


def scale_rewards(env: Any, scale: Any) -> Any:
    """``env`` itself when ``scale`` is the Python number 1 (no extra op in the program), else wrapped."""
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale == 1:
        return env
    return ScaledReward(env, scale)


class MaskedObservation:
    """Keeps only the observation entries at ``keep`` (a tuple of indices into the flat observation):
    a partially observed version of any gymnax env, e.g. CartPole or Pendulum without velocities.

    It is a wrapper of the ordinary kind: ``reset`` and ``step`` call the wrapped env's and cut the
    observation (``info["final_observation"]`` too), so jaxppo steps it through its own ``step``.
    """

    def __init__(self, env: Any, keep: tuple[int, ...]):
        import numpy as np

        self._env = env
        self.keep = tuple(int(i) for i in keep)
        self._index = np.asarray(self.keep, np.int32)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def _cut(self, obs: Any) -> Any:
        return obs.reshape(-1)[self._index]  # one env's observation (the rollout vmaps over envs)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        obs, state = self._env.reset(key, params)
        return self._cut(obs), state

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None
             ) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict]:
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        if "final_observation" in info:
            info = {**info, "final_observation": self._cut(info["final_observation"])}
        return self._cut(obs), state, reward, terminated, truncated, info

    def observation_space(self, params: Any = None) -> Any:
        from gymnax.environments import spaces

        inner = self._env.observation_space(params)
        low = jax.numpy.broadcast_to(jax.numpy.asarray(inner.low, jax.numpy.float32), inner.shape).reshape(-1)
        high = jax.numpy.broadcast_to(jax.numpy.asarray(inner.high, jax.numpy.float32), inner.shape).reshape(-1)
        return spaces.Box(low[self._index], high[self._index], (len(self.keep),), jax.numpy.float32)

    def action_space(self, params: Any = None) -> Any:
        return self._env.action_space(params)
