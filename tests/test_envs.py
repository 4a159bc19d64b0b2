"""Our own environments and wrappers: the reward-scale wrapper and IntrusionDetection-v0."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxppo
from jaxppo import run_records, runner
from jaxppo.config import config_from_dict
from jaxppo.envs import known_env_names, make_env
from jaxppo.envs.intrusion_detection import IntrusionDetection
from jaxppo.envs.wrappers import ScaledReward, scale_rewards

BLOCK_ALL_F1 = 2 * 181 / (1600 + 181)  # 0.2033: TP 181, FP 1419, FN 0


# Reward scale ------------------------------------------------------------------------------------

def _rollout(env, params, num_steps=40):
    """Rewards and observations of a fixed random-action rollout under jit."""

    @jax.jit
    def run(key):
        obs, state = env.reset(key, params)

        def step(carry, k):
            obs, state = carry
            action = jax.random.randint(k, (), 0, 2)
            obs, state, reward, terminated, truncated, _ = env.step(k, state, action, params)
            return (obs, state), (obs, reward)

        return jax.lax.scan(step, (obs, state), jax.random.split(key, num_steps))[1]

    return run(jax.random.PRNGKey(3))


def test_scaled_reward_multiplies_rewards_and_changes_nothing_else():
    env, params = make_env("CartPole-v1")
    obs, reward = _rollout(env, params)
    scaled_obs, scaled_reward = _rollout(ScaledReward(env, 1e3), params)
    np.testing.assert_array_equal(np.asarray(scaled_obs), np.asarray(obs))
    np.testing.assert_allclose(np.asarray(scaled_reward), 1e3 * np.asarray(reward), rtol=1e-6)
    assert scale_rewards(env, 1.0) is env  # scale 1: no wrapper, no extra op
    assert ScaledReward(env, 2.0).num_actions == env.num_actions  # the rest is the wrapped env's


@pytest.mark.slow
def test_env_reward_scale_under_vmap_over_stacked_configs():
    # CartPole pays 1 per step, so in every stacked config the finished episodes' return must be exactly
    # scale * length: the scale (a traced leaf) reaches the env, one program for every value.
    scales = [1.0, 1e-3, 1e3]
    base = dict(num_envs=4, num_steps=64, total_timesteps=4 * 64 * 2, num_epochs=1, num_minibatches=2,
                hidden_sizes=(8,))
    sweep = jaxppo.stack_configs([jaxppo.PPOConfig(env_reward_scale=s, **base) for s in scales])
    train = jax.jit(jax.vmap(lambda c, k: jaxppo.make_train(c)(k)))
    _, metrics = train(sweep, jax.random.split(jax.random.PRNGKey(0), len(scales)))
    returns, lengths = np.asarray(metrics["episode_return"]), np.asarray(metrics["episode_length"])
    assert np.all(np.asarray(metrics["episodes_completed"]) > 0)
    for index, scale in enumerate(scales):
        np.testing.assert_allclose(returns[index], scale * lengths[index], rtol=1e-5)


def test_env_reward_scale_must_be_positive():
    with pytest.raises(ValueError, match="env_reward_scale"):
        jaxppo.PPOConfig(env_reward_scale=0.0)
    with pytest.raises(ValueError, match="env_reward_scale"):
        jaxppo.DQNConfig(env_reward_scale=-1.0)


# IntrusionDetection-v0 --------------------------------------------------------------------------

def _constant_policy(action):
    return lambda obs, key: jnp.full(obs.shape[:1], action, jnp.int32)


def test_held_out_split_closed_form_scores():
    env, params = make_env("IntrusionDetection-v0")
    features, malicious = jax.jit(env.held_out_split)(params)
    assert features.shape == (1600, env.num_features)
    assert int(jnp.sum(malicious)) == 181
    evaluate = jax.jit(env.held_out_evaluation, static_argnums=0)
    block = {k: float(v) for k, v in evaluate(_constant_policy(1), jax.random.PRNGKey(0), params).items()}
    allow = {k: float(v) for k, v in evaluate(_constant_policy(0), jax.random.PRNGKey(0), params).items()}
    assert (block["eval_true_positive"], block["eval_false_positive"], block["eval_false_negative"],
            block["eval_true_negative"]) == (181, 1419, 0, 0)
    np.testing.assert_allclose(block["eval_f1"], BLOCK_ALL_F1, rtol=1e-6)
    np.testing.assert_allclose(block["eval_f1"], 0.2033, atol=5e-5)
    assert (allow["eval_true_negative"], allow["eval_false_negative"], allow["eval_f1"]) == (1419, 181, 0.0)


def test_data_are_a_function_of_the_seed_and_params():
    env = IntrusionDetection()
    params = env.default_params
    first, labels = env.held_out_split(params)
    again, _ = env.held_out_split(params)
    other, other_labels = env.held_out_split(params.replace(data_seed=1))
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))
    assert not np.allclose(np.asarray(first), np.asarray(other))
    assert int(jnp.sum(other_labels)) == 181  # the held-out composition is fixed
    # Class means: attacks are shifted by signal_shift on the informative features only.
    f, m = np.asarray(first), np.asarray(labels)
    shift = f[m].mean(axis=0) - f[~m].mean(axis=0)
    np.testing.assert_allclose(shift[:env.informative_features], params.signal_shift, atol=0.3)
    np.testing.assert_allclose(shift[env.informative_features:], 0.0, atol=0.3)
    # The training stream's class ratio is a param: 20000 draws at 0.3 lie within 4 sigma of 0.3.
    ratio_params = params.replace(malicious_fraction=0.3)
    _, train_labels = jax.jit(jax.vmap(env.training_event, in_axes=(0, None)))(jnp.arange(20_000), ratio_params)
    assert abs(float(jnp.mean(train_labels)) - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 20_000)


@pytest.mark.slow
def test_step_pays_each_outcome_and_truncates_at_the_time_limit():
    env = IntrusionDetection()
    params = env.default_params.replace(max_steps_in_episode=6)
    rewards = {(True, 1): params.reward_true_positive, (True, 0): params.reward_false_negative,
               (False, 1): params.reward_false_positive, (False, 0): params.reward_true_negative}
    step = jax.jit(env.step)
    obs, state = jax.jit(env.reset)(jax.random.PRNGKey(0), params)
    for t in range(6):
        features, malicious = env.training_event(state.index, params)
        np.testing.assert_array_equal(np.asarray(obs), np.asarray(features))  # obs shows the current event
        action = t % 2
        obs, state, reward, terminated, truncated, info = step(jax.random.PRNGKey(t), state, action, params)
        assert float(reward) == rewards[(bool(malicious), action)]
        assert not bool(terminated)
        assert bool(truncated) == (t == 5)
        outcome = {k: float(v) for k, v in info["counters"].items()}
        assert sum(outcome.values()) == 1.0
        assert outcome["true_positive" if malicious and action else "false_negative" if malicious
                       else "false_positive" if action else "true_negative"] == 1.0


@pytest.mark.slow
def test_available_by_name_and_reports_f1_in_training_and_evaluation():
    assert "IntrusionDetection-v0" in known_env_names()
    config = config_from_dict({"env": "IntrusionDetection-v0", "num_envs": 2, "num_steps": 32,
                                      "total_timesteps": 128, "num_minibatches": 2, "hidden_sizes": [8],
                                      "run": {"eval_episodes": 2}})
    algorithm = jaxppo.make_algorithm(config)
    state, metrics = jax.jit(lambda k: algorithm.run_updates(algorithm.init(k), 2))(jax.random.PRNGKey(0))
    counts = {k: np.asarray(metrics[k]) for k in ("true_positive", "true_negative", "false_positive",
                                                   "false_negative")}
    np.testing.assert_array_equal(sum(counts.values()), config.batch_size)  # every step scored once
    tp, fp, fn = counts["true_positive"], counts["false_positive"], counts["false_negative"]
    np.testing.assert_allclose(np.asarray(metrics["f1"]), 2 * tp / (2 * tp + fp + fn), rtol=1e-6)
    result = jax.jit(algorithm.evaluate)(state, jax.random.PRNGKey(1))
    assert result["eval_return"].shape == (2,)
    total = sum(float(result[f"eval_{k}"]) for k in counts)
    assert total == 1600
    # The runner's evaluation record carries the held-out scores per seed.
    per_seed = jax.tree.map(lambda x: np.stack([np.asarray(x)] * 2), result)
    record = run_records.eval_record(3, config.steps_per_update, per_seed)
    np.testing.assert_allclose(record["eval_f1"]["per_seed"], [float(result["eval_f1"])] * 2, rtol=1e-6)
    assert record["eval_return"]["median"] == pytest.approx(float(np.mean(result["eval_return"])), rel=1e-6)


@pytest.mark.slow
def test_the_run_summary_carries_the_held_out_f1(tmp_path, capsys):
    from jaxppo.cli.train import _print_summary

    config = config_from_dict({"env": "IntrusionDetection-v0", "num_envs": 2, "num_steps": 32,
                               "total_timesteps": 128, "num_minibatches": 2, "hidden_sizes": [8],
                               "run": {"eval_episodes": 2, "eval_interval": 2, "updates_per_chunk": 2}})
    result = runner.train_run(config, str(tmp_path / "run"), num_seeds=2, progress=False, echo=lambda _: None)
    f1 = result.summary["final_eval_scores"]["eval_f1"]
    assert len(f1["per_seed"]) == 2 and all(0.0 <= v <= 1.0 for v in f1["per_seed"]) and f1["update"] == 2
    _print_summary(result.summary)
    assert "held-out eval_f1" in capsys.readouterr().out
