"""DQN training throughput on CPU: jaxppo against rejax, same hyperparameters, same process.

jaxppo runs ``jaxppo.DQNConfig()``'s CartPole-v1 defaults unchanged (its default ``loss="mse"`` is the
0.5 * squared TD error that rejax's loss is fixed to); rejax 0.1.3's DQN is configured to do the same
work: the same env steps, gradient steps, batch size, buffer capacity, target syncs, epsilon schedule
and Q-network (``HYPERPARAMETER_MAPPING`` lists every field and its rejax name). rejax has no
``train_frequency``: one rejax iteration steps ``num_envs`` envs once and then takes ``num_epochs``
gradient steps. jaxppo's default (1 env stepped 10 times per gradient step) is therefore matched by
rejax with 10 envs stepped once per gradient step: same data-to-gradient ratio, same totals, but
vectorised instead of sequential env steps. To separate that layout difference from the library
difference, a third program ``jaxppo_10envs`` runs jaxppo in rejax's layout (``num_envs=10,
train_frequency=1``, everything else unchanged); drop it with ``--no-matched-layout``.

Each program is ``jax.jit(jax.vmap(train))`` over ``num_seeds`` keys; compilation is timed apart from
execution; the programs run alternately ``--repeats`` times and the best run counts:

    env steps per second = num_seeds * env_steps_per_seed / best_run_seconds

rejax is given the executed step count as ``total_timesteps`` and ``eval_freq`` with
``skip_initial_evaluation=True`` and a no-op evaluation callback, so it runs no evaluation episodes.

Memory: XLA's ``compiled.memory_analysis()`` for every program and seed count, and jaxppo's replay
buffer size predicted from the buffer leaves of its initial state (``jax.eval_shape``, nothing is
allocated): ``seeds x capacity x bytes_per_transition + seeds x 8``.

    python benchmarks/bench_dqn_throughput.py                                        # full run
    python benchmarks/bench_dqn_throughput.py --total-timesteps 20000 --seeds 1,2    # smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402
from _rejax_compat import make_rejax_env  # noqa: E402

ENV_NAME = "CartPole-v1"
JAXPPO_LOSS = "mse"  # rejax 0.1.3's DQN loss is optax.l2_loss, which jaxppo calls "mse"

HYPERPARAMETER_MAPPING = [
    # (jaxppo DQNConfig field, rejax DQN field, how the value is carried over)
    ("env", "env", "same gymnax env; rejax's through benchmarks/_rejax_compat.FiveValueStepEnv"),
    ("total_timesteps", "total_timesteps", "executed env steps per seed (num_updates * num_envs * train_frequency)"),
    ("num_envs * train_frequency", "num_envs", "env transitions collected per gradient step"),
    ("gradient_steps", "num_epochs", "gradient steps per iteration"),
    ("buffer_size", "buffer_size", "same"),
    ("batch_size", "batch_size", "same"),
    ("learning_starts", "fill_buffer",
     "learning_starts - 2 * transitions per iteration: rejax learns when global_step > fill_buffer, "
     "counted before the iteration's env step; jaxppo when env_steps >= learning_starts, counted after; "
     "with this offset the first gradient step happens in the same iteration"),
    ("target_update_interval", "target_update_freq", "same unit (env steps over all envs)"),
    ("target_update='hard' / tau", "polyak", "polyak = 1 - tau = 0: the target is a copy"),
    ("double_dqn", "ddqn", "same (False); rejax's default is True"),
    ("loss='mse'", "(fixed) optax.l2_loss", "both 0.5 * TD error ** 2 (jaxppo's default)"),
    ("learning_rate", "learning_rate", "same, constant on both sides"),
    ("gamma", "gamma", "same"),
    ("max_grad_norm", "max_grad_norm", "same number, different meaning (see known_differences)"),
    ("epsilon_start", "eps_start", "same"),
    ("epsilon_end", "eps_end", "same"),
    ("epsilon_decay_fraction", "exploration_fraction", "same: linear over fraction * total_timesteps"),
    ("hidden_sizes, activation", "agent", "rejax's agent replaced by EpsilonGreedyPolicy(DiscreteQNetwork) "
     "with the same hidden sizes and activation (rejax 0.1.3 hard-codes (64, 64) in create_agent)"),
]

KNOWN_DIFFERENCES = [
    "Env layout: jaxppo's default steps 1 env 10 times per gradient step (lax.scan); rejax steps 10 envs "
    "once (vmap). Same totals; the jaxppo_10envs program runs jaxppo in rejax's layout.",
    "Gradient clipping: jaxppo clips the global gradient norm at 10; rejax passes max_grad_norm to optax.clip, "
    "which clips each gradient element to [-10, 10].",
    "Replay sampling: jaxppo samples uniformly with replacement (randint over the filled part); rejax samples "
    "without replacement through jax.random.choice(p=...) over the whole capacity.",
    "Exploration before learning starts: rejax takes uniform random actions; jaxppo follows its epsilon "
    "schedule from step 0 (epsilon is still > 0.9 there at the default settings).",
    "Truncation: jaxppo bootstraps from the pre-reset observation on truncation (stores terminated only); "
    "rejax sees done = terminated or truncated and bootstraps from 0.",
    "Metrics: jaxppo computes per-update diagnostics (TD loss, Q statistics, grad norm, greedy agreement, "
    "episode returns...) inside the timed program; rejax's train returns none.",
    "Sanity evaluation acts greedily for jaxppo and with epsilon 0.005 for rejax (rejax's make_act).",
]


def _no_evaluation(algo: Any, train_state: Any, rng: Any) -> tuple:
    """Replaces rejax's evaluation callback so no evaluation episodes run inside the timed program."""
    return ()


