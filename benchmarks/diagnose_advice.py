"""Does the advice of ``jaxppo diagnose`` work? And how often does it cry wolf on healthy runs?

For each debugging report's failure config this trains ``--seeds`` seeds (keys ``split(PRNGKey(0), N)``),
diagnoses them, and re-trains with the ``--set`` line that the diagnosis suggests for the report's
detector (the same keys, so seed ``i`` of the fix run is seed ``i`` of the failure run with only the
suggested keys changed). It records, per report:

* ``share_flagged_failure``: seeds the matching detector flags on the failure config;
* ``share_flagged_fix``: seeds it flags on the suggested fix config;
* ``share_fixed``: of the flagged seeds, those no longer flagged after the change;
* final-return IQM (95% bootstrap CI) and solved share before and after, and every pathology count,
  so a fix that trades one pathology for another shows.

Then the false-positive rate on the healthy default configs (``ppo_cartpole``, ``ppo_acrobot``,
``ppo_pendulum``): the share of seeds with any finding, and for CartPole whether a seed that ends
solved is ever flagged.

    python benchmarks/diagnose_advice.py --seeds 16                  # ~1 h on 2 busy cores
    python benchmarks/diagnose_advice.py --seeds 16 --rediagnose     # re-read cached metrics only

Results go to ``benchmarks/results/diagnose_advice.json`` after every run, so an interrupted
benchmark keeps what it finished. Trained metrics are cached in ``--cache`` (one ``.npz`` per run) so
that a re-diagnosis after a threshold change costs nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import jaxppo  # noqa: E402
from jaxppo import stats  # noqa: E402
from jaxppo.config import apply_overrides, config_to_dict  # noqa: E402
from jaxppo.diagnosis.core import diagnose, final_returns  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (report, failure config, overrides, the detector the report is about, what the report describes)
# The Pendulum cases run 100k env steps (their configs say 300k): on the shared 2-core CPU a 300k run
# of 16 seeds took 26 minutes. Every detector below fires within the first 10% of a run, and failure
# and fix always run the same budget.
SHORT = ["total_timesteps=100000"]
CASES = [
    ("000", "ppo_report000_absolute_clip", SHORT, "value_clip_saturated",
     "absolute value clipping at 0.2 against returns near -1000 (Pendulum)"),
    ("001", "ppo_cartpole", ["learning_rate=1e-8", "total_timesteps=100000"], "frozen_policy",
     "a policy that never moves: learning rate 1e-8 (CartPole)"),
    ("003", "ppo_report003_batch_return_norm", SHORT, "value_loss_stuck",
     "Monte Carlo returns normalised per batch (Pendulum)"),
    ("004", "ppo_report004_raw_returns", SHORT, "value_loss_explosion",
     "raw Monte Carlo returns near -1000 without normalisation (Pendulum)"),
    ("002", "dqn_cartpole_cleanrl", ["loss=huber", "total_timesteps=100000"], "q_divergence",
     "Huber-loss DQN whose Q-values explode (CartPole, gradient clipping on)"),
]
HEALTHY = ["ppo_cartpole", "ppo_acrobot", "ppo_pendulum"]


def load(name: str, overrides: list[str], total_timesteps: Optional[int]) -> Any:
    config = jaxppo.load_config(os.path.join(ROOT, "configs", name + ".yaml"))
    if overrides:
        config = apply_overrides(config, list(overrides))
    if total_timesteps is not None and not any(o.startswith("total_timesteps=") for o in overrides):
        config = config.replace(total_timesteps=total_timesteps)
    return config


class NotCached(Exception):
    """--rediagnose met a run that was never trained (the benchmark was stopped before it)."""


def train_cached(config: Any, num_seeds: int, cache: str, rediagnose: bool) -> tuple[dict, float]:
    """Per-seed metrics of ``num_seeds`` seeds (keys split(PRNGKey(0), N)), from the cache when there."""
    text = json.dumps({"config": config_to_dict(config), "num_seeds": num_seeds, "seed": 0}, sort_keys=True)
    path = os.path.join(cache, hashlib.sha1(text.encode()).hexdigest()[:16] + ".npz")
    if os.path.exists(path):
        with np.load(path) as data:
            return {k: data[k] for k in data.files}, 0.0
    if rediagnose:
        raise NotCached(f"no cached metrics for {config.env}")
    start = time.perf_counter()
    _, metrics = jaxppo.train(config, num_seeds=num_seeds, seed=0)
    metrics = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
    seconds = time.perf_counter() - start
    os.makedirs(cache, exist_ok=True)
    np.savez(path + ".tmp.npz", **metrics)
    os.replace(path + ".tmp.npz", path)
    return metrics, seconds


def describe(metrics: dict, config: Any) -> tuple[dict, Any]:
    diagnosis = diagnose(metrics, config)
    finals = final_returns(metrics)
    record: dict[str, Any] = {
        "num_seeds": diagnosis.num_seeds,
        "num_healthy": diagnosis.num_healthy,
        "counts": {k: v for k, v in diagnosis.counts.items() if v},
        "final_return": stats.summarize_seeds(finals),
    }
    if diagnosis.solved_return is not None:
        solved = np.nan_to_num(finals, nan=-np.inf) >= diagnosis.solved_return
        record["solved_threshold"] = diagnosis.solved_return
        record["share_solved"] = stats.share(solved)
        flagged = ~diagnosis.healthy
        record["solved_but_flagged"] = [int(i) for i in np.flatnonzero(solved & flagged)]
    return record, diagnosis


def run_case(report: str, name: str, overrides: list[str], detector: str, story: str, args: argparse.Namespace
             ) -> dict:
    config = load(name, overrides, args.total_timesteps)
    metrics, seconds = train_cached(config, args.seeds, args.cache, args.rediagnose)
    failure, diagnosis = describe(metrics, config)
    flagged = diagnosis.flagged(detector)
    record: dict[str, Any] = {
        "report": report, "story": story, "config": name, "overrides": overrides,
        "total_timesteps": config.total_timesteps, "detector": detector, "train_seconds_failure": seconds,
        "share_flagged_failure": stats.share(flagged), "flagged_seeds": [int(i) for i in np.flatnonzero(flagged)],
        "failure": failure,
    }
    suggestions: dict[tuple[str, ...], list[int]] = {}
    for index in np.flatnonzero(flagged):
        finding = next(f for f in diagnosis.seeds[index].findings if f.name == detector)
        suggestions.setdefault(finding.suggestion, []).append(int(index))
    record["suggestions"] = [{"set": list(s), "seeds": seeds} for s, seeds in suggestions.items()]
    fixes = []
    for suggestion, seeds in suggestions.items():
        entry: dict[str, Any] = {"set": list(suggestion), "flagged_seeds": seeds}
        if not suggestion:
            entry["note"] = "the diagnosis says no single change is known to fix it; nothing re-run"
            fixes.append(entry)
            continue
        fix_config = apply_overrides(config, list(suggestion))
        try:
            fix_metrics, fix_seconds = train_cached(fix_config, args.seeds, args.cache, args.rediagnose)
        except NotCached:
            entry["note"] = "the fix run was not trained (benchmark stopped before it)"
            fixes.append(entry)
            continue
        fix_record, fix_diagnosis = describe(fix_metrics, fix_config)
        still = fix_diagnosis.flagged(detector)
        entry.update(
            command=f"jaxppo train {name} " + " ".join(f"--set {o}" for o in overrides + list(suggestion)),
            train_seconds=fix_seconds,
            share_flagged_fix=stats.share(still),
            share_fixed=stats.share(~still[seeds]),
            fixed_seeds=[s for s in seeds if not still[s]],
            fix=fix_record,
        )
        fixes.append(entry)
    record["fixes"] = fixes
    return record


def run_healthy(name: str, args: argparse.Namespace) -> dict:
    config = load(name, [], args.healthy_timesteps.get(name))
    metrics, seconds = train_cached(config, args.seeds, args.cache, args.rediagnose)
    record, diagnosis = describe(metrics, config)
    record.update(config=name, total_timesteps=config.total_timesteps, train_seconds=seconds,
                  false_positive_share=stats.share(~diagnosis.healthy),
                  flagged=[{"seed": s.seed, "final_return": s.final_return, "solved": s.solved,
                            "findings": [(f.name, f.start_update) for f in s.findings]}
                           for s in diagnosis.seeds if s.findings])
    return record


def random_policy_returns(names: list[str], episodes: int) -> dict[str, dict]:
    """Mean return of a uniformly random policy per env (the ``random_return`` of ``ENV_FACTS``); where
    the env masks illegal actions, uniform over the legal ones (what an untrained masked policy does)."""
    from jaxppo.envs import make_env
    from jaxppo.envs.core import has_action_mask
    from jaxppo.envs.evaluation import greedy_episodes

    out = {}
    for name in names:
        env, params = make_env(name)
        space = env.action_space(params)
        masked = has_action_mask(env)

        def act(obs, key, action_mask=None, space=space):
            if action_mask is not None:
                return jnp.argmax(jnp.where(action_mask, jax.random.uniform(key, action_mask.shape), -1.0), -1)
            return jax.vmap(space.sample)(jax.random.split(key, obs.shape[0]))

        result = jax.jit(lambda key: greedy_episodes(env, params, act, key, episodes, action_masks=masked)
                         )(jax.random.PRNGKey(0))
        returns = np.asarray(result["eval_return"], np.float64)
        out[name] = {"mean": float(returns.mean()), "std": float(returns.std()), "episodes": episodes,
                     "mean_length": float(np.mean(result["eval_length"]))}
        print(f"random policy on {name}: {returns.mean():.2f} +- {returns.std():.2f}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--total-timesteps", type=int, default=None,
                        help="shorten every failure config (the JSON records the budget used)")
    parser.add_argument("--healthy-timesteps", default="",
                        help="e.g. ppo_pendulum=500000,ppo_acrobot=500000 to shorten healthy runs")
    parser.add_argument("--only", default=None, help="run only the cases whose report id or config contains this")
    parser.add_argument("--skip-healthy", action="store_true")
    parser.add_argument("--skip-cases", action="store_true", help="only the healthy false-positive runs")
    parser.add_argument("--rediagnose", action="store_true",
                        help="train nothing: re-diagnose the cached metrics, skipping runs never trained")
    parser.add_argument("--random-returns", action="store_true",
                        help="only measure the random-policy return of every env in jaxppo.diagnosis.core.ENV_FACTS")
    parser.add_argument("--random-returns-of", nargs="*", default=None, metavar="ENV",
                        help="only measure the random-policy return of these envs (suite envs included), "
                             "into --random-out")
    parser.add_argument("--random-out", default=os.path.join(common.RESULTS_DIR, "random_policy_returns_suites.json"),
                        help="where --random-returns-of writes (default: results/random_policy_returns_suites.json)")
    parser.add_argument("--random-episodes", type=int, default=256,
                        help="episodes per env for the random-policy return (every episode runs the env's whole "
                             "time limit in the scan: Craftax's 10,000 steps make 256 episodes a long CPU job)")
    parser.add_argument("--cache", default=os.path.join("/tmp", "jaxppo_diagnose_cache"))
    parser.add_argument("--out", default=os.path.join(common.RESULTS_DIR, "diagnose_advice.json"))
    args = parser.parse_args()
    args.healthy_timesteps = {k: int(float(v)) for k, v in
                              (item.split("=") for item in args.healthy_timesteps.split(",") if item)}

    if args.random_returns_of:
        data = {"benchmark": "random_policy_returns", "machine": common.machine_info(),
                "returns": random_policy_returns(args.random_returns_of, args.random_episodes)}
        common.write_json_atomic(args.random_out, data)
        return
    if args.random_returns:
        from jaxppo.diagnosis.core import ENV_FACTS
        from jaxppo.envs import known_env_names

        names = [n for n in ENV_FACTS if n in known_env_names()]
        data = {"benchmark": "random_policy_returns", "machine": common.machine_info(),
                "returns": random_policy_returns(names, 256)}
        common.write_json_atomic(os.path.join(common.RESULTS_DIR, "random_policy_returns.json"), data)
        return
    result: dict[str, Any] = {"benchmark": "diagnose_advice", "machine": common.machine_info(), "num_seeds": args.seeds,
                              "note": ("failure configs use their own total_timesteps unless total_timesteps is "
                                       "listed per case; healthy runs list theirs"),
                              "cases": [], "healthy": []}
    if os.path.exists(args.out) and (args.only or args.rediagnose):
        with open(args.out) as handle:
            previous = json.load(handle)
        only = args.only or ""  # --rediagnose alone recomputes every record it can from the cache
        result["cases"] = [c for c in previous.get("cases", []) if only not in (c["report"] + c["config"])]
        result["healthy"] = [h for h in previous.get("healthy", []) if only not in h["config"]]
    for report, name, overrides, detector, story in CASES:
        if args.skip_cases or (args.only and args.only not in report + name):
            continue
        try:
            record = run_case(report, name, overrides, detector, story, args)
        except NotCached:
            print(f"{report}: not trained yet, skipped", flush=True)
            continue
        result["cases"] = [c for c in result["cases"] if c["report"] != report] + [record]
        result["cases"].sort(key=lambda c: c["report"])
        common.write_json_atomic(args.out, common.to_jsonable(result))
        fixes = "; ".join(f"{' '.join(f['set']) or '(none)'}: flagged {f.get('share_flagged_fix', 'n/a')}, "
                          f"fixed {f.get('share_fixed', 'n/a')}" for f in record["fixes"])
        print(f"{report} {detector}: flagged {record['share_flagged_failure']:.2f} on the failure config; {fixes}",
              flush=True)
    if not args.skip_healthy:
        for name in HEALTHY:
            if args.only and args.only not in name:
                continue
            try:
                record = run_healthy(name, args)
            except NotCached:
                print(f"healthy {name}: not trained yet, skipped", flush=True)
                continue
            result["healthy"] = [h for h in result["healthy"] if h["config"] != name] + [record]
            common.write_json_atomic(args.out, common.to_jsonable(result))
            print(f"healthy {name}: false positives {record['false_positive_share']:.2f} "
                  f"{record['counts']}", flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
