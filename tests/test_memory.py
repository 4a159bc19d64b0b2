"""Recurrent PPO (``memory: gru``): memory resets at episode boundaries, the update replays each env
sequence from its stored memory, and everything else (chunks, sweeps, evaluation) works as before."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxppo
from jaxppo.networks import ResettableGRU, initial_memory
from jaxppo.ppo import train as ppo

TINY = dict(env="CartPole-v1", memory="gru", memory_size=16, hidden_sizes=(32, 32), num_envs=8, num_steps=32,
            num_minibatches=4, num_epochs=2)


def tiny(**changes) -> jaxppo.PPOConfig:
    return jaxppo.PPOConfig(**{**TINY, "total_timesteps": 8 * 32 * 4, **changes})


def test_memory_is_zeroed_exactly_where_an_episode_starts():
    """Hand-built: 6 steps of 2 sequences; sequence 0 restarts at t = 3. From there its outputs equal a
    fresh run on x[3:]; sequence 1 never restarts and keeps its history."""
    gru = ResettableGRU(8)
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 2, 5))
    reset = jnp.zeros((6, 2), bool).at[0].set(True).at[3, 0].set(True)
    params = gru.init(jax.random.PRNGKey(1), initial_memory((2,), 8), x[0], reset[0])

    def run(x, reset, memory):
        return jax.lax.scan(lambda m, inputs: gru.apply(params, m, *inputs), memory, (x, reset))[1]

    # Start from a non-zero memory: the reset at t = 0 must discard it.
    out = jax.jit(run)(x, reset, jnp.ones((2, 8)))
    fresh = jax.jit(run)(x[3:, :1], jnp.zeros((3, 1), bool).at[0].set(True), jnp.full((1, 8), 5.0))
    np.testing.assert_allclose(out[3:, 0], fresh[:, 0], rtol=1e-6, atol=1e-6)
    from_zero = jax.jit(run)(x, reset, jnp.zeros((2, 8)))
    np.testing.assert_allclose(out, from_zero, rtol=1e-6, atol=1e-6)
    # Without the reset at t = 3, sequence 0 would remember its first three steps.
    carried = jax.jit(run)(x, reset.at[3, 0].set(False), jnp.zeros((2, 8)))
    assert not np.allclose(carried[3:, 0], out[3:, 0], atol=1e-4)
    np.testing.assert_allclose(carried[:, 1], out[:, 1], rtol=1e-6)


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_first_epoch_replays_the_rollouts_log_probs(env):
    """Before any gradient step the update's sequence replay gives the rollout's log-probs (to float32
    rounding), across auto-resets in the middle of the rollout, minibatch by minibatch."""
    config = tiny(env=env)
    ctx = ppo.make_context(config)
    state = ppo.init_state(ctx, jax.random.PRNGKey(0))

    @jax.jit
    def replay(state):
        start = state.memory
        state, trajectory = ppo.rollout(ctx, state)
        batch = ppo.Batch(obs=trajectory.obs, action=trajectory.action, log_prob=trajectory.log_prob,
                          advantage=jnp.zeros_like(trajectory.reward), target=jnp.zeros_like(trajectory.reward),
                          old_value=jnp.zeros_like(trajectory.reward), reset=trajectory.reset,
                          actor_memory=start["actor"], critic_memory=start["critic"])
        permutation = jax.random.permutation(jax.random.PRNGKey(3), config.num_envs)
        learner = ppo.LearnerState(state.params, state.opt_state, jnp.ones((), bool), jnp.ones(()))
        # stopped=True with a target_kl would skip; here read the log-probs of each minibatch directly.
        per = config.num_envs // config.num_minibatches
        logps = []
        for m in range(config.num_minibatches):
            envs = permutation[m * per:(m + 1) * per]
            mb = jax.tree.map(lambda x: x[:, envs], batch._replace(actor_memory=None, critic_memory=None))
            mb = mb._replace(actor_memory=batch.actor_memory[envs], critic_memory=batch.critic_memory[envs])
            policy = ppo._actor_forward(ctx, learner.params["actor"], mb)
            logps.append((ppo.log_prob(policy, ppo._flat_targets(ctx, mb).action),
                          ppo._flat_targets(ctx, mb).log_prob))
        return logps, trajectory.reset

    # Two updates in, so the rollout starts from a carried (non-zero) memory.
    state, _ = jax.jit(functools.partial(ppo.run_updates, ctx), static_argnums=1)(state, 2)
    logps, reset = replay(state)
    assert int(np.asarray(reset[1:]).sum()) > 0 or env == "Pendulum-v1"  # CartPole resets mid-rollout
    for replayed, rolled in logps:
        np.testing.assert_allclose(np.asarray(replayed), np.asarray(rolled), rtol=1e-5, atol=1e-5)


def test_chunks_give_the_one_call_result_with_memory_in_the_state():
    algorithm = jaxppo.make_algorithm(tiny())
    state = jax.jit(algorithm.init)(jax.random.PRNGKey(0))
    run = jax.jit(algorithm.run_updates, static_argnums=1)
    whole, whole_metrics = run(state, 4)
    half, first = run(state, 2)
    half, second = run(half, 2)
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(half)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(whole_metrics["episode_return"]),
                                  np.concatenate([first["episode_return"], second["episode_return"]]))
    assert set(whole.memory) == {"actor", "critic", "first"} and whole.memory["actor"].shape == (8, 16)


def test_recurrent_configs_sweep_evaluate_and_refuse_memoryless_acting():
    config = tiny()
    result = jaxppo.sweep(config, {"learning_rate": [1e-4, 1e-3]}, num_seeds=2)
    assert result.metrics["episode_return"].shape == (2, 2, config.num_updates)
    algorithm = jaxppo.make_algorithm(config)
    state = jax.jit(algorithm.init)(jax.random.PRNGKey(0))
    out = jax.jit(algorithm.evaluate)(state, jax.random.PRNGKey(1))
    assert out["eval_return"].shape == (config.run.eval_episodes,) and np.all(out["eval_return"] >= 1)
    policy = algorithm.policy_of(state)
    action, memory = algorithm.act_with_memory(policy, jnp.zeros((3, 4)), jax.random.PRNGKey(2),
                                               algorithm.initial_memory((3,)), jnp.ones((3,), bool))
    assert action.shape == (3,) and memory.shape == (3, 16)
    with pytest.raises(ValueError, match="act_with_memory"):
        algorithm.act(policy, jnp.zeros(4), jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="must divide num_envs"):
        tiny(num_envs=6, num_minibatches=4, total_timesteps=6 * 32 * 4)
    assert jaxppo.PPOConfig().memory == "none"


def test_velocity_free_envs_hide_the_velocities_and_keep_the_dynamics():
    from jaxppo.envs import make_env

    masked, params = make_env("CartPole-NoVelocity-v1")
    full, _ = make_env("CartPole-v1")
    key = jax.random.PRNGKey(0)
    obs, state = masked.reset(key, params)
    full_obs, full_state = full.reset(key, params)
    np.testing.assert_array_equal(obs, full_obs[jnp.array([0, 2])])
    step = masked.step(jax.random.PRNGKey(1), state, 1, params)
    full_step = full.step(jax.random.PRNGKey(1), full_state, 1, params)
    np.testing.assert_array_equal(step[0], full_step[0][jnp.array([0, 2])])
    np.testing.assert_array_equal(step[5]["final_observation"], full_step[5]["final_observation"][jnp.array([0, 2])])
    assert masked.observation_space(params).shape == (2,)


@pytest.mark.slow
def test_a_recurrent_run_directory_trains_evaluates_and_resumes_exactly(tmp_path):
    """The memory is part of the checkpointed state: cut back to an earlier checkpoint and resume, and
    the per-seed history and the evaluations equal the uninterrupted run's, bit for bit."""
    import os
    import shutil

    from jaxppo import apply_overrides, run_io, runner

    config = apply_overrides(tiny(total_timesteps=8 * 32 * 12), ["run.updates_per_chunk=4", "run.eval_interval=4",
                                                                  "run.checkpoint_every_chunks=1"])
    whole = str(tmp_path / "whole")
    result = runner.train_run(config, whole, num_seeds=2, progress=False, echo=lambda _: None)
    assert len(result.summary["final_return"]["per_seed"]) == 2
    evaluations = run_io.read_jsonl(os.path.join(whole, "eval.jsonl"))
    assert [r["update"] for r in evaluations] == [4, 8, 12]
    resumed = str(tmp_path / "resumed")
    shutil.copytree(whole, resumed)
    shutil.rmtree(os.path.join(resumed, runner.CHECKPOINT_DIR, "12"))
    runner.resume_run(resumed, progress=False, echo=lambda _: None)
    with np.load(os.path.join(whole, runner.PER_SEED_FILE)) as a, np.load(os.path.join(resumed, runner.PER_SEED_FILE)) as b:
        assert set(a.files) == set(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert run_io.read_jsonl(os.path.join(resumed, "eval.jsonl")) == evaluations


