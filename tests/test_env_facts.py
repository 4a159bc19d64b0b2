"""The diagnosis's random-policy returns are the measured ones: every ``ENV_FACTS`` entry with a random
return matches the committed measurement (``benchmarks/diagnose_advice.py --random-returns`` and
``--random-returns-of``), unless it is a closed form or a stated equivalence."""

from __future__ import annotations

import glob
import json
import os

import pytest

from jaxppo.diagnosis.env_facts import ENV_FACTS

RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "results")
# Not measured by a random-policy run: a closed form (IntrusionDetection-v0, tests/test_diagnose.py),
# bsuite's zero-mean recall reward, and the memory variants that equal their fully observed env's.
NOT_MEASURED = {"IntrusionDetection-v0", "MemoryChain-bsuite", "CartPole-NoVelocity-v1", "Pendulum-NoVelocity-v1"}


def _measured() -> dict[str, float]:
    out = {}
    for path in sorted(glob.glob(os.path.join(RESULTS, "random_policy_returns*.json"))):
        with open(path) as handle:
            out.update({env: row["mean"] for env, row in json.load(handle)["returns"].items()})
    return out


def test_every_random_return_is_the_measured_one():
    measured = _measured()
    for env, facts in ENV_FACTS.items():
        if facts.random_return is None or env in NOT_MEASURED:
            continue
        assert env in measured, f"{env}: no measurement committed"
        assert facts.random_return == pytest.approx(measured[env], rel=0.01, abs=0.01), env
