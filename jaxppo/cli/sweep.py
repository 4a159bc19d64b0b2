"""``jaxppo sweep``: a grid of numeric hyperparameters x seeds in one compiled program, with its table."""

from __future__ import annotations

import argparse
import datetime
import os
from typing import Any

from jaxppo.cli.common import DEFAULT_CONFIG, UsageError, resolve_config

_SWEEP_EPILOG = """\
Every --grid FIELD=V1,V2,... adds an axis; the run trains every combination x --seeds seeds as one
compiled program, in chunks, with the same progress, checkpoints and --resume as 'jaxppo train'.
Only numeric hyperparameters (learning_rate, clip_epsilon, entropy_coef, gamma, ...) can be swept:
sizes and modes fix the program's shape. Each setting uses the same seeds. Besides the run files,
DIR gets sweep.md / sweep.json (final return IQM with a 95% bootstrap interval over seeds and
pathology counts per setting) and sweep.png (final return against each swept value).

  jaxppo sweep ppo_cartpole --grid learning_rate=1e-4,3e-4,1e-3 --grid clip_epsilon=0.1,0.2 --seeds 16
"""


def add_parser(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep", help="train a hyperparameter grid x seeds in one program, with a table per setting",
        description="Train every combination of the --grid values x --seeds seeds of CONFIG as one compiled,\n"
                    "chunked, checkpointed run, then tabulate and plot the final return per setting.",
        epilog=_SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("config", nargs="?", metavar="CONFIG",
                       help=f"YAML config file or bundled config name (default: {DEFAULT_CONFIG})")
    sweep.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,...",
                       help="a swept field and its values (repeatable; at least one)")
    sweep.add_argument("--seeds", type=int, default=None, metavar="N", help="seeds per setting (default: 4)")
    sweep.add_argument("--seed", type=int, default=None, metavar="S",
                       help="base seed; seed i of every setting uses split(PRNGKey(S), N)[i] (default: 0)")
    sweep.add_argument("--out", metavar="DIR", help="run directory (default: runs/sweep-<config-name>-<timestamp>)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field of every setting (repeatable)")
    sweep.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR from its latest checkpoint")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar; one line per chunk instead")
    sweep.add_argument("--force", action="store_true",
                       help="write into an existing non-empty --out directory that is not a run (never over a run)")
    sweep.set_defaults(handler=run)


def parse_grid(items: list[str]) -> dict[str, list[float]]:
    """``["learning_rate=1e-4,3e-4", ...]`` -> ``{"learning_rate": [1e-4, 3e-4]}``, or a ``UsageError``."""
    grid: dict[str, list[float]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise UsageError(f"--grid {item!r} must look like FIELD=V1,V2,... (e.g. learning_rate=1e-4,3e-4)")
        if name in grid:
            raise UsageError(f"--grid names {name!r} twice; give all its values in one --grid")
        values = []
        for raw in text.split(","):
            try:
                values.append(float(raw))
            except ValueError:
                raise UsageError(f"--grid {name}: {raw.strip()!r} is not a number") from None
        grid[name] = values
    return grid


def _print_table(run_dir: str, table: dict) -> None:
    from jaxppo.sweep_report import sweep_markdown

    print("\n" + sweep_markdown(table), flush=True)
    print(f"files: {os.path.abspath(run_dir)}  (sweep.md sweep.json sweep.png metrics_per_seed.npz checkpoints/)",
          flush=True)


def run(args: argparse.Namespace) -> int:
    from jaxppo import runner
    from jaxppo.run_dir import read_run
    from jaxppo.api import check_grid, grid_settings
    from jaxppo.config import apply_overrides
    from jaxppo.sweep_report import write_sweep_report

    progress = not args.no_progress
    if args.resume:
        if (args.config or args.grid or args.overrides or args.seeds is not None or args.seed is not None or args.out
                or args.force):
            raise UsageError("--resume takes config, grid, seeds and directory from the run; drop CONFIG, --grid, "
                             "--set, --seeds, --seed, --out and --force")
        _, run_info = read_run(args.resume)
        if not run_info.get("grid"):
            raise UsageError(f"{args.resume!r} is not a sweep; continue it with 'jaxppo train --resume'")
        print(f"resuming {args.resume}", flush=True)
        args.run_dir_in_progress = args.resume  # for the Ctrl-C hint
        result = runner.resume_run(args.resume, progress=progress)
    else:
        if not args.grid:
            raise UsageError("give at least one --grid FIELD=V1,V2,... (see 'jaxppo sweep --help')")
        grid = parse_grid(args.grid)
        try:
            config, config_name = resolve_config(args.config)
            if args.overrides:
                config = apply_overrides(config, list(args.overrides))
            names, values = check_grid(config, grid)
            for point in grid_settings(names, values):  # every setting must be a valid config
                try:
                    config.replace(**point)
                except ValueError as error:
                    raise ValueError(f"grid point {point}: {error}") from None
        except ValueError as error:
            raise UsageError(str(error)) from None
        num_seeds = runner.DEFAULT_NUM_SEEDS if args.seeds is None else args.seeds
        if num_seeds <= 0:
            raise UsageError(f"--seeds {num_seeds} must be a positive integer")
        out = args.out or os.path.join(
            "runs", f"sweep-{config_name}-{datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')}")
        try:  # before anything is compiled or created: a run, a file, a non-empty folder, a read-only place
            runner.check_run_dir(out, force=args.force)
        except runner.RunInputError as error:
            raise UsageError(str(error)) from None
        settings = 1
        for name in names:
            settings *= len(values[name])
        print(f"sweeping {config.algorithm.upper()} on {config.env}: {settings} settings x {num_seeds} seeds x "
              f"{config.num_updates} updates -> {out}", flush=True)
        args.run_dir_in_progress = out  # for the Ctrl-C hint
        result = runner.train_run(config, out, num_seeds=num_seeds, seed=args.seed or 0, progress=progress,
                                  config_name=config_name, grid={n: values[n] for n in names},
                                  force=args.force)
    table = write_sweep_report(result.run_dir)
    _print_table(result.run_dir, table)
    return 0

