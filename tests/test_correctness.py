"""Review findings: the value-clip fraction, learning-rate annealing by update, and the bootstrap value
under observation normalisation (GAE with lambda = 1 equals Monte Carlo minus V)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxppo import PPOConfig, make_train
from jaxppo.ppo import losses
from jaxppo.ppo import train as ppo


def test_value_clip_fraction_counts_only_changes_beyond_the_radius():
    # Absolute clipping, radius 0.2. Changes: -0.1 (inside), +0.15, +0.19 (inside), +0.5 (outside),
    # -0.1 (inside). The first is the rounding trap: 0.1 + (1e-9 - 0.1) is 0.0 in float32, not 1e-9,
    # so "clipped prediction != prediction" called it clipped although the clip never binds.
    old = jnp.array([0.1, 1.0, 1.0, 1.0, -2.0], jnp.float32)
    prediction = jnp.array([1e-9, 1.15, 1.19, 1.5, -2.1], jnp.float32)
    target = jnp.zeros(5, jnp.float32)
    loss = jax.jit(functools.partial(losses.value_loss, kind="mse", clipping="absolute", clip_epsilon=0.2,
                                     clip_floor=1.0, huber_delta=1.0))
    _, fraction = loss(prediction, old, target)
    assert float(fraction) == pytest.approx(1 / 5)
    clipped = jax.jit(losses.clip_value_prediction, static_argnums=2)(prediction, old, "absolute", 0.2, 1.0)
    assert float(jnp.mean(clipped != prediction)) == pytest.approx(2 / 5)  # what the old test counted
    # Relative clipping: radius 0.2 * max(|v_old|, 1) = 0.2, 0.2, 0.2, 0.2, 0.4; only +0.5 is outside.
    loss = jax.jit(functools.partial(losses.value_loss, kind="mse", clipping="relative", clip_epsilon=0.2,
                                     clip_floor=1.0, huber_delta=1.0))
    prediction = prediction.at[4].set(-2.35)  # change -0.35, inside the radius 0.4
    assert float(loss(prediction, old, target)[1]) == pytest.approx(1 / 5)


def small_config(**changes) -> PPOConfig:
    base = dict(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 4, num_epochs=2, num_minibatches=2,
                hidden_sizes=(16,), learning_rate=3e-3,
                # A zero critic head gets no hidden-layer gradient on its first step, and PopArt moves the
                # head by its statistics, not by the learning rate: these tests are about the rate.
                value_head_init_scale=1.0, return_normalization="off", value_clipping="off")
    base.update(changes)
    return PPOConfig(**base)


@pytest.mark.slow
def test_annealing_follows_the_update_fraction_even_with_kl_early_stopping():
    config = small_config(target_kl=1e-7, anneal_lr=True)  # stops after the first minibatch step
    _, metrics = jax.jit(make_train(config))(jax.random.PRNGKey(0))
    assert np.all(np.asarray(metrics["minibatch_updates"]) < config.num_epochs * config.num_minibatches)
    # CleanRL's schedule: lr * (1 - u / N) in update u = 0..N-1, whatever the number of steps taken.
    np.testing.assert_allclose(metrics["learning_rate"], 3e-3 * np.array([1.0, 0.75, 0.5, 0.25]), rtol=1e-6)
    _, metrics = jax.jit(make_train(config.replace(anneal_lr=False)))(jax.random.PRNGKey(0))
    np.testing.assert_allclose(metrics["learning_rate"], 3e-3, rtol=1e-6)


@pytest.mark.slow
def test_an_annealed_step_is_the_constant_rate_step_times_the_fraction():
    config = small_config(num_epochs=1, num_minibatches=1, anneal_lr=True, learning_rate=0.03)
    ctx = ppo.make_context(config)
    state = ppo.init_state(ctx, jax.random.PRNGKey(1)).replace(update_step=jnp.array(3, jnp.int32))
    step = jax.jit(functools.partial(ppo.train_step, ctx))
    annealed, metrics = step(state)
    assert float(metrics["learning_rate"]) == pytest.approx(0.03 * 0.25)
    ctx_constant = ppo.make_context(config.replace(anneal_lr=False))
    constant, _ = jax.jit(functools.partial(ppo.train_step, ctx_constant))(state)
    for start, a, c in zip(jax.tree.leaves(state.params), jax.tree.leaves(annealed.params),
                           jax.tree.leaves(constant.params)):
        # Up to the float32 rounding of "new parameter - old parameter" (parameters are O(1)).
        np.testing.assert_allclose(a - start, 0.25 * (c - start), rtol=1e-3, atol=3e-7)
        assert np.max(np.abs(c - start)) > 1e-3


@pytest.mark.slow
def test_gae_with_lambda_one_equals_monte_carlo_minus_v_under_observation_normalisation():
    config = PPOConfig(num_envs=4, num_steps=64, total_timesteps=4 * 64, num_minibatches=1, hidden_sizes=(32,),
                       observation_normalization=True, gae_lambda=1.0, gamma=0.97,
                       value_head_init_scale=1.0)  # values that differ between observations
    ctx = ppo.make_context(config)
    state = ppo.init_state(ctx, jax.random.PRNGKey(2))
    rollout = jax.jit(functools.partial(ppo.rollout, ctx))  # num_steps = 64
    state, trajectory = rollout(state)
    assert np.any(np.asarray(trajectory.done))  # CartPole episodes end inside the rollout
    gae = jax.jit(functools.partial(ppo.estimate_returns, ctx))(state, trajectory)
    ctx_mc = ppo.make_context(config.replace(return_estimator="monte_carlo"))
    mc = jax.jit(functools.partial(ppo.estimate_returns, ctx_mc))(state, trajectory)
    np.testing.assert_allclose(gae.advantages, mc.returns - mc.values, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gae.returns, mc.returns, rtol=1e-5, atol=1e-5)
    # Why it needed deciding: the next observation normalised with this step's statistics gives
    # another value than the same observation normalised with the next step's.
    final_values = ctx.critic.apply(state.params["critic"], trajectory.final_obs)
    next_values = ctx.critic.apply(state.params["critic"], trajectory.obs)[1:]
    going_on = ~np.asarray(trajectory.done[:-1])
    assert np.max(np.abs(np.asarray(final_values[:-1] - next_values))[going_on]) > 1e-3
