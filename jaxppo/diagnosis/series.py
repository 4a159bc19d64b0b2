"""Pure numpy helpers over metric series: the building blocks the detectors and ``diagnose`` share.

A series is one seed's metric, ``[U]`` with one value per column (update). Nothing here knows about
detectors, environments or configs beyond reading a field: every function takes arrays and numbers and
returns arrays and numbers, so each can be tested on hand-built input.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import numpy as np

__all__ = [
    "early_value",
    "final_value",
    "finite_number",
    "first_run",
    "first_run_after_startup",
    "holds_to_end_from",
    "json_float",
    "json_safe",
    "learning_mask",
    "median",
    "moving_mean",
    "per_seed_arrays",
    "return_valid_mask",
]


def finite_number(x: Any) -> bool:
    """Whether ``x`` converts to a finite float (config fields may hold None or strings)."""
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def first_run(mask: np.ndarray, length: int) -> Optional[int]:
    """Index where ``mask`` first holds for ``length`` consecutive entries, or None."""
    if length <= 0 or mask.size < length:
        return None
    count = 0
    for i, value in enumerate(mask):
        count = count + 1 if value else 0
        if count >= length:
            return i - length + 1
    return None


def first_run_after_startup(mask: np.ndarray, length: int, startup: int) -> Optional[int]:
    """Like ``first_run``, but a run that ends inside the first ``startup`` entries (the start-up window,
    ``Thresholds.startup_fraction``) is a transient and is skipped; a run that starts there and lasts
    beyond it is reported from its start."""
    later = mask.copy()
    later[:startup] = False
    start = first_run(later, length)
    if start is None:
        return None
    while start > 0 and mask[start - 1]:
        start -= 1
    return start


def holds_to_end_from(mask: np.ndarray) -> Optional[int]:
    """Start of the final stretch where ``mask`` holds up to the last entry, or None if the last is False."""
    if mask.size == 0 or not mask[-1]:
        return None
    false = np.flatnonzero(~mask)
    return int(false[-1] + 1) if false.size else 0


def moving_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving mean ignoring NaN; NaN only where the whole window is NaN."""
    if window <= 1 or x.size == 0:
        return x.copy()
    valid = np.isfinite(x)
    filled = np.where(valid, x, 0.0)
    kernel = np.ones(window)
    sums = np.convolve(filled, kernel, mode="same")
    counts = np.convolve(valid.astype(np.float64), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def median(x: np.ndarray) -> float:
    """Median of the finite values (NaN when there are none)."""
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def early_value(x: np.ndarray, mask: Optional[np.ndarray] = None, fraction: float = 0.05) -> float:
    """Median of the first ``fraction`` of the (masked) finite values: the run's early level."""
    if mask is not None:
        x = x[mask]
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan
    return float(np.median(x[: max(1, int(math.ceil(fraction * x.size)))]))


def final_value(x: np.ndarray, fraction: float, mask: Optional[np.ndarray] = None) -> float:
    """Median of the last ``fraction`` of the (masked) finite values: the run's final level."""
    if mask is not None:
        x = x[mask]
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan
    return float(np.median(x[-max(1, int(math.ceil(fraction * x.size))):]))


# Metrics into per-seed arrays ----------------------------------------------------------------------

def per_seed_arrays(metrics: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int, int]:
    """``{name: [S, U] float64}`` of the scalar-per-update metrics, with S and U."""
    arrays = {name: np.asarray(value) for name, value in metrics.items()}
    reference = arrays.get("episode_return")
    if reference is None:
        scalar = [a for a in arrays.values() if a.ndim in (1, 2)]
        if not scalar:
            raise ValueError("metrics hold no [seeds, updates] or [updates] arrays to diagnose.")
        reference = scalar[0]
    if reference.ndim not in (1, 2):
        raise ValueError(f"metrics must be [seeds, updates] or [updates]; episode_return has shape {reference.shape}.")
    single = reference.ndim == 1
    per_seed: dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        if single:
            array = array[None]
        if array.ndim != 2 or array.shape != (1 if single else reference.shape[0], reference.shape[-1]):
            continue  # per-action histograms and other vector metrics are not read
        per_seed[name] = array.astype(np.float64)
    num_seeds, num_updates = (1, reference.shape[0]) if single else reference.shape
    return per_seed, int(num_seeds), int(num_updates)


def learning_mask(per_seed: Mapping[str, np.ndarray], config: Any, seed: int, num_updates: int,
                  metrics_every: int = 1) -> np.ndarray:
    """Bool ``[U]``: the columns that learned (the ``learning`` metric, else DQN's ``learning_starts``)."""
    learning = per_seed.get("learning")
    if learning is not None:
        return learning[seed] > 0
    starts = getattr(config, "learning_starts", None)
    steps = getattr(config, "steps_per_update", None)
    if starts is not None and steps:
        return np.arange(1, num_updates + 1) * metrics_every * steps >= starts
    return np.ones(num_updates, dtype=bool)


def return_valid_mask(per_seed: Mapping[str, np.ndarray], seed: int, num_updates: int) -> np.ndarray:
    """Bool ``[U]``: the columns with a finite return once the seed's first episode has finished."""
    completed = per_seed.get("episodes_completed")
    returns = per_seed.get("episode_return")
    if returns is None:
        return np.zeros(num_updates, dtype=bool)
    finite = np.isfinite(returns[seed])
    if completed is None:
        return finite
    return (np.cumsum(np.nan_to_num(completed[seed])) > 0) & finite


# JSON ---------------------------------------------------------------------------------------------

def json_float(value: Any) -> Optional[float]:
    """``value`` as a float, None when it is None, NaN or infinite (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars and containers turned into JSON types, non-finite floats into None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return json_float(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)
