"""The public entry points: train many seeds at once, or a grid of settings x seeds in one program (built by ``jaxppo.programs``)."""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import math
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import jax
from jax.sharding import NamedSharding, PartitionSpec

from jaxppo.config import _nearest_key
from jaxppo.parallel import SEED_AXIS, SeedLayout, seed_keys
from jaxppo.programs import (compile_lanes, lane_configs, lane_keys, lane_program, make_algorithm, train_to_end)

__all__ = ["train", "sweep", "SweepResult", "check_grid",
           "sweep_lanes", "grid_settings"]


def train(config: Any, num_seeds: int = 1, seed: int = 0, env: Any = None,
          env_params: Optional[Any] = None, devices: Optional[Sequence[Any]] = None) -> tuple[Any, dict]:
    """Trains ``num_seeds`` independent seeds at once; results carry a leading seed axis.

    Seed ``i`` uses ``jax.random.split(jax.random.PRNGKey(seed), num_seeds)[i]``, so a run with more
    seeds reproduces the first seeds of a smaller one. The seeds are spread over ``devices`` (default:
    all of them, ``jaxppo.parallel``); the results equal a one-device run's.
    """
    if not isinstance(num_seeds, int) or isinstance(num_seeds, bool) or num_seeds <= 0:
        raise ValueError(f"num_seeds={num_seeds!r} must be a positive integer.")
    layout = SeedLayout.for_lanes(num_seeds, devices)
    keys = layout.place(seed_keys(seed, num_seeds))
    if env is None and env_params is None:
        program = _compiled_train(config, layout.mesh)
    else:
        program = _user_env_program(("train", config, layout.mesh), env, env_params, lambda: compile_lanes(
            lane_program(train_to_end, make_algorithm(config, env, env_params)), layout.platform, layout.sharding))
    return unpad_lanes(layout, program(None, keys))


@functools.lru_cache(maxsize=16)
def _compiled_train(config: Any, mesh: Any) -> Callable[[Any, jax.Array], tuple[Any, dict]]:
    """One jitted, seed-vmapped program per (hashable, frozen) config and mesh, so repeated calls do not retrace."""
    return compile_lanes(lane_program(train_to_end, make_algorithm(config)), _mesh_platform(mesh),
                         NamedSharding(mesh, PartitionSpec(SEED_AXIS)))


_USER_ENV_PROGRAMS: "collections.OrderedDict[tuple, tuple[Any, Any, Callable]]" = collections.OrderedDict()
_USER_ENV_PROGRAMS_KEPT = 8


def _user_env_program(key: tuple, env: Any, env_params: Any, build: Callable[[], Callable]) -> Callable:
    """The program ``build()`` makes around a user's env object, reused while the same objects come back.

    Env objects need not be hashable, so entries are keyed by their identities; each entry holds its
    objects, so no other object can take their ids while it lives, and ``is`` confirms a hit. An env
    object is taken to be unchanged between calls (gymnax envs are stateless)."""
    full_key = key + (id(env), id(env_params))
    hit = _USER_ENV_PROGRAMS.get(full_key)
    if hit is not None and hit[0] is env and hit[1] is env_params:
        _USER_ENV_PROGRAMS.move_to_end(full_key)
        return hit[2]
    program = build()
    _USER_ENV_PROGRAMS[full_key] = (env, env_params, program)
    while len(_USER_ENV_PROGRAMS) > _USER_ENV_PROGRAMS_KEPT:
        _USER_ENV_PROGRAMS.popitem(last=False)
    return program


def _mesh_platform(mesh: Any) -> str:
    return str(mesh.devices.flat[0].platform)


def unpad_lanes(layout: SeedLayout, tree: Any) -> Any:
    """``tree``'s leaves cut back to the layout's real lanes (a no-op, keeping the sharding, without padding)."""
    if layout.padded_lanes == layout.num_lanes:
        return tree
    return jax.tree.map(lambda x: x[: layout.num_lanes], tree)


# Sweeps ------------------------------------------------------------------------------------------

class SweepResult(NamedTuple):
    """A grid of settings x seeds trained in one program; arrays carry one leading axis per name in ``axes``.

    ``axes`` is the swept fields in the grid's order, then ``"seed"``: ``metrics[name][i, j, s, u]`` is
    update ``u`` of seed ``s`` at ``values[axes[0]][i]``, ``values[axes[1]][j]``.
    """

    axes: tuple[str, ...]
    values: dict[str, tuple[float, ...]]
    state: Any  # leaves [*grid shape, num_seeds, ...]
    metrics: dict[str, jax.Array]  # [*grid shape, num_seeds, num_updates, ...]

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(len(self.values[name]) for name in self.axes[:-1])

    def settings(self) -> list[dict[str, float]]:
        """Every grid point as ``{field: value}``, in the row-major order of the leading axes."""
        return grid_settings(self.axes[:-1], self.values)


