"""The examples in examples/ run from a clean interpreter and learn, at a small size.

Each is PPO or DQN written from jaxppo's building blocks alone; at full size they match
``jaxppo.train`` on CartPole (docs/building_blocks.md has the numbers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RANDOM_RETURN = 21.1  # CartPole-v1 under a uniform random policy (jaxppo.diagnosis.core.ENV_FACTS)


def run_example(name: str, steps: int) -> dict:
    result = subprocess.run([sys.executable, os.path.join(REPO, "examples", f"{name}.py"), "--total-timesteps",
                             str(steps), "--seeds", "2"], capture_output=True, text=True, check=True, timeout=600)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("name, steps, at_least", [("ppo_cartpole", 40_960, 80.0), ("dqn_cartpole", 30_000, 40.0)])
def test_example_runs_and_learns_at_a_small_size(name, steps, at_least):
    out = run_example(name, steps)
    assert out["example"] == name and len(out["final_return"]) == 2
    assert at_least > RANDOM_RETURN and all(value > at_least for value in out["final_return"]), out


def test_examples_are_short_files_that_import_only_blocks():
    for name in ("ppo_cartpole", "dqn_cartpole"):
        with open(os.path.join(REPO, "examples", f"{name}.py"), encoding="utf-8") as handle:
            text = handle.read()
        assert len(text.splitlines()) <= 120, name
        imported = {line.split()[1] for line in text.splitlines() if line.startswith("from jaxppo")}
        assert imported <= {"jaxppo.returns", "jaxppo.transforms", "jaxppo.ppo.losses", "jaxppo.ppo.networks",
                            "jaxppo.dqn", "jaxppo.dqn.losses", "jaxppo.dqn.networks", "jaxppo.diagnosis.core"}, name
