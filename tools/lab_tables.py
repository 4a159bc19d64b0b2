"""Regenerate the lab's headline tables (docs/lab.md) from the lab's results.json files (never typed by hand).

    python tools/lab_tables.py                 # rewrite docs/lab.md between the lab markers
    python tools/lab_tables.py --print         # print the tables instead

Reads ``docs/lab/<grid>/results.json`` as ``jaxppo lab`` writes them and builds three tables:
per debugging report, the failure rate (share of seeds with any pathology) with the failure config and
with its fix; the reward-scale table; the throughput cost of each control. A grid that has not been
run yet is listed as such.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- lab-tables:begin -->", "<!-- lab-tables:end -->"
SCALE_SETTINGS = ("value_clipping", "return_normalization", "reward_normalization", "observation_normalization",
                  "advantage_normalization", "max_grad_norm", "loss", "td_target_clip")
# (grid, heading, the default's variant name, what that variant is) for each reward-scale table.
REWARD_SCALE_TABLES = [
    ("reward_scale", "Reward scale: the default config against the peers' usual settings", "jaxppo_default",
     "`PPOConfig()`"),
    ("reward_scale_acrobot", "Reward scale on Acrobot with its own hyperparameters: PPOConfig()'s value side "
     "against PureJaxRL's", "jaxppo_default", "`ppo_acrobot.yaml` on `PPOConfig()`"),
    ("reward_scale_pendulum", "Reward scale on Pendulum with its own hyperparameters: PPOConfig()'s value side "
     "against PureJaxRL's", "jaxppo_default", "`ppo_pendulum.yaml` on `PPOConfig()`"),
    ("reward_scale_intrusion", "Reward scale on the stress env (IntrusionDetection-v0): PPOConfig() against "
     "PureJaxRL's value side", "jaxppo_default", "`PPOConfig()`"),
    ("reward_scale_dqn", "Reward scale, DQN: the default against CleanRL's value side", "dqn_default", "`DQNConfig()`"),
    ("reward_scale_brax", "Reward scale on a MuJoCo-style task (brax's inverted_pendulum): PPOConfig()'s value side "
     "against PureJaxRL's and report 004's raw returns", "jaxppo_default",
     "`ppo_brax_inverted_pendulum.yaml` on `PPOConfig()`"),
]
REPORTS = [("report000", "000"), ("report001", "001"), ("report002", "002"), ("report003", "003"), ("report004", "004")]


def load(lab_dir: str, grid: str) -> Optional[dict]:
    path = os.path.join(lab_dir, grid, "results.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def fmt(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-2):
        return f"{value:.2e}"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def failure_rate(record: dict) -> str:
    healthy = sum(record["per_seed"]["healthy"])
    failed = record["num_seeds"] - healthy
    return f"{100 * failed / record['num_seeds']:.0f}% ({failed}/{record['num_seeds']})"


def main_pathologies(record: dict, top: int = 2) -> str:
    ranked = sorted(((v, k) for k, v in record["pathology_seeds"].items() if v > 0), reverse=True)[:top]
    return ", ".join(f"{name} {count}" for count, name in ranked) or "none"


def iqm(record: dict) -> str:
    final = record["final_return"]
    low, high = final.get("iqm_ci") or [None, None]
    return f"{fmt(final.get('iqm'))} [{fmt(low)}, {fmt(high)}]"


def budget(results: dict) -> str:
    steps = sorted({c["env_steps_per_seed"] for c in results["cells"]})
    return "/".join(f"{s:,}" for s in steps)


def throughput(record: dict, reference: Optional[dict]) -> str:
    """Wall-time env steps/s, and the ratio to ``reference`` in env steps per CPU second when both have it
    (steadier on a shared machine), else in wall time."""
    text = f"{record['env_steps_per_s']:,.0f}"
    if reference is None or reference is record:
        return text
    key = "env_steps_per_cpu_s" if record.get("env_steps_per_cpu_s") and reference.get("env_steps_per_cpu_s") \
        else "env_steps_per_s"
    unit = "per CPU second" if key == "env_steps_per_cpu_s" else "per wall second"
    # The count is per wall second; the ratio may be per CPU second: say so in the cell, not only the header.
    return f"{text} ({record[key] / reference[key]:.2f}x {unit})"


def report_table(lab_dir: str) -> list[str]:
    lines = ["| report | variant | env (reward scale) | seeds x env steps | failure rate | main pathologies (seeds) "
             "| final return IQM [95% CI] | env steps per wall s (ratio to the failure) |", "|---|---|---|---|---|---|---|---|"]
    for grid, report in REPORTS:
        results = load(lab_dir, grid)
        if results is None or not results["cells"]:
            lines.append(f"| {report} | not run yet (`jaxppo lab {grid}`) | | | | | | |")
            continue
        cells = results["cells"]
        failures = {(c["env"], c["reward_scale"]): c for c in cells if c["variant"] == "failure"}
        for record in cells:
            speed = throughput(record, failures.get((record["env"], record["reward_scale"])))
            lines.append(
                f"| [{report}](docs/lab/{grid}/results.md) | {record['variant']} | {record['env']} "
                f"(x{record['reward_scale']:g}) | {record['num_seeds']} x {record['env_steps_per_seed']:,} "
                f"| {failure_rate(record)} | {main_pathologies(record)} | {iqm(record)} | {speed} |")
    return lines


def reward_scale_table(lab_dir: str, grid: str = "reward_scale", default_variant: str = "jaxppo_default",
                       default_class: str = "`PPOConfig()`") -> list[str]:
    results = load(lab_dir, grid)
    if results is None or not results["cells"]:
        return [f"Not run yet: `jaxppo lab {grid} --out docs/lab/{grid}`."]
    scales = sorted({c["reward_scale"] for c in results["cells"]})
    lines = [f"Share of healthy seeds, and final return IQM in the env's units, {results['grid']['num_seeds']} seeds x "
             f"{budget(results)} env steps ([full table](docs/lab/{grid}/results.md)):", "",
             "| variant | env | " + " | ".join(f"reward x{s:g}" for s in scales) + " |",
             "|---|---|" + "---|" * len(scales)]
    rows: dict[tuple, dict] = {}
    for record in results["cells"]:
        rows.setdefault((record["variant"], record["env"]), {})[record["reward_scale"]] = record
    for (variant, env), by_scale in rows.items():
        cells = []
        for scale in scales:
            record = by_scale.get(scale)
            cells.append("n/a" if record is None else
                         f"{100 * record['healthy_share']:.0f}% healthy, {fmt(record['final_return'].get('iqm'))}")
        lines.append(f"| {variant} | {env} | " + " | ".join(cells) + " |")
    default = next((c for c in results["cells"] if c["variant"] == default_variant), None)
    if default is not None:
        config = default["config"]
        settings = ", ".join(f"`{k}: {config[k]}`" for k in SCALE_SETTINGS if k in config)
        commit = (default.get("git_commit") or "unknown")[:7]
        lines += ["", f"`{default_variant}` is {default_class} as it stood when the grid ran (commit {commit}): "
                      f"{settings}."]
    return lines


def control_cost_table(lab_dir: str) -> list[str]:
    results = load(lab_dir, "implementation_details")
    if results is None or not results["cells"]:
        return ["Not run yet: `jaxppo lab implementation_details --out docs/lab/implementation_details`."]
    reference = {c["env"]: c for c in results["cells"] if c["variant"] == "all_on"}
    lines = [f"Each control turned off alone from `all_on` (PureJaxRL's PPO plus observation normalisation), "
             f"{results['grid']['num_seeds']} seeds x {budget(results)} env steps; throughput is the whole "
             "seed-vmapped program's ([full table](docs/lab/implementation_details/results.md)):", "",
             "| variant | env | env steps per wall s (ratio to all_on) | healthy | final return IQM [95% CI] |",
             "|---|---|---|---|---|"]
    for record in results["cells"]:
        lines.append(f"| {record['variant']} | {record['env']} | {throughput(record, reference.get(record['env']))} | "
                     f"{100 * record['healthy_share']:.0f}% | {iqm(record)} |")
    run_s = [c["run_s"] for c in results["cells"]]
    loads = [c["program"].get("load_average_before", [None])[0] for c in results["cells"]
             if c.get("program", {}).get("load_average_before")]
    lines += ["", f"The programs ran {min(run_s):.0f}-{max(run_s):.0f} s each"
              + (f", at a 1-minute load average of {min(loads):.1f}-{max(loads):.1f} on "
                 f"{results.get('machine', {}).get('cpu_count', '?')} CPUs" if loads else "")
              + ": read throughput ratios against that noise, not as a property of the control."]
    return lines


def tables(lab_dir: str) -> str:
    lines = ["Generated by `python tools/lab_tables.py` from `docs/lab/*/results.json`; "
             "[docs/lab.md](docs/lab.md) says how to read them. A seed fails when `jaxppo.diagnose` finds any "
             "pathology in it.", "", "**Debugging reports: failure rate with the failure config and with its fix**", ""]
    lines += report_table(lab_dir)
    for grid, heading, default_variant, default_class in REWARD_SCALE_TABLES:
        lines += ["", f"**{heading}**", ""]
        lines += reward_scale_table(lab_dir, grid, default_variant, default_class)
    lines += ["", "**Throughput cost of each control**", ""]
    lines += control_cost_table(lab_dir)
    return "\n".join(lines) + "\n"


def relative_links(text: str, folder: str) -> str:
    """The tables' links (written from the repository root) made relative to ``folder``."""
    docs = os.path.relpath(os.path.join(ROOT, "docs"), folder)
    prefix = "" if docs == "." else docs + "/"
    return text.replace("](docs/", f"]({prefix}")


def rewrite_readme(readme: str, text: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} section to rewrite.")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{text}{END}{tail}"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-dir", default=os.path.join(ROOT, "docs", "lab"))
    parser.add_argument("--readme", default=os.path.join(ROOT, "docs", "lab.md"),
                        help="the Markdown file whose lab markers are rewritten (default: docs/lab.md)")
    parser.add_argument("--print", action="store_true", help="print the tables, do not touch any file")
    args = parser.parse_args(argv)
    text = relative_links(tables(args.lab_dir), os.path.dirname(os.path.abspath(args.readme)))
    if args.print:
        sys.stdout.write(text)
        return 0
    with open(args.readme, encoding="utf-8") as handle:
        readme = handle.read()
    sys.path.insert(0, ROOT)
    from jaxppo.run_io import atomic_write_text

    atomic_write_text(args.readme, rewrite_readme(readme, text))
    print(f"rewrote the lab tables in {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
