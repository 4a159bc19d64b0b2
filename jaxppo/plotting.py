"""PNG figures of a run: the learning curve over seeds and a panel of losses and diagnostics.

Both figures show the median over seeds with the interquartile band (25th-75th percentile): with a
handful of seeds the mean and standard deviation are dominated by one collapsed or lucky seed, while the
median and IQR describe the typical run and its spread.
"""

from __future__ import annotations

import io
import warnings
from typing import Mapping, Optional, Sequence

import numpy as np

from jaxppo.run_io import atomic_write_bytes

__all__ = ["DIAGNOSTIC_KEYS", "learning_curve_png", "diagnostics_png", "pyplot", "save_figure", "moving_average",
           "auto_smoothing"]

# Shown in this order when present in the metrics (PPO has policy_loss, DQN td_loss, ...).
DIAGNOSTIC_KEYS: tuple[str, ...] = (
    "value_loss",
    "policy_loss",
    "td_loss",
    "q_mean",
    "entropy",
    "approx_kl",
    "clip_fraction",
    "explained_variance",
    "grad_norm",
    "grad_clip_ratio",
    "epsilon",
    "nonfinite_samples",
    "nonfinite_updates",
)


def pyplot():
    """matplotlib's pyplot on the Agg backend, imported on first use (importing jaxppo loads no matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")  # never needs a display
    import matplotlib.pyplot as plt

    return plt


def _band(ax, x: np.ndarray, per_seed: np.ndarray, color: str, label: str) -> None:
    """Median line and IQR band of ``per_seed`` ``[S, T]`` against ``x`` ``[T]``."""
    values = np.asarray(per_seed, np.float64)
    with warnings.catch_warnings():  # an update where every seed is NaN is drawn as a gap
        warnings.simplefilter("ignore", RuntimeWarning)
        q25, median, q75 = np.nanpercentile(values, [25, 50, 75], axis=0)
    ax.plot(x, median, color=color, lw=1.5, label=label)
    ax.fill_between(x, q25, q75, color=color, alpha=0.25, lw=0)


_EPISODE_METRICS = ("episode_return", "episode_length")


def plotted_series(metrics: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-seed series ``[S, T]`` as the plots draw them: placeholders become gaps (NaN).

    * before a seed finishes its first episode, ``episode_return`` / ``episode_length`` hold 0 (nothing
      to report yet), which would draw a Pendulum curve starting at 0;
    * before DQN's ``learning_starts`` (``learning`` is 0) no gradient step ran, so the losses, gradient
      norms, clip ratio and Q statistics are placeholders (a clip ratio of 0 would read "fully clipped").
    """
    out = {name: np.asarray(values, np.float64).copy() for name, values in metrics.items()}
    completed = out.get("episodes_completed")
    if completed is not None:
        started = np.cumsum(np.nan_to_num(completed), axis=-1) > 0
        for name in _EPISODE_METRICS:
            if name in out:
                out[name] = np.where(started, out[name], np.nan)
    learning = out.get("learning")
    if learning is not None:
        keep = set(_EPISODE_METRICS) | {"learning", "episodes_completed", "epsilon", "nonfinite_updates",
                                        "nonfinite_samples"}
        for name in out:
            if name not in keep:
                out[name] = np.where(learning > 0, out[name], np.nan)
    return out


def save_figure(fig, path: str, dpi: int = 100) -> None:
    """``fig`` written to ``path`` as a PNG in one atomic write, then closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` updates along the last axis, ignoring NaNs; the first
    ``window - 1`` points average what there is so far (no shift, no lost points)."""
    values = np.asarray(values, np.float64)
    if window <= 1:
        return values
    finite = np.isfinite(values)
    sums = np.cumsum(np.where(finite, values, 0.0), axis=-1)
    counts = np.cumsum(finite, axis=-1, dtype=np.float64)
    sums[..., window:] = sums[..., window:] - sums[..., :-window]
    counts[..., window:] = counts[..., window:] - counts[..., :-window]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1.0), np.nan)


