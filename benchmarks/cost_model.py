"""How much work one env step is, and the fastest a machine could do it: a cost model from XLA itself.

For each piece of a training update, compiled alone for one seed, XLA's ``cost_analysis()`` gives
``flops`` and ``bytes accessed``. XLA counts a loop body once, not times its trip count, so the model
multiplies each piece by how often one update runs it:

    PPO  rollout_step x num_steps, draw_rollout_noise x 1, estimate_returns x 1,
         shuffle (epoch_update minus its one minibatch_update) x num_epochs,
         minibatch_update x num_epochs x num_minibatches, the rest of train_step x 1
    DQN  rollout_step x train_frequency, draw_rollout_noise x 1, buffer add x 1,
         gradient_step x gradient_steps, the rest of train_step (target update, metrics) x 1

and divides by the env steps of an update. The floor is ``max(flops / peak flops, bytes / bandwidth)``
per env step: this CPU's peak from a float32 matmul microbenchmark and its bandwidth from a large copy
(both measured here, on a shared machine, so both are lower bounds of the idle machine), and an H100's
and A100's published rates. ``--throughput`` reads measured env steps/s from ``throughput.py``'s JSON
and reports each as a share of the floor. The workloads are ``throughput.py``'s.

    python benchmarks/cost_model.py --throughput benchmarks/results/throughput_cpu.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import common  # noqa: E402
import throughput  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# Published dense peak rates (vendor datasheets: NVIDIA H100 SXM5, A100 SXM4 80 GB). JAX's default
# float32 matmul precision on these GPUs uses TF32 tensor cores; the plain FP32 rate is the bound for
# everything that is not a matmul.
PUBLISHED = {
    "H100 SXM": {"fp32_flops": 67e12, "tf32_tensor_flops": 494.7e12, "memory_bandwidth": 3.35e12},
    "A100 SXM 80GB": {"fp32_flops": 19.5e12, "tf32_tensor_flops": 156e12, "memory_bandwidth": 2.039e12},
}


def cost(fn: Callable, *args: Any) -> dict[str, float]:
    """XLA's flops and bytes accessed of ``jit(fn)`` for ``args`` (arrays or ShapeDtypeStructs)."""
    analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return {"flops": float(analysis.get("flops", 0.0)), "bytes": float(analysis.get("bytes accessed", 0.0))}


def _shapes(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), tree)


def _first(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), tree)


def ppo_pieces(config: Any) -> tuple[dict[str, dict[str, float]], int]:
    from jaxppo.ppo import train as ppo

    ctx = ppo.make_context(config)
    key = jax.random.PRNGKey(0)
    state = jax.eval_shape(functools.partial(ppo.init_state, ctx), key)
    # Versions that draw the rollout's randomness before its loop take a noise slice per step;
    # older ones split keys inside rollout_step (xs = None).
    predrawn = hasattr(ppo, "draw_rollout_noise")
    noise = jax.eval_shape(functools.partial(ppo.draw_rollout_noise, ctx), key) if predrawn else None
    trajectory = jax.eval_shape(
        lambda s: jax.lax.scan(functools.partial(ppo.rollout_step, ctx), s, noise, length=config.num_steps)[1],
        state)
    learner = ppo.LearnerState(state.params, state.opt_state, jax.ShapeDtypeStruct((), jnp.bool_),
                               jax.ShapeDtypeStruct((), jnp.float32))
    batch = ppo.Batch(*[jax.ShapeDtypeStruct((config.batch_size,) + x.shape[2:], x.dtype) for x in
                        (trajectory.obs, trajectory.action, trajectory.log_prob, trajectory.reward,
                         trajectory.reward, trajectory.reward)])
    minibatch = jax.tree.map(lambda x: jax.ShapeDtypeStruct((config.minibatch_size,) + x.shape[1:], x.dtype), batch)
    permutation = (jax.ShapeDtypeStruct((config.batch_size,), jnp.int32) if predrawn
                   else jax.ShapeDtypeStruct(key.shape, key.dtype))
    step_noise = _first(noise) if predrawn else None
    pieces = {
        "rollout_step": (cost(lambda s, n: ppo.rollout_step(ctx, s, n), state, step_noise), config.num_steps),
        "estimate_returns": (cost(functools.partial(ppo.estimate_returns, ctx), state, trajectory), 1),
        "minibatch_update": (cost(functools.partial(ppo.minibatch_update, ctx), learner, minibatch),
                             config.num_epochs * config.num_minibatches),
    }
    if predrawn:
        pieces["draw_rollout_noise"] = (cost(functools.partial(ppo.draw_rollout_noise, ctx), key), 1)
    epoch = cost(functools.partial(ppo.epoch_update, ctx), batch, learner, permutation)
    pieces["shuffle"] = ({k: max(epoch[k] - pieces["minibatch_update"][0][k], 0.0) for k in epoch}, config.num_epochs)
    whole = cost(functools.partial(ppo.train_step, ctx), state)
    pieces["rest_of_train_step"] = (
        {k: max(whole[k] - sum(p[0][k] for p in pieces.values()), 0.0) for k in whole}, 1)
    return _table(pieces), config.num_steps * config.num_envs


