"""Every training program jaxppo runs, built one way: configs to algorithms, lanes, keys, compiled code.

A *lane* is one independent training run: a seed, or a (setting, seed) pair when several configs train
together. ``jaxppo.train``, ``jaxppo.sweep``, the runner's chunks, the lab's cells and the diagnosis's
verification all vmap an algorithm's method over lanes with ``lane_program``, compile it with
``compile_lanes`` and start from ``lane_keys``. So the same seed gives the same numbers in each of them
by construction, not because several copies of the code agree.

Configs that differ only in numeric leaves are stacked (``stack_configs``) into one config with a
leading lane axis; each lane then rebuilds its algorithm from its own hyperparameters inside the
program, so a whole grid is one compiled program.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxppo import compilation
from jaxppo.algorithm import Algorithm
from jaxppo.config import DQNConfig, PPOConfig
from jaxppo.parallel import evaluation_keys, seed_keys

__all__ = ["make_algorithm", "make_train", "stack_configs", "program_signature", "seed_keys", "lane_keys",
           "lane_configs", "lane_evaluation_keys", "train_to_end", "lane_program", "compile_lanes", "train_stacked"]


def make_algorithm(config: Any, env: Any = None, env_params: Any = None) -> Algorithm:
    """The ``Algorithm`` (pure init / run_updates / evaluate / act) for a ``PPOConfig`` or ``DQNConfig``."""
    if isinstance(config, PPOConfig):
        from jaxppo.ppo.train import make_algorithm as make_ppo

        return make_ppo(config, env, env_params)
    if isinstance(config, DQNConfig):
        from jaxppo.dqn.train import make_algorithm as make_dqn

        return make_dqn(config, env, env_params)
    raise TypeError(f"config must be a PPOConfig or DQNConfig, got {type(config).__name__}.")


def train_to_end(algorithm: Algorithm, key: jax.Array) -> tuple[Any, dict]:
    """One lane's whole run: ``init(key)`` then the config's ``num_updates`` updates."""
    return algorithm.run_updates(algorithm.init(key), algorithm.config.num_updates)


def make_train(config: Any, env: Any = None, env_params: Any = None) -> Callable[[jax.Array], tuple[Any, dict]]:
    """``train(key) -> (final_state, metrics)`` for one seed: pure, so vmap over keys and jit the result.

    ``metrics`` maps names to arrays whose leading axis is the update index
    (``config.num_updates`` of them). ``env`` may be any gymnax-compatible environment object;
    without one the config's ``env`` name is made with gymnax.
    """
    algorithm = make_algorithm(config, env, env_params)
    return lambda key: train_to_end(algorithm, key)


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


def program_signature(config: Any) -> tuple:
    """What fixes a config's compiled program: its static fields, and which optional leaves are None.

    Configs with equal signatures can be stacked and trained by one program."""
    signature = [type(config).__name__]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.metadata.get("pytree_node", True):
            signature.append((field.name, value is None))
        else:
            signature.append((field.name, repr(value)))
    return tuple(signature)


# Lanes ------------------------------------------------------------------------------------------

def lane_keys(seed: int, num_seeds: int, num_settings: int = 1) -> jax.Array:
    """Training keys of ``num_settings x num_seeds`` lanes, ``[lanes, 2]``: lane ``g * num_seeds + s``
    trains from ``seed_keys(seed, num_seeds)[s]``, so every setting sees the same seeds."""
    return jnp.tile(seed_keys(seed, num_seeds), (num_settings, 1))


def lane_configs(configs: Sequence[Any], num_seeds: int) -> Any:
    """``configs`` stacked (``stack_configs``) and each repeated ``num_seeds`` times, laid out like
    ``lane_keys``: lane ``g * num_seeds + s`` trains ``configs[g]``."""
    return jax.tree.map(lambda x: jnp.repeat(x, num_seeds, axis=0), stack_configs(list(configs)))


def lane_evaluation_keys(seed: int, num_seeds: int, update: int, num_settings: int = 1) -> jax.Array:
    """Evaluation keys after ``update`` updates, laid out like ``lane_keys``."""
    return jnp.tile(evaluation_keys(seed, num_seeds, update), (num_settings, 1))


def lane_program(method: Callable[..., Any], algorithm: Optional[Algorithm] = None, stacked: bool = False
                 ) -> Callable[..., Any]:
    """``method(algorithm, *args)`` vmapped over lanes, as ``f(lane_configs, *args)``.

    Plain lanes (``stacked=False``) all run ``algorithm``; ``lane_configs`` is ignored (pass None).
    Stacked lanes get one config each (``stack_configs``, leading lane axis) and rebuild the algorithm
    from it inside the program, on ``algorithm``'s env when one is given, else on each config's env by name.
    """
    if not stacked:
        if algorithm is None:
            raise ValueError("plain lanes need the algorithm they all run.")
        lanes = jax.vmap(lambda *args: method(algorithm, *args))
        return lambda _lane_configs, *args: lanes(*args)
    env, env_params = (None, None) if algorithm is None else (algorithm.env, algorithm.env_params)

    def one_lane(config: Any, *args: Any) -> Any:
        return method(make_algorithm(config, env, env_params), *args)

    return jax.vmap(one_lane)


def compile_lanes(fn: Callable[..., Any], platform: Optional[str] = None, sharding: Any = None,
                  donate_argnums: tuple[int, ...] = ()) -> Callable[..., Any]:
    """``fn`` jitted with jaxppo's compiler options, its outputs sharded over lanes like its inputs."""
    return compilation.jit(fn, platform=platform, out_shardings=sharding, donate_argnums=donate_argnums)


def train_stacked(configs: Sequence[Any], keys: jax.Array) -> tuple[dict[str, np.ndarray], float, float, float]:
    """Compiles (timed apart) and runs one program that trains every config on every key.

    ``configs`` must share one ``program_signature``. Returns metrics ``[configs, seeds, updates]``,
    the compile seconds, and the run's wall and CPU seconds (CPU time of this process, all threads:
    on a machine shared with other work it is the steadier measure).
    """
    num_configs, num_seeds = len(configs), int(keys.shape[0])
    if num_configs == 1:
        program = compile_lanes(lane_program(train_to_end, make_algorithm(configs[0])))
        args: tuple = (None, keys)
    else:
        program = compile_lanes(lane_program(train_to_end, stacked=True))
        args = (lane_configs(configs, num_seeds), jnp.tile(keys, (num_configs, 1)))
    start = time.perf_counter()
    compiled = program.lower(*args).compile()
    compile_s = time.perf_counter() - start
    start, cpu_start = time.perf_counter(), time.process_time()
    _, metrics = jax.block_until_ready(compiled(*args))
    run_s, run_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    metrics = {name: np.asarray(value).reshape((num_configs, num_seeds) + value.shape[1:])
               for name, value in jax.device_get(metrics).items()}
    return metrics, compile_s, run_s, run_cpu_s
