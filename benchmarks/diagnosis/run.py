"""The diagnosis benchmark: labelled failure scenarios and healthy runs, trained and diagnosed.

    python benchmarks/diagnosis/run.py --seeds 8 --output benchmarks/results/diagnosis_cpu.json
    python benchmarks/diagnosis/run.py --seeds 8 --verify --only ppo_cartpole_lr_0.1 ...

For every scenario in ``scenarios.yaml`` it trains the seeds as one program, runs ``jaxppo.diagnose``
and records, independently of the detectors:

* failing seeds: a seed of a failure scenario whose final return is below half way from the env's
  random-policy return to the IQM of the env's healthy scenario at the same length (measured in the
  same run), so "failing" is judged by the return alone;
* flagged: a failing seed with at least one failure finding;
* cause first / top 2: the scenario's practitioner cause (a config field) is the field of the first
  (of the first two) ranked hypotheses of the flagged seed's likely cause; a scenario counts when
  most of its flagged seeds agree;
* healthy seeds flagged: failures found on the healthy scenarios' seeds;
* with ``--verify``: ``jaxppo.diagnosis.verify`` on the scenario's own seeds, and the share of
  flagged seeds that its recommendation fixes.

The JSON is rewritten after every scenario, so a cut-short run keeps what it finished.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import common  # noqa: E402  (benchmarks/common.py: machine description)

import jaxppo  # noqa: E402
from jaxppo import programs  # noqa: E402
from jaxppo.diagnosis.core import diagnose, env_facts, final_returns  # noqa: E402
from jaxppo.run_io import atomic_write_json  # noqa: E402
from jaxppo.stats import interquartile_mean  # noqa: E402


def load_scenarios(path: str) -> tuple[dict, list[dict]]:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return data["defaults"], data["scenarios"]


def build_config(defaults: dict, scenario: dict) -> Any:
    env = defaults[scenario["env"]]
    base = jaxppo.load_config(scenario.get("config", env["config"]))
    overrides = [f"total_timesteps={env['steps']}", "run.eval_interval=0"] + list(scenario.get("set", []))
    return jaxppo.apply_overrides(base, overrides)


def _fields(hypothesis: Any) -> set[str]:
    return {item.split("=", 1)[0] for item in hypothesis.suggestion} | set(hypothesis.fields)


def judge_seeds(diagnosis: Any, failing: np.ndarray, causes: list[str]) -> dict:
    flagged = [s for s in diagnosis.seeds if failing[s.seed] and not s.healthy]
    first = top2 = 0
    for seed in flagged:
        hypotheses = seed.primary.hypotheses if seed.primary else ()
        if hypotheses and _fields(hypotheses[0]) & set(causes):
            first += 1
        if any(_fields(h) & set(causes) for h in hypotheses[:2]):
            top2 += 1
    return {"failing_seeds": int(failing.sum()), "flagged_failing_seeds": len(flagged),
            "cause_first_seeds": first, "cause_top2_seeds": top2,
            "cause_first": bool(flagged) and first * 2 > len(flagged),
            "cause_top2": bool(flagged) and top2 * 2 > len(flagged),
            "primary": [s.primary.name if s.primary else None for s in diagnosis.seeds],
            "first_suggestion": [list(s.suggestion) for s in diagnosis.seeds]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=os.path.join(HERE, "scenarios.yaml"))
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=None, help="scenario names (healthy references are added)")
    parser.add_argument("--verify", action="store_true", help="also verify the advice on each failure scenario")
    parser.add_argument("--verify-fraction", type=float, default=1.0)
    parser.add_argument("--output", required=True)
    parser.add_argument("--rescore", action="store_true", help="recompute --output's summary without training")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="train nothing: join these files' scenarios (parts run as separate jobs, each "
                             "with its own healthy references) into --output, with one summary")
    args = parser.parse_args()
    if args.rescore:
        rescore(args.output)
        return
    if args.merge:
        merge(args.merge, args.output)
        return

    defaults, scenarios = load_scenarios(args.scenarios)
    if args.only:
        wanted = set(args.only)
        needed_envs = {s["env"] for s in scenarios if s["name"] in wanted}
        scenarios = [s for s in scenarios if s["name"] in wanted
                     or (s["name"].startswith("healthy_") and s["env"] in needed_envs)]
    # Healthy references first: they give each env's reference level.
    scenarios.sort(key=lambda s: (not s["name"].startswith("healthy_"), s["kind"] != "healthy"))
    keys = programs.seed_keys(args.seed, args.seeds)
    out: dict[str, Any] = {"benchmark": "diagnosis", "machine": common.machine_info(),
                           "command": " ".join(["python"] + sys.argv), "seeds": args.seeds, "scenarios": []}
    reference: dict[str, float] = {}
    for scenario in scenarios:
        config = build_config(defaults, scenario)
        start = time.perf_counter()
        metrics, compile_s, run_s, _ = programs.train_stacked([config], keys)
        metrics = {name: value[0] for name, value in metrics.items()}
        diagnosis = diagnose(metrics, config)
        finals = final_returns(metrics)
        facts = env_facts(config)
        row: dict[str, Any] = {"name": scenario["name"], "kind": scenario["kind"], "env": config.env,
                               "algorithm": config.algorithm, "set": scenario.get("set", []),
                               "cause": scenario.get("cause", []), "fix": scenario.get("fix", []),
                               "env_steps": config.total_timesteps, "compile_s": compile_s, "run_s": run_s,
                               "final_returns": [float(x) if np.isfinite(x) else None for x in finals],
                               "final_return_iqm": float(interquartile_mean(np.nan_to_num(finals, nan=-1e30))),
                               "healthy": diagnosis.healthy.tolist(),
                               "counts": {k: v for k, v in diagnosis.counts.items() if v},
                               "warning_counts": {k: v for k, v in diagnosis.warning_counts.items() if v}}
        if scenario["name"].startswith("healthy_"):
            reference[scenario["env"]] = row["final_return_iqm"]
        level = reference.get(scenario["env"])
        random = facts.random_return
        if level is None or random is None:
            raise SystemExit(f"no reference level for {scenario['env']}: run its healthy scenario too")
        threshold = random + 0.5 * (level - random)
        failing = ~(np.nan_to_num(finals, nan=-np.inf) >= threshold)
        row["failing_threshold"] = threshold
        # Seeds that pass by their return: any failure found on them is a false positive.
        row["passing_seeds"] = int((~failing).sum())
        row["passing_seeds_flagged"] = int((~failing & ~diagnosis.healthy).sum())
        if scenario["kind"] == "healthy":
            row["healthy_seeds_flagged"] = row["passing_seeds_flagged"]
            row["failing_seeds_in_healthy_scenario"] = int(failing.sum())
        else:
            row.update(judge_seeds(diagnosis, failing, scenario.get("cause", [])))
            if args.verify and row["flagged_failing_seeds"]:
                from jaxppo.diagnosis.verify import verify

                verification = verify(config, diagnosis, seed=args.seed, num_seeds=args.seeds,
                                      fraction=args.verify_fraction)
                flagged = np.array([failing[i] and not diagnosis.healthy[i] for i in range(args.seeds)])
                best = next((r for r in verification.results if r.name == verification.recommended), None)
                fixed = int(np.sum(flagged & np.asarray(best.healthy))) if best is not None else 0
                row["verify"] = {"recommended": verification.recommended, "reason": verification.reason,
                                 "flagged_fixed": fixed, "flagged": int(flagged.sum()),
                                 "fix_rate": fixed / max(int(flagged.sum()), 1),
                                 "candidates": [r.to_dict() for r in verification.results]}
        row["wall_s"] = time.perf_counter() - start
        out["scenarios"].append(row)
        out["summary"] = summarize(out["scenarios"])
        atomic_write_json(args.output, out)
        print(f"{scenario['name']:<44} {row.get('flagged_failing_seeds', '-')}/{row.get('failing_seeds', '-')} "
              f"flagged, first={row.get('cause_first', '-')}, healthy flagged={row.get('healthy_seeds_flagged', '-')} "
              f"iqm={row['final_return_iqm']:.4g} ({row['wall_s']:.0f} s)", flush=True)


def rescore(path: str) -> None:
    """Recomputes the return-based fields and the summary of a finished JSON from its per-seed data
    (final returns, health, the healthy references), without training: for files written before a
    field existed."""
    import json

    from jaxppo.config import load_config

    with open(path, encoding="utf-8") as handle:
        out = json.load(handle)
    defaults, _ = load_scenarios(os.path.join(HERE, "scenarios.yaml"))
    reference = {r["name"][len("healthy_"):]: r["final_return_iqm"] for r in out["scenarios"]
                 if r["name"].startswith("healthy_")}
    for row in out["scenarios"]:
        env_key = next(key for key, value in defaults.items()
                       if load_config(value["config"]).env == row["env"] and load_config(value["config"]).algorithm
                       == row["algorithm"])
        random = env_facts(load_config(defaults[env_key]["config"])).random_return
        threshold = random + 0.5 * (reference[env_key] - random)
        finals = np.array([np.nan if x is None else x for x in row["final_returns"]])
        failing = ~(np.nan_to_num(finals, nan=-np.inf) >= threshold)
        healthy = np.asarray(row["healthy"], bool)
        row["failing_threshold"] = threshold
        row["passing_seeds"] = int((~failing).sum())
        row["passing_seeds_flagged"] = int((~failing & ~healthy).sum())
        if row["kind"] == "healthy":
            row["healthy_seeds_flagged"] = row["passing_seeds_flagged"]
            row["failing_seeds_in_healthy_scenario"] = int(failing.sum())
    out["summary"] = summarize(out["scenarios"])
    out["rescored_with"] = "python benchmarks/diagnosis/run.py --rescore " + path
    atomic_write_json(path, out)


def merge(paths: list[str], output: str) -> None:
    """One JSON from parts: every scenario once (a healthy reference run in several parts is kept from the
    first), the parts' machine records and commands, and the summary over all of them."""
    import json

    rows: list[dict] = []
    parts = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            part = json.load(handle)
        parts.append({"file": os.path.basename(path), "command": part["command"], "machine": part["machine"]})
        seen = {row["name"] for row in rows}
        rows += [row for row in part["scenarios"] if row["name"] not in seen]
        seeds = part["seeds"]
    out = {"benchmark": "diagnosis", "machine": parts[0]["machine"], "seeds": seeds,
           "command": "python benchmarks/diagnosis/run.py --merge " + " ".join(paths) + " --output " + output,
           "parts": parts, "scenarios": rows, "summary": summarize(rows)}
    atomic_write_json(output, out)


