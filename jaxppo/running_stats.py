"""Running mean and variance carried as pure state, merged exactly for any batch split.

One implementation serves observations, rewards (via the discounted return) and value targets.
``update`` merges a whole batch at once with Chan, Golub and LeVeque's parallel form of Welford's
algorithm (1979): for two groups A and B with counts n_a, n_b, means m_a, m_b and variances s_a, s_b,

    n    = n_a + n_b
    d    = m_b - m_a
    m    = m_a + d * n_b / n
    s    = (n_a * s_a + n_b * s_b + d**2 * n_a * n_b / n) / n

which gives the same mean and (population) variance as one pass of numpy over the concatenated data,
whatever the split. The batch's own variance is computed two-pass, so no catastrophic cancellation. The
count is a float32: an int32 count wraps to a negative number after 2**31 samples and breaks the merge,
while a float32 count only loses resolution in the weight n_b / n, which is harmless.

Non-finite data. A sample with a NaN or Inf in any element is left out of the moments (one such reward
would otherwise make the mean NaN for ever, and every later update that normalises with it), and
counted in ``nonfinite_count`` so the run can show it. The merge above stays exact over the finite
samples for any split: each batch contributes its finite count, mean and variance. A batch with no
finite sample leaves the statistics as they were.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import chex
import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["RunningStats", "init", "update", "replace_with_batch", "normalize", "denormalize", "std",
           "root_mean_square", "renormalize", "preserve_linear_outputs"]

_VARIANCE_EPS = 1e-8


@struct.dataclass
class RunningStats:
    """Mean, population variance and count of everything merged so far (shape = one sample's shape)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array  # finite samples merged so far (float32, see the module docstring)
    nonfinite_count: jax.Array | float = 0.0  # samples left out because they held a NaN or Inf


def init(shape: Sequence[int] = ()) -> RunningStats:
    """Empty statistics: mean 0, variance 1 (so normalising before any data is the identity), count 0."""
    return RunningStats(
        mean=jnp.zeros(shape, jnp.float32),
        var=jnp.ones(shape, jnp.float32),
        count=jnp.zeros((), jnp.float32),
        nonfinite_count=jnp.zeros((), jnp.float32),
    )


class _BatchMoments(NamedTuple):
    mean: jax.Array
    var: jax.Array
    count: jax.Array  # finite samples in the batch
    nonfinite: jax.Array  # samples left out


def _batch_moments(stats: RunningStats, batch: jax.Array) -> _BatchMoments:
    """Mean and population variance over the finite samples of ``batch`` (leading axes = samples)."""
    sample_ndim = stats.mean.ndim
    chex.assert_equal(batch.shape[batch.ndim - sample_ndim:], stats.mean.shape)
    num_sample_axes = batch.ndim - sample_ndim
    batch = batch.astype(jnp.float32)
    sample_axes = tuple(range(num_sample_axes))
    feature_axes = tuple(range(num_sample_axes, batch.ndim))
    finite = jnp.all(jnp.isfinite(batch), axis=feature_axes) if feature_axes else jnp.isfinite(batch)
    total = jnp.asarray(finite.size, jnp.float32)
    count = jnp.sum(finite, dtype=jnp.float32)
    mask = finite.reshape(finite.shape + (1,) * sample_ndim)
    safe = jnp.where(mask, batch, 0.0)
    mean = jnp.sum(safe, axis=sample_axes) / jnp.maximum(count, 1.0)
    var = jnp.sum(jnp.where(mask, (batch - mean) ** 2, 0.0), axis=sample_axes) / jnp.maximum(count, 1.0)
    return _BatchMoments(mean, var, count, total - count)


def update(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """Merges the finite samples of a batch (leading axes = samples, trailing axes =
    ``stats.mean.shape``) into ``stats`` and counts the non-finite ones."""
    batch_mean, batch_var, batch_count, nonfinite = _batch_moments(stats, batch)
    total = stats.count + batch_count
    safe_total = jnp.maximum(total, 1.0)
    delta = batch_mean - stats.mean
    weight = batch_count / safe_total
    mean = stats.mean + delta * weight
    # With count 0 the prior variance (1.0) gets weight 0, so the result is exactly the batch's.
    var = (stats.count * stats.var + batch_count * batch_var + delta**2 * stats.count * weight) / safe_total
    keep = total <= 0  # nothing finite seen yet: keep the identity statistics
    return RunningStats(mean=jnp.where(keep, stats.mean, mean), var=jnp.where(keep, stats.var, var),
                        count=total, nonfinite_count=stats.nonfinite_count + nonfinite)


def replace_with_batch(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """Statistics of this batch's finite samples alone (per-batch normalisation; kept to reproduce seed
    003's failure). A batch with no finite sample keeps the previous statistics."""
    batch_mean, batch_var, batch_count, nonfinite = _batch_moments(stats, batch)
    empty = batch_count <= 0
    return RunningStats(mean=jnp.where(empty, stats.mean, batch_mean), var=jnp.where(empty, stats.var, batch_var),
                        count=stats.count + batch_count, nonfinite_count=stats.nonfinite_count + nonfinite)


def std(stats: RunningStats) -> jax.Array:
    """The running standard deviation, ``sqrt(var + eps)``, shaped like the statistics."""
    return jnp.sqrt(stats.var + _VARIANCE_EPS)


def root_mean_square(stats: RunningStats) -> jax.Array:
    """``sqrt(mean^2 + var)``: the typical magnitude of the samples, 1 before any data.

    A scale for positive quantities whose spread can be near zero while their size is not (CartPole's
    discounted returns are all 1.0 after the first step: std 0, root mean square 1).
    """
    return jnp.sqrt(stats.mean**2 + stats.var + _VARIANCE_EPS)


def normalize(stats: RunningStats, x: jax.Array, clip: Optional[jax.Array | float] = None,
              center: bool = True) -> jax.Array:
    """``(x - mean) / std`` (or ``x / std`` with ``center=False``), optionally clipped to ``[-clip, clip]``."""
    shifted = x - stats.mean if center else x
    out = shifted / std(stats)
    if clip is not None:
        out = jnp.clip(out, -clip, clip)
    return out


def denormalize(stats: RunningStats, y: jax.Array) -> jax.Array:
    """Inverse of ``normalize`` without clipping: ``y * std + mean``."""
    return y * std(stats) + stats.mean


def renormalize(old: RunningStats, new: RunningStats, y: jax.Array, scale: float | jax.Array = 1.0) -> jax.Array:
    """``y = scale * normalize(old, x)`` re-expressed as ``scale * normalize(new, x)`` for the same ``x``.

    ``y * std_old / std_new + scale * (mean_old - mean_new) / std_new``: an affine map, so it is exact
    for any ``y`` (the value-clipping centre, or a linear layer's output in ``preserve_linear_outputs``).
    """
    ratio = std(old) / std(new)
    return y * ratio + scale * (old.mean - new.mean) / std(new)


def preserve_linear_outputs(kernel: jax.Array, bias: jax.Array, old: RunningStats, new: RunningStats,
                            scale: float | jax.Array = 1.0) -> tuple[jax.Array, jax.Array]:
    """PopArt's output rescaling (van Hasselt et al. 2016, "Learning values across many orders of
    magnitude"): the linear head ``y = h @ kernel + bias`` that predicts ``scale * normalize(old, x)`` is
    rewritten to predict ``scale * normalize(new, x)`` *for every input h*, so the un-normalised
    prediction ``denormalize(new, y' / scale) == denormalize(old, y / scale)`` survives a statistics
    update exactly (up to float rounding):

        kernel' = kernel * std_old / std_new
        bias'   = (bias * std_old + scale * (mean_old - mean_new)) / std_new

    Shapes: ``kernel [H, 1]``, ``bias [1]`` for a scalar value (statistics of shape ``()``).
    """
    chex.assert_equal(bias.shape[-1:], kernel.shape[-1:])
    ratio = std(old) / std(new)
    return kernel * ratio, renormalize(old, new, bias, scale)
