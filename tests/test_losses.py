"""PPO loss terms on hand-computed cases, under jit."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxppo.ppo import losses

PRED = jnp.array([0.0, 2.0, 10.0, -3.0])
OLD = jnp.array([1.0, 1.0, 9.5, 0.0])
TARGET = jnp.array([0.0, 5.0, 12.0, -3.0])


def value_loss(**kw):
    fn = functools.partial(losses.value_loss, **kw)
    return jax.jit(fn)(PRED, OLD, TARGET)


def test_mse_without_clipping():
    loss, frac = value_loss(kind="mse", clipping="off", clip_epsilon=0.2, clip_floor=1.0, huber_delta=1.0)
    # errors 0, -3, -2, 0 -> squares 0, 9, 4, 0
    np.testing.assert_allclose(loss, 13.0 / 4)
    assert float(frac) == 0.0


def test_huber_hand_computed():
    loss, _ = value_loss(kind="huber", clipping="off", clip_epsilon=0.2, clip_floor=1.0, huber_delta=1.0)
    # |errors| 0, 3, 2, 0 -> 0, 1*(3-0.5), 1*(2-0.5), 0
    np.testing.assert_allclose(loss, (2.5 + 1.5) / 4, rtol=1e-6)
    loss_wide, _ = value_loss(kind="huber", clipping="off", clip_epsilon=0.2, clip_floor=1.0, huber_delta=5.0)
    np.testing.assert_allclose(loss_wide, (0.5 * 9 + 0.5 * 4) / 4, rtol=1e-6)


def test_mixed_is_half_mse_half_huber():
    loss, _ = value_loss(kind="mixed", clipping="off", clip_epsilon=0.2, clip_floor=1.0, huber_delta=1.0)
    np.testing.assert_allclose(loss, 0.5 * 13.0 / 4 + 0.5 * 4.0 / 4, rtol=1e-6)


def test_absolute_value_clipping():
    loss, frac = value_loss(kind="mse", clipping="absolute", clip_epsilon=0.5, clip_floor=1.0, huber_delta=1.0)
    # clipped predictions: 0.5, 1.5, 10.0, -0.5 ; clipped sq errors: 0.25, 12.25, 4, 6.25
    # unclipped sq errors: 0, 9, 4, 0 ; max: 0.25, 12.25, 4, 6.25
    np.testing.assert_allclose(loss, (0.25 + 12.25 + 4 + 6.25) / 4, rtol=1e-6)
    np.testing.assert_allclose(frac, 0.75)  # sample 3 moved by exactly 0.5: unchanged


def test_relative_value_clipping_scales_with_old_value():
    loss, frac = value_loss(kind="mse", clipping="relative", clip_epsilon=0.1, clip_floor=1.0, huber_delta=1.0)
    # radius = 0.1 * max(|old|, 1) = 0.1, 0.1, 0.95, 0.1
    # clipped predictions: 0.9, 1.1, 10.0, -0.1 ; clipped sq err: 0.81, 15.21, 4, 8.41
    np.testing.assert_allclose(loss, (0.81 + 15.21 + 4 + 8.41) / 4, rtol=1e-5)
    np.testing.assert_allclose(frac, 0.75)


def test_relative_clip_allows_large_moves_at_large_values():
    # Report 000: returns ~1500; absolute eps 0.2 lets the critic move 0.2, relative 0.2 lets it move 300.
    old = jnp.array([1500.0])
    pred = jnp.array([1700.0])
    absolute = losses.clip_value_prediction(pred, old, "absolute", 0.2, 1.0)
    relative = losses.clip_value_prediction(pred, old, "relative", 0.2, 1.0)
    np.testing.assert_allclose(absolute, [1500.2])
    np.testing.assert_allclose(relative, [1700.0])


def test_clipped_policy_loss_hand_computed():
    log_old = jnp.zeros(3)
    log_new = jnp.log(jnp.array([1.5, 0.5, 1.1]))
    adv = jnp.array([1.0, 1.0, -2.0])
    parts = jax.jit(losses.clipped_policy_loss)(log_new, log_old, adv, 0.2)
    # min(r A, clip(r) A): min(1.5, 1.2) = 1.2 ; min(0.5, 0.8) = 0.5 ; min(-2.2, -2.2) = -2.2
    np.testing.assert_allclose(parts.loss, -(1.2 + 0.5 - 2.2) / 3, rtol=1e-6)
    np.testing.assert_allclose(parts.ratio, [1.5, 0.5, 1.1], rtol=1e-6)


def test_robust_advantage_normalisation():
    wide = jnp.array([1.0, 2.0, 3.0, 4.0])
    out = jax.jit(losses.normalize_advantages)(wide, 0.01)
    np.testing.assert_allclose(out, (np.array([1, 2, 3, 4]) - 2.5) / np.std([1, 2, 3, 4]), rtol=1e-5)
    # Report 001: a batch of near-identical advantages is centred, not blown up to unit variance.
    flat = jnp.array([1.0, 1.0 + 1e-4, 1.0 - 1e-4, 1.0])
    out = jax.jit(losses.normalize_advantages)(flat, 0.01)
    np.testing.assert_allclose(out, flat - jnp.mean(flat), atol=1e-7)
    assert float(jnp.std(out)) < 1e-3


def test_per_batch_return_normalisation_pins_a_mean_predictor_at_one():
    # Report 003's failure in closed form: targets normalised per batch have mean 0 and variance 1, so a
    # critic that predicts 0 sees an MSE of exactly 1.0 whatever the returns were.
    from jaxppo import running_stats as rs

    returns = jnp.array([-2000.0, -1800.0, -1600.0, -1500.0, -1900.0])
    stats = rs.replace_with_batch(rs.init(()), returns)
    targets = rs.normalize(stats, returns)
    loss, _ = losses.value_loss(jnp.zeros(5), jnp.zeros(5), targets, kind="mse", clipping="off",
                                clip_epsilon=0.2, clip_floor=1.0, huber_delta=1.0)
    np.testing.assert_allclose(loss, 1.0, rtol=1e-5)
