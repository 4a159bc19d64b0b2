"""The rollout's env stepping against the env's own public ``step``.

``jaxppo.envs.stepping`` replays gymnax's auto-reset from reset states drawn before the loop. That
replay is exact only for an env whose ``step`` is gymnax's ``Environment.step``; a wrapper (gymnax's
``GymnaxWrapper`` forwards ``step_env`` to the inner env through ``__getattr__``) or an env with its
own ``step`` must be stepped through that ``step``. Each case here is checked against a plain loop
over the env's public ``step`` with the same keys.
"""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.wrappers.purerl import FlattenObservationWrapper, GymnaxWrapper, LogWrapper

import jaxppo
from jaxppo.envs.stepping import StepNoise, draw_step_noise, presamples_resets, step_envs
from jaxppo.envs.wrappers import ScaledReward

NUM_ENVS, NUM_STEPS = 4, 300  # CartPole episodes under a random policy end after ~20 steps: many resets


class RewardTimes1000(GymnaxWrapper):
    """A user's reward-changing wrapper written the way gymnax's own wrappers are."""

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward * 1000.0, terminated, truncated, info


class ShiftedObservation(GymnaxWrapper):
    """Observation-changing wrapper: every observation, reset ones included, shifted by 10."""

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        return obs + 10.0, state

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs + 10.0, state, reward, terminated, truncated, info


class PureJaxRLStyleWrapper:
    """No gymnax base class: an object that forwards attributes and halves the reward (PureJaxRL's shape)."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    def reset(self, key, params=None):
        return self._env.reset(key, params)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, 0.5 * reward, terminated, truncated, info


def _cartpole():
    return gymnax.make("CartPole-v1")


def _reference_rollout(env, params, key):
    """A plain loop over ``env.step`` (vmapped over envs), with the step keys ``draw_step_noise`` draws."""
    reset_key, noise_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, NUM_ENVS), params)
    step_keys = draw_step_noise(env, params, noise_key, (NUM_STEPS, NUM_ENVS)).step_key
    actions = jax.random.randint(jax.random.PRNGKey(7), (NUM_STEPS, NUM_ENVS), 0, 2)

    def step(carry, xs):
        obs, state = carry
        keys, action = xs
        obs, state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            keys, state, action, params)
        return (obs, state), (obs, reward, terminated, truncated)

    return jax.lax.scan(step, (obs, state), (step_keys, actions))[1]


def _jaxppo_rollout(env, params, key):
    """The rollout's stepping: ``draw_step_noise`` before the loop, ``step_envs`` inside it."""
    reset_key, noise_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, NUM_ENVS), params)
    noise = draw_step_noise(env, params, noise_key, (NUM_STEPS, NUM_ENVS))
    actions = jax.random.randint(jax.random.PRNGKey(7), (NUM_STEPS, NUM_ENVS), 0, 2)

    def step(carry, xs):
        obs, state = carry
        noise_t, action = xs
        obs, state, reward, terminated, truncated, _ = step_envs(env, params, state, action, noise_t)
        return (obs, state), (obs, reward, terminated, truncated)

    return jax.lax.scan(step, (obs, state), (noise, actions))[1]


def _assert_rollouts_equal(env, params, key):
    """jaxppo's stepping and the plain loop over ``env.step`` give identical rollouts; returns the loop's."""
    ours = jax.jit(lambda k: _jaxppo_rollout(env, params, k))(key)
    reference = jax.jit(lambda k: _reference_rollout(env, params, k))(key)
    for a, b in zip(ours, reference):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    return reference


WRAPPERS = {
    "reward_x1000": RewardTimes1000,
    "log_wrapper": LogWrapper,
    "flatten_observation": FlattenObservationWrapper,
    "shifted_observation": ShiftedObservation,
    "purejaxrl_style": PureJaxRLStyleWrapper,
    "scaled_reward_around_user_wrapper": lambda env: ScaledReward(RewardTimes1000(env), 3.0),
}


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_a_wrapped_env_is_stepped_through_its_own_step(name):
    env, params = _cartpole()
    wrapped = WRAPPERS[name](env)
    assert not presamples_resets(wrapped)
    reference = _assert_rollouts_equal(wrapped, params, jax.random.PRNGKey(0))
    assert bool(np.asarray(reference[2]).any())  # episodes ended, so the wrapper's reset path was exercised


