"""The host-side run loop: chunked compiled training, evaluation, run directory, checkpoints, resume.

Training is one compiled program per chunk, ``jax.jit(jax.vmap(run_updates))`` over seeds with the
number of updates static. Between chunks the host updates the progress bar, writes the metrics, runs
greedy evaluation and saves checkpoints. Because every algorithm keeps its PRNG key in its state and
splits it once per update, the chunk size never changes the results: 1 chunk of 100 updates and 10
chunks of 10 give bit-identical parameters and metrics, and a resumed run equals an uninterrupted one.

Run directory (``docs/runs.md`` has the details)::

    config.yaml            the resolved config (load_config reads it back)
    run.json               seeds, chunk size, versions: what resume needs besides the config
    metrics.jsonl          one line per update, each metric aggregated over seeds
    metrics_per_seed.npz   every metric per seed, [num_seeds, updates]
    eval.jsonl             one line per greedy evaluation
    summary.json           final returns over seeds, env steps, wall time, steps/s
    learning_curve.png     training return (median, IQR over seeds) with evaluations
    diagnostics.png        losses and diagnostics (median, IQR over seeds)
    checkpoints/<update>/  Orbax checkpoints (state incl. PRNG keys, per-seed metrics, eval records)

Every file is written atomically (``jaxppo.run_io``), so a crash leaves the previous version intact.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import sys
import time
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxppo import config as config_lib
from jaxppo.algorithm import Algorithm
from jaxppo.checkpoint import CheckpointWriter, latest_checkpoint_update, restore_checkpoint
from jaxppo.parallel import (SeedLayout, broadcast_from_main, check_memory, evaluation_keys, host_memory_bytes,
                             is_main_process, seed_keys, tree_bytes)
from jaxppo.programs import compile_lanes, lane_evaluation_keys, lane_keys, lane_program, make_algorithm
import jaxppo.run_dir as run_directory
from jaxppo.run_dir import (CHECKPOINT_DIR, CONFIG_FILE, CURVE_FILE, DIAGNOSTICS_FILE, EVAL_FILE, METRICS_FILE,
                            PER_SEED_FILE, RUN_FILE, SUMMARY_FILE, check_run_dir, holds_run, read_run)
from jaxppo.run_io import RunInputError, atomic_write_json, atomic_write_npz, atomic_write_text, atomic_write_yaml
from jaxppo.run_records import (STATS, Records, aggregate_over_seeds, column_updates, columns_for, empty_records,
                                eval_record, metric_blocks, metric_lines, short)
from jaxppo.run_summary import diagnose_run as diagnose_run_files
from jaxppo.run_summary import final_run_evaluation, render_plots, sweep_groups, write_summary

__all__ = [
    "DEFAULT_NUM_SEEDS",
    "RunInputError",
    "ChunkRunner",
    "Lanes",
    "RunResult",
    "RateClock",
    "check_run_dir",
    "check_seed",
    "holds_run",
    "checked_algorithm",
    "chunk_size_for",
    "next_stop",
    "seed_keys",
    "evaluation_keys",
    "aggregate_over_seeds",
    "train_run",
    "resume_run",
    "evaluate_run",
    "save_evaluation",
    "render_plots",
    "diagnose_run",
    "load_policy",
    "load_run_state",
    "write_progress_files",
    "columns_for",
    "column_updates",
    "metric_blocks",
    "sweep_groups",
] + [name for name in run_directory.__all__ if name.isupper()]  # the run directory's file names

DEFAULT_NUM_SEEDS = 4

# Chunk plan -------------------------------------------------------------------------------

# A long run is cut into at least this many chunks, so the progress bar moves (a 5000-update DQN run
# with updates_per_chunk 5000 used to go from 0 to 100% in one jump); a chunk is never cut below
# _MIN_CHUNK updates for that, since each chunk costs a host round trip and metric writes.
_CHUNKS_PER_RUN = 10
_MIN_CHUNK = 50


def chunk_size_for(num_updates: int, updates_per_chunk: int, metrics_every: int = 1) -> int:
    """The longest chunk compiled: ``updates_per_chunk``, capped at a tenth of the run (but not below 50
    updates) so the progress bar moves, and a multiple of ``metrics_every`` so no block of recorded
    updates spans two chunks. ``next_stop`` ends a chunk earlier where an evaluation falls, so the
    evaluation interval does not shape the chunk (a prime interval such as 61 once forced chunks of one
    update: a host round trip and a progress line per update)."""
    every = max(1, metrics_every)
    chunk = max(1, min(updates_per_chunk, num_updates, max(-(-num_updates // _CHUNKS_PER_RUN), _MIN_CHUNK)))
    return max(every, chunk - chunk % every)


def next_stop(update: int, num_updates: int, chunk: int, eval_interval: int) -> int:
    """Where the chunk that starts after ``update`` ends: ``chunk`` updates on, or earlier at the next
    evaluation or at the run's end.

    Within one evaluation period the chunks are ``chunk`` long and the last one takes the rest, so a
    run compiles at most three chunk lengths; the stops depend on ``update`` alone, so a resumed run
    stops where the uninterrupted one did.
    """
    stop = min(update + chunk, num_updates)
    if 0 < eval_interval < num_updates:
        stop = min(stop, (update // eval_interval + 1) * eval_interval)
    return stop


class Lanes(NamedTuple):
    """What a run's leading axis holds: ``num_seeds`` seeds, or a sweep's settings x seeds.

    Lane ``g * num_seeds + s`` is grid point ``g`` (row-major over ``grid``) with seed ``s``; every
    setting uses the same training and evaluation keys (``jaxppo.api.sweep_lanes``). Without a grid
    there is one setting and lanes are seeds.
    """

    seed: int
    num_seeds: int
    grid: tuple[tuple[str, tuple[float, ...]], ...] = ()  # ((field, values), ...) in grid order

    @property
    def num_settings(self) -> int:
        return math.prod(len(values) for _, values in self.grid)

    @property
    def num_lanes(self) -> int:
        return self.num_settings * self.num_seeds

    def keys(self) -> jax.Array:
        return lane_keys(self.seed, self.num_seeds, self.num_settings)

    def evaluation_keys(self, update: int) -> jax.Array:
        return lane_evaluation_keys(self.seed, self.num_seeds, update, self.num_settings)

    def lane_configs(self, config: Any) -> Any:
        """The stacked per-lane config of a sweep, or None for plain seeds."""
        if not self.grid:
            return None
        from jaxppo.api import sweep_lanes

        return sweep_lanes(config, dict(self.grid), self.num_seeds, self.seed)[2]

    def grid_json(self) -> Optional[dict]:
        return {name: list(values) for name, values in self.grid} or None

    @classmethod
    def of_run(cls, run_info: Mapping[str, Any]) -> "Lanes":
        grid = tuple((name, tuple(values)) for name, values in (run_info.get("grid") or {}).items())
        return cls(int(run_info["seed"]), int(run_info["num_seeds"]), grid)


# Compiled pieces -----------------------------------------------------------------------------------

class ChunkRunner:
    """The lane-vmapped, jitted ``init``, ``run_updates`` (one program per chunk length) and ``evaluate``.

    A lane is one seed, or one (setting, seed) pair of a sweep: with ``lane_configs`` (a config
    stacked by ``jaxppo.stack_configs``, one entry per lane) each lane rebuilds the algorithm from its
    own numeric hyperparameters inside the program. Lanes are spread over ``devices`` (default: all)
    by ``jaxppo.parallel.SeedLayout``; the layout is fixed by the first call that sees the lane count.
    States passed between the methods are placed (padded, sharded); ``host`` brings any such tree
    back as unpadded numpy.

    ``trace_count`` counts traces of the chunk program: a second chunk of the same length must not
    add one. The state argument of a chunk is donated, so XLA may update it in place.
    """

    def __init__(self, algorithm: Algorithm, donate: bool = True, devices: Optional[Sequence[Any]] = None,
                 lane_configs: Any = None):
        self.algorithm = algorithm
        self.trace_count = 0
        self.layout: Optional[SeedLayout] = None
        self._donate = donate
        self._devices = devices
        self._lane_configs = lane_configs
        self._placed_configs: Any = None
        self._chunks: dict[int, Callable] = {}
        self._init: Optional[Callable] = None
        self._evaluate: Optional[Callable] = None

    # Lanes and placement.
    def _per_lane(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """``method(algorithm, *args)`` vmapped over lanes, as ``f(lane_configs, *args)``."""
        return lane_program(method, self.algorithm, stacked=self._lane_configs is not None)

    def _ensure_layout(self, num_lanes: int) -> SeedLayout:
        if self.layout is None:
            self.layout = SeedLayout.for_lanes(int(num_lanes), self._devices)
            if self._lane_configs is not None:
                self._placed_configs = self.layout.place(self._lane_configs)
        elif num_lanes not in (self.layout.num_lanes, self.layout.padded_lanes):
            raise ValueError(f"this runner holds {self.layout.num_lanes} lanes, got {num_lanes}.")
        return self.layout

    def place(self, tree: Any) -> Any:
        """A host tree with a leading lane axis (a restored state, say) padded and sharded."""
        layout = self._ensure_layout(jax.tree.leaves(tree)[0].shape[0])
        return layout.place(tree)

    def host(self, tree: Any) -> Any:
        """A placed tree as numpy on this process, gathered from all processes, padding removed."""
        return self.layout.to_host(tree)

    def check_memory(self, abstract_state: Any, specs: Mapping[str, tuple], chunk: int) -> int:
        """Estimated resident bytes per device (state incl. replay buffers, one chunk of metrics), or a
        ``RunInputError`` stating the estimate when it exceeds a device's memory."""
        num_lanes = jax.tree.leaves(abstract_state)[0].shape[0]
        layout = self._ensure_layout(num_lanes)
        metrics_per_update = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in specs.values())
        per_lane = tree_bytes(abstract_state) // num_lanes + chunk * metrics_per_update
        try:
            return check_memory(layout, per_lane, "training state and one chunk of metrics")
        except MemoryError as error:
            raise RunInputError(str(error)) from None

    # Programs.
    def init(self, keys: jax.Array) -> Any:
        layout = self._ensure_layout(keys.shape[0])
        if self._init is None:
            self._init = compile_lanes(self._per_lane(lambda algorithm, key: algorithm.init(key)),
                                       layout.platform, layout.sharding)
        return self._init(self._placed_configs, layout.place(keys))

    def abstract_state(self, keys: jax.Array) -> Any:
        """Shapes of the unpadded state for ``keys`` (what checkpoints hold), without running anything."""
        init = self._per_lane(lambda algorithm, key: algorithm.init(key))
        return jax.eval_shape(init, self._lane_configs, keys)

    def metric_specs(self, abstract_state: Any) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """``{name: (per-update shape, dtype)}`` of the metrics, without running anything."""
        one_update = self._per_lane(lambda algorithm, state: algorithm.run_updates(state, 1))
        _, metrics = jax.eval_shape(one_update, self._lane_configs, abstract_state)
        return {name: (tuple(m.shape[2:]), np.dtype(m.dtype)) for name, m in metrics.items()}

    def _chunk_program(self, num_updates: int) -> Callable:
        if num_updates not in self._chunks:
            lanes = self._per_lane(lambda algorithm, state: algorithm.run_updates(state, num_updates))

            def chunk(configs: Any, state: Any) -> tuple[Any, dict]:
                self.trace_count += 1  # runs at trace time only
                return lanes(configs, state)

            self._chunks[num_updates] = compile_lanes(chunk, self.layout.platform, self.layout.sharding,
                                                      donate_argnums=(1,) if self._donate else ())
        return self._chunks[num_updates]

    def run(self, state: Any, num_updates: int) -> tuple[Any, dict]:
        """``num_updates`` updates for every lane; metrics are ``[lanes, num_updates]`` (padded, on device)."""
        self._ensure_layout(jax.tree.leaves(state)[0].shape[0])
        return self._chunk_program(int(num_updates))(self._placed_configs, state)

    def evaluate(self, state: Any, keys: jax.Array) -> dict:
        """Greedy evaluation for every lane: ``{"eval_return": [L, E], "eval_length": [L, E]}`` (padded)."""
        layout = self._ensure_layout(keys.shape[0])
        if self._evaluate is None:
            self._evaluate = compile_lanes(self._per_lane(lambda algorithm, s, k: algorithm.evaluate(s, k)),
                                           layout.platform, layout.sharding)
        return self._evaluate(self._placed_configs, state, layout.place(keys))


