"""The DQN train step end to end: target updates, truncation, seeds, non-finite guard, chunking, configs."""

import functools
import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxppo
from jaxppo import DQNConfig, make_train
from jaxppo.envs import make_env
from jaxppo.dqn import train as dqn

# 10 env steps per update; learning starts with update 3 (env_steps 30), hard target copies at 30, 60, 90.
SMALL = dict(total_timesteps=2_000, num_envs=2, buffer_size=200, batch_size=16, learning_starts=30,
             train_frequency=5, target_update_interval=30, hidden_sizes=(16,), learning_rate=1e-2)


@functools.lru_cache(maxsize=None)
def _compiled(**overrides):
    """One algorithm and its jitted init / run_updates per config, shared by the tests (compiling dominates)."""
    alg = jaxppo.make_algorithm(DQNConfig(**{**SMALL, **overrides}))
    return alg, jax.jit(alg.init), jax.jit(alg.run_updates, static_argnums=1)


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _tree_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(b)))


def test_update_target_hard_and_polyak_on_a_counter():
    hard = DQNConfig(target_update="hard", target_update_interval=500)
    polyak = DQNConfig(target_update="polyak", tau=0.1)
    online, target = {"w": jnp.array(3.0)}, {"w": jnp.array(1.0)}
    fn = jax.jit(dqn.update_target, static_argnums=0)
    yes, no = jnp.array(True), jnp.array(False)
    assert float(fn(hard, online, target, yes, 490, 500)["w"]) == 3.0  # crosses 500
    assert float(fn(hard, online, target, yes, 500, 510)["w"]) == 1.0  # no multiple crossed
    assert float(fn(hard, online, target, no, 990, 1000)["w"]) == 1.0  # learning has not started
    assert float(fn(polyak, online, target, yes, 0, 10)["w"]) == pytest.approx(0.1 * 3.0 + 0.9 * 1.0)
    assert float(fn(polyak, online, target, no, 0, 10)["w"]) == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("mode,normalization", [("hard", "off"), ("polyak", "off"), ("hard", "running")])
