"""A run's summary and plots: ``summary.json`` (final returns over seeds, diagnosis, throughput) and the
learning-curve and diagnostics figures, made from the run's records and files.

Kept apart from the training loop because both are also made for a finished run on their own
(``jaxppo plot``, ``jaxppo diagnose``) and need no compiled training code. The summary diagnoses the
run once and records where each pathology began; the diagnostics plot reads that back.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Optional

import numpy as np

from jaxppo.run_dir import CURVE_FILE, DIAGNOSTICS_FILE, EVAL_FILE, SUMMARY_FILE, read_per_seed_metrics, read_run
from jaxppo.run_io import RunInputError, atomic_write_json, read_jsonl
from jaxppo.run_records import Records, column_updates, short

__all__ = [
    "FINAL_RETURN_DEFINITION",
    "diagnose_run",
    "final_evaluation",
    "final_run_evaluation",
    "write_summary",
    "render_plots",
    "sweep_groups",
    "lane_labels",
]


def _return_stats(values: np.ndarray, solved_return: Optional[float] = None) -> dict:
    """Mean, median, min, max and the IQM with its 95% bootstrap interval over seeds (``jaxppo.stats``),
    plus how many seeds reached ``solved_return`` when the env has a known threshold."""
    from jaxppo import stats

    values = np.asarray(values, np.float64)
    seeds = stats.summarize_seeds(values)  # a seed without a finite score counts as the worst one
    out = {name: (None if seeds[name] is None else short(seeds[name])) for name in ("mean", "median", "min", "max")}
    out.update(iqm=seeds["iqm"], iqm_ci=seeds["iqm_ci"], num_nonfinite=seeds["num_nonfinite"],
               per_seed=[short(v) if math.isfinite(v) else None for v in values])
    if solved_return is not None:
        out["solved_threshold"] = solved_return
        out["num_solved"] = int(np.sum(np.nan_to_num(values, nan=-np.inf) >= solved_return))
    return out


FINAL_RETURN_DEFINITION = "per seed, the mean episode return over the last 10% of updates that finished an episode"


def _diagnosis_summary(diagnosis: Any, steps_per_update: int, count: int = 3) -> dict:
    """The run summary's view of ``jaxppo.diagnose``: healthy seeds, seeds per pathology, worst seeds,
    and where each pathology began (the diagnostics plot reads that, so a run is diagnosed once)."""
    worst = []
    for index in diagnosis.worst_seeds(count):
        seed = diagnosis.seeds[index]
        worst.append({"seed": index, "final_return": seed.final_return,
                      "pathologies": [f.name for f in seed.failures],
                      "primary": seed.primary.name if seed.primary else None,
                      "suggestion": list(seed.suggestion)})
    return {"num_healthy": diagnosis.num_healthy, "num_seeds": diagnosis.num_seeds,
            "counts": {name: n for name, n in diagnosis.counts.items() if n},
            "warning_counts": {name: n for name, n in diagnosis.warning_counts.items() if n}, "worst_seeds": worst,
            "starts": _pathology_starts(diagnosis, steps_per_update)}


def final_evaluation(eval_records: list[dict], num_updates: int) -> Optional[dict[str, list]]:
    """Per-seed means of the evaluation at the run's last update (``{"eval_return": [S], ...}``), or None
    when the run did not evaluate there; what ``diagnose(..., evaluation=...)`` judges ``memory_unused`` by."""
    if not eval_records or eval_records[-1].get("update") != num_updates:
        return None
    return {name: value["per_seed"] for name, value in eval_records[-1].items()
            if isinstance(value, dict) and "per_seed" in value}


def final_run_evaluation(run_dir: str, num_updates: int) -> Optional[dict[str, list]]:
    """``final_evaluation`` of a run directory's ``eval.jsonl`` (None without the file)."""
    path = os.path.join(run_dir, EVAL_FILE)
    return final_evaluation(read_jsonl(path), num_updates) if os.path.exists(path) else None


