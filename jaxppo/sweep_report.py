"""The table and plot of a sweep run: one row per setting, statistics over its seeds.

A sweep run (``runner.train_run(..., grid=...)``, ``jaxppo sweep``) stores one row per lane in
``metrics_per_seed.npz``, lane ``g * num_seeds + s`` being grid point ``g`` with seed ``s``. This
module cuts those rows back into settings and writes, next to the usual run files::

    sweep.json   per setting: the values, final training return over seeds (IQM with a 95% bootstrap
                 interval, mean, median, min, max), the last greedy evaluation likewise, and how
                 many seeds show each pathology (``jaxppo.diagnose``)
    sweep.md     the same as a Markdown table, best IQM first
    sweep.png    final return against each swept value (one panel per field)

A seed's final return is ``jaxppo.diagnosis.core.final_returns``: the mean return over the last updates
that finished an episode, so one noisy update does not decide a setting's rank.
"""

from __future__ import annotations

import importlib
import json
import math
import os
from typing import Any, Mapping, Optional

import numpy as np

from jaxppo import config as config_lib
from jaxppo.api import grid_settings
from jaxppo.run_io import RunInputError, atomic_write_json, atomic_write_text, read_jsonl

__all__ = ["SWEEP_JSON", "SWEEP_MD", "SWEEP_PNG", "sweep_table", "write_sweep_report", "sweep_markdown"]

SWEEP_JSON = "sweep.json"
SWEEP_MD = "sweep.md"
SWEEP_PNG = "sweep.png"


def _lane_rows(per_seed: Mapping[str, np.ndarray], setting: int, num_seeds: int) -> dict[str, np.ndarray]:
    rows = slice(setting * num_seeds, (setting + 1) * num_seeds)
    return {name: values[rows] for name, values in per_seed.items()}


def _diagnose_module() -> Any:
    return importlib.import_module("jaxppo.diagnosis.core")