def dqn_pieces(config: Any) -> tuple[dict[str, dict[str, float]], int]:
    from jaxppo.dqn import buffer as replay
    from jaxppo.dqn import train as dqn

    ctx = dqn.make_context(config)
    key = jax.random.PRNGKey(0)
    state = jax.eval_shape(functools.partial(dqn.init_state, ctx), key)
    predrawn = hasattr(dqn, "draw_rollout_noise")  # see ppo_pieces
    noise = (jax.eval_shape(functools.partial(dqn.draw_rollout_noise, ctx, num_steps=config.train_frequency), key)
             if predrawn else None)
    record = jax.eval_shape(
        lambda s: jax.lax.scan(functools.partial(dqn.rollout_step, ctx), s, noise, length=config.train_frequency)[1],
        state)
    flat = jax.tree.map(lambda x: jax.ShapeDtypeStruct((x.shape[0] * x.shape[1],) + x.shape[2:], x.dtype),
                        record.transition)
    learner = dqn.LearnerState(state.params, state.opt_state)
    batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct((config.batch_size,) + x.shape[1:], x.dtype),
                         state.buffer.storage)
    step_noise = _first(noise) if predrawn else None
    if predrawn:  # gradient_step(ctx, target_params, learner, batch)
        gradient = cost(functools.partial(dqn.gradient_step, ctx), state.target_params, learner, batch)
    else:  # gradient_step(ctx, target_params, buffer, learner, key): samples inside
        gradient = cost(functools.partial(dqn.gradient_step, ctx), state.target_params, state.buffer, learner, key)
    pieces = {
        "rollout_step": (cost(lambda s, n: dqn.rollout_step(ctx, s, n), state, step_noise), config.train_frequency),
        "buffer_add": (cost(replay.add, state.buffer, flat), 1),
        "gradient_step": (gradient, config.gradient_steps),
    }
    if predrawn:
        pieces["draw_rollout_noise"] = (
            cost(functools.partial(dqn.draw_rollout_noise, ctx, num_steps=config.train_frequency), key), 1)
    whole = cost(functools.partial(dqn.train_step, ctx), state)
    pieces["rest_of_train_step"] = (
        {k: max(whole[k] - sum(p[0][k] for p in pieces.values()), 0.0) for k in whole}, 1)
    return _table(pieces), config.steps_per_update


def _table(pieces: dict[str, tuple[dict[str, float], int]]) -> dict[str, dict[str, float]]:
    return {name: {"flops_once": c["flops"], "bytes_once": c["bytes"], "times_per_update": n,
                   "flops_per_update": c["flops"] * n, "bytes_per_update": c["bytes"] * n}
            for name, (c, n) in pieces.items()}


def matmul_peak(size: int = 512, repeats: int = 200) -> dict[str, Any]:
    """Best float32 matmul rate of ``[size, size] @ [size, size]`` (XLA's CPU matmul on all threads).

    Two readings: flops per wall second (what the machine gave this process, depressed when other
    processes share the cores), and flops per second of this process's CPU time times the usable
    cores (what the cores do while they run this matmul, steadier on a loaded machine).
    """
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    jax.block_until_ready(matmul(a))
    best = float("inf")
    # CPU time is read over all repeats together: process_time() ticks too coarsely for one matmul
    # of under a millisecond (a per-run minimum read 0.03 ms of CPU for 0.6 ms of wall time).
    cpu_start = time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(matmul(a))
        best = min(best, time.perf_counter() - start)
    mean_cpu = (time.process_time() - cpu_start) / repeats
    cores = len(os.sched_getaffinity(0))
    return {"size": size, "best_seconds": best, "flops_per_second": 2 * size**3 / best,
            "mean_process_cpu_seconds": mean_cpu, "usable_cores": cores,
            "flops_per_cpu_second_times_cores": 2 * size**3 / mean_cpu * cores}


