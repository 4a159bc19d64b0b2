"""Lets rejax 0.1.3 run on gymnax 1.0 environments.

rejax 0.1.3 unpacks gymnax's old five-value step ``(obs, state, reward, done, info)``; gymnax 1.0
returns six values ``(obs, state, reward, terminated, truncated, info)``. ``FiveValueStepEnv`` wraps a
gymnax 1.0 environment and returns ``done = terminated or truncated`` with the info dict unchanged,
so rejax sees exactly the environment the jaxppo side sees, with the only loss being the
terminated/truncated distinction (rejax treats every episode end as termination either way).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

__all__ = ["FiveValueStepEnv", "make_rejax_env"]


class FiveValueStepEnv:
    """A gymnax 1.0 environment seen through the old five-value ``step``; everything else delegates."""

    def __init__(self, env: Any) -> None:
        self._env = env

    def __getattr__(self, name: str) -> Any:
        # Guard: copy/pickle look attributes up before __init__ has set _env.
        if name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)

    def reset(self, key: Any, params: Any = None) -> tuple[Any, Any]:
        return self._env.reset(key, params)

    def step(self, key: Any, state: Any, action: Any, params: Any = None) -> tuple[Any, Any, Any, Any, dict]:
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward, jnp.logical_or(terminated, truncated), info

    def __deepcopy__(self, memo: dict) -> "FiveValueStepEnv":
        # rejax deep-copies its config, env included; a brax env holds modules and cannot be copied, so
        # (as rejax's own brax wrapper does) the copy shares the env, which is stateless.
        return FiveValueStepEnv(self._env)

    def __repr__(self) -> str:
        return f"FiveValueStepEnv({self._env!r})"


def make_rejax_env(name: str) -> tuple[FiveValueStepEnv, Any]:
    """``gymnax.make(name)`` wrapped for rejax, with the environment's default parameters.

    A suite env (``brax/inverted_pendulum``) is jaxppo's own adapter of it, so both libraries step the
    same env (time limit, auto-reset); rejax 0.1.3's own brax wrapper relies on gymnax's pre-1.0 step."""
    if "/" in name:
        from jaxppo.envs import make_env

        env, env_params = make_env(name)
        return FiveValueStepEnv(env), env_params
    import gymnax

    env, env_params = gymnax.make(name)
    return FiveValueStepEnv(env), env_params
