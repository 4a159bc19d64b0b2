"""DQN losses and diagnostics against numpy loops and hand-computed numbers, all under jax.jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxppo.dqn import losses


def _reference_targets(r, term, q_next_target, q_next_online, gamma, double, clip):
    out = np.zeros(len(r), np.float64)
    for i in range(len(r)):
        if double:
            value = q_next_target[i, int(np.argmax(q_next_online[i]))]
        else:
            value = max(q_next_target[i])
        y = r[i] + (0.0 if term[i] else gamma * value)
        if clip is not None:
            y = min(max(y, -clip), clip)
        out[i] = y
    return out


@pytest.mark.parametrize("double", [False, True])
@pytest.mark.parametrize("clip", [None, 3.0])
def test_td_targets_match_numpy_loop(double, clip):
    rng = np.random.default_rng(0)
    batch, actions, gamma = 32, 3, 0.9
    q_tm1 = rng.normal(size=(batch, actions)).astype(np.float32) * 4
    a_tm1 = rng.integers(0, actions, size=batch).astype(np.int32)
    r = rng.normal(size=batch).astype(np.float32)
    # Terminal rows bootstrap from zero; the rest (ordinary steps and truncations, whose next
    # observation is the final pre-reset one) bootstrap from the next-state value.
    term = rng.random(batch) < 0.3
    q_next_target = rng.normal(size=(batch, actions)).astype(np.float32) * 4
    q_next_online = rng.normal(size=(batch, actions)).astype(np.float32) * 4

    fn = jax.jit(lambda *a: losses.q_learning_loss(*a, gamma=gamma, double_dqn=double, kind="mse",
                                                   huber_delta=1.0, target_clip=clip))
    out = fn(q_tm1, a_tm1, r, term, q_next_target, q_next_online)
    expected = _reference_targets(r, term, q_next_target, q_next_online, gamma, double, clip)
    np.testing.assert_allclose(out.target, expected, rtol=1e-5, atol=1e-5)
    q_taken = q_tm1[np.arange(batch), a_tm1]
    np.testing.assert_allclose(out.q_taken, q_taken, rtol=1e-6)
    np.testing.assert_allclose(out.loss, np.mean(0.5 * (q_taken - expected) ** 2), rtol=1e-5)
    unclipped = _reference_targets(r, term, q_next_target, q_next_online, gamma, double, None)
    np.testing.assert_allclose(out.target_clip_fraction, np.mean(unclipped != expected), atol=1e-6)
    if clip is not None:
        assert 0.0 < float(out.target_clip_fraction) < 1.0  # the case exercises the clip


def test_double_dqn_differs_from_max_when_networks_disagree():
    q_next_target = jnp.array([[1.0, 5.0]])
    q_next_online = jnp.array([[2.0, 0.0]])  # online prefers action 0, where the target says 1
    plain = jax.jit(losses.bootstrap_values, static_argnums=2)(q_next_target, q_next_online, False)
    double = jax.jit(losses.bootstrap_values, static_argnums=2)(q_next_target, q_next_online, True)
    assert float(plain[0]) == 5.0 and float(double[0]) == 1.0


def test_huber_and_mse_on_hand_computed_numbers():
    errors = jnp.array([-3.0, -1.0, -0.5, 0.0, 0.5, 2.0])
    huber = jax.jit(losses.elementwise_loss, static_argnums=1)(errors, "huber", 1.0)
    mse = jax.jit(losses.elementwise_loss, static_argnums=1)(errors, "mse", 1.0)
    # Huber(delta=1): 0.5 x^2 inside [-1, 1], |x| - 0.5 outside.
    np.testing.assert_allclose(huber, [2.5, 0.5, 0.125, 0.0, 0.125, 1.5], rtol=1e-6)
    np.testing.assert_allclose(mse, [4.5, 0.5, 0.125, 0.0, 0.125, 2.0], rtol=1e-6)
    huber2 = jax.jit(losses.elementwise_loss, static_argnums=1)(jnp.array([3.0, 1.5]), "huber", 2.0)
    np.testing.assert_allclose(huber2, [2.0 * (3.0 - 1.0), 0.5 * 1.5**2], rtol=1e-6)
    # The gradient of Huber is bounded by delta; that of mse grows with the error.
    grad = jax.jit(jax.grad(lambda x: losses.elementwise_loss(x, "huber", 1.0)))(100.0)
    assert float(grad) == 1.0


def test_greedy_agreement_and_histogram_on_hand_made_case():
    q_online = jnp.array([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0], [0.0, 1.0, 0.0]])
    q_target = jnp.array([[0.0, 9.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    # greedy online: 1, 0, 2, 1; greedy target: 1, 1, 2, 0 -> agree on rows 0 and 2.
    agreement = jax.jit(losses.greedy_agreement)(q_online, q_target)
    histogram = jax.jit(losses.greedy_action_histogram)(q_online)
    assert float(agreement) == 0.5
    np.testing.assert_allclose(histogram, [0.25, 0.5, 0.25])
