"""Replay buffer throughput and compiled memory: jaxppo.dqn.buffer against flashbax's item buffer.

One iteration = add ``add_size`` transitions (one DQN update's worth: num_envs x train_frequency) and
sample a batch of ``batch_size``, the access pattern of ``jaxppo.dqn.train.train_step``. Iterations run
in one ``lax.scan`` under ``jax.vmap`` over seeds, inside ``jax.jit``; the reported time excludes
compilation (median of ``--repeats`` runs). Memory is XLA's own account of the compiled program
(``jax.jit(f).lower(...).compile().memory_analysis()``) next to the formula in ``jaxppo/dqn/buffer.py``.

    python benchmarks/bench_dqn_buffer.py                # writes benchmarks/results/dqn_buffer.json
    python benchmarks/bench_dqn_buffer.py --seeds 1 16 --iterations 100 --out /tmp/b.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from jaxppo import machine  # noqa: E402
from jaxppo.dqn import buffer as replay  # noqa: E402


def example_transition(obs_dim: int) -> replay.Transition:
    return replay.Transition(obs=jnp.zeros((obs_dim,), jnp.float32), action=jnp.zeros((), jnp.int32),
                             reward=jnp.zeros((), jnp.float32), terminated=jnp.zeros((), bool),
                             next_obs=jnp.zeros((obs_dim,), jnp.float32))


def fake_batch(key: jax.Array, add_size: int, obs_dim: int) -> replay.Transition:
    obs = jax.random.normal(key, (add_size, obs_dim))
    return replay.Transition(obs=obs, action=jnp.zeros((add_size,), jnp.int32), reward=obs[:, 0],
                             terminated=obs[:, 1] > 1.0, next_obs=obs + 1.0)


class Jaxppo:
    name = "jaxppo.dqn.buffer"

    def __init__(self, capacity, batch_size, obs_dim):
        self.capacity, self.batch_size, self.obs_dim = capacity, batch_size, obs_dim

    def init(self):
        return replay.init(self.capacity, example_transition(self.obs_dim))

    def add(self, state, batch):
        return replay.add(state, batch)

    def sample(self, state, key):
        return replay.sample(state, key, self.batch_size)


class Flashbax:
    name = "flashbax.make_item_buffer"

    def __init__(self, capacity, batch_size, obs_dim):
        import flashbax

        self.obs_dim = obs_dim
        self.buffer = flashbax.make_item_buffer(max_length=capacity, min_length=1, sample_batch_size=batch_size,
                                                add_sequences=True)

    def init(self):
        return self.buffer.init(example_transition(self.obs_dim))

    def add(self, state, batch):
        return self.buffer.add(state, batch)

    def sample(self, state, key):
        return self.buffer.sample(state, key).experience


def make_program(impl, iterations, add_size, obs_dim):
    def one_seed(key):
        state = impl.init()

        def body(state, key):
            add_key, sample_key = jax.random.split(key)
            state = impl.add(state, fake_batch(add_key, add_size, obs_dim))
            sample = impl.sample(state, sample_key)
            return state, jnp.sum(sample.reward)

        state, sums = jax.lax.scan(body, state, jax.random.split(key, iterations))
        return state, jnp.sum(sums)

    return jax.jit(jax.vmap(one_seed))


def bench(impl_cls, seeds, capacity, batch_size, add_size, obs_dim, iterations, repeats):
    impl = impl_cls(capacity, batch_size, obs_dim)
    program = make_program(impl, iterations, add_size, obs_dim)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    compiled = program.lower(keys).compile()
    memory = compiled.memory_analysis()
    jax.block_until_ready(compiled(keys))  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys))
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    shapes = jax.eval_shape(jax.vmap(lambda _: impl.init()), jnp.arange(seeds))
    state_bytes = sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(shapes))
    return {
        "buffer": impl_cls.name,
        "seeds": seeds,
        "median_seconds": seconds,
        "iterations_per_second_all_seeds": seeds * iterations / seconds,
        "transitions_added_per_second": seeds * iterations * add_size / seconds,
        "state_bytes": int(state_bytes),
        "formula_bytes": seeds * capacity * replay.transition_bytes(example_transition(obs_dim)) + seeds * 8,
        "compiled_output_bytes": int(memory.output_size_in_bytes) if memory else None,
        "compiled_temp_bytes": int(memory.temp_size_in_bytes) if memory else None,
        "compiled_argument_bytes": int(memory.argument_size_in_bytes) if memory else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 16, 128])
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--add-size", type=int, default=40)
    parser.add_argument("--obs-dim", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                      "dqn_buffer.json"))
    args = parser.parse_args()
    results = []
    for seeds in args.seeds:
        for impl in (Jaxppo, Flashbax):
            row = bench(impl, seeds, args.capacity, args.batch_size, args.add_size, args.obs_dim,
                        args.iterations, args.repeats)
            print(json.dumps(row), flush=True)
            results.append(row)
    from importlib import metadata

    report = {
        "settings": vars(args),
        "machine": {
            **machine.describe(),
            "load_average_at_end": os.getloadavg(),
            "flashbax": metadata.version("flashbax"),
            "note": "CPU shared with other jobs; compare rows of one run, not across runs.",
        },
        "results": results,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
