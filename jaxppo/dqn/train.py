"""DQN as one compiled program: epsilon-greedy collection into a replay buffer, TD learning, target sync.

Every scan body is a top-level function taking a static ``DQNContext`` first (bound with
``functools.partial``), so each piece can be imported and tested on its own:

    draw_rollout_noise  the exploration and env randomness of an update's steps, in batched calls
    rollout_step    one epsilon-greedy env step for all envs            (scanned train_frequency times)
    gradient_step   one TD gradient step on a sampled batch              (scanned gradient_steps times)
    learn           samples every gradient step's batch, then the steps, or zeros before learning starts
    update_target   hard copy or Polyak average of the online parameters
    train_step      rollout + buffer write + learn + target update + metrics   (scanned per update)

What one update does, and what the counters count. ``env_steps`` counts environment transitions over
all envs (``num_envs`` per vectorised step), the same unit as ``total_timesteps``:

1. every env steps ``train_frequency`` times; epsilon for a step is ``epsilon_at(env_steps)`` before it,
   decaying linearly from ``epsilon_start`` to ``epsilon_end`` over the first
   ``epsilon_decay_fraction * total_timesteps`` env steps;
2. the ``num_envs * train_frequency`` new transitions are written to the buffer (time-major);
3. if ``env_steps >= learning_starts`` (counted after step 1), ``gradient_steps`` gradient steps on
   uniform batches of ``batch_size``; otherwise none, and the learning metrics are zeros;
4. target network, only once learning has started: ``hard`` copies the online parameters whenever
   ``env_steps`` crosses a multiple of ``target_update_interval`` during this update (so with 1 env
   and ``train_frequency=10``, an interval of 500 copies every 50 updates; ``tau`` is ignored);
   ``polyak`` sets ``target = tau * online + (1 - tau) * target`` after every learning update
   (``target_update_interval`` is ignored).

The PRNG key lives in the state and each update splits it, so ``n`` updates in one call or in chunks
give identical results; each seed draws its own network init, exploration and sampling streams.
An update's random numbers (exploration, env resets, replay indices) are drawn in a handful of batched
calls before the loops that use them: on the CPU every threefry call inside a loop body is a small
loop of its own, and DQN's per-update work is small enough for those to show.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxppo import running_stats as rs
from jaxppo.algorithm import Algorithm, bind_algorithm
from jaxppo.config import DQNConfig
from jaxppo.dqn import buffer as replay
from jaxppo.dqn import losses
from jaxppo.dqn.networks import QNetwork, RecurrentQNetwork
from jaxppo.networks import initial_memory, replace_output_layer
from jaxppo.returns import running_discounted_return, symexp
from jaxppo.envs.core import conv_input, has_action_mask, legal_actions
from jaxppo.envs.evaluation import evaluate_policy
from jaxppo.envs.stepping import StepNoise, draw_step_noise, step_envs
from jaxppo.envs import (
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
from jaxppo.transforms import gradient_stats, linear_schedule, make_optimizer, nonfinite_update_count

__all__ = [
    "DQNContext",
    "DQNState",
    "DQNPolicy",
    "StepRecord",
    "RolloutNoise",
    "LearnerState",
    "GradientMetrics",
    "make_context",
    "init_state",
    "epsilon_at",
    "epsilon_greedy",
    "epsilon_greedy_with_noise",
    "reward_scale_of",
    "rescale_q_head",
    "learning_steps",
    "learning_rate_schedule",
    "draw_rollout_noise",
    "rollout_step",
    "rollout",
    "dqn_loss",
    "gradient_step",
    "learn",
    "update_target",
    "train_step",
    "run_updates",
    "policy_of",
    "act",
    "initial_policy_memory",
    "act_with_memory",
    "sequence_q_values",
    "evaluate",
    "make_algorithm",
]


class DQNContext(NamedTuple):
    """Everything static about one training program: config, env, network, optimiser."""

    config: DQNConfig
    env: Any
    env_params: Any
    network: Any  # QNetwork, or RecurrentQNetwork with memory
    optimizer: optax.GradientTransformation
    num_actions: int
    obs_shape: tuple[int, ...]

    @property
    def recurrent(self) -> bool:
        return self.config.memory != "none"

    @property
    def masked(self) -> bool:
        """The env says which actions are legal (``action_mask(state, params)``) and the config applies it."""
        return self.config.action_mask and has_action_mask(self.env)

    def legal_actions(self, env_states: Any) -> Optional[jax.Array]:
        """``[N, num_actions]`` bool for a batch of env states, or None where nothing is masked."""
        return legal_actions(self.env, self.env_params, env_states) if self.masked else None


@struct.dataclass
class DQNState:
    """Everything that changes during training, for one seed (vmap adds the seed axis)."""

    params: Any  # online Q-network
    target_params: Any
    opt_state: Any
    buffer: replay.ReplayBuffer
    env_state: Any
    obs: jax.Array  # [num_envs, *obs_shape]
    tracker: EpisodeTracker
    discounted_return: jax.Array  # [num_envs], the reward scale's statistic
    reward_stats: rs.RunningStats  # of the discounted return (used with reward_normalization="running")
    last_episode_return: jax.Array
    last_episode_length: jax.Array
    key: jax.Array
    env_steps: jax.Array  # int32, transitions collected over all envs
    update_step: jax.Array  # int32
    # With memory="gru": {"q": [N, H] the Q-network's memory, "first": [N] bool (the next observation starts
    # an episode, so the memory is zeroed before reading it)}; empty otherwise.
    memory: dict = struct.field(default_factory=dict)


@struct.dataclass
class DQNPolicy:
    """What acting needs: the online Q-network parameters."""

    params: Any


class StepRecord(NamedTuple):
    """One vectorised env step: the transitions to store and the episode bookkeeping."""

    transition: replay.Transition  # leaves [num_envs, ...]
    done: jax.Array
    finished_return: jax.Array
    finished_length: jax.Array
    discounted_return: jax.Array
    epsilon: jax.Array
    counters: dict  # the env's info["counters"] (confusion counts for IntrusionDetection-v0), else {}


class RolloutNoise(NamedTuple):
    """The randomness of ``num_steps`` vectorised env steps; leaves ``[num_steps, num_envs, ...]``."""

    explore: jax.Array  # uniform in [0, 1): the step explores where this is below epsilon
    random_action: jax.Array  # int32 in [0, num_actions): the action taken when exploring; with action
    # masks, [..., num_actions] uniform scores instead, whose best legal entry is the exploring action
    env: StepNoise  # step keys and reset states for the envs' auto-reset


# How many of a sampled batch's observations ``greedy_agreement`` reads. The diagnostic needs the
# target network's greedy actions, a forward pass of its own; on 32 rows instead of the whole batch
# (128 by default) it costs a quarter of that pass and still resolves agreement to 1/32.
GREEDY_AGREEMENT_ROWS = 32


class LearnerState(NamedTuple):
    params: Any
    opt_state: Any


class GradientMetrics(NamedTuple):
    """Per gradient step; ``learn`` averages them over the update's steps."""

    td_loss: jax.Array
    q_mean: jax.Array  # Q(s, a) of the online network on the sampled batch
    q_min: jax.Array
    q_max: jax.Array
    td_target_clip_fraction: jax.Array
    grad_norm: jax.Array  # global norm before clipping
    grad_clip_ratio: jax.Array  # clipped / raw norm, 1.0 when not clipped (report 002's ClipΔ)
    greedy_agreement: jax.Array
    greedy_action_histogram: jax.Array  # [num_actions]


