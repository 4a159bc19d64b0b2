"""A run's host-side records: per-seed metric history, its aggregation over seeds and the JSON lines.

Between chunks the runner brings each chunk's metrics to the host and keeps them here: the per-seed
history (``metrics_per_seed.npz``, one column per ``run.metrics_every`` updates), the lines of
``metrics.jsonl`` (every update, aggregated over seeds) and the evaluation records (``eval.jsonl``).
Pure numpy, so the summary, the plots and the tests can build and read records without JAX.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping, Optional

import numpy as np

__all__ = [
    "STATS",
    "aggregate_over_seeds",
    "short",
    "metric_lines",
    "eval_record",
    "Records",
    "columns_for",
    "column_updates",
    "metric_blocks",
    "empty_records",
]

# Aggregation -----------------------------------------------------------------------------------

STATS = ("mean", "median", "q25", "q75", "min", "max")


def aggregate_over_seeds(values: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, median, quartiles, min and max over the leading seed axis of ``values`` ``[S, ...]``."""
    values = np.asarray(values, np.float64)
    q25, median, q75 = np.percentile(values, [25, 50, 75], axis=0)
    return {"mean": values.mean(axis=0), "median": median, "q25": q25, "q75": q75,
            "min": values.min(axis=0), "max": values.max(axis=0)}


def short(x: Any) -> Any:
    """``x`` as a float with 7 significant digits (non-finite values as they are), or nested lists of
    them for an array."""
    # 7 significant digits keeps metrics.jsonl readable; exact values are in the .npz. Metrics with
    # extra axes (a histogram over actions, say) become nested lists.
    array = np.asarray(x)
    if array.ndim:
        return [short(v) for v in array]
    x = float(array)
    return x if not math.isfinite(x) else float(f"{x:.7g}")


def metric_lines(per_seed: Mapping[str, np.ndarray], start: int, stop: int, steps_per_update: int,
                 first_update: Optional[int] = None) -> list[str]:
    """JSON lines for columns ``start:stop`` of ``per_seed``, aggregated over seeds; column ``start`` is
    update ``first_update`` (default ``start + 1``: the columns are updates).

    Metrics sit under ``"metrics"`` so an algorithm's metric can never collide with ``update`` or
    ``env_steps`` (DQN reports its own ``env_steps``).
    """
    stats = {name: aggregate_over_seeds(values[:, start:stop]) for name, values in per_seed.items()}
    first = start + 1 if first_update is None else first_update
    lines = []
    for offset in range(stop - start):
        update = first + offset
        metrics = {name: {s: short(stats[name][s][offset]) for s in STATS} for name in per_seed}
        record = {"update": update, "env_steps": update * steps_per_update, "metrics": metrics}
        lines.append(json.dumps(record) + "\n")
    return lines


def eval_record(update: int, steps_per_update: int, result: Mapping[str, np.ndarray]) -> dict:
    """One ``eval.jsonl`` record: each evaluation result's statistics over seeds and its per-seed values."""
    record: dict[str, Any] = {"update": update, "env_steps": update * steps_per_update}
    # eval_return / eval_length are [S, episodes]; an env's held-out scores (eval_f1 ...) are [S].
    for name, values in result.items():
        values = np.asarray(values, np.float64)
        per_seed = values.mean(axis=1) if values.ndim == 2 else values
        stats = aggregate_over_seeds(per_seed)
        record[name] = {s: short(stats[s]) for s in STATS}
        record[name]["per_seed"] = [short(v) for v in per_seed]
    return record


# Host-side records ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Records:
    """What the host keeps of a run so far: per-seed metric columns, ``metrics.jsonl`` lines, evaluation
    records and training time; checkpoints save it and resume restores it."""

    per_seed: dict[str, np.ndarray]  # [S, columns]: column c holds updates c*every+1 .. (c+1)*every
    update: int
    eval_records: list[dict]
    elapsed_s: float
    lines: list[str]  # encoded metrics.jsonl lines for updates 1..update
    every: int = 1  # run.metrics_every

    @property
    def columns(self) -> int:
        """Columns filled so far (the last may cover fewer than ``every`` updates at the end of a run)."""
        return columns_for(self.update, self.every)

    def valid_per_seed(self) -> dict[str, np.ndarray]:
        return {name: values[:, : self.columns] for name, values in self.per_seed.items()}

    def store(self, start: int, chunk: Mapping[str, np.ndarray]) -> None:
        """Writes a chunk's per-update metrics ``[S, n]`` (updates ``start+1 .. start+n``) into the columns."""
        first = start // self.every
        for name, values in chunk.items():
            blocks = metric_blocks(values, self.every)
            self.per_seed[name][:, first: first + blocks.shape[1]] = blocks


def columns_for(num_updates: int, every: int) -> int:
    """Columns of per-seed history that ``num_updates`` updates fill, one per ``every`` updates."""
    return -(-num_updates // max(1, every))


def column_updates(num_columns: int, every: int, num_updates: Optional[int] = None) -> np.ndarray:
    """The update each column stands for (the last of its block), ``[num_columns]``, 1-based."""
    updates = (np.arange(num_columns) + 1) * max(1, every)
    return updates if num_updates is None else np.minimum(updates, num_updates)


def metric_blocks(values: np.ndarray, every: int) -> np.ndarray:
    """``[S, n, ...]`` per-update metrics -> ``[S, ceil(n / every), ...]``, one column per block of
    ``every`` updates: the mean over the block's non-NaN values (NaN where there are none, e.g. no
    episode ended; an Inf makes the mean Inf), and for integer and boolean metrics (counters such as
    ``nonfinite_updates``, which are cumulative) the block's last value. ``every`` 1 returns ``values``
    unchanged."""
    values = np.asarray(values)
    if every <= 1:
        return values
    num_seeds, n = values.shape[:2]
    columns = columns_for(n, every)
    if not np.issubdtype(values.dtype, np.floating):
        return values[:, column_updates(columns, every, n) - 1]
    padded = np.full((num_seeds, columns * every) + values.shape[2:], np.nan, values.dtype)
    padded[:, :n] = values
    blocks = padded.reshape((num_seeds, columns, every) + values.shape[2:])
    present = ~np.isnan(blocks)  # an Inf stays visible in its block's mean
    count = present.sum(axis=2)
    total = np.where(present, blocks, 0).sum(axis=2, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(values.dtype)


def empty_records(specs: Mapping[str, tuple], num_seeds: int, num_updates: int, every: int = 1) -> Records:
    """Records of a run that has not trained yet, with zeroed per-seed history for ``specs``
    (``{name: (per-update shape, dtype)}``) over ``num_updates`` updates."""
    columns = columns_for(num_updates, every)
    per_seed = {name: np.zeros((num_seeds, columns) + shape, dtype) for name, (shape, dtype) in specs.items()}
    return Records(per_seed, 0, [], 0.0, [], every)
