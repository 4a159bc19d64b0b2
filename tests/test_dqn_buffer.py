"""The pure replay buffer: circular writes, sampling only from filled slots, exact memory."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxppo.dqn import buffer as replay


def _example(obs_dim=2):
    return replay.Transition(obs=jnp.zeros((obs_dim,), jnp.float32), action=jnp.zeros((), jnp.int32),
                             reward=jnp.zeros((), jnp.float32), terminated=jnp.zeros((), bool),
                             next_obs=jnp.zeros((obs_dim,), jnp.float32))


def _batch(values):
    values = jnp.asarray(values, jnp.float32)
    n = values.shape[0]
    return replay.Transition(obs=jnp.stack([values, -values], 1), action=values.astype(jnp.int32),
                             reward=values, terminated=values > 100, next_obs=jnp.stack([values + 1, values], 1))


def test_writes_wrap_around_and_overwrite_oldest():
    add = jax.jit(replay.add)
    buf = replay.init(5, _example())
    buf = add(buf, _batch([0, 1, 2]))
    assert int(buf.position) == 3 and int(buf.size) == 3
    np.testing.assert_array_equal(buf.storage.reward, [0, 1, 2, 0, 0])
    buf = add(buf, _batch([3, 4, 5]))
    assert int(buf.position) == 1 and int(buf.size) == 5
    np.testing.assert_array_equal(buf.storage.reward, [5, 1, 2, 3, 4])
    np.testing.assert_array_equal(buf.storage.obs[:, 1], [-5, -1, -2, -3, -4])
    np.testing.assert_array_equal(buf.storage.action, [5, 1, 2, 3, 4])
    buf = add(buf, _batch([6, 7, 8, 9, 10]))  # a write as large as the buffer replaces all of it
    assert int(buf.position) == 1 and int(buf.size) == 5
    np.testing.assert_array_equal(buf.storage.reward, [10, 6, 7, 8, 9])


def test_sampling_never_reads_unfilled_slots_and_covers_filled_ones():
    capacity, filled = 100, 37
    buf = jax.jit(replay.add)(replay.init(capacity, _example()), _batch(np.arange(1, filled + 1)))
    indices = jax.jit(jax.vmap(replay.sample_indices, in_axes=(None, 0, None)), static_argnums=2)(
        buf, jax.random.split(jax.random.PRNGKey(0), 200), 64)
    indices = np.asarray(indices).ravel()
    assert indices.min() >= 0 and indices.max() < filled
    counts = np.bincount(indices, minlength=filled)
    assert counts.min() > 0  # every filled slot is reachable; expected 346 draws each
    assert counts.max() < 2 * counts.mean()
    batch = jax.jit(replay.sample, static_argnums=2)(buf, jax.random.PRNGKey(3), 4096)
    # Slots hold rewards 1..37, the empty ones 0: a sampled 0 would be an unfilled slot.
    assert float(jnp.min(batch.reward)) >= 1.0
    np.testing.assert_array_equal(batch.obs[:, 0], batch.reward)  # fields of one slot stay together
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.reward + 1)


def test_buffers_are_independent_per_seed_and_memory_is_exact():
    capacity = 50
    bufs = jax.vmap(lambda _: replay.init(capacity, _example(4)))(jnp.arange(3))
    per_transition = replay.transition_bytes(_example(4))
    assert per_transition == 2 * 4 * 4 + 4 + 4 + 1
    total = sum(x.nbytes for x in jax.tree.leaves(bufs))
    assert total == 3 * capacity * per_transition + 3 * 8