# Construction ------------------------------------------------------------------------------------

def make_context(config: DQNConfig, env: Any = None, env_params: Any = None) -> DQNContext:
    env, env_params = resolve_env(config.env, env, env_params, reward_scale=config.env_reward_scale)
    spec = action_spec(env, env_params)
    if not spec.discrete:
        raise ValueError(f"DQN needs a discrete action space; env={config.env!r} is continuous. Use PPO.")
    obs_shape = observation_shape(env, env_params)
    conv_field = conv_input(env, env_params, config.env, config.torso, config.conv_field)
    if config.memory == "none":
        network = QNetwork(config.hidden_sizes, config.activation, spec.num_actions, config.torso,
                           max(len(obs_shape), 1), conv_field)
    else:
        network = RecurrentQNetwork(config.hidden_sizes, config.activation, spec.num_actions, config.memory_size,
                                    config.torso, max(len(obs_shape), 1), conv_field)
    optimizer = make_optimizer(learning_rate_schedule(config), max_grad_norm=config.max_grad_norm,
                               adam_eps=config.adam_eps)
    return DQNContext(config, env, env_params, network, optimizer, spec.num_actions, obs_shape)


def learning_steps(config: DQNConfig) -> int:
    """Gradient steps in the whole run: ``gradient_steps`` per update from the first update that ends at
    or after ``learning_starts`` env steps."""
    first_learning_update = max(-(-config.learning_starts // config.steps_per_update) - 1, 0)
    return max(config.num_updates - first_learning_update, 0) * config.gradient_steps


def learning_rate_schedule(config: DQNConfig) -> Any:
    """The learning rate, or with ``anneal_lr`` a schedule falling linearly from it to 0 over
    ``learning_steps(config)`` (``jaxppo.transforms.linear_schedule``; optax counts only the steps that
    ran, so the fall starts at learning_starts)."""
    if not config.anneal_lr:
        return config.learning_rate
    return linear_schedule(config.learning_rate, max(learning_steps(config), 1))


def _reset_envs(ctx: DQNContext, key: jax.Array, num_envs: int) -> tuple[jax.Array, Any]:
    return jax.vmap(ctx.env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), ctx.env_params)


def init_state(ctx: DQNContext, key: jax.Array) -> DQNState:
    """Fresh network (target = online), optimiser, envs and an empty buffer for one seed."""
    cfg = ctx.config
    key, net_key, env_key = jax.random.split(key, 3)
    obs, env_state = _reset_envs(ctx, env_key, cfg.num_envs)
    memory: dict = {}
    if ctx.recurrent:
        memory = {"q": initial_memory((cfg.num_envs,), cfg.memory_size), "first": jnp.ones((cfg.num_envs,), bool)}
        params = ctx.network.init(net_key, memory["q"], obs, memory["first"])
    else:
        params = ctx.network.init(net_key, obs)
    example = replay.Transition(obs=obs[0], action=jnp.zeros((), jnp.int32), reward=jnp.zeros((), jnp.float32),
                                terminated=jnp.zeros((), bool), next_obs=obs[0],
                                next_action_mask=jnp.ones((ctx.num_actions,), bool) if ctx.masked else None,
                                first=jnp.zeros((), bool) if ctx.recurrent else None,
                                memory=memory["q"][0] if ctx.recurrent else None)
    return DQNState(
        params=params,
        target_params=params,
        opt_state=ctx.optimizer.init(params),
        buffer=replay.init(cfg.buffer_size, example),
        env_state=env_state,
        obs=obs,
        tracker=init_tracker(cfg.num_envs),
        discounted_return=jnp.zeros((cfg.num_envs,), jnp.float32),
        reward_stats=rs.init(()),
        last_episode_return=jnp.zeros((), jnp.float32),
        last_episode_length=jnp.zeros((), jnp.float32),
        key=key,
        env_steps=jnp.zeros((), jnp.int32),
        update_step=jnp.zeros((), jnp.int32),
        memory=memory,
    )


# Acting --------------------------------------------------------------------------------------

def epsilon_at(config: DQNConfig, env_steps: jax.Array) -> jax.Array:
    """Linear decay from ``epsilon_start`` to ``epsilon_end`` over ``epsilon_decay_fraction * total_timesteps``."""
    duration = config.epsilon_decay_fraction * config.total_timesteps
    fraction = jnp.clip(env_steps / duration, 0.0, 1.0)
    return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)