def test_target_network_follows_schedule_in_training(mode, normalization):
    overrides = {} if mode == "hard" else {"target_update": "polyak", "tau": 0.25}
    _, init, run = _compiled(reward_normalization=normalization, **overrides)
    state = init(jax.random.PRNGKey(0))
    expected = state.target_params
    previous_scale = None
    for update in range(1, 10):
        state, metrics = run(state, 1)
        if normalization == "running":
            # Between copies the target's output layer follows the reward scale (scale-only PopArt);
            # the first statistics leave the untrained network as it is.
            scale = float(metrics["reward_scale"][0])
            if previous_scale is not None:
                expected = dqn.rescale_q_head(expected, jnp.asarray(previous_scale / scale))
            previous_scale = scale
        if update >= 3:  # learning has started
            if mode == "hard" and update % 3 == 0:
                expected = state.params
            elif mode == "polyak":
                expected = jax.tree.map(lambda o, t: 0.25 * o + 0.75 * t, state.params, expected)
        for got, want in zip(_leaves(state.target_params), _leaves(expected)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        if update >= 3 and (mode == "polyak" or update % 3):
            assert not _tree_equal(state.params, state.target_params)


def test_truncation_stores_final_observation_and_is_not_terminal():
    cfg = DQNConfig(**{**SMALL, "num_envs": 1, "epsilon_start": 0.0, "epsilon_end": 0.0})
    env, params = make_env("CartPole-v1")
    params = params.replace(max_steps_in_episode=4)
    ctx = dqn.make_context(cfg, env, params)
    state = dqn.init_state(ctx, jax.random.PRNGKey(1))
    rollout = jax.jit(lambda s: dqn.rollout(ctx, s, 4))
    end_state, record = rollout(state)
    t = record.transition
    assert not np.any(np.asarray(t.terminated))  # balanced for 4 steps: no pole falls
    assert bool(record.done[-1, 0]) and not np.any(np.asarray(record.done[:-1]))
    np.testing.assert_array_equal(t.next_obs[:-1], t.obs[1:])  # inside the episode next = following obs
    # At the time limit the stored next observation is the pre-reset one, not the new episode's start.
    assert not np.allclose(t.next_obs[-1], end_state.obs)
    # ... but one Euler step of the same episode: x' = x + tau * x_dot, theta' = theta + tau * theta_dot.
    last_obs, last_next = np.asarray(t.obs[-1, 0]), np.asarray(t.next_obs[-1, 0])
    np.testing.assert_allclose(last_next[[0, 2]], last_obs[[0, 2]] + 0.02 * last_obs[[1, 3]], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_seeds_under_vmap_get_different_parameters_and_experience():
    alg, _, _ = _compiled()
    init = jax.jit(jax.vmap(alg.init))(jax.random.split(jax.random.PRNGKey(0), 2))
    kernel = np.asarray(init.params["params"]["MLP_0"]["Dense_0"]["kernel"])
    assert not np.allclose(kernel[0], kernel[1])  # different network inits, not only different data
    state, metrics = jax.jit(jax.vmap(make_train(alg.config)))(jax.random.split(jax.random.PRNGKey(0), 2))
    first = jax.tree.map(lambda x: x[0], state)
    second = jax.tree.map(lambda x: x[1], state)
    for a, b in zip(_leaves(first.params), _leaves(second.params)):
        assert not np.allclose(a, b)
    assert not np.array_equal(first.buffer.storage.action, second.buffer.storage.action)
    assert metrics["td_loss"].shape == (2, alg.config.num_updates)
    assert metrics["greedy_action_histogram"].shape == (2, alg.config.num_updates, 2)


@pytest.mark.slow
def test_chunked_updates_equal_one_call_and_metrics_are_zero_before_learning():
    _, init, run = _compiled()
    state = init(jax.random.PRNGKey(4))
    whole, metrics = run(state, 4)
    part, _ = run(state, 2)
    part, part_metrics = run(part, 2)
    assert _tree_equal(whole, part)
    np.testing.assert_array_equal(metrics["td_loss"][2:], part_metrics["td_loss"])
    compiled_programs = run._cache_size()
    run(part, 2)  # a further chunk of the same length must reuse the compiled program
    assert run._cache_size() == compiled_programs
    # Learning starts with update 3 (env_steps 30 >= learning_starts 30): before that, zeros.
    np.testing.assert_array_equal(metrics["learning"], [False, False, True, True])
    np.testing.assert_array_equal(metrics["env_steps"], [10, 20, 30, 40])
    for name in ("td_loss", "grad_norm", "q_max", "greedy_agreement", "greedy_action_histogram"):
        assert np.all(np.asarray(metrics[name])[:2] == 0), name
    assert np.all(np.asarray(metrics["td_loss"])[2:] > 0)
    np.testing.assert_allclose(np.asarray(metrics["greedy_action_histogram"])[2:].sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(metrics["epsilon"][0], 1.0 - 0.95 * 8 / (0.5 * 2000), rtol=1e-5)


class _NaNRewardEnv:
    """CartPole whose rewards are NaN: every TD loss and gradient is non-finite."""

    def __init__(self):
        self.inner, self.default_params = make_env("CartPole-v1")

    def reset(self, key, params):
        return self.inner.reset(key, params)

    def step(self, key, state, action, params):
        obs, state, reward, terminated, truncated, info = self.inner.step(key, state, action, params)
        return obs, state, reward * jnp.nan, terminated, truncated, info

    def action_space(self, params):
        return self.inner.action_space(params)

    def observation_space(self, params):
        return self.inner.observation_space(params)


@pytest.mark.slow
def test_nonfinite_gradients_are_skipped_and_counted():
    cfg = DQNConfig(**{**SMALL, "learning_starts": 0})
    alg = jaxppo.make_algorithm(cfg, env=_NaNRewardEnv())
    state = jax.jit(alg.init)(jax.random.PRNGKey(0))
    final, metrics = jax.jit(alg.run_updates, static_argnums=1)(state, 5)
    assert np.isnan(np.asarray(metrics["td_loss"])).all()  # the loss really was non-finite
    assert all(np.isfinite(x).all() for x in _leaves(final.params))
    assert _tree_equal(final.params, state.params)  # every update skipped
    np.testing.assert_array_equal(metrics["nonfinite_updates"], [1, 2, 3, 4, 5])


def test_every_dqn_yaml_loads_and_builds():
    paths = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "configs", "dqn_*.yaml")))
    assert len(paths) >= 3
    for path in paths:
        cfg = jaxppo.load_config(path)
        assert isinstance(cfg, DQNConfig)
        alg = jaxppo.make_algorithm(cfg)
        shapes = jax.eval_shape(lambda k: alg.run_updates(alg.init(k), 1), jax.random.PRNGKey(0))
        assert shapes[1]["greedy_action_histogram"].shape == (1, alg.env.num_actions)


@pytest.mark.slow
def test_dqn_learns_cartpole():
    cfg = DQNConfig(**LEARN)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    state, metrics = jax.jit(jax.vmap(make_train(cfg)))(keys)
    alg = jaxppo.make_algorithm(cfg)
    evaluate = jax.jit(jax.vmap(alg.evaluate))
    eval_keys = jax.random.split(jax.random.PRNGKey(1), 3)
    assert float(np.mean(evaluate(state, eval_keys)["eval_return"])) > 150.0
    # The same greedy evaluation of the untrained networks scores far lower: the gain is learned.
    assert float(np.mean(evaluate(jax.vmap(alg.init)(keys), eval_keys)["eval_return"])) < 100.0


