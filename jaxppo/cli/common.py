"""What every ``jaxppo`` verb shares: the one-line usage error, the parser class, config lookup."""

from __future__ import annotations

import argparse
import os
from typing import Any, Optional

__all__ = ["UsageError", "Parser", "DEFAULT_CONFIG", "resolve_config"]

DEFAULT_CONFIG = "ppo_cartpole.yaml"


class UsageError(Exception):
    """Bad input: reported as one line and exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(f"{message} (see '{self.prog} --help')")


def resolve_config(name: Optional[str]) -> tuple[Any, str]:
    """``(config, config_name)`` for a CONFIG argument; see the ``train --help`` epilog for the search order."""
    from jaxppo.config import configs_dir, load_config

    if name is None:
        return load_config(os.path.join(configs_dir(), DEFAULT_CONFIG)), DEFAULT_CONFIG[: -len(".yaml")]
    candidates = [name]
    if not os.path.exists(name):
        for folder in (os.path.join(os.getcwd(), "configs"), configs_dir()):
            candidates += [os.path.join(folder, name), os.path.join(folder, name + ".yaml")]
    for path in candidates:
        if os.path.isfile(path):
            return load_config(path), os.path.splitext(os.path.basename(path))[0]
    if os.path.isdir(name):
        raise ValueError(f"config {name!r} is a directory, not a YAML file (to continue a run use --resume {name}).")
    # Lets load_config name the nearest bundled config in its message.
    return load_config(name), os.path.splitext(os.path.basename(name))[0]


