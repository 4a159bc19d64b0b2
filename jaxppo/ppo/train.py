"""PPO as one compiled program: rollout, return estimation and the epoch/minibatch updates.

Every scan body is a top-level function taking a static ``PPOContext`` first (bound with
``functools.partial``), so each piece can be imported and tested on its own:

    rollout           draws the rollout's randomness, then scans rollout_step
    rollout_step      one environment step for all envs                       (scanned num_steps times)
    estimate_returns  critic values, reward scaling, GAE / Monte Carlo, return statistics
    minibatch_update  one gradient step, skipped once KL early stopping fired  (scanned per minibatch)
    epoch_update      permute the batch and run the minibatches                 (scanned num_epochs times)
    train_step        rollout + estimate_returns + epochs + metrics             (scanned per update)

Units. The critic predicts ``c = return_scale * normalize(R)`` where ``normalize`` uses the return
statistics (identity when ``return_normalization="off"``; ``symlog`` when
``value_target_transform="symlog"``). Before GAE the predictions are mapped back to raw return units
with the statistics the critic was trained against (the previous update's); only then are advantages
computed, and only the *targets* are re-normalised with the updated statistics. Report 004's fix
normalises the targets but feeds normalised predictions into GAE, mixing units: its advantages are
``r + gamma * v_norm' - v_norm``, dominated by the raw reward scale.

Value clipping is a trust region around the critic as it starts the update: its centre is the
critic's output at rollout time, as the network stands after any statistics update. With
``return_normalization="popart"`` the critic's output layer is rescaled when the statistics move
(``ppo.networks.rescale_critic_head``), so that centre is also the rollout-time prediction read in the
new statistics' units: network, centre and targets agree. With ``running`` or ``batch`` the network is
not rescaled, and the centre stays its raw output. Re-expressing it in the new units instead (tried)
puts the critic outside its own clip window at the start of every update while the statistics move,
and the clipped loss then zeroes its gradient: report 000's applied fixes went from healthy on 64/64
seeds to ``value_clip_saturated`` on 64/64 (``docs/stability.md``, lab grid ``report000``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxppo import diagnostics, shuffle
from jaxppo import running_stats as rs
from jaxppo.algorithm import Algorithm, bind_algorithm
from jaxppo.config import PPOConfig
from jaxppo.envs.core import conv_input, has_action_mask, legal_actions
from jaxppo.envs.evaluation import evaluate_policy
from jaxppo.envs import (
    ActionSpec,
    EpisodeTracker,
    action_spec,
    counter_metrics,
    finished_episode_means,
    init_tracker,
    observation_shape,
    resolve_env,
    step_counters,
    track_episodes,
)
from jaxppo.ppo import losses
from jaxppo.networks import initial_memory
from jaxppo.ppo.networks import (
    Actor,
    Critic,
    PolicyOutput,
    RecurrentActor,
    RecurrentCritic,
    action_noise,
    entropy,
    log_prob,
    mask_policy,
    mode,
    rescale_critic_head,
    sample_action,
    sample_action_with_noise,
)
from jaxppo.envs.stepping import StepNoise, draw_step_noise, step_envs
from jaxppo.returns import gae_advantages, monte_carlo_returns, running_discounted_return, symexp, symlog
from jaxppo.transforms import gradient_stats, make_optimizer, nonfinite_update_count

__all__ = [
    "PPOContext",
    "PPOState",
    "PPOPolicy",
    "Transition",
    "Batch",
    "RolloutNoise",
    "make_context",
    "init_state",
    "draw_rollout_noise",
    "rollout_step",
    "rollout",
    "estimate_returns",
    "ppo_loss",
    "minibatch_update",
    "epoch_update",
    "train_step",
    "run_updates",
    "evaluate",
    "act",
    "act_with_memory",
    "initial_policy_memory",
    "critic_sequence",
    "make_algorithm",
]


class PPOContext(NamedTuple):
    """Everything static about one training program: config, env, networks, optimiser."""

    config: PPOConfig
    env: Any
    env_params: Any
    actor: Actor
    critic: Critic
    optimizer: optax.GradientTransformation
    spec: ActionSpec
    obs_shape: tuple[int, ...]

    @property
    def recurrent(self) -> bool:
        return self.config.memory != "none"

    @property
    def masked(self) -> bool:
        """The env says which discrete actions are legal (``action_mask(state, params)``) and the config
        applies it."""
        return self.config.action_mask and self.spec.discrete and has_action_mask(self.env)

    def legal_actions(self, env_states: Any) -> Optional[jax.Array]:
        """``[N, num_actions]`` bool for a batch of env states, or None where nothing is masked."""
        return legal_actions(self.env, self.env_params, env_states) if self.masked else None


@struct.dataclass
class PPOState:
    """Everything that changes during training, for one seed (vmap adds the seed axis)."""

    params: dict  # {"actor": ..., "critic": ...}
    opt_state: Any
    env_state: Any
    obs: jax.Array  # raw observations, [num_envs, *obs_shape]
    tracker: EpisodeTracker
    discounted_return: jax.Array  # [num_envs], for reward scaling
    obs_stats: rs.RunningStats
    reward_stats: rs.RunningStats  # statistics of the discounted return, used to scale rewards
    return_stats: rs.RunningStats  # statistics of value targets in raw units
    last_episode_return: jax.Array
    last_episode_length: jax.Array
    key: jax.Array
    update_step: jax.Array
    # With memory="gru": {"actor": [N, H], "critic": [N, H], "first": [N] bool (the next observation starts an
    # episode)}; {} (no leaves) for feed-forward networks.
    memory: dict = struct.field(default_factory=dict)


@struct.dataclass
class PPOPolicy:
    """What acting needs: actor parameters and the observation statistics it was trained with."""

    actor_params: Any
    obs_stats: rs.RunningStats


class Transition(NamedTuple):
    """One step for all envs, as the policy saw it; leaves are ``[num_envs, ...]`` (``[T, N, ...]`` stacked)."""

    obs: jax.Array  # normalised if observation_normalization
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array  # raw
    terminated: jax.Array
    done: jax.Array  # terminated or truncated
    final_obs: jax.Array  # the observation after this step, before auto-reset (normalised likewise)
    discounted_return: jax.Array
    finished_return: jax.Array
    finished_length: jax.Array
    counters: dict  # the env's info["counters"] (confusion counts for IntrusionDetection-v0), else {}
    reset: Optional[jax.Array]  # recurrent: obs starts an episode (memory zeroed before reading it); else None
    action_mask: Optional[jax.Array] = None  # [N, num_actions] legal actions at obs, where the env masks


class Batch(NamedTuple):
    """Training data: flat ``[batch_size, ...]`` for feed-forward networks; whole env sequences
    ``[num_steps, num_envs, ...]`` with the memories they started from for recurrent ones."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    advantage: jax.Array
    target: jax.Array  # value target in critic units
    old_value: jax.Array  # critic output at rollout time, in critic units of the new statistics
    reset: Optional[jax.Array] = None  # [T, N]: recurrent only
    actor_memory: Optional[jax.Array] = None  # [N, H]: the actor's memory at the rollout's start
    critic_memory: Optional[jax.Array] = None  # [N, H]: the critic's
    action_mask: Optional[jax.Array] = None  # legal actions per sample, where the env masks


