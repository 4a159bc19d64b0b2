"""PPO training throughput on CPU: jaxppo against rejax, same hyperparameters, same process.

Both sides run PureJaxRL's CartPole-v1 PPO (4 envs x 128 steps, 4 epochs x 4 minibatches, Adam 2.5e-4,
gamma 0.99, GAE lambda 0.95, clip 0.2, value clipping 0.2, entropy 0.01, value 0.5, max_grad_norm 0.5,
MLP 64x64 tanh; jaxppo's side is ``configs/ppo_cartpole_purejaxrl.yaml``, every field written out) as
one ``jax.jit(jax.vmap(train))`` program over ``num_seeds`` PRNG keys. For each seed count the script
compiles both programs (timed apart from execution), then runs them alternately ``--repeats`` times and
reports the best run:

    env steps per second = num_seeds * env_steps_per_seed / best_run_seconds

Both libraries execute exactly the same number of environment steps per seed
(``num_updates * num_envs * num_steps``): rejax is given that number as ``total_timesteps`` and as
``eval_freq``, with ``skip_initial_evaluation=True`` and its evaluation callback replaced by a no-op, so
rejax's ``train`` runs one block of training iterations and no evaluation episodes at all.

After timing (untimed), each seed's final policy plays ``--eval-episodes`` episodes through rejax's own
evaluator with a sampled (stochastic) action, for both libraries, as a check that both trained.

    python benchmarks/bench_ppo_throughput.py                                        # full run
    python benchmarks/bench_ppo_throughput.py --total-timesteps 20000 --seeds 1,2    # smoke test
"""

from __future__ import annotations

import argparse
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

# Differences between the two programs that remain after matching every shared hyperparameter.
# They are properties of rejax 0.1.3's PPO (read from its source), not settings we chose.
KNOWN_DIFFERENCES = [
    "Learning rate: jaxppo anneals linearly from 2.5e-4 to 0 over all minibatch updates (PureJaxRL); "
    "rejax 0.1.3 PPO has no annealing option and uses a constant 2.5e-4.",
    "Gradient clipping: jaxppo clips the global gradient norm at 0.5; rejax passes max_grad_norm to "
    "optax.clip, which clips each gradient element to [-0.5, 0.5].",
    "Optimiser: jaxppo uses one Adam (eps 1e-5) over actor and critic with the combined loss "
    "policy + 0.5 * value - 0.01 * entropy; rejax has separate actor and critic Adam optimisers "
    "(optax default eps 1e-8) and takes two gradient steps per minibatch (actor, then critic).",
    "Value loss: both clip the value prediction to within 0.2 of the rollout value (PureJaxRL style; "
    "jaxppo's configs/ppo_cartpole_purejaxrl.yaml sets value_clipping='absolute', rejax always does it).",
    "Truncation: jaxppo bootstraps from V(final observation) when an episode is truncated at 500 steps; "
    "rejax sees done = terminated or truncated (through benchmarks/_rejax_compat.py) and bootstraps from 0.",
    "Metrics: jaxppo computes per-update diagnostics (losses, KL, grad norm, explained variance, episode "
    "returns...) inside the timed program; rejax's train returns no per-update metrics.",
    "Network initialisation: jaxppo uses orthogonal initialisation (PureJaxRL); rejax uses flax defaults.",
]


def _no_evaluation(algo: Any, train_state: Any, rng: Any) -> tuple:
    """Replaces rejax's evaluation callback so no evaluation episodes run inside the timed program."""
    return ()


def build_jaxppo(total_timesteps: int) -> tuple[Any, Any, Any]:
    import jaxppo

    # The default config of `jaxppo train` (PureJaxRL's CartPole settings, value clipping included).
    config = jaxppo.load_config("ppo_cartpole_purejaxrl").replace(total_timesteps=total_timesteps)
    algorithm = jaxppo.make_algorithm(config)
    return config, jaxppo.make_train(config), algorithm


