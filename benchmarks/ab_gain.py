"""One optimisation's own gain: jaxppo at a git revision against the working tree, alternating in one process.

The ``jaxppo`` package of ``--before`` (a commit) is extracted with ``git archive`` into a temporary
folder, imported, and its ``jit(vmap(train))`` program traced and lowered; then the package is dropped
from ``sys.modules`` and the working tree's is imported and lowered the same way. Traced programs keep
their own code, so both live in one process. Both compile, then run alternately ``--repeats`` rounds on
the same keys; each run records wall time and the load average. The workload is the one of
``benchmarks/throughput.py`` (``--algo ppo``: PureJaxRL's CartPole PPO; ``dqn``: CleanRL's CartPole DQN
in rejax's 10 envs x 1 step layout).

    python benchmarks/ab_gain.py --algo ppo --before 69f11b1 --seeds 16 --total-timesteps 50000
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import jax  # noqa: E402

import common  # noqa: E402
import throughput  # noqa: E402


def _drop_jaxppo() -> None:
    for name in [n for n in sys.modules if n == "jaxppo" or n.startswith("jaxppo.")]:
        del sys.modules[name]


def lower_at(source_root: str, algo: str, total_timesteps: int, keys: jax.Array) -> tuple[Any, int]:
    """Imports jaxppo from ``source_root`` and lowers the benchmark program with it."""
    _drop_jaxppo()
    sys.path.insert(0, source_root)
    try:
        import jaxppo

        assert os.path.dirname(os.path.dirname(os.path.abspath(jaxppo.__file__))) == os.path.abspath(source_root)
        spec = throughput.SPECS[algo]
        config = spec.jaxppo_config(total_timesteps)
        start = time.perf_counter()
        lowered = jax.jit(jax.vmap(spec.jaxppo_train(config))).lower(keys)
        print(f"  lowered {source_root} in {time.perf_counter() - start:.1f} s", flush=True)
        return lowered, config.num_updates * spec.steps_per_update(config)
    finally:
        sys.path.remove(source_root)
        _drop_jaxppo()


def extract(revision: str, folder: str) -> str:
    archive = subprocess.run(["git", "-C", REPO, "archive", revision, "jaxppo", "configs"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algo", choices=["ppo", "dqn"], required=True)
    parser.add_argument("--before", required=True, help="git revision of the 'before' jaxppo")
    parser.add_argument("--label", default="", help="what changed, recorded in the JSON")
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--total-timesteps", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=None, help="JSON path (default: print only)")
    args = parser.parse_args(argv)

    keys = common.seed_keys(args.seeds)
    with tempfile.TemporaryDirectory(prefix="ab_before_") as folder:
        before_lowered, steps = lower_at(extract(args.before, folder), args.algo, args.total_timesteps, keys)
        after_lowered, steps_after = lower_at(REPO, args.algo, args.total_timesteps, keys)
    assert steps == steps_after, (steps, steps_after)
    programs = {}
    for name, lowered in (("before", before_lowered), ("after", after_lowered)):
        start = time.perf_counter()
        programs[name] = common.CompiledProgram(lowered.compile(), 0.0, time.perf_counter() - start)
        print(f"  {name} compile {programs[name].compile_seconds:.1f} s", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for name, program in programs.items():
            load = list(os.getloadavg())
            cpu_start = time.process_time()
            wall, _ = common.time_runs(program, keys, repeats=1)
            cpu = time.process_time() - cpu_start
            runs[name].append({"wall_seconds": wall[0], "process_cpu_seconds": cpu, "load_average_before": load,
                               "load_average_after": list(os.getloadavg())})
            print(f"  {name:6s} run {wall[0]:7.2f} s wall, {cpu:7.2f} s CPU (load {load[0]:.1f})", flush=True)
    best = {n: min(r["wall_seconds"] for r in rs) for n, rs in runs.items()}
    median = {n: statistics.median(r["wall_seconds"] for r in rs) for n, rs in runs.items()}
    cpu_best = {n: min(r["process_cpu_seconds"] for r in rs) for n, rs in runs.items()}
    result = {
        "benchmark": "ab_gain", "algo": args.algo, "label": args.label, "before": args.before,
        "after": common.machine_info()["git_commit"] + " + working tree", "num_seeds": args.seeds,
        "env_steps_per_seed": steps, "machine": common.machine_info(),
        "compile_seconds": {n: p.compile_seconds for n, p in programs.items()},
        "runs": runs,
        "env_steps_per_second_best": {n: args.seeds * steps / t for n, t in best.items()},
        "gain_best": best["before"] / best["after"],
        "gain_median": median["before"] / median["after"],
        # On a heavily loaded machine wall time mostly measures the other processes; the CPU time the
        # process itself used is the steadier measure of the work each program does.
        "gain_process_cpu_best": cpu_best["before"] / cpu_best["after"],
    }
    print(f"{args.algo} {args.label}: gain {result['gain_best']:.2f}x (best wall), {result['gain_median']:.2f}x "
          f"(median wall), {result['gain_process_cpu_best']:.2f}x (best process CPU time); "
          f"compile {result['compile_seconds']['before']:.1f} -> {result['compile_seconds']['after']:.1f} s")
    if args.output:
        common.write_json_atomic(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
