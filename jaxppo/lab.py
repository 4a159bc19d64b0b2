"""The stability lab: named variants x environments x reward scales, each trained over many seeds.

A grid file (``configs/lab/*.yaml``, format in ``docs/lab.md``) names a base config, the environments,
the reward scales and the variants (each a set of overrides). Every (variant, env, reward scale) is a
*cell*; a cell trains all its seeds in one compiled, seed-vmapped program
(``jaxppo.programs.train_stacked``, the builder every training program uses), and the reward scales of one variant and environment, which
differ only in the ``env_reward_scale`` leaf, share one program through ``stack_configs``.

Per cell the lab records what answers "which configuration fails how often, how, and what does its fix
cost": the share of seeds with each pathology and the share healthy (``jaxppo.diagnose``), the final
return's interquartile mean with a 95% stratified-bootstrap interval over seeds, its median and worst
seed (``jaxppo.stats``), and the env steps per second and compile time measured in the same run.

Output folder::

    results.json                  the grid and every finished cell; rewritten atomically after each program
    results.md                    the same as Markdown tables
    cells/<cell>.npz              every metric per seed, [seeds, updates]: the tables are recomputable from it
    stability_vs_throughput.png   x: env steps/s, y: share of healthy seeds, one point per variant
    learning_curves.png           final-return bands (median, interquartile range) per variant
    pathologies.png               share of seeds with each pathology, per variant

A killed lab, run again with the same grid and folder, skips the cells already in ``results.json``
and restarts at the cell it was on.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
import re
import warnings
from typing import Any, Mapping, Optional, Sequence

import jax
import numpy as np
import yaml

from jaxppo import config as config_lib
from jaxppo import machine as machine_lib
from jaxppo import plotting, programs
from jaxppo.run_io import RunInputError, atomic_write_json, atomic_write_npz, atomic_write_text

__all__ = [
    "Cell",
    "Grid",
    "GRID_KEYS",
    "load_grid",
    "run",
    "final_returns",
    "program_groups",
    "rewrite_outputs",
    "summarize_cell",
    "markdown_report",
    "write_plots",
    "grids_dir",
]

GRID_KEYS = ("description", "base", "envs", "reward_scales", "seeds", "seed", "overrides", "variants",
             "share_programs")
RESULTS_FILE = "results.json"
MARKDOWN_FILE = "results.md"
CELLS_DIR = "cells"
THROUGHPUT_PNG = "stability_vs_throughput.png"
CURVES_PNG = "learning_curves.png"
PATHOLOGIES_PNG = "pathologies.png"
CURVE_POINTS = 100
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.+-]+$")
_FORBIDDEN_OVERRIDES = {"env": "envs", "env_reward_scale": "reward_scales", "algorithm": "base"}


# The grid --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Cell:
    """One (variant, environment, reward scale) of a grid, with its fully resolved config."""

    variant: str
    env: str
    reward_scale: float
    config: Any

    @property
    def cell_id(self) -> str:
        return f"{self.variant}/{self.env}/x{self.reward_scale:g}"

    @property
    def file_stem(self) -> str:
        return f"{self.variant}__{self.env}__x{self.reward_scale:g}"


@dataclasses.dataclass(frozen=True)
class Grid:
    """A validated grid: every cell's config is built (and so checked) before anything is compiled."""

    name: str
    path: str
    description: str
    base: str
    envs: tuple[str, ...]
    reward_scales: Optional[tuple[float, ...]]  # None: the base config's own env_reward_scale
    num_seeds: int
    seed: int
    overrides: Mapping[str, Any]
    variants: tuple[tuple[str, Mapping[str, Any]], ...]
    share_programs: bool
    cells: tuple[Cell, ...]
    sets: tuple[str, ...] = ()  # ``jaxppo lab --set key=value``: applied to every cell, after its variant

    def to_dict(self) -> dict[str, Any]:
        extra = {"sets": list(self.sets)} if self.sets else {}
        return {**extra, 
            "name": self.name,
            "path": self.path,
            "description": self.description,
            "base": self.base,
            "envs": list(self.envs),
            "reward_scales": None if self.reward_scales is None else list(self.reward_scales),
            "num_seeds": self.num_seeds,
            "seed": self.seed,
            "overrides": dict(self.overrides),
            "variants": {name: dict(overrides) for name, overrides in self.variants},
            "share_programs": self.share_programs,
        }


