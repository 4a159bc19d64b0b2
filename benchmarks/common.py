"""Shared pieces of the benchmark scripts: timing, machine description, JSON output, tables.

Timing protocol (both libraries, every script): ``jax.jit(fn).lower(*args)`` and ``.compile()`` are
timed separately from execution; a run is ``compiled(*args)`` followed by ``jax.block_until_ready``,
so run times exclude tracing and compilation entirely. The best of several runs is reported, because
on a shared machine the minimum is the measurement least disturbed by other processes.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import tempfile
import time
from typing import Any, Callable, Iterable, Optional, Sequence

import jax
import numpy as np

__all__ = [
    "RESULTS_DIR",
    "CompiledProgram",
    "compile_program",
    "time_runs",
    "memory_stats",
    "machine_info",
    "versions",
    "write_json_atomic",
    "parse_int_list",
    "format_table",
    "to_jsonable",
]

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


class CompiledProgram:
    """A jitted function lowered and compiled for fixed arguments, with the time each phase took."""

    def __init__(self, executable: Any, lower_seconds: float, compile_seconds: float) -> None:
        self.executable = executable
        self.lower_seconds = lower_seconds  # tracing + lowering to StableHLO
        self.compile_seconds = compile_seconds  # XLA compilation

    @property
    def total_compile_seconds(self) -> float:
        return self.lower_seconds + self.compile_seconds


def compile_program(fn: Callable, *args: Any) -> CompiledProgram:
    """``jax.jit(fn)`` lowered and compiled for ``args``; nothing is executed."""
    start = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    lowered_at = time.perf_counter()
    executable = lowered.compile()
    compiled_at = time.perf_counter()
    return CompiledProgram(executable, lowered_at - start, compiled_at - lowered_at)


def time_runs(program: CompiledProgram, *args: Any, repeats: int = 1) -> tuple[list[float], Any]:
    """Executes the compiled program ``repeats`` times; returns every wall time and the last output."""
    times: list[float] = []
    output = None
    for _ in range(repeats):
        output = None  # let the previous output's buffers go before the next run allocates
        start = time.perf_counter()
        output = program.executable(*args)
        jax.block_until_ready(output)
        times.append(time.perf_counter() - start)
    return times, output


def memory_stats(program: CompiledProgram) -> Optional[dict[str, int]]:
    """XLA's static memory analysis of a compiled program (bytes), or None if the backend has none.

    ``argument`` and ``output`` are the input and result buffers, ``temp`` the scratch XLA allocates
    while running (the replay buffer, rollout storage, ... live here or in the output when they are
    carried); ``alias`` is output memory that reuses donated inputs. ``peak_estimate`` adds
    argument + output + temp - alias, an upper bound on the program's device memory.
    """
    try:
        analysis = program.executable.memory_analysis()
    except Exception:  # noqa: BLE001 - backends without the analysis raise various errors
        return None
    if analysis is None:
        return None
    fields = {
        "argument_bytes": "argument_size_in_bytes",
        "output_bytes": "output_size_in_bytes",
        "temp_bytes": "temp_size_in_bytes",
        "alias_bytes": "alias_size_in_bytes",
        "generated_code_bytes": "generated_code_size_in_bytes",
    }
    out = {name: int(getattr(analysis, attr, 0) or 0) for name, attr in fields.items()}
    out["peak_estimate_bytes"] = out["argument_bytes"] + out["output_bytes"] + out["temp_bytes"] - out["alias_bytes"]
    return out


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (``jaxppo.machine.describe``) and the command that measured them."""
    from jaxppo import machine

    return {**machine.describe(), "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}


def versions(*packages: str) -> dict[str, Optional[str]]:
    from importlib import metadata

    out: dict[str, Optional[str]] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def process_peak_rss_mib() -> float:
    """The process's peak resident memory so far (Linux reports KiB); it only ever grows."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def to_jsonable(value: Any) -> Any:
    """numpy / jax scalars and arrays, tuples and non-finite floats into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, jax.Array)):
        return to_jsonable(np.asarray(value).tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN / inf
    return value


def write_json_atomic(path: str, data: Any) -> str:
    """Writes JSON to a temporary file in the target folder, then renames it over ``path``.

    A reader never sees a half-written file, and an interrupted run leaves the previous result intact.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(to_jsonable(data), handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def parse_int_list(text: str) -> list[int]:
    """``"1,16,128"`` -> ``[1, 16, 128]``, each a positive integer."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{text!r} must be a comma-separated list of integers, e.g. 1,16,128.") from None
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"{text!r} must list positive integers, e.g. 1,16,128.")
    return values


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain fixed-width table; floats get a compact format."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-2):
                return f"{value:.3g}"
            return f"{value:,.2f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    text_rows = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in text_rows]
    return "\n".join(lines)


