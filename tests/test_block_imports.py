"""Importing one building block loads that block, never a training loop, env suite, CLI, plotting or orbax.

Checked in a fresh interpreter, one block after another with jaxppo's modules forgotten in between
(``python -X importtime -c "import jaxppo.returns"`` shows the same by hand).
"""

from __future__ import annotations

import json
import subprocess
import sys

BLOCKS = [
    "jaxppo.returns", "jaxppo.running_stats", "jaxppo.transforms", "jaxppo.networks", "jaxppo.stats",
    "jaxppo.shuffle", "jaxppo.diagnostics", "jaxppo.ppo.losses", "jaxppo.ppo.networks", "jaxppo.dqn.losses",
    "jaxppo.dqn.buffer", "jaxppo.dqn.networks", "jaxppo.diagnosis.causes",
]
FORBIDDEN = [
    "jaxppo.api", "jaxppo.runner", "jaxppo.lab", "jaxppo.programs", "jaxppo.ppo.train", "jaxppo.dqn.train",
    "jaxppo.envs", "jaxppo.cli", "jaxppo.plotting", "jaxppo.sweep_report", "jaxppo.config",
    "jaxppo.diagnosis.core", "jaxppo.diagnosis.detectors", "jaxppo.diagnosis.report", "gymnax", "matplotlib",
    "orbax", "orbax.checkpoint",
]

SCRIPT = """
import importlib, json, sys
blocks, forbidden = json.loads(sys.argv[1]), json.loads(sys.argv[2])
found = {}
for block in blocks:
    for name in [n for n in sys.modules if n == "jaxppo" or n.startswith("jaxppo.")]:
        del sys.modules[name]
    importlib.import_module(block)
    found[block] = [name for name in forbidden if name in sys.modules]
print(json.dumps(found))
"""


def test_importing_a_block_imports_no_loop_suite_cli_or_plotting():
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(BLOCKS), json.dumps(FORBIDDEN)],
                            capture_output=True, text=True, check=True)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(found) == set(BLOCKS)
    assert {block: pulled for block, pulled in found.items() if pulled} == {}


def test_the_package_still_offers_its_public_names():
    import jaxppo

    for name in jaxppo.__all__:
        assert getattr(jaxppo, name) is not None
    assert callable(jaxppo.diagnose) and jaxppo.load_policy.__module__ == "jaxppo.runner"


def test_plain_env_names_import_no_suite():
    """Loading a config and making a gymnax env must not import brax or jumanji (seconds each)."""
    script = ("import sys, jaxppo\n"
              "from jaxppo.envs import make_env\n"
              "jaxppo.load_config('ppo_cartpole'); make_env('CartPole-v1')\n"
              "print([name for name in ('brax', 'jumanji', 'mujoco') if name in sys.modules])\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
