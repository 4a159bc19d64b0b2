"""The diagnosis's public surface: label every seed of a run with what went wrong, when, why, and what to try.

Import from here; each name is defined in the module that holds its idea:

* ``jaxppo.diagnosis.env_facts``: ``EnvFacts``, ``ENV_FACTS`` and ``env_facts`` (random-policy and
  solved returns, reward bounds);
* ``jaxppo.diagnosis.series``: the pure numpy helpers over one seed's metric series;
* ``jaxppo.diagnosis.detectors``: ``Thresholds`` (every number with its reason), ``Finding``,
  ``PATHOLOGIES`` and the ``detect_*`` functions, which produce evidence only;
* ``jaxppo.diagnosis.report``: ``Phase``, ``SeedDiagnosis``, ``Diagnosis``, ``final_returns`` and
  ``diagnose``, which runs the detectors and attaches ranked causes (``jaxppo.diagnosis.causes``).
"""

from __future__ import annotations

from jaxppo.diagnosis.detectors import PATHOLOGIES, Finding, Thresholds
from jaxppo.diagnosis.env_facts import ENV_FACTS, EnvFacts, env_facts
from jaxppo.diagnosis.report import Diagnosis, Phase, SeedDiagnosis, diagnose, final_returns

__all__ = [
    "PATHOLOGIES",
    "ENV_FACTS",
    "EnvFacts",
    "Thresholds",
    "Finding",
    "Phase",
    "SeedDiagnosis",
    "Diagnosis",
    "diagnose",
    "env_facts",
    "final_returns",
]
