"""Crash-safe file writes for the run directory.

Every file the runner writes goes through ``atomic_write_bytes``: the content is written to a temporary
file in the same directory, flushed and fsynced, then moved over the target with ``os.replace`` (atomic
on POSIX and Windows when source and target share a file system, which a sibling temp file guarantees).
A crash at any moment leaves either the complete old file or the complete new one, never a torn file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

__all__ = [
    "RunInputError",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_write_yaml",
    "atomic_write_npz",
    "read_jsonl",
    "to_builtin",
]


class RunInputError(ValueError):
    """A problem with what the user asked for (a run directory that does not exist, a bad seed index):
    the command line reports it in one line, unlike a ValueError from a bug deeper down."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _write_all(handle: Any, data: bytes) -> None:
    """Writes ``data`` to an open binary file; a separate function so tests can make it fail midway."""
    handle.write(data)


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; some platforms (Windows) cannot open a directory, which is fine.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replaces ``path`` with ``data`` atomically: temp file in the same folder, fsync, ``os.replace``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        os.chmod(temp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual file mode
        with os.fdopen(fd, "wb") as handle:
            _write_all(handle, data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def to_builtin(value: Any) -> Any:
    """numpy / jax scalars and arrays -> plain Python numbers and lists, for JSON and YAML."""
    if isinstance(value, Mapping):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    array = np.asarray(value)
    if array.ndim == 0:
        return array.item()
    return array.tolist()


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    atomic_write_text(path, json.dumps(to_builtin(data), indent=2, sort_keys=False) + "\n")


def atomic_write_yaml(path: str | os.PathLike[str], data: Any) -> None:
    atomic_write_text(path, yaml.safe_dump(to_builtin(data), sort_keys=False, default_flow_style=None))


def atomic_write_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{name: np.asarray(a) for name, a in arrays.items()})
    atomic_write_bytes(path, buffer.getvalue())


def read_jsonl(path: str | os.PathLike[str]) -> list[dict]:
    """All records of a JSON-lines file (empty list if it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path, "r", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def jsonl_text(records: Iterable[Any]) -> str:
    return "".join(json.dumps(to_builtin(r)) + "\n" for r in records)