# Construction ------------------------------------------------------------------------------------

def make_context(config: PPOConfig, env: Any = None, env_params: Any = None) -> PPOContext:
    env, env_params = resolve_env(config.env, env, env_params, reward_scale=config.env_reward_scale)
    spec = action_spec(env, env_params)
    obs_shape = observation_shape(env, env_params)
    obs_ndim = max(len(obs_shape), 1)
    conv_field = conv_input(env, env_params, config.env, config.torso, config.conv_field)
    if config.memory == "none":
        actor = Actor(config.hidden_sizes, config.activation, spec.num_actions, spec.discrete,
                      config.log_std_init, obs_ndim, config.torso, conv_field)
        critic = Critic(config.hidden_sizes, config.activation, obs_ndim, config.value_head_init_scale, config.torso,
                        conv_field)
    else:
        actor = RecurrentActor(config.hidden_sizes, config.activation, spec.num_actions, spec.discrete,
                               config.memory_size, config.log_std_init, obs_ndim, config.torso, conv_field)
        critic = RecurrentCritic(config.hidden_sizes, config.activation, config.memory_size, obs_ndim,
                                 config.value_head_init_scale, config.torso, conv_field)
    # Constant rates here; anneal_lr scales each update's step by learning_rate_fraction instead.
    optimizer = make_optimizer(config.learning_rate, max_grad_norm=config.max_grad_norm, adam_eps=config.adam_eps,
                               critic_learning_rate=config.critic_learning_rate)
    return PPOContext(config, env, env_params, actor, critic, optimizer, spec, obs_shape)


def _reset_envs(ctx: PPOContext, key: jax.Array, num_envs: int) -> tuple[jax.Array, Any]:
    keys = jax.random.split(key, num_envs)
    return jax.vmap(ctx.env.reset, in_axes=(0, None))(keys, ctx.env_params)


