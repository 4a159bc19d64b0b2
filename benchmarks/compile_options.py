"""Compile time and run time of the throughput programs at XLA's default and at jaxppo's CPU options.

Why: on the CPU most of a training program's compile time is LLVM (see ``benchmarks/README.md``,
"Compile time"), and ``jaxppo.compilation`` compiles jaxppo's programs at LLVM ``-O1``. This script
is the evidence for that choice: per algorithm and library it lowers the side-by-side program of
``benchmarks/throughput.py`` once, compiles it at each option set, runs the executables in turn
(``--repeats`` rounds, alternating), and records compile seconds, best and median run seconds, and
whether the outputs are bit-identical to the default's.

    python benchmarks/compile_options.py --output benchmarks/results/compile_options_cpu_avx2.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import throughput  # noqa: E402

OPTION_SETS = {
    "default": None,
    "O1": {"xla_backend_optimization_level": 1},
}


def _identical(a: Any, b: Any) -> bool:
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True) for x, y in zip(leaves_a, leaves_b))


def measure(algo: str, num_seeds: int, total_timesteps: int, repeats: int, seed: int) -> dict[str, Any]:
    spec = throughput.SPECS[algo]
    config = spec.jaxppo_config(total_timesteps)
    env_steps = config.num_updates * spec.steps_per_update(config)
    rejax_algo, _ = spec.rejax_algo(config, env_steps)
    keys = common.seed_keys(num_seeds, seed)
    label = f"{algo} seeds={num_seeds}"
    executables: dict[tuple[str, str], Any] = {}
    entry: dict[str, Any] = {"algo": algo, "num_seeds": num_seeds, "env_steps_per_seed": env_steps,
                             "repeats": repeats, "libraries": {}}
    for library, fn in (("jaxppo", jax.vmap(spec.jaxppo_train(config))), ("rejax", jax.vmap(rejax_algo.train))):
        start = time.perf_counter()
        lowered = jax.jit(fn).lower(keys)
        lower_seconds = time.perf_counter() - start
        entry["libraries"][library] = {"trace_and_lower_seconds": lower_seconds, "options": {}}
        for name, options in OPTION_SETS.items():
            start = time.perf_counter()
            executables[library, name] = lowered.compile(compiler_options=options)
            seconds = time.perf_counter() - start
            entry["libraries"][library]["options"][name] = {"compiler_options": options, "compile_seconds": seconds,
                                                            "runs": []}
            print(f"  {label} {library:6s} {name:7s} compile {seconds:6.2f} s", flush=True)
    outputs: dict[tuple[str, str], Any] = {}
    for _ in range(repeats):
        for (library, name), executable in executables.items():
            outputs.pop((library, name), None)
            start = time.perf_counter()
            outputs[library, name] = jax.block_until_ready(executable(keys))
            wall = time.perf_counter() - start
            entry["libraries"][library]["options"][name]["runs"].append(wall)
            print(f"  {label} {library:6s} {name:7s} run {wall:6.2f} s", flush=True)
    for library, record in entry["libraries"].items():
        for name, result in record["options"].items():
            best, median = min(result["runs"]), statistics.median(result["runs"])
            result.update(best_run_seconds=best, median_run_seconds=median,
                          env_steps_per_second=num_seeds * env_steps / best,
                          bit_identical_to_default=_identical(outputs[library, name], outputs[library, "default"]))
        default, light = record["options"]["default"], record["options"]["O1"]
        record["compile_speedup_O1"] = default["compile_seconds"] / light["compile_seconds"]
        record["run_time_ratio_O1_best"] = light["best_run_seconds"] / default["best_run_seconds"]
        record["run_time_ratio_O1_median"] = light["median_run_seconds"] / default["median_run_seconds"]
    return entry


def render_table(report: dict[str, Any]) -> str:
    lines = ["| program | library | compile s (default -> O1) | best run s (default -> O1) | "
             "median run s (default -> O1) | O1 outputs bit-identical |",
             "|---|---|---|---|---|---|"]
    for entry in report["results"]:
        for library, record in entry["libraries"].items():
            d, o = record["options"]["default"], record["options"]["O1"]
            lines.append(
                f"| {entry['algo'].upper()} {entry['num_seeds']} seeds x {entry['env_steps_per_seed']:.0e} | {library} "
                f"| {d['compile_seconds']:.1f} -> {o['compile_seconds']:.1f} "
                f"| {d['best_run_seconds']:.2f} -> {o['best_run_seconds']:.2f} "
                f"| {d['median_run_seconds']:.2f} -> {o['median_run_seconds']:.2f} "
                f"| {'yes' if o['bit_identical_to_default'] else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", choices=list(throughput.SPECS), default=["ppo", "dqn"])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--total-timesteps", nargs="+", default=["ppo=50000", "dqn=20000"], metavar="ALGO=STEPS")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "compile_options_cpu.json"))
    args = parser.parse_args(argv)
    lengths = {}
    for item in args.total_timesteps:
        algo, sep, steps = item.partition("=")
        if not sep or algo not in throughput.SPECS or not steps.isdigit():
            parser.error(f"--total-timesteps takes ALGO=STEPS with ALGO in {sorted(throughput.SPECS)}, got {item!r}")
        lengths[algo] = int(steps)
    if args.seeds <= 0 or args.repeats <= 0:
        parser.error("--seeds and --repeats must be positive")
    report: dict[str, Any] = {
        "benchmark": "compile_options",
        "machine": common.machine_info(),
        "versions": common.versions("jax", "jaxlib", "flax", "optax", "gymnax", "rejax", "jaxppo", "numpy"),
        "command": "python " + " ".join([os.path.relpath(__file__, throughput.REPO)] + sys.argv[1:]),
        "protocol": {
            "program": "benchmarks/throughput.py's side-by-side programs, jax.jit(jax.vmap(train)) over num_seeds keys",
            "compile": "one lowering per program, then Lowered.compile(compiler_options=...) per option set",
            "run": "every executable in turn, repeats rounds; best and median wall seconds",
        },
        "results": [],
    }
    for algo in args.algos:
        report["results"].append(measure(algo, args.seeds, lengths.get(algo, 50_000), args.repeats, args.seed))
        common.write_json_atomic(args.output, report)
    print()
    print(render_table(report))
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
