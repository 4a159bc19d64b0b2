"""Rewrite the memory-task table in docs/memory.md from the committed memory-task JSON.

    python tools/memory_table.py

Reads every ``benchmarks/results/memory_tasks_*.json`` (written by ``benchmarks/memory_tasks.py``); for
each (algorithm, task, memory) the newest file that ran it supplies the row. The table goes between the
memory-table markers.
"""

from __future__ import annotations

import glob
import json
import os

from _markers import rewrite

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
BEGIN, END = "<!-- memory-table:begin -->", "<!-- memory-table:end -->"
THROUGHPUT_BEGIN, THROUGHPUT_END = "<!-- recurrent-throughput:begin -->", "<!-- recurrent-throughput:end -->"
POLICY = {"gru": "GRU", "none": "feed-forward"}


def latest_rows() -> list[tuple[dict, dict, str]]:
    """``(run row, file, file name)`` per (algorithm, task, memory), from the newest file that measured it."""
    rows: dict[tuple, tuple[dict, dict, str]] = {}
    for path in sorted(glob.glob(os.path.join(RESULTS, "memory_tasks_*.json"))):
        with open(path) as f:
            data = json.load(f)
        for run in data.get("runs", []):
            algorithm = run.get("algorithm", run["config"].split("_", 1)[0])  # older files: the config's prefix
            key = (algorithm, run["task"], run["memory"], run["env_steps"])
            date = data["machine"]["date_utc"]
            if key not in rows or rows[key][1]["machine"]["date_utc"] < date:
                rows[key] = ({**run, "algorithm": algorithm}, data, os.path.basename(path))
    order = {"gru": 0, "none": 1}
    return sorted(rows.values(), key=lambda item: (item[0]["algorithm"] != "ppo", item[0]["task"] != "MemoryChain-bsuite",
                                                   item[0]["task"], item[0]["env_steps"], order[item[0]["memory"]]))


def table() -> str:
    lines = ["| algorithm | task | policy | seeds x env steps | final return IQM [95% CI] | seeds solved "
             "| healthy (diagnose) | env steps/s | JSON |",
             "|---|---|---|---|---|---|---|---|---|"]
    commands = []
    for run, data, name in latest_rows():
        final = run["final_return"]
        low, high = final["iqm_ci"]
        lines.append(f"| {run['algorithm'].upper()} | {run['task']} | {POLICY[run['memory']]} | {data['seeds']} x "
                     f"{run['env_steps']:,} | {final['iqm']:.3g} [{low:.3g}, {high:.3g}] | {run['solved_seeds']}/"
                     f"{data['seeds']} (>= {run['solved_return']:g}) | {run['healthy_seeds']}/{data['seeds']} "
                     f"| {run['env_steps_per_s']:,.0f} | `{name}` |")
        if data["command"] not in commands:
            commands.append(data["command"])
    cpus = sorted({data["machine"]["cpu_model"] + f" ({data['machine']['cpu_count_usable']} cores)"
                   for _, data, _ in latest_rows()})
    lines.append("")
    lines.append(f"Measured on {', '.join(cpus)} with " + " and ".join(f"`{c}`" for c in commands)
                 + ": each policy trains the same seeds' keys as one program; the final return is the mean over "
                 "the last 10% of updates (`jaxppo.diagnosis.core.final_returns`), and env steps/s counts all "
                 "seeds, compilation excluded.")
    return "\n".join(lines)


def throughput_table() -> str:
    """From ``benchmarks/results/recurrent_throughput_cpu.json`` (``benchmarks/recurrent_throughput.py``)."""
    path = os.path.join(RESULTS, "recurrent_throughput_cpu.json")
    if not os.path.exists(path):
        return "(not measured yet)"
    with open(path) as f:
        data = json.load(f)
    lines = ["| seeds x env steps per seed | jaxppo env steps/s | PureJaxRL PPO-RNN env steps/s | jaxppo / PureJaxRL "
             "| compile s, jaxppo / PureJaxRL | runs each |", "|---|---|---|---|---|---|"]
    for row in data["results"]:
        ours, theirs = row["jaxppo"], row["purejaxrl"]
        lines.append(f"| {ours['num_seeds']} x {ours['env_steps_per_seed']:,} | {ours['env_steps_per_second']:,.0f} "
                     f"| {theirs['env_steps_per_second']:,.0f} | **{row['speedup']:.2f}x** | "
                     f"{ours['total_compile_seconds']:.0f} / {theirs['total_compile_seconds']:.0f} | {len(ours['run_seconds'])} |")
    machine = data["machine"]
    lines += ["", f"`{data['command']}` on {machine['cpu_model']} ({machine['cpu_count_usable']} cores), "
              f"{machine['date_utc'][:10]}, env `{data['env']}`; best run of each, compilation excluded "
              "(`benchmarks/results/recurrent_throughput_cpu.json`)."]
    return "\n".join(lines)


def main() -> None:
    rewrite(os.path.join(ROOT, "docs", "memory.md"), [(BEGIN, END, table()),
                                                      (THROUGHPUT_BEGIN, THROUGHPUT_END, throughput_table())])


if __name__ == "__main__":
    main()
