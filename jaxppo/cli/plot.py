"""``jaxppo plot``: redraw a run's PNG plots from its metric files."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(commands: Any) -> None:
    plot = commands.add_parser("plot", help="redraw a run's PNG plots",
                               description="Redraw learning_curve.png and diagnostics.png of RUN_DIR from "
                                           "its metric files.")
    plot.add_argument("run_dir", metavar="RUN_DIR")
    plot.add_argument("--dpi", type=int, default=100, help="resolution (default: 100)")
    plot.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jaxppo import runner

    for path in runner.render_plots(args.run_dir, dpi=args.dpi):
        print(f"wrote {path}")
    return 0