def epsilon_greedy(key: jax.Array, q_values: jax.Array, epsilon: jax.Array) -> jax.Array:
    """``argmax`` of ``q_values [..., A]``, replaced by a uniform action with probability ``epsilon``."""
    explore_key, action_key = jax.random.split(key)
    batch_shape = q_values.shape[:-1]
    random_action = jax.random.randint(action_key, batch_shape, 0, q_values.shape[-1])
    explore = jax.random.uniform(explore_key, batch_shape)
    return epsilon_greedy_with_noise(q_values, epsilon, explore, random_action)


def epsilon_greedy_with_noise(q_values: jax.Array, epsilon: jax.Array, explore: jax.Array,
                              random_action: jax.Array, action_mask: Optional[jax.Array] = None) -> jax.Array:
    """``epsilon_greedy`` from pre-drawn ``explore`` uniforms and ``random_action`` ints (shape ``[...]``).

    With ``action_mask`` (``[..., A]`` bool) both choices are legal: the greedy one is the best legal
    action, and ``random_action`` holds ``[..., A]`` uniform scores whose best legal entry (uniform
    over the legal actions) is the exploring action."""
    greedy = jnp.argmax(losses.mask_q_values(q_values, action_mask), axis=-1)
    if action_mask is not None:
        random_action = jnp.argmax(jnp.where(action_mask, random_action, -1.0), axis=-1)
    return jnp.where(explore < epsilon, random_action, greedy).astype(jnp.int32)


