"""Learning curves and final returns of one config over many seeds, for the results tables.

Trains ``--seeds`` independent seeds of a YAML config (``jaxppo.load_config``: a path or a bundled
name such as ``ppo_cartpole``) as one seed-vmapped program, run in chunks of
``config.run.updates_per_chunk`` updates so progress is printed (chunking does not change the
numbers: the PRNG key lives in the state). Seed ``i`` uses ``split(PRNGKey(--seed), seeds)[i]``, the
keys ``jaxppo.train`` uses.

Per-seed final return, two definitions, both written:

* ``final_return_last_update``: the ``episode_return`` metric of the last update, i.e. the mean
  undiscounted return of the training episodes that ended during the last update (the previous
  update's value carried forward if none ended);
* ``final_return_mean_last_k_updates`` (the headline, ``k = --final-window``, default 5): the mean of
  that metric over the last ``k`` updates, which averages more episodes and is steadier.

They are training-episode returns, with the exploring policy (sampled PPO actions, epsilon-greedy
DQN). With ``--eval-episodes N`` (default 16; 0 skips it) each final policy also plays N fresh
episodes greedily / deterministically through the algorithm's own ``evaluate``.

The curve is the per-update ``episode_return`` every ``--every`` updates (default: about 100
points, always including the last update), summarised over seeds: mean, median, q25, q75, min, max.

    python benchmarks/learning_curves.py ppo_cartpole --seeds 16 --target-mean 475
    python benchmarks/learning_curves.py configs/dqn_cartpole.yaml --seeds 16
    python benchmarks/learning_curves.py ppo_cartpole --seeds 2 --set total_timesteps=20000   # smoke
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402


def config_name(path: str) -> str:
    return os.path.basename(os.fspath(path)).removesuffix(".yaml").removesuffix(".yml")


def curve_indices(num_updates: int, every: Optional[int]) -> np.ndarray:
    """Update indices (0-based) at which the curve is sampled: every ``every``-th update and the last."""
    if every is None:
        every = max(1, num_updates // 100)
    indices = np.arange(every - 1, num_updates, every)
    if indices.size == 0 or indices[-1] != num_updates - 1:
        indices = np.append(indices, num_updates - 1)
    return indices


def summarize_over_seeds(values: np.ndarray) -> dict[str, list[float]]:
    """``values [seeds, points]`` -> per-point statistics over seeds."""
    import warnings

    with warnings.catch_warnings():  # all-NaN columns (no episode finished yet) give NaN -> null
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "mean": np.nanmean(values, axis=0),
            "median": np.nanmedian(values, axis=0),
            "q25": np.nanquantile(values, 0.25, axis=0),
            "q75": np.nanquantile(values, 0.75, axis=0),
            "min": np.nanmin(values, axis=0),
            "max": np.nanmax(values, axis=0),
            "num_seeds_with_a_finished_episode": np.sum(np.isfinite(values), axis=0),
        }


def train_in_chunks(algorithm: Any, keys: jax.Array, num_updates: int, chunk: int
                    ) -> tuple[Any, dict[str, np.ndarray], dict[str, float]]:
    """Runs ``num_updates`` updates for every seed; returns the final state, per-update metrics, timings."""
    timings = {"compile_seconds": 0.0, "run_seconds": 0.0}
    start = time.perf_counter()
    init = jax.jit(jax.vmap(algorithm.init)).lower(keys).compile()
    timings["compile_seconds"] += time.perf_counter() - start
    state = init(keys)
    programs: dict[int, Any] = {}
    collected: list[dict[str, np.ndarray]] = []
    done = 0
    wall_start = time.perf_counter()
    while done < num_updates:
        size = min(chunk, num_updates - done)
        if size not in programs:
            start = time.perf_counter()
            run = jax.vmap(lambda s, n=size: algorithm.run_updates(s, n))
            programs[size] = jax.jit(run).lower(state).compile()
            timings["compile_seconds"] += time.perf_counter() - start
        start = time.perf_counter()
        state, metrics = programs[size](state)
        metrics = jax.device_get(metrics)  # blocks until the chunk has finished
        timings["run_seconds"] += time.perf_counter() - start
        collected.append({k: np.asarray(v) for k, v in metrics.items()})
        done += size
        recent = np.asarray(metrics["episode_return"])[:, -1]
        print(f"  update {done:6d}/{num_updates}  episode_return mean {recent.mean():9.2f} "
              f"median {np.median(recent):9.2f}  ({time.perf_counter() - wall_start:7.1f} s elapsed, compiles included)", flush=True)
    # Metrics arrive as [seeds, updates_in_chunk]; join the chunks along the update axis.
    joined = {k: np.concatenate([c[k] for c in collected], axis=1) for k in collected[0]}
    return state, joined, timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="YAML path, or a bundled config name such as ppo_cartpole")
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="base seed; seed i uses split(PRNGKey(seed), seeds)[i]")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, repeatable (e.g. --set total_timesteps=20000)")
    parser.add_argument("--every", type=int, default=None, help="curve stride in updates (default: ~100 points)")
    parser.add_argument("--final-window", type=int, default=5,
                        help="final return = mean episode_return over this many last updates (default 5)")
    parser.add_argument("--chunk-updates", type=int, default=None,
                        help="updates per compiled chunk (default: config.run.updates_per_chunk)")
    parser.add_argument("--eval-episodes", type=int, default=16,
                        help="greedy evaluation episodes per seed after training (0: skip)")
    parser.add_argument("--target-mean", type=float, default=None,
                        help="record whether the mean final return reaches this value (e.g. 475 for CartPole)")
    parser.add_argument("--output", default=None,
                        help="default: benchmarks/results/learning_<config-name>.json")
    args = parser.parse_args(argv)
    if args.seeds <= 0 or args.final_window <= 0:
        parser.error("--seeds and --final-window must be positive.")

    import jaxppo

    config = jaxppo.load_config(args.config)
    if args.overrides:
        config = jaxppo.apply_overrides(config, args.overrides)
    name = config_name(args.config)
    output = args.output or os.path.join(common.RESULTS_DIR, f"learning_{name}.json")
    num_updates = config.num_updates
    steps_per_update = config.steps_per_update
    chunk = args.chunk_updates or config.run.updates_per_chunk
    algorithm = jaxppo.make_algorithm(config)
    keys = common.seed_keys(args.seeds, args.seed)

    print(f"{name}: {config.algorithm} on {config.env}, {args.seeds} seeds x {num_updates} updates "
          f"({num_updates * steps_per_update:,} env steps per seed), chunks of {chunk}", flush=True)
    state_bytes = int(sum(np.prod(leaf.shape, dtype=np.int64) * np.dtype(leaf.dtype).itemsize
                          for leaf in jax.tree.leaves(jax.eval_shape(jax.vmap(algorithm.init), keys))))
    print(f"  train state of all seeds (replay buffers included): {state_bytes / 2**20:,.1f} MiB; XLA may hold "
          "a second copy while updating it", flush=True)
    machine = common.machine_info()
    state, metrics, timings = train_in_chunks(algorithm, keys, num_updates, chunk)

    # Before a seed's first episode ends the metric holds its initial 0, not a return: mask it as NaN
    # (written as null) so short or early curves are not pulled towards 0.
    seen_episode = np.cumsum(metrics["episodes_completed"], axis=1) > 0
    episode_return = np.where(seen_episode, metrics["episode_return"], np.nan)  # [seeds, updates]
    window = min(args.final_window, num_updates)
    last_update = episode_return[:, -1]
    with np.errstate(all="ignore"):
        last_window = np.nanmean(episode_return[:, -window:], axis=1)
    indices = curve_indices(num_updates, args.every)
    curve = {
        "update": indices + 1,
        "env_steps_per_seed": (indices + 1) * steps_per_update,
        "episode_return": summarize_over_seeds(episode_return[:, indices]),
    }

    evaluation = None
    if args.eval_episodes > 0:
        eval_config = jaxppo.apply_overrides(config, {"run.eval_episodes": args.eval_episodes})
        eval_algorithm = jaxppo.make_algorithm(eval_config)
        eval_keys = jax.random.split(jax.random.PRNGKey(args.seed + 1), args.seeds)
        start = time.perf_counter()
        results = jax.jit(jax.vmap(eval_algorithm.evaluate))(state, eval_keys)
        per_seed = np.asarray(jnp.mean(results["eval_return"], axis=-1))
        evaluation = {
            "definition": (f"{args.eval_episodes} fresh episodes per seed with the greedy / deterministic "
                           "policy (Algorithm.evaluate), after training; mean per seed"),
            "per_seed": per_seed,
            **common.summarize(per_seed),
            "seconds_including_compile": time.perf_counter() - start,
        }

    final = {
        "definition": {
            "final_return_mean_last_k_updates": (
                f"per seed, the mean over the last {window} updates of episode_return (the mean return of "
                "training episodes that ended in each update; carried forward when none ended; updates "
                "before the seed's first finished episode are excluded)"),
            "final_return_last_update": "per seed, episode_return of the last update only",
        },
        "k": window,
        "final_return_mean_last_k_updates": {"per_seed": last_window, **common.summarize(last_window)},
        "final_return_last_update": {"per_seed": last_update, **common.summarize(last_update)},
    }
    if args.target_mean is not None:
        final["target_mean"] = args.target_mean
        mean_final = final["final_return_mean_last_k_updates"]["mean"]
        final["target_reached"] = bool(mean_final is not None and mean_final >= args.target_mean)

    report = {
        "benchmark": "learning_curve",
        "config_name": name,
        "config_path": os.fspath(args.config),
        "overrides": args.overrides,
        "config": jaxppo.config_to_dict(config),
        "num_seeds": args.seeds,
        "base_seed": args.seed,
        "num_updates": num_updates,
        "env_steps_per_seed": num_updates * steps_per_update,
        "train_state_bytes_all_seeds": state_bytes,
        "machine": machine,
        "versions": common.versions("jax", "jaxlib", "flax", "optax", "gymnax", "jaxppo", "numpy"),
        "timing": {
            **timings,
            "chunk_updates": chunk,
            "env_steps_per_second": args.seeds * num_updates * steps_per_update / timings["run_seconds"],
            "note": "run_seconds sums the chunk executions (host transfer of metrics included), "
                    "compile_seconds the init and chunk compilations",
        },
        "final": final,
        "evaluation": evaluation,
        "curve": curve,
    }
    common.write_json_atomic(output, report)

    def stats_line(stats: dict[str, Any]) -> str:
        return "  ".join(f"{key} {stats[key]:.2f}" if stats[key] is not None else f"{key} -"
                         for key in ("mean", "median", "min", "max"))

    head = final["final_return_mean_last_k_updates"]
    print(f"\nfinal return (mean of last {window} updates' episode_return) over {args.seeds} seeds: "
          f"{stats_line(head)}")
    if evaluation:
        print(f"greedy evaluation ({args.eval_episodes} episodes per seed): {stats_line(evaluation)}")
    if args.target_mean is not None:
        print(f"target mean >= {args.target_mean}: {'reached' if final['target_reached'] else 'NOT reached'}")
    print(f"compile {timings['compile_seconds']:.1f} s, run {timings['run_seconds']:.1f} s; wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