# Host-side records ---------------------------------------------------------------------------------

def write_progress_files(run_dir: str, records: Records) -> None:
    """metrics.jsonl, metrics_per_seed.npz and eval.jsonl, each rewritten atomically, up to ``records.update``."""
    atomic_write_text(os.path.join(run_dir, METRICS_FILE), "".join(records.lines))
    atomic_write_npz(os.path.join(run_dir, PER_SEED_FILE), records.valid_per_seed())
    atomic_write_text(os.path.join(run_dir, EVAL_FILE),
                      "".join(json.dumps(r) + "\n" for r in records.eval_records))


class RunResult(NamedTuple):
    """What ``train_run`` / ``resume_run`` return: the run folder, its summary and final state."""

    run_dir: str
    summary: dict
    state: Any  # final training state, leading seed axis
    metrics: dict[str, np.ndarray]  # per seed, [num_seeds, num_updates]


@dataclasses.dataclass
class _RunContext:
    run_dir: str
    config: Any
    seed: int
    num_seeds: int  # lanes: seeds, or settings x seeds in a sweep
    chunk: int
    runner: ChunkRunner
    lanes: Lanes


# Training -----------------------------------------------------------------------------------------

def _device_description() -> str:
    device = jax.devices()[0]
    return f"{device.platform}:{getattr(device, 'device_kind', '')}".rstrip(":")


