"""Environment creation, action-space description and per-episode bookkeeping (gymnax >= 1.0).

gymnax 1.0's ``step`` returns ``obs, state, reward, terminated, truncated, info`` and auto-resets,
with the pre-reset observation in ``info["final_observation"]``. Every algorithm here relies on that
contract; a user-defined environment only has to follow it (``reset(key, params)`` and
``step(key, state, action, params)`` plus ``action_space(params)`` / ``observation_space(params)``).
"""

from jaxppo.envs.core import (
    ActionSpec,
    action_spec,
    known_env_names,
    make_env,
    observation_shape,
    resolve_env,
)
from jaxppo.envs.episodes import (
    EpisodeTracker,
    counter_metrics,
    finished_episode_means,
    init_tracker,
    step_counters,
    track_episodes,
)

__all__ = [
    "ActionSpec",
    "action_spec",
    "known_env_names",
    "make_env",
    "observation_shape",
    "resolve_env",
    "EpisodeTracker",
    "init_tracker",
    "track_episodes",
    "finished_episode_means",
    "step_counters",
    "counter_metrics",
]