def grids_dir() -> str:
    """The bundled grids: ``configs/lab`` in a clone, ``jaxppo/bundled_configs/lab`` in a wheel."""
    return os.path.join(config_lib.configs_dir(), "lab")


def _resolve_grid_path(path: str) -> str:
    try:
        return config_lib.resolve_bundled_path(path, grids_dir(), "grid")
    except ValueError as error:
        raise RunInputError(str(error)) from None


def _unknown_key(key: Any, valid: Sequence[str], where: str) -> RunInputError:
    error = config_lib._unknown_key_error(str(key), list(valid), where)
    extra = "" if "Did you mean" in str(error) else f" Valid keys: {', '.join(valid)}."
    return RunInputError(f"{error}{extra}")


def _load_base(base: str, grid_dir: str, where: str) -> Any:
    """``ppo`` / ``dqn`` (the class defaults), a path (as given or beside the grid) or a bundled config name."""
    if base in config_lib.CONFIG_CLASSES:
        return config_lib.CONFIG_CLASSES[base]()
    candidates = [base, os.path.join(grid_dir, base), os.path.join(grid_dir, base + ".yaml")]
    path = next((c for c in candidates if os.path.isfile(c)), base)
    try:
        return config_lib.load_config(path)
    except ValueError as error:
        raise RunInputError(f"{where}: base {base!r}: {error}") from None