def draw_rollout_noise(ctx: DQNContext, key: jax.Array, num_steps: int) -> RolloutNoise:
    """Exploration draws and env noise for ``num_steps`` steps of every env."""
    cfg = ctx.config
    shape = (num_steps, cfg.num_envs)
    explore_key, action_key, env_key = jax.random.split(key, 3)
    if ctx.masked:
        random_action = jax.random.uniform(action_key, shape + (ctx.num_actions,))
    else:
        random_action = jax.random.randint(action_key, shape, 0, ctx.num_actions, dtype=jnp.int32)
    return RolloutNoise(
        explore=jax.random.uniform(explore_key, shape),
        random_action=random_action,
        env=draw_step_noise(ctx.env, ctx.env_params, env_key, shape),
    )


def rollout_step(ctx: DQNContext, state: DQNState, noise: RolloutNoise) -> tuple[DQNState, StepRecord]:
    """Steps every env once with the epsilon-greedy policy and records the transitions.

    ``noise`` is this step's slice of ``draw_rollout_noise`` (leaves ``[num_envs, ...]``).
    """
    cfg = ctx.config
    epsilon = epsilon_at(cfg, state.env_steps)
    if ctx.recurrent:
        memory, q_values = ctx.network.apply(state.params, state.memory["q"], state.obs, state.memory["first"])
    else:
        q_values = ctx.network.apply(state.params, state.obs)
    action = epsilon_greedy_with_noise(q_values, epsilon, noise.explore, noise.random_action,
                                       ctx.legal_actions(state.env_state))
    next_obs, env_state, reward, terminated, truncated, info = step_envs(
        ctx.env, ctx.env_params, state.env_state, action, noise.env)
    # The legal actions at the stepped observation (before any auto-reset), for the TD target's max.
    next_action_mask = None
    if ctx.masked:
        next_action_mask = info.get("final_action_mask")
        if next_action_mask is None:
            raise ValueError("an env with action_mask must report the stepped observation's mask in "
                             "info['final_action_mask'] for DQN's targets (jaxppo's adapters do).")
    reward = reward.astype(jnp.float32)
    done = jnp.logical_or(terminated, truncated)
    tracker, finished_return, finished_length = track_episodes(state.tracker, reward, done)
    discounted, carried_discounted = running_discounted_return(state.discounted_return, reward, done, cfg.gamma)
    transition = replay.Transition(obs=state.obs, action=action, reward=reward,
                                   terminated=terminated.astype(bool), next_obs=info["final_observation"],
                                   next_action_mask=next_action_mask,
                                   first=state.memory["first"] if ctx.recurrent else None,
                                   memory=state.memory["q"] if ctx.recurrent else None)
    new_state = state.replace(
        env_state=env_state, obs=next_obs, tracker=tracker, env_steps=state.env_steps + cfg.num_envs,
        discounted_return=carried_discounted,
        memory={"q": memory, "first": done} if ctx.recurrent else state.memory)
    return new_state, StepRecord(transition, done, finished_return, finished_length, discounted, epsilon,
                                 step_counters(info))


def rollout(ctx: DQNContext, state: DQNState, num_steps: int) -> tuple[DQNState, StepRecord]:
    """``num_steps`` epsilon-greedy steps of every env; the record's leaves are ``[num_steps, num_envs, ...]``."""
    key, noise_key = jax.random.split(state.key)
    noise = draw_rollout_noise(ctx, noise_key, num_steps)
    return jax.lax.scan(functools.partial(rollout_step, ctx), state.replace(key=key), noise)


# Learning ------------------------------------------------------------------------------------

class QValues(NamedTuple):
    """The forward passes one TD loss needs, rows matching a flat batch of transitions."""

    online: jax.Array  # [M, A] the online network at obs (the only one with a gradient)
    target_next: jax.Array  # [M, A] the target network at next_obs, illegal actions masked
    online_next: jax.Array  # [M, A] the online network at next_obs for double DQN (masked); else target_next
    target_obs: jax.Array  # [R, A] the target network at the first R rows' obs (for greedy_agreement)