_MAX_SEED = 2**32 - 1


def check_seed(seed: Any, name: str = "seed") -> None:
    """A base seed must be an integer in [0, 2**32 - 1]: PRNGKey keeps 32 bits, so 2**32 would silently
    give the same keys as 0, and larger values overflow."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= _MAX_SEED:
        raise RunInputError(f"{name}={seed!r} must be an integer in [0, {_MAX_SEED}].")


def check_metric_history(num_lanes: int, specs: Mapping[str, tuple], num_updates: int, every: int) -> int:
    """Host bytes of the per-seed metric history (held twice while a checkpoint is written), or a
    ``RunInputError`` that names the ``run.metrics_every`` that would fit when it exceeds half of the
    machine's memory. Checked before anything is created or compiled."""
    per_update = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in specs.values())
    need = 2 * num_lanes * columns_for(num_updates, every) * per_update
    total = host_memory_bytes()
    if total is None or need <= total // 2:
        return need
    fits = every
    while fits < num_updates and 2 * num_lanes * columns_for(num_updates, fits) * per_update > total // 2:
        fits *= 2
    raise RunInputError(
        f"{num_lanes} seeds x {columns_for(num_updates, every)} recorded updates x {per_update} bytes of per-seed "
        f"metrics need about {need / 2**30:.2f} GiB of host memory (the record and its checkpoint copy), more than "
        f"half of this machine's {total / 2**30:.2f} GiB; set run.metrics_every={fits} (one column per {fits} "
        "updates; metrics.jsonl still keeps every update) or train fewer seeds.")


