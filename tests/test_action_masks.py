"""Legal-action masks: ``mask_policy`` against a numpy categorical over the legal actions, and PPO's
rollout, update and greedy evaluation never choosing an action the env marks illegal."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxppo
from jaxppo.ppo.networks import PolicyOutput, entropy, log_prob, mask_policy, mode, sample_action


def _numpy_masked(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    z = np.where(mask, logits, -np.inf)
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def test_masked_policy_is_the_categorical_over_legal_actions():
    logits = np.array([[2.0, 0.5, -1.0, 3.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
    mask = np.array([[True, False, True, False], [False, False, True, False]])
    policy = mask_policy(PolicyOutput(loc=jnp.asarray(logits), log_std=None), jnp.asarray(mask))
    probs = _numpy_masked(logits, mask)
    for action in range(4):
        got = np.asarray(log_prob(policy, jnp.full((2,), action)))
        for row in range(2):
            if mask[row, action]:
                assert got[row] == pytest.approx(float(np.log(probs[row, action])), abs=1e-5)
            else:
                assert got[row] < -1e8  # probability zero
    legal_entropy = -np.sum(np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0), axis=-1)
    np.testing.assert_allclose(np.asarray(entropy(policy)), legal_entropy, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(mode(policy)), [0, 2])  # logit 3.0 is illegal in row 0
    draws = jax.vmap(lambda k: sample_action(policy, k))(jax.random.split(jax.random.PRNGKey(0), 2000))
    assert np.all(mask[np.arange(2)[None, :], np.asarray(draws)])
    assert abs(np.mean(np.asarray(draws)[:, 0] == 0) - probs[0, 0]) < 0.03
    # No mask, or a Gaussian policy: unchanged.
    gaussian = PolicyOutput(loc=jnp.zeros((2, 4)), log_std=jnp.zeros(4))
    assert mask_policy(gaussian, jnp.asarray(mask)) is gaussian


jumanji = pytest.importorskip("jumanji")  # the [jumanji] extra; CI installs it with [dev]


def _alternating_env():
    """A Jumanji env with 3 actions whose mask forbids action 2 on odd counts and action 0 on even ones;
    an illegal action is still stepped (so only the policy's masking keeps it from happening)."""
    from typing import NamedTuple

    from jumanji import specs, types

    class Obs(NamedTuple):
        count: jax.Array
        action_mask: jax.Array

    class Alternating:
        time_limit = 20
        action_spec = specs.DiscreteArray(3, name="action")

        def _obs(self, count):
            odd = count % 2 == 1
            return Obs(count.astype(jnp.float32), jnp.array([~odd, True, odd]))

        def reset(self, key):
            count = jnp.int32(0)
            return count, types.restart(self._obs(count))

        def step(self, state, action):
            count = state + 1
            illegal = ~self._obs(state).action_mask[action]
            reward = jnp.where(illegal, -10.0, 1.0)
            timestep = jax.lax.cond(count >= self.time_limit, lambda: types.truncation(reward, self._obs(count)),
                                    lambda: types.transition(reward, self._obs(count)))
            return count, timestep

    return Alternating()


def test_ppo_never_takes_an_illegal_action_and_can_be_told_not_to_mask():
    from jaxppo.envs.jumanji import JumanjiEnv
    from jaxppo.ppo import train as ppo

    env = JumanjiEnv(_alternating_env(), "Alternating")
    config = jaxppo.PPOConfig(env="jumanji/Snake-v1", num_envs=8, num_steps=32, total_timesteps=8 * 32 * 3,
                              hidden_sizes=(16,), learning_rate=1e-2)
    ctx = ppo.make_context(config, env=env, env_params=env.default_params)
    assert ctx.masked
    state = ppo.init_state(ctx, jax.random.PRNGKey(0))
    for _ in range(3):  # rollouts from an updating policy: every action legal, every reward +1
        state, trajectory = ppo.rollout(ctx, state)
        legal = np.take_along_axis(np.asarray(trajectory.action_mask), np.asarray(trajectory.action)[..., None], -1)
        assert legal.all() and np.all(np.asarray(trajectory.reward) == 1.0)
        state, _ = ppo.train_step(ctx, state)
    evaluation = ppo.evaluate(ctx, state, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(evaluation["eval_return"]), 20.0)  # greedy, 20 legal steps
    unmasked = ppo.make_context(jaxppo.apply_overrides(config, ["action_mask=false"]), env=env,
                                env_params=env.default_params)
    assert not unmasked.masked
    _, trajectory = ppo.rollout(unmasked, ppo.init_state(unmasked, jax.random.PRNGKey(0)))
    assert trajectory.action_mask is None and np.any(np.asarray(trajectory.reward) < 0)  # illegal ones happen


def test_masked_q_values_pick_the_best_legal_action_and_leave_maskless_rows_alone():
    from jaxppo.dqn.losses import bootstrap_values, mask_q_values

    q = jnp.array([[1.0, 5.0, 2.0], [3.0, -1.0, 0.0], [4.0, 1.0, 2.0]])
    mask = jnp.array([[True, False, True], [False, True, True], [False, False, False]])
    masked = mask_q_values(q, mask)
    np.testing.assert_array_equal(np.argmax(np.asarray(masked), -1), [2, 2, 0])
    np.testing.assert_allclose(np.asarray(bootstrap_values(masked, masked, double_dqn=False)), [2.0, 0.0, 4.0])
    online = mask_q_values(jnp.array([[9.0, 0.0, 1.0], [0.0, 2.0, 1.0], [0.0, 0.0, 0.0]]), mask)
    np.testing.assert_allclose(np.asarray(bootstrap_values(masked, online, double_dqn=True)), [1.0, -1.0, 4.0])
    assert mask_q_values(q, None) is q


def test_dqn_explores_and_acts_on_legal_actions_only():
    from jaxppo.dqn import train as dqn
    from jaxppo.envs.jumanji import JumanjiEnv

    env = JumanjiEnv(_alternating_env(), "Alternating")
    config = jaxppo.DQNConfig(env="jumanji/Snake-v1", num_envs=4, total_timesteps=400, learning_starts=40,
                              buffer_size=200, batch_size=16, hidden_sizes=(16,), epsilon_start=1.0,
                              epsilon_end=1.0)  # every action a random one: only the mask keeps them legal
    ctx = dqn.make_context(config, env=env, env_params=env.default_params)
    assert ctx.masked
    state = dqn.init_state(ctx, jax.random.PRNGKey(0))
    state, record = dqn.rollout(ctx, state, 40)
    assert np.all(np.asarray(record.transition.reward) == 1.0)
    for _ in range(3):
        state, metrics = dqn.train_step(ctx, state)
        assert np.isfinite(float(metrics["q_mean"]))
    stored = state.buffer.storage
    filled = int(state.buffer.size)
    assert filled > 40 and np.all(np.asarray(stored.reward)[:filled] == 1.0)
    # The stored next-state masks are the observation's own: [T, F, T] after an odd count.
    counts = np.asarray(stored.next_obs)[:filled, 0].astype(int)
    want = np.stack([counts % 2 == 0, np.ones_like(counts, bool), counts % 2 == 1], -1)
    np.testing.assert_array_equal(np.asarray(stored.next_action_mask)[:filled], want)
    evaluation = dqn.evaluate(ctx, state, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(evaluation["eval_return"]), 20.0)
