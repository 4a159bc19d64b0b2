"""The interface every algorithm implements, so the run loop, CLI and benchmarks treat them alike.

An algorithm is a bundle of pure functions over its own state pytree. The PRNG key lives in the state
and every update splits it, so running ``n`` updates in one call or in several chunks gives identical
results (the runner relies on this for chunked training and exact resume).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import jax

__all__ = ["Algorithm", "bind_algorithm"]


class Algorithm(NamedTuple):
    """Pure functions for one config and environment; vmap them over seeds, jit the result.

    * ``init(key) -> state``: parameters, optimiser, environments, statistics, key.
    * ``run_updates(state, num_updates) -> (state, metrics)``: ``num_updates`` (a Python int, static)
      rollout-and-learn iterations in one ``lax.scan``; metrics are a dict of arrays whose leading axis
      is the update index.
    * ``evaluate(state, key) -> {"eval_return": [E], "eval_length": [E]}``: one episode on each of
      ``config.run.eval_episodes`` fresh environments with the greedy / deterministic policy (recurrent
      policies add ``eval_return_memory_wiped``, the same episodes with the memory wiped at every step).
    * ``policy_of(state) -> policy``: the small pytree acting needs (parameters, observation statistics).
    * ``act(policy, obs, key, deterministic) -> action`` for a single observation or a batch.
    * recurrent policies only (else None): ``initial_memory(batch_shape) -> memory`` and
      ``act_with_memory(policy, obs, key, memory, reset, deterministic) -> (action, memory)``.
    """

    config: Any
    init: Callable[[jax.Array], Any]
    run_updates: Callable[[Any, int], tuple[Any, dict[str, jax.Array]]]
    evaluate: Callable[[Any, jax.Array], dict[str, jax.Array]]
    policy_of: Callable[[Any], Any]
    act: Callable[..., jax.Array]
    env: Any
    env_params: Any
    initial_memory: Optional[Callable[..., Any]] = None
    act_with_memory: Optional[Callable[..., Any]] = None


def bind_algorithm(ctx: Any, *, init: Callable, run_updates: Callable, evaluate: Callable, policy_of: Callable,
                   act: Callable, initial_memory: Optional[Callable] = None,
                   act_with_memory: Optional[Callable] = None) -> Algorithm:
    """An ``Algorithm`` from functions that take ``ctx`` (a context with ``config``, ``env`` and
    ``env_params``) as their first argument; ``policy_of`` needs no context."""

    def bound(fn: Optional[Callable]) -> Optional[Callable]:
        return None if fn is None else functools.partial(fn, ctx)

    return Algorithm(config=ctx.config, init=bound(init), run_updates=bound(run_updates), evaluate=bound(evaluate),
                     policy_of=policy_of, act=bound(act), env=ctx.env, env_params=ctx.env_params,
                     initial_memory=bound(initial_memory), act_with_memory=bound(act_with_memory))
