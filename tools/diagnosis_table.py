"""Markdown tables of the diagnosis benchmark's JSON (for docs/stability.md).

    python tools/diagnosis_table.py benchmarks/results/diagnosis_cpu_8seeds.json \
        [benchmarks/results/diagnosis_verify_cpu_8seeds.json]
"""

from __future__ import annotations

import json
import sys


def summary_table(data: dict) -> str:
    s = data["summary"]
    rows = [
        ("failing seeds flagged", f"{s['failing_seeds_flagged']}/{s['failing_seeds']}",
         f"{s['failing_seeds_flagged'] / max(s['failing_seeds'], 1):.0%}", ">= 90%"),
        ("practitioner's cause ranked first (scenarios)", f"{s['cause_first_scenarios']}/{s['flagged_scenarios']}",
         f"{s['cause_first_scenarios'] / max(s['flagged_scenarios'], 1):.0%}", ">= 80%"),
        ("... in the top 2", f"{s['cause_top2_scenarios']}/{s['flagged_scenarios']}",
         f"{s['cause_top2_scenarios'] / max(s['flagged_scenarios'], 1):.0%}", ""),
        ("healthy runs' passing seeds flagged", f"{s['healthy_seeds_flagged']}/{s['healthy_scenario_passing_seeds']}",
         f"{s['healthy_seeds_flagged'] / max(s['healthy_scenario_passing_seeds'], 1):.0%}", "<= 1 in 16"),
        ("failure scenarios' passing seeds flagged",
         f"{s['failure_scenario_passing_seeds_flagged']}/{s['failure_scenario_passing_seeds']}",
         f"{s['failure_scenario_passing_seeds_flagged'] / max(s['failure_scenario_passing_seeds'], 1):.0%}", ""),
    ]
    lines = ["| measure | count | share | issue's target |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def scenario_table(data: dict) -> str:
    lines = ["| scenario | change | failing seeds | flagged | cause first | failures found (seeds) |",
             "|---|---|---|---|---|---|"]
    for r in data["scenarios"]:
        if r["kind"] == "healthy":
            continue
        counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items()) or "none"
        first = "-" if not r["flagged_failing_seeds"] else f"{r['cause_first_seeds']}/{r['flagged_failing_seeds']}"
        lines.append(f"| {r['name']} | `{' '.join(r['set'])}` | {r['failing_seeds']}/{len(r['healthy'])} | "
                     f"{r['flagged_failing_seeds']} | {first} | {counts} |")
    return "\n".join(lines)


def verify_table(data: dict) -> str:
    lines = ["| scenario | recommended (verified) | flagged seeds it fixes | its final-return IQM | unchanged IQM |",
             "|---|---|---|---|---|"]
    for r in data["scenarios"]:
        v = r.get("verify")
        if not v:
            continue
        best = next((c for c in v["candidates"] if c["name"] == v["recommended"]), None)
        iqm = f"{best['final_return']['iqm']:.4g}" if best else "-"
        lines.append(f"| {r['name']} | `{v['recommended']}` | {v['flagged_fixed']}/{v['flagged']} | {iqm} | "
                     f"{r['final_return_iqm']:.4g} |")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        main = json.load(handle)
    print(summary_table(main), "", scenario_table(main), sep="\n")
    if len(sys.argv) > 2:
        with open(sys.argv[2], encoding="utf-8") as handle:
            print("", verify_table(json.load(handle)), sep="\n")
