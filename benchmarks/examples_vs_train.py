"""The examples written from the building blocks against jaxppo.train, at full size, on the same seeds.

    python benchmarks/examples_vs_train.py --seeds 4 --output benchmarks/results/examples_vs_train_cpu.json

PPO: examples/ppo_cartpole.py against configs/ppo_cartpole_purejaxrl.yaml (the same hyperparameters:
PureJaxRL's, no normalisation, absolute value clipping); DQN: examples/dqn_cartpole.py against
configs/dqn_cartpole_cleanrl.yaml (CleanRL's). Final return per seed: the mean over the last 10% of
updates that finished an episode. JSON rewritten after each run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from typing import Any

import jax
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import common  # noqa: E402

import jaxppo  # noqa: E402
from jaxppo import programs  # noqa: E402
from jaxppo.diagnosis.core import final_returns  # noqa: E402
from jaxppo.run_io import atomic_write_json  # noqa: E402
from jaxppo.stats import summarize_seeds  # noqa: E402

PAIRS = {"ppo": ("ppo_cartpole", "ppo_cartpole_purejaxrl"), "dqn": ("dqn_cartpole", "dqn_cartpole_cleanrl")}


def _example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    out: dict[str, Any] = {"benchmark": "examples_vs_train", "machine": common.machine_info(),
                           "command": " ".join(["python"] + sys.argv), "seeds": args.seeds, "runs": []}
    keys = programs.seed_keys(0, args.seeds)
    for algorithm, (example, config_name) in PAIRS.items():
        start = time.perf_counter()
        returns = np.asarray(jax.block_until_ready(jax.jit(jax.vmap(_example(example).make_train(
            args.total_timesteps)))(keys)))
        example_s = time.perf_counter() - start
        config = jaxppo.apply_overrides(jaxppo.load_config(config_name), [f"total_timesteps={args.total_timesteps}"])
        metrics, compile_s, run_s, _ = programs.train_stacked([config], keys)
        rows = {"example": final_returns({"episode_return": returns}),
                "jaxppo.train": final_returns({k: v[0] for k, v in metrics.items()})}
        for who, finals in rows.items():
            out["runs"].append({"algorithm": algorithm, "who": who, "config": config_name,
                                "env_steps": args.total_timesteps, "per_seed": [float(x) for x in finals],
                                "final_return": summarize_seeds(finals),
                                "wall_s": example_s if who == "example" else compile_s + run_s})
            atomic_write_json(args.output, out)
            print(f"{algorithm} {who:<13} IQM {out['runs'][-1]['final_return']['iqm']:.1f} per seed "
                  f"{np.round(finals, 1).tolist()}", flush=True)


if __name__ == "__main__":
    main()