@pytest.mark.slow
def test_reward_wrapper_changes_the_returns_training_sees():
    """The reported bug: a GymnaxWrapper multiplying rewards by 1000 gave the unwrapped returns."""
    env, params = _cartpole()
    config = jaxppo.PPOConfig(env="CartPole-v1", num_envs=4, num_steps=64, total_timesteps=4 * 64 * 4,
                              num_minibatches=2, num_epochs=1)
    _, plain = jax.jit(jax.vmap(jaxppo.make_train(config, env=env, env_params=params)))(jax.random.split(
        jax.random.PRNGKey(1), 2))
    _, wrapped = jax.jit(jax.vmap(jaxppo.make_train(config, env=RewardTimes1000(env), env_params=params)))(
        jax.random.split(jax.random.PRNGKey(1), 2))
    plain_returns = np.asarray(plain["episode_return"])
    wrapped_returns = np.asarray(wrapped["episode_return"])
    assert np.all(plain_returns > 5) and np.all(plain_returns < 200)  # CartPole: +1 per step
    # Every reward is 1000: returns a thousand times CartPole's, where the bug gave the plain ones.
    assert np.all(wrapped_returns > 5000)


@pytest.mark.slow
def test_log_wrapper_trains_and_dqn_sees_its_rewards():
    env, params = _cartpole()
    config = jaxppo.DQNConfig(env="CartPole-v1", num_envs=4, total_timesteps=2000, learning_starts=500,
                              buffer_size=1000, batch_size=32)
    _, metrics = jax.jit(jaxppo.make_train(config, env=RewardTimes1000(LogWrapper(env)), env_params=params))(
        jax.random.PRNGKey(0))
    returns = np.asarray(metrics["episode_return"])
    assert np.all(np.isfinite(returns)) and returns[-1] > 5000


def test_an_env_with_its_own_step_is_stepped_through_it():
    """bsuite DeepSea overrides ``Environment.step`` to keep cumulative counters across resets."""
    env, params = gymnax.make("DeepSea-bsuite")
    assert not presamples_resets(env)
    _assert_rollouts_equal(env, params, jax.random.PRNGKey(2))


@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1", "Acrobot-v1"])
def test_replayed_auto_reset_equals_gymnax_step_with_the_same_keys(name):
    """The fast path is gymnax's ``step``: given the key gymnax splits into a step key and a reset key,
    a ``StepNoise`` built from those two keys reproduces ``env.step`` from the same state, over many
    steps and episode ends: the same dones and rewards, the same observations up to float32 rounding
    (XLA fuses the two programs differently), and the same reset states where episodes end."""
    env, params = gymnax.make(name)
    assert presamples_resets(env) and presamples_resets(ScaledReward(env, 2.0))
    num_steps = 520  # past Acrobot's and Pendulum's time limits (500, 200)
    action_space = env.action_space(params)

    def run(key):
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, NUM_ENVS), params)

        def step(state_ref, k):
            action_key, *env_keys = jax.random.split(k, NUM_ENVS + 1)
            env_keys = jnp.stack(env_keys)
            action = jax.vmap(action_space.sample)(jax.random.split(action_key, NUM_ENVS))
            ref = jax.vmap(env.step, in_axes=(0, 0, 0, None))(env_keys, state_ref, action, params)
            step_key, reset_key = jax.vmap(jax.random.split, out_axes=1)(env_keys)
            reset_obs, reset_state = jax.vmap(env.reset_env, in_axes=(0, None))(reset_key, params)
            ours = step_envs(env, params, state_ref, action, StepNoise(step_key, reset_obs, reset_state))
            return ref[1], (ref, ours)

        return jax.lax.scan(step, state, jax.random.split(key, num_steps))[1]

    ref, ours = jax.jit(run)(jax.random.PRNGKey(4))
    np.testing.assert_array_equal(np.asarray(ref[2]), np.asarray(ours[2]))  # reward
    np.testing.assert_array_equal(np.asarray(ref[3]), np.asarray(ours[3]))  # terminated
    np.testing.assert_array_equal(np.asarray(ref[4]), np.asarray(ours[4]))  # truncated
    for a, b in zip(jax.tree.leaves((ref[0], ref[1], ref[5]["final_observation"])),
                    jax.tree.leaves((ours[0], ours[1], ours[5]["final_observation"]))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
    done = np.asarray(ref[3]) | np.asarray(ref[4])
    assert done.sum() >= NUM_ENVS  # every env restarted at least once on average
