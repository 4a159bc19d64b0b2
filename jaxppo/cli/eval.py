"""``jaxppo eval``: greedy evaluation of a run's latest checkpoint."""

from __future__ import annotations

import argparse
from typing import Any

from jaxppo.cli.common import UsageError


def add_parser(commands: Any) -> None:
    evaluate = commands.add_parser(
        "eval", help="greedy evaluation of a run's latest checkpoint",
        description="Load RUN_DIR's latest checkpoint and run the deterministic policy of every seed\n"
                    "for --episodes episodes on fresh environments. The results are saved in\n"
                    "RUN_DIR/eval_<update>.json (eval_<update>_seed<S>.json with --seed S).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--episodes", type=int, default=None, metavar="N",
                          help="episodes per seed (default: the config's run.eval_episodes)")
    evaluate.add_argument("--seed", type=int, default=0, metavar="S", help="evaluation seed (default: 0)")
    evaluate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from jaxppo import runner
    from jaxppo.run_dir import read_run
    from jaxppo.run_summary import lane_labels, sweep_groups

    if args.episodes is not None and args.episodes <= 0:
        raise UsageError(f"--episodes {args.episodes} must be a positive integer")
    runner.check_seed(args.seed, "--seed")
    result = runner.evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed)
    returns = np.asarray(result["eval_return"], np.float64)  # [S, E]
    per_seed = returns.mean(axis=1)
    print(f"greedy evaluation of {args.run_dir} at update {result['update']}: "
          f"{returns.shape[1]} episodes x {returns.shape[0]} seeds")
    _, run_info = read_run(args.run_dir)
    labels = lane_labels(run_info)
    for index, value in enumerate(per_seed):
        label = f" ({labels[index]})" if labels else ""
        print(f"  seed {index}{label}: mean return {value:.4g}  (min {returns[index].min():.4g}, "
              f"max {returns[index].max():.4g})")
    groups = sweep_groups(run_info) or [("over seeds", list(range(len(per_seed))))]
    for label, lanes in groups:  # a sweep's settings are not seeds of one another: one line each
        values = per_seed[lanes]
        print(f"  {label}: mean {values.mean():.4g}  median {np.median(values):.4g}  "
              f"min {values.min():.4g}  max {values.max():.4g}")
    held_out = {name: np.asarray(values) for name, values in result.items()
                if name not in ("update", "eval_return", "eval_length")}
    if held_out:  # an env's own held-out scores, one per seed (IntrusionDetection-v0: counts and F1)
        print("  held-out split: " + "  ".join(
            f"{name.removeprefix('eval_')} {np.median(values):.4g}" for name, values in held_out.items())
            + "  (median over seeds)")
    print(f"wrote {runner.save_evaluation(args.run_dir, result, seed=args.seed)}")
    return 0


