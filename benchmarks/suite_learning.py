"""Learning on the env suites' tasks: PPO at a CPU-sized budget, seeds as one program, JSON as it goes.

    python benchmarks/suite_learning.py --seeds 8 --output benchmarks/results/suite_learning_cpu.json

Per task: the final return per seed (``jaxppo.diagnosis.core.final_returns``), its IQM with a 95%
bootstrap interval, the return of the first episodes that ended (the untrained policy's level,
measured in the same run), compile and run seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402

import jaxppo  # noqa: E402
from jaxppo import programs  # noqa: E402
from jaxppo.diagnosis.core import final_returns  # noqa: E402
from jaxppo.run_io import atomic_write_json  # noqa: E402
from jaxppo.stats import summarize_seeds  # noqa: E402

TASKS = {  # name -> (config, overrides)
    "jumanji/Snake-v1": ("ppo_jumanji_snake", []),  # the legal-action mask applied (the default)
    "jumanji/Snake-v1 action_mask=false": ("ppo_jumanji_snake", ["action_mask=false"]),
    "brax/inverted_pendulum": ("ppo_brax_inverted_pendulum", []),
    "playground/CartpoleBalance": ("ppo_playground_cartpole_balance", []),
    "navix/Navix-Empty-8x8-v0": ("ppo_navix_empty", []),
    "xminigrid/MiniGrid-Empty-8x8": ("ppo_xminigrid_empty", []),
    "craftax/Craftax-Classic-Symbolic-v1": ("ppo_craftax_classic", []),
    "navix/Navix-DoorKey-5x5-v0 torso=conv": ("ppo_navix_doorkey_conv", []),
    "navix/Navix-DoorKey-5x5-v0 torso=mlp": ("ppo_navix_doorkey_conv", ["torso=mlp"]),
}


def first_finished_returns(metrics: dict, count: int) -> np.ndarray:
    """Per seed, the returns of the first ``count`` updates in which an episode ended: the untrained
    policy's level (an update where none ended reports no return; a 1000-step episode spans the first
    tens of updates, so its first return is already partly trained)."""
    returns, ended = np.asarray(metrics["episode_return"]), np.asarray(metrics["episodes_completed"]) > 0
    return np.concatenate([returns[seed][ended[seed]][:count] for seed in range(returns.shape[0])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    out: dict[str, Any] = {"benchmark": "suite_learning", "machine": common.machine_info(),
                           "command": " ".join(["python"] + sys.argv), "seeds": args.seeds, "runs": []}
    keys = programs.seed_keys(args.seed, args.seeds)
    for task in args.tasks:
        name, overrides = TASKS[task]
        config = jaxppo.apply_overrides(jaxppo.load_config(name), overrides + args.overrides)
        metrics, compile_s, run_s, _ = programs.train_stacked([config], keys)
        metrics = {k: v[0] for k, v in metrics.items()}
        finals = final_returns(metrics)
        first = first_finished_returns(metrics, 1)
        row = {"task": task, "config": name, "overrides": overrides + args.overrides, "env_steps": config.total_timesteps,
               "final_return": summarize_seeds(finals), "per_seed": [float(x) for x in finals],
               "untrained_return": float(np.median(first)), "compile_s": compile_s, "run_s": run_s,
               "env_steps_per_s": args.seeds * config.total_timesteps / run_s}
        out["runs"].append(row)
        atomic_write_json(args.output, out)
        print(f"{task:<24} untrained {row['untrained_return']:.3g}  final IQM {row['final_return']['iqm']:.3g} "
              f"{row['final_return']['iqm_ci']} ({run_s:.0f} s run)", flush=True)


if __name__ == "__main__":
    main()