def checked_algorithm(config: Any, env: Any = None, env_params: Any = None) -> Algorithm:
    """``make_algorithm`` with its input errors (a DQN config on a continuous-action env, an env the
    config cannot use) as ``RunInputError``. It builds modules only; nothing is traced or compiled."""
    try:
        return make_algorithm(config, env, env_params)
    except ValueError as error:
        raise RunInputError(str(error)) from None


def train_run(config: Any, run_dir: str, num_seeds: int = DEFAULT_NUM_SEEDS, seed: int = 0,
              progress: bool = True, loggers: Sequence[Any] = (), config_name: Optional[str] = None,
              env: Any = None, env_params: Any = None, echo: Optional[Callable[[str], None]] = None,
              devices: Optional[Sequence[Any]] = None, grid: Optional[Mapping[str, Sequence[float]]] = None,
              force: bool = False) -> RunResult:
    """Trains ``num_seeds`` seeds of ``config`` in chunks, writing everything into ``run_dir``.

    Seed ``i`` starts from ``jax.random.split(PRNGKey(seed), num_seeds)[i]``, as in ``jaxppo.train``.
    ``echo`` receives one status line per chunk when ``progress`` is off (default: print). Seeds are
    spread over ``devices`` (default: all devices of all processes; ``jaxppo.parallel``).

    With ``grid`` (field -> values, as in ``jaxppo.sweep``) the run is a sweep: its lanes are every
    grid point x ``num_seeds`` seeds, trained, evaluated and checkpointed like seeds, and every
    per-seed file holds one row per lane (``run.json`` records the grid and the lane order).

    Inputs are checked before anything is created or compiled (``check_run_dir``; ``force`` writes into
    a non-empty directory that is not a run). Should anything fail before training starts, the files
    this call created are removed again, so no half-made run remains.
    """
    if not isinstance(num_seeds, int) or isinstance(num_seeds, bool) or num_seeds <= 0:
        raise RunInputError(f"num_seeds={num_seeds!r} must be a positive integer.")
    check_seed(seed)
    main = is_main_process()  # with several processes only process 0 touches the run directory
    if main:
        check_run_dir(run_dir, force)
    lanes = Lanes(seed, num_seeds)
    lane_configs = None
    if grid is not None:
        from jaxppo.api import check_grid

        try:
            names, values = check_grid(config, grid)
            lanes = Lanes(seed, num_seeds, tuple((name, values[name]) for name in names))
            lane_configs = lanes.lane_configs(config)
        except ValueError as error:
            raise RunInputError(str(error)) from None
    algorithm = checked_algorithm(config, env, env_params)
    chunk = chunk_size_for(config.num_updates, config.run.updates_per_chunk, config.run.metrics_every)
    runner = ChunkRunner(algorithm, devices=devices, lane_configs=lane_configs)
    keys = lanes.keys()
    abstract_state = runner.abstract_state(keys)
    specs = runner.metric_specs(abstract_state)
    runner.check_memory(abstract_state, specs, chunk)  # before anything is created or compiled
    check_metric_history(lanes.num_lanes, specs, config.num_updates, config.run.metrics_every)
    created = main and not os.path.exists(run_dir)
    written: list[str] = []
    try:
        if main:
            os.makedirs(run_dir, exist_ok=True)
            written.append(os.path.join(run_dir, CONFIG_FILE))
            atomic_write_yaml(written[-1], config_lib.config_to_dict(config))
        run_info = {
            "config_name": config_name or f"{config.algorithm}_{config.env}",
            "seed": seed,
            "num_seeds": num_seeds,
            "grid": lanes.grid_json(),
            "num_lanes": lanes.num_lanes,
            "num_updates": config.num_updates,
            "steps_per_update": config.steps_per_update,
            "chunk_size": chunk,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device": _device_description(),
            "devices": len(devices) if devices is not None else jax.device_count(),
            "processes": jax.process_count(),
            "jax_version": jax.__version__,
            "custom_env": env is not None,
        }
        if main:
            written.append(os.path.join(run_dir, RUN_FILE))
            atomic_write_json(written[-1], run_info)
        state = runner.init(keys)
        records = empty_records(specs, lanes.num_lanes, config.num_updates, config.run.metrics_every)
    except Exception:
        # Nothing trained yet: leave no half-made run behind. (An interrupt is not caught here: it
        # leaves config.yaml and run.json, a run that --resume starts from update 0.)
        for path in written:
            if os.path.exists(path):
                os.remove(path)
        if created and os.path.isdir(run_dir) and not os.listdir(run_dir):
            os.rmdir(run_dir)
        raise
    ctx = _RunContext(run_dir, config, seed, lanes.num_lanes, chunk, runner, lanes)
    return _train_loop(ctx, state, records, progress, loggers, echo)


