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
    # Returns of -200,000 with a spread of 10 (report 004's scale): a naive E[x^2] - E[x]^2 in float32 fails.
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


def masked_welford_reference(chunks, sample_ndim):
    """Independent numpy reference: one sample at a time, Welford's update, non-finite samples skipped."""
    count, skipped, mean, m2 = 0, 0, None, None
    for chunk in chunks:
        samples = np.asarray(chunk, np.float64).reshape((-1,) + chunk.shape[chunk.ndim - sample_ndim:])
        for x in samples:
            if not np.all(np.isfinite(x)):
                skipped += 1
                continue
            if mean is None:
                mean, m2 = np.zeros_like(x), np.zeros_like(x)
            count += 1
            delta = x - mean
            mean = mean + delta / count
            m2 = m2 + delta * (x - mean)
    return count, skipped, mean, m2 / max(count, 1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [(), (3,)])
def test_nonfinite_samples_are_left_out_and_counted_for_any_split(seed, shape):
    rng = np.random.default_rng(100 + seed)
    total = int(rng.integers(30, 150))
    data = (rng.normal(size=(total,) + shape) * 7.0 + 3.0).astype(np.float32)
    bad = rng.choice(total, size=int(rng.integers(1, 10)), replace=False)
    for i, index in enumerate(bad):
        poison = (np.nan, np.inf, -np.inf)[i % 3]
        if shape:
            data[index, int(rng.integers(shape[0]))] = poison  # one bad element spoils the whole sample
        else:
            data[index] = poison
    cuts = np.sort(rng.choice(np.arange(1, total), size=int(rng.integers(1, 8)), replace=False))
    chunks = np.split(data, cuts)
    update = jax.jit(rs.update)
    stats = rs.init(shape)
    for chunk in chunks:
        stats = update(stats, jnp.asarray(chunk))
    count, skipped, mean, var = masked_welford_reference(chunks, len(shape))
    assert float(stats.count) == count and float(stats.nonfinite_count) == skipped == len(bad)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stats.var, var, rtol=1e-3, atol=1e-3)


def test_an_all_nonfinite_batch_keeps_the_statistics():
    stats = jax.jit(rs.update)(rs.init(()), jnp.array([1.0, 3.0]))
    after = jax.jit(rs.update)(stats, jnp.array([jnp.nan, jnp.inf]))
    np.testing.assert_allclose([after.mean, after.var, after.count, after.nonfinite_count], [2.0, 1.0, 2.0, 2.0])
    # Before any finite data the statistics stay the identity (mean 0, variance 1).
    empty = jax.jit(rs.update)(rs.init(()), jnp.array([jnp.nan]))
    np.testing.assert_allclose([empty.mean, empty.var, empty.count, empty.nonfinite_count], [0.0, 1.0, 0.0, 1.0])
    replaced = jax.jit(rs.replace_with_batch)(stats, jnp.array([jnp.nan, 5.0, 7.0]))
    np.testing.assert_allclose([replaced.mean, replaced.var, replaced.nonfinite_count], [6.0, 1.0, 1.0])
    kept = jax.jit(rs.replace_with_batch)(stats, jnp.full((3,), jnp.nan))
    np.testing.assert_allclose([kept.mean, kept.var, kept.nonfinite_count], [2.0, 1.0, 3.0])