def init_state(ctx: PPOContext, key: jax.Array) -> PPOState:
    """Fresh networks (orthogonal init), optimiser, environments and empty statistics for one seed."""
    cfg = ctx.config
    key, actor_key, critic_key, env_key = jax.random.split(key, 4)
    dummy = jnp.zeros((1,) + ctx.obs_shape, jnp.float32)
    memory: dict = {}
    if ctx.recurrent:
        inputs = (initial_memory((1,), cfg.memory_size), dummy, jnp.ones((1,), bool))
        params = {"actor": ctx.actor.init(actor_key, *inputs), "critic": ctx.critic.init(critic_key, *inputs)}
        memory = {"actor": initial_memory((cfg.num_envs,), cfg.memory_size),
                  "critic": initial_memory((cfg.num_envs,), cfg.memory_size),
                  "first": jnp.ones((cfg.num_envs,), bool)}
    else:
        params = {"actor": ctx.actor.init(actor_key, dummy), "critic": ctx.critic.init(critic_key, dummy)}
    obs, env_state = _reset_envs(ctx, env_key, cfg.num_envs)
    return PPOState(
        params=params,
        opt_state=ctx.optimizer.init(params),
        env_state=env_state,
        obs=obs,
        tracker=init_tracker(cfg.num_envs),
        discounted_return=jnp.zeros((cfg.num_envs,), jnp.float32),
        obs_stats=rs.init(ctx.obs_shape),
        reward_stats=rs.init(()),
        return_stats=rs.init(()),
        last_episode_return=jnp.zeros((), jnp.float32),
        last_episode_length=jnp.zeros((), jnp.float32),
        key=key,
        update_step=jnp.zeros((), jnp.int32),
        memory=memory,
    )


# Units ---------------------------------------------------------------------------------------

def _normalize_obs(ctx: PPOContext, stats: rs.RunningStats, obs: jax.Array) -> jax.Array:
    if not ctx.config.observation_normalization:
        return obs.astype(jnp.float32)
    return rs.normalize(stats, obs.astype(jnp.float32), clip=ctx.config.observation_clip)


def critic_to_return(config: PPOConfig, stats: rs.RunningStats, critic_value: jax.Array) -> jax.Array:
    """Critic output -> raw return units: ``denormalize(c / return_scale)`` (``symexp`` under symlog)."""
    scaled = critic_value / config.return_scale
    if config.value_target_transform == "symlog":
        return symexp(scaled)
    if config.return_normalization == "off":
        return scaled
    return rs.denormalize(stats, scaled)


def return_to_critic(config: PPOConfig, stats: rs.RunningStats, returns: jax.Array) -> jax.Array:
    """Raw returns -> critic units: ``return_scale * normalize(R)`` (``symlog(R)`` under symlog)."""
    if config.value_target_transform == "symlog":
        return symlog(returns) * config.return_scale
    if config.return_normalization == "off":
        return returns * config.return_scale
    return rs.normalize(stats, returns) * config.return_scale


def _env_action(ctx: PPOContext, action: jax.Array) -> jax.Array:
    """Continuous actions are sampled unbounded (for correct log-probs) and clipped for the env."""
    if ctx.spec.discrete:
        return action
    return jnp.clip(action, ctx.spec.low, ctx.spec.high)


# Rollout -------------------------------------------------------------------------------------

class RolloutNoise(NamedTuple):
    """A rollout's randomness, drawn before its loop; leaves ``[num_steps, num_envs, ...]``.

    Drawing it in a few batched calls instead of several calls per step matters on every backend:
    on the CPU each threefry call inside a loop body is a loop of its own, on a GPU a kernel launch.
    """

    action: jax.Array  # Gumbel (discrete) or standard normal (continuous) noise, [T, N, num_actions]
    env: StepNoise  # step keys and reset states for the envs' auto-reset


def draw_rollout_noise(ctx: PPOContext, key: jax.Array) -> RolloutNoise:
    cfg = ctx.config
    action_key, env_key = jax.random.split(key)
    shape = (cfg.num_steps, cfg.num_envs)
    return RolloutNoise(
        action=action_noise(action_key, shape + (ctx.spec.num_actions,), ctx.spec.discrete),
        env=draw_step_noise(ctx.env, ctx.env_params, env_key, shape),
    )


def rollout_step(ctx: PPOContext, state: PPOState, noise: RolloutNoise) -> tuple[PPOState, Transition]:
    """Acts in every env once with the current policy and records what happened.

    ``noise`` is this step's slice of ``draw_rollout_noise`` (leaves ``[num_envs, ...]``).
    """
    cfg = ctx.config
    obs_stats = state.obs_stats
    if cfg.observation_normalization:
        obs_stats = rs.update(obs_stats, state.obs.astype(jnp.float32))
    obs = _normalize_obs(ctx, obs_stats, state.obs)
    memory = state.memory
    if ctx.recurrent:
        reset = memory["first"]
        actor_memory, policy = ctx.actor.apply(state.params["actor"], memory["actor"], obs, reset)
    else:
        reset = None  # only a recurrent network reads episode starts
        policy = ctx.actor.apply(state.params["actor"], obs)
    legal = ctx.legal_actions(state.env_state)
    policy = mask_policy(policy, legal)
    action = sample_action_with_noise(policy, noise.action)
    next_obs, env_state, reward, terminated, truncated, info = step_envs(
        ctx.env, ctx.env_params, state.env_state, _env_action(ctx, action), noise.env)
    reward = reward.astype(jnp.float32)
    done = jnp.logical_or(terminated, truncated)
    tracker, finished_return, finished_length = track_episodes(state.tracker, reward, done)
    discounted, carried_discounted = running_discounted_return(state.discounted_return, reward, done, cfg.gamma)
    transition = Transition(
        obs=obs,
        action=action,
        log_prob=log_prob(policy, action),
        reward=reward,
        terminated=terminated,
        done=done,
        final_obs=_normalize_obs(ctx, obs_stats, info["final_observation"]),
        discounted_return=discounted,
        finished_return=finished_return,
        finished_length=finished_length,
        counters=step_counters(info),
        reset=reset,
        action_mask=legal,
    )
    if ctx.recurrent:
        memory = {**memory, "actor": actor_memory, "first": done}
    new_state = state.replace(
        env_state=env_state,
        obs=next_obs,
        tracker=tracker,
        discounted_return=carried_discounted,
        obs_stats=obs_stats,
        memory=memory,
    )
    return new_state, transition