def _transition_q_values(ctx: DQNContext, params: Any, target_params: Any, batch: replay.Transition) -> QValues:
    # Separate passes, not one pass over [obs; next_obs]: the concatenation was slower on the CPU
    # (docs/dqn.md has the measurement), and for double DQN it also ran the online network's backward
    # pass over the next_obs half, whose gradient is zero.
    q_target_next = losses.mask_q_values(jax.lax.stop_gradient(ctx.network.apply(target_params, batch.next_obs)),
                                         batch.next_action_mask)
    agreement_rows = min(GREEDY_AGREEMENT_ROWS, batch.obs.shape[0])
    q_target_obs = jax.lax.stop_gradient(ctx.network.apply(target_params, batch.obs[:agreement_rows]))
    q_online = ctx.network.apply(params, batch.obs)
    q_online_next = q_target_next  # unused by the plain max
    if ctx.config.double_dqn:
        q_online_next = losses.mask_q_values(jax.lax.stop_gradient(ctx.network.apply(params, batch.next_obs)),
                                             batch.next_action_mask)
    return QValues(q_online, q_target_next, q_online_next, q_target_obs)


def sequence_q_values(ctx: DQNContext, params: Any, memory: jax.Array, obs: jax.Array, reset: jax.Array,
                      next_obs: Optional[jax.Array] = None) -> tuple[jax.Array, Optional[jax.Array], jax.Array]:
    """A recurrent Q-network over time-major sequences ``[T, B, ...]`` from ``memory [B, H]``.

    Returns ``(q [T, B, A], q_next [T, B, A] or None, memory [B, H])``: ``q[t]`` reads ``obs[t]`` (the memory
    zeroed first where ``reset[t]``); ``q_next[t]`` reads ``next_obs[t]``, the observation that followed in
    the same episode, from the memory ``obs[t]`` left. So a step that ended an episode by truncation
    bootstraps from its true last observation read with that episode's memory, and everywhere else
    ``q_next[t]`` is what ``q[t + 1]`` computes.
    """
    def step(memory: jax.Array, inputs: tuple) -> tuple[jax.Array, tuple]:
        obs_t, reset_t, next_t = inputs
        memory, q = ctx.network.apply(params, memory, obs_t, reset_t)
        q_next = None
        if next_t is not None:
            _, q_next = ctx.network.apply(params, memory, next_t, jnp.zeros_like(reset_t))
        return memory, (q, q_next)

    memory, (q, q_next) = jax.lax.scan(step, memory, (obs, reset, next_obs))
    return q, q_next, memory


def _sequence_q_values(ctx: DQNContext, params: Any, target_params: Any, batch: replay.Transition
                       ) -> tuple[QValues, replay.Transition]:
    """Replays sampled sequences (``batch`` leaves ``[B, burn_in + sequence_length, ...]``, its ``memory`` the
    ``[B, H]`` stored at each sequence's first step: ``replay.sample_sequences``) R2D2's way: both
    networks start from the stored memory of each sequence's first step and run ``burn_in`` steps without
    a gradient, then the loss's ``sequence_length`` steps. Returns the Q-values and the loss steps' batch,
    flattened to ``[sequence_length * B, ...]`` rows (time-major)."""
    cfg = ctx.config
    start = batch.memory  # [B, H]: the memory stored at each sequence's first step
    steps = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), batch._replace(memory=None))  # [W, B, ...]
    burn = jax.tree.map(lambda x: x[:cfg.burn_in], steps)
    train = jax.tree.map(lambda x: x[cfg.burn_in:], steps)

    def start_memory(network_params: Any) -> jax.Array:
        if cfg.burn_in == 0:
            return start
        return jax.lax.stop_gradient(sequence_q_values(ctx, network_params, start, burn.obs, burn.first)[2])

    q_online, q_online_next, _ = sequence_q_values(ctx, params, start_memory(params), train.obs, train.first,
                                                   train.next_obs if cfg.double_dqn else None)
    q_target, q_target_next, _ = jax.lax.stop_gradient(
        sequence_q_values(ctx, target_params, start_memory(target_params), train.obs, train.first, train.next_obs))
    rows = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731  [T, B, ...] -> [T * B, ...]
    flat = jax.tree.map(rows, train)
    q_target_next = losses.mask_q_values(rows(q_target_next), flat.next_action_mask)
    q_online_next = (losses.mask_q_values(jax.lax.stop_gradient(rows(q_online_next)), flat.next_action_mask)
                     if cfg.double_dqn else q_target_next)
    agreement_rows = min(GREEDY_AGREEMENT_ROWS, flat.reward.shape[0])
    return QValues(rows(q_online), q_target_next, q_online_next, rows(q_target)[:agreement_rows]), flat


