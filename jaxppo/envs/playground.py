"""MuJoCo Playground environments (MJX) behind the gymnax interface: ``env: playground/CartpoleBalance``.

Playground's envs have brax's API (``reset(key) -> State``, ``step(state, action) -> State``), so they
are stepped by the brax adapter (``jaxppo.envs.brax.BraxEnv``): brax's ``EpisodeWrapper`` sets the time
limit and marks it in ``info["truncation"]`` (truncated episodes bootstrap from their true last
observation), the adapter does its own auto-reset, and a dict observation is read at its ``"state"``
key. The episode length and action repeat are the env's own default config (1000 and 1 for the
dm_control suite).

Physics runs on MJX's JAX implementation (``impl="jax"``), which vmaps over seeds on every backend;
Playground's default is the Warp implementation, which is GPU-first. Every registered env is listed; the
dm_control suite's assets ship with the package, while the locomotion and manipulation envs download
MuJoCo Menagerie the first time one is made (listing them downloads nothing). ``pip install 'jaxppo[playground]'``.
"""

from __future__ import annotations

from typing import Any

from jaxppo.envs.brax import BraxEnv, adapt
from jaxppo.envs.suite import SuiteParams

__all__ = ["PREFIX", "DESCRIPTION", "IMPLEMENTATION", "adapt", "make", "registered_names"]

PREFIX = "playground/"
DESCRIPTION = "MJX physics (JAX implementation), continuous actions in [-1, 1], time limit from the env's config"
IMPLEMENTATION = "jax"


def _registry() -> Any:
    """``mujoco_playground.registry``, imported quietly (warp prints its kernel loads)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        from mujoco_playground import registry
    return registry


def registered_names() -> list[str]:
    """``playground/<name>`` for every env Playground registers (raises ImportError without it)."""
    return sorted(PREFIX + name for name in _registry().ALL_ENVS)


def make(name: str) -> tuple[BraxEnv, SuiteParams]:
    """``(env, params)`` for ``playground/<name>``, any name Playground's registry loads."""
    import contextlib
    import io

    registry = _registry()
    inner = name[len(PREFIX):] if name.startswith(PREFIX) else name
    config = registry.get_default_config(inner)
    with contextlib.redirect_stdout(io.StringIO()):
        env = registry.load(inner, config_overrides={"impl": IMPLEMENTATION})
    adapted = BraxEnv(env, inner, episode_length=int(config.episode_length),
                      action_repeat=int(getattr(config, "action_repeat", 1)))
    return adapted, adapted.default_params
