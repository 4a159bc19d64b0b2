"""Training throughput of jaxppo against rejax 0.1.3, PPO and DQN, alternating in one process.

Each library runs one ``jax.jit(jax.vmap(train))`` program per algorithm and seed count (``num_seeds``
PRNG keys), the whole training run inside it. Compilation (trace + lower, then XLA compile) is timed
apart from execution. The programs then run alternately, ``--repeats`` rounds (jaxppo, rejax, jaxppo,
rejax, ...), so a slow period of a shared machine hits both; each run records its wall time, the
process's CPU time and the load average before and after it. Reported:

    env steps per second = num_seeds * env_steps_per_seed / best (minimum) wall time
    speedup              = jaxppo's env steps/s / rejax's (also from the median run)

Workloads (both libraries execute exactly the same env steps and gradient steps per seed):

* PPO: PureJaxRL's CartPole-v1 settings, jaxppo's ``configs/ppo_cartpole_purejaxrl.yaml`` when it exists,
  else ``configs/ppo_cartpole.yaml`` (4 envs x 128 steps, 4 epochs x 4 minibatches, Adam 2.5e-4, value
  clipping 0.2, MLP 64x64 tanh); 5e5 env steps per seed by default.
* DQN: CleanRL's CartPole-v1 DQN in rejax's layout, 10 envs stepped once per gradient step (rejax has no
  ``train_frequency``), buffer 10,000, batch 128, target copy every 500 env steps, MLP 120x84 relu,
  0.5 x squared TD error; 5e5 env steps (5e4 gradient steps) per seed by default.

rejax is given the executed step count as ``total_timesteps`` and ``eval_freq``, with
``skip_initial_evaluation=True`` and its evaluation callback replaced by a no-op, so its timed program
runs no evaluation episodes. After timing (untimed), every seed's final policy plays
``--eval-episodes`` episodes through rejax's own evaluator for both libraries: a check that both
trained, with the returns in the JSON.

    python benchmarks/throughput.py --algos ppo dqn --seeds 1 16 128             # full length
    python benchmarks/throughput.py --algos ppo --seeds 2 --total-timesteps 20000 --output /tmp/t.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from typing import Any, Callable, NamedTuple, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402
from _rejax_compat import make_rejax_env  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _no_evaluation(algo: Any, train_state: Any, rng: Any) -> tuple:
    """Replaces rejax's evaluation callback so no evaluation episodes run inside the timed program."""
    return ()


# PPO ---------------------------------------------------------------------------------------------

PPO_DIFFERENCES = [
    "Learning rate: jaxppo anneals linearly to 0 when the config says so (PureJaxRL); rejax 0.1.3 PPO "
    "has no annealing option (constant).",
    "Gradient clipping: jaxppo clips the global norm; rejax passes max_grad_norm to optax.clip, which "
    "clips each element.",
    "Optimiser: jaxppo has one Adam (eps 1e-5) on policy + 0.5 value - 0.01 entropy; rejax has separate "
    "actor and critic Adams (eps 1e-8) and two gradient computations per minibatch.",
    "Value clipping: both clip the value prediction to within 0.2 of the rollout value.",
    "Truncation: jaxppo bootstraps from V(final observation); rejax sees done = terminated or truncated.",
    "Metrics: jaxppo computes per-update diagnostics inside the timed program; rejax returns none.",
    "Initialisation: jaxppo orthogonal (PureJaxRL); rejax flax defaults.",
]


def ppo_config(total_timesteps: Optional[int]) -> Any:
    import jaxppo

    name = ("ppo_cartpole_purejaxrl" if os.path.exists(os.path.join(REPO, "configs", "ppo_cartpole_purejaxrl.yaml"))
            else "ppo_cartpole")
    config = jaxppo.load_config(name)
    return config if total_timesteps is None else config.replace(total_timesteps=total_timesteps)


def ppo_rejax(config: Any, env_steps_per_seed: int) -> tuple[Any, dict[str, Any]]:
    """rejax PPO with every hyperparameter it shares with ``config`` set to the same value."""
    import rejax

    env, env_params = make_rejax_env(config.env)
    kwargs = dict(
        num_envs=config.num_envs, num_steps=config.num_steps, num_epochs=config.num_epochs,
        num_minibatches=config.num_minibatches, total_timesteps=env_steps_per_seed,
        learning_rate=float(config.learning_rate), gamma=float(config.gamma), gae_lambda=float(config.gae_lambda),
        clip_eps=float(config.clip_epsilon), ent_coef=float(config.entropy_coef),
        vf_coef=float(config.value_loss_coef), max_grad_norm=float(config.max_grad_norm),
        agent_kwargs={"hidden_layer_sizes": tuple(config.hidden_sizes), "activation": config.activation},
        normalize_observations=bool(config.observation_normalization), normalize_rewards=False,
        eval_freq=env_steps_per_seed, skip_initial_evaluation=True,
    )
    algo = rejax.PPO.create(env=env, env_params=env_params, **kwargs).replace(eval_callback=_no_evaluation)
    recorded = dict(kwargs, env=f"{config.env} via benchmarks/_rejax_compat.FiveValueStepEnv",
                    eval_callback="replaced by a no-op")
    return algo, recorded


