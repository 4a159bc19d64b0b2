"""The ``jaxppo`` command line: ``train``, ``eval`` and ``plot``.

Bad input (an unknown config key, a missing file, an unknown environment, inconsistent sizes) ends
with exit status 2 and one line ``jaxppo: error: ...`` on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from typing import Any, Optional, Sequence

from jaxppo.run_io import RunInputError

__all__ = ["main", "build_parser", "resolve_config"]

DEFAULT_CONFIG = "ppo_cartpole.yaml"


_DESCRIPTION = """\
Train PPO / DQN as compiled, seed-vmapped JAX programs, then evaluate and plot the runs.

  jaxppo train                              default config (PPO on CartPole-v1), 4 seeds
  jaxppo train configs/ppo_cartpole.yaml --seeds 8 --set learning_rate=1e-3
  jaxppo train --resume runs/NAME           continue an interrupted run from its last checkpoint
  jaxppo eval runs/NAME --episodes 32       greedy evaluation of the saved policy
  jaxppo plot runs/NAME                     redraw learning_curve.png and diagnostics.png
"""

_TRAIN_EPILOG = """\
CONFIG is a YAML file, or the name of a config in ./configs/ or among the bundled ones
(ppo_cartpole, ppo_pendulum, dqn_cartpole, ...); without one, the bundled
ppo_cartpole is used. --set takes any config field, e.g.
  --set num_envs=8 --set hidden_sizes=[32,32] --set run.eval_interval=50
Without --out the run goes to runs/<config-name>-<UTC timestamp>. See docs/runs.md
for the run directory layout and resume semantics.
"""


class _UsageError(Exception):
    """Bad input: reported as one line and exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxppo", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    from jaxppo import __version__

    parser.add_argument("--version", action="version", version=f"jaxppo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser(
        "train", help="train several seeds of a config into a run directory",
        description="Train --seeds independent seeds of CONFIG at once, in compiled chunks, writing\n"
                    "metrics, evaluations, checkpoints and plots into a run directory.",
        epilog=_TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("config", nargs="?", metavar="CONFIG", help="YAML config file or bundled config name "
                       f"(default: {DEFAULT_CONFIG})")
    train.add_argument("--seeds", type=int, default=None, metavar="N",
                       help="number of seeds trained side by side (default: 4)")
    train.add_argument("--seed", type=int, default=None, metavar="S",
                       help="base seed; seed i uses split(PRNGKey(S), N)[i] (default: 0)")
    train.add_argument("--out", metavar="DIR", help="run directory (default: runs/<config-name>-<timestamp>)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field (repeatable), e.g. --set learning_rate=1e-3")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its latest checkpoint")
    train.add_argument("--no-progress", action="store_true",
                       help="no progress bar; print one line per chunk instead")
    train.add_argument("--tensorboard", action="store_true",
                       help="also log to DIR/tensorboard (needs jaxppo[tensorboard])")
    train.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs jaxppo[wandb])")
    train.add_argument("--wandb-project", default="jaxppo", metavar="NAME", help="W&B project (default: jaxppo)")

    evaluate = commands.add_parser(
        "eval", help="greedy evaluation of a run's latest checkpoint",
        description="Load RUN_DIR's latest checkpoint and run the deterministic policy of every seed\n"
                    "for --episodes episodes on fresh environments.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--episodes", type=int, default=None, metavar="N",
                          help="episodes per seed (default: the config's run.eval_episodes)")
    evaluate.add_argument("--seed", type=int, default=0, metavar="S", help="evaluation seed (default: 0)")

    plot = commands.add_parser("plot", help="redraw a run's PNG plots",
                               description="Redraw learning_curve.png and diagnostics.png of RUN_DIR from "
                                           "its metric files.")
    plot.add_argument("run_dir", metavar="RUN_DIR")
    plot.add_argument("--dpi", type=int, default=100, help="resolution (default: 100)")
    return parser


def resolve_config(name: Optional[str]) -> tuple[Any, str]:
    """``(config, config_name)`` for a CONFIG argument; see the ``train --help`` epilog for the search order."""
    from jaxppo.config import configs_dir, load_config

    if name is None:
        return load_config(os.path.join(configs_dir(), DEFAULT_CONFIG)), DEFAULT_CONFIG[: -len(".yaml")]
    candidates = [name]
    if not os.path.exists(name):
        for folder in (os.path.join(os.getcwd(), "configs"), configs_dir()):
            candidates += [os.path.join(folder, name), os.path.join(folder, name + ".yaml")]
    for path in candidates:
        if os.path.isfile(path):
            return load_config(path), os.path.splitext(os.path.basename(path))[0]
    if os.path.isdir(name):
        raise ValueError(f"config {name!r} is a directory, not a YAML file (to continue a run use --resume {name}).")
    # Lets load_config name the nearest bundled config in its message.
    return load_config(name), os.path.splitext(os.path.basename(name))[0]


