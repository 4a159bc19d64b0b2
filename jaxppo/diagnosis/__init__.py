"""The diagnosis's pieces that stand alone: config-aware causes (``jaxppo.diagnosis.causes``).

``jaxppo.diagnose`` (the detectors, their thresholds and the report) reads metrics; this package
holds what it consults beyond them. Importing it imports numpy only.
"""
