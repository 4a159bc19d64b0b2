"""The thin ``jaxppo`` dispatcher: builds the parser from the verb modules and runs the chosen one.

Each verb lives in its own module (``jaxppo/cli/<verb>.py``) with ``add_parser(commands)``, which
registers its sub-parser and sets ``handler``, and ``run(args) -> exit status``. Adding a verb means
adding a module and one name to ``VERBS``.

Bad input (an unknown config key, a missing file, an unknown environment, inconsistent sizes) ends
with exit status 2 and one line ``jaxppo: error: ...`` on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from jaxppo.cli.common import Parser, UsageError
from jaxppo.run_io import RunInputError

__all__ = ["main", "build_parser", "VERBS"]

# Order is the order of `jaxppo --help`.
VERBS = ("train", "eval", "plot", "diagnose", "lab", "sweep", "render", "config", "envs")

_DESCRIPTION = """\
Train PPO / DQN as compiled, seed-vmapped JAX programs, then evaluate and plot the runs.

  jaxppo train                              default config (PPO on CartPole-v1), 4 seeds
  jaxppo train configs/ppo_cartpole.yaml --seeds 8 --set learning_rate=1e-3
  jaxppo train --resume runs/NAME           continue an interrupted run from its last checkpoint
  jaxppo eval runs/NAME --episodes 32       greedy evaluation of the saved policy
  jaxppo plot runs/NAME                     redraw learning_curve.png and diagnostics.png
  jaxppo sweep CONFIG --grid learning_rate=1e-4,3e-4 --grid clip_epsilon=0.1,0.2 --seeds 16
                                            a grid x seeds in one program, with a table per setting
  jaxppo diagnose runs/NAME                 which seeds went wrong, when, why, and what to change
  jaxppo lab report000 --seeds 64           failure rates, returns and throughput of a grid of variants
  jaxppo render runs/NAME --out episode.gif an episode of the trained policy as an animation
  jaxppo config show ppo_cartpole --set gamma=0.98   the resolved config as YAML
  jaxppo envs                               the environments that can be trained, with their spaces
"""


def build_parser() -> argparse.ArgumentParser:
    from jaxppo import __version__

    parser = Parser(prog="jaxppo", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"jaxppo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for verb in VERBS:
        importlib.import_module(f"jaxppo.cli.{verb}").add_parser(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``jaxppo`` console script; returns the exit status."""
    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return args.handler(args)
    except (UsageError, RunInputError) as error:
        message = " ".join(str(error).split())  # one line, whatever the original formatting
        print(f"jaxppo: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        command = getattr(args, "command", None)
        run_dir = getattr(args, "run_dir_in_progress", None)
        verb = "sweep" if command == "sweep" else "train"
        hint = ("run the same 'jaxppo lab' command again to resume at the unfinished cell" if command == "lab" else
                f"continue with 'jaxppo {verb} --resume {run_dir}' from the last checkpoint" if run_dir else
                f"continue with 'jaxppo {verb} --resume DIR' from the last checkpoint")
        print(f"jaxppo: interrupted; {hint}.", file=sys.stderr)
        return 130
