"""Greedy evaluation: one episode on each of several fresh envs, shared by every algorithm."""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

__all__ = ["greedy_episodes", "recurrent_greedy_episodes", "evaluate_policy", "max_episode_steps"]


def max_episode_steps(env_params: Any) -> int:
    """The env's time limit (gymnax ``max_steps_in_episode``), 1000 if it declares none."""
    return int(getattr(env_params, "max_steps_in_episode", 1000))


def greedy_episodes(env: Any, env_params: Any, act_fn: Callable[..., Any], key: jax.Array, num_episodes: int,
                    memory: Any = None, action_masks: bool = False, wipe_memory: bool = False
                    ) -> dict[str, jax.Array]:
    """Runs ``act_fn(obs_batch, key) -> actions`` on ``num_episodes`` fresh envs for the time limit.

    Only each env's first episode counts (rewards after its first termination or truncation are
    masked, since gymnax auto-resets). Returns ``{"eval_return": [E], "eval_length": [E]}``, plus the
    scalars of the env's own ``held_out_evaluation(act_fn, key, env_params)`` when it defines one
    (``IntrusionDetection-v0``: confusion counts and F1 on its held-out split).

    With ``memory`` (a recurrent policy's initial memory, leaves ``[E, ...]``) ``act_fn`` is
    ``(obs, key, memory, reset) -> (actions, memory)``, ``reset`` True on each env's first step and
    after every auto-reset; ``wipe_memory`` sets ``reset`` on every step instead, so the policy acts on
    the current observation alone (the ablation that tells whether it uses its memory). With ``action_masks`` the env's ``action_mask(state, params)`` of each env's
    current state is passed as ``act_fn(..., action_mask=[E, num_actions])``.
    """
    recurrent = memory is not None
    held_out = None if recurrent else getattr(env, "held_out_evaluation", None)
    extra = held_out(act_fn, jax.random.fold_in(key, 1), env_params) if held_out is not None else {}
    reset_key, run_key = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_episodes), env_params)

    def step(carry, step_key):
        obs, env_state, total, length, running, memory, reset = carry
        masks = {}
        if action_masks:
            masks["action_mask"] = jax.vmap(env.action_mask, in_axes=(0, None))(env_state, env_params)
        if recurrent:
            action, memory = act_fn(obs, step_key, memory, jnp.logical_or(reset, wipe_memory), **masks)
        else:
            action = act_fn(obs, step_key, **masks)
        obs, env_state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(step_key, num_episodes), env_state, action, env_params)
        done = jnp.logical_or(terminated, truncated)
        total = total + running * reward.astype(jnp.float32)
        length = length + running.astype(jnp.int32)
        running = running * (1.0 - done.astype(jnp.float32))
        return (obs, env_state, total, length, running, memory, done), None

    init = (obs, env_state, jnp.zeros((num_episodes,), jnp.float32), jnp.zeros((num_episodes,), jnp.int32),
            jnp.ones((num_episodes,), jnp.float32), memory, jnp.ones((num_episodes,), bool))
    steps = jax.random.split(run_key, max_episode_steps(env_params))
    (_, _, total, length, _, _, _), _ = jax.lax.scan(step, init, steps)
    return {"eval_return": total, "eval_length": length, **extra}


def recurrent_greedy_episodes(env: Any, env_params: Any, act_fn: Callable[..., Any], key: jax.Array,
                              num_episodes: int, memory: Any, action_masks: bool = False) -> dict[str, jax.Array]:
    """``greedy_episodes`` of a recurrent policy, twice on the same episodes (same keys): with its memory,
    and with the memory wiped at every step. Adds ``eval_return_memory_wiped`` ``[E]``: where it matches
    ``eval_return``, the policy does not use its memory (``jaxppo.diagnosis``'s ``memory_unused``)."""
    carried = greedy_episodes(env, env_params, act_fn, key, num_episodes, memory=memory, action_masks=action_masks)
    wiped = greedy_episodes(env, env_params, act_fn, key, num_episodes, memory=memory, action_masks=action_masks,
                            wipe_memory=True)
    return {**carried, "eval_return_memory_wiped": wiped["eval_return"]}


def evaluate_policy(ctx: Any, policy: Any, key: jax.Array, act: Callable[..., Any],
                    act_with_memory: Optional[Callable[..., Any]] = None,
                    initial_memory: Optional[Callable[..., Any]] = None) -> dict[str, jax.Array]:
    """An algorithm's ``evaluate``: one greedy episode on each of ``ctx.config.run.eval_episodes`` fresh envs.

    ``ctx`` has ``env``, ``env_params``, ``config``, ``masked`` and ``recurrent``. The policy acts through
    the algorithm's ``act(ctx, policy, obs, key, deterministic, action_mask)``, or for a recurrent one its
    ``act_with_memory(ctx, policy, obs, key, memory, reset, deterministic, action_mask)`` from
    ``initial_memory(ctx, (episodes,))``, played twice (``recurrent_greedy_episodes``).
    """
    episodes = ctx.config.run.eval_episodes
    if ctx.recurrent:
        def act_fn(obs, step_key, memory, reset, action_mask=None):
            return act_with_memory(ctx, policy, obs, step_key, memory, reset, deterministic=True,
                                   action_mask=action_mask)

        return recurrent_greedy_episodes(ctx.env, ctx.env_params, act_fn, key, episodes,
                                         initial_memory(ctx, (episodes,)), action_masks=ctx.masked)
    return greedy_episodes(
        ctx.env, ctx.env_params,
        lambda obs, step_key, action_mask=None: act(ctx, policy, obs, step_key, deterministic=True,
                                                    action_mask=action_mask),
        key, episodes, action_masks=ctx.masked)
