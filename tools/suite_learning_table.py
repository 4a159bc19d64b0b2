"""Rewrite the learning table in docs/envs.md from the committed suite-learning JSON.

    python tools/suite_learning_table.py

Reads every ``benchmarks/results/suite_learning_*.json`` (written by ``suite_learning.py``); for each
task the newest file that ran it supplies its row. The table goes between the suite-learning markers.
"""

from __future__ import annotations

import glob
import json
import os

from _markers import rewrite

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
BEGIN, END = "<!-- suite-learning:begin -->", "<!-- suite-learning:end -->"


def latest_rows() -> list[tuple[dict, dict, str]]:
    """``(run row, file, file name)`` per task, from the newest file that measured it."""
    rows: dict[str, tuple[dict, dict, str]] = {}
    for path in glob.glob(os.path.join(RESULTS, "suite_learning_*.json")):
        with open(path) as f:
            data = json.load(f)
        for run in data.get("runs", []):
            date = data["machine"]["date_utc"]
            if run["task"] not in rows or rows[run["task"]][1]["machine"]["date_utc"] < date:
                rows[run["task"]] = (run, data, os.path.basename(path))
    return sorted(rows.values(), key=lambda item: item[0]["task"])


def random_returns() -> dict[str, float]:
    """The measured random-policy returns (``benchmarks/diagnose_advice.py --random-returns-of``)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(RESULTS, "random_policy_returns*.json"))):
        with open(path) as f:
            out.update({env: row["mean"] for env, row in json.load(f)["returns"].items()})
    return out


def table() -> str:
    lines = ["| env | config | seeds x env steps | random policy | untrained return | final return, IQM [95% CI] "
             "| compile + run s | JSON |",
             "|---|---|---|---|---|---|---|---|"]
    randoms = random_returns()
    for run, data, name in latest_rows():
        random = randoms.get(run["task"])  # a variant ("... action_mask=false") has none measured
        final = run["final_return"]
        low, high = final["iqm_ci"]
        lines.append(f"| `{run['task']}` | `configs/{run['config']}.yaml` | {data['seeds']} x {run['env_steps']:,} "
                     f"| {'-' if random is None else format(random, '.3g')} | {run['untrained_return']:.3g} | {final['iqm']:.4g} [{low:.4g}, {high:.4g}] "
                     f"| {run['compile_s']:.0f} + {run['run_s']:.0f} | `{name}` |")
    cpus = sorted({data["machine"]["cpu_model"] + f" ({data['machine']['cpu_count_usable']} cores)"
                   for _, data, _ in latest_rows()})
    lines.append("")
    lines.append(f"Measured on {', '.join(cpus)} with `python benchmarks/suite_learning.py --seeds 8 --tasks TASK "
                 "--output benchmarks/results/<file>`; the random policy's return is measured over 256 episodes (uniform over "
                 "the legal actions where the env masks them, `benchmarks/results/random_policy_returns_suites.json`); "
                 "the untrained return is the median of the first "
                 "episodes that ended (for 1000-step episodes they span the first tens of updates), the final return the mean over the last 10% of updates "
                 "(`jaxppo.diagnosis.core.final_returns`).")
    return "\n".join(lines)


def main() -> None:
    rewrite(os.path.join(ROOT, "docs", "envs.md"), [(BEGIN, END, table())])


if __name__ == "__main__":
    main()