def build_rejax(config: Any, env_steps_per_seed: int) -> tuple[Any, dict[str, Any]]:
    """rejax DQN doing the same work as ``config`` (see ``HYPERPARAMETER_MAPPING``)."""
    import rejax
    from flax import linen as nn
    from rejax.networks import DiscreteQNetwork, EpsilonGreedyPolicy

    env, env_params = make_rejax_env(config.env)
    transitions_per_iteration = config.num_envs * config.train_frequency
    if config.target_update != "hard":
        raise ValueError("this benchmark maps only target_update='hard' to rejax (polyak=0).")
    kwargs = dict(
        num_envs=transitions_per_iteration,
        num_epochs=config.gradient_steps,
        total_timesteps=env_steps_per_seed,
        buffer_size=config.buffer_size,
        batch_size=config.batch_size,
        fill_buffer=max(config.learning_starts - 2 * transitions_per_iteration, 0),
        target_update_freq=config.target_update_interval,
        polyak=0.0,
        ddqn=bool(config.double_dqn),
        learning_rate=float(config.learning_rate),
        gamma=float(config.gamma),
        max_grad_norm=float(config.max_grad_norm) if config.max_grad_norm is not None else float("inf"),
        eps_start=float(config.epsilon_start),
        eps_end=float(config.epsilon_end),
        exploration_fraction=float(config.epsilon_decay_fraction),
        normalize_observations=False,
        normalize_rewards=False,
        eval_freq=env_steps_per_seed,
        skip_initial_evaluation=True,
    )
    algo = rejax.DQN.create(env=env, env_params=env_params, **kwargs)
    agent = EpsilonGreedyPolicy(DiscreteQNetwork)(
        hidden_layer_sizes=tuple(config.hidden_sizes), action_dim=int(env.action_space(env_params).n),
        activation=getattr(nn, config.activation))
    algo = algo.replace(agent=agent, eval_callback=_no_evaluation)
    recorded = dict(kwargs)
    recorded["agent"] = (f"EpsilonGreedyPolicy(DiscreteQNetwork)(hidden_layer_sizes={tuple(config.hidden_sizes)}, "
                         f"activation=nn.{config.activation})")
    recorded["env"] = f"gymnax {config.env} wrapped by benchmarks/_rejax_compat.FiveValueStepEnv"
    recorded["eval_callback"] = "replaced by a no-op (no evaluation inside train)"
    return algo, recorded


def _tree_bytes(tree: Any) -> int:
    return int(sum(np.prod(leaf.shape, dtype=np.int64) * np.dtype(leaf.dtype).itemsize
                   for leaf in jax.tree.leaves(tree)))