def dqn_loss(params: Any, target_params: Any, ctx: DQNContext, batch: replay.Transition,
             reward_scale: jax.Array | float = 1.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """TD loss on a sampled batch, plus the diagnostics that only need this batch's forward passes.

    ``batch`` holds transitions ``[batch_size, ...]``, or with memory sequences ``[batch_size, burn_in +
    sequence_length, ...]`` (``_sequence_q_values``). The networks predict ``Q / reward_scale`` (1 unless
    ``reward_normalization="running"``): rewards and the TD-target clip are divided by it, and the Q
    diagnostics are multiplied back into return units.
    """
    cfg = ctx.config
    if ctx.recurrent:
        q, batch = _sequence_q_values(ctx, params, target_params, batch)
    else:
        q = _transition_q_values(ctx, params, target_params, batch)
    rewards, target_clip = batch.reward, cfg.td_target_clip
    if cfg.reward_normalization != "off":
        rewards = rewards / reward_scale
        target_clip = None if target_clip is None else target_clip / reward_scale
    out = losses.q_learning_loss(
        q.online, batch.action, rewards, batch.terminated, q.target_next, q.online_next,
        gamma=cfg.gamma, double_dqn=cfg.double_dqn, kind=cfg.loss, huber_delta=cfg.huber_delta,
        target_clip=target_clip, value_transform=cfg.value_target_transform,
    )
    q_online = jax.lax.stop_gradient(q.online)
    q_taken = symexp(out.q_taken) if cfg.value_target_transform == "symlog" else out.q_taken
    if cfg.reward_normalization != "off":
        q_taken = q_taken * reward_scale  # return units
    aux = {
        "q_mean": jnp.mean(q_taken),
        "q_min": jnp.min(q_taken),
        "q_max": jnp.max(q_taken),
        "td_target_clip_fraction": out.target_clip_fraction,
        "greedy_agreement": losses.greedy_agreement(q_online[:q.target_obs.shape[0]], q.target_obs),
        "greedy_action_histogram": losses.greedy_action_histogram(q_online),
    }
    return out.loss, aux


def gradient_step(ctx: DQNContext, target_params: Any, learner: LearnerState, batch: replay.Transition,
                  *, reward_scale: jax.Array | float = 1.0) -> tuple[LearnerState, GradientMetrics]:
    """One clipped, finite-guarded Adam step on a sampled ``batch`` (leaves ``[batch_size, ...]``)."""
    cfg = ctx.config
    (loss, aux), grads = jax.value_and_grad(dqn_loss, has_aux=True)(learner.params, target_params, ctx, batch,
                                                                    reward_scale)
    stats = gradient_stats(grads, cfg.max_grad_norm)
    updates, opt_state = ctx.optimizer.update(grads, learner.opt_state, learner.params)
    params = optax.apply_updates(learner.params, updates)
    metrics = GradientMetrics(td_loss=loss, grad_norm=stats.grad_norm, grad_clip_ratio=stats.grad_clip_ratio,
                              **aux)
    return LearnerState(params, opt_state), metrics


def learn(ctx: DQNContext, state: DQNState, key: jax.Array, learning: jax.Array
          ) -> tuple[LearnerState, GradientMetrics]:
    """``gradient_steps`` gradient steps on uniform batches when ``learning``; otherwise the state
    unchanged and zero metrics."""
    cfg = ctx.config
    learner = LearnerState(state.params, state.opt_state)
    # Every step's batch is drawn and gathered here, in one call, so the steps' loop and the cond
    # below carry batches, not the replay buffer.
    num_samples = cfg.gradient_steps * cfg.batch_size
    if ctx.recurrent:
        sampled = replay.sample_sequences(state.buffer, key, num_samples, cfg.burn_in + cfg.sequence_length,
                                          cfg.num_envs)
    else:
        sampled = replay.sample(state.buffer, key, num_samples)
    batches = jax.tree.map(lambda x: x.reshape((cfg.gradient_steps, cfg.batch_size) + x.shape[1:]), sampled)

    def run(current: LearnerState) -> tuple[LearnerState, GradientMetrics]:
        step = functools.partial(gradient_step, ctx, state.target_params,
                                 reward_scale=reward_scale_of(ctx.config, state.reward_stats))
        current, per_step = jax.lax.scan(step, current, batches)
        return current, jax.tree.map(lambda x: jnp.mean(x, axis=0), per_step)

    def skip(current: LearnerState) -> tuple[LearnerState, GradientMetrics]:
        shapes = jax.eval_shape(run, current)[1]
        return current, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    # Under vmap over seeds ``learning`` is batched, so the cond runs both branches and selects: the
    # steps before learning_starts cost a discarded gradient computation, but stay exactly a no-op.
    return jax.lax.cond(learning, run, skip, learner)


def reward_scale_of(config: DQNConfig, stats: rs.RunningStats) -> jax.Array:
    """What rewards are divided by: the root mean square of the discounted return, or 1 when off.

    The root mean square rather than the std (PPO's reward scale): early in training every discounted
    return can be equal (CartPole's are all 1.0 after one step), a spread of zero, but never a size of zero.
    """
    if config.reward_normalization == "off":
        return jnp.ones((), jnp.float32)
    return rs.root_mean_square(stats)


def rescale_q_head(params: Any, ratio: jax.Array) -> Any:
    """The Q-network's output layer times ``ratio`` (scale-only PopArt): with ``ratio = old scale / new
    scale`` the network's ``Q / scale`` still means the same Q in return units after the scale moves."""
    return replace_output_layer(params, lambda layer: {name: value * ratio for name, value in layer.items()})


def update_target(config: DQNConfig, online: Any, target: Any, learning: jax.Array,
                  env_steps_before: jax.Array, env_steps_after: jax.Array) -> Any:
    """The new target parameters (see the module docstring for when each mode fires)."""
    if config.target_update == "polyak":
        new = optax.incremental_update(online, target, config.tau)
        fire = learning
    else:
        new = online
        interval = config.target_update_interval
        fire = jnp.logical_and(learning, env_steps_after // interval > env_steps_before // interval)
    return jax.tree.map(lambda n, t: jnp.where(fire, n, t), new, target)


def train_step(ctx: DQNContext, state: DQNState, _: Any = None) -> tuple[DQNState, dict[str, jax.Array]]:
    """One update: ``train_frequency`` env steps, buffer write, gradient steps, target update, metrics."""
    cfg = ctx.config
    steps_before = state.env_steps
    state, record = rollout(ctx, state, cfg.train_frequency)
    chex.assert_shape(record.done, (cfg.train_frequency, cfg.num_envs))
    flat = jax.tree.map(lambda x: x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:]), record.transition)
    buffer = replay.add(state.buffer, flat)
    state = state.replace(buffer=buffer)
    if cfg.reward_normalization != "off":
        reward_stats = rs.update(state.reward_stats, record.discounted_return)
        # Before any statistics the untrained network's outputs mean nothing in return units: they are
        # taken as normalised outputs (not rescaled), which makes training exactly invariant to the
        # reward scale (tests/test_dqn_train.py).
        ratio = jnp.where(state.reward_stats.count > 0,
                          reward_scale_of(cfg, state.reward_stats) / reward_scale_of(cfg, reward_stats), 1.0)
        state = state.replace(reward_stats=reward_stats, params=rescale_q_head(state.params, ratio),
                              target_params=rescale_q_head(state.target_params, ratio))

    key, learn_key = jax.random.split(state.key)
    learning = state.env_steps >= cfg.learning_starts
    learner, grad_metrics = learn(ctx, state, learn_key, learning)
    target_params = update_target(cfg, learner.params, state.target_params, learning, steps_before,
                                  state.env_steps)

    episode_return, episode_length, episodes_completed = finished_episode_means(
        record.done, record.finished_return, record.finished_length,
        state.last_episode_return, state.last_episode_length,
    )
    metrics = dict(grad_metrics._asdict())
    metrics.update(
        epsilon=record.epsilon[-1],
        episode_return=episode_return,
        episode_length=episode_length,
        episodes_completed=episodes_completed,
        nonfinite_updates=nonfinite_update_count(learner.opt_state),
        env_steps=state.env_steps,
        learning=learning,
    )
    if cfg.reward_normalization != "off":
        metrics["reward_scale"] = reward_scale_of(cfg, state.reward_stats)
        metrics["nonfinite_samples"] = state.reward_stats.nonfinite_count.astype(jnp.int32)
    metrics.update(counter_metrics(ctx.env, record.counters))
    new_state = state.replace(
        params=learner.params,
        target_params=target_params,
        opt_state=learner.opt_state,
        last_episode_return=episode_return,
        last_episode_length=episode_length,
        key=key,
        update_step=state.update_step + 1,
    )
    return new_state, metrics


