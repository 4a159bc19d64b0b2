"""jaxppo: PPO and DQN as compiled, seed-vmapped JAX programs with every stability control in config.

The public names below are imported on first use (PEP 562), so importing one building block
(``jaxppo.returns``, ``jaxppo.running_stats``, ``jaxppo.transforms``, ``jaxppo.ppo.losses`` ...)
loads that block and what it needs, never the training loops, the env suites, the CLI or plotting.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "Algorithm": "jaxppo.algorithm",
    "DQNConfig": "jaxppo.config",
    "Diagnosis": "jaxppo.diagnosis.core",
    "PPOConfig": "jaxppo.config",
    "RunSettings": "jaxppo.config",
    "SweepResult": "jaxppo.api",
    "Thresholds": "jaxppo.diagnosis.core",
    "apply_overrides": "jaxppo.config",
    "config_to_dict": "jaxppo.config",
    "diagnose": "jaxppo.diagnosis.core",
    "load_config": "jaxppo.config",
    "load_policy": "jaxppo.runner",
    "make_algorithm": "jaxppo.programs",
    "make_train": "jaxppo.programs",
    "stack_configs": "jaxppo.programs",
    "sweep": "jaxppo.api",
    "train": "jaxppo.api",
}
_SUBMODULES = ("stats",)

__all__ = sorted(name for name in _EXPORTS if name != "load_policy") + list(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"jaxppo.{name}")
    raise AttributeError(f"module 'jaxppo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))
