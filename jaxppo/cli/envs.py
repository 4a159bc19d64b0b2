"""``jaxppo envs``: the environment names that can be trained here, with their spaces."""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple, Optional


def add_parser(commands: Any) -> None:
    envs = commands.add_parser(
        "envs", help="list the environments that can be trained",
        description="List every registered environment name (gymnax's and jaxppo's own) that can be made\n"
                    "here, with its action space, observation shape, the algorithms that fit it and\n"
                    "whether 'jaxppo render' can draw it.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    envs.set_defaults(handler=run)


class EnvRow(NamedTuple):
    name: str
    action_space: str
    observation_shape: str
    algorithms: str
    render: str


def describe(name: str) -> EnvRow:
    """One line of the listing; raises whatever making the env raises (a missing download, say)."""
    from jaxppo.envs import action_spec, make_env, observation_shape
    from jaxppo.render import render_support

    env, params = make_env(name)
    spec = action_spec(env, params)
    if spec.discrete:
        space, algorithms = f"Discrete({spec.num_actions})", "ppo, dqn"
    else:
        low, high = float(spec.low.min()), float(spec.high.max())
        space, algorithms = f"Box({spec.num_actions},) in [{low:g}, {high:g}]", "ppo"
    problem: Optional[str] = render_support(name)
    return EnvRow(name, space, str(tuple(observation_shape(env, params))), algorithms,
                  "yes" if problem is None else "no")


# Environments whose constructor downloads a dataset: listing never touches the network, so these
# are described from their fixed spaces instead of being made (gymnax's MNISTBandit loads MNIST).
DOWNLOADS_ON_MAKE = {
    "MNISTBandit-bsuite": EnvRow("MNISTBandit-bsuite", "Discrete(10)", "(28, 28)", "ppo, dqn",
                                 "no (downloads MNIST when first made)"),
}


def run(args: argparse.Namespace) -> int:
    from jaxppo.envs import known_env_names

    from jaxppo.envs.core import SUITES, installed_suites, suite_of

    rows, unavailable = [], []
    for name in known_env_names():
        if suite_of(name) is not None:
            continue  # listed below by suite: making them here could download data (Sokoban, say)
        if name in DOWNLOADS_ON_MAKE:
            rows.append(DOWNLOADS_ON_MAKE[name])
            continue
        try:
            rows.append(describe(name))
        except Exception as error:  # noqa: BLE001 - an env that cannot be made here is reported, not fatal
            unavailable.append(f"{name} ({type(error).__name__}: {' '.join(str(error).split())[:80]})")
    headers = EnvRow("name", "action space", "observation", "algorithms", "render")
    widths = [max(len(getattr(r, f)) for r in rows + [headers]) for f in EnvRow._fields]
    for row in [headers] + rows:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
    if unavailable:
        print(f"cannot be made here: {'; '.join(unavailable)}")
    suite_names = [name for name in known_env_names() if suite_of(name) is not None]
    for suite, installed in installed_suites().items():
        if installed:
            names = [name for name in suite_names if name.startswith(suite + "/")]
            import importlib

            description = importlib.import_module(SUITES[suite].adapter).DESCRIPTION
            print(f"{suite} (installed, {len(names)} envs; {description}): " + ", ".join(names))
        else:
            print(f"{suite}: not installed; pip install 'jaxppo[{SUITES[suite].extra}]' adds its envs as {suite}/<name>")
    return 0