def buffer_prediction(algorithm: Any, rejax_algo: Any, num_seeds: int) -> dict[str, Any]:
    """Replay-buffer bytes from the initial states' shapes (``jax.eval_shape``: nothing allocated)."""
    key = jax.random.PRNGKey(0)
    jaxppo_buffer = jax.eval_shape(algorithm.init, key).buffer
    storage = jaxppo_buffer.storage
    capacity = int(storage.reward.shape[0])
    per_transition = {name: _tree_bytes(getattr(storage, name)) // capacity for name in storage._fields}
    bytes_per_transition = sum(per_transition.values())
    rejax_buffer = jax.eval_shape(rejax_algo.init_state, key).replay_buffer
    rejax_per_seed = _tree_bytes(rejax_buffer)
    return {
        "formula": "num_seeds * buffer_size * bytes_per_transition + num_seeds * 8 (position, size int32)",
        "num_seeds": num_seeds,
        "buffer_size": capacity,
        "jaxppo_transition_layout_bytes": per_transition,
        "jaxppo_bytes_per_transition": bytes_per_transition,
        "jaxppo_predicted_buffer_bytes": num_seeds * capacity * bytes_per_transition + num_seeds * 8,
        "jaxppo_buffer_bytes_from_eval_shape_per_seed": _tree_bytes(jaxppo_buffer),
        "rejax_buffer_bytes_from_eval_shape_per_seed": rejax_per_seed,
        "rejax_buffer_bytes_all_seeds": num_seeds * rejax_per_seed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,16,128", help="comma-separated seed counts (default 1,16,128)")
    parser.add_argument("--total-timesteps", type=int, default=None,
                        help="env steps per seed requested (default: DQNConfig().total_timesteps)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per program and seed count (default: 2, and 1 at >=128 seeds)")
    parser.add_argument("--no-matched-layout", action="store_true",
                        help="skip the jaxppo_10envs program (jaxppo in rejax's 10-envs layout)")
    parser.add_argument("--eval-episodes", type=int, default=32,
                        help="episodes per seed in the untimed sanity evaluation (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "dqn_throughput_cpu.json"))
    args = parser.parse_args(argv)
    seed_counts = common.parse_int_list(args.seeds)

    import jaxppo

    defaults = jaxppo.DQNConfig(env=ENV_NAME)
    total = args.total_timesteps if args.total_timesteps is not None else defaults.total_timesteps
    config = jaxppo.DQNConfig(env=ENV_NAME, total_timesteps=total, loss=JAXPPO_LOSS)
    env_steps_per_seed = config.num_updates * config.steps_per_update
    algorithm = jaxppo.make_algorithm(config)
    trains = {"jaxppo": jaxppo.make_train(config)}
    configs = {"jaxppo": config}
    if not args.no_matched_layout:
        transitions = config.num_envs * config.train_frequency
        matched = dataclasses.replace(config, num_envs=transitions, train_frequency=1)
        assert matched.num_updates * matched.steps_per_update == env_steps_per_seed
        trains["jaxppo_10envs"] = jaxppo.make_train(matched)
        configs["jaxppo_10envs"] = matched
    rejax_algo, rejax_kwargs = build_rejax(config, env_steps_per_seed)
    eval_env, eval_params = make_rejax_env(config.env)

    report: dict[str, Any] = {
        "benchmark": "dqn_throughput",
        "env": ENV_NAME,
        "machine": common.machine_info(),
        "versions": common.versions("jax", "jaxlib", "flax", "optax", "gymnax", "rejax", "jaxppo", "numpy"),
        "protocol": {
            "program": "jax.jit(jax.vmap(train)) over num_seeds keys; one XLA program per library and seed count",
            "compile": "jit(...).lower(keys) then .compile(), timed separately, excluded from steps/s",
            "run": "compiled(keys) + jax.block_until_ready; best of the repeats; programs alternate",
            "env_steps_per_second": "num_seeds * env_steps_per_seed / best_run_seconds",
            "requested_total_timesteps": total,
            "env_steps_per_seed": env_steps_per_seed,
            "gradient_steps_per_seed": config.num_updates * config.gradient_steps,
            "final_return": ("untimed: each seed's final Q-network plays eval_episodes episodes through "
                             "rejax.evaluate.evaluate (same evaluator for both); jaxppo also reports its "
                             "training metric episode_return (mean return of episodes finished during the "
                             "last update, and the mean over the last 5 updates)"),
            "eval_episodes": args.eval_episodes,
        },
        "hyperparameters": {
            "jaxppo": jaxppo.config_to_dict(config),
            "jaxppo_10envs": (jaxppo.config_to_dict(configs["jaxppo_10envs"])
                              if "jaxppo_10envs" in configs else None),
            "rejax": rejax_kwargs,
            "mapping_jaxppo_to_rejax": [
                {"jaxppo": a, "rejax": b, "note": c} for a, b, c in HYPERPARAMETER_MAPPING],
            "known_differences": KNOWN_DIFFERENCES,
        },
        "results": [],
    }

    print(f"DQN {ENV_NAME}: {env_steps_per_seed:,} env steps per seed ({config.num_updates} updates, "
          f"{config.num_updates * config.gradient_steps} gradient steps), seeds {seed_counts}, "
          f"backend {jax.default_backend()}", flush=True)
    for num_seeds in seed_counts:
        repeats = args.repeats if args.repeats is not None else (1 if num_seeds >= 128 else 2)
        keys = common.seed_keys(num_seeds, args.seed)
        fns = {name: jax.vmap(train) for name, train in trains.items()}
        fns["rejax"] = jax.vmap(rejax_algo.train)
        programs, times, outputs = common.compile_and_time_interleaved(
            fns, (keys,), repeats, label=f"seeds={num_seeds:4d}")

        entry: dict[str, Any] = {"num_seeds": num_seeds, "repeats": repeats}
        for name, program in programs.items():
            entry[name] = common.throughput_result(num_seeds, env_steps_per_seed, program, times[name])
        for name, fn in fns.items():
            # What the output holds: the final train state (with the replay buffer) and the metrics.
            state_shapes, metrics_shapes = jax.eval_shape(fn, keys)
            entry[name]["output_breakdown_bytes"] = {"final_state": _tree_bytes(state_shapes),
                                                     "metrics": _tree_bytes(metrics_shapes)}
        entry["replay_buffer_memory"] = buffer_prediction(algorithm, rejax_algo, num_seeds)

        eval_key = jax.random.PRNGKey(args.seed + 1)
        start = time.perf_counter()
        for name in trains:
            state, metrics = outputs[name]
            episode_return = np.asarray(metrics["episode_return"])  # [seeds, updates]
            entry[name]["final_return"] = {
                "train_episode_return_last_update": common.summarize(episode_return[:, -1]),
                "train_episode_return_mean_last_5_updates": common.summarize(episode_return[:, -5:].mean(axis=1)),
            }
            if args.eval_episodes > 0:
                returns = common.evaluate_final_policies(
                    lambda s: (lambda obs, rng: algorithm.act(algorithm.policy_of(s), obs, rng, True)),
                    state, eval_env, eval_params, args.eval_episodes, eval_key)
                initial = common.evaluate_final_policies(
                    lambda s: (lambda obs, rng: algorithm.act(algorithm.policy_of(s), obs, rng, True)),
                    jax.vmap(algorithm.init)(keys), eval_env, eval_params, args.eval_episodes, eval_key)
                entry[name]["final_return"]["initial_policy_eval_return"] = common.summarize(initial)
                entry[name]["final_return"]["eval_return_per_seed"] = returns
                entry[name]["final_return"]["eval_return"] = common.summarize(returns)
        entry["rejax"]["final_return"] = {}
        if args.eval_episodes > 0:
            returns = common.evaluate_final_policies(
                rejax_algo.make_act, outputs["rejax"][0], eval_env, eval_params, args.eval_episodes, eval_key)
            initial = common.evaluate_final_policies(
                rejax_algo.make_act, jax.vmap(rejax_algo.init_state)(keys), eval_env, eval_params,
                args.eval_episodes, eval_key)
            entry["rejax"]["final_return"]["initial_policy_eval_return"] = common.summarize(initial)
            entry["rejax"]["final_return"]["eval_return_per_seed"] = returns
            entry["rejax"]["final_return"]["eval_return"] = common.summarize(returns)
            print(f"  seeds={num_seeds:4d} sanity evaluation took {time.perf_counter() - start:.1f} s (untimed)",
                  flush=True)
        for name in trains:
            entry[f"speedup_{name}_over_rejax"] = (entry[name]["env_steps_per_second"]
                                                   / entry["rejax"]["env_steps_per_second"])
        entry["process_peak_rss_mib_so_far"] = common.process_peak_rss_mib()
        report["results"].append(entry)
        outputs.clear()
        common.write_json_atomic(args.output, report)

    print()
    print(render_table(report, list(trains) + ["rejax"]))
    print(f"\nwrote {args.output}")
    return 0


def render_table(report: dict[str, Any], names: list[str]) -> str:
    rows = []
    for entry in report["results"]:
        for name in names:
            result = entry[name]
            final = result.get("final_return", {})
            memory = result.get("memory_analysis") or {}
            rows.append([
                entry["num_seeds"], name, result["total_compile_seconds"], result["best_run_seconds"],
                result["env_steps_per_second"], entry.get(f"speedup_{name}_over_rejax"),
                final.get("initial_policy_eval_return", {}).get("mean"),
                final.get("eval_return", {}).get("mean"),
                final.get("train_episode_return_mean_last_5_updates", {}).get("mean"),
                memory.get("peak_estimate_bytes", 0) / 2**20 if memory else None,
            ])
    table = common.format_table(
        ["seeds", "program", "compile s", "run s", "env steps/s", "vs rejax", "init return", "eval return", "train return",
         "XLA MiB"], rows)
    last = report["results"][-1]["replay_buffer_memory"] if report["results"] else None
    if last:
        table += (f"\njaxppo replay buffer at {last['num_seeds']} seeds: {last['jaxppo_bytes_per_transition']} B "
                  f"per transition -> {last['jaxppo_predicted_buffer_bytes'] / 2**20:.1f} MiB predicted; "
                  f"rejax {last['rejax_buffer_bytes_all_seeds'] / 2**20:.1f} MiB")
    return table


if __name__ == "__main__":
    sys.exit(main())
