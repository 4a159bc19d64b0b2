"""``jaxppo plot``: redraw a run's PNG plots from its metric files."""

from __future__ import annotations

import argparse
from typing import Any

from jaxppo.cli.common import UsageError


def add_parser(commands: Any) -> None:
    plot = commands.add_parser("plot", help="redraw a run's PNG plots",
                               description="Redraw learning_curve.png and diagnostics.png of RUN_DIR from "
                                           "its metric files.")
    plot.add_argument("run_dir", metavar="RUN_DIR")
    plot.add_argument("--dpi", type=int, default=100, help="resolution (default: 100)")
    plot.add_argument("--smooth", type=int, default=None, metavar="N",
                      help="learning curve: moving average over N updates, stated on the axis "
                           "(default: 1%% of the run for runs of 200 updates or more; 1: raw)")
    plot.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jaxppo import runner

    if not 10 <= args.dpi <= 1000:
        raise UsageError(f"--dpi {args.dpi} must lie in [10, 1000]")
    if args.smooth is not None and args.smooth < 1:
        raise UsageError(f"--smooth {args.smooth} must be a positive number of updates (1: no smoothing)")
    for path in runner.render_plots(args.run_dir, dpi=args.dpi, smooth=args.smooth):
        print(f"wrote {path}")
    return 0


