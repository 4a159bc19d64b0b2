"""``jaxppo train``: train several seeds of a config into a run directory (or resume one)."""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
from typing import Any

from jaxppo.cli.common import DEFAULT_CONFIG, UsageError, resolve_config

_TRAIN_EPILOG = """\
CONFIG is a YAML file, or the name of a config in ./configs/ or among the bundled ones
(ppo_cartpole, ppo_pendulum, dqn_cartpole, ...); without one, the bundled
ppo_cartpole is used. --set takes any config field, e.g.
  --set num_envs=8 --set hidden_sizes=[32,32] --set run.eval_interval=50
Without --out the run goes to runs/<config-name>-<UTC timestamp>. See docs/runs.md
for the run directory layout and resume semantics.
"""


def add_parser(commands: Any) -> None:
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
    train.add_argument("--force", action="store_true",
                       help="write the run into --out even if it is a non-empty directory that is not a run")
    train.add_argument("--no-progress", action="store_true",
                       help="no progress bar; print one line per chunk instead")
    train.add_argument("--tensorboard", action="store_true",
                       help="also log to DIR/tensorboard (needs jaxppo[tensorboard])")
    train.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs jaxppo[wandb])")
    train.add_argument("--wandb-project", default="jaxppo", metavar="NAME", help="W&B project (default: jaxppo)")
    add_distributed_arguments(train)
    train.set_defaults(handler=run)


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "several processes (docs/scaling.md)",
        "Run the same command once per process; seeds are split over every process's devices and\n"
        "process 0 writes the run directory. Without the three flags JAX detects SLURM, Open MPI and\n"
        "Cloud TPU pods.")
    group.add_argument("--distributed", action="store_true",
                       help="join a multi-process run (jax.distributed) before training")
    group.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0's coordinator")
    group.add_argument("--num-processes", type=int, metavar="N", help="number of processes in the run")
    group.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0 .. N-1")


def start_distributed(args: argparse.Namespace) -> None:
    """``jax.distributed`` set-up from the flags, before anything touches a device (a no-op without them)."""
    flags = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed:
        if any(flag is not None for flag in flags):
            raise UsageError("--coordinator, --num-processes and --process-id need --distributed")
        return
    from jaxppo import parallel

    if args.num_processes is not None and args.num_processes <= 0:
        raise UsageError(f"--num-processes {args.num_processes} must be a positive integer")
    if args.process_id is not None and args.num_processes is not None and not 0 <= args.process_id < args.num_processes:
        raise UsageError(f"--process-id {args.process_id} must lie in [0, {args.num_processes - 1}]")
    try:
        parallel.initialize(*flags)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _loggers(args: argparse.Namespace, run_dir: str, config: Any) -> list:
    from jaxppo.config import config_to_dict
    from jaxppo.loggers import TensorBoardLogger, WandbLogger

    loggers = []
    if args.tensorboard:
        loggers.append(TensorBoardLogger(run_dir))
    if args.wandb:
        loggers.append(WandbLogger(run_dir, config_to_dict(config), project=args.wandb_project))
    return loggers


def _iqm_text(stats: dict) -> str:
    """``IQM x [lo, hi]`` and ``solved k/S`` parts of a return line, when the summary has them."""
    text = ""
    if stats.get("iqm") is not None:
        low, high = stats["iqm_ci"]
        text += f"  IQM {_one(stats['iqm'])} [95% CI {_one(low)}, {_one(high)}]"
    if stats.get("solved_threshold") is not None:
        text += f"  solved {stats['num_solved']}/{len(stats['per_seed'])} (>= {stats['solved_threshold']:g})"
    return text


def _diagnosis_lines(summary: dict) -> list[str]:
    diagnosis = summary.get("diagnosis")
    if not diagnosis:
        return []
    counts = diagnosis["counts"]
    text = ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    lines = [f"  diagnosis              {diagnosis['num_healthy']}/{diagnosis['num_seeds']} seeds healthy"
             + (f"; {text}" if text else "")]
    for worst in diagnosis["worst_seeds"]:
        fix = " ".join(f"--set {item}" for item in worst["suggestion"])
        final = worst["final_return"]
        lines.append(f"    seed {worst['seed']:<4d} final {final if final is None else format(final, '.1f')}  "
                     f"{', '.join(worst['pathologies'])}" + (f"  (try {fix})" if fix else ""))
    if diagnosis["worst_seeds"]:
        lines.append(f"    details: jaxppo diagnose {summary['run_dir']} --seed I")
    return lines


def _one(value: Any) -> str:
    """Four significant digits: a return of 487.53 reads 487.5, one of 0.9167 (MemoryChain, a 1e-3 reward
    scale) keeps its digits instead of rounding to 0.9."""
    return "n/a" if value is None else f"{value:.4g}"


