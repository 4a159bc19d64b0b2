"""Statistics over seeds: interquartile mean, stratified bootstrap intervals, shares.

The protocol is rliable's (Agarwal et al., 2021, "Deep RL at the Edge of the Statistical Precipice"):
report the interquartile mean (IQM) of per-seed scores, which ignores the best and worst quarter of
seeds and so is robust to a few outliers yet uses half the data (unlike the median), with a
percentile-bootstrap confidence interval that resamples seeds, within each task when there are
several. Written in numpy rather than depending on ``rliable``, which pulls arch, statsmodels,
seaborn and pandas for these few lines (README, "Dependency notes").

Everything here is pure, host-side numpy: the run summary, the lab and sweeps call it on metrics
already copied off the device.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["interquartile_mean", "bootstrap_interval", "summarize_seeds", "share"]


def interquartile_mean(values: Any, axis: Optional[int] = 0) -> Any:
    """Mean of the middle 50% of ``values`` along ``axis`` (``None``: over all elements).

    Exactly ``scipy.stats.trim_mean(values, 0.25, axis)``: after sorting, ``floor(n / 4)`` values
    are cut from each end and the rest averaged, so for fewer than 4 values it is the plain mean.
    A NaN anywhere along the axis gives NaN (a silent sort-to-the-end would bias the result).
    Returns a float for a 1-D input (or ``axis=None``), else an array.
    """
    array = np.asarray(values, dtype=np.float64)
    if axis is None:
        array = array.reshape(-1)
        axis = 0
    if array.shape[axis] == 0:
        raise ValueError("interquartile_mean of an empty axis is undefined.")
    count = array.shape[axis]
    cut = int(0.25 * count)
    ordered = np.sort(array, axis=axis)
    middle = np.take(ordered, np.arange(cut, count - cut), axis=axis)
    result = np.mean(middle, axis=axis)
    result = np.where(np.any(np.isnan(array), axis=axis), np.nan, result)
    return float(result) if np.ndim(result) == 0 else result


def _flat_scores(sample: np.ndarray, statistic: Callable[..., Any]) -> float:
    result = statistic(sample.reshape(-1))
    if np.ndim(result) != 0:
        raise ValueError(f"statistic must return one number, got shape {np.shape(result)}.")
    return float(result)


def bootstrap_interval(
    values: Any,
    statistic: Callable[..., Any] = interquartile_mean,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of ``statistic`` over seeds.

    ``values`` is ``[seeds]`` or ``[seeds, tasks]``. Each resample draws seeds with replacement (for
    2-D input: independently within each task, the stratified bootstrap of rliable, so every task
    keeps its weight); ``statistic`` maps all resampled scores, flattened, to one number (for 2-D
    input that is rliable's aggregate IQM over runs and tasks). The interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled statistics.
    2000 resamples put the 2.5% quantile's Monte Carlo error well below the seed-to-seed spread at
    16+ seeds (rliable uses 2000 too). Deterministic for a given ``seed``.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in (1, 2):
        raise ValueError(f"values must be [seeds] or [seeds, tasks], got shape {array.shape}.")
    if array.shape[0] == 0:
        raise ValueError("bootstrap_interval needs at least one seed.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must lie in (0, 1).")
    if num_resamples < 1:
        raise ValueError(f"num_resamples={num_resamples!r} must be a positive integer.")
    matrix = array.reshape(array.shape[0], -1)  # [seeds, tasks]
    num_seeds, num_tasks = matrix.shape
    rng = np.random.default_rng(seed)
    # indices[b, i, t]: the seed drawn for slot i of task t in resample b (stratified by task).
    indices = rng.integers(0, num_seeds, size=(num_resamples, num_seeds, num_tasks))
    resampled = np.take_along_axis(matrix[None], indices, axis=1)  # [B, seeds, tasks]
    if statistic is interquartile_mean:
        estimates = interquartile_mean(resampled.reshape(num_resamples, -1), axis=1)
    else:
        estimates = np.array([_flat_scores(sample, statistic) for sample in resampled])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(estimates, [tail, 1.0 - tail])
    return float(low), float(high)


def share(mask: Any) -> float:
    """Fraction of seeds for which ``mask`` is True (``mask``: ``[seeds]`` of bools)."""
    array = np.asarray(mask, dtype=bool).reshape(-1)
    if array.size == 0:
        raise ValueError("share of zero seeds is undefined.")
    return float(np.mean(array))


def _json_float(value: Any) -> Optional[float]:
    value = float(value)
    return value if math.isfinite(value) else None


def summarize_seeds(values: Any, confidence: float = 0.95, num_resamples: int = 2000, seed: int = 0) -> dict:
    """Summary of one score per seed, as JSON-safe Python numbers.

    Keys: ``iqm``, ``iqm_ci`` (``[low, high]``, the percentile bootstrap of the IQM), ``mean``,
    ``median``, ``min``, ``max``, ``worst_seed``, ``num_seeds``, and ``num_nonfinite``.

    A seed whose score is NaN or Inf diverged, and a diverged seed is a failed seed: it counts as the
    worst finite score of the set in every statistic (leaving it out would flatter the config that
    produced it), ``num_nonfinite`` says how many there were, and ``worst_seed`` is the first of them
    (else the seed with the lowest score). When no seed is finite every statistic is ``None``.
    """
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError("summarize_seeds needs at least one seed.")
    finite = np.isfinite(array)
    summary: dict[str, Any] = {"num_seeds": int(array.size), "num_nonfinite": int(np.sum(~finite))}
    if not finite.any():
        summary.update(iqm=None, iqm_ci=[None, None], mean=None, median=None, min=None, max=None, worst_seed=0)
        return summary
    scores = np.where(finite, array, np.min(array[finite]))
    low, high = bootstrap_interval(scores, confidence=confidence, num_resamples=num_resamples, seed=seed)
    worst = int(np.flatnonzero(~finite)[0]) if not finite.all() else int(np.argmin(scores))
    summary.update(
        iqm=_json_float(interquartile_mean(scores)),
        iqm_ci=[_json_float(low), _json_float(high)],
        mean=_json_float(np.mean(scores)),
        median=_json_float(np.median(scores)),
        min=_json_float(np.min(scores)),
        max=_json_float(np.max(scores)),
        worst_seed=worst,
    )
    return summary
