"""Diagnosis: what went wrong on each seed of a run, why, and which change measurably fixes it.

* ``jaxppo.diagnosis.core``: the detectors, their ``Thresholds``, env facts and ``diagnose`` (reads
  metrics only, trains nothing); ``jaxppo.diagnose`` is its ``diagnose`` function;
* ``jaxppo.diagnosis.causes``: config-aware ranking of a finding's candidate causes;
* ``jaxppo.diagnosis.verify``: re-training the run's seeds under each candidate change.

Importing this package imports none of them.
"""
