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
computed, and only the *targets* are re-normalised with the updated statistics. Seed 004's fix
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
seeds to ``value_clip_saturated`` on 64/64 (``docs/stability.md``, lab grid ``seed000``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxppo import diagnostics, shuffle
from jaxppo import running_stats as rs
from jaxppo.algorithm import Algorithm
from jaxppo.config import PPOConfig
from jaxppo.envs.evaluation import greedy_episodes
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
from jaxppo.ppo.networks import (
    Actor,
    Critic,
    PolicyOutput,
    action_noise,
    entropy,
    log_prob,
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


class Batch(NamedTuple):
    """Flat training data, ``[batch_size, ...]``: what a minibatch gradient step reads."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    advantage: jax.Array
    target: jax.Array  # value target in critic units
    old_value: jax.Array  # critic output at rollout time, in critic units of the new statistics


# Construction ------------------------------------------------------------------------------------

def make_context(config: PPOConfig, env: Any = None, env_params: Any = None) -> PPOContext:
    env, env_params = resolve_env(config.env, env, env_params, reward_scale=config.env_reward_scale)
    spec = action_spec(env, env_params)
    obs_shape = observation_shape(env, env_params)
    obs_ndim = max(len(obs_shape), 1)
    actor = Actor(config.hidden_sizes, config.activation, spec.num_actions, spec.discrete,
                  config.log_std_init, obs_ndim)
    critic = Critic(config.hidden_sizes, config.activation, obs_ndim, config.value_head_init_scale)
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
    policy = ctx.actor.apply(state.params["actor"], obs)
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
    )
    new_state = state.replace(
        env_state=env_state,
        obs=next_obs,
        tracker=tracker,
        discounted_return=carried_discounted,
        obs_stats=obs_stats,
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


def estimate_returns(ctx: PPOContext, state: PPOState, trajectory: Transition) -> ReturnEstimate:
    """Critic values, reward scaling, GAE or Monte Carlo returns, and updated return statistics."""
    cfg = ctx.config
    critic_params = state.params["critic"]
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
                          return_stats, reward_scale)


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


def ppo_loss(params: dict, ctx: PPOContext, minibatch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped surrogate + ``value_loss_coef`` * value loss - ``entropy_coef`` * entropy."""
    cfg = ctx.config
    policy = ctx.actor.apply(params["actor"], minibatch.obs)
    new_log_prob = log_prob(policy, minibatch.action)
    advantages = minibatch.advantage
    if cfg.advantage_normalization == "minibatch":
        advantages = losses.normalize_advantages(advantages, cfg.advantage_std_floor)
    policy_parts = losses.clipped_policy_loss(new_log_prob, minibatch.log_prob, advantages, cfg.clip_epsilon)
    prediction = ctx.critic.apply(params["critic"], minibatch.obs)
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
    policy = ctx.actor.apply(actor_params, minibatch.obs)
    return diagnostics.approx_kl(log_prob(policy, minibatch.action) - minibatch.log_prob)


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
    """Reorders the batch by ``permutation`` (``[batch_size]``), splits it into ``num_minibatches`` and
    scans ``minibatch_update`` over them."""
    cfg = ctx.config
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
    state, trajectory = rollout(ctx, state)
    chex.assert_shape(trajectory.reward, (cfg.num_steps, cfg.num_envs))
    estimate = estimate_returns(ctx, state, trajectory)

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
    )
    key, epochs_key = jax.random.split(state.key)
    params = {**state.params, "critic": estimate.critic_params}
    rate_fraction = learning_rate_fraction(cfg, state.update_step)
    learner = LearnerState(params, state.opt_state, jnp.zeros((), bool), rate_fraction)
    # Every epoch's shuffle drawn at once, outside the epochs' loop.
    permutations = shuffle.permutations(epochs_key, cfg.num_epochs, cfg.batch_size)
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
    )
    return new_state, metrics


def run_updates(ctx: PPOContext, state: PPOState, num_updates: int) -> tuple[PPOState, dict[str, jax.Array]]:
    """``num_updates`` train steps in one ``lax.scan``; metrics gain a leading update axis."""
    return jax.lax.scan(functools.partial(train_step, ctx), state, None, length=num_updates)


# Acting and evaluation ------------------------------------------------------------------------

def policy_of(state: PPOState) -> PPOPolicy:
    return PPOPolicy(actor_params=state.params["actor"], obs_stats=state.obs_stats)


def act(ctx: PPOContext, policy: PPOPolicy, obs: jax.Array, key: jax.Array,
        deterministic: bool = True) -> jax.Array:
    """The env-ready action (clipped for continuous spaces) for one observation or a batch."""
    output: PolicyOutput = ctx.actor.apply(policy.actor_params, _normalize_obs(ctx, policy.obs_stats, obs))
    action = mode(output) if deterministic else sample_action(output, key)
    return _env_action(ctx, action)



def evaluate(ctx, state, key: jax.Array) -> dict[str, jax.Array]:
    """One episode per fresh env with the deterministic policy; returns ``[eval_episodes]`` arrays."""
    policy = policy_of(state)
    return greedy_episodes(ctx.env, ctx.env_params, lambda obs, k: act(ctx, policy, obs, k, deterministic=True),
                           key, ctx.config.run.eval_episodes)


def make_algorithm(config: PPOConfig, env: Any = None, env_params: Any = None) -> Algorithm:
    """Binds a config and an environment into the pure functions of ``jaxppo.algorithm.Algorithm``."""
    ctx = make_context(config, env, env_params)
    return Algorithm(
        config=config,
        init=functools.partial(init_state, ctx),
        run_updates=functools.partial(run_updates, ctx),
        evaluate=functools.partial(evaluate, ctx),
        policy_of=policy_of,
        act=functools.partial(act, ctx),
        env=ctx.env,
        env_params=ctx.env_params,
    )
