"""Recurrent DQN (``memory: gru``): sequences drawn from each env's own stream of the replay buffer, replay
from the stored memory, burn-in without a loss, and the recurrent run trains, evaluates, sweeps and
resumes like a feed-forward one."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxppo
from jaxppo.dqn import buffer as replay
from jaxppo.dqn import train as dqn

TINY = dict(env="CartPole-v1", memory="gru", memory_size=16, hidden_sizes=(32, 32), num_envs=4, buffer_size=400,
            batch_size=8, learning_starts=48, train_frequency=4, burn_in=2, sequence_length=4,
            target_update_interval=32)


def tiny(**changes) -> jaxppo.DQNConfig:
    return jaxppo.DQNConfig(**{**TINY, "total_timesteps": 4 * 4 * 20, **changes})


def _marked_buffer(capacity: int, streams: int, rows_written: int) -> replay.ReplayBuffer:
    """A buffer written one row (``streams`` envs) at a time; each slot's reward is ``1000 * t + env``."""
    example = replay.Transition(obs=jnp.zeros(1), action=jnp.zeros((), jnp.int32), reward=jnp.zeros(()),
                                terminated=jnp.zeros((), bool), next_obs=jnp.zeros(1))
    buffer = replay.init(capacity, example)
    for t in range(rows_written):
        row = jax.tree.map(lambda x: jnp.zeros((streams,) + x.shape, x.dtype), example)
        buffer = replay.add(buffer, row._replace(reward=1000.0 * t + jnp.arange(streams, dtype=jnp.float32)))
    return buffer


@pytest.mark.parametrize("rows_written", [5, 7, 13])  # partly filled, just full, wrapped past the start
def test_sequences_are_consecutive_steps_of_one_env_and_never_cross_the_write_pointer(rows_written):
    """Against a hand count: with 7 rows of 3 envs, every sequence of 4 steps is one env's times
    t0..t0+3, all of them still held, and every such start (there are held_rows - 3 per env) is drawn."""
    streams, rows, length = 3, 7, 4
    buffer = _marked_buffer(rows * streams, streams, rows_written)
    sampled = replay.sample_sequences(buffer, jax.random.PRNGKey(0), 4000, length, streams)
    reward = np.asarray(sampled.reward)
    time, env = reward // 1000, reward % 1000
    held = range(max(rows_written - rows, 0), rows_written)  # the times the buffer still holds
    assert np.all(env == env[:, :1])
    np.testing.assert_array_equal(time - time[:, :1], np.broadcast_to(np.arange(length), time.shape))
    assert time.min() == held[0] and time.max() == held[-1]
    expected_starts = {(t, e) for t in held if t + length - 1 <= held[-1] for e in range(streams)}
    assert {(int(t), int(e)) for t, e in zip(time[:, 0], env[:, 0])} == expected_starts


def _acting_record(config: jaxppo.DQNConfig, steps: int):
    ctx = dqn.make_context(config)
    state = dqn.init_state(ctx, jax.random.PRNGKey(0))
    state, record = jax.jit(functools.partial(dqn.rollout, ctx), static_argnums=1)(state, steps)
    return ctx, state, record.transition


def test_replay_from_the_stored_memory_reproduces_acting_across_episode_ends():
    """A random-action CartPole rollout of 80 steps crosses several episode ends. Replaying one env's
    stored steps from the memory stored at its first step gives, at every later step, the memory the
    acting network stored there; and q_next[t] (next_obs read from obs[t]'s memory) equals q[t + 1]
    wherever the episode went on."""
    ctx, _, steps = _acting_record(tiny(epsilon_start=1.0, epsilon_end=1.0), 80)
    first = np.asarray(steps.first)
    assert first[1:].sum() >= 4, "the rollout should cross episode ends"
    params = dqn.init_state(ctx, jax.random.PRNGKey(0)).params
    q, q_next, final = dqn.sequence_q_values(ctx, params, steps.memory[0], steps.obs, steps.first, steps.next_obs)

    def step(memory, inputs):
        memory, _ = ctx.network.apply(params, memory, *inputs)
        return memory, memory

    memory = jax.lax.scan(step, steps.memory[0], (steps.obs, steps.first))[1]  # after each step
    np.testing.assert_allclose(np.asarray(memory[:-1]), np.asarray(steps.memory[1:]), atol=1e-5)
    continues = ~first[1:]
    np.testing.assert_allclose(np.asarray(q_next[:-1])[continues], np.asarray(q[1:])[continues], atol=1e-5)
    # Where an episode ended, q_next is not the next episode's first Q-value: it reads the final obs.
    assert not np.allclose(np.asarray(q_next[:-1])[~continues], np.asarray(q[1:])[~continues], atol=1e-3)
    np.testing.assert_allclose(np.asarray(final), np.asarray(memory[-1]), atol=1e-6)