def grid_settings(names: Sequence[str], values: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The grid's points in row-major order (the last field varies fastest)."""
    return [dict(zip(names, point)) for point in itertools.product(*(values[name] for name in names))]


def check_grid(config: Any, grid: Mapping[str, Sequence[Any]]) -> tuple[tuple[str, ...], dict[str, tuple[float, ...]]]:
    """``(names, values)`` of a sweep grid, or a one-line ``ValueError`` naming the offending field.

    Only numeric hyperparameters (pytree leaves of the config) can share one program; sizes and modes
    are static fields that fix its shape.
    """
    if not grid:
        raise ValueError("the sweep grid is empty; give at least one field with a list of values.")
    fields = {field.name: field for field in dataclasses.fields(config)}
    names, values = [], {}
    for name, raw in grid.items():
        if name not in fields:
            hint = _nearest_key(name, list(fields))
            extra = f" (did you mean {hint!r}?)" if hint else ""
            raise ValueError(f"{type(config).__name__} has no field {name!r} to sweep{extra}.")
        if not fields[name].metadata.get("pytree_node", True):
            raise ValueError(f"{name!r} is a static field (it fixes the program's shape or code), so it cannot be "
                             "swept in one program; sweep numeric hyperparameters only, or run one job per value.")
        raw = list(raw) if isinstance(raw, (list, tuple)) else [raw]
        if not raw:
            raise ValueError(f"the grid gives no values for {name!r}.")
        for value in raw:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name}={value!r} in the grid is not a finite number.")
        if len(set(raw)) != len(raw):
            raise ValueError(f"the grid repeats a value of {name!r}: {raw}.")
        names.append(name)
        values[name] = tuple(float(v) for v in raw)
    return tuple(names), values


def sweep_lanes(config: Any, grid: Mapping[str, Sequence[Any]], num_seeds: int, seed: int = 0
                ) -> tuple[tuple[str, ...], dict[str, tuple[float, ...]], Any, jax.Array]:
    """``(names, values, lane_configs, keys)``: the sweep as ``settings x seeds`` independent lanes.

    Lane ``g * num_seeds + s`` trains grid point ``g`` (row-major) with seed key ``s`` of
    ``split(PRNGKey(seed), num_seeds)``: every setting sees the same seeds, so its seed ``s`` equals
    ``jaxppo.train(that config, num_seeds, seed)``'s seed ``s``, and settings compare on common noise.
    ``lane_configs`` is ``stack_configs`` of the grid's configs, each repeated ``num_seeds`` times.
    """
    if not isinstance(num_seeds, int) or isinstance(num_seeds, bool) or num_seeds <= 0:
        raise ValueError(f"num_seeds={num_seeds!r} must be a positive integer.")
    names, values = check_grid(config, grid)
    configs = []
    for point in grid_settings(names, values):
        try:
            configs.append(config.replace(**point))
        except ValueError as error:
            raise ValueError(f"grid point {point}: {error}") from None
    return names, values, lane_configs(configs, num_seeds), lane_keys(seed, num_seeds, len(configs))


def sweep(config: Any, grid: Mapping[str, Sequence[float]], num_seeds: int = 1, seed: int = 0, env: Any = None,
          env_params: Optional[Any] = None, devices: Optional[Sequence[Any]] = None) -> SweepResult:
    """Trains every point of ``grid`` (field -> values) x ``num_seeds`` seeds in one compiled program.

    ``jaxppo.sweep(config, {"learning_rate": [1e-4, 3e-4], "clip_epsilon": [0.1, 0.2]}, num_seeds=8)``
    returns arrays ``[2, 2, 8, ...]`` with ``axes == ("learning_rate", "clip_epsilon", "seed")``. Lanes
    (settings x seeds) are spread over ``devices`` like seeds in ``train``. Results equal separate
    ``train`` calls to float32 rounding: here the hyperparameters are traced values, there constants.
    """
    names, values, configs_per_lane, keys = sweep_lanes(config, grid, num_seeds, seed)
    layout = SeedLayout.for_lanes(int(keys.shape[0]), devices)
    if env is None and env_params is None:
        program = _compiled_sweep(layout.mesh)
    else:
        program = _user_env_program(("sweep", config, layout.mesh), env, env_params, lambda: compile_lanes(
            lane_program(train_to_end, make_algorithm(config, env, env_params), stacked=True), layout.platform,
            layout.sharding))
    state, metrics = unpad_lanes(layout, program(layout.place(configs_per_lane), layout.place(keys)))
    leading = tuple(len(values[name]) for name in names) + (num_seeds,)
    unflatten = lambda x: x.reshape(leading + x.shape[1:])  # noqa: E731
    return SweepResult(names + ("seed",), values, jax.tree.map(unflatten, state), jax.tree.map(unflatten, metrics))


@functools.lru_cache(maxsize=8)
def _compiled_sweep(mesh: Any) -> Callable[[Any, jax.Array], tuple[Any, dict]]:
    """One jitted lane-vmapped program per mesh; jit's own cache keys it by the config's static fields."""
    return compile_lanes(lane_program(train_to_end, stacked=True), _mesh_platform(mesh),
                         NamedSharding(mesh, PartitionSpec(SEED_AXIS)))
