"""Reproduce each debugging report's failure and its fix across many seeds, and write the statistics.

Each debugging report (000-004, retold in docs/stability.md) is one person's single run. Here the failing config and the fixed
config each train ``--seeds`` seeds in one compiled program, and the JSON records, over seeds, what
the reports' authors read: the first and last value (or TD) loss, explained variance, value-clip
fraction, gradient norm and clip ratio, Q range, and the final return. It also records the fraction
of seeds that "succeed" by the env's threshold.

    python benchmarks/reports.py --seeds 64            # all CPU pairs, about 15-20 min on 2 cores
    python benchmarks/reports.py --seeds 1000 --only 004   # on a GPU: 1000 seeds of one report
    python benchmarks/reports.py --heavy --only 002-breakout --seeds 16   # report 002 as reported (GPU)
    python benchmarks/reports.py --only 002-cartpole-q \
        --out benchmarks/results/reports_002_cartpole_q_cpu.json           # ~10 min on 2 cores

Report 002 was a MinAtar-style DQN (conv Q-network, 100k-transition buffer); that pair
(``dqn_report002_unclipped`` vs ``dqn_minatar_breakout``) needs about 5 GiB of buffers per 16 seeds and
hours on a CPU, so it only runs with ``--heavy``. The CPU pair asks the report's own question on
CartPole: the default DQN config with global-norm gradient clipping at 10 (fix) and without (failure),
everything else equal. The ``002-cartpole-q`` trio reproduces exploding Q-values on purpose: Huber loss
(delta 1) with clipping at 10, the same without clipping, and with the TD target clipped at 100.
DQN pairs use ``--dqn-seeds`` (default 16) because a DQN seed costs about as
much CPU time as ten PPO seeds here.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import jaxppo  # noqa: E402
from jaxppo import programs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (report, role, config file, overrides, success threshold on the final mean episode return, heavy)
PAIRS = [
    ("000", "failure", "ppo_report000_absolute_clip", {}, -400.0, False),
    ("000", "fix", "ppo_report000_relative_clip", {}, -400.0, False),
    ("003", "failure", "ppo_report003_batch_return_norm", {}, -400.0, False),
    ("003/004", "fix", "ppo_report004_running_return_norm", {}, -400.0, False),
    ("004", "failure", "ppo_report004_raw_returns", {}, -400.0, False),
    ("001", "fixes", "ppo_report001_fixes", {}, -400.0, False),
    ("002-cartpole", "failure", "dqn_cartpole_cleanrl", {"max_grad_norm": None}, 400.0, False),
    ("002-cartpole", "fix", "dqn_cartpole_cleanrl", {}, 400.0, False),
    # Q-values exploding on CartPole: Huber(1) diverges with gradient clipping on or off; clipping the TD
    # target at CartPole's largest true value (sum of gamma^t = 100) is what bounds it.
    ("002-cartpole-q", "failure", "dqn_cartpole_cleanrl", {"loss": "huber"}, 400.0, False),
    ("002-cartpole-q", "failure-unclipped", "dqn_cartpole_cleanrl", {"loss": "huber", "max_grad_norm": None}, 400.0, False),
    ("002-cartpole-q", "fix", "dqn_cartpole_cleanrl", {"loss": "huber", "td_target_clip": 100.0}, 400.0, False),
    ("002-breakout", "failure", "dqn_report002_unclipped", {}, 5.0, True),
    ("002-breakout", "fix", "dqn_minatar_breakout", {}, 5.0, True),
]

_READ = ["value_loss", "td_loss", "explained_variance", "value_clip_fraction", "grad_norm", "grad_clip_ratio",
         "approx_kl", "q_max", "q_min", "greedy_agreement", "nonfinite_updates"]


def run_pair_member(config_name: str, overrides: dict[str, Any], num_seeds: int, threshold: float,
                    total_timesteps: int | None) -> dict[str, Any]:
    config = jaxppo.load_config(os.path.join(ROOT, "configs", config_name + ".yaml"))
    if overrides:
        config = config.replace(**overrides)
    if total_timesteps is not None:
        config = config.replace(total_timesteps=total_timesteps)
    metrics, compile_s, run_s, _ = programs.train_stacked([config], common.seed_keys(num_seeds))
    metrics = {name: value[0] for name, value in metrics.items()}
    returns = np.asarray(metrics["episode_return"])
    window = max(1, returns.shape[1] // 20)
    final = returns[:, -window:].mean(axis=1)
    record: dict[str, Any] = {
        "config": config_name,
        "overrides": {k: v for k, v in overrides.items()},
        "algorithm": config.algorithm,
        "env": config.env,
        "total_timesteps": config.total_timesteps,
        "num_seeds": num_seeds,
        "compile_s": compile_s,
        "run_s": run_s,
        "final_return_window_updates": window,
        "final_return": common.summarize(final),
        "success_threshold": threshold,
        "success_fraction": float(np.mean(final >= threshold)),
    }
    for name in _READ:
        if name not in metrics:
            continue
        values = np.asarray(metrics[name], np.float64)
        finite = np.isfinite(values).all(axis=1)
        record[name] = {
            "first_median": float(np.nanmedian(values[:, 0])),
            "last_median": float(np.nanmedian(values[:, -1])),
            "max_over_run_median": float(np.nanmedian(np.nanmax(values, axis=1))),
            "seeds_all_finite": float(np.mean(finite)),
        }
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=64, help="seeds per PPO config")
    parser.add_argument("--dqn-seeds", type=int, default=16, help="seeds per DQN config")
    parser.add_argument("--heavy", action="store_true", help="also run the MinAtar report-002 pair")
    parser.add_argument("--only", default=None, help="run only pairs whose report id contains this")
    parser.add_argument("--total-timesteps", type=int, default=None, help="override every config's budget")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "reports_cpu.json"))
    args = parser.parse_args()

    rows, records = [], []
    for report, role, config_name, overrides, threshold, heavy in PAIRS:
        if args.only and args.only not in report:
            continue
        if heavy and not args.heavy:
            continue
        if not os.path.exists(os.path.join(ROOT, "configs", config_name + ".yaml")):
            print(f"skip {config_name}: config missing", flush=True)
            continue
        num_seeds = args.dqn_seeds if config_name.startswith("dqn") else args.seeds
        record = run_pair_member(config_name, overrides, num_seeds, threshold, args.total_timesteps)
        record.update(report=report, role=role)
        records.append(record)
        loss_name = "value_loss" if "value_loss" in record else "td_loss"
        label = config_name + "".join(f" {k}={v}" for k, v in overrides.items())
        rows.append([report, role, label, record["final_return"]["median"], record["success_fraction"],
                     record[loss_name]["first_median"], record[loss_name]["last_median"],
                     record.get("explained_variance", {}).get("last_median"), record["run_s"]])
        print(common.format_table(["report", "role", "config", "final ret (median)", "success", "loss first",
                                   "loss last", "EV last", "run s"], rows[-1:]), flush=True)
    result = {"machine": common.machine_info(), "num_seeds": args.seeds, "num_dqn_seeds": args.dqn_seeds,
              "results": records}
    common.write_json_atomic(args.out, result)
    print(common.format_table(["report", "role", "config", "final ret (median)", "success", "loss first",
                               "loss last", "EV last", "run s"], rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