def diagnose_run(run_dir: str, thresholds: Any = None, evaluation: Optional[Mapping[str, Any]] = None
                 ) -> tuple[Any, dict, Any]:
    """``(config, run_info, Diagnosis)`` of a run directory from its ``metrics_per_seed.npz``.

    Works on any run directory that has ``config.yaml``, ``run.json`` and the metrics file, including
    those written before diagnosis existed. ``evaluation`` (per-seed final evaluation) defaults to
    ``eval.jsonl``'s record of the last update, if there is one.
    """
    from jaxppo.diagnosis.core import diagnose

    config, run_info = read_run(run_dir)
    try:
        metrics = read_per_seed_metrics(run_dir)
        if evaluation is None:
            evaluation = final_run_evaluation(run_dir, config.num_updates)
        return config, run_info, diagnose(metrics, config, thresholds, metrics_every=config.run.metrics_every,
                                          evaluation=evaluation)
    except (OSError, ValueError) as error:  # a torn or foreign metrics file is the user's input
        raise RunInputError(f"cannot diagnose {run_dir!r}: {error}") from None


def _nonfinite_summary(records: Records) -> dict:
    """Bad data seen by the end of the run, per seed and in all: ``samples`` left out of the running
    statistics, gradient ``updates`` skipped (both metrics are cumulative, so the last update's value)."""
    out = {}
    for name in ("samples", "updates"):
        values = records.per_seed.get(f"nonfinite_{name}")
        if values is not None and records.update > 0:
            per_seed = [int(v) for v in values[:, records.columns - 1]]
            out[name] = {"total": sum(per_seed), "per_seed": per_seed}
    return out


def write_summary(run_dir: str, config: Any, seed: int, num_seeds: int, records: Records,
                  write: bool = True) -> dict:
    """The run's summary from its ``records``: returns over seeds, evaluation, diagnosis, throughput.

    Written atomically to ``summary.json`` unless ``write`` is off (processes other than the main one
    only return it).
    """
    from jaxppo.diagnosis.core import diagnose, env_facts, final_returns

    update = records.update
    steps_per_seed = update * config.steps_per_update
    solved_return = env_facts(config).solved_return
    summary: dict[str, Any] = {
        "algorithm": config.algorithm,
        "env": config.env,
        "seed": seed,
        "num_seeds": num_seeds,
        "updates": update,
        "metric_columns": records.columns,
        "complete": update >= config.num_updates,
        "env_steps_per_seed": steps_per_seed,
        "env_steps_total": steps_per_seed * num_seeds,
        "wall_time_s": round(records.elapsed_s, 3),
        "steps_per_second": round(steps_per_seed * num_seeds / max(records.elapsed_s, 1e-9), 1),
        # One definition everywhere (train's summary, diagnose, the lab, sweeps): per seed, the mean
        # episode return over the last 10% of updates that finished an episode (blocks of updates with
        # run.metrics_every > 1), jaxppo.diagnosis.core.final_returns.
        "final_return": dict(_return_stats(final_returns(records.valid_per_seed()), solved_return),
                             definition=FINAL_RETURN_DEFINITION),
        "final_eval_return": None,
        "diagnosis": _diagnosis_summary(diagnose(records.valid_per_seed(), config, metrics_every=records.every,
                                                 evaluation=final_evaluation(records.eval_records, config.num_updates)),
                                        config.steps_per_update),
        "run_dir": os.path.abspath(run_dir),
    }
    summary["nonfinite"] = _nonfinite_summary(records)
    if records.eval_records:
        last = records.eval_records[-1]
        summary["final_eval_return"] = dict(_return_stats(np.asarray(last["eval_return"]["per_seed"]), solved_return),
                                            update=last["update"])
        # An env's own held-out scores (IntrusionDetection-v0's eval_f1 ...) belong in the summary too.
        held_out = {name: dict(_return_stats(np.asarray(value["per_seed"])), update=last["update"])
                    for name, value in last.items()
                    if isinstance(value, dict) and name not in ("eval_return", "eval_length") and "per_seed" in value}
        if held_out:
            summary["final_eval_scores"] = held_out
    if write:
        atomic_write_json(os.path.join(run_dir, SUMMARY_FILE), summary)
    return summary


# Plots ---------------------------------------------------------------------------------------------

