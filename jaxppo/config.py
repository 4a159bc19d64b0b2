"""Typed, frozen configuration for every algorithm, loaded from YAML.

Each config is a `flax.struct.dataclass`:

* sizes and modes (``num_envs``, ``hidden_sizes``, ``value_clipping`` ...) are *static* fields: they
  decide array shapes and which code is traced, so they are part of the compiled program;
* numeric hyperparameters (learning rates, clip ranges, coefficients) are *pytree leaves*: a sweep can
  stack several configs with ``jax.tree.map(jnp.stack, ...)`` and ``jax.vmap`` over them, and the same
  compiled program serves every value.

Validation runs in ``__post_init__`` on concrete Python numbers only (a leaf that is a tracer or an
array during a vmapped sweep is left alone), and every message names the field, the value and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
from typing import Any, Mapping, Optional

import yaml
from flax import struct

__all__ = [
    "PPOConfig",
    "DQNConfig",
    "RunSettings",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "config_to_dict",
    "CONFIG_CLASSES",
]


def static(default: Any) -> Any:
    """A field that is part of the compiled program (a size or a mode), not a pytree leaf."""
    return struct.field(pytree_node=False, default=default)


def leaf(default: Any) -> Any:
    """A numeric hyperparameter: a pytree leaf that a sweep may vmap over."""
    return struct.field(pytree_node=True, default=default)


def _is_concrete_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        hint = difflib.get_close_matches(str(value), choices, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}.{extra}")


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name}={value!r} must be a positive integer.")


def _check_range(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
                 high_open: bool = False, optional: bool = False) -> None:
    """Checks ``low <(=) value <(=) high`` for a concrete number; tracers and arrays pass."""
    if value is None:
        if optional:
            return
        raise ValueError(f"{name} must be a number, not null.")
    if isinstance(value, (bool, str, list, tuple, dict, set)):
        # A list here (``--set learning_rate=[1e-3,3e-4]``) would pass silently and fail deep inside
        # training; a sweep over values stacks whole configs instead (``jaxppo.stack_configs``).
        shown = list(value) if isinstance(value, tuple) else value  # YAML lists arrive as tuples
        raise ValueError(f"{name}={shown!r} must be a single number.")
    if not _is_concrete_number(value):
        return  # a tracer or array leaf inside a vmapped sweep
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be finite.")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name}={value!r} must lie in {left}{low}, {high}{right}.")


def _check_env_name(name: str) -> None:
    from jaxppo.envs import known_env_names  # local: config is the ground floor
    from jaxppo.envs.core import SUITES, installed_suites, suite_env_names, suite_of

    suite = suite_of(name)
    if suite is not None and not installed_suites()[suite]:
        raise ValueError(f"env={name!r} needs the {suite} package: pip install 'jaxppo[{SUITES[suite].extra}]'.")
    # A name is checked importing at most its own suite (brax alone takes seconds to import).
    names = suite_env_names(suite) if suite is not None else known_env_names(include_suites=False)
    if name not in names:
        hint = difflib.get_close_matches(name, names, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(
            f"env={name!r} is not a gymnax environment.{extra} Pass your own env object to "
            "make_train(config, env=..., env_params=...) to train on a custom environment."
        )


@struct.dataclass
class RunSettings:
    """Host-side run settings shared by every algorithm (chunking, checkpoints, evaluation)."""

    updates_per_chunk: int = static(50)
    checkpoint_every_chunks: int = static(10)
    eval_interval: int = static(0)
    eval_episodes: int = static(16)
    # Per-seed metric history (metrics_per_seed.npz, checkpoints, diagnosis) keeps one column per this
    # many updates: the block's mean (integer counters: its last value). metrics.jsonl still has every
    # update's quantiles over seeds. 1 keeps everything; raise it when seeds x updates x metrics would
    # not fit in host memory (docs/scaling.md, "Thousands of seeds within memory").
    metrics_every: int = static(1)


_ACTIVATIONS = ("tanh", "relu", "gelu", "silu", "elu")


@struct.dataclass
class PPOConfig:
    """Proximal Policy Optimization, with every stability control from the debugging reports as a field.

    Sizes and optimiser are PureJaxRL's CartPole PPO (4 envs x 128 steps, 4 epochs x 4 minibatches,
    Adam 2.5e-4 annealed, clip 0.2, GAE 0.99/0.95, global-norm clipping 0.5). The value side is the one
    that survives any reward scale: PopArt return normalisation, relative value clipping and a critic
    whose output layer starts at zero. With PureJaxRL's own value side (no normalisation, absolute
    clipping at 0.2, head init 1.0) seeds fail at reward scales 1e3 (value loss explodes) and 1e-3
    (the untrained critic's noise swamps the rewards); docs/stability.md has the measurements. PureJaxRL's
    exact settings are ``configs/ppo_cartpole_purejaxrl.yaml``.
    """

    algorithm: str = static("ppo")
    env: str = static("CartPole-v1")
    # Sizes: the shape of the compiled program.
    num_envs: int = static(4)
    num_steps: int = static(128)
    total_timesteps: int = static(500_000)
    num_epochs: int = static(4)
    num_minibatches: int = static(4)
    hidden_sizes: tuple[int, ...] = static((64, 64))
    activation: str = static("tanh")
    torso: str = static("mlp")  # mlp | conv: a 3x3 conv over [H, W, C] observations (grids, pixels) first
    # With torso: conv, the [H, W, C] field of a named observation (Jumanji's "grid") the conv reads; the
    # observation's other fields go beside its features into the MLP. None: the whole observation.
    conv_field: Optional[str] = static(None)
    # Memory: "gru" gives actor and critic a GRU after their first layer (docs/memory.md).
    memory: str = static("none")  # none | gru
    memory_size: int = static(128)
    # Legal-action masks: where the env says which actions are legal (an action_mask(state, params)
    # method, as jaxppo's Jumanji adapter has), illegal actions get probability zero (docs/envs.md).
    action_mask: bool = static(True)
    # Modes.
    return_estimator: str = static("gae")  # gae | monte_carlo
    advantage_normalization: str = static("minibatch")  # minibatch | batch | off
    value_clipping: str = static("relative")  # off | absolute | relative
    value_loss: str = static("mse")  # mse | huber | mixed
    return_normalization: str = static("popart")  # off | batch | running | popart
    value_target_transform: str = static("off")  # off | symlog (DreamerV3; needs return_normalization off)
    reward_normalization: str = static("off")  # off | running
    observation_normalization: bool = static(False)
    anneal_lr: bool = static(True)
    # Numeric hyperparameters (pytree leaves).
    learning_rate: float = leaf(2.5e-4)
    critic_learning_rate: Optional[float] = leaf(None)  # None: the critic uses learning_rate
    adam_eps: float = leaf(1e-5)
    gamma: float = leaf(0.99)
    gae_lambda: float = leaf(0.95)
    clip_epsilon: float = leaf(0.2)
    value_clip_epsilon: float = leaf(0.2)
    value_clip_floor: float = leaf(1.0)
    huber_delta: float = leaf(1.0)
    value_loss_coef: float = leaf(0.5)
    entropy_coef: float = leaf(0.01)
    max_grad_norm: Optional[float] = leaf(0.5)  # None: no clipping
    target_kl: Optional[float] = leaf(None)  # None: no early stopping
    advantage_std_floor: float = leaf(1e-8)
    return_scale: float = leaf(1.0)
    reward_clip: float = leaf(10.0)
    observation_clip: float = leaf(10.0)
    log_std_init: float = leaf(0.0)
    # Scale of the critic's orthogonal output layer at init (PureJaxRL and CleanRL: 1.0). At 0 every
    # initial value prediction is 0, so the first advantages come from the rewards alone, whatever their
    # scale; at 1.0 the random initial predictions (order 0.1-1) swamp rewards of order 1e-3.
    value_head_init_scale: float = static(0.0)
    # Multiplies the env's reward before anything sees it (learner, episode returns, evaluation), so
    # the same task can be run at any reward scale; reported returns are then in scaled units.
    env_reward_scale: float = leaf(1.0)
    # Host-side run settings.
    run: RunSettings = static(RunSettings())

    # Derived sizes ------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Transitions collected per update: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        """Rollout-and-update iterations: ``total_timesteps // batch_size``."""
        return self.total_timesteps // self.batch_size

    @property
    def steps_per_update(self) -> int:
        return self.batch_size

    def __post_init__(self) -> None:
        _check_choice("algorithm", self.algorithm, ("ppo",))
        for name in ("num_envs", "num_steps", "total_timesteps", "num_epochs", "num_minibatches"):
            _check_positive_int(name, getattr(self, name))
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_envs*num_steps = {self.num_envs}*{self.num_steps} = {self.batch_size} is not "
                f"divisible by num_minibatches={self.num_minibatches}; choose num_minibatches that "
                f"divides {self.batch_size}."
            )
        if self.total_timesteps < self.batch_size:
            raise ValueError(
                f"total_timesteps={self.total_timesteps} is smaller than one batch "
                f"(num_envs*num_steps = {self.batch_size}); raise total_timesteps."
            )
        if not isinstance(self.hidden_sizes, tuple) or not self.hidden_sizes or any(
            not isinstance(h, int) or h <= 0 for h in self.hidden_sizes
        ):
            raise ValueError(f"hidden_sizes={self.hidden_sizes!r} must be a non-empty list of positive ints.")
        _check_choice("activation", self.activation, _ACTIVATIONS)
        _check_choice("torso", self.torso, ("mlp", "conv"))
        if self.conv_field is not None and (not isinstance(self.conv_field, str) or self.torso != "conv"):
            raise ValueError(f"conv_field={self.conv_field!r} names the observation field a conv torso reads; it needs "
                             "torso: conv and a field name such as grid.")
        _check_choice("memory", self.memory, ("none", "gru"))
        _check_positive_int("memory_size", self.memory_size)
        if self.memory != "none" and self.num_envs % self.num_minibatches:
            raise ValueError(
                f"memory={self.memory!r} trains on whole env sequences, so num_minibatches={self.num_minibatches} "
                f"must divide num_envs={self.num_envs}; choose num_minibatches that divides {self.num_envs}."
            )
        _check_choice("return_estimator", self.return_estimator, ("gae", "monte_carlo"))
        _check_choice("advantage_normalization", self.advantage_normalization, ("minibatch", "batch", "off"))
        _check_choice("value_clipping", self.value_clipping, ("off", "absolute", "relative"))
        _check_choice("value_loss", self.value_loss, ("mse", "huber", "mixed"))
        _check_choice("return_normalization", self.return_normalization, ("off", "batch", "running", "popart"))
        _check_choice("value_target_transform", self.value_target_transform, ("off", "symlog"))
        if self.value_target_transform != "off" and self.return_normalization != "off":
            raise ValueError(
                f"value_target_transform={self.value_target_transform!r} with return_normalization="
                f"{self.return_normalization!r}: both rescale the value targets; set one of them to 'off'."
            )
        _check_choice("reward_normalization", self.reward_normalization, ("off", "running"))
        for name in ("observation_normalization", "anneal_lr"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be true or false.")
        _check_range("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        _check_range("critic_learning_rate", self.critic_learning_rate, 0.0, 1.0, low_open=True, optional=True)
        _check_range("adam_eps", self.adam_eps, 0.0, 1.0, low_open=True)
        _check_range("gamma", self.gamma, 0.0, 1.0)
        _check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        _check_range("clip_epsilon", self.clip_epsilon, 0.0, math.inf, low_open=True)
        _check_range("value_clip_epsilon", self.value_clip_epsilon, 0.0, math.inf, low_open=True)
        _check_range("value_clip_floor", self.value_clip_floor, 0.0, math.inf, low_open=True)
        _check_range("huber_delta", self.huber_delta, 0.0, math.inf, low_open=True)
        _check_range("value_loss_coef", self.value_loss_coef, 0.0, math.inf)
        _check_range("entropy_coef", self.entropy_coef, 0.0, math.inf)
        _check_range("max_grad_norm", self.max_grad_norm, 0.0, math.inf, low_open=True, optional=True)
        _check_range("target_kl", self.target_kl, 0.0, math.inf, low_open=True, optional=True)
        _check_range("advantage_std_floor", self.advantage_std_floor, 0.0, math.inf)
        _check_range("return_scale", self.return_scale, 0.0, math.inf, low_open=True)
        _check_range("reward_clip", self.reward_clip, 0.0, math.inf, low_open=True)
        _check_range("observation_clip", self.observation_clip, 0.0, math.inf, low_open=True)
        _check_range("log_std_init", self.log_std_init, -20.0, 5.0)
        _check_range("value_head_init_scale", self.value_head_init_scale, 0.0, 10.0)
        _check_range("env_reward_scale", self.env_reward_scale, 0.0, math.inf, low_open=True)
        _check_run_settings(self.run, self.num_updates)


@struct.dataclass
class DQNConfig:
    """Deep Q-learning with a replay buffer carried as pure state, and report 002's stability controls.

    Defaults follow CleanRL / PureJaxRL CartPole DQN (mean-squared TD loss) with three changes, each
    measured in docs/dqn.md: global-norm gradient clipping at 10 (report 002's fix); rewards divided by
    the running root mean square of the discounted return with the Q head rescaled along
    (``reward_normalization="running"``), so training does not depend on the reward scale; and the
    learning rate annealed linearly to 0 (``anneal_lr``) with a replay buffer five times CleanRL's,
    without which seeds that had solved CartPole fell back late in the run. ``configs/dqn_cartpole_cleanrl.yaml`` keeps CleanRL's exact settings.
    ``loss: huber`` is there for reward-clipped tasks (MinAtar); with ``huber_delta=1`` on CartPole's
    unscaled returns it diverged, which is why it is not the default.
    """

    algorithm: str = static("dqn")
    env: str = static("CartPole-v1")
    # Sizes.
    num_envs: int = static(1)
    total_timesteps: int = static(500_000)
    buffer_size: int = static(50_000)
    batch_size: int = static(128)
    learning_starts: int = static(10_000)
    train_frequency: int = static(10)
    gradient_steps: int = static(1)
    target_update_interval: int = static(500)
    hidden_sizes: tuple[int, ...] = static((120, 84))
    activation: str = static("relu")
    torso: str = static("mlp")  # mlp | conv (MinAtar)
    conv_field: Optional[str] = static(None)  # with torso: conv, the named [H, W, C] observation field it reads
    # Memory: "gru" gives the Q-network a GRU after its first layer, and learning replays stored sequences
    # (R2D2's recipe: each step's memory is stored, burn_in steps replayed without a gradient refresh it,
    # the TD loss is taken on the next sequence_length steps; docs/memory.md). batch_size counts sequences.
    memory: str = static("none")  # none | gru
    memory_size: int = static(128)
    sequence_length: int = static(16)
    burn_in: int = static(8)
    # Modes.
    target_update: str = static("hard")  # hard | polyak
    double_dqn: bool = static(False)
    # true: the learning rate falls linearly to 0 over the gradient steps after learning_starts (an
    # optax schedule), so the last updates no longer move a policy that has learned.
    anneal_lr: bool = static(True)
    # Legal-action masks, where the env has them (docs/envs.md): the greedy and the exploring action are
    # legal, and TD targets bootstrap from the best legal next action.
    action_mask: bool = static(True)
    loss: str = static("mse")  # mse | huber
    value_target_transform: str = static("off")  # off | symlog: the network predicts symlog(Q)
    # off | running: rewards divided by the running std of the discounted return, the Q head rescaled
    # with it so Q in return units survives every statistics update (scale-only PopArt).
    reward_normalization: str = static("running")
    # Numeric hyperparameters (pytree leaves).
    learning_rate: float = leaf(2.5e-4)
    adam_eps: float = leaf(1e-8)
    gamma: float = leaf(0.99)
    tau: float = leaf(1.0)
    huber_delta: float = leaf(1.0)
    td_target_clip: Optional[float] = leaf(None)  # None: off (report 002 uses 50.0)
    max_grad_norm: Optional[float] = leaf(10.0)  # None: off (report 002's failure)
    epsilon_start: float = leaf(1.0)
    epsilon_end: float = leaf(0.05)
    epsilon_decay_fraction: float = leaf(0.5)
    # Multiplies the env's reward before anything sees it; reported returns are in scaled units.
    env_reward_scale: float = leaf(1.0)
    # Host-side run settings.
    run: RunSettings = static(RunSettings())

    @property
    def num_updates(self) -> int:
        """Compiled iterations: each steps every env ``train_frequency`` times, then learns."""
        return self.total_timesteps // self.steps_per_update

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.train_frequency

    def __post_init__(self) -> None:
        _check_choice("algorithm", self.algorithm, ("dqn",))
        for name in ("num_envs", "total_timesteps", "buffer_size", "batch_size", "train_frequency",
                     "gradient_steps", "target_update_interval"):
            _check_positive_int(name, getattr(self, name))
        if not isinstance(self.learning_starts, int) or self.learning_starts < 0:
            raise ValueError(f"learning_starts={self.learning_starts!r} must be a non-negative integer.")
        if self.total_timesteps < self.steps_per_update:
            raise ValueError(
                f"total_timesteps={self.total_timesteps} is smaller than one update "
                f"(num_envs*train_frequency = {self.steps_per_update}); raise total_timesteps."
            )
        if self.batch_size > self.buffer_size:
            raise ValueError(
                f"batch_size={self.batch_size} is larger than buffer_size={self.buffer_size}; "
                "raise buffer_size or lower batch_size."
            )
        if self.buffer_size < self.steps_per_update:
            raise ValueError(
                f"buffer_size={self.buffer_size} must hold one update's transitions "
                f"(num_envs*train_frequency = {self.steps_per_update}); raise buffer_size."
            )
        if not isinstance(self.hidden_sizes, tuple) or not self.hidden_sizes or any(
            not isinstance(h, int) or h <= 0 for h in self.hidden_sizes
        ):
            raise ValueError(f"hidden_sizes={self.hidden_sizes!r} must be a non-empty list of positive ints.")
        _check_choice("activation", self.activation, _ACTIVATIONS)
        _check_choice("torso", self.torso, ("mlp", "conv"))
        if self.conv_field is not None and (not isinstance(self.conv_field, str) or self.torso != "conv"):
            raise ValueError(f"conv_field={self.conv_field!r} names the observation field a conv torso reads; it needs "
                             "torso: conv and a field name such as grid.")
        _check_choice("memory", self.memory, ("none", "gru"))
        for name in ("memory_size", "sequence_length"):
            _check_positive_int(name, getattr(self, name))
        if not isinstance(self.burn_in, int) or self.burn_in < 0:
            raise ValueError(f"burn_in={self.burn_in!r} must be a non-negative integer.")
        if self.memory != "none":
            window = self.burn_in + self.sequence_length
            if self.buffer_size % self.num_envs:
                raise ValueError(
                    f"memory={self.memory!r} replays each env's own stream of steps, so buffer_size={self.buffer_size} "
                    f"must be a multiple of num_envs={self.num_envs}.")
            if self.buffer_size // self.num_envs < window:
                raise ValueError(
                    f"memory={self.memory!r}: each env keeps buffer_size/num_envs = {self.buffer_size // self.num_envs} "
                    f"steps, fewer than one replayed sequence (burn_in + sequence_length = {window}); raise buffer_size.")
            if self.learning_starts < self.num_envs * window:
                raise ValueError(
                    f"memory={self.memory!r}: learning_starts={self.learning_starts} must cover one replayed sequence "
                    f"per env (num_envs * (burn_in + sequence_length) = {self.num_envs * window}); raise learning_starts.")
        _check_choice("target_update", self.target_update, ("hard", "polyak"))
        _check_choice("loss", self.loss, ("mse", "huber"))
        _check_choice("value_target_transform", self.value_target_transform, ("off", "symlog"))
        _check_choice("reward_normalization", self.reward_normalization, ("off", "running"))
        if self.reward_normalization != "off" and self.value_target_transform == "symlog":
            raise ValueError(f"reward_normalization={self.reward_normalization!r} rescales the Q head linearly, which symlog targets do "
                             "not allow; use one of the two (value_target_transform: off).")
        for name in ("double_dqn", "anneal_lr"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be true or false.")
        _check_range("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        _check_range("adam_eps", self.adam_eps, 0.0, 1.0, low_open=True)
        _check_range("gamma", self.gamma, 0.0, 1.0)
        _check_range("tau", self.tau, 0.0, 1.0, low_open=True)
        _check_range("huber_delta", self.huber_delta, 0.0, math.inf, low_open=True)
        _check_range("td_target_clip", self.td_target_clip, 0.0, math.inf, low_open=True, optional=True)
        _check_range("max_grad_norm", self.max_grad_norm, 0.0, math.inf, low_open=True, optional=True)
        _check_range("epsilon_start", self.epsilon_start, 0.0, 1.0)
        _check_range("epsilon_end", self.epsilon_end, 0.0, 1.0)
        _check_range("epsilon_decay_fraction", self.epsilon_decay_fraction, 0.0, 1.0, low_open=True)
        _check_range("env_reward_scale", self.env_reward_scale, 0.0, math.inf, low_open=True)
        _check_run_settings(self.run, self.num_updates)


def _check_run_settings(run: RunSettings, num_updates: int) -> None:
    if not isinstance(run, RunSettings):
        raise ValueError(f"run must be a mapping of run settings, got {run!r}.")
    _check_positive_int("run.updates_per_chunk", run.updates_per_chunk)
    _check_positive_int("run.checkpoint_every_chunks", run.checkpoint_every_chunks)
    _check_positive_int("run.eval_episodes", run.eval_episodes)
    if not isinstance(run.eval_interval, int) or run.eval_interval < 0:
        raise ValueError(f"run.eval_interval={run.eval_interval!r} must be 0 (off) or a positive integer.")
    _check_positive_int("run.metrics_every", run.metrics_every)
    if run.metrics_every > 1 and run.eval_interval % run.metrics_every:
        raise ValueError(f"run.eval_interval={run.eval_interval} must be a multiple of run.metrics_every="
                         f"{run.metrics_every}, so that every evaluation ends a block of recorded updates.")


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


# CleanRL / PureJaxRL / Stable-Baselines names that spelling alone does not lead to.
_OTHER_LIBRARIES_NAMES = {
    "lr": "learning_rate", "ent_coef": "entropy_coef", "vf_coef": "value_loss_coef",
    "clip_coef": "clip_epsilon", "clip_eps": "clip_epsilon", "clip_range": "clip_epsilon",
    "update_epochs": "num_epochs", "n_epochs": "num_epochs", "n_steps": "num_steps",
    "norm_adv": "advantage_normalization", "clip_vloss": "value_clipping",
    "hidden_size": "hidden_sizes", "net_arch": "hidden_sizes",
}


def _nearest_key(key: str, valid: list[str]) -> Optional[str]:
    alias = _OTHER_LIBRARIES_NAMES.get(key.rsplit(".", 1)[-1])
    if alias is not None and alias in valid:
        return alias
    hint = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return hint[0] if hint else None


def _unknown_key_error(key: str, valid: list[str], where: str, what: str = "key") -> ValueError:
    hint = _nearest_key(key, valid)
    extra = f" Did you mean {hint!r}?" if hint else ""
    return ValueError(f"unknown {what} {key!r} in {where}.{extra}")


def _reject_unknown_fields(cls: type) -> type:
    """Makes ``cls(...)`` and ``cls.replace(...)`` refuse an unknown field with a ValueError naming the
    nearest valid one, as YAML keys do (the dataclass itself raises a bare TypeError)."""
    original_init = cls.__init__
    valid = _field_names(cls)

    @functools.wraps(original_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        for key in kwargs:
            if key not in valid:
                raise _unknown_key_error(key, valid, cls.__name__, what="field")
        original_init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


for _cls in (PPOConfig, DQNConfig, RunSettings):
    _reject_unknown_fields(_cls)

CONFIG_CLASSES: dict[str, type] = {"ppo": PPOConfig, "dqn": DQNConfig}


# YAML <-> config ---------------------------------------------------------------------------------

def _coerce(cls: type, name: str, value: Any) -> Any:
    """YAML gives lists and ints where the config wants tuples and floats."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    default = field.default
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, bool) and isinstance(default, str):
        return "on" if value else "off"  # YAML 1.1 reads a bare off / on as a boolean
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and isinstance(default, float):
        try:
            return float(value)  # YAML 1.1 reads "1e-3" as a string
        except ValueError:
            return value
    if isinstance(value, str) and (default is None) and name not in ("env",):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _run_settings_from(mapping: Any, where: str) -> RunSettings:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"'run' in {where} must be a mapping, got {mapping!r}.")
    valid = _field_names(RunSettings)
    for key in mapping:
        if key not in valid:
            raise _unknown_key_error(f"{key}", [f"{v}" for v in valid], f"{where} (section 'run')")
    return RunSettings(**dict(mapping))


def config_from_dict(data: Mapping[str, Any], where: str = "config") -> Any:
    """Builds the config class named by ``data['algorithm']`` (default ``ppo``), validating every key."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a YAML mapping of field: value, got {type(data).__name__}.")
    algorithm = data.get("algorithm", "ppo")
    if algorithm not in CONFIG_CLASSES:
        hint = difflib.get_close_matches(str(algorithm), list(CONFIG_CLASSES), n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"algorithm={algorithm!r} in {where} is not one of {list(CONFIG_CLASSES)}.{extra}")
    cls = CONFIG_CLASSES[algorithm]
    valid = _field_names(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in valid:
            raise _unknown_key_error(str(key), valid, where)
        if key == "run":
            kwargs[key] = _run_settings_from(value, where)
        else:
            kwargs[key] = _coerce(cls, key, value)
    config = cls(**kwargs)
    _check_env_name(config.env)
    return config


def load_config(path: str | os.PathLike[str]) -> Any:
    """Reads a YAML file into ``PPOConfig`` or ``DQNConfig`` (chosen by its ``algorithm`` key).

    ``path`` may be a file path or the bare name of a file in the repository's ``configs/`` folder
    (``"ppo_cartpole"`` or ``"ppo_cartpole.yaml"``). Errors are ``ValueError`` with one clear line.
    """
    resolved = resolve_config_path(path)
    try:
        with open(resolved, "r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except IsADirectoryError:
        raise ValueError(f"cannot read config file {str(resolved)!r}: it is a directory, not a YAML file.") from None
    except UnicodeDecodeError:
        raise ValueError(f"config file {str(resolved)!r} is not a text (UTF-8) file.") from None
    except OSError as error:
        raise ValueError(f"cannot read config file {str(resolved)!r}: {error.strerror or error}.") from None
    except yaml.YAMLError as error:
        raise ValueError(f"config file {str(resolved)!r} is not valid YAML: {error}.") from None
    if data is None:
        # An empty file is almost always a mistake (a wrong path, an unsaved editor buffer); training
        # the defaults silently would hide it. The defaults are one `jaxppo config show` away.
        raise ValueError(f"config file {str(resolved)!r} is empty; write at least 'algorithm: ppo' (or dqn) "
                         "to train that algorithm's defaults.")
    if isinstance(data, Mapping) and "variants" in data and "algorithm" not in data:
        # A lab grid (base + variants), not one config: name the verb that runs it.
        raise ValueError(f"{str(resolved)!r} is a lab grid (it has variants), not a training config; "
                         f"run it with: jaxppo lab {path}")
    return config_from_dict(data, where=str(resolved))


def configs_dir(package_dir: Optional[str] = None) -> str:
    """The bundled configs: ``jaxppo/bundled_configs`` in an installed wheel, else the repository's ``configs/``.

    The wheel's folder is the top-level ``configs/`` copied at build time (``pyproject.toml``), so each
    YAML has one source and loads by name from a clone, an editable install or a wheel alike.
    ``package_dir`` (default: this package's folder) is there for tests.
    """
    package_dir = package_dir or os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(package_dir, "bundled_configs")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(package_dir), "configs")


def resolve_bundled_path(path: str | os.PathLike[str], folder: str, what: str = "config") -> str:
    """``path`` as given if it exists, else ``folder/path`` or ``folder/path.yaml``; otherwise a one-line
    ``ValueError`` naming the nearest YAML in ``folder`` (or listing them). Serves configs and lab grids."""
    path = os.fspath(path)
    if os.path.exists(path):
        return path
    candidates = [path, path + ".yaml"]
    parts = os.path.normpath(path).split(os.sep)
    if len(parts) > 1 and parts[0] == "configs":
        # "configs/ppo_cartpole.yaml" as the README writes it, asked for outside a clone: the bundled file.
        rest = os.path.join(*parts[2:]) if folder.rstrip(os.sep).endswith("lab") and parts[1:2] == ["lab"] \
            else os.path.join(*parts[1:])
        candidates += [rest, rest + ".yaml"] if rest else []
    for candidate in candidates:
        full = os.path.join(folder, candidate)
        if os.path.isfile(full):
            return full
    names = sorted(n[:-5] for n in os.listdir(folder) if n.endswith(".yaml")) if os.path.isdir(folder) else []
    hint = difflib.get_close_matches(os.path.basename(path).removesuffix(".yaml"), names, n=1)
    extra = f" Did you mean {hint[0]!r}?" if hint else (f" Bundled {what}s: {', '.join(names)}." if names else "")
    raise ValueError(f"{what} file {path!r} does not exist.{extra}")


def resolve_config_path(path: str | os.PathLike[str]) -> str:
    """A config's file; a bundled lab grid's name (``report000``) is answered with the ``jaxppo lab`` line."""
    try:
        return resolve_bundled_path(path, configs_dir(), "config")
    except ValueError:
        name = os.path.basename(os.fspath(path)).removesuffix(".yaml")
        if os.path.isfile(os.path.join(configs_dir(), "lab", name + ".yaml")):
            raise ValueError(f"{os.fspath(path)!r} is a bundled lab grid, not a training config; run it with: "
                             f"jaxppo lab {name}") from None
        raise


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a config (tuples become lists), the inverse of ``config_from_dict``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, RunSettings):
            value = {g.name: getattr(value, g.name) for g in dataclasses.fields(value)}
        elif isinstance(value, tuple):
            value = list(value)
        elif hasattr(value, "item") and not isinstance(value, (int, float)):
            value = value.item()
        out[f.name] = value
    return out


def apply_overrides(config: Any, overrides: Mapping[str, Any] | list[str]) -> Any:
    """Returns ``config`` with ``key=value`` overrides applied and validated like YAML.

    ``overrides`` is a mapping or a list of ``"key=value"`` strings whose values are parsed as YAML
    (``--set learning_rate=1e-3 --set hidden_sizes=[32,32] --set run.eval_interval=10``).
    """
    if isinstance(overrides, list):
        parsed: dict[str, Any] = {}
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"override {item!r} must look like key=value.")
            key, raw = item.split("=", 1)
            try:
                parsed[key.strip()] = yaml.safe_load(raw)
            except yaml.YAMLError:
                parsed[key.strip()] = raw
        overrides = parsed
    data = config_to_dict(config)
    for key, value in overrides.items():
        if key.startswith("run."):
            sub = key[len("run."):]
            valid = _field_names(RunSettings)
            if sub not in valid:
                raise _unknown_key_error(key, [f"run.{v}" for v in valid], "overrides")
            data["run"][sub] = value
            continue
        if key == "algorithm" and value != data["algorithm"]:
            raise ValueError("override 'algorithm' cannot change the algorithm; use another config file.")
        if key not in data:
            valid = list(data) + [f"run.{v}" for v in _field_names(RunSettings)]
            raise _unknown_key_error(key, valid, "overrides")
        data[key] = value
    return config_from_dict(data, where="overrides")
