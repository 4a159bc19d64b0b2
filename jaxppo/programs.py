"""Turning configs into compiled, seed-vmapped training programs, and the keys they start from.

The lab's cells and the diagnosis's verification both train several configs on the same seeds: a
list of configs that differ only in numeric leaves is stacked (``jaxppo.stack_configs``) and trained
as one program with a leading config axis, then a seed axis.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Sequence

import jax
import numpy as np

from jaxppo import compilation
from jaxppo.api import make_train, stack_configs
from jaxppo.parallel import seed_keys  # noqa: F401  (re-exported: programs are built from these keys)

__all__ = ["program_signature", "seed_keys", "train_stacked"]


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


def train_stacked(configs: Sequence[Any], keys: jax.Array) -> tuple[dict[str, np.ndarray], float, float, float]:
    """Compiles (timed apart) and runs one program that trains every config on every key.

    ``configs`` must share one ``program_signature``. Returns metrics ``[configs, seeds, updates]``,
    the compile seconds, and the run's wall and CPU seconds (CPU time of this process, all threads:
    on a machine shared with other work it is the steadier measure).
    """
    if len(configs) == 1:
        program = compilation.jit(jax.vmap(make_train(configs[0])))
        args: tuple = (keys,)
    else:
        def train_cells(stacked: Any, keys: jax.Array) -> tuple[Any, dict]:
            return jax.vmap(lambda config: jax.vmap(make_train(config))(keys))(stacked)

        program = compilation.jit(train_cells)
        args = (stack_configs(list(configs)), keys)
    start = time.perf_counter()
    compiled = program.lower(*args).compile()
    compile_s = time.perf_counter() - start
    start, cpu_start = time.perf_counter(), time.process_time()
    _, metrics = jax.block_until_ready(compiled(*args))
    run_s, run_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    metrics = {name: np.asarray(value) for name, value in jax.device_get(metrics).items()}
    if len(configs) == 1:
        metrics = {name: value[None] for name, value in metrics.items()}
    return metrics, compile_s, run_s, run_cpu_s