def auto_smoothing(num_updates: int) -> int:
    """The default window: 1% of the run (a 50,000-update DQN run averages 500 updates, the 976-update
    CartPole PPO run 9), and none for runs under 200 updates."""
    return max(1, num_updates // 100) if num_updates >= 200 else 1


def learning_curve_png(path: str, env_steps: np.ndarray, episode_return: np.ndarray, title: str,
                       eval_steps: Optional[np.ndarray] = None, eval_return: Optional[np.ndarray] = None,
                       dpi: int = 100, smooth: Optional[int] = None,
                       groups: Optional[Sequence[tuple[str, Sequence[int]]]] = None) -> int:
    """Training return (median and IQR over seeds) against env steps per seed, with evaluations if any.

    ``episode_return`` is ``[S, T]``; ``eval_return`` is ``[S, K]`` at ``eval_steps`` ``[K]``. Each
    seed's curve is first averaged over a trailing window of ``smooth`` updates (``None``:
    ``auto_smoothing``; 1: raw), stated on the y axis; DQN's per-update returns are spiky. Evaluations are
    never smoothed. Returns the window used.

    ``groups`` (a sweep's settings): ``(label, rows)`` pairs, one band per setting over its own seeds,
    never one band pooled over different settings; the evaluations are then left out.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    num_seeds = episode_return.shape[0]
    window = auto_smoothing(episode_return.shape[-1]) if smooth is None else max(1, int(smooth))
    smoothed = moving_average(episode_return, window)
    if groups:
        colors = plt.get_cmap("tab10")
        for index, (label, rows) in enumerate(groups):
            _band(ax, env_steps, smoothed[list(rows)], colors(index % 10),
                  f"{label} (median, IQR over {len(rows)} seeds)")
        eval_steps = None
    else:
        _band(ax, env_steps, smoothed, "tab:blue", f"training return (median, IQR over {num_seeds} seeds)")
    if eval_steps is not None and eval_return is not None and len(eval_steps):
        q25, median, q75 = np.percentile(np.asarray(eval_return, np.float64), [25, 50, 75], axis=0)
        ax.errorbar(eval_steps, median, yerr=[median - q25, q75 - median], fmt="o-", color="tab:orange",
                    ms=3.5, lw=1.0, capsize=2, label="greedy evaluation (median, IQR)")
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel("episode return" if window == 1 else
                  f"episode return\n(moving average over {window} updates = "
                  f"{_steps_text(window * _step_size(env_steps))} steps)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi)
    return window


def _step_size(env_steps: np.ndarray) -> int:
    return int(env_steps[1] - env_steps[0]) if len(env_steps) > 1 else int(env_steps[0]) if len(env_steps) else 0


def _steps_text(steps: int) -> str:
    return f"{steps / 1e6:g}M" if steps >= 1_000_000 else f"{steps / 1e3:g}k" if steps >= 10_000 else f"{steps:,}"


def diagnostics_png(path: str, env_steps: np.ndarray, metrics: Mapping[str, np.ndarray], title: str,
                    keys: Sequence[str] = DIAGNOSTIC_KEYS, dpi: int = 100,
                    pathology_starts: Optional[Mapping[str, tuple[float, int]]] = None) -> list[str]:
    """A grid of panels, one per diagnostic present in ``metrics`` (``[S, T]`` each); returns the keys drawn.

    ``pathology_starts`` maps a pathology (``jaxppo.diagnose``) to ``(env step, seeds)``: the median
    env step at which it began over the seeds that show it. Each is a dashed vertical line on every
    panel, so the curves can be read against the moment things went wrong.
    """
    present = [k for k in keys if k in metrics]
    if not present:
        present = [k for k in sorted(metrics) if k not in ("episode_return", "episode_length")][:9]
    plt = pyplot()
    columns = 3 if len(present) > 4 else max(len(present), 1)
    rows = max(1, -(-len(present) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.0 * columns, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.ravel(), present):
        _band(ax, env_steps, metrics[key], "tab:green", key)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("environment steps per seed", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in axes.ravel()[len(present):]:
        ax.axis("off")
    handles = []
    colors = plt.get_cmap("tab10")
    for index, (name, (step, seeds)) in enumerate(sorted((pathology_starts or {}).items(), key=lambda kv: kv[1][0])):
        for ax in axes.ravel()[: len(present)]:
            line = ax.axvline(step, color=colors(index % 10), ls="--", lw=1.0)
        handles.append((line, f"{name} begins (median of {seeds} seed{'s' if seeds != 1 else ''})"))
    fig.suptitle(title + " (median and IQR over seeds)", fontsize=11)
    fig.tight_layout()
    if handles:
        fig.subplots_adjust(bottom=min(0.4, (0.35 + 0.25 * -(-len(handles) // 2)) / (2.8 * rows)))  # inches -> figure
        fig.legend([h for h, _ in handles], [label for _, label in handles], loc="lower center", fontsize=8,
                   ncol=min(2, len(handles)), frameon=False)
    save_figure(fig, path, dpi)
    return present
