"""Orbax checkpoints of a run: the seed-stacked training state plus host-side records.

A checkpoint is one Orbax step directory ``checkpoints/<update>/`` with two items:

* ``state``: a pytree ``{"state": <algorithm state, leading seed axis>, "metrics": {name: [S, U]}}``,
  saved with ``StandardSave``. The state carries the PRNG keys, so a restored run continues exactly.
  Metrics are padded to the full number of updates ``U`` so their shapes never change and a restore
  target can be built from the config alone; only the first ``update`` columns are meaningful.
* ``meta``: JSON (update index, evaluation records, elapsed wall time, the config as a dict).

Orbax writes each step into a temporary folder and renames it when complete, so a process killed
mid-save leaves the previous checkpoint as the latest valid one.
"""

from __future__ import annotations

import math
import os
from typing import Any, Optional

import jax
import jax.numpy as jnp

__all__ = ["save_checkpoint", "restore_checkpoint", "latest_checkpoint_update", "CheckpointWriter"]


def _ocp():
    import orbax.checkpoint as ocp  # heavy import: only when a run actually saves or loads

    return ocp


def _manager(directory: str, read_only: bool = False, max_to_keep: Optional[int] = 2):
    import jax

    ocp = _ocp()
    extra = {}
    if jax.process_count() > 1:
        # Only process 0 saves and reads (the runner gathers the state to it and broadcasts restores),
        # so Orbax must not wait for the other processes at its barriers.
        extra["multiprocessing_options"] = ocp.options.MultiprocessingOptions(primary_host=0, active_processes={0})
        if not read_only:  # Orbax refuses to create the folder itself when active_processes is set
            os.makedirs(os.path.abspath(directory), exist_ok=True)
    # Readers use a manager that neither creates nor deletes anything; Orbax's own read_only flag
    # would do the same but logs three warnings per use.
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None if read_only else max_to_keep,
        create=not read_only and jax.process_count() == 1,
        # A process killed mid-save leaves an uncommitted temporary folder; the next writer removes it.
        cleanup_tmp_directories=not read_only,
        # Synchronous saves: when save() returns the step is committed, so a kill right after it
        # can always resume from it. CartPole-sized states save in milliseconds.
        enable_async_checkpointing=False,
        **extra,
    )
    return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def _is_empty(leaf: Any) -> bool:
    return hasattr(leaf, "shape") and math.prod(leaf.shape) == 0


def _without_empty(tree: Any) -> Any:
    """``tree`` with zero-size arrays as None: Orbax refuses to save them, and MJX's physics state has
    some (a model without actuators' activations, say)."""
    return jax.tree.map(lambda leaf: None if _is_empty(leaf) else leaf, tree)


def _with_empty(abstract_tree: Any, restored: Any) -> Any:
    """The restored tree with the zero-size arrays ``_without_empty`` left out made again from their
    shapes and dtypes in ``abstract_tree``."""
    return jax.tree.map(lambda like, leaf: jnp.zeros(like.shape, like.dtype) if _is_empty(like) else leaf,
                        abstract_tree, restored)


class CheckpointWriter:
    """Keeps one Orbax manager open for a run's lifetime (creating one per save is slow)."""

    def __init__(self, directory: str, max_to_keep: Optional[int] = 2):
        self.directory = directory
        self._manager = _manager(directory, max_to_keep=max_to_keep)

    def save(self, update: int, tree: Any, meta: dict) -> None:
        ocp = _ocp()
        self._manager.save(
            update,
            args=ocp.args.Composite(state=ocp.args.StandardSave(_without_empty(tree)), meta=ocp.args.JsonSave(meta)),
            force=True,
        )
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()


def save_checkpoint(directory: str, update: int, tree: Any, meta: dict) -> None:
    writer = CheckpointWriter(directory)
    try:
        writer.save(update, tree, meta)
    finally:
        writer.close()


def latest_checkpoint_update(directory: str) -> Optional[int]:
    """The newest committed checkpoint's update index, or None if there is none."""
    if not os.path.isdir(directory):
        return None
    manager = _manager(directory, read_only=True)
    try:
        return manager.latest_step()
    finally:
        manager.close()


def restore_checkpoint(directory: str, abstract_tree: Any, update: Optional[int] = None) -> tuple[Any, dict, int]:
    """``(tree, meta, update)`` of checkpoint ``update`` (default: the latest), shaped like ``abstract_tree``."""
    ocp = _ocp()
    manager = _manager(directory, read_only=True)
    try:
        step = manager.latest_step() if update is None else update
        if step is None:
            from jaxppo.run_io import RunInputError

            raise RunInputError(f"no checkpoint found in {directory!r}.")
        restored = manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(_without_empty(abstract_tree)),
                                    meta=ocp.args.JsonRestore()),
        )
        return _with_empty(abstract_tree, restored["state"]), dict(restored["meta"]), int(step)
    finally:
        manager.close()
