"""The public entry points: build an algorithm for a config, train one seed, or train many at once."""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import dataclasses

import jax
import jax.numpy as jnp

from jaxppo.algorithm import Algorithm
from jaxppo.config import DQNConfig, PPOConfig

__all__ = ["make_algorithm", "make_train", "train", "stack_configs"]


def make_algorithm(config: Any, env: Any = None, env_params: Any = None) -> Algorithm:
    """The ``Algorithm`` (pure init / run_updates / evaluate / act) for a ``PPOConfig`` or ``DQNConfig``."""
    if isinstance(config, PPOConfig):
        from jaxppo.ppo.train import make_algorithm as make_ppo

        return make_ppo(config, env, env_params)
    if isinstance(config, DQNConfig):
        from jaxppo.dqn.train import make_algorithm as make_dqn

        return make_dqn(config, env, env_params)
    raise TypeError(f"config must be a PPOConfig or DQNConfig, got {type(config).__name__}.")


def make_train(config: Any, env: Any = None, env_params: Any = None) -> Callable[[jax.Array], tuple[Any, dict]]:
    """``train(key) -> (final_state, metrics)`` for one seed: pure, so vmap over keys and jit the result.

    ``metrics`` maps names to arrays whose leading axis is the update index
    (``config.num_updates`` of them). ``env`` may be any gymnax-compatible environment object;
    without one the config's ``env`` name is made with gymnax.
    """
    algorithm = make_algorithm(config, env, env_params)
    num_updates = config.num_updates

    def train_one_seed(key: jax.Array) -> tuple[Any, dict]:
        return algorithm.run_updates(algorithm.init(key), num_updates)

    return train_one_seed


def train(config: Any, num_seeds: int = 1, seed: int = 0, env: Any = None,
          env_params: Optional[Any] = None) -> tuple[Any, dict]:
    """Trains ``num_seeds`` independent seeds at once; results carry a leading seed axis.

    Seed ``i`` uses ``jax.random.split(jax.random.PRNGKey(seed), num_seeds)[i]``, so a run with more
    seeds reproduces the first seeds of a smaller one.
    """
    if not isinstance(num_seeds, int) or num_seeds <= 0:
        raise ValueError(f"num_seeds={num_seeds!r} must be a positive integer.")
    keys = jax.random.split(jax.random.PRNGKey(seed), num_seeds)
    if env is None and env_params is None:
        return _compiled_train(config)(keys)
    return jax.jit(jax.vmap(make_train(config, env, env_params)))(keys)


@functools.lru_cache(maxsize=16)
def _compiled_train(config: Any) -> Callable[[jax.Array], tuple[Any, dict]]:
    """One jitted, seed-vmapped program per (hashable, frozen) config, so repeated calls do not retrace."""
    return jax.jit(jax.vmap(make_train(config)))


def stack_configs(configs: list[Any]) -> Any:
    """Stacks configs that differ only in numeric hyperparameters into one config with a leading axis.

    The result vmaps like the keys do, so one compiled program trains a whole sweep::

        sweep = stack_configs([base.replace(learning_rate=lr) for lr in (1e-4, 3e-4, 1e-3)])
        train = jax.jit(jax.vmap(lambda c, k: make_train(c)(k)))
        state, metrics = train(sweep, jax.random.split(key, 3))

    Sizes and modes are part of the program, so they must agree; a mismatch names the field.
    """
    if not configs:
        raise ValueError("stack_configs needs at least one config.")
    first = configs[0]
    for other in configs[1:]:
        if type(other) is not type(first):
            raise ValueError(f"cannot stack a {type(other).__name__} with a {type(first).__name__}.")
        for field in dataclasses.fields(first):
            static_field = not field.metadata.get("pytree_node", True)
            a, b = getattr(first, field.name), getattr(other, field.name)
            if (static_field and a != b) or ((a is None) != (b is None)):
                raise ValueError(
                    f"configs differ in {field.name!r} ({a!r} vs {b!r}), which fixes the program's shape or "
                    "structure; only numeric hyperparameters can be swept in one program."
                )
    return jax.tree.map(lambda *leaves: jnp.stack([jnp.asarray(x, jnp.float32) for x in leaves]), *configs)
