"""Diagnosis: what went wrong on each seed of a run, why, and which change measurably fixes it.

* ``jaxppo.diagnosis.core``: the public surface, re-exporting the names below (``jaxppo.diagnose``
  is its ``diagnose`` function);
* ``jaxppo.diagnosis.env_facts``: what the detectors know about each environment (random-policy and
  solved returns, reward bounds);
* ``jaxppo.diagnosis.series``: pure numpy helpers over one seed's metric series;
* ``jaxppo.diagnosis.detectors``: the detectors and their ``Thresholds``; each returns a ``Finding``
  (evidence only);
* ``jaxppo.diagnosis.report``: ``diagnose`` (reads metrics only, trains nothing), the phases of each
  seed's learning curve and the ``Diagnosis`` it returns;
* ``jaxppo.diagnosis.causes``: config-aware ranking of a finding's candidate causes;
* ``jaxppo.diagnosis.verify``: re-training the run's seeds under each candidate change.

Importing this package imports none of them.
"""
