"""Bad data (a NaN reward or observation) never freezes a run: left out of the running statistics,
counted in ``nonfinite_samples``, and training goes on learning."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxppo import PPOConfig, apply_overrides, make_algorithm, make_train
from jaxppo import running_stats as rs
from tests.probe_envs import MatchBitEnv, MatchParams

NUM_ENVS, NUM_STEPS, NUM_UPDATES = 4, 16, 24
BASE = [f"num_envs={NUM_ENVS}", f"num_steps={NUM_STEPS}", f"total_timesteps={NUM_ENVS * NUM_STEPS * NUM_UPDATES}",
        "num_epochs=4", "num_minibatches=2", "hidden_sizes=[16]", "learning_rate=0.01", "anneal_lr=false",
        "gamma=0.5", "entropy_coef=0.0",
        # Statistics only where a case turns them on (PPOConfig() has PopArt return statistics).
        "return_normalization=off", "value_clipping=off"]
NAN_STEP = 40  # in the third update's rollout (env time 33..48), at rollout position 7

# (overrides, NaN reward step, NaN observation step, samples left out of the statistics)
CASES = {
    # The discounted return of each env is NaN at that one step: one sample per env.
    "reward_normalization=running": (["reward_normalization=running"], NAN_STEP, -1, NUM_ENVS),
    # GAE carries the NaN back to the rollout's start: positions 0..7 of every env.
    "return_normalization=running": (["return_normalization=running"], NAN_STEP, -1, NUM_ENVS * 8),
    "return_normalization=batch": (["return_normalization=batch"], NAN_STEP, -1, NUM_ENVS * 8),
    # The NaN observation is seen once per env; the NaN reward does not touch observation statistics.
    "observation_normalization": (["observation_normalization=true"], NAN_STEP, NAN_STEP + 20, NUM_ENVS),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_one_nan_is_counted_and_training_still_learns(name):
    overrides, nan_reward, nan_obs, expected_left_out = CASES[name]
    config = apply_overrides(PPOConfig(), BASE + overrides)
    env, params = MatchBitEnv(), MatchParams(nan_reward_at_step=nan_reward, nan_obs_at_step=nan_obs)
    state, metrics = jax.jit(make_train(config, env, params))(jax.random.PRNGKey(0))
    metrics = jax.device_get(metrics)

    left_out = metrics["nonfinite_samples"]
    assert left_out[1] == 0 and left_out[-1] == expected_left_out, left_out
    for stats in (state.obs_stats, state.reward_stats, state.return_stats):
        assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(stats))
    # Only the updates whose batch held the NaN lost gradient steps; every other update learned.
    skipped_per_update = np.diff(metrics["nonfinite_updates"], prepend=0)
    nan_updates = {(step - 1) // NUM_STEPS for step in (nan_reward, nan_obs) if step > 0}
    assert set(np.flatnonzero(skipped_per_update)) <= nan_updates, skipped_per_update
    assert np.all(skipped_per_update <= config.num_epochs * config.num_minibatches)
    later = max(nan_updates) + 1
    assert np.all(np.isfinite(metrics["value_loss"][later:])) and np.all(np.isfinite(metrics["entropy"][later:]))
    # The learned policy: action = bit, for both bits.
    algorithm = make_algorithm(config, env, params)
    obs = jnp.eye(2, dtype=jnp.float32)
    actions = algorithm.act(algorithm.policy_of(state), obs, jax.random.PRNGKey(1), deterministic=True)
    np.testing.assert_array_equal(actions, [0, 1])
    probs = jax.nn.softmax(algorithm_logits(algorithm, state, obs))
    assert float(jnp.min(jnp.diagonal(probs))) > 0.9


def algorithm_logits(algorithm, state, obs):
    from jaxppo.ppo.train import make_context, _normalize_obs

    ctx = make_context(algorithm.config, algorithm.env, algorithm.env_params)
    return ctx.actor.apply(state.params["actor"], _normalize_obs(ctx, state.obs_stats, obs)).loc


@pytest.mark.slow
def test_the_count_reaches_summary_json_cli_summary_and_diagnostics(tmp_path, capsys):
    from jaxppo import plotting, runner
    from jaxppo.cli.train import _print_summary

    config = apply_overrides(PPOConfig(), BASE + ["reward_normalization=running", "total_timesteps=384",
                                                  "run.updates_per_chunk=3"])
    env, params = MatchBitEnv(), MatchParams(nan_reward_at_step=NAN_STEP)
    result = runner.train_run(config, str(tmp_path / "run"), num_seeds=2, progress=False, env=env,
                              env_params=params, echo=lambda line: None)
    health = result.summary["nonfinite"]
    assert health["samples"] == {"total": 2 * NUM_ENVS, "per_seed": [NUM_ENVS, NUM_ENVS]}
    assert health["updates"]["total"] == sum(health["updates"]["per_seed"])
    _print_summary(result.summary)
    out = capsys.readouterr().out
    assert f"non-finite data        {2 * NUM_ENVS} samples left out of running statistics" in out
    assert "nonfinite_samples" in plotting.DIAGNOSTIC_KEYS and "nonfinite_updates" in plotting.DIAGNOSTIC_KEYS
