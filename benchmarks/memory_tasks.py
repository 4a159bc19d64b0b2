"""Memory tasks: recurrent PPO and DQN against the feed-forward policy with the same config and budget.

    python benchmarks/memory_tasks.py --seeds 16 --output benchmarks/results/memory_tasks_cpu.json
    python benchmarks/memory_tasks.py --tasks dqn/MemoryChain-bsuite --seeds 16 --output ...

For each task (a shipped recurrent config and its env steps) both policies train the same seeds
(``split(PRNGKey(seed), seeds)``) as one program each; the JSON records every seed's final return
(``jaxppo.diagnosis.core.final_returns``), the IQM with its bootstrap interval, the share of seeds at
or above the env's solved level, compile and run seconds, and is rewritten after every program.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402

import jaxppo  # noqa: E402
from jaxppo import programs  # noqa: E402
from jaxppo.diagnosis.core import diagnose, env_facts, final_returns  # noqa: E402
from jaxppo.run_io import atomic_write_json  # noqa: E402
from jaxppo.stats import summarize_seeds  # noqa: E402

TASKS = {  # algorithm/env: config, env steps per seed for this CPU
    "ppo/MemoryChain-bsuite": ("ppo_memorychain_gru", 51_200),
    "ppo/CartPole-NoVelocity-v1": ("ppo_cartpole_novelocity_gru", 102_400),
    "dqn/MemoryChain-bsuite": ("dqn_memorychain_gru", 100_000),
    "dqn/CartPole-NoVelocity-v1": ("dqn_cartpole_novelocity_gru", 100_000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--output", required=True)
    parser.add_argument("--full-length", action="store_true",
                        help="train each config's own total_timesteps instead of the CPU budget in TASKS")
    parser.add_argument("--memory", nargs="*", default=["gru", "none"], choices=["gru", "none"])
    args = parser.parse_args()
    out: dict[str, Any] = {"benchmark": "memory_tasks", "machine": common.machine_info(),
                           "command": " ".join(["python"] + sys.argv), "seeds": args.seeds, "runs": []}
    keys = programs.seed_keys(args.seed, args.seeds)
    for task in args.tasks:
        name, steps = TASKS[task]
        for memory in args.memory:
            budget = [] if args.full_length else [f"total_timesteps={steps}"]
            config = jaxppo.apply_overrides(jaxppo.load_config(name), budget + [f"memory={memory}"])
            metrics, compile_s, run_s, _ = programs.train_stacked([config], keys)
            metrics = {k: v[0] for k, v in metrics.items()}
            finals = final_returns(metrics)
            solved = env_facts(config).solved_return
            diagnosis = diagnose(metrics, config)
            row = {"task": task.split("/", 1)[1], "algorithm": config.algorithm, "config": name, "memory": memory, "env_steps": config.total_timesteps,
                   "final_return": summarize_seeds(finals), "per_seed": [float(x) for x in finals],
                   "solved_return": solved, "solved_seeds": int(sum(x >= solved for x in finals)),
                   "healthy_seeds": int(diagnosis.num_healthy),
                   "counts": {k: v for k, v in diagnosis.counts.items() if v},
                   "compile_s": compile_s, "run_s": run_s,
                   "env_steps_per_s": args.seeds * config.total_timesteps / run_s}
            out["runs"].append(row)
            atomic_write_json(args.output, out)
            print(f"{task:<24} {memory:<5} IQM {row['final_return']['iqm']:.3g} "
                  f"{row['final_return']['iqm_ci']} solved {row['solved_seeds']}/{args.seeds} "
                  f"({run_s:.0f} s run, {compile_s:.0f} s compile)", flush=True)


if __name__ == "__main__":
    main()