def run_updates(ctx: DQNContext, state: DQNState, num_updates: int) -> tuple[DQNState, dict[str, jax.Array]]:
    """``num_updates`` train steps in one ``lax.scan``; metrics gain a leading update axis."""
    return jax.lax.scan(functools.partial(train_step, ctx), state, None, length=num_updates)


# Acting and evaluation ------------------------------------------------------------------------

def policy_of(state: DQNState) -> DQNPolicy:
    return DQNPolicy(params=state.params)


def act(ctx: DQNContext, policy: DQNPolicy, obs: jax.Array, key: jax.Array,
        deterministic: bool = True, action_mask: Optional[jax.Array] = None) -> jax.Array:
    """Greedy action for one observation or a batch; ``deterministic=False`` explores with ``epsilon_end``;
    with ``action_mask`` (``[..., A]`` bool) only legal actions are chosen."""
    if ctx.recurrent:
        raise ValueError(f"memory={ctx.config.memory!r}: a recurrent Q-network acts from its memory; use "
                         "act_with_memory(policy, obs, key, memory, reset) with initial_memory(batch_shape).")
    return _choose(ctx, ctx.network.apply(policy.params, obs), key, deterministic, action_mask)


def _choose(ctx: DQNContext, q_values: jax.Array, key: jax.Array, deterministic: bool,
            action_mask: Optional[jax.Array]) -> jax.Array:
    if deterministic:
        return jnp.argmax(losses.mask_q_values(q_values, action_mask), axis=-1).astype(jnp.int32)
    if action_mask is None:
        return epsilon_greedy(key, q_values, ctx.config.epsilon_end)
    explore_key, action_key = jax.random.split(key)
    return epsilon_greedy_with_noise(q_values, ctx.config.epsilon_end,
                                     jax.random.uniform(explore_key, q_values.shape[:-1]),
                                     jax.random.uniform(action_key, q_values.shape), action_mask)