PPO_BRAX_DIFFERENCES = PPO_DIFFERENCES + [
    "Env: both step jaxppo's brax adapter (brax's EpisodeWrapper, 1000 steps, auto-reset keeping the final "
    "observation), rejax through FiveValueStepEnv (done = terminated or truncated).",
    "Observation normalisation: on in both (jaxppo's running statistics; rejax's normalize_observations).",
    "Actions: both sample an unbounded Gaussian; jaxppo clips to [-1, 1] for the env, rejax clips likewise.",
]


def ppo_brax_config(total_timesteps: Optional[int]) -> Any:
    """``configs/ppo_brax_inverted_pendulum.yaml``: PPO on brax's inverted_pendulum, 16 envs x 64 steps."""
    import jaxppo

    config = jaxppo.load_config("ppo_brax_inverted_pendulum")
    return config if total_timesteps is None else config.replace(total_timesteps=total_timesteps)


# DQN ---------------------------------------------------------------------------------------------

DQN_DIFFERENCES = [
    "Gradient clipping: global norm 10 (jaxppo) vs element-wise +-10 (rejax's optax.clip).",
    "Replay sampling: jaxppo uniform with replacement over the filled part; rejax without replacement via "
    "jax.random.choice(p=...) over the whole capacity.",
    "Exploration before learning starts: rejax acts uniformly at random; jaxppo follows its epsilon schedule.",
    "Truncation: jaxppo bootstraps from the pre-reset observation; rejax treats it as termination.",
    "Metrics: jaxppo computes per-update diagnostics inside the timed program; rejax returns none.",
    "rejax hard-codes a (64, 64) Q-network; the benchmark replaces its agent with "
    "EpsilonGreedyPolicy(DiscreteQNetwork) of jaxppo's sizes.",
    "Sanity evaluation: greedy for jaxppo, epsilon 0.005 for rejax (its make_act).",
]


def dqn_config(total_timesteps: Optional[int]) -> Any:
    """CleanRL's CartPole DQN (``configs/dqn_cartpole_cleanrl.yaml``, MSE loss, raw rewards: rejax has no reward
    normalisation) in rejax's 10 envs x 1 step layout."""
    import jaxppo

    name = ("dqn_cartpole_cleanrl" if os.path.exists(os.path.join(REPO, "configs", "dqn_cartpole_cleanrl.yaml"))
            else "dqn_cartpole")
    config = jaxppo.load_config(name)
    transitions = config.num_envs * config.train_frequency
    config = dataclasses.replace(config, num_envs=transitions, train_frequency=1, loss="mse")
    return config if total_timesteps is None else config.replace(total_timesteps=total_timesteps)


def dqn_rejax(config: Any, env_steps_per_seed: int) -> tuple[Any, dict[str, Any]]:
    """rejax DQN doing the same work as ``config`` (same env steps, gradient steps, syncs, network)."""
    import rejax
    from flax import linen as nn
    from rejax.networks import DiscreteQNetwork, EpsilonGreedyPolicy

    if config.target_update != "hard" or config.train_frequency != 1:
        raise ValueError("the DQN benchmark maps only target_update='hard' and train_frequency=1 to rejax.")
    env, env_params = make_rejax_env(config.env)
    kwargs = dict(
        num_envs=config.num_envs, num_epochs=config.gradient_steps, total_timesteps=env_steps_per_seed,
        buffer_size=config.buffer_size, batch_size=config.batch_size,
        # rejax learns when the step count *before* the iteration exceeds fill_buffer; jaxppo when the
        # count *after* reaches learning_starts: this offset makes the first gradient step coincide.
        fill_buffer=max(config.learning_starts - 2 * config.num_envs, 0),
        target_update_freq=config.target_update_interval, polyak=0.0, ddqn=bool(config.double_dqn),
        learning_rate=float(config.learning_rate), gamma=float(config.gamma),
        max_grad_norm=float(config.max_grad_norm) if config.max_grad_norm is not None else float("inf"),
        eps_start=float(config.epsilon_start), eps_end=float(config.epsilon_end),
        exploration_fraction=float(config.epsilon_decay_fraction),
        normalize_observations=bool(config.observation_normalization), normalize_rewards=False,
        eval_freq=env_steps_per_seed, skip_initial_evaluation=True,
    )
    algo = rejax.DQN.create(env=env, env_params=env_params, **kwargs)
    agent = EpsilonGreedyPolicy(DiscreteQNetwork)(
        hidden_layer_sizes=tuple(config.hidden_sizes), action_dim=int(env.action_space(env_params).n),
        activation=getattr(nn, config.activation))
    algo = algo.replace(agent=agent, eval_callback=_no_evaluation)
    recorded = dict(kwargs, env=f"{config.env} via benchmarks/_rejax_compat.FiveValueStepEnv",
                    agent=f"EpsilonGreedyPolicy(DiscreteQNetwork)({tuple(config.hidden_sizes)}, {config.activation})",
                    eval_callback="replaced by a no-op")
    return algo, recorded