def _restore(run_dir: str, config: Any, run_info: dict, runner: ChunkRunner
             ) -> tuple[Optional[Any], Optional[Records]]:
    """Latest checkpoint as (state, records), or (None, None) when none was committed yet."""
    checkpoint_dir = os.path.join(run_dir, CHECKPOINT_DIR)
    # With several processes, process 0 reads the checkpoint and sends it to the others.
    main = is_main_process()
    latest = latest_checkpoint_update(checkpoint_dir) if main else None
    latest = int(broadcast_from_main(np.int64(-1 if latest is None else latest)))
    if latest < 0:
        return None, None
    lanes = Lanes.of_run(run_info)
    num_seeds, every = lanes.num_lanes, config.run.metrics_every
    columns = columns_for(config.num_updates, every)
    abstract_state = runner.abstract_state(lanes.keys())
    specs = runner.metric_specs(abstract_state)
    target = {"state": abstract_state,
              "metrics": {n: jax.ShapeDtypeStruct((num_seeds, columns) + shape, dtype)
                          for n, (shape, dtype) in specs.items()}}
    if main:
        tree, meta, update = restore_checkpoint(checkpoint_dir, target, latest)
    else:
        tree, meta, update = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), target), {}, latest
    tree = broadcast_from_main(tree)
    per_seed = {name: np.array(values) for name, values in tree["metrics"].items()}
    if every == 1:
        lines = metric_lines(per_seed, 0, update, config.steps_per_update)
    else:  # the per-seed history holds blocks: every update's line comes from metrics.jsonl
        lines = _jsonl_lines_until(os.path.join(run_dir, METRICS_FILE), update) if main else []
    records = Records(per_seed, update, list(meta.get("eval_records", [])), float(meta.get("elapsed_s", 0.0)),
                      lines, every)
    # Checkpoints hold the unpadded state gathered on the host, so a run resumes on any device count.
    return runner.place(tree["state"]), records