def test_burn_in_steps_refresh_the_memory_but_carry_no_loss():
    """Rewards, actions and terminations of the burn-in steps do not enter the loss; their observations
    do (they shape the memory the loss steps start from)."""
    config = tiny()
    ctx, state, steps = _acting_record(config, 40)
    window = config.burn_in + config.sequence_length
    batch = jax.tree.map(lambda x: jnp.stack([jnp.swapaxes(x, 0, 1)[e, 10:10 + window] for e in range(4)]), steps)
    batch = batch._replace(memory=batch.memory[:, 0])  # as sample_sequences gives it: the first step's memory
    loss = jax.jit(lambda b: dqn.dqn_loss(state.params, state.target_params, ctx, b)[0])
    base = loss(batch)
    burn = slice(0, config.burn_in)
    changed = batch._replace(reward=batch.reward.at[:, burn].add(100.0), action=1 - batch.action,
                             terminated=batch.terminated.at[:, burn].set(True))
    changed = changed._replace(action=changed.action.at[:, config.burn_in:].set(batch.action[:, config.burn_in:]))
    np.testing.assert_allclose(loss(changed), base, rtol=1e-6)
    assert not np.isclose(loss(batch._replace(reward=batch.reward.at[:, -1].add(100.0))), base)
    assert not np.isclose(loss(batch._replace(obs=batch.obs.at[:, 0].add(1.0))), base)


def test_chunks_give_the_one_call_result_and_the_run_evaluates():
    config = tiny()
    algorithm = jaxppo.make_algorithm(config)
    state = jax.jit(algorithm.init)(jax.random.PRNGKey(0))
    run = jax.jit(algorithm.run_updates, static_argnums=1)
    whole, whole_metrics = run(state, 20)
    half, first = run(state, 10)
    half, second = run(half, 10)
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(half)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.asarray(whole_metrics["learning"]).sum() == dqn.learning_steps(config) and np.all(np.isfinite(whole_metrics["td_loss"]))
    assert set(whole.memory) == {"q", "first"} and whole.memory["q"].shape == (4, 16)
    assert whole.buffer.storage.memory.shape == (400, 16)
    sampled = replay.sample_sequences(whole.buffer, jax.random.PRNGKey(2), 8, 6, 4)
    slots = replay.sequence_slots(whole.buffer, jax.random.PRNGKey(2), 8, 6, 4)
    np.testing.assert_array_equal(sampled.memory, whole.buffer.storage.memory[slots[:, 0]])
    assert sampled.obs.shape == (8, 6, 4)
    out = jax.jit(algorithm.evaluate)(whole, jax.random.PRNGKey(1))
    assert out["eval_return"].shape == (config.run.eval_episodes,) and np.all(out["eval_return"] >= 1)
    with pytest.raises(ValueError, match="act_with_memory"):
        algorithm.act(algorithm.policy_of(whole), jnp.zeros(4), jax.random.PRNGKey(0))


@pytest.mark.slow
def test_a_recurrent_dqn_config_sweeps_as_stacked_lanes():
    config = tiny()
    result = jaxppo.sweep(config, {"learning_rate": [1e-4, 1e-3]}, num_seeds=2)
    assert result.metrics["episode_return"].shape == (2, 2, config.num_updates)
    assert np.all(np.isfinite(result.metrics["td_loss"]))


@pytest.mark.parametrize("changes, message", [
    (dict(buffer_size=402), "multiple of num_envs"),
    (dict(buffer_size=20, batch_size=4), "fewer than one replayed sequence"),
    (dict(learning_starts=16), "must cover one replayed sequence"),
])
def test_recurrent_configs_that_cannot_replay_a_sequence_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny(**changes)


@pytest.mark.slow
def test_memorychain_is_solved_with_memory_and_not_without():
    """The shipped config at 2 seeds x 1e5 steps (a real run): with memory the greedy policy names the
    context (the env pays +1), without it the return stays at the chance level 0."""
    from jaxppo import programs
    from jaxppo.diagnosis.core import final_returns

    results = {}
    for memory in ("gru", "none"):
        config = jaxppo.apply_overrides(jaxppo.load_config("dqn_memorychain_gru"), [f"memory={memory}"])
        metrics = programs.train_stacked([config], programs.seed_keys(0, 2))[0]
        results[memory] = final_returns({k: v[0] for k, v in metrics.items()})
    assert np.all(results["gru"] >= 0.8), results
    assert np.all(np.abs(results["none"]) <= 0.3), results
