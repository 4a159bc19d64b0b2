"""Where one training chunk spends its time: XLA's per-op timing on CPU, grouped by what the op does.

The chunk is ``jax.jit(jax.vmap(train))`` for ``--seeds`` seeds and ``--updates`` updates (compiled and run
once untraced first). ``jax.profiler`` records one traced run; XLA's CPU runtime emits one event per
executed thunk (a fusion, a matmul, a copy, a loop), which ``jax.profiler.ProfileData`` reads back from
the trace without TensorBoard. Loops (``while``) and conditionals contain other thunks, so the table
counts *exclusive* time: each leaf thunk's own duration, attributed to the op that XLA's metadata names
(``op_name`` holds the JAX source path, e.g. ``.../vmap(jit(_threefry_split))/...``) or, for copies that
carry no metadata, to the loop that executed them.

Categories (first match on the op's own and its enclosing loops' ``op_name``):

* ``random numbers``  threefry hashing: on CPU jax lowers every ``split``, ``uniform``, ``categorical`` ...
  to a 5-iteration rolled ``while`` loop (``jax/_src/random/threefry2x32.py``), so each random call in
  a sequential loop costs a small loop of its own;
* ``shuffle sort``    the sort inside ``jax.random.permutation`` or ``jaxppo.shuffle`` (its ``minibatch_shuffle`` scope);
* ``matmul``          dense layers (``dot_general``; XLA:CPU runs them as ``ynn_fusion`` / ``dot``);
* ``loop copies``     copies XLA inserts to carry loop state from one iteration to the next;
* ``other``           everything else (env dynamics, losses, optimiser, metrics).

Times are wall-clock durations on the XLA thread pool (2 threads here, which can overlap), measured on a
loaded shared machine, so read the *shares*, not the absolute numbers.

    python benchmarks/profile_ops.py --algo ppo --seeds 16 --updates 20
    python benchmarks/profile_ops.py --algo dqn --seeds 16 --updates 2000
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402

import common  # noqa: E402

CATEGORIES = [
    ("random numbers", ("threefry", "random_bits", "_uniform", "_gumbel", "_randint", "random_split",
                        "_split", "rng_bit_generator")),
    ("shuffle sort", ("_shuffle", "permutation", "minibatch_shuffle")),
    ("matmul", ("dot_general",)),
]
_NESTING = ("while", "conditional", "call")


def _parse_hlo_metadata(hlo_text: str) -> dict[str, tuple[str, str]]:
    """instruction name -> (opcode, op_name metadata) for every instruction of the compiled HLO."""
    out: dict[str, tuple[str, str]] = {}
    pattern = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = \S+(?: \S+)*? ([\w\-]+)\(")
    for line in hlo_text.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        name, opcode = match.group(1), match.group(2)
        op_name = re.search(r'op_name="([^"]*)"', line)
        out[name] = (opcode, op_name.group(1) if op_name else "")
    return out


def _category(op_names: list[str], thunk: str) -> str:
    for label, needles in CATEGORIES:
        if any(any(needle in name for needle in needles) for name in op_names):
            return label
    if thunk.startswith("ynn_fusion") or thunk.startswith("dot"):
        return "matmul"
    if thunk.startswith("copy"):
        return "loop copies"
    return "other"


def exclusive_times(xspace_path: str, metadata: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """One row per leaf thunk name: count, total exclusive ns, category, op_name and enclosing loop."""
    from jax.profiler import ProfileData

    profile = ProfileData.from_file(xspace_path)
    rows: dict[str, dict[str, Any]] = {}
    for plane in profile.planes:
        for line in plane.lines:
            if "XLA" not in line.name:
                continue
            events = sorted(((e.start_ns, e.duration_ns, e.name) for e in line.events), key=lambda x: (x[0], -x[1]))
            stack: list[tuple[float, str]] = []  # (end_ns, name) of enclosing loops on this thread
            for start, duration, name in events:
                if name.startswith("end: ") or name.startswith("Threadpool") or name.startswith("ThunkExecutor"):
                    continue
                while stack and stack[-1][0] <= start:
                    stack.pop()
                if name.split(".")[0] in _NESTING:
                    stack.append((start + duration, name))
                    continue
                row = rows.get(name)
                if row is None:
                    opcode, op_name = metadata.get(name, ("?", ""))
                    enclosing = [metadata.get(n, ("", ""))[1] for _, n in reversed(stack)]
                    row = rows[name] = {
                        "thunk": name, "opcode": opcode, "op_name": op_name,
                        "enclosing_loop": stack[-1][1] if stack else None,
                        "category": _category([op_name] + enclosing[:1], name),
                        "count": 0, "total_ns": 0.0,
                    }
                row["count"] += 1
                row["total_ns"] += duration
    return sorted(rows.values(), key=lambda r: -r["total_ns"])


def build(algo: str, num_seeds: int, num_updates: int, library: str) -> tuple[Any, Any, int]:
    """(vmapped train function, keys, env steps per seed) for a short jaxppo or rejax run."""
    import throughput

    spec = throughput.SPECS[algo]
    if library == "jaxppo":
        config = spec.jaxppo_config(num_updates * spec.steps_per_update(spec.jaxppo_config(None)))
        train = spec.jaxppo_train(config)
    else:
        config = spec.jaxppo_config(num_updates * spec.steps_per_update(spec.jaxppo_config(None)))
        train = spec.rejax_algo(config, config.num_updates * spec.steps_per_update(config))[0].train
    keys = common.seed_keys(num_seeds)
    return jax.vmap(train), keys, config.num_updates * spec.steps_per_update(config)


def profile(algo: str, library: str, num_seeds: int, num_updates: int) -> dict[str, Any]:
    fn, keys, env_steps = build(algo, num_seeds, num_updates, library)
    compiled = jax.jit(fn).lower(keys).compile()
    metadata = _parse_hlo_metadata(compiled.as_text())
    jax.block_until_ready(compiled(keys))
    trace_dir = tempfile.mkdtemp(prefix=f"profile_{algo}_{library}_")
    jax.profiler.start_trace(trace_dir)
    start = time.perf_counter()
    jax.block_until_ready(compiled(keys))
    wall = time.perf_counter() - start
    jax.profiler.stop_trace()
    path = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True))[-1]
    rows = exclusive_times(path, metadata)
    total = sum(r["total_ns"] for r in rows)
    by_category = collections.Counter()
    for r in rows:
        by_category[r["category"]] += r["total_ns"]
    for r in rows:
        r["share"] = r["total_ns"] / total
        r["mean_us"] = r["total_ns"] / r["count"] / 1e3
    return {
        "algo": algo, "library": library, "num_seeds": num_seeds, "num_updates": num_updates,
        "env_steps_per_seed": env_steps, "traced_run_wall_seconds": wall,
        "leaf_thunk_seconds_total": total / 1e9,
        "thunks_executed": sum(r["count"] for r in rows),
        "thunks_per_update": sum(r["count"] for r in rows) / num_updates,
        "category_share": {k: v / total for k, v in by_category.most_common()},
        "top_ops": rows[:25],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algo", choices=["ppo", "dqn"], nargs="+", default=["ppo", "dqn"])
    parser.add_argument("--library", choices=["jaxppo", "rejax"], nargs="+", default=["jaxppo", "rejax"])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--updates", type=int, default=None, help="default: 20 (PPO), 2000 (DQN)")
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "profile_ops_cpu.json"))
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"benchmark": "profile_ops", "machine": common.machine_info(),
                              "versions": common.versions("jax", "jaxlib", "rejax", "jaxppo"), "profiles": []}
    for algo in args.algo:
        updates = args.updates or (20 if algo == "ppo" else 2000)
        for library in args.library:
            load_before = os.getloadavg()
            entry = profile(algo, library, args.seeds, updates)
            entry["load_average_before_after"] = [list(load_before), list(os.getloadavg())]
            report["profiles"].append(entry)
            print(f"\n{algo} {library} {args.seeds} seeds x {updates} updates: traced run "
                  f"{entry['traced_run_wall_seconds']:.2f} s, {entry['thunks_per_update']:.0f} thunks per update")
            print("  " + ", ".join(f"{k} {v:.0%}" for k, v in entry["category_share"].items()))
            print(common.format_table(
                ["op", "category", "count", "mean us", "share", "source"],
                [[r["thunk"], r["category"], r["count"], r["mean_us"], f"{r['share']:.1%}",
                  r["op_name"].split("/")[-1] if r["op_name"] else f"(in {r['enclosing_loop']})"]
                 for r in entry["top_ops"][:12]]))
            common.write_json_atomic(args.output, report)
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