def _jsonl_lines_until(path: str, update: int) -> list[str]:
    """metrics.jsonl's lines for updates 1..``update`` (written before the checkpoint they resume from)."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            lines = [line for line in handle if line.strip()]
    except OSError as error:
        raise RunInputError(f"cannot resume: {path!r} is unreadable ({error.strerror or error}).") from None
    kept = [line if line.endswith("\n") else line + "\n" for line in lines[:update]]
    if len(kept) != update or json.loads(kept[-1]).get("update") != update:
        raise RunInputError(f"cannot resume: {path!r} holds {len(lines)} updates, fewer than the checkpoint's "
                            f"{update} (run.metrics_every > 1 keeps every update's line only there).")
    return kept


def resume_run(run_dir: str, progress: bool = True, loggers: Sequence[Any] = (), env: Any = None,
               env_params: Any = None, echo: Optional[Callable[[str], None]] = None,
               devices: Optional[Sequence[Any]] = None) -> RunResult:
    """Continues ``run_dir`` from its latest checkpoint (from update 0 if none was saved yet).

    Metrics and evaluation files are first cut back to the checkpoint, so records written after it by
    the interrupted process are replaced by the resumed ones: the finished run directory equals that of
    an uninterrupted run. The device count may differ from the interrupted run's: checkpoints hold
    the unpadded state, placed again on ``devices`` (default: all).
    """
    config, run_info = read_run(run_dir)
    lanes = Lanes.of_run(run_info)
    runner = ChunkRunner(checked_algorithm(config, env, env_params), devices=devices,
                         lane_configs=lanes.lane_configs(config))
    ctx = _RunContext(run_dir, config, lanes.seed, lanes.num_lanes, run_info["chunk_size"], runner, lanes)
    state, records = _restore(run_dir, config, run_info, runner)
    if state is None:
        keys = lanes.keys()
        state = runner.init(keys)
        records = empty_records(runner.metric_specs(runner.abstract_state(keys)), ctx.num_seeds,
                                config.num_updates, config.run.metrics_every)
    if is_main_process():
        write_progress_files(run_dir, records)
    return _train_loop(ctx, state, records, progress, loggers, echo)


def _progress_text(records: Records) -> str:
    returns = records.per_seed["episode_return"][:, records.columns - 1]
    q25, median, q75 = np.percentile(returns, [25, 50, 75])
    text = f"return {median:.1f} (IQR {q25:.1f} to {q75:.1f})"  # "to": a hyphen reads as a minus sign
    if records.eval_records and records.eval_records[-1]["update"] == records.update:
        text += f" eval {records.eval_records[-1]['eval_return']['median']:.1f}"
    return text


class RateClock:
    """Steps per second and time left, measured from the end of this session's first chunk.

    The first chunk of a session includes compiling the chunk program (about 12 s of a 30 s CartPole
    run), so a rate that counts it makes the first ETAs several times too long. After the first chunk
    the text says so; from the second on it gives the rate over the chunks since the first, and the ETA
    at that rate. A later chunk of a length not run before (evaluation points cut a short run into
    chunks of two or three lengths) compiles its own program, so its time and steps are left out of the
    rate too; the clock tells chunk lengths apart by their steps. ``clock`` is there for tests.
    """

    def __init__(self, total_steps: int, steps_done: int, clock: Callable[[], float] = time.perf_counter):
        self._total = total_steps
        self._clock = clock
        self._start_steps: Optional[int] = None
        self._start_time: Optional[float] = None
        self._first_steps = steps_done
        self._last: tuple[int, float] = (steps_done, 0.0)
        self._left_out: tuple[int, float] = (0, 0.0)  # steps and seconds of later chunks that compiled
        self._chunk_sizes: set[int] = set()  # steps per chunk already run (each size compiled once)

    def chunk_done(self, steps_done: int) -> str:
        now = self._clock()
        last_steps, last_time = self._last
        self._last = (steps_done, now)
        compiled = steps_done - last_steps not in self._chunk_sizes
        self._chunk_sizes.add(steps_done - last_steps)
        if self._start_time is None:
            self._start_steps, self._start_time = steps_done, now
            if steps_done >= self._total:
                return "done"
            return "first chunk done (compiled); rate after the next"
        if compiled:
            steps_out, time_out = self._left_out
            self._left_out = (steps_out + steps_done - last_steps, time_out + now - last_time)
        steps_out, time_out = self._left_out
        counted_steps, counted_time = steps_done - self._start_steps - steps_out, now - self._start_time - time_out
        if counted_steps <= 0:
            return "compiled a chunk of another length; rate after the next"
        rate = counted_steps / max(counted_time, 1e-9)
        left = (self._total - steps_done) / max(rate, 1e-9)
        return f"{rate:,.0f} steps/s, ETA {_clock_text(left)}"


def _clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _train_loop(ctx: _RunContext, state: Any, records: Records, progress: bool, loggers: Sequence[Any],
                echo: Optional[Callable[[str], None]]) -> RunResult:
    from tqdm.auto import tqdm

    config = ctx.config
    num_updates, steps_per_update = config.num_updates, config.steps_per_update
    steps_all_seeds = steps_per_update * ctx.num_seeds
    # With several processes (jaxppo.parallel.initialize) every process runs this loop and takes part in
    # the gathers; only process 0 writes files, checkpoints and progress.
    main = is_main_process()
    echo = echo or (lambda line: print(line, flush=True))
    if not main:
        progress, loggers, echo = False, (), (lambda line: None)
    # tqdm's own rate and ETA would count the first chunk, which is mostly compilation; ours do not.
    bar = tqdm(total=num_updates * steps_all_seeds, initial=records.update * steps_all_seeds,
               unit="step", unit_scale=True, desc=f"{config.env} x{ctx.num_seeds} seeds", disable=not progress,
               dynamic_ncols=True, file=sys.stderr,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
    bar.set_postfix_str("compiling the first chunk", refresh=True)
    clock = RateClock(num_updates * steps_all_seeds, records.update * steps_all_seeds)
    writer: Optional[CheckpointWriter] = None
    session_start = time.perf_counter()
    elapsed_before = records.elapsed_s
    try:
        while records.update < num_updates:
            start = records.update
            stop = next_stop(start, num_updates, ctx.chunk, config.run.eval_interval)
            state, metrics = ctx.runner.run(state, stop - start)
            metrics = ctx.runner.host(metrics)
            records.store(start, metrics)
            records.update = stop
            # metrics.jsonl keeps every update (over seeds) even when the per-seed history keeps blocks.
            records.lines.extend(metric_lines(metrics, 0, stop - start, steps_per_update, first_update=start + 1))
            eval_interval = config.run.eval_interval
            if eval_interval > 0 and (stop % eval_interval == 0 or stop == num_updates):
                result = ctx.runner.host(ctx.runner.evaluate(state, ctx.lanes.evaluation_keys(stop)))
                records.eval_records.append(eval_record(stop, steps_per_update, result))
            records.elapsed_s = elapsed_before + (time.perf_counter() - session_start)
            if main:
                write_progress_files(ctx.run_dir, records)
            if loggers:
                _log_scalars(loggers, records, metrics, start, stop, steps_per_update)
            period = ctx.chunk * config.run.checkpoint_every_chunks
            if stop == num_updates or stop // period > start // period:
                # Gathered to the host (every process takes part) and saved unpadded by process 0: the
                # checkpoint is then independent of the device and process count it was made on.
                host_state = ctx.runner.host(state)
                if main:
                    if writer is None:
                        writer = CheckpointWriter(os.path.join(ctx.run_dir, CHECKPOINT_DIR))
                    writer.save(stop, {"state": host_state, "metrics": records.per_seed}, {
                        "update": stop,
                        "eval_records": records.eval_records,
                        "elapsed_s": records.elapsed_s,
                        "seed": ctx.seed,
                        "num_seeds": ctx.num_seeds,
                        "config": config_lib.config_to_dict(config),
                    })
            status = _progress_text(records)
            timing = clock.chunk_done(stop * steps_all_seeds)
            bar.set_postfix_str(f"{status}, {timing}", refresh=False)
            bar.update((stop - start) * steps_all_seeds)
            if not progress:
                echo(f"update {stop}/{num_updates}  env steps {stop * steps_per_update}/seed  {status}  {timing}")
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        for logger in loggers:
            logger.close()
    summary = write_summary(ctx.run_dir, config, ctx.seed, ctx.num_seeds, records, write=main)
    if main:
        render_plots(ctx.run_dir)
    return RunResult(ctx.run_dir, summary, state, records.valid_per_seed())


def _log_scalars(loggers: Sequence[Any], records: Records, chunk: Mapping[str, np.ndarray], start: int, stop: int,
                 steps_per_update: int) -> None:
    """Per update of the chunk (``chunk``: ``[S, stop - start]`` per metric), the median over seeds."""
    eval_by_update = {r["update"]: r for r in records.eval_records}
    for column in range(stop - start):
        update = start + column + 1
        scalars = {f"train/{name}": float(np.median(values[:, column]))
                   for name, values in chunk.items() if values.ndim == 2}
        if update in eval_by_update:
            scalars["eval/return_median"] = eval_by_update[update]["eval_return"]["median"]
            scalars["eval/length_median"] = eval_by_update[update]["eval_length"]["median"]
        for logger in loggers:
            logger.log(update, update * steps_per_update, scalars)


# Loading a finished (or checkpointed) run --------------------------------------------------------

class RunState(NamedTuple):
    config: Any
    run_info: dict
    algorithm: Algorithm
    state: Any  # leading lane axis, placed by ``runner``
    update: int
    runner: Optional[ChunkRunner] = None


def load_run_state(run_dir: str, eval_episodes: Optional[int] = None, env: Any = None,
                   env_params: Any = None) -> RunState:
    """The latest checkpoint of ``run_dir`` with its config and algorithm (``eval_episodes`` overrides
    the config's number of evaluation episodes)."""
    config, run_info = read_run(run_dir)
    if eval_episodes is not None:
        config = config_lib.apply_overrides(config, {"run.eval_episodes": eval_episodes})
    algorithm = checked_algorithm(config, env, env_params)
    if latest_checkpoint_update(os.path.join(run_dir, CHECKPOINT_DIR)) is None:
        raise RunInputError(f"{run_dir!r} has no checkpoint yet.")
    runner = ChunkRunner(algorithm, lane_configs=Lanes.of_run(run_info).lane_configs(config))
    state, records = _restore(run_dir, config, run_info, runner)
    return RunState(config, run_info, algorithm, state, records.update, runner)


def evaluate_run(run_dir: str, episodes: Optional[int] = None, seed: int = 0, env: Any = None,
                 env_params: Any = None) -> dict:
    """Greedy evaluation of every seed of the latest checkpoint: ``{"eval_return": [S, E], ...}``
    plus ``[S]`` held-out scores for envs that have them (``eval_f1`` ...).

    Episode ``e`` of seed ``i`` starts from the key ``evaluation_keys(seed, S, update)[i]`` gives
    ``algorithm.evaluate``; ``seed`` selects another set of evaluation episodes.
    """
    check_seed(seed)
    if episodes is not None and (not isinstance(episodes, int) or isinstance(episodes, bool) or episodes <= 0):
        raise RunInputError(f"episodes={episodes!r} must be a positive integer.")
    loaded = load_run_state(run_dir, episodes, env, env_params)
    keys = Lanes.of_run(loaded.run_info)._replace(seed=seed).evaluation_keys(loaded.update)
    result = loaded.runner.host(loaded.runner.evaluate(loaded.state, keys))
    return {"update": loaded.update, **{name: np.asarray(values) for name, values in result.items()}}


def diagnose_run(run_dir: str, thresholds: Any = None) -> tuple[Any, dict, Any]:
    """``(config, run_info, Diagnosis)`` of a run directory (``jaxppo.run_summary.diagnose_run``).

    A finished recurrent run whose ``eval.jsonl`` has no evaluation of its last update has its last
    checkpoint evaluated first (memory carried, and wiped at every step), because ``memory_unused`` is
    judged from that; nothing is written.
    """
    config, _ = read_run(run_dir)
    evaluation = None
    if getattr(config, "memory", "none") != "none" and final_run_evaluation(run_dir, config.num_updates) is None:
        try:
            result = evaluate_run(run_dir)
        except RunInputError:  # no checkpoint to evaluate: the metrics alone are diagnosed
            result = None
        if result is not None and result["update"] == config.num_updates:
            evaluation = {name: values for name, values in result.items() if name != "update"}
    return diagnose_run_files(run_dir, thresholds, evaluation)


def evaluation_file(update: int, seed: int = 0) -> str:
    """The name ``jaxppo eval`` saves an evaluation under: ``eval_<update>.json`` (``_seed<S>`` added
    for another evaluation seed), so re-evaluating the same checkpoint the same way replaces the file."""
    return f"eval_{update}.json" if seed == 0 else f"eval_{update}_seed{seed}.json"


def save_evaluation(run_dir: str, result: Mapping[str, Any], seed: int = 0) -> str:
    """Writes an ``evaluate_run`` result into the run directory atomically; returns the path.

    The file holds the update evaluated, the evaluation seed, episodes per seed, each seed's episode
    returns and lengths, and the statistics over seeds of the per-seed mean return (as in eval.jsonl).
    """
    returns = np.asarray(result["eval_return"], np.float64)  # [S, E]
    lengths = np.asarray(result["eval_length"], np.float64)
    per_seed = returns.mean(axis=1)
    stats = aggregate_over_seeds(per_seed)
    record = {
        "update": int(result["update"]),
        "evaluation_seed": seed,
        "episodes_per_seed": int(returns.shape[1]),
        "eval_return": {name: short(stats[name]) for name in STATS},
        "per_seed_mean_return": [short(v) for v in per_seed],
        "episode_returns": [[short(v) for v in row] for row in returns],
        "episode_lengths": [[int(v) for v in row] for row in lengths],
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    path = os.path.join(run_dir, evaluation_file(record["update"], seed))
    atomic_write_json(path, record)
    return path


def load_policy(run_dir: str, seed_index: int = 0, env: Any = None, env_params: Any = None) -> Callable:
    """A jitted ``act(obs, key=None) -> action`` running seed ``seed_index``'s deterministic policy.

    ``obs`` is one observation or a batch with a leading axis; ``key`` is only needed by policies that
    sample, and defaults to a fixed key. Loads the latest checkpoint of ``run_dir``.

    A recurrent policy (``memory: gru``) acts from its memory: ``act(obs, key=None, memory=None,
    reset=None) -> (action, memory)``; ``memory=None`` starts an episode, then pass back the memory it
    returned (``reset`` True where an observation starts a new episode).
    """
    loaded = load_run_state(run_dir, env=env, env_params=env_params)
    num_seeds = Lanes.of_run(loaded.run_info).num_lanes  # in a sweep, lane g * seeds + s
    if not isinstance(seed_index, int) or not 0 <= seed_index < num_seeds:
        raise RunInputError(f"seed_index={seed_index!r} must lie in [0, {num_seeds - 1}] for this run.")
    state = jax.tree.map(lambda x: x[seed_index], loaded.state)
    policy = loaded.algorithm.policy_of(state)
    act_fn = loaded.algorithm.act
    with_memory = loaded.algorithm.act_with_memory

    @jax.jit
    def act_jit(obs: jax.Array, key: jax.Array) -> jax.Array:
        return act_fn(policy, obs, key, deterministic=True)

    @jax.jit
    def act_memory_jit(obs: jax.Array, key: jax.Array, memory: jax.Array, reset: jax.Array) -> tuple:
        return with_memory(policy, obs, key, memory, reset, deterministic=True)

    expected = tuple(loaded.algorithm.env.observation_space(loaded.algorithm.env_params).shape)

    def act(obs: Any, key: Optional[jax.Array] = None, memory: Any = None, reset: Any = None) -> Any:
        obs = jnp.asarray(obs)
        one = obs.shape == expected
        batch = obs.ndim == len(expected) + 1 and obs.shape[1:] == expected
        if not (one or batch):
            raise RunInputError(f"observation of shape {obs.shape} given to the policy of {run_dir!r}, which expects "
                                f"one observation of shape {expected} or a batch of shape "
                                f"(N, {', '.join(map(str, expected))}).")
        key = jax.random.PRNGKey(0) if key is None else key
        if with_memory is None:
            return act_jit(obs, key)
        batch_shape = obs.shape[:1] if batch else ()
        if memory is None:
            memory, reset = loaded.algorithm.initial_memory(batch_shape), jnp.ones(batch_shape, bool)
        reset = jnp.zeros(batch_shape, bool) if reset is None else jnp.asarray(reset, bool)
        return act_memory_jit(obs, key, memory, reset)

    act.__doc__ = f"Deterministic action of seed {seed_index} of {run_dir} (update {loaded.update})."
    return act