def _as_number(value: Any, name: str, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 1e-3 as a string
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise RunInputError(f"{where}: {name} must be positive finite numbers, got {value!r}.")
    return float(value)


def _check_overrides(overrides: Any, where: str) -> dict[str, Any]:
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise RunInputError(f"{where} must be a mapping of config field: value, got {overrides!r}.")
    for key in overrides:
        if key in _FORBIDDEN_OVERRIDES:
            raise RunInputError(f"{where} sets {key!r}; set the grid's {_FORBIDDEN_OVERRIDES[key]!r} instead.")
    return dict(overrides)


def _build_config(base: Any, overrides: Mapping[str, Any] | Sequence[str], where: str) -> Any:
    try:
        return config_lib.apply_overrides(base, overrides if isinstance(overrides, list) else dict(overrides))
    except ValueError as error:
        raise RunInputError(f"{where}: {error}") from None


def load_grid(path: str, num_seeds: Optional[int] = None, sets: Sequence[str] = ()) -> Grid:
    """Reads and validates a grid YAML (a path or a bundled grid name) and builds every cell's config.

    Any problem (unknown key, with the nearest valid one; a bad override; an unknown environment) is a
    ``RunInputError`` with one line naming the grid and the variant, raised before anything is compiled.
    ``num_seeds`` overrides the grid's ``seeds``; ``sets`` (``"key=value"``, as ``jaxppo train --set``)
    apply to every cell after its variant's overrides, so a grid can be shortened without copying it.
    """
    resolved = _resolve_grid_path(path)
    where = f"grid {resolved!r}"
    try:
        with open(resolved, "r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as error:
        raise RunInputError(f"cannot read grid file {resolved!r}: {error.strerror or error}.") from None
    except yaml.YAMLError as error:
        raise RunInputError(f"grid file {resolved!r} is not valid YAML: {' '.join(str(error).split())}.") from None
    if not isinstance(data, Mapping):
        raise RunInputError(f"{where} must be a YAML mapping with keys {', '.join(GRID_KEYS)}.")
    for key in data:
        if key not in GRID_KEYS:
            raise _unknown_key(key, GRID_KEYS, where)
    if "base" not in data or not isinstance(data["base"], str):
        raise RunInputError(f"{where} needs 'base': a bundled config name, a config path, 'ppo' or 'dqn'.")
    base = _load_base(data["base"], os.path.dirname(os.path.abspath(resolved)), where)

    seeds = data.get("seeds", 16) if num_seeds is None else num_seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds <= 0:
        raise RunInputError(f"{where}: seeds={seeds!r} must be a positive integer.")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise RunInputError(f"{where}: seed={seed!r} must be a non-negative integer.")
    share_programs = data.get("share_programs", True)
    if not isinstance(share_programs, bool):
        raise RunInputError(f"{where}: share_programs={share_programs!r} must be true or false.")

    envs = data.get("envs", [base.env])
    if isinstance(envs, str):
        envs = [envs]
    if not isinstance(envs, list) or not envs or not all(isinstance(e, str) for e in envs):
        raise RunInputError(f"{where}: envs must be a non-empty list of environment names, got {envs!r}.")
    if len(set(envs)) != len(envs):
        raise RunInputError(f"{where}: envs lists an environment twice: {envs!r}.")

    scales = data.get("reward_scales")
    if scales is not None:
        if not isinstance(scales, list) or not scales:
            raise RunInputError(f"{where}: reward_scales must be a non-empty list of positive numbers, got {scales!r}.")
        scales = [_as_number(s, "reward_scales", where) for s in scales]
        if len(set(scales)) != len(scales):
            raise RunInputError(f"{where}: reward_scales lists a scale twice: {scales!r}.")

    common = _check_overrides(data.get("overrides"), f"{where}: 'overrides'")
    variants = data.get("variants")
    if not isinstance(variants, Mapping) or not variants:
        raise RunInputError(f"{where} needs 'variants': a mapping of variant name to overrides (may be {{}}).")
    checked_variants = []
    for name, overrides in variants.items():
        if not isinstance(name, str) or not _NAME_PATTERN.match(name):
            raise RunInputError(f"{where}: variant name {name!r} may use only letters, digits and _.+-")
        checked_variants.append((name, _check_overrides(overrides, f"{where}: variant {name!r}")))

    cells = []
    for name, overrides in checked_variants:
        for env in envs:
            for scale in scales if scales is not None else [None]:
                merged = {**common, **overrides, "env": env}
                if scale is not None:
                    merged["env_reward_scale"] = scale
                config = _build_config(base, merged, f"{where}: variant {name!r}, env {env!r}")
                if sets:
                    config = _build_config(config, list(sets), f"--set on variant {name!r}, env {env!r}")
                cells.append(Cell(name, env, float(getattr(config, "env_reward_scale", 1.0)), config))
    return Grid(
        name=os.path.splitext(os.path.basename(resolved))[0],
        path=resolved,
        description=str(data.get("description", "")).strip(),
        base=data["base"],
        envs=tuple(envs),
        reward_scales=None if scales is None else tuple(scales),
        num_seeds=seeds,
        seed=seed,
        overrides=common,
        variants=tuple(checked_variants),
        share_programs=share_programs,
        cells=tuple(cells),
        sets=tuple(sets),
    )


# Programs: which cells compile together -----------------------------------------------------------

_program_signature = programs.program_signature


def program_groups(cells: Sequence[Cell], share_programs: bool) -> list[list[Cell]]:
    """Cells of one variant and environment that differ only in numeric leaves (the reward scales, for
    one) share a program; each group keeps the grid's order."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        key = (cell.variant, cell.env, _program_signature(cell.config)) if share_programs else (cell.cell_id,)
        groups.setdefault(key, []).append(cell)
    return list(groups.values())


def _train_group(configs: Sequence[Any], keys: jax.Array) -> tuple[dict[str, np.ndarray], float, float, float]:
    """One cell group's program (``jaxppo.programs.train_stacked``); a seam the tests replace."""
    return programs.train_stacked(configs, keys)


# Summaries ---------------------------------------------------------------------------------------

def final_returns(metrics: Mapping[str, np.ndarray], config: Any) -> np.ndarray:
    """Per-seed final return ``[S]`` in the env's own reward units.

    The mean episode return over the last 10% of the updates in which an episode finished
    (``jaxppo.diagnosis.core.final_returns``, so the tables and the diagnosis agree), divided by
    ``env_reward_scale`` so that cells at different reward scales compare on one axis.
    """
    from jaxppo.diagnosis.core import final_returns as diagnose_final_returns

    return np.asarray(diagnose_final_returns(metrics), np.float64) / float(getattr(config, "env_reward_scale", 1.0))


def _curve(metrics: Mapping[str, np.ndarray], scale: float, steps_per_update: int) -> dict[str, list]:
    """Median and interquartile band over seeds of the episode return (env units) at up to ``CURVE_POINTS``
    updates; updates before a seed's first finished episode (which carry a placeholder 0) are left out."""
    values = np.asarray(metrics["episode_return"], np.float64) / scale
    if "episodes_completed" in metrics:
        started = np.cumsum(np.nan_to_num(np.asarray(metrics["episodes_completed"], np.float64)), axis=1) > 0
        values = np.where(started, values, np.nan)
    num_updates = values.shape[1]
    index = np.unique(np.linspace(0, num_updates - 1, min(CURVE_POINTS, num_updates)).round().astype(int))
    picked = np.where(np.isfinite(values[:, index]), values[:, index], np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before any episode ended
        q25, median, q75 = np.nanpercentile(picked, [25, 50, 75], axis=0)
    clean = lambda a: [float(x) if np.isfinite(x) else None for x in a]  # noqa: E731
    return {"env_steps": [int((i + 1) * steps_per_update) for i in index], "q25": clean(q25),
            "median": clean(median), "q75": clean(q75)}


def summarize_cell(metrics: Mapping[str, np.ndarray], config: Any) -> dict[str, Any]:
    """Everything the tables show for one cell, from its per-seed metrics (``[S, U]`` each)."""
    from jaxppo.diagnosis.core import diagnose
    from jaxppo.stats import share, summarize_seeds

    diagnosis = diagnose(dict(metrics), config)
    healthy = np.asarray(diagnosis.healthy, bool)
    num_seeds = healthy.shape[0]
    finals = final_returns(metrics, config)
    return {
        "healthy_share": share(healthy),
        "pathology_share": {name: int(count) / num_seeds for name, count in diagnosis.counts.items()},
        "pathology_seeds": {name: int(count) for name, count in diagnosis.counts.items()},
        "warning_seeds": {name: int(count) for name, count in diagnosis.warning_counts.items() if count},
        "final_return": summarize_seeds(finals),
        "per_seed": {
            "final_return": [float(x) if np.isfinite(x) else None for x in finals],
            "healthy": healthy.tolist(),
        },
        "diagnosis": diagnosis.to_dict(),
        "curve": _curve(metrics, float(getattr(config, "env_reward_scale", 1.0)), config.steps_per_update),
    }


def _fingerprint(cell: Cell, grid: Grid) -> str:
    """What makes a finished cell reusable on resume: the grid's request for it, not the code version
    (``results.json`` records the commit each cell ran on; delete the folder to rerun after a change)."""
    overrides = {**grid.overrides, **dict(grid.variants)[cell.variant]}
    request = {"base": grid.base, "overrides": overrides, "env": cell.env, "reward_scale": cell.reward_scale,
               "num_seeds": grid.num_seeds, "seed": grid.seed}
    if grid.sets:  # ``--set`` changes every cell; a grid run without it keeps its earlier fingerprints
        request["sets"] = list(grid.sets)
    payload = json.dumps(request, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# The run --------------------------------------------------------------------------------------------

def _read_results(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise RunInputError(f"cannot read {path!r} to resume ({error}); move it away to start afresh.") from None
    return data if isinstance(data, dict) else {}


def _load_cell_metrics(path: str) -> Optional[dict[str, np.ndarray]]:
    if not os.path.exists(path):
        return None
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def run(grid: Grid | str, num_seeds: Optional[int] = None, out_dir: Optional[str] = None,
        progress: bool = True, train: bool = True) -> dict[str, Any]:
    """Trains every cell of ``grid`` (a ``Grid``, a path or a bundled grid name) and writes the outputs.

    Cells already finished in ``out_dir/results.json`` (same grid request, seeds and seed) are not
    trained again; their summaries are recomputed from ``cells/*.npz`` so tables follow the current
    detectors. ``train=False`` does only that: it refreshes the statistics, tables and plots of the
    finished cells and trains nothing. Returns the results dict that ``results.json`` holds.
    """
    if not isinstance(grid, Grid):
        grid = load_grid(grid, num_seeds=num_seeds)
    elif num_seeds is not None and num_seeds != grid.num_seeds:
        grid = load_grid(grid.path, num_seeds=num_seeds)
    out_dir = out_dir or os.path.join("lab", grid.name)
    results_path = os.path.join(out_dir, RESULTS_FILE)
    previous = _read_results(results_path)
    done = {record["id"]: record for record in previous.get("cells", [])
            if isinstance(record, dict) and "id" in record}
    os.makedirs(os.path.join(out_dir, CELLS_DIR), exist_ok=True)

    records: dict[str, dict] = {}
    for cell in grid.cells:
        record = done.get(cell.cell_id)
        if record is None or record.get("fingerprint") != _fingerprint(cell, grid):
            continue
        metrics = _load_cell_metrics(os.path.join(out_dir, CELLS_DIR, cell.file_stem + ".npz"))
        if metrics is not None:
            record.update(summarize_cell(metrics, cell.config))
        records[cell.cell_id] = record

    results: dict[str, Any] = {
        "grid": grid.to_dict(),
        "machine": previous.get("machine") or machine_lib.describe(),
        "started_utc": previous.get("started_utc") or datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "cells": [],
    }

    def write_results() -> None:
        results["cells"] = [records[c.cell_id] for c in grid.cells if c.cell_id in records]
        atomic_write_json(results_path, results)
        atomic_write_text(os.path.join(out_dir, MARKDOWN_FILE), markdown_report(results))

    write_results()
    from tqdm.auto import tqdm

    keys = programs.seed_keys(grid.seed, grid.num_seeds)
    commit = machine_lib.git_commit()
    on_cpu = jax.default_backend() == "cpu"
    bar = tqdm(total=len(grid.cells), initial=len(records), unit="cell", disable=not progress,
               desc=f"lab {grid.name}")
    try:
        for group in program_groups(grid.cells, grid.share_programs) if train else []:
            todo = [cell for cell in group if cell.cell_id not in records]
            if not todo:
                continue
            bar.set_postfix_str(f"{todo[0].variant} on {todo[0].env} ({len(todo)} cell(s), {grid.num_seeds} seeds)")
            load = machine_lib.load_average()
            metrics, compile_s, run_s, run_cpu_s = _train_group([cell.config for cell in todo], keys)
            env_steps = sum(c.config.num_updates * c.config.steps_per_update for c in todo) * grid.num_seeds
            program = {"cells": [c.cell_id for c in todo], "compile_s": compile_s, "run_s": run_s,
                       "run_cpu_s": run_cpu_s, "env_steps": env_steps, "env_steps_per_s": env_steps / run_s,
                       # On an accelerator the work is not CPU time, so the CPU figure would mean nothing.
                       "env_steps_per_cpu_s": env_steps / max(run_cpu_s, 1e-9) if on_cpu else None,
                       "load_average_before": load}
            for index, cell in enumerate(todo):
                cell_metrics = {name: value[index] for name, value in metrics.items()}
                atomic_write_npz(os.path.join(out_dir, CELLS_DIR, cell.file_stem + ".npz"), cell_metrics)
                config = cell.config
                records[cell.cell_id] = {
                    "id": cell.cell_id,
                    "variant": cell.variant,
                    "env": cell.env,
                    "reward_scale": cell.reward_scale,
                    "algorithm": config.algorithm,
                    "fingerprint": _fingerprint(cell, grid),
                    "num_seeds": grid.num_seeds,
                    "env_steps_per_seed": config.num_updates * config.steps_per_update,
                    "num_updates": config.num_updates,
                    "compile_s": compile_s,
                    "run_s": run_s,
                    "env_steps_per_s": program["env_steps_per_s"],
                    "env_steps_per_cpu_s": program["env_steps_per_cpu_s"],
                    "program": program,
                    "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                    "git_commit": commit,
                    "config": config_lib.config_to_dict(config),
                    **summarize_cell(cell_metrics, config),
                }
            write_results()
            bar.update(len(todo))
    finally:
        bar.close()
    write_plots(results, out_dir)
    return results


# Tables ---------------------------------------------------------------------------------------------

def _fmt(value: Optional[float]) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude >= 1e5 or magnitude < 1e-2):
        return f"{value:.2e}"
    return f"{value:.1f}" if magnitude >= 10 else f"{value:.3g}"


def _count(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _pct(share_value: float) -> str:
    return f"{100 * share_value:.0f}%"


def variant_summary(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per variant, pooled over its cells: share of healthy seeds and mean env steps/s (the plot's points)."""
    rows: dict[str, dict[str, Any]] = {}
    for record in results["cells"]:
        row = rows.setdefault(record["variant"], {"variant": record["variant"], "healthy": 0, "seeds": 0,
                                                  "throughputs": [], "cpu_throughputs": [], "pathology_seeds": {}})
        row["healthy"] += sum(record["per_seed"]["healthy"])
        row["seeds"] += record["num_seeds"]
        row["throughputs"].append(record["env_steps_per_s"])
        if record.get("env_steps_per_cpu_s") is not None:
            row["cpu_throughputs"].append(record["env_steps_per_cpu_s"])
        for name, count in record["pathology_seeds"].items():
            row["pathology_seeds"][name] = row["pathology_seeds"].get(name, 0) + count
    out = []
    for row in rows.values():
        out.append({"variant": row["variant"], "cells": len(row["throughputs"]), "seeds": row["seeds"],
                    "healthy_share": row["healthy"] / row["seeds"],
                    "env_steps_per_s": float(np.mean(row["throughputs"])),
                    "env_steps_per_cpu_s": float(np.mean(row["cpu_throughputs"])) if row["cpu_throughputs"] else None,
                    "pathology_share": {k: v / row["seeds"] for k, v in row["pathology_seeds"].items()}})
    return out


def markdown_report(results: Mapping[str, Any]) -> str:
    """``results.md``: one row per cell, then one per variant (pooled), from ``results.json`` alone."""
    grid = results["grid"]
    cells = results["cells"]
    lines = [f"# Lab: {grid['name']}", ""]
    if grid.get("description"):
        lines += [grid["description"], ""]
    if grid.get("sets"):  # the description speaks of the grid as written; say what changed it
        lines += ["This run changed every cell with `--set " + "`, `--set ".join(grid["sets"])
                  + "`: where the description above names a budget or a setting, these take precedence.", ""]
    budgets = sorted({record["env_steps_per_seed"] for record in cells})
    machine = results.get("machine", {})
    lines += [
        f"{len(cells)} of {len(grid['variants']) * len(grid['envs']) * len(grid['reward_scales'] or [1])} cells "
        f"finished; {grid['num_seeds']} seeds per cell (seed {grid['seed']}); env steps per seed: "
        f"{', '.join(f'{b:,}' for b in budgets) or 'n/a'}. Machine: "
        f"{machine_lib.short_description(machine)}. "
        "Final return: per seed, the mean episode return over the last 10% of updates that finished an "
        "episode, in the env's reward units (divided by the reward scale); IQM with a 95% bootstrap "
        "interval over seeds. Env steps/s and compile time are per program "
        "(the reward scales of one variant and env share one); *per CPU s* divides by the CPU time of the "
        "process instead of wall time, which moves less when other work shares the machine.",
        "",
        "| variant | env | reward scale | healthy | pathologies (share of seeds) | final return IQM [95% CI] "
        "| median | worst seed | env steps/s | per CPU s | compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for record in cells:
        final = record["final_return"]
        pathologies = ", ".join(f"{name} {_pct(value)}" for name, value in record["pathology_share"].items()
                                if value > 0) or "none"
        low, high = final.get("iqm_ci", [None, None])
        worst = f"{_fmt(final.get('min'))} (#{final.get('worst_seed')})"
        if final.get("num_nonfinite"):  # counted at the worst score (jaxppo.stats.summarize_seeds)
            worst += f", {final['num_nonfinite']} non-finite"
        lines.append(
            f"| {record['variant']} | {record['env']} | {record['reward_scale']:g} | "
            f"{_pct(record['healthy_share'])} ({sum(record['per_seed']['healthy'])}/{record['num_seeds']}) | "
            f"{pathologies} | {_fmt(final.get('iqm'))} [{_fmt(low)}, {_fmt(high)}] | {_fmt(final.get('median'))} | "
            f"{worst} | {record['env_steps_per_s']:,.0f} | {_count(record.get('env_steps_per_cpu_s'))} | "
            f"{record['compile_s']:.1f} |")
    summary = variant_summary(results)
    if summary:
        reference = summary[0]["env_steps_per_s"]
        lines += ["", f"Per variant, pooled over its cells (throughput relative to {summary[0]['variant']!r}):", "",
                  "| variant | cells | seeds | healthy | env steps/s | relative | per CPU s | relative |",
                  "|---|---|---|---|---|---|---|---|"]
        cpu_reference = summary[0]["env_steps_per_cpu_s"]
        for row in summary:
            cpu = row["env_steps_per_cpu_s"]
            cpu_ratio = f"{cpu / cpu_reference:.2f}x" if cpu and cpu_reference else "n/a"
            lines.append(f"| {row['variant']} | {row['cells']} | {row['seeds']} | {_pct(row['healthy_share'])} | "
                         f"{row['env_steps_per_s']:,.0f} | {row['env_steps_per_s'] / reference:.2f}x | {_count(cpu)} | "
                         f"{cpu_ratio} |")
    return "\n".join(lines) + "\n"


# Plots ----------------------------------------------------------------------------------------------

def throughput_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """``count`` tick positions spread evenly on a log axis from ``low`` to ``high``, each rounded to two
    significant digits so its label reads cleanly."""
    ticks = np.geomspace(low, high, count + 2)[1:-1]
    return [float(f"{t:.2g}") for t in ticks]


def write_plots(results: Mapping[str, Any], out_dir: str, dpi: int = 100) -> list[str]:
    """The three PNGs of ``results`` (a ``results.json`` dict); returns their paths."""
    cells = results["cells"]
    if not cells:
        return []
    plt = plotting.pyplot()
    variants = list(dict.fromkeys(record["variant"] for record in cells))
    colors = {v: plt.get_cmap("tab10")(i % 10) for i, v in enumerate(variants)}
    paths = []

    summary = variant_summary(results)
    # Per CPU second when every variant has it (a CPU backend): steadier than wall time on a shared machine.
    key = "env_steps_per_cpu_s" if all(row["env_steps_per_cpu_s"] for row in summary) else "env_steps_per_s"
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for row in summary:
        ax.scatter(row[key], row["healthy_share"], s=60, color=colors[row["variant"]], label=row["variant"], zorder=3)
        ax.annotate(row["variant"], (row[key], row["healthy_share"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)
    speeds = [row[key] for row in summary]
    low, high = min(speeds) / 1.5, max(speeds) * 1.5
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    # A log axis over less than a decade gets one major tick or none: put five readable ones on it.
    ax.xaxis.set_major_locator(FixedLocator(throughput_ticks(low, high)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("env steps per CPU second (all seeds)" if key == "env_steps_per_cpu_s" else
                  "env steps / s (all seeds, mean over the variant's programs)")
    ax.set_ylabel("share of healthy seeds")
    ax.set_title(f"{results['grid']['name']}: stability vs throughput")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, THROUGHPUT_PNG))
    plotting.save_figure(fig, paths[-1], dpi)

    panels = list(dict.fromkeys((record["env"], record["reward_scale"]) for record in cells))
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for ax, (env, scale) in zip(axes.flat, panels):
        for record in cells:
            if (record["env"], record["reward_scale"]) != (env, scale):
                continue
            curve = record["curve"]
            x = np.asarray(curve["env_steps"], float)
            as_array = lambda k: np.array([np.nan if v is None else v for v in curve[k]], float)  # noqa: E731
            ax.plot(x, as_array("median"), color=colors[record["variant"]], lw=1.5, label=record["variant"])
            ax.fill_between(x, as_array("q25"), as_array("q75"), color=colors[record["variant"]], alpha=0.2, lw=0)
        ax.set_title(f"{env}, reward x{scale:g}", fontsize=9)
        ax.set_xlabel("env steps per seed", fontsize=8)
        ax.set_ylabel("episode return", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{results['grid']['name']}: median and interquartile range over seeds", fontsize=10)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, CURVES_PNG))
    plotting.save_figure(fig, paths[-1], dpi)

    found = {name for row in summary for name, value in row["pathology_share"].items() if value > 0}
    names = [name for row in summary[:1] for name in row["pathology_share"] if name in found]  # detector order
    bars = ["healthy"] + names
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(bars) * max(1, len(summary)) / 2), 4.2))
    width = 0.8 / max(1, len(summary))
    for i, row in enumerate(summary):
        heights = [row["healthy_share"]] + [row["pathology_share"].get(name, 0.0) for name in names]
        ax.bar(np.arange(len(bars)) + i * width, heights, width, color=colors[row["variant"]], label=row["variant"])
    ax.set_xticks(np.arange(len(bars)) + width * (len(summary) - 1) / 2)
    ax.set_xticklabels(bars, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of seeds")
    ax.set_title(f"{results['grid']['name']}: pathologies per variant (pooled over cells)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, PATHOLOGIES_PNG))
    plotting.save_figure(fig, paths[-1], dpi)
    return paths


def rewrite_outputs(out_dir: str) -> list[str]:
    """Rewrites ``results.md`` and the PNGs of a lab folder from its ``results.json``."""
    results = _read_results(os.path.join(out_dir, RESULTS_FILE))
    if not results:
        raise RunInputError(f"{out_dir!r} has no {RESULTS_FILE}.")
    atomic_write_text(os.path.join(out_dir, MARKDOWN_FILE), markdown_report(results))
    return [os.path.join(out_dir, MARKDOWN_FILE)] + write_plots(results, out_dir)
