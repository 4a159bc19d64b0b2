"""Making gymnax environments and describing their action spaces."""

from __future__ import annotations

import difflib
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from jaxppo.envs.wrappers import scale_rewards

__all__ = ["ActionSpec", "SUITES", "Suite", "action_spec", "adapt_suite_env", "has_action_mask", "installed_suites", "known_env_names",
           "legal_actions", "make_env", "observation_shape", "conv_input", "resolve_env", "suite_env_names", "suite_of"]


def _without_velocities(name: str, keep: tuple[int, ...]) -> Callable[[], Any]:
    def make() -> Any:
        import gymnax

        from jaxppo.envs.wrappers import MaskedObservation

        env, _ = gymnax.make(name)
        return MaskedObservation(env, keep)

    return make


def _own_envs() -> dict[str, Callable[[], Any]]:
    """Environments this package ships, by name, next to gymnax's (imported lazily)."""
    from jaxppo.envs.intrusion_detection import IntrusionDetection

    return {
        "IntrusionDetection-v0": IntrusionDetection,
        # Memory tasks: the velocities hidden, so a policy must infer them from past observations.
        "CartPole-NoVelocity-v1": _without_velocities("CartPole-v1", (0, 2)),  # cart position, pole angle
        "Pendulum-NoVelocity-v1": _without_velocities("Pendulum-v1", (0, 1)),  # cos and sin of the angle
    }


class Suite(NamedTuple):
    """An env suite beyond gymnax: the adapter module, the pip extra, the package it imports."""

    adapter: str
    extra: str
    package: str


# "<suite>/<the suite's own name>" -> its Suite. Each adapter imports its suite only when one of its envs
# is made or listed.
SUITES: dict[str, Suite] = {
    "brax": Suite("jaxppo.envs.brax", "brax", "brax"),
    "playground": Suite("jaxppo.envs.playground", "playground", "mujoco_playground"),
    "jumanji": Suite("jaxppo.envs.jumanji", "jumanji", "jumanji"),
    "craftax": Suite("jaxppo.envs.craftax", "craftax", "craftax"),
    "navix": Suite("jaxppo.envs.navix", "navix", "navix"),
    "xminigrid": Suite("jaxppo.envs.xminigrid", "xminigrid", "xminigrid"),
}


def suite_of(name: str) -> Optional[str]:
    """The suite prefix of ``name`` (``"jumanji"`` for ``"jumanji/Snake-v1"``), None for gymnax's and ours."""
    prefix = name.split("/", 1)[0] if "/" in name else None
    return prefix if prefix in SUITES else None


def _suite_adapter(suite: str, name: str) -> Any:
    """The suite's adapter module, or one ValueError line naming the extra to install."""
    import contextlib
    import importlib
    import io

    spec = SUITES[suite]
    try:
        # Quietly: a suite may print about optional backends it cannot find (brax's MuJoCo prints two
        # lines about warp), which would land in the middle of `jaxppo envs` and every run's output.
        with contextlib.redirect_stdout(io.StringIO()):
            adapter = importlib.import_module(spec.adapter)
            importlib.import_module(spec.package)
    except ImportError:
        raise ValueError(f"env={name!r} needs the {suite} package: pip install 'jaxppo[{spec.extra}]'.") from None
    return adapter


def installed_suites() -> dict[str, bool]:
    """Which suites can be imported here (``jaxppo envs`` lists what an extra would add)."""
    import importlib.util

    return {suite: importlib.util.find_spec(spec.package) is not None for suite, spec in SUITES.items()}


def suite_env_names(suite: str) -> list[str]:
    """``<suite>/<name>`` for every env of one installed suite (imports that suite only)."""
    return _suite_adapter(suite, suite + "/").registered_names()


def known_env_names(include_suites: bool = True) -> list[str]:
    """Every environment name ``make_env`` accepts: gymnax's registry, this package's own, and (with
    ``include_suites``) the envs of every installed suite as ``<suite>/<name>``, which imports them."""
    import gymnax

    names = list(gymnax.registered_envs) + sorted(_own_envs())
    if include_suites:
        for suite, installed in installed_suites().items():
            if installed:
                names += suite_env_names(suite)
    return names


def make_env(name: str) -> tuple[Any, Any]:
    """``(env, default params)`` for a gymnax, jaxppo or ``<suite>/<name>`` env name; an unknown name
    suggests the nearest, a suite that is not installed names its extra."""
    import gymnax

    suite = suite_of(name)
    if suite is not None:
        adapter = _suite_adapter(suite, name)
        if name not in adapter.registered_names():
            hint = difflib.get_close_matches(name, adapter.registered_names(), n=1)
            raise ValueError(f"env={name!r} is not a {suite} environment." + (f" Did you mean {hint[0]!r}?" if hint else ""))
        return adapter.make(name)
    own = _own_envs()
    if name in own:
        env = own[name]()
        return env, env.default_params
    names = known_env_names(include_suites=False)  # a plain name: no suite is imported (brax takes seconds)
    if name not in names:
        hint = difflib.get_close_matches(name, names, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"env={name!r} is not a gymnax environment.{extra}")
    return gymnax.make(name)


