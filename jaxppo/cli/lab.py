"""``jaxppo lab``: train a grid of named variants over many seeds and tabulate their stability and speed."""

from __future__ import annotations

import argparse
import os
from typing import Any

from jaxppo.cli.common import UsageError

_LAB_EPILOG = """\
GRID is a YAML file or the name of a bundled grid (configs/lab/: report000 ... report004,
reward_scale, reward_scale_acrobot, reward_scale_pendulum, reward_scale_intrusion, reward_scale_dqn, dqn_default,
value_head_init, implementation_details). It names a base config, the environments, the reward scales and the
variants (each a set of config overrides); docs/lab.md has the format.
Each (variant, env, reward scale) trains all seeds in one compiled program. Outputs in DIR:
results.json, results.md, cells/*.npz (per-seed metrics), stability_vs_throughput.png,
learning_curves.png, pathologies.png. Run the same command again to resume after an
interruption: finished cells are kept, the lab restarts at the cell it was on.
  jaxppo lab report000 --seeds 64 --out docs/lab/report000
  jaxppo lab my_grid.yaml --seeds 8
"""


def add_parser(commands: Any) -> None:
    lab = commands.add_parser(
        "lab", help="run a grid of variants over many seeds: failure rates, returns, throughput",
        description="Train every (variant, env, reward scale) of GRID over --seeds seeds and write\n"
                    "per-cell pathology shares, final-return IQM with bootstrap intervals, throughput\n"
                    "and compile time as JSON, Markdown and PNGs.",
        epilog=_LAB_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    lab.add_argument("grid", metavar="GRID", help="grid YAML file or bundled grid name")
    lab.add_argument("--seeds", type=int, default=None, metavar="N", help="seeds per cell (default: the grid's)")
    lab.add_argument("--out", metavar="DIR", help="output folder (default: lab/<grid-name>)")
    lab.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config field in every cell, after the variant's own (repeatable), "
                          "e.g. --set total_timesteps=50000")
    lab.add_argument("--no-progress", action="store_true", help="no progress bar")
    lab.add_argument("--tables-only", action="store_true",
                     help="train nothing: recompute the finished cells' statistics from DIR/cells/*.npz with the "
                          "current detectors and rewrite results.json, results.md and the PNGs")
    lab.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jaxppo import lab

    if args.seeds is not None and args.seeds <= 0:
        raise UsageError(f"--seeds must be a positive integer, got {args.seeds}.")
    grid = lab.load_grid(args.grid, num_seeds=args.seeds, sets=args.overrides)  # validates every cell before anything is created
    out_dir = args.out or os.path.join("lab", grid.name)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UsageError(f"--out {out_dir!r} exists and is not a folder.")
    if args.tables_only and not os.path.exists(os.path.join(out_dir, lab.RESULTS_FILE)):
        raise UsageError(f"--tables-only needs a finished lab in {out_dir!r}, which has no {lab.RESULTS_FILE}.")
    print(f"lab {grid.name}: {len(grid.cells)} cells x {grid.num_seeds} seeds -> {out_dir}", flush=True)
    lab.run(grid, out_dir=out_dir, progress=not args.no_progress, train=not args.tables_only)
    with open(os.path.join(out_dir, lab.MARKDOWN_FILE), "r", encoding="utf-8") as handle:
        print(handle.read())
    print(f"wrote {out_dir}/{{{lab.RESULTS_FILE},{lab.MARKDOWN_FILE},{lab.THROUGHPUT_PNG},{lab.CURVES_PNG},"
          f"{lab.PATHOLOGIES_PNG}}}")
    return 0
