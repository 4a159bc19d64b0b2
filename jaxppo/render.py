"""An episode of a trained policy as an animation.

The classic-control envs are drawn by ``jaxppo.drawing`` (numpy frames, one GIF through Pillow: no
pygame, no display, about a second for 500 steps); gymnax 1.0's ``Visualizer`` draws the MinAtar games,
Pong, Catch, PointRobot and the two mazes, and the classic-control envs into a video format other than
.gif (through gymnasium, which needs pygame); for any other env ``render_support`` says so in one line. The episode is the greedy (deterministic) policy of one seed of the run's latest
checkpoint, played in one compiled ``lax.scan`` for the env's time limit and cut at the first episode
end.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["VISUALISED_ENVS", "Episode", "render_support", "record_episode", "write_animation"]

_CLASSIC_CONTROL = ("Acrobot-v1", "CartPole-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0")
# The env names gymnax 1.0's Visualizer.init / update draw (it silently draws nothing for others).
VISUALISED_ENVS: tuple[str, ...] = _CLASSIC_CONTROL + (
    "Catch-bsuite", "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar", "Pong-misc", "PointRobot-misc", "MetaMaze-misc", "FourRooms-misc",
)


def render_support(env_name: str, path: Optional[str] = None) -> Optional[str]:
    """None if ``env_name`` can be drawn here (into ``path``'s format, when given), else one line saying
    why not."""
    if env_name not in VISUALISED_ENVS:
        return f"env {env_name!r} has no gymnax visualiser, so it cannot be rendered (those that have one: " \
               f"{', '.join(VISUALISED_ENVS)})."
    if path is not None and os.path.splitext(path)[1].lower() != ".gif" and env_name in _CLASSIC_CONTROL \
            and importlib.util.find_spec("pygame") is None:
        return (f"rendering {env_name} to {os.path.splitext(path)[1]} needs pygame (gymnax draws classic-control "
                "envs through gymnasium): pip install 'jaxppo[render]', or write a .gif.")
    return None


def animation_writer_problem(path: str) -> Optional[str]:
    """None if matplotlib can write an animation to ``path``'s format, else one line saying why not."""
    from matplotlib import animation

    extension = os.path.splitext(path)[1].lower()
    if extension == ".gif":
        return None if animation.writers.is_available("pillow") else "writing a .gif needs Pillow."
    if extension in (".mp4", ".webm", ".mkv", ".mov"):
        return None if animation.writers.is_available("ffmpeg") else \
            f"writing a {extension} needs ffmpeg on the PATH; write a .gif instead."
    return f"--out {path!r} must end in .gif (or .mp4 with ffmpeg installed)."


class Episode(NamedTuple):
    env_name: str
    env: Any
    env_params: Any
    states: list  # env state before each step, one per frame
    returns: np.ndarray  # cumulative reward after each step, [T]
    length: int
    ended: bool  # False when the episode was cut at max_steps


def record_episode(algorithm: Any, state: Any, key: jax.Array, max_steps: int) -> Episode:
    """Plays the greedy policy of one seed's ``state`` for up to ``max_steps`` steps from a fresh reset."""
    env, env_params = algorithm.env, algorithm.env_params
    policy = algorithm.policy_of(state)
    reset_key, run_key = jax.random.split(key)

    recurrent = getattr(algorithm, "act_with_memory", None) is not None

    @jax.jit
    def play(reset_key: jax.Array, run_key: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
        obs, env_state = env.reset(reset_key, env_params)
        memory = algorithm.initial_memory(()) if recurrent else None

        def step(carry: tuple, step_key: jax.Array) -> tuple[tuple, tuple]:
            obs, env_state, memory, first = carry
            act_key, env_key = jax.random.split(step_key)
            if recurrent:  # the policy's memory is carried from frame to frame
                action, memory = algorithm.act_with_memory(policy, obs, act_key, memory, first, deterministic=True)
            else:
                action = algorithm.act(policy, obs, act_key, deterministic=True)
            next_obs, next_state, reward, terminated, truncated, _ = env.step(env_key, env_state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            return (next_obs, next_state, memory, done), (env_state, reward, done)

        carry = (obs, env_state, memory, jnp.ones((), bool))
        _, (states, rewards, done) = jax.lax.scan(step, carry, jax.random.split(run_key, max_steps))
        return states, rewards, done

    states, rewards, done = jax.device_get(play(reset_key, run_key))
    ends = np.flatnonzero(done)
    length = int(ends[0]) + 1 if len(ends) else max_steps
    frames = [jax.tree.map(lambda x, i=i: x[i], states) for i in range(length)]
    returns = np.cumsum(np.asarray(rewards[:length], np.float64))
    return Episode(algorithm.config.env, env, env_params, frames, returns, length, bool(len(ends)))


def write_animation(episode: Episode, path: str) -> None:
    """Draws the episode into ``path``, atomically: classic control as a .gif by ``jaxppo.drawing``, every
    other case with gymnax's ``Visualizer`` (.gif through Pillow, video through ffmpeg)."""
    from jaxppo import drawing

    if episode.env_name in drawing.DRAWN_ENVS and os.path.splitext(path)[1].lower() == ".gif":
        frames = [drawing.draw_frame(episode.env_name, state, episode.env_params) for state in episode.states]
        drawing.write_gif(frames, path)
        return
    problem = render_support(episode.env_name, path)
    if problem is not None:
        raise ValueError(problem)
    import matplotlib

    matplotlib.use("Agg")
    # gymnasium draws classic control through pygame: headless, without a sound card, and without
    # pygame's banner, it would print several lines of audio and display noise for every frame.
    for name, value in (("SDL_AUDIODRIVER", "dummy"), ("SDL_VIDEODRIVER", "dummy"), ("PYGAME_HIDE_SUPPORT_PROMPT", "1")):
        os.environ.setdefault(name, value)
    from gymnax.visualize.visualizer import Visualizer

    from jaxppo.run_io import atomic_write_bytes

    directory = os.path.dirname(os.path.abspath(path))
    extension = os.path.splitext(path)[1]
    temp = os.path.join(directory, f".{os.path.basename(path)}.partial{extension}")
    try:
        Visualizer(episode.env, episode.env_params, episode.states, episode.returns).animate(temp)
        with open(temp, "rb") as handle:
            atomic_write_bytes(path, handle.read())
    finally:
        if os.path.exists(temp):
            os.remove(temp)