def resolve_env(name: str, env: Optional[Any], env_params: Optional[Any],
                reward_scale: Any = 1.0) -> tuple[Any, Any]:
    """The user's env object if given (with its default params if none), else ``make_env(name)``;
    rewards multiplied by ``reward_scale`` (``PPOConfig.env_reward_scale``) unless it is exactly 1."""
    if env is None:
        env, env_params = make_env(name)
        return scale_rewards(env, reward_scale), env_params
    adapted = adapt_suite_env(env, env_params)
    if adapted is not None:
        env, env_params = adapted
    if not all(hasattr(env, attr) for attr in ("reset", "step", "action_space", "observation_space")):
        raise ValueError(
            "env must be gymnax-compatible: reset(key, params), step(key, state, action, params) "
            "returning 6 values, action_space(params) and observation_space(params)."
        )
    if env_params is None:
        env_params = getattr(env, "default_params", None)
    return scale_rewards(env, reward_scale), env_params


def adapt_suite_env(env: Any, env_params: Optional[Any]) -> Optional[tuple[Any, Any]]:
    """A suite's own env object (a brax, Playground, Jumanji, Craftax, Navix or XLand-MiniGrid env, told
    apart by the package its class comes from) behind its jaxppo adapter, with ``(env, params)`` as
    ``make_env`` would give; None for any other object, which must then be gymnax-compatible."""
    import importlib

    packages = {cls.__module__.split(".", 1)[0] for cls in type(env).__mro__}
    for suite, spec in SUITES.items():
        if spec.package in packages:
            return importlib.import_module(spec.adapter).adapt(env, env_params)
    return None


def has_action_mask(env: Any) -> bool:
    """The env says which discrete actions are legal: it has ``action_mask(state, params) -> [num_actions]``
    bool (jaxppo's Jumanji adapter does; any env may)."""
    return callable(getattr(env, "action_mask", None))


def legal_actions(env: Any, env_params: Any, states: Any) -> Any:
    """``env.action_mask`` for a batch of env states: ``[N, num_actions]`` bool."""
    import jax

    return jax.vmap(env.action_mask, in_axes=(0, None))(states, env_params)


class ActionSpec(NamedTuple):
    """What a policy head needs to know: discrete with ``num_actions``, or a bounded box."""

    discrete: bool
    num_actions: int  # discrete: number of actions; continuous: action dimension
    low: Optional[np.ndarray]
    high: Optional[np.ndarray]


def action_spec(env: Any, env_params: Any) -> ActionSpec:
    """The env's action space as an ``ActionSpec`` (a box's bounds flattened to ``[action_dim]``)."""
    space = env.action_space(env_params)
    if hasattr(space, "n"):
        return ActionSpec(discrete=True, num_actions=int(space.n), low=None, high=None)
    shape = tuple(getattr(space, "shape", ()))
    if not shape:
        shape = (1,)
    size = int(np.prod(shape))
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape).reshape(size)
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape).reshape(size)
    return ActionSpec(discrete=False, num_actions=size, low=low, high=high)


def observation_shape(env: Any, env_params: Any) -> tuple[int, ...]:
    """The shape of one observation, without batch axes."""
    return tuple(env.observation_space(env_params).shape)


def conv_input(env: Any, env_params: Any, env_name: str, torso: str, conv_field: Optional[str]
               ) -> Optional[tuple[int, tuple[int, ...]]]:
    """What a ``torso: conv`` reads, checked before anything is built: ``None`` for a whole ``[H, W, C]``
    observation, or with ``conv_field`` the ``(offset, shape)`` of that field in the env's flat
    observation (the env's ``observation_fields``). Bad combinations raise one-line ``ValueError``s."""
    shape = observation_shape(env, env_params)
    if conv_field is not None:
        if torso != "conv":
            raise ValueError(f"conv_field={conv_field!r} names the field a conv torso reads; set torso: conv too.")
        fields = getattr(env, "observation_fields", None)
        if fields is None:
            raise ValueError(f"env={env_name!r} has no named observation fields for conv_field={conv_field!r} "
                             "(jaxppo's Jumanji adapter has them); leave conv_field out.")
        if conv_field not in fields or len(fields[conv_field][1]) != 3:
            grids = [name for name, (_, field_shape) in fields.items() if len(field_shape) == 3]
            raise ValueError(f"conv_field={conv_field!r} is not a [height, width, channels] field of env={env_name!r}'s "
                             f"observation; its grid fields: {grids or 'none'}.")
        return fields[conv_field]
    if torso == "conv" and len(shape) != 3:
        raise ValueError(f"torso='conv' needs [height, width, channels] observations; env={env_name!r} gives "
                         f"shape {shape}. Use torso: mlp, or conv_field: <a grid field> where the env names its fields.")
    return None