def _loggers(args: argparse.Namespace, run_dir: str, config: Any) -> list:
    from jaxppo.config import config_to_dict
    from jaxppo.loggers import TensorBoardLogger, WandbLogger

    loggers = []
    if args.tensorboard:
        loggers.append(TensorBoardLogger(run_dir))
    if args.wandb:
        loggers.append(WandbLogger(run_dir, config_to_dict(config), project=args.wandb_project))
    return loggers


def _print_summary(summary: dict) -> None:
    final = summary["final_return"]
    lines = [
        "",
        f"{summary['algorithm'].upper()} on {summary['env']}: {summary['num_seeds']} seeds, "
        f"{summary['updates']} updates{'' if summary['complete'] else ' (incomplete)'}",
        f"  final training return  mean {final['mean']:.1f}  median {final['median']:.1f}  "
        f"min {final['min']:.1f}  max {final['max']:.1f}",
    ]
    if summary.get("final_eval_return"):
        ev = summary["final_eval_return"]
        lines.append(f"  greedy eval return     mean {ev['mean']:.1f}  median {ev['median']:.1f}  "
                     f"min {ev['min']:.1f}  max {ev['max']:.1f}")
    lines += [
        f"  env steps              {summary['env_steps_per_seed']:,} per seed, {summary['env_steps_total']:,} in all",
        f"  wall time              {summary['wall_time_s']:.1f} s ({summary['steps_per_second']:,.0f} steps/s, "
        "compilation included)",
        f"  files                  {summary['run_dir']}",
        "                         summary.json metrics.jsonl eval.jsonl learning_curve.png diagnostics.png checkpoints/",
    ]
    print("\n".join(lines), flush=True)


def _train(args: argparse.Namespace) -> int:
    from jaxppo import runner
    from jaxppo.config import apply_overrides

    progress = not args.no_progress
    if args.resume:
        if args.config or args.overrides or args.seeds is not None or args.seed is not None or args.out:
            raise _UsageError("--resume takes config, seeds and directory from the run; drop CONFIG, --set, "
                              "--seeds, --seed and --out")
        config, _ = runner._read_run(args.resume)
        loggers = _loggers(args, args.resume, config)
        print(f"resuming {args.resume}", flush=True)
        result = runner.resume_run(args.resume, progress=progress, loggers=loggers)
    else:
        try:
            config, config_name = resolve_config(args.config)
            if args.overrides:
                config = apply_overrides(config, list(args.overrides))
        except ValueError as error:  # config problems are the user's input, reported in one line
            raise _UsageError(str(error)) from None
        num_seeds = runner.DEFAULT_NUM_SEEDS if args.seeds is None else args.seeds
        if num_seeds <= 0:
            raise _UsageError(f"--seeds {num_seeds} must be a positive integer")
        out = args.out or os.path.join(
            "runs", f"{config_name}-{datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')}")
        if os.path.isdir(out) and (os.path.exists(os.path.join(out, runner.CONFIG_FILE))
                                   or os.path.isdir(os.path.join(out, runner.CHECKPOINT_DIR))):
            raise _UsageError(f"{out!r} already holds a run; continue it with --resume {out} or choose another --out")
        print(f"training {config.algorithm.upper()} on {config.env}: {num_seeds} seeds x {config.num_updates} "
              f"updates ({config.num_updates * config.steps_per_update:,} env steps per seed) -> {out}", flush=True)
        created = not os.path.exists(out)
        os.makedirs(out, exist_ok=True)
        try:
            loggers = _loggers(args, out, config)
        except RunInputError:
            if created and not os.listdir(out):
                os.rmdir(out)
            raise
        result = runner.train_run(config, out, num_seeds=num_seeds, seed=args.seed or 0, progress=progress,
                                  loggers=loggers, config_name=config_name)
    _print_summary(result.summary)
    return 0


def _eval(args: argparse.Namespace) -> int:
    import numpy as np

    from jaxppo import runner

    if args.episodes is not None and args.episodes <= 0:
        raise _UsageError(f"--episodes {args.episodes} must be a positive integer")
    result = runner.evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed)
    returns = np.asarray(result["eval_return"], np.float64)  # [S, E]
    per_seed = returns.mean(axis=1)
    print(f"greedy evaluation of {args.run_dir} at update {result['update']}: "
          f"{returns.shape[1]} episodes x {returns.shape[0]} seeds")
    for index, value in enumerate(per_seed):
        print(f"  seed {index}: mean return {value:.1f}  (min {returns[index].min():.1f}, max {returns[index].max():.1f})")
    print(f"  over seeds: mean {per_seed.mean():.1f}  median {np.median(per_seed):.1f}  "
          f"min {per_seed.min():.1f}  max {per_seed.max():.1f}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from jaxppo import runner

    for path in runner.render_plots(args.run_dir, dpi=args.dpi):
        print(f"wrote {path}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``jaxppo`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        handler = {"train": _train, "eval": _eval, "plot": _plot}[args.command]
        return handler(args)
    except (_UsageError, RunInputError) as error:
        message = " ".join(str(error).split())  # one line, whatever the original formatting
        print(f"jaxppo: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxppo: interrupted; continue with 'jaxppo train --resume DIR' from the last checkpoint.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
