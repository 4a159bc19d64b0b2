"""Which PPO / DQN defaults survive every reward scale? Small experiments behind the defaults.

For each environment and each candidate variant, one compiled program trains ``--seeds`` seeds at every
reward scale in ``--scales`` (``env_reward_scale`` is a config leaf, so the scales are a ``vmap`` axis
over stacked configs, like the seeds). It records, per (variant, env, scale), the final return read
back in unscaled units (divided by the scale), the greedy evaluation, the held-out F1 on
``IntrusionDetection-v0``, the largest value (or TD) loss, explained variance at the end and non-finite
update counts. Results are written to the JSON after every program, so a killed run keeps what it did.

    nice -n 10 python benchmarks/reward_scale_defaults.py --seeds 8 \\
        --out benchmarks/results/reward_scale_defaults_cpu.json
    python benchmarks/reward_scale_defaults.py --only cartpole --variants today,popart_relative

Runs are shortened for the 2-core CPU (``--fraction`` of each config's ``total_timesteps``); compare
variants within one file, not against full-length results.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import jaxppo  # noqa: E402
from jaxppo.config import apply_overrides, config_to_dict, load_config  # noqa: E402

# (name, config file, extra overrides, algorithm)
ENVS = {
    "cartpole": ("ppo_cartpole_purejaxrl", {}),
    "acrobot": ("ppo_acrobot", {}),
    "pendulum": ("ppo_pendulum", {}),
    "intrusion": ("ppo_cartpole_purejaxrl", {"env": "IntrusionDetection-v0"}),
    "dqn_cartpole": ("dqn_cartpole", {}),
}

# Candidate stability settings, applied on top of each env's config. "today" is the config as it is.
PPO_VARIANTS = {
    "today": {},
    "no_value_clip": {"value_clipping": "off", "return_normalization": "off"},
    "running_relative": {"return_normalization": "running", "value_clipping": "relative"},
    "popart_relative": {"return_normalization": "popart", "value_clipping": "relative"},
    "popart_off": {"return_normalization": "popart", "value_clipping": "off"},
    # PopArt + relative clipping with the critic's output layer initialised at zero: the first
    # advantages then come from the rewards alone, which matters when rewards are ~1e-3 per step.
    "popart_relative_zero_head": {"return_normalization": "popart", "value_clipping": "relative",
                                  "value_head_init_scale": 0.0},
    "symlog": {"value_target_transform": "symlog", "return_normalization": "off", "value_clipping": "off"},
}
DQN_VARIANTS = {
    "today": {},
    "cleanrl": {"reward_normalization": "off"},
    "symlog": {"value_target_transform": "symlog", "reward_normalization": "off"},
    # Rewards divided by the running root mean square of the discounted return, Q head rescaled with it.
    "reward_norm": {"reward_normalization": "running"},
}


def _tail_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over the last ``k`` updates of ``[..., U]``."""
    return x[..., -k:].mean(axis=-1)


def run_program(base: Any, scales: list[float], num_seeds: int) -> dict[str, np.ndarray]:
    configs = [base.replace(env_reward_scale=s) for s in scales]
    stacked = jaxppo.stack_configs(configs)
    num_updates = base.num_updates

    def one(config: Any, key: jax.Array) -> tuple[dict, dict]:
        algorithm = jaxppo.make_algorithm(config)
        train_key, eval_key = jax.random.split(key)
        state, metrics = algorithm.run_updates(algorithm.init(train_key), num_updates)
        return metrics, algorithm.evaluate(state, eval_key)

    keys = common.seed_keys(num_seeds)
    program = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))
    start = time.perf_counter()
    metrics, evaluation = jax.block_until_ready(program(stacked, keys))
    elapsed = time.perf_counter() - start
    out = {f"metric/{k}": np.asarray(v) for k, v in metrics.items()}
    out.update({f"eval/{k}": np.asarray(v) for k, v in evaluation.items()})
    out["seconds"] = elapsed
    return out


def diagnosis_row(raw: dict, index: int, config: Any) -> dict:
    """``jaxppo.diagnose`` on one scale's seeds: healthy count, seeds per pathology, flagged seeds."""
    from jaxppo.diagnosis.core import diagnose

    metrics = {k[len("metric/"):]: v[index] for k, v in raw.items() if k.startswith("metric/")}
    diagnosis = diagnose(metrics, config)
    return {"num_healthy": diagnosis.num_healthy, "num_seeds": diagnosis.num_seeds,
            "counts": {k: int(v) for k, v in diagnosis.counts.items() if v},
            "flagged": [{"seed": s.seed, "findings": [(f.name, f.start_update) for f in s.findings]}
                        for s in diagnosis.seeds if s.findings]}