def summarize(rows: list[dict]) -> dict:
    failures = [r for r in rows if r["kind"] == "failure"]
    with_failing = [r for r in failures if r["failing_seeds"]]
    flagged_scenarios = [r for r in with_failing if r["flagged_failing_seeds"]]
    healthy = [r for r in rows if r["kind"] == "healthy"]
    verified = [r for r in with_failing if "verify" in r]
    return {
        "failure_scenarios": len(failures),
        "failure_scenarios_with_failing_seeds": len(with_failing),
        "failing_seeds": sum(r["failing_seeds"] for r in failures),
        "failing_seeds_flagged": sum(r["flagged_failing_seeds"] for r in failures),
        "cause_first_scenarios": sum(bool(r["cause_first"]) for r in flagged_scenarios),
        "cause_top2_scenarios": sum(bool(r["cause_top2"]) for r in flagged_scenarios),
        "flagged_scenarios": len(flagged_scenarios),
        "healthy_scenarios": len(healthy),
        "healthy_scenario_passing_seeds": sum(r.get("passing_seeds", 0) for r in healthy),
        "healthy_seeds_flagged": sum(r["healthy_seeds_flagged"] for r in healthy),
        "failure_scenario_passing_seeds": sum(r.get("passing_seeds", 0) for r in failures),
        "failure_scenario_passing_seeds_flagged": sum(r.get("passing_seeds_flagged", 0) for r in failures),
        "verified_scenarios": len(verified),
        "verified_scenarios_fixing_75pct": sum(r["verify"]["fix_rate"] >= 0.75 for r in verified),
    }


if __name__ == "__main__":
    main()
