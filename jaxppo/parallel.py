"""Lanes of seed-stacked programs: the keys each seed starts from, and their placement on one mesh axis
over seeds, across devices and hosts.

``seed_keys`` is the one definition of which key seed ``i`` trains from (``jaxppo.train``, sweeps, the
runner's chunked and resumed runs, lab cells, verification and the benchmarks all call it), so runs of
the same keys agree by construction; ``evaluation_keys`` is its counterpart for evaluations.

Every jaxppo program is ``vmap`` over independent lanes (seeds, or settings x seeds in a sweep), so
spreading it over devices needs no change to any algorithm: put the lanes' leading axis on a
one-dimensional ``Mesh`` named ``"seeds"`` (``NamedSharding(mesh, P("seeds"))``), jit with that
sharding on the inputs and outputs, and XLA's SPMD partitioner gives each device its block of lanes.
Lanes never talk to each other, so the partitioned program needs no collectives while it trains.

Seeds that do not divide the device count are **padded**, not rejected: the lane axis is extended to
the next multiple of the device count by repeating the last lane, and the copies are cut off on the
way back to the host. Padding costs no wall time on balanced hardware (each device runs
``ceil(S / D)`` lanes either way) and keeps the defaults working everywhere (4 seeds on an 8-GPU
node); rejecting would make ``--seeds`` depend on the machine. The copies compute exactly what the
lane they copy computes, so they change nothing.

Several hosts (``initialize``): every process runs the same program over a global mesh of all
processes' devices; each holds the lanes of its own devices, and ``to_host`` gathers the full
arrays on every process (metrics are small: ``[lanes, updates]`` scalars).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["SEED_AXIS", "seed_keys", "evaluation_keys", "SeedLayout", "seed_mesh", "initialize", "is_main_process", "to_host_global",
           "broadcast_from_main", "tree_bytes", "device_memory_bytes", "check_memory"]

SEED_AXIS = "seeds"
_EVAL_STREAM = 0x5EED  # evaluation draws from its own key stream, so turning it on or off never changes training


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """Seed ``i`` trains from ``split(PRNGKey(seed), num_seeds)[i]``, ``[num_seeds, 2]``: a run with more
    seeds reproduces the first seeds of a smaller one."""
    return jax.random.split(jax.random.PRNGKey(seed), num_seeds)


def evaluation_keys(seed: int, num_seeds: int, update: int) -> jax.Array:
    """Per-seed evaluation keys for the evaluation after ``update`` updates, ``[num_seeds, 2]``: a function
    of the update index alone, so evaluations are reproducible across chunk sizes and resumes."""
    base = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), _EVAL_STREAM), num_seeds)
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(base, update)


def seed_mesh(devices: Optional[Sequence[Any]] = None) -> Mesh:
    """A one-axis mesh named ``"seeds"`` over ``devices`` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("seed_mesh needs at least one device.")
    return Mesh(np.asarray(devices, dtype=object), (SEED_AXIS,))