def render_plots(run_dir: str, dpi: int = 100, smooth: Optional[int] = None) -> list[str]:
    """(Re)draws learning_curve.png and diagnostics.png from the run's metric files; returns their paths.

    ``smooth``: the learning curve's moving-average window in updates (None: 1% of the run; 1: raw)."""
    from jaxppo import plotting

    config, run_info = read_run(run_dir)
    metrics = read_per_seed_metrics(run_dir, scalars_only=True)
    raw = metrics
    metrics = plotting.plotted_series(metrics)  # placeholders (no episode yet, no learning yet) as gaps
    every = config.run.metrics_every
    env_steps = column_updates(metrics["episode_return"].shape[1], every, config.num_updates) * config.steps_per_update
    evals = read_jsonl(os.path.join(run_dir, EVAL_FILE))
    eval_steps = np.array([r["env_steps"] for r in evals]) if evals else None
    eval_return = np.array([r["eval_return"]["per_seed"] for r in evals]).T if evals else None
    title = f"{config.algorithm.upper()} on {config.env}"
    curve = os.path.join(run_dir, CURVE_FILE)
    panels = os.path.join(run_dir, DIAGNOSTICS_FILE)
    plotting.learning_curve_png(curve, env_steps, metrics["episode_return"], title, eval_steps, eval_return, dpi,
                                smooth=smooth, groups=sweep_groups(run_info))
    starts = _recorded_pathology_starts(run_dir, raw, config, raw["episode_return"].shape[1])
    plotting.diagnostics_png(panels, env_steps, metrics, title, dpi=dpi, pathology_starts=starts)
    return [curve, panels]


def sweep_groups(run_info: Mapping[str, Any]) -> Optional[list[tuple[str, list[int]]]]:
    """For a sweep run, ``(setting label, its lanes)`` per grid point (lane ``g * seeds + s``); else None."""
    grid = run_info.get("grid") or {}
    if not grid:
        return None
    from jaxppo.api import grid_settings

    num_seeds = int(run_info["num_seeds"])
    return [(", ".join(f"{name}={value:g}" for name, value in point.items()),
             list(range(g * num_seeds, (g + 1) * num_seeds)))
            for g, point in enumerate(grid_settings(list(grid), grid))]


def lane_labels(run_info: Mapping[str, Any]) -> Optional[list[str]]:
    """For a sweep run, each lane's setting and seed (``"learning_rate=0.001, seed 1"``), so outputs that
    list lanes say which setting each is; None for a plain run, whose lanes are seeds."""
    groups = sweep_groups(run_info)
    if not groups:
        return None
    labels = [""] * sum(len(lanes) for _, lanes in groups)
    for label, lanes in groups:
        for seed, lane in enumerate(lanes):
            labels[lane] = f"{label}, seed {seed}"
    return labels


def _pathology_starts(diagnosis: Any, steps_per_update: int) -> dict[str, list]:
    """``{pathology: [median env step at which it began, seeds]}``, for the diagnostics panels."""
    starts: dict[str, list[int]] = {}
    for seed in diagnosis.seeds:
        for finding in seed.failures:
            starts.setdefault(finding.name, []).append(finding.start_update)
    return {name: [float(np.median(updates)) * steps_per_update, len(updates)] for name, updates in starts.items()}


def _recorded_pathology_starts(run_dir: str, metrics: Mapping[str, np.ndarray], config: Any, columns: int
                               ) -> dict[str, tuple[float, int]]:
    """The pathology starts the run's summary recorded for these ``columns`` of metrics; a run whose
    summary is older (or predates the field) is diagnosed here instead."""
    try:
        with open(os.path.join(run_dir, SUMMARY_FILE)) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        summary = {}
    recorded = (summary.get("diagnosis") or {}).get("starts")
    if recorded is None or summary.get("metric_columns") != columns:
        from jaxppo.diagnosis.core import diagnose

        recorded = _pathology_starts(diagnose(metrics, config, metrics_every=config.run.metrics_every),
                                     config.steps_per_update)
    return {name: (float(step), int(seeds)) for name, (step, seeds) in recorded.items()}
