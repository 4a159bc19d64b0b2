"""Making gymnax environments and describing their action spaces."""

from __future__ import annotations

import difflib
from typing import Any, NamedTuple, Optional

import numpy as np

__all__ = ["ActionSpec", "action_spec", "known_env_names", "make_env", "observation_shape", "resolve_env"]


def known_env_names() -> list[str]:
    """Every environment name ``gymnax.make`` accepts."""
    import gymnax

    return list(gymnax.registered_envs)


def make_env(name: str) -> tuple[Any, Any]:
    """``gymnax.make(name)`` with a clear error for an unknown name (nearest valid one suggested)."""
    import gymnax

    names = known_env_names()
    if name not in names:
        hint = difflib.get_close_matches(name, names, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"env={name!r} is not a gymnax environment.{extra}")
    return gymnax.make(name)


def resolve_env(name: str, env: Optional[Any], env_params: Optional[Any]) -> tuple[Any, Any]:
    """The user's env object if given (with its default params if none), else ``make_env(name)``."""
    if env is None:
        return make_env(name)
    if not all(hasattr(env, attr) for attr in ("reset", "step", "action_space", "observation_space")):
        raise ValueError(
            "env must be gymnax-compatible: reset(key, params), step(key, state, action, params) "
            "returning 6 values, action_space(params) and observation_space(params)."
        )
    if env_params is None:
        env_params = getattr(env, "default_params", None)
    return env, env_params


class ActionSpec(NamedTuple):
    """What a policy head needs to know: discrete with ``num_actions``, or a bounded box."""

    discrete: bool
    num_actions: int  # discrete: number of actions; continuous: action dimension
    low: Optional[np.ndarray]
    high: Optional[np.ndarray]


def action_spec(env: Any, env_params: Any) -> ActionSpec:
    space = env.action_space(env_params)
    if hasattr(space, "n"):
        return ActionSpec(discrete=True, num_actions=int(space.n), low=None, high=None)
    shape = tuple(getattr(space, "shape", ()))
    if not shape:
        shape = (1,)
    size = int(np.prod(shape))
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape).reshape(size)
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape).reshape(size)
    return ActionSpec(discrete=False, num_actions=size, low=low, high=high)


def observation_shape(env: Any, env_params: Any) -> tuple[int, ...]:
    return tuple(env.observation_space(env_params).shape)
