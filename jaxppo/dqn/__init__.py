"""Deep Q-learning: Q-networks, TD losses, a replay buffer carried as pure state, and the train step.

``jaxppo.dqn.losses``, ``jaxppo.dqn.buffer`` and ``jaxppo.dqn.networks`` are building blocks that
import no training loop; the names below load ``jaxppo.dqn.train`` on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DQNContext", "DQNPolicy", "DQNState", "make_algorithm"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("jaxppo.dqn.train"), name)
    raise AttributeError(f"module 'jaxppo.dqn' has no attribute {name!r}")