# The default network and batch with a short schedule; MSE because Huber with delta 1 diverges on
# unscaled CartPole returns (docs/dqn.md).
LEARN = dict(total_timesteps=30_000, learning_starts=1_000, loss="mse", epsilon_decay_fraction=0.5)


@pytest.mark.slow
def test_reward_normalization_makes_training_invariant_to_the_reward_scale():
    # Rewards divided by the root mean square of the discounted return, the Q head rescaled when it moves:
    # multiplying every reward by 1000 must give the same actions, the same TD losses and Q-values 1000
    # times larger (up to float rounding), while without normalisation the run changes.
    runs = {}
    for normalization in ("running", "off"):
        for scale in (1.0, 1000.0):
            alg = jaxppo.make_algorithm(DQNConfig(**{**SMALL, "reward_normalization": normalization,
                                                     "env_reward_scale": scale}))
            state, metrics = jax.jit(lambda k: alg.run_updates(alg.init(k), 30))(jax.random.PRNGKey(3))
            runs[normalization, scale] = (state, jax.tree.map(np.asarray, metrics))
    (state_1, m_1), (state_k, m_k) = runs["running", 1.0], runs["running", 1000.0]
    assert m_1["learning"].sum() > 20  # most of the 30 updates learned
    np.testing.assert_array_equal(state_1.buffer.storage.action, state_k.buffer.storage.action)
    np.testing.assert_allclose(m_k["reward_scale"], 1000.0 * m_1["reward_scale"], rtol=1e-4)
    np.testing.assert_allclose(m_k["td_loss"], m_1["td_loss"], rtol=2e-3, atol=1e-7)
    for name in ("q_mean", "q_max", "q_min"):
        np.testing.assert_allclose(m_k[name], 1000.0 * m_1[name], rtol=2e-3, atol=1e-4)
    # Without normalisation the scaled run's TD loss is ~1e6 times larger, not equal.
    off_1, off_k = runs["off", 1.0][1], runs["off", 1000.0][1]
    assert off_k["td_loss"][-1] > 1e4 * off_1["td_loss"][-1]


def test_rescaled_q_head_preserves_q_in_return_units():
    alg, init, _ = _compiled()
    params = init(jax.random.PRNGKey(0)).params
    network = dqn.make_context(alg.config).network
    obs = jax.random.normal(jax.random.PRNGKey(1), (7, 4))
    old_scale, new_scale = 3.0, 12.5
    rescaled = dqn.rescale_q_head(params, jnp.asarray(old_scale / new_scale))
    np.testing.assert_allclose(new_scale * network.apply(rescaled, obs), old_scale * network.apply(params, obs),
                               rtol=1e-5, atol=1e-6)
    # Only the output layer changed.
    hidden = params["params"]["MLP_0"]["Dense_0"]
    np.testing.assert_array_equal(rescaled["params"]["MLP_0"]["Dense_0"]["kernel"], hidden["kernel"])


def test_annealed_learning_rate_reaches_zero_exactly_at_the_runs_last_gradient_step():
    cfg = DQNConfig(**{**SMALL, "total_timesteps": 200, "anneal_lr": True})
    assert cfg.num_updates == 20
    # Updates 0 and 1 end at 10 and 20 env steps, before learning_starts=30: 18 learning updates.
    assert dqn.learning_steps(cfg) == 18
    assert dqn.learning_steps(cfg.replace(gradient_steps=3)) == 54
    assert dqn.learning_steps(cfg.replace(learning_starts=0)) == 20
    schedule = dqn.learning_rate_schedule(cfg)
    np.testing.assert_allclose([schedule(0), schedule(9), schedule(17), schedule(18)],
                               [1e-2, 1e-2 * 9 / 18, 1e-2 / 18, 0.0], rtol=1e-6, atol=1e-12)
    assert dqn.learning_rate_schedule(cfg.replace(anneal_lr=False)) == 1e-2
    alg = jaxppo.make_algorithm(cfg)
    final, metrics = jax.jit(lambda key: alg.run_updates(alg.init(key), cfg.num_updates))(jax.random.PRNGKey(0))
    assert int(np.sum(metrics["learning"])) == dqn.learning_steps(cfg)
    # The optimiser's step counters (Adam's and the schedule's) stop at the run's learning steps, so the
    # last step ran at schedule(17) = lr / 18 and no step ran at a negative rate.
    counts = [int(c) for _, c in optax.tree_utils.tree_get_all_with_path(final.opt_state, "count")]
    assert counts and set(counts) == {18}