@dataclasses.dataclass(frozen=True)
class SeedLayout:
    """How ``num_lanes`` independent lanes sit on a mesh: padded to a multiple of the device count.

    ``place`` pads a host or device tree whose leaves share a leading lane axis and shards it;
    ``to_host`` gathers such a tree to numpy on every process and cuts the padding off again.
    """

    mesh: Mesh
    num_lanes: int

    def __post_init__(self):
        if not isinstance(self.num_lanes, int) or self.num_lanes <= 0:
            raise ValueError(f"num_lanes={self.num_lanes!r} must be a positive integer.")

    @classmethod
    def for_lanes(cls, num_lanes: int, devices: Optional[Sequence[Any]] = None) -> "SeedLayout":
        return cls(seed_mesh(devices), num_lanes)

    @property
    def num_devices(self) -> int:
        return int(self.mesh.devices.size)

    @property
    def platform(self) -> str:
        """The devices' platform (``"cpu"``, ``"gpu"``, ...), which picks the compiler options."""
        return str(self.mesh.devices.flat[0].platform)

    @property
    def padded_lanes(self) -> int:
        return math.ceil(self.num_lanes / self.num_devices) * self.num_devices

    @property
    def lanes_per_device(self) -> int:
        return self.padded_lanes // self.num_devices

    @property
    def sharding(self) -> NamedSharding:
        """Leading (lane) axis split over the mesh, other axes whole."""
        return NamedSharding(self.mesh, PartitionSpec(SEED_AXIS))

    def _pad_host(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.shape[:1] != (self.num_lanes,):
            raise ValueError(f"expected a leading lane axis of {self.num_lanes}, got shape {x.shape}.")
        extra = self.padded_lanes - self.num_lanes
        if extra:
            x = np.concatenate([x, np.repeat(x[-1:], extra, axis=0)], axis=0)
        return x

    def place(self, tree: Any) -> Any:
        """``tree`` (leaves ``[num_lanes, ...]``, on host or device) padded and sharded over the mesh.

        Built with ``make_array_from_callback``, so on several processes each one materialises only
        its own devices' blocks; every process must pass the same values (they do: keys and restored
        checkpoints are the same everywhere).
        """
        sharding = self.sharding

        def put(leaf: Any) -> jax.Array:
            if isinstance(leaf, jax.Array) and leaf.sharding == sharding and leaf.shape[0] == self.padded_lanes:
                return leaf
            host = self._pad_host(to_host_global(leaf))
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

        return jax.tree.map(put, tree)

    def to_host(self, tree: Any) -> Any:
        """Numpy copy of a placed tree, gathered from every process, without the padding lanes."""
        return jax.tree.map(lambda leaf: to_host_global(leaf)[: self.num_lanes], tree)


def to_host_global(x: Any) -> np.ndarray:
    """A numpy copy of ``x``; arrays spread over several processes are gathered first."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))


def broadcast_from_main(tree: Any) -> Any:
    """Process 0's value of ``tree`` on every process (itself when there is one process).

    Every process must call it with a tree of the same structure, shapes and dtypes.
    """
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(tree))


def is_main_process() -> bool:
    """True on process 0, the one that writes run directories and checkpoints."""
    return jax.process_index() == 0


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None, local_device_ids: Optional[Sequence[int]] = None,
               cpu_collectives: str = "gloo", timeout_s: int = 300) -> None:
    """Joins this process to a multi-process JAX run (``jax.distributed.initialize``).

    Call it before anything touches a device. Without arguments JAX detects the cluster where it
    can (SLURM, Open MPI, Cloud TPU pods); pass all three of ``coordinator_address`` ("host:port" of
    process 0), ``num_processes`` and ``process_id`` elsewhere. On CPU-only processes the
    cross-process collectives (used to gather metrics) go through ``cpu_collectives`` (gloo).
    ``timeout_s`` bounds the wait for the other processes. Calling it again does nothing.
    """
    given = [coordinator_address is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError("pass all of coordinator_address, num_processes and process_id, or none of them "
                         "to let JAX detect the cluster (SLURM, Open MPI, Cloud TPU).")
    if jax.distributed.is_initialized():
        return
    if cpu_collectives:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    kwargs: dict[str, Any] = {}
    if coordinator_address is not None:
        kwargs.update(coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id)
    if local_device_ids is not None:
        kwargs["local_device_ids"] = list(local_device_ids)
    jax.distributed.initialize(initialization_timeout=timeout_s, **kwargs)


# Memory ------------------------------------------------------------------------------------------

def tree_bytes(tree: Any) -> int:
    """Bytes of every array (or ``ShapeDtypeStruct``) leaf of ``tree``."""
    return int(sum(math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(tree)))


def host_memory_bytes() -> Optional[int]:
    """This machine's physical memory (None when the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def device_memory_bytes(device: Any) -> Optional[int]:
    """Memory one device may use: the allocator's limit on GPU / TPU; on CPU the machine's physical
    memory shared by its local CPU devices. None when unknown."""
    try:
        stats = device.memory_stats()
    except Exception:  # some backends do not implement it
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    if device.platform == "cpu":
        total = host_memory_bytes()
        if total is None:
            return None
        return int(total // max(1, len([d for d in jax.local_devices() if d.platform == "cpu"])))
    return None


def _gib(num_bytes: float) -> str:
    return f"{num_bytes / 2**30:.2f} GiB" if num_bytes >= 2**28 else f"{num_bytes / 2**20:.1f} MiB"


def check_memory(layout: SeedLayout, bytes_per_lane: int, what: str = "training state") -> int:
    """Raises ``MemoryError`` (one line, with the estimate) when ``layout``'s lanes cannot fit a device.

    ``bytes_per_lane`` is what one lane keeps resident (exact for the state: from ``jax.eval_shape``).
    Returns the estimated bytes per device. XLA's scratch (rollouts, activations) comes on top, so
    passing this check is necessary, not sufficient; docs/scaling.md gives the full formula.
    """
    per_device = bytes_per_lane * layout.lanes_per_device
    device = layout.mesh.devices.flat[0]
    limit = device_memory_bytes(device)
    if limit is not None and per_device > limit:
        raise MemoryError(
            f"{layout.num_lanes} seeds need about {_gib(per_device)} per device for the {what} alone "
            f"({_gib(bytes_per_lane)} per seed x {layout.lanes_per_device} seeds on each of {layout.num_devices} "
            f"{device.platform} devices), more than the {_gib(limit)} a device has; use fewer seeds, a smaller "
            "buffer_size / num_envs, or more devices.")
    return per_device
