"""Recurrent PPO throughput: jaxppo's ``memory: gru`` against PureJaxRL's PPO-RNN, alternating in one process.

    python benchmarks/recurrent_throughput.py --purejaxrl PATH/purejaxrl/purejaxrl --seeds 1 8 \
        --output benchmarks/results/recurrent_throughput_cpu.json

PureJaxRL is not a package, so the benchmark imports ``ppo_rnn.py`` from a checkout (``--purejaxrl``, the
folder holding ``ppo_rnn.py`` and ``wrappers.py``); nothing of it is copied here. Its ``make_train`` runs
unchanged with ``DEBUG`` off, after two adaptations to the libraries installed beside jaxppo, made in
that module's namespace only:

* gymnax 1.0 steps return six values; PureJaxRL's wrappers unpack five. Its ``gymnax.make`` is replaced
  by one returning jaxppo's env of that name seen through ``_rejax_compat.FiveValueStepEnv`` (done =
  terminated or truncated), as the rejax benchmarks do.
* flax 0.12's ``GRUCell`` needs ``features`` and initialises its carry through an instance; the file
  calls ``nn.GRUCell()`` and the class-level ``initialize_carry(key, batch_dims, size)`` of older flax.
  Its ``nn`` is given a ``GRUCell`` with PureJaxRL's 128 features and that class-level method (zeros,
  as before).

Workload: PureJaxRL's PPO-RNN settings (4 envs x 128 steps, 4 epochs x 4 minibatches of whole env
sequences, Adam 2.5e-4 annealed, GRU of 128 after a 128-unit ReLU embedding, heads of 128), on
``CartPole-NoVelocity-v1`` by default; jaxppo runs ``configs/ppo_cartpole_novelocity_gru.yaml`` (the same
settings) with ``activation: relu``. Both compile one ``jax.jit(jax.vmap(train))`` over the seeds'
keys; compilation is timed apart; the programs then run alternately ``--repeats`` rounds.

Differences that stay (in the JSON): PureJaxRL's actor and critic share one GRU and one embedding;
jaxppo's have one each (so ``critic_learning_rate`` and PopArt's head rescaling work), about twice the
recurrent work per step. jaxppo's default value side (PopArt, relative value clipping) and its
per-update metrics are on; PureJaxRL computes its own metrics.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import types
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import common  # noqa: E402
from _rejax_compat import FiveValueStepEnv  # noqa: E402

import jaxppo  # noqa: E402
from jaxppo import programs  # noqa: E402
from jaxppo.envs import make_env  # noqa: E402


class _GRUCell128(nn.GRUCell):
    """flax 0.12's GRUCell as PureJaxRL's file calls it: 128 features by default, and the class-level
    ``initialize_carry(key, batch_dims, size)`` of older flax (zeros)."""

    features: int = 128

    @staticmethod
    def initialize_carry(key: Any, batch_dims: tuple[int, ...], size: int) -> jax.Array:  # type: ignore[override]
        return jnp.zeros(tuple(batch_dims) + (size,), jnp.float32)


def purejaxrl_ppo_rnn(path: str) -> Any:
    """PureJaxRL's ``ppo_rnn`` module from the checkout folder ``path``, adapted as the docstring says."""
    if not os.path.exists(os.path.join(path, "ppo_rnn.py")):
        raise SystemExit(f"--purejaxrl {path!r} has no ppo_rnn.py; give the folder holding PureJaxRL's ppo_rnn.py.")
    sys.path.insert(0, path)
    module = importlib.import_module("ppo_rnn")
    module.gymnax = types.SimpleNamespace(make=lambda name: _five_value_env(name))
    module.nn = types.SimpleNamespace(**{**{name: getattr(nn, name) for name in dir(nn) if not name.startswith("_")},
                                         "GRUCell": _GRUCell128})
    return module


def _five_value_env(name: str) -> tuple[Any, Any]:
    env, params = make_env(name)
    return FiveValueStepEnv(env), params


def purejaxrl_config(config: jaxppo.PPOConfig) -> dict[str, Any]:
    return {"LR": config.learning_rate, "NUM_ENVS": config.num_envs, "NUM_STEPS": config.num_steps,
            "TOTAL_TIMESTEPS": config.total_timesteps, "UPDATE_EPOCHS": config.num_epochs,
            "NUM_MINIBATCHES": config.num_minibatches, "GAMMA": config.gamma, "GAE_LAMBDA": config.gae_lambda,
            "CLIP_EPS": config.clip_epsilon, "ENT_COEF": config.entropy_coef, "VF_COEF": config.value_loss_coef,
            "MAX_GRAD_NORM": config.max_grad_norm, "ENV_NAME": config.env, "ANNEAL_LR": config.anneal_lr,
            "DEBUG": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--purejaxrl", required=True, help="the folder holding PureJaxRL's ppo_rnn.py")
    parser.add_argument("--seeds", type=common.parse_int_list, default=[1, 8])
    parser.add_argument("--total-timesteps", type=int, default=None, help="env steps per seed (default: the config's)")
    parser.add_argument("--env", default="CartPole-NoVelocity-v1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    overrides = ["activation=relu", f"env={args.env}"]
    if args.total_timesteps:
        overrides.append(f"total_timesteps={args.total_timesteps}")
    config = jaxppo.apply_overrides(jaxppo.load_config("ppo_cartpole_novelocity_gru"), overrides)
    ppo_rnn = purejaxrl_ppo_rnn(os.path.abspath(args.purejaxrl))
    theirs = purejaxrl_config(config)
    env_steps = (config.total_timesteps // (config.num_envs * config.num_steps)) * config.num_envs * config.num_steps
    out: dict[str, Any] = {
        "benchmark": "recurrent_throughput", "machine": common.machine_info(), "command": " ".join(["python"] + sys.argv),
        "versions": common.versions("jax", "flax", "optax", "gymnax", "distrax"),
        "env": config.env, "env_steps_per_seed": env_steps, "jaxppo_config": "ppo_cartpole_novelocity_gru",
        "jaxppo_overrides": overrides, "purejaxrl_config": theirs,
        "differences": ["PureJaxRL: one GRU and embedding shared by actor and critic; jaxppo: one each",
                        "jaxppo: PopArt and relative value clipping (its defaults); PureJaxRL: plain clipped value loss",
                        "PureJaxRL's env sees done = terminated or truncated (five-value step); jaxppo bootstraps truncations"],
        "results": [],
    }
    for num_seeds in args.seeds:
        keys = common.seed_keys(num_seeds)
        fns = {
            "jaxppo": jax.vmap(programs.make_train(config)),
            "purejaxrl": jax.vmap(ppo_rnn.make_train(dict(theirs))),
        }
        compiled, times, _ = common.compile_and_time_interleaved(fns, (keys,), args.repeats, label=f"{num_seeds:4d} seeds")
        row = {name: common.throughput_result(num_seeds, env_steps, compiled[name], times[name]) for name in fns}
        row["speedup"] = row["jaxppo"]["env_steps_per_second"] / row["purejaxrl"]["env_steps_per_second"]
        out["results"].append(row)
        common.write_json_atomic(args.output, out)
        print(f"{num_seeds:4d} seeds: jaxppo {row['jaxppo']['env_steps_per_second']:,.0f} env steps/s, PureJaxRL "
              f"{row['purejaxrl']['env_steps_per_second']:,.0f}, speedup {row['speedup']:.2f}", flush=True)


if __name__ == "__main__":
    main()
