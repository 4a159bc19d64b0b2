"""jaxppo.sweep: a grid x seeds in one compiled program, equal to the configs trained one by one."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxppo
from jaxppo import PPOConfig, apply_overrides

TINY = ["num_envs=2", "num_steps=16", "total_timesteps=256", "num_epochs=1", "num_minibatches=2",
        "hidden_sizes=[16]"]


def tiny_config() -> PPOConfig:
    return apply_overrides(PPOConfig(), TINY)


@pytest.mark.slow
def test_sweep_has_named_axes_and_equals_configs_trained_one_by_one():
    config = tiny_config()
    grid = {"learning_rate": [1e-4, 3e-3], "clip_epsilon": [0.1, 0.3, 0.2]}
    result = jaxppo.sweep(config, grid, num_seeds=2, seed=5)
    assert result.axes == ("learning_rate", "clip_epsilon", "seed")
    assert result.values == {"learning_rate": (1e-4, 3e-3), "clip_epsilon": (0.1, 0.3, 0.2)}
    assert result.grid_shape == (2, 3)
    assert result.metrics["policy_loss"].shape == (2, 3, 2, config.num_updates)
    assert jax.tree.leaves(result.state.params)[0].shape[:3] == (2, 3, 2)
    assert result.settings()[1] == {"learning_rate": 1e-4, "clip_epsilon": 0.3}
    # A grid point trained on its own with the same seeds; (0, 1) is lane block 1 in row-major order
    # (2 in column-major), so this also pins the documented axis order.
    for i, j in ((0, 1),):
        single = config.replace(learning_rate=grid["learning_rate"][i], clip_epsilon=grid["clip_epsilon"][j])
        state, metrics = jaxppo.train(single, num_seeds=2, seed=5)
        for name in ("policy_loss", "value_loss", "approx_kl", "entropy"):
            np.testing.assert_allclose(result.metrics[name][i, j], metrics[name], rtol=2e-4, atol=1e-6, err_msg=name)
        np.testing.assert_array_equal(result.metrics["episode_return"][i, j], metrics["episode_return"])
        np.testing.assert_allclose(jax.tree.leaves(result.state.params)[0][i, j], jax.tree.leaves(state.params)[0],
                                   rtol=2e-4, atol=1e-6)
    # The settings really differ: learning rate 30x apart moves the parameters differently.
    kernel = np.asarray(jax.tree.leaves(result.state.params)[0])
    assert not np.allclose(kernel[0, 0], kernel[1, 0])


@pytest.mark.parametrize("grid, message", [
    ({"num_envs": [2, 4]}, "'num_envs' is a static field"),
    ({"run": [1]}, "'run' is a static field"),
    ({"learning_rat": [1e-3]}, "no field 'learning_rat' to sweep \\(did you mean 'learning_rate'\\?\\)"),
    ({"learning_rate": []}, "no values for 'learning_rate'"),
    ({"learning_rate": ["fast"]}, "learning_rate='fast' in the grid is not a finite number"),
    ({"learning_rate": [1e-3, 1e-3]}, "repeats a value of 'learning_rate'"),
    ({}, "grid is empty"),
    ({"clip_epsilon": [-0.1]}, "clip_epsilon"),
])
def test_bad_grids_are_one_line_errors_before_compiling(grid, message):
    with pytest.raises(ValueError, match=message) as error:
        jaxppo.sweep(tiny_config(), grid, num_seeds=2)
    assert "\n" not in str(error.value)
