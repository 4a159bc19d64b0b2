"""Proximal Policy Optimization: networks, losses and the compiled train step.

``jaxppo.ppo.losses`` and ``jaxppo.ppo.networks`` are building blocks that import no training loop;
``PPOState`` and ``make_algorithm`` load ``jaxppo.ppo.train`` on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["PPOState", "make_algorithm"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("jaxppo.ppo.train"), name)
    raise AttributeError(f"module 'jaxppo.ppo' has no attribute {name!r}")
