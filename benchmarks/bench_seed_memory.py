"""Memory of ``jaxppo train --seeds N`` at thousands of seeds: measured peak RSS against the formula.

For each N the real command runs in a child process (``python -m jaxppo.cli train CONFIG --seeds N``,
a short config: default sizes, 1 update) that reports its own peak resident set size
(``getrusage(RUSAGE_SELF).ru_maxrss``). Next to it, computed without running anything:

* the formula's terms per seed (docs/scaling.md, "Memory"): parameters, Adam moments, the rest of the
  training state (environment states, observations, statistics, keys), one rollout, the flattened
  batch, one chunk of metrics on the device and the run's metrics on the host;
* XLA's memory analysis of the compiled chunk program (argument, output, temp, alias bytes).

    python benchmarks/bench_seed_memory.py                       # 256 1024 4096 seeds
    python benchmarks/bench_seed_memory.py --seeds 1 256 --out /tmp/m.json
    python benchmarks/bench_seed_memory.py --set memory=gru --seeds 1024 \
        --out benchmarks/results/seed_memory_gru_cpu.json       # recurrent PPO (GRU of 128)

With ``memory: gru`` the rollout stores no hidden state per step: the update replays each env's
sequence from the memory it started the rollout with (``[num_envs, memory_size]`` per network), so
the recurrent terms are the two start memories and the per-step reset flags.

Writes benchmarks/results/seed_memory_cpu.json after every N, so an interrupted run keeps its numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.common import RESULTS_DIR, machine_info, versions, write_json_atomic  # noqa: E402
from jaxppo import apply_overrides, load_config, make_algorithm  # noqa: E402
from jaxppo.config import config_to_dict, configs_dir  # noqa: E402
from jaxppo.parallel import tree_bytes  # noqa: E402
from jaxppo.ppo import train as ppo_train  # noqa: E402
from jaxppo.runner import ChunkRunner, seed_keys  # noqa: E402

# Default PPO CartPole sizes (4 envs x 128 steps, 4 epochs x 4 minibatches, 64x64), 1 update.
SHORT = ["total_timesteps=512", "run.eval_interval=0"]

_CHILD = r"""
import resource, runpy, sys
sys.argv = ["jaxppo"] + sys.argv[1:]
try:
    runpy.run_module("jaxppo.cli", run_name="__main__")
except SystemExit as stop:
    code = stop.code
else:
    code = 0
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def formula_terms(config, num_seeds: int) -> dict:
    """Bytes per seed of each term of the memory formula, from shapes only (jax.eval_shape)."""
    algorithm = make_algorithm(config)
    keys = seed_keys(0, 1)
    state = jax.eval_shape(jax.vmap(algorithm.init), keys)
    ctx = ppo_train.make_context(config)
    one = jax.eval_shape(lambda key: ppo_train.init_state(ctx, key), keys[0])
    def one_step(state, key):
        noise = jax.tree.map(lambda x: x[0], ppo_train.draw_rollout_noise(ctx, key))  # one step's slice
        return ppo_train.rollout_step(ctx, state, noise)

    _, transition = jax.eval_shape(one_step, one, keys[0])
    runner = ChunkRunner(algorithm)
    specs = runner.metric_specs(state)
    metric_bytes = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in specs.values())
    params = tree_bytes(state.params)
    optimiser = tree_bytes(state.opt_state)
    rollout = config.num_steps * tree_bytes(transition)
    return {
        "params": params,
        "optimiser": optimiser,
        "other_state": tree_bytes(state) - params - optimiser,  # env states, obs, statistics, keys
        "state": tree_bytes(state),
        "rollout": rollout,
        "metrics_per_update": metric_bytes,
        "metrics_host_run": metric_bytes * config.num_updates,
        "num_metrics": len(specs),
    }


def xla_analysis(config, num_seeds: int) -> dict:
    """XLA's memory analysis of the chunk program for ``num_seeds`` seeds (compiled, not run)."""
    runner = ChunkRunner(make_algorithm(config))
    keys = seed_keys(0, num_seeds)
    runner._ensure_layout(num_seeds)
    abstract = runner.abstract_state(keys)
    chunk = min(config.run.updates_per_chunk, config.num_updates)
    compiled = runner._chunk_program(chunk).lower(None, abstract).compile()
    analysis = compiled.memory_analysis()
    out = {name: int(getattr(analysis, f"{name}_size_in_bytes")) for name in ("argument", "output", "temp", "alias")}
    out["peak_estimate"] = out["argument"] + out["output"] + out["temp"] - out["alias"]
    return out


def measure_rss(config_path: str, num_seeds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        completed = subprocess.run(
            [sys.executable, "-c", _CHILD, "train", config_path, "--seeds", str(num_seeds), "--out",
             os.path.join(tmp, "run"), "--no-progress"], capture_output=True, text=True, env=env)
        if completed.returncode != 0:
            raise RuntimeError(completed.stderr[-2000:])
        peak_kb = int(completed.stderr.split("PEAK_RSS_KB")[-1].split()[0])
        with open(os.path.join(tmp, "run", "summary.json")) as handle:
            wall = json.load(handle)["wall_time_s"]
    return {"peak_rss_bytes": peak_kb * 1024, "wall_time_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--out", default=os.path.join(RESULTS_DIR, "seed_memory_cpu.json"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config overrides, e.g. memory=gru")
    args = parser.parse_args()
    config = apply_overrides(load_config(os.path.join(configs_dir(), "ppo_cartpole.yaml")), SHORT + args.overrides)
    result = {"benchmark": "seed_memory", "config": config_to_dict(config), "overrides": SHORT + args.overrides,
              "machine": machine_info(), "versions": versions(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        import yaml

        config_path = os.path.join(tmp, "short.yaml")
        with open(config_path, "w") as handle:
            yaml.safe_dump(config_to_dict(config), handle)
        terms = formula_terms(config, 1)
        result["formula_bytes_per_seed"] = terms
        for num_seeds in args.seeds:
            entry = {"num_seeds": num_seeds, "xla": xla_analysis(config, num_seeds)}
            entry.update(measure_rss(config_path, num_seeds))
            result["runs"].append(entry)
            write_json_atomic(args.out, result)
            print(json.dumps(entry), flush=True)


if __name__ == "__main__":
    main()