def small_matmul_rate(rows: int, width: int, repeats: int = 200) -> dict[str, Any]:
    """The rate of one layer of the workloads' size, ``[rows, width] @ [width, width]``: far below the peak."""
    a = jnp.ones((rows, width), jnp.float32)
    w = jnp.ones((width, width), jnp.float32)
    layer = jax.jit(lambda x, y: jnp.tanh(x @ y))
    jax.block_until_ready(layer(a, w))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(layer(a, w))
        best = min(best, time.perf_counter() - start)
    return {"rows": rows, "width": width, "best_seconds": best, "flops_per_second": 2 * rows * width**2 / best}


def memory_bandwidth(mebibytes: int = 256, repeats: int = 10) -> dict[str, Any]:
    """Read + write bandwidth of an elementwise pass over a large float32 array."""
    x = jnp.ones((mebibytes * 2**20 // 4,), jnp.float32)
    scale = jax.jit(lambda v: v * 1.0001)
    jax.block_until_ready(scale(x))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(scale(x))
        best = min(best, time.perf_counter() - start)
    return {"bytes_moved": 2 * x.nbytes, "best_seconds": best, "bytes_per_second": 2 * x.nbytes / best}


def floors(flops: float, bytes_: float, rates: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Env steps/s no machine can beat: one step needs ``flops``.

    The floor is the compute bound at the machine's float32 rate (at the TF32 tensor-core rate too for
    the GPUs, which is where their matmuls run). ``bytes accessed`` is not a floor here: a step's arrays
    are small and stay in cache, so the time to stream them from main memory (reported as
    ``..._if_all_bytes_from_memory``) is an upper estimate of memory time, not a lower bound.
    """
    out = {}
    for machine, rate in rates.items():
        fp32_bound = rate["fp32_flops"] / flops
        out[machine] = {
            "env_steps_per_second_floor": fp32_bound,
            "env_steps_per_second_tf32_tensor_bound": rate["tf32_tensor_flops"] / flops
            if "tf32_tensor_flops" in rate else None,
            "env_steps_per_second_if_all_bytes_from_memory": rate["memory_bandwidth"] / bytes_,
        }
    return out


CPU_TIME_FLOOR = "this CPU (measured, CPU time x cores)"


def read_measured(path: str | None) -> dict[str, list[dict[str, Any]]]:
    """Per algorithm and seed count, measured env steps/s from ``throughput.py``'s JSON (if it exists)."""
    measured: dict[str, list[dict[str, Any]]] = {}
    if not path or not os.path.exists(path):
        return measured
    cores = len(os.sched_getaffinity(0))
    with open(path, encoding="utf-8") as handle:
        for entry in json.load(handle)["results"]:
            row = {"num_seeds": entry["num_seeds"], "env_steps_per_seed": entry["env_steps_per_seed"]}
            for lib in ("jaxppo", "rejax"):
                row[lib] = entry[lib]["env_steps_per_second"]
                cpu = [run["process_cpu_seconds"] for run in entry[lib]["runs"] if "process_cpu_seconds" in run]
                # Steps per second of the process's own CPU time, times the cores: the rate had the
                # process had the cores to itself (comparable with the CPU-time peak). Entries rebuilt
                # from a run log carry no CPU time.
                row[f"{lib}_per_cpu_second_times_cores"] = (
                    entry["num_seeds"] * entry["env_steps_per_seed"] / min(cpu) * cores if cpu else None)
            measured.setdefault(entry["algo"], []).append(row)
    return measured


def measured_shares(rows: list[dict[str, Any]], floor_table: dict[str, Any]) -> list[dict[str, Any]]:
    cpu_floor = floor_table[CPU_TIME_FLOOR]["env_steps_per_second_floor"]
    wall_floor = floor_table["this CPU (measured, wall)"]["env_steps_per_second_floor"]
    for row in rows:
        for lib in ("jaxppo", "rejax"):
            rate = row[f"{lib}_per_cpu_second_times_cores"]
            row[f"{lib}_share_of_cpu_floor"] = None if rate is None else rate / cpu_floor
            row[f"{lib}_wall_share_of_wall_floor"] = row[lib] / wall_floor
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", choices=["ppo", "dqn"], default=["ppo", "dqn"])
    parser.add_argument("--throughput", default=None, help="throughput.py JSON with measured env steps/s")
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "cost_model_cpu.json"))
    parser.add_argument("--shares-only", action="store_true",
                        help="compile and measure nothing: re-read --output and recompute the measured shares "
                             "of the floor from --throughput")
    args = parser.parse_args(argv)
    if args.shares_only:
        with open(args.output, encoding="utf-8") as handle:
            report = json.load(handle)
        for algo, entry in report["algorithms"].items():
            entry["measured"] = measured_shares(read_measured(args.throughput).get(algo, []), entry["floors"])
            entry["measured_from"] = os.path.relpath(args.throughput, os.path.dirname(HERE))
        common.write_json_atomic(args.output, report)
        print(json.dumps({a: e["measured"] for a, e in report["algorithms"].items()}, indent=1))
        return 0

    load_before = list(os.getloadavg())
    peak = matmul_peak()
    bandwidth = memory_bandwidth()
    small = {"ppo_minibatch_layer_16_seeds": small_matmul_rate(16 * 128, 64),
             "dqn_batch_layer_16_seeds": small_matmul_rate(16 * 128, 120)}
    rates = dict(PUBLISHED)
    rates["this CPU (measured, wall)"] = {"fp32_flops": peak["flops_per_second"],
                                          "memory_bandwidth": bandwidth["bytes_per_second"]}
    rates["this CPU (measured, CPU time x cores)"] = {"fp32_flops": peak["flops_per_cpu_second_times_cores"],
                                                      "memory_bandwidth": bandwidth["bytes_per_second"]}
    measured = read_measured(args.throughput)
    report: dict[str, Any] = {
        "benchmark": "cost_model", "machine": common.machine_info(),
        "versions": common.versions("jax", "jaxlib", "jaxppo"),
        "this_cpu": {"matmul_peak": peak, "memory_bandwidth": bandwidth, "small_matmuls": small},
        "published_rates": PUBLISHED, "algorithms": {},
    }
    for algo in args.algos:
        spec = throughput.SPECS[algo]
        config = spec.jaxppo_config(None)
        pieces, env_steps = (ppo_pieces if algo == "ppo" else dqn_pieces)(config)
        flops = sum(p["flops_per_update"] for p in pieces.values()) / env_steps
        bytes_ = sum(p["bytes_per_update"] for p in pieces.values()) / env_steps
        entry = {"env_steps_per_update": env_steps, "pieces": pieces,
                 "flops_per_env_step": flops, "bytes_per_env_step": bytes_,
                 "flops_share": {n: p["flops_per_update"] / (flops * env_steps) for n, p in pieces.items()},
                 "floors": floors(flops, bytes_, rates), "measured": measured.get(algo, [])}
        entry["measured"] = measured_shares(entry["measured"], entry["floors"])
        cpu_floor = entry["floors"][CPU_TIME_FLOOR]["env_steps_per_second_floor"]
        report["algorithms"][algo] = entry
        print(f"{algo}: {flops / 1e3:.1f} kflop and {bytes_ / 1e3:.1f} kB per env step (XLA cost analysis); "
              f"this CPU's floor {cpu_floor:,.0f} env steps/s (CPU time x cores); H100 "
              f"{entry['floors']['H100 SXM']['env_steps_per_second_floor']:.3g}")
        print(common.format_table(["piece", "x per update", "flops share", "kflop / update"],
                                  [[n, p["times_per_update"], f"{entry['flops_share'][n]:.1%}",
                                    p["flops_per_update"] / 1e3] for n, p in pieces.items()]))
        for row in entry["measured"]:
            print(f"  measured at {row['num_seeds']} seeds: jaxppo {row['jaxppo_share_of_cpu_floor']:.1%} of the "
                  f"floor, rejax {row['rejax_share_of_cpu_floor']:.1%}")
    report["load_average_before_after"] = [load_before, list(os.getloadavg())]
    print(f"CPU matmul peak {peak['flops_per_second'] / 1e9:.1f} GFLOP/s (wall), "
          f"{peak['flops_per_cpu_second_times_cores'] / 1e9:.1f} GFLOP/s (CPU time x cores), copy bandwidth "
          f"{bandwidth['bytes_per_second'] / 1e9:.1f} GB/s; layers of the workloads' size: "
          + ", ".join(f"{k} {v['flops_per_second'] / 1e9:.1f} GFLOP/s" for k, v in small.items()))
    common.write_json_atomic(args.output, report)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
