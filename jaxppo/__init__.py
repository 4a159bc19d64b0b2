"""jaxppo: PPO and DQN as compiled, seed-vmapped JAX programs with every stability control in config."""

from jaxppo.algorithm import Algorithm
from jaxppo.api import SweepResult, make_algorithm, make_train, stack_configs, sweep, train
from jaxppo import stats
from jaxppo.config import DQNConfig, PPOConfig, RunSettings, apply_overrides, config_to_dict, load_config
from jaxppo.diagnose import Diagnosis, Thresholds, diagnose

__version__ = "0.1.0"

__all__ = [
    "Algorithm",
    "DQNConfig",
    "Diagnosis",
    "PPOConfig",
    "RunSettings",
    "SweepResult",
    "Thresholds",
    "apply_overrides",
    "config_to_dict",
    "diagnose",
    "load_config",
    "make_algorithm",
    "make_train",
    "stack_configs",
    "stats",
    "sweep",
    "train",
]


def __getattr__(name: str):
    # load_policy lives on the run-loop floor; import it lazily so `import jaxppo` stays light.
    if name == "load_policy":
        from jaxppo.runner import load_policy

        return load_policy
    raise AttributeError(f"module 'jaxppo' has no attribute {name!r}")