def initial_policy_memory(ctx: DQNContext, batch_shape: tuple[int, ...] = ()) -> jax.Array:
    """The Q-network's memory before an episode's first step, ``[*batch_shape, memory_size]``."""
    return initial_memory(tuple(batch_shape), ctx.config.memory_size)


def act_with_memory(ctx: DQNContext, policy: DQNPolicy, obs: jax.Array, key: jax.Array, memory: jax.Array,
                    reset: jax.Array, deterministic: bool = True, action_mask: Optional[jax.Array] = None
                    ) -> tuple[jax.Array, jax.Array]:
    """A recurrent Q-network's action and its next memory; ``reset`` is True where ``obs`` is an episode's
    first observation (the memory is zeroed before it is read); otherwise as ``act``."""
    memory, q_values = ctx.network.apply(policy.params, memory, obs, jnp.asarray(reset, bool))
    return _choose(ctx, q_values, key, deterministic, action_mask), memory


def evaluate(ctx, state, key: jax.Array) -> dict[str, jax.Array]:
    """One episode per fresh env with the deterministic policy; returns ``[eval_episodes]`` arrays (a
    recurrent policy's also ``eval_return_memory_wiped``: ``jaxppo.envs.evaluation.evaluate_policy``)."""
    return evaluate_policy(ctx, policy_of(state), key, act, act_with_memory, initial_policy_memory)


def make_algorithm(config: DQNConfig, env: Any = None, env_params: Any = None) -> Algorithm:
    """Binds a config and an environment into the pure functions of ``jaxppo.algorithm.Algorithm``."""
    ctx = make_context(config, env, env_params)
    return bind_algorithm(ctx, init=init_state, run_updates=run_updates, evaluate=evaluate, policy_of=policy_of,
                          act=act, initial_memory=initial_policy_memory if ctx.recurrent else None,
                          act_with_memory=act_with_memory if ctx.recurrent else None)
