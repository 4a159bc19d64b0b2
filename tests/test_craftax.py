"""The Craftax adapter (``env: craftax/<name>``): Craftax's one ``done`` split into a time-limit
truncation and a real termination (death), the final observation kept, the next episode started in the
same step; Craftax's own auto-reset env is refused."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

craftax_env = pytest.importorskip("craftax.craftax_env")  # the [craftax] extra; CI installs it with [dev]

import jaxppo  # noqa: E402
from jaxppo.envs.craftax import CraftaxEnv  # noqa: E402
from jaxppo.envs.suite import SuiteParams  # noqa: E402

NOOP = 0


@pytest.mark.slow  # compiling one Craftax step is slow on a CPU
def test_time_limit_truncates_and_death_terminates_by_hand():
    raw = craftax_env.make_craftax_env_from_name("Craftax-Classic-Symbolic-v1", auto_reset=False)
    env = CraftaxEnv(raw, "Craftax-Classic-Symbolic-v1")
    params = SuiteParams(inner=raw.default_params.replace(max_timesteps=2), max_steps_in_episode=2)
    assert env.action_space(params).n == 17
    key = jax.random.PRNGKey(1)
    step = jax.jit(lambda s, a: env.step(key, s, a, params))
    restart = np.asarray(raw.reset(jax.random.split(key)[1], params.inner)[0])

    obs, state = env.reset(jax.random.PRNGKey(0), params)
    obs, state, reward, terminated, truncated, info = step(state, jnp.int32(NOOP))
    assert (bool(terminated), bool(truncated)) == (False, False)
    obs, state, reward, terminated, truncated, info = step(state, jnp.int32(NOOP))
    assert (bool(terminated), bool(truncated)) == (False, True)  # step 2 of 2: only the limit ended it
    np.testing.assert_array_equal(obs, restart)
    assert int(state.timestep) == 0 and not np.array_equal(info["final_observation"], restart)

    # A player at zero health dies in the next step: Craftax's done, and a termination here.
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    state = state.replace(player_health=jnp.asarray(0.0, state.player_health.dtype))
    _, _, _, terminated, truncated, info = step(state, jnp.int32(NOOP))
    assert (bool(terminated), bool(truncated)) == (True, False)
    assert "discount" in info  # Craftax's own info is passed on


def test_craftax_auto_reset_env_is_refused_and_the_named_env_is_made():
    from jaxppo.envs import make_env

    config = jaxppo.PPOConfig(env="craftax/Craftax-Classic-Symbolic-v1")
    own = craftax_env.make_craftax_env_from_name("Craftax-Classic-Symbolic-v1", auto_reset=True)
    with pytest.raises(ValueError, match="without its own auto-reset"):
        jaxppo.make_train(config, env=own)
    env, params = make_env("craftax/Craftax-Classic-Symbolic-v1")
    assert params.max_steps_in_episode == 10000 and env.observation_space(params).shape == (1345,)