def final_returns(per_seed: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per seed (row), ``jaxppo.diagnosis.core.final_returns``: the mean ``episode_return`` over the last
    updates that finished an episode, NaN for a seed that never finished one. ``[S]``."""
    return np.asarray(_diagnose_module().final_returns(per_seed), np.float64)


def sweep_table(run_dir: str) -> dict:
    """``{"axes", "values", "num_seeds", "updates", "settings": [row, ...]}`` of a sweep run directory."""
    from jaxppo import stats

    diagnose = _diagnose_module()

    with open(os.path.join(run_dir, "run.json"), "r", encoding="utf-8") as handle:
        run_info = json.load(handle)
    grid = run_info.get("grid")
    if not grid:
        raise RunInputError(f"{run_dir!r} is not a sweep (its run.json has no grid).")
    config = config_lib.load_config(os.path.join(run_dir, "config.yaml"))
    names = tuple(grid)
    num_seeds = int(run_info["num_seeds"])
    with np.load(os.path.join(run_dir, "metrics_per_seed.npz")) as data:
        per_seed = {name: data[name] for name in data.files}
    evals = read_jsonl(os.path.join(run_dir, "eval.jsonl")) if os.path.exists(os.path.join(run_dir, "eval.jsonl")) else []
    last_eval = np.asarray(evals[-1]["eval_return"]["per_seed"], np.float64) if evals else None
    rows = []
    for index, point in enumerate(grid_settings(names, grid)):
        lanes = _lane_rows(per_seed, index, num_seeds)
        finals = final_returns(lanes)
        counts = diagnose.diagnose(lanes, config.replace(**point), metrics_every=config.run.metrics_every).counts
        row: dict[str, Any] = {
            "setting": index,
            "values": point,
            "final_return": stats.summarize_seeds(finals),
            "final_return_per_seed": [None if not math.isfinite(v) else float(v) for v in finals],
            "pathologies": {name: int(count) for name, count in counts.items() if count},  # seeds flagged
        }
        if last_eval is not None:
            row["eval_return"] = stats.summarize_seeds(last_eval[index * num_seeds:(index + 1) * num_seeds])
            row["eval_update"] = int(evals[-1]["update"])
        rows.append(row)
    updates = int(next(iter(per_seed.values())).shape[1]) if per_seed else 0
    return {"axes": list(names) + ["seed"], "values": {n: list(v) for n, v in grid.items()}, "num_seeds": num_seeds,
            "updates": updates, "env": config.env, "algorithm": config.algorithm, "settings": rows}


def _number(value: Optional[float], digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def sweep_markdown(table: Mapping[str, Any]) -> str:
    """A Markdown table of ``sweep_table``'s rows, the best final-return IQM first."""
    names = table["axes"][:-1]
    has_eval = any("eval_return" in row for row in table["settings"])
    header = names + ["final return IQM [95% CI]", "mean", "min", "max"]
    header += ["greedy eval IQM [95% CI]"] if has_eval else []
    header += ["pathologies (seeds)"]
    lines = [f"# Sweep: {table['algorithm'].upper()} on {table['env']}, {table['num_seeds']} seeds per setting, "
             f"{table['updates']} updates", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def rank(row: Mapping[str, Any]) -> float:
        iqm = row["final_return"]["iqm"]
        return -math.inf if iqm is None else iqm

    for row in sorted(table["settings"], key=rank, reverse=True):
        final = row["final_return"]
        cells = [f"{row['values'][n]:g}" for n in names]
        cells.append(f"{_number(final['iqm'])} [{_number(final['iqm_ci'][0])}, {_number(final['iqm_ci'][1])}]")
        cells += [_number(final["mean"]), _number(final["min"]), _number(final["max"])]
        if has_eval:
            ev = row.get("eval_return")
            cells.append("" if ev is None else f"{_number(ev['iqm'])} [{_number(ev['iqm_ci'][0])}, "
                                              f"{_number(ev['iqm_ci'][1])}]")
        found = ", ".join(f"{name} {count}" for name, count in sorted(row["pathologies"].items()))
        if final["num_nonfinite"]:
            # NaN or Inf: the seed diverged or never finished an episode; its IQM rank is the worst seed's.
            found = (found + ", " if found else "") + f"non-finite final return {final['num_nonfinite']}"
        cells.append(found or "none")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Final return: per seed, the mean episode return over the last updates that finished an "
              "episode; IQM = interquartile mean over seeds, CI = 95% percentile bootstrap. Pathologies: "
              "seeds flagged by `jaxppo diagnose`.", ""]
    return "\n".join(lines)


def sweep_png(path: str, table: Mapping[str, Any], dpi: int = 100) -> None:
    """One panel per swept field: each setting's final-return IQM (with its 95% CI) at its value."""
    from jaxppo.plotting import pyplot, save_figure

    plt = pyplot()
    names = table["axes"][:-1]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        others = [n for n in names if n != name]
        groups: dict[tuple, list] = {}
        for row in table["settings"]:
            groups.setdefault(tuple(row["values"][n] for n in others), []).append(row)
        for key, rows in groups.items():
            rows = sorted(rows, key=lambda r: r["values"][name])
            x = np.array([r["values"][name] for r in rows])
            iqm = np.array([np.nan if r["final_return"]["iqm"] is None else r["final_return"]["iqm"] for r in rows])
            low = np.array([np.nan if r["final_return"]["iqm_ci"][0] is None else r["final_return"]["iqm_ci"][0]
                            for r in rows])
            high = np.array([np.nan if r["final_return"]["iqm_ci"][1] is None else r["final_return"]["iqm_ci"][1]
                             for r in rows])
            label = ", ".join(f"{n}={v:g}" for n, v in zip(others, key)) or None
            ax.errorbar(x, iqm, yerr=[iqm - low, high - iqm], marker="o", capsize=3, label=label)
        values = np.asarray(table["values"][name], np.float64)
        if values.min() > 0 and values.max() / values.min() >= 10:
            ax.set_xscale("log")
        ax.set_xticks(values, [f"{v:g}" for v in values])  # ticks at the swept values, nothing between
        ax.minorticks_off()
        ax.set_xlabel(name)
        ax.set_ylabel("final return (IQM, 95% CI)")
        ax.grid(alpha=0.3)
        if others and len(groups) <= 8:
            ax.legend(fontsize=7)
    fig.suptitle(f"{table['algorithm'].upper()} on {table['env']}: {table['num_seeds']} seeds per setting")
    fig.tight_layout()
    save_figure(fig, path, dpi)


def write_sweep_report(run_dir: str, dpi: int = 100) -> dict:
    """Writes sweep.json, sweep.md and sweep.png into ``run_dir``; returns the table."""
    table = sweep_table(run_dir)
    atomic_write_json(os.path.join(run_dir, SWEEP_JSON), table)
    atomic_write_text(os.path.join(run_dir, SWEEP_MD), sweep_markdown(table))
    sweep_png(os.path.join(run_dir, SWEEP_PNG), table, dpi)
    return table