def build_rejax(config: Any, env_steps_per_seed: int) -> tuple[Any, dict[str, Any]]:
    """rejax PPO with every hyperparameter it shares with ``config`` set to the same value."""
    import rejax

    env, env_params = make_rejax_env(config.env)
    kwargs = dict(
        num_envs=config.num_envs,
        num_steps=config.num_steps,
        num_epochs=config.num_epochs,
        num_minibatches=config.num_minibatches,
        total_timesteps=env_steps_per_seed,
        learning_rate=float(config.learning_rate),
        gamma=float(config.gamma),
        gae_lambda=float(config.gae_lambda),
        clip_eps=float(config.clip_epsilon),
        ent_coef=float(config.entropy_coef),
        vf_coef=float(config.value_loss_coef),
        max_grad_norm=float(config.max_grad_norm),
        agent_kwargs={"hidden_layer_sizes": tuple(config.hidden_sizes), "activation": config.activation},
        normalize_observations=False,
        normalize_rewards=False,
        # One evaluation block covering all of training, no evaluation before it; the callback
        # itself is replaced below, so no evaluation episodes run at all.
        eval_freq=env_steps_per_seed,
        skip_initial_evaluation=True,
    )
    algo = rejax.PPO.create(env=env, env_params=env_params, **kwargs)
    algo = algo.replace(eval_callback=_no_evaluation)
    recorded = dict(kwargs)
    recorded["env"] = f"gymnax {config.env} wrapped by benchmarks/_rejax_compat.FiveValueStepEnv"
    recorded["eval_callback"] = "replaced by a no-op (no evaluation inside train)"
    return algo, recorded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,16,128", help="comma-separated seed counts (default 1,16,128)")
    parser.add_argument("--total-timesteps", type=int, default=500_000,
                        help="env steps per seed requested (default 500000, PureJaxRL's CartPole)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per library and seed count (default: 2, and 1 at >=128 seeds)")
    parser.add_argument("--eval-episodes", type=int, default=32,
                        help="episodes per seed in the untimed sanity evaluation (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "ppo_throughput_cpu.json"))
    args = parser.parse_args(argv)
    seed_counts = common.parse_int_list(args.seeds)

    config, jaxppo_train, algorithm = build_jaxppo(args.total_timesteps)
    env_steps_per_seed = config.num_updates * config.batch_size
    rejax_algo, rejax_kwargs = build_rejax(config, env_steps_per_seed)
    eval_env, eval_params = make_rejax_env(config.env)

    import jaxppo

    report: dict[str, Any] = {
        "benchmark": "ppo_throughput",
        "env": ENV_NAME,
        "machine": common.machine_info(),
        "versions": common.versions("jax", "jaxlib", "flax", "optax", "gymnax", "rejax", "jaxppo", "numpy"),
        "protocol": {
            "program": "jax.jit(jax.vmap(train)) over num_seeds keys; one XLA program per library and seed count",
            "compile": "jit(...).lower(keys) then .compile(), timed separately, excluded from steps/s",
            "run": "compiled(keys) + jax.block_until_ready; best of the repeats; libraries alternate",
            "env_steps_per_second": "num_seeds * env_steps_per_seed / best_run_seconds",
            "requested_total_timesteps": args.total_timesteps,
            "env_steps_per_seed": env_steps_per_seed,
            "num_updates": config.num_updates,
            "final_return": ("untimed: each seed's final policy, sampled actions, plays eval_episodes "
                             "episodes through rejax.evaluate.evaluate (same evaluator for both); jaxppo "
                             "also reports its training metric episode_return (mean return of episodes "
                             "finished during the last update, and the mean over the last 5 updates)"),
            "eval_episodes": args.eval_episodes,
        },
        "hyperparameters": {
            "jaxppo": jaxppo.config_to_dict(config),
            "rejax": rejax_kwargs,
            "known_differences": KNOWN_DIFFERENCES,
        },
        "results": [],
    }

    print(f"PPO {ENV_NAME}: {env_steps_per_seed:,} env steps per seed ({config.num_updates} updates), "
          f"seeds {seed_counts}, backend {jax.default_backend()}", flush=True)
    for num_seeds in seed_counts:
        repeats = args.repeats if args.repeats is not None else (1 if num_seeds >= 128 else 2)
        keys = common.seed_keys(num_seeds, args.seed)
        programs, times, outputs = common.compile_and_time_interleaved(
            {"jaxppo": jax.vmap(jaxppo_train), "rejax": jax.vmap(rejax_algo.train)}, (keys,), repeats,
            label=f"seeds={num_seeds:4d}")

        entry: dict[str, Any] = {"num_seeds": num_seeds, "repeats": repeats}
        for name, program in programs.items():
            entry[name] = common.throughput_result(num_seeds, env_steps_per_seed, program, times[name])

        jaxppo_state, jaxppo_metrics = outputs["jaxppo"]
        rejax_state, _ = outputs["rejax"]
        episode_return = np.asarray(jaxppo_metrics["episode_return"])  # [seeds, updates]
        entry["jaxppo"]["final_return"] = {
            "train_episode_return_last_update": common.summarize(episode_return[:, -1]),
            "train_episode_return_mean_last_5_updates": common.summarize(episode_return[:, -5:].mean(axis=1)),
        }
        entry["rejax"]["final_return"] = {}
        if args.eval_episodes > 0:
            start = time.perf_counter()
            eval_key = jax.random.PRNGKey(args.seed + 1)
            jaxppo_eval = common.evaluate_final_policies(
                lambda s: (lambda obs, rng: algorithm.act(algorithm.policy_of(s), obs, rng, False)),
                jaxppo_state, eval_env, eval_params, args.eval_episodes, eval_key)
            rejax_eval = common.evaluate_final_policies(
                rejax_algo.make_act, rejax_state, eval_env, eval_params, args.eval_episodes, eval_key)
            # The same evaluation of the untrained policies: "trained" means final well above this.
            jaxppo_initial = common.evaluate_final_policies(
                lambda s: (lambda obs, rng: algorithm.act(algorithm.policy_of(s), obs, rng, False)),
                jax.vmap(algorithm.init)(keys), eval_env, eval_params, args.eval_episodes, eval_key)
            rejax_initial = common.evaluate_final_policies(
                rejax_algo.make_act, jax.vmap(rejax_algo.init_state)(keys), eval_env, eval_params,
                args.eval_episodes, eval_key)
            entry["jaxppo"]["final_return"]["initial_policy_eval_return"] = common.summarize(jaxppo_initial)
            entry["rejax"]["final_return"]["initial_policy_eval_return"] = common.summarize(rejax_initial)
            entry["jaxppo"]["final_return"]["eval_return_per_seed"] = jaxppo_eval
            entry["jaxppo"]["final_return"]["eval_return"] = common.summarize(jaxppo_eval)
            entry["rejax"]["final_return"]["eval_return_per_seed"] = rejax_eval
            entry["rejax"]["final_return"]["eval_return"] = common.summarize(rejax_eval)
            print(f"  seeds={num_seeds:4d} sanity evaluation took {time.perf_counter() - start:.1f} s (untimed)",
                  flush=True)
        entry["speedup_jaxppo_over_rejax"] = (entry["jaxppo"]["env_steps_per_second"]
                                              / entry["rejax"]["env_steps_per_second"])
        entry["process_peak_rss_mib_so_far"] = common.process_peak_rss_mib()
        report["results"].append(entry)
        outputs.clear()
        # Written after every seed count, so a long run that is interrupted keeps what it measured.
        common.write_json_atomic(args.output, report)

    print()
    print(render_table(report))
    print(f"\nwrote {args.output}")
    return 0


def render_table(report: dict[str, Any]) -> str:
    rows = []
    for entry in report["results"]:
        for name in ("jaxppo", "rejax"):
            result = entry[name]
            final = result.get("final_return", {})
            evaluated = final.get("eval_return", {}).get("mean")
            trained = final.get("train_episode_return_mean_last_5_updates", {}).get("mean")
            initial = final.get("initial_policy_eval_return", {}).get("mean")
            rows.append([entry["num_seeds"], name, result["total_compile_seconds"], result["best_run_seconds"],
                         result["env_steps_per_second"], initial, evaluated, trained,
                         entry["speedup_jaxppo_over_rejax"] if name == "jaxppo" else None])
    return common.format_table(
        ["seeds", "library", "compile s", "run s", "env steps/s", "init return", "eval return", "train return",
         "speedup"], rows)


if __name__ == "__main__":
    sys.exit(main())