def rollout(ctx: PPOContext, state: PPOState) -> tuple[PPOState, Transition]:
    """``num_steps`` steps of every env: the trajectory's leaves are ``[num_steps, num_envs, ...]``."""
    key, noise_key = jax.random.split(state.key)
    noise = draw_rollout_noise(ctx, noise_key)
    return jax.lax.scan(functools.partial(rollout_step, ctx), state.replace(key=key), noise)


# Returns -------------------------------------------------------------------------------------

class ReturnEstimate(NamedTuple):
    advantages: jax.Array  # [T, N], in (possibly reward-scaled) return units
    returns: jax.Array  # [T, N], same units
    values: jax.Array  # [T, N], critic predictions mapped to those units
    clip_centres: jax.Array  # [T, N], rollout-time outputs of the critic the epochs start from
    targets: jax.Array  # [T, N], value targets in critic units (new statistics)
    critic_params: Any  # the critic to train from: PopArt-rescaled to the new statistics, else unchanged
    reward_stats: rs.RunningStats
    return_stats: rs.RunningStats
    reward_scale: jax.Array  # multiply returns by this to read them in raw reward units
    critic_memory: Any = None  # recurrent: the critic's memory after the rollout's last observation


def critic_sequence(ctx: PPOContext, critic_params: Any, memory: jax.Array, obs: jax.Array, reset: jax.Array,
                    final_obs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """A recurrent critic over a rollout ``[T, N, ...]`` from ``memory`` ``[N, H]``.

    Returns ``(values [T, N], bootstrap [T, N], memory [N, H])``: ``values[t]`` reads ``obs[t]`` (memory
    zeroed first where ``reset[t]``); ``bootstrap[t]`` reads ``final_obs[t]``, the observation after step
    t in the same episode, from the memory that ``obs[t]`` left, so a truncated episode bootstraps from
    the value the critic gives its true last state.
    """
    def step(memory: jax.Array, inputs: tuple) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        obs_t, reset_t, final_t = inputs
        memory, value = ctx.critic.apply(critic_params, memory, obs_t, reset_t)
        _, bootstrap = ctx.critic.apply(critic_params, memory, final_t, jnp.zeros_like(reset_t))
        return memory, (value, bootstrap)

    memory, (values, bootstrap) = jax.lax.scan(step, memory, (obs, reset, final_obs))
    return values, bootstrap, memory


def estimate_returns(ctx: PPOContext, state: PPOState, trajectory: Transition,
                     critic_memory: Any = None) -> ReturnEstimate:
    """Critic values, reward scaling, GAE or Monte Carlo returns, and updated return statistics.

    ``critic_memory``: with a recurrent critic, its memory at the rollout's start ``[N, H]``.
    """
    cfg = ctx.config
    critic_params = state.params["critic"]
    final_memory = None
    if ctx.recurrent:
        critic_values, bootstrap_critic, final_memory = critic_sequence(
            ctx, critic_params, critic_memory, trajectory.obs, trajectory.reset, trajectory.final_obs)
    else:
        critic_values = ctx.critic.apply(critic_params, trajectory.obs)
        bootstrap_critic = ctx.critic.apply(critic_params, trajectory.final_obs)
    values = critic_to_return(cfg, state.return_stats, critic_values)
    bootstrap = critic_to_return(cfg, state.return_stats, bootstrap_critic)
    # Where an episode goes on, the next state's value is the value the next step is compared with:
    # V(obs[t+1]) as the policy saw it, normalised with step t+1's observation statistics. V of
    # final_obs normalised with step t's statistics would differ (slightly, while the statistics move),
    # and GAE with lambda = 1 would no longer telescope to Monte Carlo minus V. At an episode end the
    # next observation is a reset one, so final_obs is the only choice; after the last step too.
    next_values = jnp.concatenate([values[1:], bootstrap[-1:]], axis=0)
    bootstrap = jnp.where(trajectory.done, bootstrap, next_values)

    reward_stats = state.reward_stats
    rewards = trajectory.reward
    reward_scale = jnp.ones((), jnp.float32)
    if cfg.reward_normalization == "running":
        # Scale (do not centre) by the std of the discounted return: centring rewards would change which
        # policy is optimal in episodic tasks (an alive bonus of +1 would become ~0).
        reward_stats = rs.update(reward_stats, trajectory.discounted_return)
        rewards = rs.normalize(reward_stats, rewards, clip=cfg.reward_clip, center=False)
        reward_scale = rs.std(reward_stats)

    over_envs = functools.partial(jax.vmap, in_axes=1, out_axes=1)
    if cfg.return_estimator == "gae":
        gae = over_envs(gae_advantages, in_axes=(1, 1, 1, 1, 1, None, None))
        advantages = gae(rewards, values, bootstrap, trajectory.terminated, trajectory.done,
                         cfg.gamma, cfg.gae_lambda)
        returns = advantages + values
    else:
        mc = over_envs(monte_carlo_returns, in_axes=(1, 1, 1, 1, None))
        returns = mc(rewards, bootstrap, trajectory.terminated, trajectory.done, cfg.gamma)
        advantages = returns - values

    return_stats = state.return_stats
    if cfg.return_normalization != "off":
        merge = rs.replace_with_batch if cfg.return_normalization == "batch" else rs.update
        # A non-finite return (a NaN reward) would poison the statistics for good, and through PopArt the
        # critic's weights: such a batch leaves them as they were (its gradient step is skipped anyway).
        # The merge itself leaves non-finite samples out and counts them; keeping the whole batch out
        # as well must not lose that count (nonfinite_samples).
        finite = jnp.all(jnp.isfinite(returns))
        merged = merge(return_stats, returns)
        return_stats = jax.tree.map(lambda new, old: jnp.where(finite, new, old), merged, return_stats)
        return_stats = return_stats.replace(nonfinite_count=merged.nonfinite_count)
    targets = return_to_critic(cfg, return_stats, returns)
    clip_centres = critic_values  # where the critic starts the epochs (see the module docstring)
    if cfg.return_normalization == "popart":
        # The rescaled head's output at the rollout observations, without a second forward pass.
        clip_centres = rs.renormalize(state.return_stats, return_stats, critic_values, cfg.return_scale)
        critic_params = rescale_critic_head(critic_params, state.return_stats, return_stats, cfg.return_scale)
    return ReturnEstimate(advantages, returns, values, clip_centres, targets, critic_params, reward_stats,
                          return_stats, reward_scale, final_memory)


# Learning ------------------------------------------------------------------------------------

class LearnerState(NamedTuple):
    params: dict
    opt_state: Any
    stopped: jax.Array  # KL early stopping has fired for this update
    learning_rate_fraction: jax.Array  # this update's share of the learning rates (1.0 without annealing)


def learning_rate_fraction(config: PPOConfig, update_step: jax.Array) -> jax.Array:
    """``1 - update_step / num_updates`` with ``anneal_lr`` (else 1): the rates fall linearly to
    ``1 / num_updates`` of their value in the last update, as CleanRL anneals them.

    The fraction counts updates, not optimiser steps: with ``target_kl`` early stopping an update takes
    fewer steps than ``num_epochs * num_minibatches``, and a schedule over optimiser steps would never
    get near 0 (KL stopping after one epoch of four leaves it at 75% of its start). Adam's step is
    linear in its learning rate, so multiplying the step by the fraction is the same as annealing the
    rate, for the actor's and the critic's rate alike.
    """
    if not config.anneal_lr:
        return jnp.ones((), jnp.float32)
    return 1.0 - update_step.astype(jnp.float32) / config.num_updates


class MinibatchMetrics(NamedTuple):
    performed: jax.Array  # 1.0 if this minibatch's gradient step ran, 0.0 if skipped
    policy_loss: jax.Array
    value_loss: jax.Array
    entropy: jax.Array
    approx_kl: jax.Array
    mean_ratio: jax.Array
    clip_fraction: jax.Array
    value_clip_fraction: jax.Array
    grad_norm: jax.Array
    grad_clip_ratio: jax.Array


def _replay(module: Any, params: Any, memory: jax.Array, minibatch: Batch) -> Any:
    """A recurrent ``module`` over the minibatch's env sequences ``[T, B, ...]`` from ``memory`` ``[B, H]``,
    memory zeroed where ``reset``: before any gradient step it reproduces the rollout's outputs."""
    def step(memory: jax.Array, inputs: tuple) -> tuple[jax.Array, Any]:
        return module.apply(params, memory, *inputs)

    return jax.lax.scan(step, memory, (minibatch.obs, minibatch.reset))[1]


def _actor_forward(ctx: PPOContext, actor_params: Any, minibatch: Batch) -> PolicyOutput:
    """The policy at every sample of ``minibatch``, flat ``[B, ...]``."""
    if not ctx.recurrent:
        return mask_policy(ctx.actor.apply(actor_params, minibatch.obs), minibatch.action_mask)
    policy = _replay(ctx.actor, actor_params, minibatch.actor_memory, minibatch)
    log_std = None if policy.log_std is None else policy.log_std[0]  # one state-independent vector
    mask = None if minibatch.action_mask is None else _flatten_time_env(minibatch.action_mask)
    return mask_policy(PolicyOutput(loc=_flatten_time_env(policy.loc), log_std=log_std), mask)


def _critic_forward(ctx: PPOContext, critic_params: Any, minibatch: Batch) -> jax.Array:
    if not ctx.recurrent:
        return ctx.critic.apply(critic_params, minibatch.obs)
    return _flatten_time_env(_replay(ctx.critic, critic_params, minibatch.critic_memory, minibatch))


def _flat_targets(ctx: PPOContext, minibatch: Batch) -> Batch:
    """The per-sample fields flat ``[B]`` (recurrent minibatches hold ``[T, B/T]`` sequences)."""
    if not ctx.recurrent:
        return minibatch
    return minibatch._replace(**{name: _flatten_time_env(getattr(minibatch, name))
                                 for name in ("action", "log_prob", "advantage", "target", "old_value")})


def ppo_loss(params: dict, ctx: PPOContext, minibatch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped surrogate + ``value_loss_coef`` * value loss - ``entropy_coef`` * entropy."""
    cfg = ctx.config
    policy = _actor_forward(ctx, params["actor"], minibatch)
    prediction = _critic_forward(ctx, params["critic"], minibatch)
    minibatch = _flat_targets(ctx, minibatch)
    new_log_prob = log_prob(policy, minibatch.action)
    advantages = minibatch.advantage
    if cfg.advantage_normalization == "minibatch":
        advantages = losses.normalize_advantages(advantages, cfg.advantage_std_floor)
    policy_parts = losses.clipped_policy_loss(new_log_prob, minibatch.log_prob, advantages, cfg.clip_epsilon)
    value_loss, value_clip_fraction = losses.value_loss(
        prediction, minibatch.old_value, minibatch.target,
        kind=cfg.value_loss, clipping=cfg.value_clipping, clip_epsilon=cfg.value_clip_epsilon,
        clip_floor=cfg.value_clip_floor, huber_delta=cfg.huber_delta,
    )
    policy_entropy = jnp.mean(entropy(policy))
    total = policy_parts.loss + cfg.value_loss_coef * value_loss - cfg.entropy_coef * policy_entropy
    aux = {
        "policy_loss": policy_parts.loss,
        "value_loss": value_loss,
        "entropy": policy_entropy,
        "approx_kl": diagnostics.approx_kl(policy_parts.log_ratio),
        "mean_ratio": jnp.mean(policy_parts.ratio),
        "clip_fraction": diagnostics.clip_fraction(policy_parts.ratio, cfg.clip_epsilon),
        "value_clip_fraction": value_clip_fraction,
    }
    return total, aux


def _kl_after_update(ctx: PPOContext, actor_params: Any, minibatch: Batch) -> jax.Array:
    policy = _actor_forward(ctx, actor_params, minibatch)
    flat = _flat_targets(ctx, minibatch)
    return diagnostics.approx_kl(log_prob(policy, flat.action) - flat.log_prob)


def _learn_on_minibatch(ctx: PPOContext, learner: LearnerState, minibatch: Batch
                        ) -> tuple[LearnerState, MinibatchMetrics]:
    cfg = ctx.config
    (_, aux), grads = jax.value_and_grad(ppo_loss, has_aux=True)(learner.params, ctx, minibatch)
    grad_stats = gradient_stats(grads, cfg.max_grad_norm)
    updates, opt_state = ctx.optimizer.update(grads, learner.opt_state, learner.params)
    updates = jax.tree.map(lambda u: u * learner.learning_rate_fraction, updates)
    params = optax.apply_updates(learner.params, updates)
    stopped = learner.stopped
    if cfg.target_kl is not None:
        # Measured after the step, on the minibatch just learned from: "has the policy moved too far?"
        stopped = _kl_after_update(ctx, params["actor"], minibatch) > cfg.target_kl
    metrics = MinibatchMetrics(performed=jnp.ones((), jnp.float32), grad_norm=grad_stats.grad_norm,
                               grad_clip_ratio=grad_stats.grad_clip_ratio, **aux)
    return LearnerState(params, opt_state, stopped, learner.learning_rate_fraction), metrics


def minibatch_update(ctx: PPOContext, learner: LearnerState, minibatch: Batch
                     ) -> tuple[LearnerState, MinibatchMetrics]:
    """One gradient step; with ``target_kl`` set, a no-op (``lax.cond``) once early stopping fired."""
    if ctx.config.target_kl is None:
        return _learn_on_minibatch(ctx, learner, minibatch)

    def skip(current: LearnerState) -> tuple[LearnerState, MinibatchMetrics]:
        shapes = jax.eval_shape(functools.partial(_learn_on_minibatch, ctx), current, minibatch)[1]
        return current, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    return jax.lax.cond(learner.stopped, skip,
                        lambda current: _learn_on_minibatch(ctx, current, minibatch), learner)


def epoch_update(ctx: PPOContext, batch: Batch, learner: LearnerState, permutation: jax.Array
                 ) -> tuple[LearnerState, MinibatchMetrics]:
    """Reorders the batch by ``permutation`` (``[batch_size]``; recurrent: ``[num_envs]``, whole env
    sequences), splits it into ``num_minibatches`` and scans ``minibatch_update`` over them."""
    cfg = ctx.config
    if ctx.recurrent:
        per_minibatch = cfg.num_envs // cfg.num_minibatches

        def split(x: jax.Array, env_axis: int) -> jax.Array:
            x = jnp.take(x, permutation, axis=env_axis)
            shape = x.shape[:env_axis] + (cfg.num_minibatches, per_minibatch) + x.shape[env_axis + 1:]
            return jnp.moveaxis(x.reshape(shape), env_axis, 0)

        sequences = batch._replace(actor_memory=None, critic_memory=None)
        minibatches = jax.tree.map(lambda x: split(x, 1), sequences)._replace(
            actor_memory=split(batch.actor_memory, 0), critic_memory=split(batch.critic_memory, 0))
        return jax.lax.scan(functools.partial(minibatch_update, ctx), learner, minibatches)
    minibatches = jax.tree.map(
        lambda x: jnp.take(x, permutation, axis=0).reshape((cfg.num_minibatches, cfg.minibatch_size) + x.shape[1:]),
        batch,
    )
    return jax.lax.scan(functools.partial(minibatch_update, ctx), learner, minibatches)


def _flatten_time_env(x: jax.Array) -> jax.Array:
    return x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])


def _weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def train_step(ctx: PPOContext, state: PPOState, _: Any = None) -> tuple[PPOState, dict[str, jax.Array]]:
    """One update: ``num_steps`` of rollout, return estimation, then up to ``num_epochs`` epochs."""
    cfg = ctx.config
    start_memory = state.memory
    state, trajectory = rollout(ctx, state)
    chex.assert_shape(trajectory.reward, (cfg.num_steps, cfg.num_envs))
    estimate = estimate_returns(ctx, state, trajectory, start_memory.get("critic"))

    if ctx.recurrent:
        # Whole env sequences [T, N, ...], each with the memories it started the rollout from.
        advantages = estimate.advantages
        if cfg.advantage_normalization == "batch":
            advantages = losses.normalize_advantages(advantages.reshape(-1), cfg.advantage_std_floor
                                                     ).reshape(advantages.shape)
        batch = Batch(obs=trajectory.obs, action=trajectory.action, log_prob=trajectory.log_prob,
                      advantage=advantages, target=estimate.targets, old_value=estimate.clip_centres,
                      reset=trajectory.reset, actor_memory=start_memory["actor"],
                      critic_memory=start_memory["critic"], action_mask=trajectory.action_mask)
    else:
        advantages = _flatten_time_env(estimate.advantages)
        if cfg.advantage_normalization == "batch":
            advantages = losses.normalize_advantages(advantages, cfg.advantage_std_floor)
        batch = Batch(
            obs=_flatten_time_env(trajectory.obs),
            action=_flatten_time_env(trajectory.action),
            log_prob=_flatten_time_env(trajectory.log_prob),
            advantage=advantages,
            target=_flatten_time_env(estimate.targets),
            old_value=_flatten_time_env(estimate.clip_centres),
            action_mask=None if trajectory.action_mask is None else _flatten_time_env(trajectory.action_mask),
        )
    key, epochs_key = jax.random.split(state.key)
    params = {**state.params, "critic": estimate.critic_params}
    rate_fraction = learning_rate_fraction(cfg, state.update_step)
    learner = LearnerState(params, state.opt_state, jnp.zeros((), bool), rate_fraction)
    # Every epoch's shuffle drawn at once, outside the epochs' loop.
    permutations = shuffle.permutations(epochs_key, cfg.num_epochs, cfg.num_envs if ctx.recurrent else cfg.batch_size)
    learner, per_minibatch = jax.lax.scan(functools.partial(epoch_update, ctx, batch), learner, permutations)

    episode_return, episode_length, episodes_completed = finished_episode_means(
        trajectory.done, trajectory.finished_return, trajectory.finished_length,
        state.last_episode_return, state.last_episode_length,
    )
    performed = per_minibatch.performed  # [num_epochs, num_minibatches]
    metrics = {
        name: _weighted_mean(getattr(per_minibatch, name), performed)
        for name in MinibatchMetrics._fields if name != "performed"
    }
    scale = estimate.reward_scale
    metrics.update(
        epochs_completed=jnp.sum(jnp.any(performed > 0, axis=1)).astype(jnp.int32),
        minibatch_updates=jnp.sum(performed).astype(jnp.int32),
        explained_variance=diagnostics.explained_variance(estimate.values, estimate.returns),
        advantage_mean=jnp.mean(estimate.advantages) * scale,
        advantage_std=jnp.std(estimate.advantages) * scale,
        return_mean=jnp.mean(estimate.returns) * scale,
        return_std=jnp.std(estimate.returns) * scale,
        value_mean=jnp.mean(estimate.values) * scale,
        episode_return=episode_return,
        episode_length=episode_length,
        episodes_completed=episodes_completed,
        nonfinite_updates=nonfinite_update_count(learner.opt_state),
        learning_rate=cfg.learning_rate * rate_fraction,
        # Observations, scaled-reward returns and value targets left out of the running statistics
        # because they held a NaN or Inf (cumulative, like nonfinite_updates).
        nonfinite_samples=(state.obs_stats.nonfinite_count + estimate.reward_stats.nonfinite_count
                           + estimate.return_stats.nonfinite_count).astype(jnp.int32),
    )
    metrics.update(counter_metrics(ctx.env, trajectory.counters))
    if cfg.return_normalization != "off":
        metrics["return_stats_mean"] = estimate.return_stats.mean * scale
        metrics["return_stats_std"] = rs.std(estimate.return_stats) * scale
    if cfg.reward_normalization != "off":
        metrics["reward_scale"] = scale

    new_state = state.replace(
        params=learner.params,
        opt_state=learner.opt_state,
        reward_stats=estimate.reward_stats,
        return_stats=estimate.return_stats,
        last_episode_return=episode_return,
        last_episode_length=episode_length,
        key=key,
        update_step=state.update_step + 1,
        memory={**state.memory, "critic": estimate.critic_memory} if ctx.recurrent else state.memory,
    )
    return new_state, metrics


def run_updates(ctx: PPOContext, state: PPOState, num_updates: int) -> tuple[PPOState, dict[str, jax.Array]]:
    """``num_updates`` train steps in one ``lax.scan``; metrics gain a leading update axis."""
    return jax.lax.scan(functools.partial(train_step, ctx), state, None, length=num_updates)


# Acting and evaluation ------------------------------------------------------------------------

def policy_of(state: PPOState) -> PPOPolicy:
    return PPOPolicy(actor_params=state.params["actor"], obs_stats=state.obs_stats)


def act(ctx: PPOContext, policy: PPOPolicy, obs: jax.Array, key: jax.Array,
        deterministic: bool = True, action_mask: Optional[jax.Array] = None) -> jax.Array:
    """The env-ready action (clipped for continuous spaces) for one observation or a batch; with
    ``action_mask`` (``[..., num_actions]`` bool) only legal actions are chosen."""
    if ctx.recurrent:
        raise ValueError(f"memory={ctx.config.memory!r}: a recurrent policy acts from its memory; use "
                         "act_with_memory(policy, obs, key, memory, reset) with initial_memory(batch_shape).")
    output: PolicyOutput = ctx.actor.apply(policy.actor_params, _normalize_obs(ctx, policy.obs_stats, obs))
    output = mask_policy(output, action_mask)
    action = mode(output) if deterministic else sample_action(output, key)
    return _env_action(ctx, action)


def initial_policy_memory(ctx: PPOContext, batch_shape: tuple[int, ...] = ()) -> jax.Array:
    """The actor's memory before an episode's first step, ``[*batch_shape, memory_size]``."""
    return initial_memory(tuple(batch_shape), ctx.config.memory_size)


def act_with_memory(ctx: PPOContext, policy: PPOPolicy, obs: jax.Array, key: jax.Array, memory: jax.Array,
                    reset: jax.Array, deterministic: bool = True, action_mask: Optional[jax.Array] = None
                    ) -> tuple[jax.Array, jax.Array]:
    """A recurrent policy's env-ready action and its next memory; ``reset`` is True where ``obs`` is an
    episode's first observation (the memory is zeroed before it is read); ``action_mask`` as in ``act``."""
    memory, output = ctx.actor.apply(policy.actor_params, memory, _normalize_obs(ctx, policy.obs_stats, obs),
                                     jnp.asarray(reset, bool))
    output = mask_policy(output, action_mask)
    action = mode(output) if deterministic else sample_action(output, key)
    return _env_action(ctx, action), memory


def evaluate(ctx, state, key: jax.Array) -> dict[str, jax.Array]:
    """One episode per fresh env with the deterministic policy; returns ``[eval_episodes]`` arrays (a
    recurrent policy's also ``eval_return_memory_wiped``: ``jaxppo.envs.evaluation.evaluate_policy``)."""
    return evaluate_policy(ctx, policy_of(state), key, act, act_with_memory, initial_policy_memory)


def make_algorithm(config: PPOConfig, env: Any = None, env_params: Any = None) -> Algorithm:
    """Binds a config and an environment into the pure functions of ``jaxppo.algorithm.Algorithm``."""
    ctx = make_context(config, env, env_params)
    return bind_algorithm(ctx, init=init_state, run_updates=run_updates, evaluate=evaluate, policy_of=policy_of,
                          act=act, initial_memory=initial_policy_memory if ctx.recurrent else None,
                          act_with_memory=act_with_memory if ctx.recurrent else None)
