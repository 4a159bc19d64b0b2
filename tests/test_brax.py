"""The brax adapter (``env: brax/<name>``): time-limit truncation against termination, the final
observation and the auto-reset, on a hand-stepped episode; then PPO trains on a real brax env."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("brax")  # the [brax] extra; CI installs it with [dev]

from brax.envs.base import Env, State  # noqa: E402

import jaxppo  # noqa: E402
from jaxppo.envs.brax import BraxEnv  # noqa: E402


class Drift(Env):
    """A hand-checkable brax env: the observation is [position, step]; the position moves by the action
    and the episode terminates (done by the env) once |position| > 2."""

    def reset(self, rng):
        return State(pipeline_state=None, obs=jnp.zeros(2), reward=jnp.zeros(()), done=jnp.zeros(()))

    def step(self, state, action):
        position = state.obs[0] + action[0]
        obs = jnp.array([position, state.obs[1] + 1.0])
        return state.replace(obs=obs, reward=position, done=(jnp.abs(position) > 2).astype(jnp.float32))

    @property
    def observation_size(self):
        return 2

    @property
    def action_size(self):
        return 1

    @property
    def backend(self):
        return "none"


def test_truncation_termination_final_observation_and_reset_by_hand():
    env = BraxEnv(Drift(), "drift", episode_length=3)
    params = env.default_params
    assert params.max_steps_in_episode == 3 and env.action_space(params).shape == (1,)
    assert env.observation_space(params).shape == (2,)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(lambda s, a: env.step(jax.random.PRNGKey(1), s, jnp.array([a]), params))
    obs, state, reward, terminated, truncated, info = step(state, 0.5)  # position 0.5, step 1
    np.testing.assert_allclose(obs, [0.5, 1.0])
    assert (float(reward), bool(terminated), bool(truncated)) == (0.5, False, False)
    obs, state, *_ = step(state, 0.5)  # position 1.0, step 2
    obs, state, reward, terminated, truncated, info = step(state, 0.5)  # step 3: the time limit
    assert (bool(terminated), bool(truncated)) == (False, True)
    np.testing.assert_allclose(info["final_observation"], [1.5, 3.0])  # the true last state
    np.testing.assert_allclose(obs, [0.0, 0.0])  # the next episode's first observation
    obs, state, reward, terminated, truncated, info = step(state, 2.5)  # |position| > 2: the env ends it
    assert (bool(terminated), bool(truncated)) == (True, False)
    np.testing.assert_allclose(info["final_observation"], [2.5, 1.0])
    np.testing.assert_allclose(obs, [0.0, 0.0])


def test_a_real_brax_env_is_made_by_name_and_ppo_trains_on_it():
    from jaxppo.envs import core

    assert "brax/inverted_pendulum" in core.known_env_names()
    config = jaxppo.PPOConfig(env="brax/inverted_pendulum", num_envs=4, num_steps=16, total_timesteps=4 * 16 * 2,
                              hidden_sizes=(32,))
    _, metrics = jaxppo.train(config, num_seeds=2)
    assert metrics["episode_return"].shape == (2, 2) and np.all(np.isfinite(metrics["value_loss"]))
    with pytest.raises(ValueError, match="Did you mean 'brax/inverted_pendulum'"):
        core.make_env("brax/inverted_pendulumm")
