"""MuJoCo Playground (``env: playground/<name>``) through the brax-API adapter: made by name on MJX's JAX
physics, its time limit from the env's config, dict observations read at ``"state"``, and PPO trains."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("mujoco_playground")  # the [playground] extra; CI installs it with [dev]

import jaxppo  # noqa: E402
from jaxppo.envs.brax import policy_observation  # noqa: E402


def test_dict_observations_are_read_at_state_and_pytrees_are_flattened():
    state = jnp.array([1.0, 2.0])
    np.testing.assert_array_equal(policy_observation({"state": state, "privileged_state": jnp.ones(5)}), state)
    np.testing.assert_array_equal(policy_observation({"a": jnp.ones((2, 2)), "b": jnp.zeros(1)}), [1, 1, 1, 1, 0])


@pytest.mark.slow
def test_cartpole_balance_is_made_by_name_and_ppo_trains_on_it():
    from jaxppo.envs import core

    env, params = core.make_env("playground/CartpoleBalance")
    assert params.max_steps_in_episode == 1000 and env.action_space(params).shape == (1,)
    assert env.observation_space(params).shape == (5,)
    config = jaxppo.PPOConfig(env="playground/CartpoleBalance", num_envs=2, num_steps=8,
                              total_timesteps=2 * 8 * 2, hidden_sizes=(16,))
    _, metrics = jaxppo.train(config, num_seeds=2)
    assert np.all(np.isfinite(metrics["value_loss"]))
    with pytest.raises(ValueError, match="Did you mean 'playground/CartpoleBalance'"):
        core.make_env("playground/CartpoleBalanse")
