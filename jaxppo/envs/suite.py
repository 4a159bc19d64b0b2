"""What every suite adapter shares: params with a time limit, one flat observation, spaces, the restart.

Each adapter (``jaxppo.envs.brax``, ``.playground``, ``.jumanji``, ``.craftax``, ``.navix``,
``.xminigrid``) turns its suite's API into gymnax 1.0's ``reset(key, params) -> (obs, state)`` and
``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``. The steps
they have in common live here, so that each adapter only says how its suite marks an episode's end:

* ``SuiteParams``: the suite's own params (a pytree, so they can be vmapped) and the episode cap that
  greedy evaluation reads as ``max_steps_in_episode``;
* ``observation_array``: one array observation (an image, a grid, a vector) as float32 with its shape,
  so ``torso: conv`` can read grids and pixels; any other pytree (dict, named tuple) raveled by
  ``flat_observation`` to one float32 vector in leaf order, leaving out the named action-mask field;
* ``restart_where_done``: the auto-reset every adapter performs with the step's key, keeping the ended
  episode's last observation in ``info["final_observation"]`` so a truncated episode bootstraps from
  its true last state.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxppo.envs.stepping import where_done

__all__ = ["SuiteParams", "WithActionMask", "flat_observation", "flat_layout", "observation_array", "restart_where_done",
           "vector_space", "discrete_space"]


@struct.dataclass
class SuiteParams:
    """A suite's own env params (``None`` where the suite has none) and the episode cap."""

    inner: Any = None
    max_steps_in_episode: int = struct.field(pytree_node=False, default=1000)


@struct.dataclass
class WithActionMask:
    """A suite's env state with the legal actions of the observation it produced (``[num_actions]``
    bool), for suites that put the mask in the observation rather than behind a method of the state."""

    state: Any
    action_mask: jax.Array


def _field_name(path: tuple) -> str:
    names = [getattr(entry, "name", getattr(entry, "key", None)) for entry in path]
    return str(names[-1]) if names else ""


def flat_observation(observation: Any, leave_out: Optional[str] = None) -> jax.Array:
    """Every leaf of ``observation`` except a field named ``leave_out``, raveled and concatenated as
    float32 in leaf order: shape ``[sum of leaf sizes]``."""
    leaves = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(observation)
              if leave_out is None or _field_name(path) != leave_out]
    return jnp.concatenate([jnp.ravel(jnp.asarray(leaf)).astype(jnp.float32) for leaf in leaves])


def flat_layout(observation: Any, leave_out: Optional[str] = None) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Where each field of ``observation`` sits in ``flat_observation(observation, leave_out)``: its name
    to ``(offset, shape)``, so a network can cut one field back out (a grid for a conv torso). Works on
    arrays or ``jax.ShapeDtypeStruct`` leaves."""
    layout, offset = {}, 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(observation):
        name = _field_name(path)
        if leave_out is not None and name == leave_out:
            continue
        shape = tuple(int(d) for d in leaf.shape)
        layout[name] = (offset, shape)
        offset += int(np.prod(shape, dtype=np.int64))
    return layout


def observation_array(observation: Any, leave_out: Optional[str] = None) -> jax.Array:
    """A single array observation as float32 with its own shape (``[H, W, C]`` stays an image for a conv
    torso; an MLP flattens it the same way); a pytree of several arrays flattened by ``flat_observation``."""
    if hasattr(observation, "shape"):  # one array (jax or numpy), not a pytree of them
        return jnp.asarray(observation).astype(jnp.float32)
    return flat_observation(observation, leave_out)


def restart_where_done(done: jax.Array, state: Any, obs: jax.Array, reset_state: Any, reset_obs: jax.Array
                       ) -> tuple[jax.Array, Any, dict]:
    """``(obs, state, info)`` after an auto-reset: the reset ones where ``done``, the stepped ones else;
    ``info["final_observation"]`` is the stepped observation either way."""
    return (where_done(done, reset_obs, obs), where_done(done, reset_state, state),
            {"final_observation": obs})


def vector_space(reset: Any) -> Any:
    """An unbounded float32 box shaped like the observation ``reset(key)`` returns (traced, not run)."""
    from gymnax.environments import spaces

    obs, _ = jax.eval_shape(reset, jax.random.PRNGKey(0))
    return spaces.Box(-jnp.inf, jnp.inf, obs.shape, jnp.float32)


def discrete_space(num_actions: int) -> Any:
    """gymnax's ``Discrete`` space of ``num_actions`` actions."""
    from gymnax.environments import spaces

    return spaces.Discrete(int(num_actions))