def summarize(raw: dict, scales: list[float], algorithm: str, config: Any = None) -> list[dict]:
    rows = []
    loss_name = "metric/value_loss" if algorithm == "ppo" else "metric/td_loss"
    for index, scale in enumerate(scales):
        returns = raw["metric/episode_return"][index] / scale  # [S, U], unscaled
        tail = max(1, returns.shape[-1] // 20)
        final = _tail_mean(returns, tail)
        eval_return = raw["eval/eval_return"][index].mean(axis=-1) / scale
        row = {
            "scale": scale,
            "final_return": common.summarize(final),
            "final_return_per_seed": final.tolist(),
            "eval_return": common.summarize(eval_return),
            "max_loss": common.summarize(raw[loss_name][index].max(axis=-1)),
            "nonfinite_updates": int(raw["metric/nonfinite_updates"][index][:, -1].max()),
            "any_nonfinite_return": bool(~np.isfinite(returns).all()),
        }
        if config is not None:
            row["diagnosis"] = diagnosis_row(raw, index, config.replace(env_reward_scale=scale))
        if "metric/explained_variance" in raw:
            row["final_explained_variance"] = common.summarize(
                _tail_mean(raw["metric/explained_variance"][index], tail))
        if "eval/eval_f1" in raw:
            row["eval_f1"] = common.summarize(raw["eval/eval_f1"][index])
            row["eval_f1_per_seed"] = raw["eval/eval_f1"][index].tolist()
            row["train_f1"] = common.summarize(_tail_mean(raw["metric/f1"][index], tail))
        if "metric/q_max" in raw:
            row["max_q"] = common.summarize(np.abs(raw["metric/q_max"][index]).max(axis=-1))
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--scales", default="1e-3,1,1e3")
    parser.add_argument("--only", default=",".join(ENVS), help="comma-separated env keys")
    parser.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
    parser.add_argument("--fraction", type=float, default=0.5, help="share of each config's total_timesteps")
    parser.add_argument("--out", default=os.path.join(common.RESULTS_DIR, "reward_scale_defaults_cpu.json"))
    args = parser.parse_args()
    scales = [float(s) for s in args.scales.split(",")]
    results: dict[str, Any] = {"machine": common.machine_info(), "seeds": args.seeds, "scales": scales,
                               "fraction_of_total_timesteps": args.fraction, "runs": []}
    if os.path.exists(args.out):
        import json

        with open(args.out, encoding="utf-8") as handle:
            previous = json.load(handle)
        results["runs"] = previous.get("runs", [])
    done = {(r["env"], r["variant"]) for r in results["runs"]}
    for env_key in args.only.split(","):
        config_name, env_overrides = ENVS[env_key]
        base = apply_overrides(load_config(config_name), env_overrides)
        steps = max(base.steps_per_update, int(base.total_timesteps * args.fraction))
        base = apply_overrides(base, {"total_timesteps": steps, "run.eval_episodes": 8})
        variants = PPO_VARIANTS if base.algorithm == "ppo" else DQN_VARIANTS
        names = args.variants.split(",") if args.variants else list(variants)
        for name in names:
            if name not in variants or (env_key, name) in done:
                continue
            config = apply_overrides(base, variants[name])
            print(f"{env_key} / {name}: {config.num_updates} updates x {len(scales)} scales x {args.seeds} seeds",
                  flush=True)
            raw = run_program(config, scales, args.seeds)
            rows = summarize(raw, scales, config.algorithm, config)
            results["runs"].append({"env": env_key, "variant": name, "config": config_to_dict(config),
                                    "env_steps_per_seed": config.num_updates * config.steps_per_update,
                                    "seconds_including_compile": round(raw["seconds"], 1), "by_scale": rows,
                                    "machine": common.machine_info()})
            for row in rows:
                extra = f"  eval F1 {row['eval_f1']['median']:.3f}" if "eval_f1" in row else ""
                print(f"   scale {row['scale']:g}: final return mean {row['final_return']['mean']:.4g} "
                      f"(min {row['final_return']['min']:.4g})  eval {row['eval_return']['mean']:.4g}  "
                      f"max loss median {row['max_loss']['median']:.3g}{extra}  healthy "
                      f"{row['diagnosis']['num_healthy']}/{row['diagnosis']['num_seeds']} {row['diagnosis']['counts']}",
                      flush=True)
            common.write_json_atomic(args.out, results)


if __name__ == "__main__":
    main()
