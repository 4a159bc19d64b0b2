"""The run directory: its file names, the checks before a run is written into one, and reading one back.

Kept apart from the training loop so that code that only reads or checks a run directory (the summary,
plots, the command line) names its files in one place and needs no compiled training code.
``jaxppo.runner`` writes the files; ``docs/runs.md`` describes them.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from jaxppo import config as config_lib
from jaxppo.run_io import RunInputError

__all__ = [
    "CONFIG_FILE",
    "RUN_FILE",
    "METRICS_FILE",
    "PER_SEED_FILE",
    "EVAL_FILE",
    "SUMMARY_FILE",
    "CURVE_FILE",
    "DIAGNOSTICS_FILE",
    "CHECKPOINT_DIR",
    "holds_run",
    "check_run_dir",
    "read_run",
    "read_per_seed_metrics",
]

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
PER_SEED_FILE = "metrics_per_seed.npz"
EVAL_FILE = "eval.jsonl"
SUMMARY_FILE = "summary.json"
CURVE_FILE = "learning_curve.png"
DIAGNOSTICS_FILE = "diagnostics.png"
CHECKPOINT_DIR = "checkpoints"

_RUN_INFO_KEYS = ("seed", "num_seeds", "chunk_size")


def holds_run(run_dir: str) -> bool:
    """Whether ``run_dir`` holds a run (its config or checkpoints), finished or not."""
    return (os.path.exists(os.path.join(run_dir, CONFIG_FILE))
            or os.path.isdir(os.path.join(run_dir, CHECKPOINT_DIR)))


def check_run_dir(run_dir: str, force: bool = False) -> None:
    """Raises ``RunInputError`` unless a new run can be written to ``run_dir``; creates nothing.

    Refused: an empty path, an existing file, a path below a file, an existing run (continue it with
    resume instead), an existing non-empty directory that is not a run (unless ``force``: then the run
    is written into it), and a location where no directory can be created (read-only, no permission).
    """
    if not run_dir or not str(run_dir).strip():
        raise RunInputError("the run directory (--out) must not be empty.")
    path = os.path.abspath(run_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunInputError(f"--out {run_dir!r} exists and is not a directory.")
    if os.path.isdir(path):
        if holds_run(path):
            raise RunInputError(f"{run_dir!r} already holds a run; continue it with --resume {run_dir} "
                                "or choose another --out.")
        if os.listdir(path) and not force:
            raise RunInputError(f"--out {run_dir!r} is a non-empty directory that is not a jaxppo run; choose a "
                                "new or empty directory, or pass --force to write the run into it.")
        existing = path
    else:
        existing = os.path.dirname(path)
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise RunInputError(f"cannot create --out {run_dir!r}: {existing!r} is a file, not a directory.")
    try:  # the only reliable test of writability (root ignores mode bits, not read-only mounts)
        os.rmdir(tempfile.mkdtemp(prefix=".jaxppo-write-test-", dir=existing))
    except OSError as error:
        raise RunInputError(f"cannot write the run directory {run_dir!r}: {existing!r} is not writable "
                            f"({error.strerror or error}).") from None


def read_run(run_dir: str) -> tuple[Any, dict]:
    """``(config, run_info)`` of a run directory: its ``config.yaml`` loaded and its ``run.json``.

    A missing, foreign or damaged run directory is a ``RunInputError`` naming what is wrong.
    """
    if not os.path.exists(run_dir):
        raise RunInputError(f"run directory {run_dir!r} does not exist.")
    if not os.path.isdir(run_dir):
        raise RunInputError(f"{run_dir!r} is a file, not a run directory.")
    config_path = os.path.join(run_dir, CONFIG_FILE)
    run_path = os.path.join(run_dir, RUN_FILE)
    if not os.path.exists(config_path) or not os.path.exists(run_path):
        raise RunInputError(f"{run_dir!r} is not a jaxppo run directory (no {CONFIG_FILE} / {RUN_FILE}).")
    try:
        config = config_lib.load_config(config_path)
    except ValueError as error:
        raise RunInputError(f"cannot read the run's config: {error}") from None
    try:
        with open(run_path, "r", encoding="utf-8") as handle:
            run_info = json.load(handle)
    except (OSError, ValueError) as error:
        raise RunInputError(f"cannot read {run_path!r}: {error}") from None
    missing = [key for key in _RUN_INFO_KEYS if not isinstance(run_info, dict) or key not in run_info]
    if missing:
        raise RunInputError(f"{run_path!r} is damaged: it lacks {', '.join(missing)}.")
    return config, run_info


def read_per_seed_metrics(run_dir: str, scalars_only: bool = False) -> dict:
    """The run's per-seed metric history (``metrics_per_seed.npz``): ``{name: [S, columns, ...]}``, with
    ``scalars_only`` just the one-number-per-update series ``[S, columns]``. A run without the file yet
    is one ``RunInputError`` line; a torn or foreign file raises ``OSError`` or ``ValueError``."""
    import numpy as np

    path = os.path.join(run_dir, PER_SEED_FILE)
    if not os.path.exists(path):
        raise RunInputError(f"{run_dir!r} has no {PER_SEED_FILE} yet; train at least one chunk first.")
    with np.load(path) as data:
        return {name: data[name] for name in data.files if not scalars_only or data[name].ndim == 2}
