"""One program builder: train, a chunked run, the lab's cells and verification's stacked configs give
the same numbers for the same seeds, because they all vmap ``train_to_end``/``run_updates`` with
``jaxppo.programs.lane_program`` on ``lane_keys``."""

from __future__ import annotations

import gymnax
import numpy as np

import jaxppo
from jaxppo import PPOConfig, apply_overrides, programs, runner

TINY = ["num_envs=2", "num_steps=16", "total_timesteps=384", "num_epochs=1", "num_minibatches=2",
        "hidden_sizes=[16]", "run.updates_per_chunk=5", "run.eval_interval=5"]


def test_train_chunked_run_lab_cell_and_stacked_lanes_agree_on_the_same_seeds(tmp_path):
    config = apply_overrides(PPOConfig(), TINY)
    num_seeds, seed = 3, 7
    _, trained = jaxppo.train(config, num_seeds=num_seeds, seed=seed)
    returns = np.asarray(trained["episode_return"])
    assert returns.shape == (num_seeds, config.num_updates)

    # The runner: 12 updates in chunks of 5, 5 and 2, one program per chunk length.
    chunked = runner.train_run(config, str(tmp_path / "run"), num_seeds=num_seeds, seed=seed, progress=False,
                               echo=lambda _line: None)
    np.testing.assert_array_equal(chunked.metrics["episode_return"], returns)

    # The lab's cell and verification's single-config group.
    keys = programs.lane_keys(seed, num_seeds)
    cell, _, _, _ = programs.train_stacked([config], keys)
    np.testing.assert_array_equal(cell["episode_return"][0], returns)

    # Several configs stacked into lanes: each lane's hyperparameters are traced values, not constants,
    # so the losses agree to float32 rounding; the first config's episodes are the same episodes.
    other = config.replace(learning_rate=1e-2)
    stacked, _, _, _ = programs.train_stacked([config, other], keys)
    assert stacked["episode_return"].shape == (2, num_seeds, config.num_updates)
    np.testing.assert_allclose(stacked["policy_loss"][0], trained["policy_loss"], rtol=2e-4, atol=1e-6)
    _, other_trained = jaxppo.train(other, num_seeds=num_seeds, seed=seed)
    np.testing.assert_allclose(stacked["policy_loss"][1], other_trained["policy_loss"], rtol=2e-4, atol=1e-6)
    assert not np.allclose(stacked["policy_loss"][0], stacked["policy_loss"][1])


def test_lane_keys_give_every_setting_the_same_seeds():
    keys = np.asarray(programs.lane_keys(3, 4, num_settings=2))
    assert keys.shape == (8, 2)
    np.testing.assert_array_equal(keys[:4], keys[4:])
    np.testing.assert_array_equal(keys[:4], np.asarray(jaxppo.parallel.seed_keys(3, 4)))
    later = np.asarray(programs.lane_evaluation_keys(3, 4, update=10, num_settings=2))
    np.testing.assert_array_equal(later[:4], np.asarray(jaxppo.parallel.evaluation_keys(3, 4, 10)))
    assert not np.array_equal(later[:4], keys[:4])


class _CountingEnv:
    """CartPole behind its public interface, counting how often its ``step`` is traced."""

    def __init__(self):
        self.inner, self.default_params = gymnax.make("CartPole-v1")
        self.traces = 0

    def reset(self, key, params):
        return self.inner.reset(key, params)

    def step(self, key, state, action, params):
        self.traces += 1  # runs at trace time only
        return self.inner.step(key, state, action, params)

    def action_space(self, params):
        return self.inner.action_space(params)

    def observation_space(self, params):
        return self.inner.observation_space(params)


def test_a_users_env_object_is_compiled_once_for_repeated_calls():
    config = apply_overrides(PPOConfig(), TINY)
    env = _CountingEnv()
    first = jaxppo.train(config, num_seeds=2, env=env, env_params=env.default_params)[1]["episode_return"]
    traced = env.traces
    assert traced > 0
    again = jaxppo.train(config, num_seeds=2, env=env, env_params=env.default_params)[1]["episode_return"]
    assert env.traces == traced  # the same objects: the compiled program is reused, not traced again
    np.testing.assert_array_equal(first, again)
    grid = {"learning_rate": [1e-4, 1e-3]}
    jaxppo.sweep(config, grid, num_seeds=2, env=env, env_params=env.default_params)
    traced = env.traces
    jaxppo.sweep(config, grid, num_seeds=2, env=env, env_params=env.default_params)
    assert env.traces == traced
    other = _CountingEnv()  # another object: its own program
    jaxppo.train(config, num_seeds=2, env=other, env_params=other.default_params)
    assert other.traces > 0
