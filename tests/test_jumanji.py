"""The Jumanji adapter (``env: jumanji/<name>``): termination against truncation, the final observation,
auto-reset and flattened observations, checked on a hand-stepped episode; then a real Jumanji env trains."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jumanji = pytest.importorskip("jumanji")  # the [jumanji] extra; CI installs it with [dev]

from jumanji import specs, types  # noqa: E402

import jaxppo  # noqa: E402
from jaxppo.envs.jumanji import JumanjiEnv  # noqa: E402


class CounterObs(NamedTuple):
    count: jax.Array  # the step count
    grid: jax.Array  # [2, 2], the count in every cell
    action_mask: jax.Array  # [2]


class Counter:
    """A hand-checkable Jumanji env: reward = the action; action 1 terminates (discount 0); the third
    step without it is truncated (a time limit that still bootstraps, discount 1)."""

    time_limit = 3
    action_spec = specs.DiscreteArray(2, name="action")

    def _obs(self, count):
        return CounterObs(count, jnp.full((2, 2), count, jnp.float32), jnp.array([True, count < 2]))

    def reset(self, key):
        count = jnp.int32(0)
        return count, types.restart(self._obs(count))

    def step(self, state, action):
        count = state + 1
        reward = action.astype(jnp.float32)
        timestep = jax.lax.cond(
            action == 1, lambda: types.termination(reward, self._obs(count)),
            lambda: jax.lax.cond(count >= self.time_limit, lambda: types.truncation(reward, self._obs(count)),
                                 lambda: types.transition(reward, self._obs(count))))
        return count, timestep


def test_termination_truncation_final_observation_and_reset_by_hand():
    env = JumanjiEnv(Counter(), "Counter")
    params = env.default_params
    assert params.max_steps_in_episode == 3 and env.action_space(params).n == 2
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    # Flat: count, then the 2x2 grid; the action mask is left out.
    np.testing.assert_array_equal(obs, [0, 0, 0, 0, 0])
    assert env.observation_space(params).shape == (5,)
    step = jax.jit(lambda s, a: env.step(jax.random.PRNGKey(1), s, a, params))

    obs, state, reward, terminated, truncated, info = step(state, 0)  # count 1: an ordinary step
    assert (float(reward), bool(terminated), bool(truncated)) == (0.0, False, False)
    np.testing.assert_array_equal(obs, [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(env.action_mask(state, params), [True, True])
    obs, state, reward, terminated, truncated, info = step(state, 0)  # count 2
    np.testing.assert_array_equal(env.action_mask(state, params), [True, False])  # the observation's mask
    obs, state, reward, terminated, truncated, info = step(state, 0)  # count 3: the time limit
    assert (bool(terminated), bool(truncated)) == (False, True)
    np.testing.assert_array_equal(info["final_observation"], [3, 3, 3, 3, 3])  # the true last state
    np.testing.assert_array_equal(obs, [0, 0, 0, 0, 0])  # already the next episode's first observation
    np.testing.assert_array_equal(env.action_mask(state, params), [True, True])  # and its mask
    obs, state, reward, terminated, truncated, info = step(state, 1)  # action 1 ends it: termination
    assert (float(reward), bool(terminated), bool(truncated)) == (1.0, True, False)
    np.testing.assert_array_equal(info["final_observation"], [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(obs, [0, 0, 0, 0, 0])


def test_suite_names_and_a_missing_suite(monkeypatch):
    from jaxppo.envs import core

    names = core.known_env_names()
    assert "jumanji/Snake-v1" in names and "CartPole-v1" in names
    with pytest.raises(ValueError, match="Did you mean 'jumanji/Snake-v1'"):
        core.make_env("jumanji/Snake-v2")
    monkeypatch.setattr(core, "installed_suites", lambda: {"jumanji": False})
    with pytest.raises(ValueError, match=r"pip install 'jaxppo\[jumanji\]'"):
        jaxppo.apply_overrides(jaxppo.PPOConfig(), ["env=jumanji/Snake-v1"])


def test_ppo_and_dqn_train_on_a_jumanji_env():
    config = jaxppo.PPOConfig(env="jumanji/Snake-v1", num_envs=4, num_steps=16, total_timesteps=4 * 16 * 2,
                              hidden_sizes=(32,))
    state, metrics = jaxppo.train(config, num_seeds=2)
    assert metrics["episode_return"].shape == (2, 2) and np.all(np.isfinite(metrics["value_loss"]))
    dqn = jaxppo.DQNConfig(env="jumanji/Snake-v1", num_envs=4, total_timesteps=400, learning_starts=200,
                           buffer_size=200, batch_size=16, hidden_sizes=(32,))
    _, metrics = jaxppo.train(dqn, num_seeds=1)
    assert np.all(np.isfinite(metrics["q_mean"]))


class PairObs(NamedTuple):
    step: jax.Array
    action_mask: jax.Array  # [2, 3]: joint, one entry per (first, second) combination


class Pair:
    """A multi-discrete Jumanji env: the action is a pair (first in 0..1, second in 0..2), the reward is
    10 * first + second, and the pair (1, 2) is illegal."""

    time_limit = 5
    action_spec = specs.MultiDiscreteArray(num_values=jnp.array([2, 3], jnp.int32), name="action")
    observation_spec = PairObs(step=specs.Array((), jnp.int32), action_mask=specs.BoundedArray((2, 3), bool, False, True))

    def _obs(self, step):
        return PairObs(step, jnp.ones((2, 3), bool).at[1, 2].set(False))

    def reset(self, key):
        return jnp.int32(0), types.restart(self._obs(jnp.int32(0)))

    def step(self, state, action):
        reward = (10 * action[0] + action[1]).astype(jnp.float32)
        return state + 1, types.transition(reward, self._obs(state + 1))


def test_a_multi_discrete_action_is_one_action_per_combination_with_the_joint_mask():
    """By hand: joint index i is the pair (i // 3, i % 3), so the rewards of indices 0..5 are 0, 1, 2,
    10, 11, 12, and the mask raveled the same way makes index 5, the pair (1, 2), the illegal one."""
    env = JumanjiEnv(Pair(), "Pair")
    assert env.num_actions == 6 and env.action_space().n == 6
    obs, state = env.reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(env.action_mask(state), [True] * 5 + [False])
    rewards = [float(env.step(jax.random.PRNGKey(1), state, i)[2]) for i in range(6)]
    assert rewards == [0, 1, 2, 10, 11, 12]
    np.testing.assert_array_equal(env.env_action(jnp.arange(6)), [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])


def test_real_multi_discrete_envs_match_the_env_and_per_dimension_masks_are_refused():
    """Minesweeper's 10 x 10 cells are 100 joint actions whose mask is the env's own, raveled; JobShop's
    mask has one row per machine, which one action per combination cannot express."""
    env, params = jaxppo.envs.make_env("jumanji/Minesweeper-v0")
    assert env.num_actions == 100 and env.action_dims == (10, 10)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    inner_state, timestep = env.unwrapped.reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(env.action_mask(state), np.asarray(timestep.observation.action_mask).reshape(-1))
    # Index 23 is row 2, column 3: stepping it equals stepping the Jumanji env with [2, 3].
    _, _, reward, _, _, _ = env.step(jax.random.PRNGKey(1), state, 23, params)
    _, expected = env.unwrapped.step(inner_state, jnp.array([2, 3], jnp.int32))
    assert float(reward) == float(expected.reward)
    with pytest.raises(ValueError, match="per dimension"):
        jaxppo.envs.make_env("jumanji/JobShop-v0")


@pytest.mark.slow
def test_ppo_and_dqn_train_on_a_multi_discrete_env():
    config = jaxppo.PPOConfig(env="jumanji/Minesweeper-v0", num_envs=4, num_steps=16, total_timesteps=4 * 16 * 2,
                              hidden_sizes=(32,))
    _, metrics = jaxppo.train(config, num_seeds=1)
    assert np.all(np.isfinite(metrics["value_loss"]))
    dqn = jaxppo.DQNConfig(env="jumanji/Minesweeper-v0", num_envs=4, total_timesteps=400, learning_starts=200,
                           buffer_size=200, batch_size=16, hidden_sizes=(32,))
    _, metrics = jaxppo.train(dqn, num_seeds=1)
    assert np.all(np.isfinite(metrics["q_mean"]))


def test_a_conv_torso_reads_one_named_field_of_the_flat_observation():
    """Snake's observation flattens to its [12, 12, 5] grid then its step count. The layout says where the
    grid sits; the torso cuts it back out, so its features equal the conv of the env's own grid, with the
    step count beside them; PPO and DQN train with it, and a field that is no grid is refused."""
    import flax.linen as nn

    from jaxppo.networks import ConvTorso, torso_features

    env, params = jaxppo.envs.make_env("jumanji/Snake-v1")
    assert env.observation_fields == {"grid": (0, (12, 12, 5)), "step_count": (720, ())}
    obs, _ = env.reset(jax.random.PRNGKey(0), params)
    _, timestep = env.unwrapped.reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(obs[:720].reshape(12, 12, 5), timestep.observation.grid.astype(np.float32))

    class Torso(nn.Module):
        @nn.compact
        def __call__(self, x):
            return torso_features(x, "conv", "relu", 1, env.observation_fields["grid"])[0]

    batch = jnp.stack([obs, obs + 1.0])
    variables = Torso().init(jax.random.PRNGKey(1), batch)
    features = Torso().apply(variables, batch)
    grid_features = ConvTorso("relu").apply({"params": variables["params"]["ConvTorso_0"]},
                                            batch[:, :720].reshape(2, 12, 12, 5))
    np.testing.assert_allclose(features, jnp.concatenate([grid_features, batch[:, 720:]], axis=-1), rtol=1e-6)
    config = jaxppo.PPOConfig(env="jumanji/Snake-v1", torso="conv", conv_field="grid", num_envs=4, num_steps=16,
                              total_timesteps=4 * 16 * 2, hidden_sizes=(32,))
    with pytest.raises(ValueError, match="grid fields: \\['grid'\\]"):
        jaxppo.make_algorithm(config.replace(conv_field="step_count"))
    with pytest.raises(ValueError, match="needs torso: conv"):
        jaxppo.PPOConfig(env="jumanji/Snake-v1", conv_field="grid")


@pytest.mark.slow
def test_ppo_and_dqn_train_with_a_conv_torso_over_snakes_grid():
    config = jaxppo.PPOConfig(env="jumanji/Snake-v1", torso="conv", conv_field="grid", num_envs=4, num_steps=16,
                              total_timesteps=4 * 16 * 2, hidden_sizes=(32,))
    _, metrics = jaxppo.train(config, num_seeds=1)
    assert np.all(np.isfinite(metrics["value_loss"]))
    dqn = jaxppo.DQNConfig(env="jumanji/Snake-v1", torso="conv", conv_field="grid", num_envs=4, total_timesteps=400,
                           learning_starts=200, buffer_size=200, batch_size=16, hidden_sizes=(32,))
    _, metrics = jaxppo.train(dqn, num_seeds=1)
    assert np.all(np.isfinite(metrics["q_mean"]))
