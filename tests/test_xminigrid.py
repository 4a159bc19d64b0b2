"""The XLand-MiniGrid adapter (``env: xminigrid/<name>``) on hand-planned episodes of MiniGrid-Empty-5x5
(start at (1, 1) facing south, goal at (3, 3)): reaching the goal terminates with the suite's reward
1 - 0.9 * steps / max_steps, the time limit truncates, the env's params travel as a pytree
(``SuiteParams.inner``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

xminigrid = pytest.importorskip("xminigrid")  # the [xminigrid] extra; CI installs it with [dev]

import jaxppo  # noqa: E402
from jaxppo.envs.suite import SuiteParams  # noqa: E402
from jaxppo.envs.xminigrid import XMiniGridEnv  # noqa: E402

FORWARD, TURN_RIGHT = 0, 1  # from the agent's view: south, then east
TO_THE_GOAL = [FORWARD, FORWARD, TURN_RIGHT, FORWARD, FORWARD]


def _run(env, params, actions):
    key = jax.random.PRNGKey(1)
    step = jax.jit(lambda s, a: env.step(key, s, a, params))
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    out = []
    for action in actions:
        obs, state, reward, terminated, truncated, info = step(state, jnp.int32(action))
        out.append((obs, float(reward), bool(terminated), bool(truncated), info["final_observation"]))
    return out


def test_the_goal_terminates_and_the_time_limit_truncates_by_hand():
    raw, raw_params = xminigrid.make("MiniGrid-Empty-5x5")
    env = XMiniGridEnv(raw, raw_params, "MiniGrid-Empty-5x5")
    params = SuiteParams(inner=raw_params.replace(max_steps=4), max_steps_in_episode=4)
    assert env.action_space(params).n == 6 and env.observation_space(params).shape == (7, 7, 2)
    restart = np.asarray(raw.reset(params.inner, jax.random.PRNGKey(1)).observation, np.float32)

    # 4 steps allowed: the goal is 5 steps away, so the episode is truncated at step 4.
    steps = _run(env, params, TO_THE_GOAL)
    assert [(s[2], s[3]) for s in steps[:4]] == [(False, False)] * 3 + [(False, True)]
    np.testing.assert_array_equal(steps[3][0], restart)

    # With 10 steps allowed, the goal at step 5 terminates, paying 1 - 0.9 * 5 / 10.
    params = SuiteParams(inner=raw_params.replace(max_steps=10), max_steps_in_episode=10)
    steps = _run(env, params, TO_THE_GOAL)
    assert [(s[2], s[3]) for s in steps] == [(False, False)] * 4 + [(True, False)]
    assert steps[-1][1] == pytest.approx(1 - 0.9 * 5 / 10)
    timestep = raw.reset(params.inner, jax.random.PRNGKey(0))
    for action in TO_THE_GOAL:
        timestep = raw.step(params.inner, timestep, action)
    np.testing.assert_array_equal(steps[-1][4], np.asarray(timestep.observation, np.float32))


@pytest.mark.slow  # trains: compiles a PPO program
def test_ppo_trains_by_name_with_a_conv_torso_and_a_bare_env_object_asks_for_its_params():
    config = jaxppo.PPOConfig(env="xminigrid/MiniGrid-Empty-5x5", num_envs=4, num_steps=16,
                              total_timesteps=4 * 16 * 2, hidden_sizes=(16,), torso="conv")
    _, metrics = jaxppo.train(config, num_seeds=2)
    assert metrics["episode_return"].shape == (2, 2) and np.all(np.isfinite(metrics["value_loss"]))
    with pytest.raises(ValueError, match="needs its params"):
        jaxppo.make_train(config, env=xminigrid.make("MiniGrid-Empty-5x5")[0])
