"""The numbers people read when training blows up: explained variance, KL, clip fraction, Q range."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["explained_variance", "approx_kl", "clip_fraction"]


def explained_variance(predicted: jax.Array, target: jax.Array) -> jax.Array:
    """``1 - Var[target - predicted] / Var[target]`` over all elements.

    1 is a perfect critic, 0 no better than predicting the mean, negative worse than that (report 001
    reads -143). NaN when the targets have zero variance, where the quantity is undefined.
    """
    var_target = jnp.var(target)
    return jnp.where(var_target > 0, 1.0 - jnp.var(target - predicted) / jnp.where(var_target > 0, var_target, 1.0), jnp.nan)


def approx_kl(log_ratio: jax.Array) -> jax.Array:
    """Schulman's low-variance, non-negative estimator of KL(old || new): ``E[(r - 1) - log r]``."""
    return jnp.mean(jnp.expm1(log_ratio) - log_ratio)


def clip_fraction(ratio: jax.Array, clip_epsilon: float | jax.Array) -> jax.Array:
    """Fraction of samples whose probability ratio left ``[1 - eps, 1 + eps]``."""
    return jnp.mean((jnp.abs(ratio - 1.0) > clip_epsilon).astype(jnp.float32))