class Spec(NamedTuple):
    """How to build one algorithm's side-by-side pair."""

    jaxppo_config: Callable[[Optional[int]], Any]
    rejax_algo: Callable[[Any, int], tuple[Any, dict[str, Any]]]
    known_differences: list[str]
    deterministic_eval: bool  # jaxppo's sanity evaluation: greedy (DQN) or sampled (PPO, like rejax's)

    @staticmethod
    def steps_per_update(config: Any) -> int:
        return config.batch_size if hasattr(config, "num_minibatches") else config.steps_per_update

    @staticmethod
    def jaxppo_train(config: Any) -> Callable:
        import jaxppo

        return jaxppo.make_train(config)


SPECS = {
    "ppo": Spec(ppo_config, ppo_rejax, PPO_DIFFERENCES, deterministic_eval=False),
    "ppo-brax": Spec(ppo_brax_config, ppo_rejax, PPO_BRAX_DIFFERENCES, deterministic_eval=False),
    "dqn": Spec(dqn_config, dqn_rejax, DQN_DIFFERENCES, deterministic_eval=True),
}


# Measurement -------------------------------------------------------------------------------------

def run_alternating(programs: dict[str, common.CompiledProgram], keys: jax.Array, repeats: int, label: str
                    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Runs the compiled programs in turn, ``repeats`` rounds; per run: wall, CPU time, load average."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in programs}
    outputs: dict[str, Any] = {}
    for _ in range(repeats):
        for name, program in programs.items():
            outputs.pop(name, None)
            load_before = list(os.getloadavg())
            cpu_start = time.process_time()
            wall, outputs[name] = common.time_runs(program, keys, repeats=1)
            runs[name].append({"wall_seconds": wall[0], "process_cpu_seconds": time.process_time() - cpu_start,
                               "load_average_before": load_before, "load_average_after": list(os.getloadavg())})
            print(f"  {label} {name:7s} run {wall[0]:8.2f} s  (load {load_before[0]:.1f})", flush=True)
    return runs, outputs


def summarize_runs(num_seeds: int, env_steps: int, program: common.CompiledProgram, runs: list[dict[str, Any]]
                   ) -> dict[str, Any]:
    walls = [r["wall_seconds"] for r in runs]
    best, median = min(walls), statistics.median(walls)
    return {
        "num_seeds": num_seeds,
        "env_steps_per_seed": env_steps,
        "trace_and_lower_seconds": program.lower_seconds,
        "compile_seconds": program.compile_seconds,
        "total_compile_seconds": program.total_compile_seconds,
        "runs": runs,
        "best_run_seconds": best,
        "median_run_seconds": median,
        "env_steps_per_second": num_seeds * env_steps / best,
        "env_steps_per_second_median_run": num_seeds * env_steps / median,
        "memory_analysis": common.memory_stats(program),
    }


def final_returns(algo: str, spec: Spec, config: Any, rejax_algo: Any, outputs: dict[str, Any], keys: jax.Array,
                  episodes: int, seed: int) -> dict[str, dict[str, Any]]:
    """Untimed: each seed's final policy through rejax's evaluator, for both libraries."""
    import jaxppo

    algorithm = jaxppo.make_algorithm(config)
    env, env_params = make_rejax_env(config.env)
    key = jax.random.PRNGKey(seed + 1)
    deterministic = spec.deterministic_eval

    def jaxppo_act(state: Any) -> Callable:
        return lambda obs, rng: algorithm.act(algorithm.policy_of(state), obs, rng, deterministic)

    episode_return = np.asarray(outputs["jaxppo"][1]["episode_return"])  # [seeds, updates]
    out = {"jaxppo": {"train_episode_return_mean_last_5_updates":
                      common.summarize(episode_return[:, -5:].mean(axis=1))}, "rejax": {}}
    if episodes > 0:
        for name, make_act, initial in (
                ("jaxppo", jaxppo_act, jax.vmap(algorithm.init)(keys)),
                ("rejax", rejax_algo.make_act, jax.vmap(rejax_algo.init_state)(keys))):
            returns = common.evaluate_final_policies(make_act, outputs[name][0], env, env_params, episodes, key)
            out[name]["eval_return"] = common.summarize(returns)
            out[name]["eval_return_per_seed"] = returns
            out[name]["initial_policy_eval_return"] = common.summarize(
                common.evaluate_final_policies(make_act, initial, env, env_params, episodes, key))
    return out


def measure(algo: str, num_seeds: int, total_timesteps: Optional[int], repeats: int, eval_episodes: int,
            seed: int) -> dict[str, Any]:
    spec = SPECS[algo]
    config = spec.jaxppo_config(total_timesteps)
    env_steps = config.num_updates * spec.steps_per_update(config)
    rejax_algo, rejax_kwargs = spec.rejax_algo(config, env_steps)
    keys = common.seed_keys(num_seeds, seed)
    label = f"{algo} seeds={num_seeds:4d}"
    programs = {}
    for name, fn in (("jaxppo", jax.vmap(spec.jaxppo_train(config))), ("rejax", jax.vmap(rejax_algo.train))):
        programs[name] = common.compile_program(fn, keys)
        print(f"  {label} {name:7s} compile {programs[name].total_compile_seconds:8.2f} s", flush=True)
    runs, outputs = run_alternating(programs, keys, repeats, label)
    entry: dict[str, Any] = {"algo": algo, "num_seeds": num_seeds, "repeats": repeats,
                             "env_steps_per_seed": env_steps, "gradient_steps_per_seed": _gradient_steps(config)}
    for name, program in programs.items():
        entry[name] = summarize_runs(num_seeds, env_steps, program, runs[name])
    entry["speedup_jaxppo_over_rejax"] = entry["jaxppo"]["env_steps_per_second"] / entry["rejax"]["env_steps_per_second"]
    entry["speedup_median_runs"] = (entry["rejax"]["median_run_seconds"] / entry["jaxppo"]["median_run_seconds"])
    try:
        returns = final_returns(algo, spec, config, rejax_algo, outputs, keys, eval_episodes, seed)
    except Exception as error:  # noqa: BLE001 - an untimed sanity check must not lose the timings
        print(f"  {label} sanity evaluation failed: {error!r}", flush=True)
        returns = {"jaxppo": {"error": repr(error)}, "rejax": {"error": repr(error)}}
    for name in ("jaxppo", "rejax"):
        entry[name]["final_return"] = returns[name]
    entry["hyperparameters"] = {"jaxppo": _config_dict(config), "rejax": rejax_kwargs,
                                "known_differences": spec.known_differences}
    return entry


def _gradient_steps(config: Any) -> int:
    if hasattr(config, "num_minibatches"):
        return config.num_updates * config.num_epochs * config.num_minibatches
    return config.num_updates * config.gradient_steps


def _config_dict(config: Any) -> dict[str, Any]:
    import jaxppo

    return jaxppo.config_to_dict(config)


# Output ------------------------------------------------------------------------------------------

def render_table(report: dict[str, Any]) -> str:
    rows = []
    for entry in report["results"]:
        for name in ("jaxppo", "rejax"):
            result = entry[name]
            final = result.get("final_return", {})
            rows.append([entry["algo"], entry["num_seeds"], name, result["total_compile_seconds"],
                         result["best_run_seconds"], result["env_steps_per_second"],
                         final.get("eval_return", {}).get("mean"),
                         entry["speedup_jaxppo_over_rejax"] if name == "jaxppo" else None,
                         entry["speedup_median_runs"] if name == "jaxppo" else None])
    return common.format_table(["algo", "seeds", "library", "compile s", "best run s", "env steps/s",
                                "eval return", "speedup", "speedup (median)"], rows)


def plot(report: dict[str, Any], path: str) -> None:
    """Env steps/s against seeds, one panel per algorithm, both libraries (best run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    algos = sorted({e["algo"] for e in report["results"]}, key=list(SPECS).index)
    fig, axes = plt.subplots(1, len(algos), figsize=(5.5 * len(algos), 4), squeeze=False)
    for ax, algo in zip(axes[0], algos):
        entries = sorted((e for e in report["results"] if e["algo"] == algo), key=lambda e: e["num_seeds"])
        for name, marker in (("jaxppo", "o"), ("rejax", "s")):
            seeds = [e["num_seeds"] for e in entries]
            rates = [e[name]["env_steps_per_second"] for e in entries]
            ax.plot(seeds, rates, marker=marker, label=name)
        for e in entries:
            ax.annotate(f"{e['speedup_jaxppo_over_rejax']:.2f}x", (e["num_seeds"], e["jaxppo"]["env_steps_per_second"]),
                        textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        lengths = {e["env_steps_per_seed"] for e in entries}
        steps = (f"{entries[0]['env_steps_per_seed']:,} steps per seed" if len(lengths) == 1 else
                 "steps per seed " + ", ".join(f"{e['env_steps_per_seed']:,} ({e['num_seeds']})" for e in entries))
        ax.set_xscale("log", base=2)
        ax.set_xlabel("seeds (one vmapped program)")
        ax.set_ylabel("env steps / s (all seeds, best run)")
        ax.set_title(f"{algo.upper()} CartPole-v1, {steps}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend()
    machine = report["machine"]
    fig.suptitle(f"{machine['cpu_model']}, {machine['cpu_count_usable']} cores, {machine['jax_backend']}; "
                 "shared machine under load (see load averages in the JSON)", fontsize=9)
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, ".tmp_" + os.path.basename(path))
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def merge(paths: list[str], output: str) -> int:
    """One report from several runs' JSON: results concatenated, each run's machine record kept."""
    import json

    reports = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            reports.append(json.load(handle))
    merged = dict(reports[0])
    merged["results"] = [entry for report in reports for entry in report["results"]]
    merged["merged_from"] = [{"path": os.path.relpath(p, REPO), "machine": r["machine"]} for p, r in zip(paths, reports)]
    common.write_json_atomic(output, merged)
    plot(merged, os.path.splitext(output)[0] + ".png")
    print(render_table(merged))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", choices=list(SPECS), default=["ppo", "dqn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 16, 128])
    parser.add_argument("--total-timesteps", type=int, default=None,
                        help="env steps per seed for every algorithm (default: each config's, 5e5)")
    parser.add_argument("--total-timesteps-at", nargs="*", default=[], metavar="SEEDS=STEPS",
                        help="override the length at one seed count, e.g. 128=100000 (recorded per entry)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds per seed count (default 3)")
    parser.add_argument("--eval-episodes", type=int, default=16, help="untimed sanity evaluation; 0 skips it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "throughput_cpu.json"))
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="measure nothing: join the results of these JSON files (e.g. PPO and DQN run as two "
                             "processes) into --output and its PNG, keeping each file's machine record")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.output)
    if any(s <= 0 for s in args.seeds) or args.repeats <= 0:
        parser.error("--seeds and --repeats must be positive")
    lengths = {}
    for item in args.total_timesteps_at:
        seeds, _, steps = item.partition("=")
        lengths[int(seeds)] = int(steps)

    report: dict[str, Any] = {
        "benchmark": "throughput",
        "machine": common.machine_info(),
        "versions": common.versions("jax", "jaxlib", "flax", "optax", "gymnax", "rejax", "jaxppo", "numpy"),
        "protocol": {
            "program": "jax.jit(jax.vmap(train)) over num_seeds keys; one XLA program per library and seed count",
            "compile": "jit(...).lower(keys) then .compile(), timed separately, excluded from steps/s",
            "run": "compiled(keys) + jax.block_until_ready; libraries alternate each round; best and median",
            "env_steps_per_second": "num_seeds * env_steps_per_seed / best_run_seconds",
            "load": "the machine is shared: every run records the 1/5/15-minute load average before and after",
        },
        "results": [],
    }
    png = os.path.splitext(args.output)[0] + ".png"
    for algo in args.algos:
        for num_seeds in args.seeds:
            entry = measure(algo, num_seeds, lengths.get(num_seeds, args.total_timesteps), args.repeats,
                            args.eval_episodes, args.seed)
            report["results"].append(entry)
            common.write_json_atomic(args.output, report)  # after every entry: an interrupted run keeps data
            plot(report, png)
            print(f"  {algo} seeds={num_seeds}: jaxppo / rejax = {entry['speedup_jaxppo_over_rejax']:.2f}x "
                  f"(median runs {entry['speedup_median_runs']:.2f}x)", flush=True)
    print()
    print(render_table(report))
    print(f"\nwrote {args.output} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
