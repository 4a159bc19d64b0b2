"""A uniform replay buffer as a pure pytree: fixed capacity, circular writes, sampling over the filled part.

The buffer lives inside the train state, so ``jax.vmap`` over seeds gives every seed its own buffer and
``lax.scan`` carries it through training with no host round trip. ``init``, ``add`` and ``sample`` are
pure functions; nothing is allocated after ``init``.

What one transition stores, and why:

* ``obs``        the observation the action was chosen from (the env's own dtype);
* ``action``     int32;
* ``reward``     float32;
* ``terminated`` bool: a true terminal bootstraps from zero. Truncation is *not* stored: a truncated
  step bootstraps exactly like a mid-episode one, so the learner never needs to know it happened;
* ``next_obs``   the observation that followed *in the same episode*: ``info["final_observation"]``,
  i.e. the pre-reset observation. Reading it from the next slot instead would halve observation
  memory, but gymnax auto-resets, so at every episode end the next slot holds the *new* episode's
  first observation (wrong bootstrap on truncation), and with ``num_envs`` interleaved streams and a
  wrapping write pointer the neighbour of a slot is not its successor. Storing it costs one more
  observation per transition and removes both problems.

Memory (exact: these arrays and two int32 scalars are all there is)::

    bytes = seeds x capacity x (2 x obs_bytes + 4 + 4 + 1) + seeds x 8
    obs_bytes = prod(obs_shape) x itemsize(obs dtype)

CartPole (4 float32): 41 B per transition, 410 kB per seed at capacity 10,000. MinAtar (10x10x4
float32): 3,209 B per transition, 321 MB per seed at capacity 100,000. A recurrent Q-network's
transitions also hold its memory and an episode-start flag: ``4 x memory_size + 1`` bytes more.

Writes: a batch of ``K`` transitions (``K <= capacity``) goes to slots ``(position + i) mod capacity``,
overwriting the oldest data once full. Sampling draws ``batch_size`` slots uniformly *with
replacement* from ``[0, size)``, so unfilled slots (zeros) are never read.
"""

from __future__ import annotations

from typing import Optional, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

__all__ = ["Transition", "ReplayBuffer", "init", "add", "sample_indices", "sample", "sequence_slots",
           "sample_sequences", "transition_bytes"]