def seed_keys(num_seeds: int, seed: int = 0) -> jax.Array:
    """The keys ``jaxppo.train`` uses (``jaxppo.parallel.seed_keys``), in this file's argument order."""
    from jaxppo.parallel import seed_keys as lane_keys

    return lane_keys(seed, num_seeds)


def summarize(values: Any) -> dict[str, Any]:
    """mean / median / min / max / std over the finite entries of a 1-D array of per-seed numbers.

    NaN entries (a seed with nothing to report) are left out and counted in ``num_missing``.
    """
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return {"mean": None, "median": None, "min": None, "max": None, "std": None, "num_missing": int(arr.size)}
    return {
        "mean": float(np.mean(finite)),
        "median": float(np.median(finite)),
        "min": float(np.min(finite)),
        "max": float(np.max(finite)),
        "std": float(np.std(finite)),
        "num_missing": int(arr.size - finite.size),
    }


def evaluate_final_policies(make_act: Callable[[Any], Callable], states: Any, env: Any, env_params: Any,
                            episodes: int, key: jax.Array) -> np.ndarray:
    """Mean return of ``episodes`` fresh episodes per seed, with rejax's own evaluator for both libraries.

    ``make_act(state_of_one_seed) -> act(obs, rng) -> action``; ``states`` carry a leading seed axis.
    ``env`` must have the five-value step (``_rejax_compat.FiveValueStepEnv``). Using one evaluator
    for both sides makes the sanity-check returns comparable; it runs after timing, untimed.
    """
    from rejax.evaluate import evaluate

    num_seeds = jax.tree.leaves(states)[0].shape[0]
    max_steps = int(env_params.max_steps_in_episode)

    def one_seed(state: Any, seed_key: jax.Array) -> jax.Array:
        _, returns = evaluate(make_act(state), seed_key, env, env_params, episodes, max_steps)
        return returns.mean()

    returns = jax.jit(jax.vmap(one_seed))(states, jax.random.split(key, num_seeds))
    return np.asarray(returns)


def compile_and_time_interleaved(fns: dict[str, Callable], args: tuple, repeats: int, label: str = ""
                                 ) -> tuple[dict[str, CompiledProgram], dict[str, list[float]], dict[str, Any]]:
    """Compiles every function for ``args``, then runs them in turn, ``repeats`` rounds.

    Alternating the libraries inside each round spreads any slow period of a shared machine over all of
    them instead of penalising whichever happened to run then. Returns the programs, every run time
    per name, and each name's last output.
    """
    programs: dict[str, CompiledProgram] = {}
    for name, fn in fns.items():
        programs[name] = compile_program(fn, *args)
        print(f"  {label} {name:14s} compile {programs[name].total_compile_seconds:8.2f} s", flush=True)
    times: dict[str, list[float]] = {name: [] for name in fns}
    outputs: dict[str, Any] = {}
    for _ in range(repeats):
        for name, program in programs.items():
            outputs.pop(name, None)
            run_times, outputs[name] = time_runs(program, *args, repeats=1)
            times[name] += run_times
            print(f"  {label} {name:14s} run     {run_times[0]:8.2f} s", flush=True)
    return programs, times, outputs


def throughput_result(num_seeds: int, env_steps_per_seed: int, program: CompiledProgram,
                      times: list[float]) -> dict[str, Any]:
    """The JSON record of one library at one seed count."""
    best = min(times)
    return {
        "num_seeds": num_seeds,
        "env_steps_per_seed": env_steps_per_seed,
        "trace_and_lower_seconds": program.lower_seconds,
        "compile_seconds": program.compile_seconds,
        "total_compile_seconds": program.total_compile_seconds,
        "run_seconds": times,
        "best_run_seconds": best,
        "env_steps_per_second": num_seeds * env_steps_per_seed / best,
        "memory_analysis": memory_stats(program),
    }
