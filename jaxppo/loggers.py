"""Optional experiment trackers (TensorBoard via tensorboardX, Weights & Biases), off by default.

Each is imported only when asked for, so ``import jaxppo`` never touches them or the network. They
receive the same aggregated scalars as ``metrics.jsonl`` (median over seeds per metric per update).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from jaxppo.run_io import RunInputError

__all__ = ["Logger", "TensorBoardLogger", "WandbLogger"]


class Logger:
    """Interface: ``log(update, env_steps, scalars)`` per update, ``close()`` at the end."""

    def log(self, update: int, env_steps: int, scalars: Mapping[str, float]) -> None:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        pass


class TensorBoardLogger(Logger):
    """Event files in ``<run_dir>/tensorboard``; needs ``pip install jaxppo[tensorboard]``."""

    def __init__(self, run_dir: str):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise RunInputError("--tensorboard needs tensorboardX: pip install 'jaxppo[tensorboard]'.") from None
        self._writer = SummaryWriter(os.path.join(run_dir, "tensorboard"))

    def log(self, update: int, env_steps: int, scalars: Mapping[str, float]) -> None:
        for name, value in scalars.items():
            self._writer.add_scalar(name, value, env_steps)

    def close(self) -> None:
        self._writer.close()


class WandbLogger(Logger):
    """A Weights & Biases run; needs ``pip install jaxppo[wandb]`` and a login (or WANDB_MODE=offline)."""

    def __init__(self, run_dir: str, config: Mapping[str, Any], project: Optional[str] = None,
                 resume_id: Optional[str] = None):
        try:
            import wandb
        except ImportError:
            raise RunInputError("--wandb needs wandb: pip install 'jaxppo[wandb]'.") from None
        self._run = wandb.init(project=project or "jaxppo", dir=run_dir, config=dict(config),
                               name=os.path.basename(os.path.abspath(run_dir)), id=resume_id,
                               resume="allow" if resume_id else None)
        self.run_id = self._run.id

    def log(self, update: int, env_steps: int, scalars: Mapping[str, float]) -> None:
        self._run.log({"update": update, **scalars}, step=env_steps)

    def close(self) -> None:
        self._run.finish()
