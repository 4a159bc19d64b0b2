"""Return scale beyond the reports: PopArt, value clipping in like units, symlog value targets."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxppo
from jaxppo import running_stats as rs
from jaxppo.ppo import train as ppo_train
from jaxppo.ppo.networks import Critic, rescale_critic_head
from jaxppo.returns import symexp, symlog
from probe_envs import ConstantRewardEnv


def _stats(mean, var, count):
    return rs.RunningStats(mean=jnp.float32(mean), var=jnp.float32(var), count=jnp.float32(count))


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_popart_preserves_unnormalised_outputs_across_a_statistics_update(scale):
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(32, 16)).astype(np.float32)
    kernel = rng.normal(size=(16, 1)).astype(np.float32)
    bias = rng.normal(size=(1,)).astype(np.float32)
    old = _stats(-2.0e4, 9.0e6, 512.0)
    new = jax.jit(rs.update)(old, jnp.asarray(rng.normal(-1.5e5, 4.0e4, size=(256,)), jnp.float32))
    new_kernel, new_bias = jax.jit(rs.preserve_linear_outputs)(kernel, bias, old, new, scale)

    # numpy reference, float64: un-normalised prediction = std * (h @ w + b) / scale + mean.
    m0, s0 = float(old.mean), np.sqrt(float(old.var) + 1e-8)
    m1, s1 = float(new.mean), np.sqrt(float(new.var) + 1e-8)
    before = s0 * (hidden.astype(np.float64) @ kernel + bias) / scale + m0
    after = s1 * (hidden.astype(np.float64) @ np.asarray(new_kernel, np.float64) + np.asarray(new_bias)) / scale + m1
    assert abs(m1 - m0) > 1e4 and s1 / s0 > 5  # the statistics really moved
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-3 * s1)
    np.testing.assert_allclose(np.asarray(new_kernel), kernel * s0 / s1, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(new_bias), (bias * s0 + scale * (m0 - m1)) / s1, rtol=1e-4)


def test_rescaled_critic_head_keeps_the_critics_value_in_return_units():
    critic = Critic((16, 16), "tanh")
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 3))
    params = critic.init(jax.random.PRNGKey(0), obs)
    config = jaxppo.PPOConfig(return_normalization="popart", return_scale=3.0)
    old, new = _stats(5.0, 4.0, 10.0), _stats(3.0e3, 2.5e5, 100.0)

    @jax.jit
    def values(p, stats):
        return ppo_train.critic_to_return(config, stats, critic.apply(p, obs))

    rescaled = jax.jit(rescale_critic_head)(params, old, new, config.return_scale)
    np.testing.assert_allclose(np.asarray(values(rescaled, new)), np.asarray(values(params, old)),
                               rtol=1e-4, atol=1e-2)
    # Only the head moved.
    layers, moved = params["params"]["MLP_0"], rescaled["params"]["MLP_0"]
    np.testing.assert_array_equal(np.asarray(layers["Dense_0"]["kernel"]), np.asarray(moved["Dense_0"]["kernel"]))
    assert not np.allclose(np.asarray(layers["Dense_2"]["kernel"]), np.asarray(moved["Dense_2"]["kernel"]))


def _estimate_after_updates(normalization: str, updates: int = 3):
    """Return estimate of one rollout after a few updates on a constant-reward env (rewards of 500)."""
    env = ConstantRewardEnv()
    params = env.default_params.replace(reward=500.0)
    config = jaxppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 8, num_epochs=1,
                              num_minibatches=2, hidden_sizes=(16,), gamma=0.9,
                              return_normalization=normalization, value_clipping="relative")
    ctx = ppo_train.make_context(config, env, params)

    @jax.jit
    def run(key):
        state = ppo_train.init_state(ctx, key)
        state, _ = ppo_train.run_updates(ctx, state, updates)
        after_rollout, trajectory = ppo_train.rollout(ctx, state)
        estimate = ppo_train.estimate_returns(ctx, after_rollout, trajectory)
        stale = ctx.critic.apply(state.params["critic"], trajectory.obs)
        fresh = ctx.critic.apply(estimate.critic_params, trajectory.obs)
        return state.return_stats, estimate, stale, fresh

    return config, run(jax.random.PRNGKey(0))


@pytest.mark.slow
@pytest.mark.parametrize("normalization", ["running", "popart"])
def test_value_clip_centre_is_where_the_critic_starts_the_update(normalization):
    config, (old_stats, estimate, stale, fresh) = _estimate_after_updates(normalization)
    assert abs(float(estimate.return_stats.mean) - float(old_stats.mean)) > 1.0  # statistics moved
    # The epochs start from `fresh` (PopArt-rescaled, else the rollout critic): no minibatch starts
    # outside its own clip window.
    np.testing.assert_allclose(np.asarray(estimate.clip_centres), np.asarray(fresh), rtol=1e-4, atol=1e-4)
    centre_in_returns = ppo_train.critic_to_return(config, estimate.return_stats, estimate.clip_centres)
    if normalization == "popart":  # rescaled network: the centre still reads as the rollout-time value
        np.testing.assert_allclose(np.asarray(centre_in_returns), np.asarray(estimate.values), rtol=1e-4, atol=1e-2)
    else:  # not rescaled: the raw output, which the new statistics read as another return
        np.testing.assert_array_equal(np.asarray(fresh), np.asarray(stale))
        assert np.max(np.abs(np.asarray(centre_in_returns - estimate.values))) > 1.0


def test_symexp_inverts_symlog():
    x = np.concatenate([-np.logspace(-6, 6, 50), [0.0], np.logspace(-6, 6, 50)]).astype(np.float32)
    y = jax.jit(symlog)(x)
    np.testing.assert_allclose(np.asarray(y), np.sign(x) * np.log1p(np.abs(x.astype(np.float64))), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.jit(symexp)(y)), x, rtol=1e-5, atol=1e-12)
    assert float(symlog(jnp.float32(1e5))) == pytest.approx(np.log1p(1e5), rel=1e-6)


def test_symlog_targets_and_loss_are_on_the_symlog_scale():
    config = jaxppo.PPOConfig(value_target_transform="symlog", value_loss="mse", value_clipping="off",
                              return_normalization="off")
    stats = rs.init(())
    returns = jnp.asarray([-1.0e5, -3.0, 0.0, 2.0, 7.5e4], jnp.float32)
    targets = jax.jit(functools.partial(ppo_train.return_to_critic, config))(stats, returns)
    np.testing.assert_allclose(np.asarray(targets), np.sign(returns) * np.log1p(np.abs(returns)), rtol=1e-6)
    predictions = jnp.asarray([-11.0, -1.0, 0.5, 1.0, 11.0], jnp.float32)
    np.testing.assert_allclose(
        np.asarray(ppo_train.critic_to_return(config, stats, predictions)),
        np.sign(predictions) * np.expm1(np.abs(predictions)), rtol=1e-5)
    # The value loss compares predictions with symlog targets, not with raw returns.
    from jaxppo.ppo import losses
    loss, _ = jax.jit(functools.partial(losses.value_loss, kind="mse", clipping="off", clip_epsilon=0.2,
                                        clip_floor=1.0, huber_delta=1.0))(predictions, predictions, targets)
    expected = np.mean((np.asarray(predictions, np.float64) - np.asarray(targets, np.float64)) ** 2)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert expected < 10.0  # raw returns would give a loss in the 1e9 range


def test_symlog_needs_return_normalization_off():
    with pytest.raises(ValueError, match="value_target_transform"):
        jaxppo.PPOConfig(value_target_transform="symlog", return_normalization="running")


@pytest.mark.parametrize("changes", [dict(return_normalization="popart", value_clipping="off"),
                                     dict(value_target_transform="symlog", return_normalization="off",
                                          value_clipping="off"),
                                     dict(return_normalization="popart", value_clipping="relative")])
@pytest.mark.slow
def test_critic_learns_a_truncated_constant_value_in_raw_units(changes):
    # Reward 100 forever, truncated every 5 steps: V = 100 / (1 - 0.9) = 1000 exactly.
    env = ConstantRewardEnv()
    params = env.default_params.replace(reward=100.0)
    config = jaxppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 150, num_epochs=2,
                              num_minibatches=4, hidden_sizes=(16, 16), gamma=0.9, learning_rate=1e-2,
                              anneal_lr=False, entropy_coef=0.0, max_grad_norm=None, **changes)
    _, metrics = jax.jit(jaxppo.make_train(config, env, params))(jax.random.PRNGKey(0))
    np.testing.assert_allclose(float(np.mean(np.asarray(metrics["value_mean"])[-10:])), 1000.0, rtol=0.05)


def test_dqn_symlog_target_and_loss_against_a_hand_computation():
    from jaxppo.dqn import losses as dqn_losses

    q_tm1 = jnp.asarray([[1.0, 2.0], [3.0, -1.0]], jnp.float32)  # symlog units
    q_next = jnp.asarray([[4.0, 5.0], [9.0, 0.5]], jnp.float32)
    action = jnp.asarray([1, 0])
    reward = jnp.asarray([1000.0, -20.0], jnp.float32)
    terminated = jnp.asarray([False, True])
    out = jax.jit(functools.partial(dqn_losses.q_learning_loss, gamma=0.99, double_dqn=False, kind="mse",
                                    huber_delta=1.0, value_transform="symlog"))(
        q_tm1, action, reward, terminated, q_next, q_next)
    raw_target = np.array([1000.0 + 0.99 * np.expm1(5.0), -20.0])
    target = np.sign(raw_target) * np.log1p(np.abs(raw_target))
    np.testing.assert_allclose(np.asarray(out.target), target, rtol=1e-6)
    np.testing.assert_allclose(float(out.loss), np.mean(0.5 * (np.array([2.0, 3.0]) - target) ** 2), rtol=1e-6)


def test_dqn_with_symlog_targets_learns_a_large_truncated_value_in_return_units():
    # Reward 100 forever, truncated every 5 steps, gamma 0.9: Q(s, a) = 1000 for both actions. The
    # network predicts symlog(Q) ~ 6.9; q_mean is reported back in return units.
    env = ConstantRewardEnv()
    params = env.default_params.replace(reward=100.0)
    config = jaxppo.DQNConfig(num_envs=4, total_timesteps=24_000, buffer_size=2_000, batch_size=64,
                              learning_starts=400, train_frequency=4, target_update_interval=400,
                              hidden_sizes=(16,), gamma=0.9, learning_rate=3e-3,
                              value_target_transform="symlog", reward_normalization="off")
    _, metrics = jax.jit(jaxppo.make_train(config, env, params))(jax.random.PRNGKey(0))
    np.testing.assert_allclose(float(np.mean(np.asarray(metrics["q_mean"])[-50:])), 1000.0, rtol=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("normalization", ["running", "popart"])
def test_nonfinite_returns_leave_statistics_and_critic_untouched(normalization):
    # A NaN reward in every batch: every gradient step is skipped, and the statistics must not absorb
    # the NaN either (under PopArt they would rescale the critic's weights to NaN).
    from probe_envs import ProbeParams

    env = ConstantRewardEnv()
    params = ProbeParams(nan_at_step=3)
    config = jaxppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 4, num_epochs=2,
                              num_minibatches=4, hidden_sizes=(16,), return_normalization=normalization,
                              value_clipping="relative")
    algorithm = jaxppo.make_algorithm(config, env, params)
    init = algorithm.init(jax.random.PRNGKey(0))
    final, _ = jax.jit(jaxppo.make_train(config, env, params))(jax.random.PRNGKey(0))
    # The left-out samples are counted (nonfinite_count grows); everything the critic reads stays put.
    def kept(state):
        stats = state.return_stats
        return (state.params, stats.mean, stats.var, stats.count)

    for before, after in zip(jax.tree.leaves(kept(init)), jax.tree.leaves(kept(final))):
        np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
    assert float(final.return_stats.nonfinite_count) > 0
