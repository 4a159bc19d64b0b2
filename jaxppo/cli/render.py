"""``jaxppo render``: an episode of a run's trained policy as an animated GIF."""

from __future__ import annotations

import argparse
import os
from typing import Any

from jaxppo.cli.common import UsageError


def add_parser(commands: Any) -> None:
    render = commands.add_parser(
        "render", help="an episode of the trained policy as an animation",
        description="Play one episode with the deterministic policy of one seed of RUN_DIR's latest\n"
                    "checkpoint and draw it into --out (.gif; .mp4 with ffmpeg): classic control by jaxppo's own\n"
                    "drawing, the MinAtar games, Pong, Catch, PointRobot and the mazes by gymnax's visualiser.\n"
                    "Other envs are refused in one line.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    render.add_argument("run_dir", metavar="RUN_DIR")
    render.add_argument("--out", required=True, metavar="FILE", help="animation file, e.g. episode.gif")
    render.add_argument("--seed", type=int, default=0, metavar="I",
                        help="which of the run's seeds plays (0 .. num_seeds-1, default: 0)")
    render.add_argument("--episode-seed", type=int, default=0, metavar="S",
                        help="key of the episode's reset and steps (default: 0)")
    render.add_argument("--max-steps", type=int, default=None, metavar="T",
                        help="cut the episode after T steps (default: the env's time limit)")
    render.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jaxppo import render, runner
    from jaxppo.run_dir import read_run
    from jaxppo.run_summary import lane_labels
    from jaxppo.envs.evaluation import max_episode_steps

    # Everything is checked before the checkpoint is loaded or anything compiled.
    config, run_info = read_run(args.run_dir)
    if run_info.get("custom_env"):
        raise UsageError(f"{args.run_dir!r} was trained on a custom env object, which the command line "
                         "cannot rebuild; render it from Python with jaxppo.render.")
    if os.path.isdir(args.out):
        raise UsageError(f"--out {args.out!r} is a directory; give a file name such as episode.gif")
    problem = render.animation_writer_problem(args.out)
    if problem:
        raise UsageError(problem)
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):
        raise UsageError(f"--out {args.out!r}: folder {parent!r} does not exist")
    labels = lane_labels(run_info)  # a sweep's lanes: every setting x seed
    num_seeds = len(labels) if labels else run_info["num_seeds"]
    if not 0 <= args.seed < num_seeds:
        what = "settings x seeds" if labels else "seeds"
        raise UsageError(f"--seed {args.seed} must lie in [0, {num_seeds - 1}] for this run ({num_seeds} {what})")
    problem = render.render_support(config.env, args.out)
    if problem:
        raise UsageError(problem)
    runner.check_seed(args.episode_seed, "--episode-seed")
    if args.max_steps is not None and args.max_steps <= 0:
        raise UsageError(f"--max-steps {args.max_steps} must be a positive integer")

    import jax

    loaded = runner.load_run_state(args.run_dir)
    state = jax.tree.map(lambda x: x[args.seed], loaded.state)
    limit = max_episode_steps(loaded.algorithm.env_params)
    steps = limit if args.max_steps is None else min(args.max_steps, limit)
    episode = render.record_episode(loaded.algorithm, state, jax.random.PRNGKey(args.episode_seed), steps)
    render.write_animation(episode, args.out)
    how = "ended" if episode.ended else f"cut at --max-steps {steps}"
    which = f"seed {args.seed}" + (f" ({labels[args.seed]})" if labels else "")
    print(f"wrote {args.out}: {config.env}, {which} at update {loaded.update}, {episode.length} steps "
          f"({how}), return {episode.returns[-1]:.1f}")
    return 0
