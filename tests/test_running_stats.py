"""Running statistics: the merge equals numpy over the concatenated data for any split."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxppo import running_stats as rs


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [(), (3,), (2, 2)])
def test_merge_equals_numpy_for_random_splits(seed, shape):
    rng = np.random.default_rng(seed)
    total = int(rng.integers(20, 200))
    data = (rng.normal(size=(total,) + shape) * rng.uniform(0.1, 50) + rng.uniform(-100, 100)).astype(np.float32)
    cuts = np.sort(rng.choice(np.arange(1, total), size=int(rng.integers(1, 8)), replace=False))
    update = jax.jit(rs.update)
    stats = rs.init(shape)
    for chunk in np.split(data, cuts):
        stats = update(stats, jnp.asarray(chunk))
    np.testing.assert_allclose(stats.mean, data.mean(0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(stats.var, data.var(0), rtol=1e-3, atol=1e-3)
    assert float(stats.count) == total


def test_multi_axis_batches_reduce_over_leading_axes():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(7, 5, 3)).astype(np.float32)  # [T, N, features]
    stats = jax.jit(rs.update)(rs.init((3,)), jnp.asarray(data))
    flat = data.reshape(-1, 3)
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.var, flat.var(0), rtol=1e-4)
    assert float(stats.count) == 35


def test_large_offset_is_numerically_stable():
    # Returns of -200,000 with a spread of 10 (seed 004's scale): a naive E[x^2] - E[x]^2 in float32 fails.
    rng = np.random.default_rng(1)
    data = (-200_000.0 + 10.0 * rng.normal(size=(4, 512))).astype(np.float64)
    stats = rs.init(())
    for chunk in data:
        stats = jax.jit(rs.update)(stats, jnp.asarray(chunk, jnp.float32))
    assert abs(float(stats.mean) - data.mean()) < 0.05
    np.testing.assert_allclose(float(stats.var), data.var(), rtol=0.02)


def test_replace_with_batch_forgets_the_past():
    first = jnp.arange(10.0)
    second = jnp.array([100.0, 102.0])
    stats = rs.replace_with_batch(rs.update(rs.init(()), first), second)
    np.testing.assert_allclose([stats.mean, stats.var], [101.0, 1.0])


def test_normalize_denormalize_roundtrip_and_clip():
    stats = rs.RunningStats(mean=jnp.array(5.0), var=jnp.array(4.0), count=jnp.array(10.0))
    x = jnp.array([1.0, 5.0, 13.0])
    y = rs.normalize(stats, x)
    np.testing.assert_allclose(y, [-2.0, 0.0, 4.0], rtol=1e-6)
    np.testing.assert_allclose(rs.denormalize(stats, y), x, rtol=1e-6)
    np.testing.assert_allclose(rs.normalize(stats, x, clip=3.0), [-2.0, 0.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(rs.normalize(stats, x, center=False), [0.5, 2.5, 6.5], rtol=1e-6)


def test_empty_stats_normalise_as_identity():
    x = jnp.array([3.0, -2.0])
    np.testing.assert_allclose(rs.normalize(rs.init(()), x), x, rtol=1e-6)
