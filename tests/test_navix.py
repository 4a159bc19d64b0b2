"""The Navix adapter (``env: navix/<name>``) on hand-planned episodes of Navix-Empty-5x5 (start at (1, 1)
facing east, goal at (3, 3)): a time limit is a truncation, the goal a termination, the final
observation is the suite's own and the next episode starts in the same step; then PPO trains on a
user's own Navix object."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

navix = pytest.importorskip("navix")  # the [navix] extra; CI installs it with [dev]

import jaxppo  # noqa: E402
from jaxppo.envs.navix import NavixEnv  # noqa: E402

ROTATE_CW, FORWARD = 1, 2
TO_THE_GOAL = [FORWARD, FORWARD, ROTATE_CW, FORWARD, FORWARD]


def _as_float(observation):
    return np.asarray(observation, np.float32)  # the grid keeps its [H, W, 3] shape


def _run(env, key, actions, params):
    step = jax.jit(lambda s, a: env.step(key, s, a, params))
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    out = []
    for action in actions:
        obs, state, reward, terminated, truncated, info = step(state, jnp.int32(action))
        out.append((obs, float(reward), bool(terminated), bool(truncated), info["final_observation"]))
    return out


def test_the_goal_terminates_and_the_time_limit_truncates_by_hand():
    raw = navix.make("Navix-Empty-5x5-v0", max_steps=5)
    env = NavixEnv(raw, "Navix-Empty-5x5-v0")
    params = env.default_params
    assert params.max_steps_in_episode == 5 and env.action_space(params).n == 7
    assert env.observation_space(params).shape == (5, 5, 3)
    key = jax.random.PRNGKey(1)
    restart = _as_float(raw.reset(key).observation)  # the adapter restarts with the step's key

    # The suite's own stepping of the same plan, for the observations it shows along the way.
    timestep, seen = raw.reset(jax.random.PRNGKey(0)), []
    for action in TO_THE_GOAL:
        timestep = raw.step(timestep, jnp.int32(action))
        seen.append(_as_float(timestep.observation))
    assert int(timestep.step_type) == 2  # navix says: terminated at the goal

    steps = _run(env, key, TO_THE_GOAL, params)
    for (obs, reward, terminated, truncated, final), want in zip(steps[:-1], seen[:-1]):
        np.testing.assert_array_equal(obs, want)
        assert (reward, terminated, truncated) == (0.0, False, False)
    obs, reward, terminated, truncated, final = steps[-1]
    assert (reward, terminated, truncated) == (1.0, True, False)
    np.testing.assert_array_equal(final, seen[-1])
    np.testing.assert_array_equal(obs, restart)

    # Turning in place for 5 steps reaches the time limit: truncated, not terminated, and the step
    # after it is a real step of the new episode (navix itself would spend it on a reset).
    steps = _run(env, key, [ROTATE_CW] * 6, params)
    assert [(s[2], s[3]) for s in steps] == [(False, False)] * 4 + [(False, True), (False, False)]
    np.testing.assert_array_equal(steps[4][0], restart)
    assert not np.array_equal(steps[5][0], restart)  # it turned


@pytest.mark.slow  # trains: compiles a PPO program
def test_ppo_trains_on_a_users_own_navix_env_object():
    raw = navix.make("Navix-Empty-5x5-v0", max_steps=20)
    config = jaxppo.PPOConfig(env="navix/Navix-Empty-5x5-v0", num_envs=4, num_steps=16,
                              total_timesteps=4 * 16 * 2, hidden_sizes=(16,))
    train = jaxppo.make_train(config, env=raw)  # the suite's own object, adapted
    _, metrics = jax.vmap(train)(jax.random.split(jax.random.PRNGKey(0), 2))
    assert metrics["episode_length"].shape == (2, 2)
    assert np.all(np.asarray(metrics["episode_length"])[:, 1] <= 20)  # the object's own time limit held