class Transition(NamedTuple):
    """One transition, or a batch of them with a leading axis on every leaf."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    next_obs: jax.Array
    next_action_mask: Optional[jax.Array] = None  # [A] legal actions at next_obs, where the env masks
    # Recurrent Q-networks only (else None): ``first`` is True where ``obs`` starts an episode (the memory is
    # zeroed before reading it) and ``memory`` is the network's memory before this step (R2D2 stores it so
    # a replayed sequence starts from the memory the acting network had).
    first: Optional[jax.Array] = None
    memory: Optional[jax.Array] = None


@struct.dataclass
class ReplayBuffer:
    """Storage ``[capacity, ...]`` per field, the next write slot, and how many slots hold data."""

    storage: Transition
    position: jax.Array  # int32 scalar in [0, capacity)
    size: jax.Array  # int32 scalar in [0, capacity]

    @property
    def capacity(self) -> int:
        return self.storage.reward.shape[-1]


def init(capacity: int, example: Transition) -> ReplayBuffer:
    """An empty buffer of ``capacity`` slots shaped and typed like the unbatched ``example``."""
    if not isinstance(capacity, int) or capacity <= 0:
        raise ValueError(f"capacity={capacity!r} must be a positive integer.")
    storage = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example)
    return ReplayBuffer(storage=storage, position=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def add(buffer: ReplayBuffer, batch: Transition) -> ReplayBuffer:
    """Writes ``K`` transitions (leading axis) at the write pointer, wrapping around the end.

    ``K`` must not exceed the capacity: two writes to one slot in the same call would race.
    """
    num_new = batch.reward.shape[0]
    capacity = buffer.capacity
    if num_new > capacity:
        raise ValueError(f"cannot add {num_new} transitions at once to a buffer of capacity {capacity}.")
    chex.assert_trees_all_equal_structs(batch, buffer.storage)
    slots = (buffer.position + jnp.arange(num_new, dtype=jnp.int32)) % capacity
    storage = jax.tree.map(
        lambda store, new: store.at[slots].set(new.astype(store.dtype), unique_indices=True,
                                               mode="promise_in_bounds"),
        buffer.storage, batch,
    )
    return ReplayBuffer(
        storage=storage,
        position=(buffer.position + num_new) % capacity,
        size=jnp.minimum(buffer.size + num_new, capacity),
    )


def sample_indices(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> jax.Array:
    """``batch_size`` slots drawn uniformly with replacement from the filled part ``[0, size)``.

    On an empty buffer every index is 0 (an all-zero transition). The trainer never gets there: it
    samples only after an update's transitions have been written.
    """
    return jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1), dtype=jnp.int32)


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Transition:
    """A uniform batch of transitions, ``[batch_size, ...]`` per field."""
    slots = sample_indices(buffer, key, batch_size)
    return jax.tree.map(lambda store: store.at[slots].get(mode="promise_in_bounds"),
                        buffer.storage)


def sequence_slots(buffer: ReplayBuffer, key: jax.Array, batch_size: int, length: int, num_streams: int
                   ) -> jax.Array:
    """``[batch_size, length]`` slots, each row ``length`` consecutive steps of one env's stream.

    The buffer must have been written ``num_streams`` envs at a time, time-major (slot ``row *
    num_streams + env``), with a capacity that is a multiple of ``num_streams``: then env ``e``'s steps sit
    in slots ``e, e + num_streams, ...`` in time order, wrapping like the buffer. Each sequence picks an env
    and a start uniformly among the starts whose ``length`` steps are all filled and do not run past the
    newest row into the oldest (the write pointer is a seam in time, not a step). A buffer holding fewer
    than ``length`` rows gives windows that run into unfilled slots; the trainer never samples then.
    """
    capacity = buffer.capacity
    if capacity % num_streams:
        raise ValueError(f"capacity {capacity} is not a multiple of num_streams={num_streams}.")
    rows = capacity // num_streams
    filled_rows = buffer.size // num_streams
    oldest_row = (buffer.position // num_streams - filled_rows) % rows
    start_key, stream_key = jax.random.split(key)
    starts = jax.random.randint(start_key, (batch_size,), 0, jnp.maximum(filled_rows - length + 1, 1),
                                dtype=jnp.int32)
    streams = jax.random.randint(stream_key, (batch_size,), 0, num_streams, dtype=jnp.int32)
    steps = (oldest_row + starts[:, None] + jnp.arange(length, dtype=jnp.int32)) % rows
    return steps * num_streams + streams[:, None]


def sample_sequences(buffer: ReplayBuffer, key: jax.Array, batch_size: int, length: int, num_streams: int
                     ) -> Transition:
    """``batch_size`` sequences of ``length`` consecutive steps of one env each, ``[batch_size, length, ...]``
    per field (``sequence_slots``), except ``memory``: a replay starts from the memory stored at its first
    step only, so just that one is gathered, ``[batch_size, memory_size]``."""
    slots = sequence_slots(buffer, key, batch_size, length, num_streams)
    gather = lambda store, where: store.at[where].get(mode="promise_in_bounds")  # noqa: E731
    steps = jax.tree.map(lambda store: gather(store, slots), buffer.storage._replace(memory=None))
    memory = None if buffer.storage.memory is None else gather(buffer.storage.memory, slots[:, 0])
    return steps._replace(memory=memory)


def transition_bytes(example: Transition) -> int:
    """Bytes one stored transition occupies: the per-slot term of the memory formula above."""
    return int(sum(np.prod(jnp.shape(x), dtype=np.int64) * jnp.asarray(x).dtype.itemsize
                   for x in jax.tree.leaves(example)))
