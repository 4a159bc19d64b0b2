"""jaxppo's own compiler options: which options, on which platform, and that every program gets them."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxppo
from jaxppo import PPOConfig, apply_overrides, compilation, lab, make_algorithm, runner

TINY = ["num_envs=2", "num_steps=8", "total_timesteps=32", "num_epochs=1", "num_minibatches=2", "hidden_sizes=[8]"]
BOGUS = {"xla_jaxppo_test_no_such_option": 1}


def tiny_config() -> PPOConfig:
    return apply_overrides(PPOConfig(), TINY)


def test_cpu_programs_compile_at_llvm_o1_and_other_platforms_at_xla_defaults(monkeypatch):
    monkeypatch.delenv(compilation.ENV_VARIABLE, raising=False)
    assert compilation.compiler_options("cpu") == {"xla_backend_optimization_level": 1}
    assert compilation.compiler_options("gpu") == {}
    assert compilation.compiler_options("tpu") == {}
    assert compilation.compiler_options() == compilation.compiler_options(jax.default_backend())


@pytest.mark.parametrize("value, expected", [
    ("3", {"xla_backend_optimization_level": 3}),
    (" 0 ", {"xla_backend_optimization_level": 0}),
    ("default", {}),
    ("", {"xla_backend_optimization_level": 1}),
])
def test_the_environment_variable_sets_the_cpu_level(monkeypatch, value, expected):
    monkeypatch.setenv(compilation.ENV_VARIABLE, value)
    assert compilation.compiler_options("cpu") == expected
    assert compilation.compiler_options("gpu") == {}


@pytest.mark.parametrize("value", ["4", "fast", "-1", "O1"])
def test_a_bad_environment_value_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv(compilation.ENV_VARIABLE, value)
    with pytest.raises(ValueError, match=f"{compilation.ENV_VARIABLE}=.* must be 0, 1, 2, 3 or 'default'"):
        compilation.compiler_options("cpu")


def test_the_options_reach_xla():
    # XLA rejects a name it does not know, so a bogus option proves the dict is handed to the compiler.
    fn = compilation.jit(lambda x: x * 2)
    assert np.array_equal(fn(np.ones(3, np.float32)), np.full(3, 2.0, np.float32))
    with pytest.raises(Exception, match="xla_jaxppo_test_no_such_option"):
        jax.jit(lambda x: x * 3, compiler_options=BOGUS)(np.ones(3, np.float32))


@pytest.fixture
def bogus_options(monkeypatch):
    """Every program built through ``compilation.jit`` from here on carries an option XLA rejects."""
    monkeypatch.setattr(compilation, "compiler_options", lambda platform=None: dict(BOGUS))
    jaxppo.api._compiled_train.cache_clear()
    jaxppo.api._compiled_sweep.cache_clear()
    yield
    jaxppo.api._compiled_train.cache_clear()
    jaxppo.api._compiled_sweep.cache_clear()


@pytest.mark.parametrize("entry", ["train", "train_with_env", "sweep", "chunk_runner", "lab"])
def test_every_training_program_is_compiled_with_jaxppos_options(bogus_options, entry):
    config = tiny_config()
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    with pytest.raises(Exception, match="xla_jaxppo_test_no_such_option"):
        if entry == "train":
            jaxppo.train(config, num_seeds=2)
        elif entry == "train_with_env":
            algorithm = make_algorithm(config)
            jaxppo.train(config, num_seeds=2, env=algorithm.env, env_params=algorithm.env_params)
        elif entry == "sweep":
            jaxppo.sweep(config, {"learning_rate": [1e-3, 3e-4]}, num_seeds=2)
        elif entry == "chunk_runner":
            runner.ChunkRunner(make_algorithm(config)).init(keys)
        else:
            lab._train_group([config], keys)


@pytest.mark.slow
def test_training_at_jaxppos_level_matches_xlas_default_level():
    # LLVM's optimisation level may change instruction selection (fused multiply-adds), not the program:
    # a short PPO run at jaxppo's level agrees with the same program at XLA's default level 3.
    config = tiny_config().replace(total_timesteps=64)
    keys = jax.random.split(jax.random.PRNGKey(4), 2)
    jaxppo.api._compiled_train.cache_clear()
    state, metrics = jaxppo.train(config, num_seeds=2, seed=4)
    reference = jax.jit(jax.vmap(jaxppo.make_train(config)),
                        compiler_options={"xla_backend_optimization_level": 3})
    ref_state, ref_metrics = reference(keys)
    assert set(metrics) == set(ref_metrics)
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl"):
        np.testing.assert_allclose(metrics[name], ref_metrics[name], rtol=1e-4, atol=1e-6, err_msg=name)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(ref_state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