def _print_summary(summary: dict) -> None:
    final = summary["final_return"]
    lines = [
        "",
        f"{summary['algorithm'].upper()} on {summary['env']}: {summary['num_seeds']} seeds, "
        f"{summary['updates']} updates{'' if summary['complete'] else ' (incomplete)'}",
        f"  final training return  mean {_one(final['mean'])}  median {_one(final['median'])}  "
        f"min {_one(final['min'])}  max {_one(final['max'])}" + _iqm_text(final)
        + (f"  ({final['num_nonfinite']} seeds without a finite return, counted as the worst)"
           if final.get("num_nonfinite") else ""),
        "    (final return: the mean over the last 10% of updates that finished an episode, as in diagnose and lab)",
    ]
    for name, scores in (summary.get("final_eval_scores") or {}).items():
        if "f1" not in name:
            continue  # the confusion counts stay in summary.json
        lines.append(f"  held-out {name:<13} mean {scores['mean']:.3g}  median {scores['median']:.3g}  "
                     f"min {scores['min']:.3g}  max {scores['max']:.3g}" + _iqm_text(scores))
    if summary.get("final_eval_return"):
        ev = summary["final_eval_return"]
        lines.append(f"  greedy eval return     mean {ev['mean']:.1f}  median {ev['median']:.1f}  "
                     f"min {ev['min']:.1f}  max {ev['max']:.1f}" + _iqm_text(ev))
    nonfinite = summary.get("nonfinite", {})
    if nonfinite:
        parts = []
        if "samples" in nonfinite:
            parts.append(f"{nonfinite['samples']['total']} samples left out of running statistics")
        if "updates" in nonfinite:
            parts.append(f"{nonfinite['updates']['total']} gradient updates skipped")
        lines.append(f"  non-finite data        {', '.join(parts)} (all seeds)")
    lines += _diagnosis_lines(summary)
    lines += [
        f"  env steps              {summary['env_steps_per_seed']:,} per seed, {summary['env_steps_total']:,} in all",
        f"  wall time              {summary['wall_time_s']:.1f} s ({summary['steps_per_second']:,.0f} steps/s, "
        "compilation included)",
        f"  files                  {summary['run_dir']}",
        "                         summary.json metrics.jsonl "
        + ("eval.jsonl " if summary.get("final_eval_return") else "")  # empty without run.eval_interval
        + "learning_curve.png diagnostics.png checkpoints/",
    ]
    print("\n".join(lines), flush=True)


def _check_logger_dependencies(args: argparse.Namespace) -> None:
    """The trackers' imports, checked before anything is created (the loggers create files)."""
    import importlib.util

    if args.tensorboard and importlib.util.find_spec("tensorboardX") is None:
        raise UsageError("--tensorboard needs tensorboardX: pip install 'jaxppo[tensorboard]'")
    if args.wandb and importlib.util.find_spec("wandb") is None:
        raise UsageError("--wandb needs wandb: pip install 'jaxppo[wandb]'")


def run(args: argparse.Namespace) -> int:
    from jaxppo import runner
    from jaxppo.run_dir import read_run
    from jaxppo.config import apply_overrides

    start_distributed(args)
    from jaxppo.parallel import is_main_process

    main = is_main_process()
    progress = not args.no_progress
    _check_logger_dependencies(args)
    if args.resume:
        if (args.config or args.overrides or args.seeds is not None or args.seed is not None or args.out
                or args.force):
            raise UsageError("--resume takes config, seeds and directory from the run; drop CONFIG, --set, "
                             "--seeds, --seed, --out and --force")
        config, _ = read_run(args.resume)
        runner.checked_algorithm(config)
        loggers = _loggers(args, args.resume, config) if main else []
        if main:
            print(f"resuming {args.resume}", flush=True)
        args.run_dir_in_progress = args.resume  # for the Ctrl-C hint
        result = runner.resume_run(args.resume, progress=progress, loggers=loggers)
        if not main:
            return 0
    else:
        # Everything is validated before anything is created or compiled: config, overrides, seeds,
        # the env/algorithm pair and the output path.
        try:
            config, config_name = resolve_config(args.config)
            if args.overrides:
                config = apply_overrides(config, list(args.overrides))
        except ValueError as error:  # config problems are the user's input, reported in one line
            raise UsageError(str(error)) from None
        num_seeds = runner.DEFAULT_NUM_SEEDS if args.seeds is None else args.seeds
        if num_seeds <= 0:
            raise UsageError(f"--seeds {num_seeds} must be a positive integer")
        runner.check_seed(0 if args.seed is None else args.seed, "--seed")
        runner.checked_algorithm(config)
        out = args.out if args.out is not None else os.path.join(
            "runs", f"{config_name}-{datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')}")
        if not main:  # process 0 alone checks, creates and writes the run directory
            runner.train_run(config, out, num_seeds=num_seeds, seed=args.seed or 0, progress=False,
                             config_name=config_name)
            return 0
        runner.check_run_dir(out, force=args.force)
        print(f"training {config.algorithm.upper()} on {config.env}: {num_seeds} seeds (base seed {args.seed or 0}) x "
              f"{config.num_updates} updates ({config.num_updates * config.steps_per_update:,} env steps per seed) "
              f"-> {out}", flush=True)
        if args.seed is not None and args.seeds is None and args.seed > 1:
            # `--seed 16` is usually meant as `--seeds 16`; say which was read before the run is long.
            print(f"note: --seed {args.seed} sets the base seed; the seed count is {num_seeds} (--seeds N sets it)",
                  flush=True)
        created = not os.path.exists(out)
        os.makedirs(out, exist_ok=True)
        args.run_dir_in_progress = out  # for the Ctrl-C hint
        try:
            loggers = _loggers(args, out, config)
            # --out was checked above; a logger may since have created its folder inside it.
            result = runner.train_run(config, out, num_seeds=num_seeds, seed=args.seed or 0, progress=progress,
                                      loggers=loggers, config_name=config_name, force=True)
        except BaseException:
            if created and os.path.isdir(out) and not runner.holds_run(out):
                shutil.rmtree(out, ignore_errors=True)  # only what this command made, and no run in it
            raise
    _print_summary(result.summary)
    return 0
