"""The diagnosis of a run: ``diagnose`` runs every detector on every seed and assembles the result.

``diagnose`` runs every detector (``jaxppo.diagnosis.detectors``) on every seed, ranks each finding's
candidate causes (``jaxppo.diagnosis.causes``) and collects the findings, the phases of the seed's
learning curve and counts over seeds. It reads metrics only: it never trains, and it imports no
algorithm, so it works on the ``metrics`` of ``jaxppo.train``, on a run directory's
``metrics_per_seed.npz`` and on runs written before it existed (a detector whose metrics are missing
stays quiet).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from jaxppo.diagnosis import causes as causes_lib
from jaxppo.diagnosis.detectors import DETECTORS, PATHOLOGIES, Finding, SeedSeries, Thresholds, return_levels, seed_series
from jaxppo.diagnosis.env_facts import env_facts
from jaxppo.diagnosis.series import json_float, json_safe, per_seed_arrays, return_valid_mask

__all__ = ["Diagnosis", "Phase", "SeedDiagnosis", "diagnose", "final_returns"]


# Results --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of the seed's learning curve: ``learning``, ``plateau``, ``drift``, ``collapse`` or ``flat``."""

    name: str
    start_update: int
    end_update: int
    return_start: Optional[float]
    return_end: Optional[float]

    def to_dict(self) -> dict:
        return json_safe(dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class SeedDiagnosis:
    """One seed's findings (failures and warnings), the phases of its learning curve and its final return."""

    seed: int
    findings: tuple[Finding, ...]
    phases: tuple[Phase, ...]
    final_return: Optional[float]
    solved: Optional[bool]  # None when the env has no known threshold or the seed finished no episode

    @property
    def failures(self) -> tuple[Finding, ...]:
        """The findings that hurt the return: only these make a seed unhealthy."""
        return tuple(f for f in self.findings if f.severity == "failure")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Pathology signatures on a seed that still solved its env."""
        return tuple(f for f in self.findings if f.severity != "failure")

    @property
    def healthy(self) -> bool:
        return not self.failures

    @property
    def primary(self) -> Optional[Finding]:
        """The failure whose best-ranked cause scores highest (ties: ``PATHOLOGIES`` order), or None."""
        if not self.failures:
            return None
        return min(self.failures, key=lambda f: (-_top_score(f), PATHOLOGIES.index(f.name)))

    @property
    def suggestion(self) -> tuple[str, ...]:
        """The primary finding's fix (empty when no single change is known for it)."""
        primary = self.primary
        return primary.suggestion if primary else ()

    def to_dict(self) -> dict:
        return {"seed": self.seed, "healthy": self.healthy, "final_return": json_float(self.final_return),
                "solved": self.solved, "primary": self.primary.name if self.primary else None,
                "suggestion": list(self.suggestion),
                "findings": [f.to_dict() for f in self.findings], "phases": [p.to_dict() for p in self.phases]}


def _top_score(finding: Finding) -> float:
    """The score of the finding's best-ranked cause (0 when it has none)."""
    return finding.hypotheses[0].score if finding.hypotheses else 0.0


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """Every seed's diagnosis of one run, with per-pathology counts over seeds and which seeds are healthy."""

    num_seeds: int
    seeds: tuple[SeedDiagnosis, ...]
    counts: dict
    healthy: np.ndarray  # bool [S]
    env: str = ""
    algorithm: str = ""
    solved_return: Optional[float] = None
    #: ``jaxppo.diagnosis.verify.Verification`` when ``diagnose(..., verify=True)`` re-trained the candidates.
    verification: Optional[Any] = None

    @property
    def num_healthy(self) -> int:
        return int(np.sum(self.healthy))

    def flagged(self, name: str, warnings: bool = True) -> np.ndarray:
        """Bool ``[S]``: which seeds show pathology ``name`` (as a failure, or also as a warning)."""
        return np.array([any(f.name == name and (warnings or f.severity == "failure") for f in s.findings)
                         for s in self.seeds], dtype=bool)

    @property
    def warning_counts(self) -> dict:
        """Per pathology, the seeds that show it only as a warning (they solved all the same)."""
        return {name: sum(any(f.name == name for f in s.warnings) and not any(f.name == name for f in s.failures)
                          for s in self.seeds) for name in PATHOLOGIES}

    def worst_seeds(self, count: int = 3) -> list[int]:
        """Seeds with failures, most failures first, then lowest final return."""
        def key(s: SeedDiagnosis) -> tuple:
            ret = s.final_return if s.final_return is not None else -math.inf
            return (-len(s.failures), ret)

        return [s.seed for s in sorted(self.seeds, key=key) if s.failures][:count]

    def to_dict(self) -> dict:
        return {"num_seeds": self.num_seeds, "num_healthy": self.num_healthy, "env": self.env,
                "algorithm": self.algorithm, "solved_return": json_float(self.solved_return),
                "counts": {k: int(v) for k, v in self.counts.items()},
                "verification": self.verification.to_dict() if self.verification is not None else None,
                "warning_counts": {k: int(v) for k, v in self.warning_counts.items() if v},
                "worst_seeds": self.worst_seeds(), "seeds": [s.to_dict() for s in self.seeds]}


# Phases ---------------------------------------------------------------------------------------------

def _phases(ctx: SeedSeries) -> tuple[Phase, ...]:
    """Segments of the smoothed return: learning, plateau, drift, collapse (or one flat stretch).

    With ``rise = peak - start``: before the return first reaches ``start + 0.9 rise`` the seed is
    learning; afterwards it is on a plateau at or above that level, drifting between half and 0.9 of the
    rise, and collapsed below half. A stretch shorter than the smoothing window between two stretches
    of one kind is folded into them.
    """
    valid = ctx.return_valid
    if not np.any(valid):
        return ()
    values = ctx.smoothed_return
    first = int(np.flatnonzero(valid)[0])
    seg = values[first:]
    _, scale = return_levels(ctx)
    start_level, peak = float(seg[0]), float(np.nanmax(seg))
    rise = peak - start_level
    labels: list[str] = []
    if not math.isfinite(rise) or rise < ctx.thresholds.no_learning_gain * scale:
        labels = ["flat"] * seg.size
    else:
        reached = False
        for v in seg:
            reached = reached or v >= start_level + 0.9 * rise
            if not reached:
                labels.append("learning")
            elif v >= start_level + 0.9 * rise:
                labels.append("plateau")
            elif v >= start_level + 0.5 * rise:
                labels.append("drift")
            else:
                labels.append("collapse")
    minimum = max(1, int(ctx.thresholds.smoothing_fraction * ctx.num_updates))
    segments: list[list[Any]] = []  # [name, start, end] in column indices
    for i, label in enumerate(labels):
        if segments and segments[-1][0] == label:
            segments[-1][2] = i
        else:
            segments.append([label, i, i])
    # A short stretch between two of the same kind is noise around a level (plateau-drift-plateau):
    # fold it into its neighbours. Short stretches between different kinds are real transitions.
    merged: list[list[Any]] = []
    for index, segment in enumerate(segments):
        following = segments[index + 1] if index + 1 < len(segments) else None
        short = segment[2] - segment[1] + 1 < minimum
        if merged and short and following is not None and following[0] == merged[-1][0]:
            merged[-1][2] = segment[2]
        elif merged and merged[-1][0] == segment[0]:
            merged[-1][2] = segment[2]
        else:
            merged.append(list(segment))
    return tuple(Phase(name, ctx.update(first + a), ctx.update(first + b), json_float(seg[a]), json_float(seg[b]))
                 for name, a, b in merged)


# Entry point ----------------------------------------------------------------------------------------

def _with_causes(finding: Finding, config: Any, outliers: Sequence[causes_lib.Outlier], run_length: int,
                 solved: Optional[bool]) -> Finding:
    """The finding with its ranked hypotheses (the best one as its cause and suggestion), and marked a
    warning when the seed solved its env all the same."""
    start_fraction = (finding.start_update - 1) / max(run_length, 1)
    hypotheses = causes_lib.rank_hypotheses(finding.name, start_fraction, config, finding.cause, finding.suggestion,
                                            outliers)
    best = hypotheses[0]
    return dataclasses.replace(finding, cause=best.explanation, suggestion=best.suggestion, hypotheses=hypotheses,
                               severity="warning" if solved else "failure")


def final_returns(metrics: Mapping[str, Any], final_fraction: float = Thresholds.final_fraction) -> np.ndarray:
    """Per seed, the mean ``episode_return`` over the last ``final_fraction`` of updates that had a
    finished episode (NaN for a seed that never finished one), ``[S]``."""
    per_seed, num_seeds, num_updates = per_seed_arrays(metrics)
    out = np.full(num_seeds, np.nan)
    for seed in range(num_seeds):
        valid = return_valid_mask(per_seed, seed, num_updates)
        values = per_seed["episode_return"][seed][valid] if "episode_return" in per_seed else np.array([])
        if values.size:
            out[seed] = float(np.mean(values[-max(1, int(math.ceil(final_fraction * values.size))):]))
    return out


def diagnose(metrics: Mapping[str, Any], config: Any, thresholds: Optional[Thresholds] = None,
             metrics_every: int = 1, verify: bool = False, seed: int = 0,
             evaluation: Optional[Mapping[str, Any]] = None, **verify_options: Any) -> Diagnosis:
    """Runs every detector on every seed of ``metrics`` and returns the ``Diagnosis``.

    ``metrics`` maps names to ``[S, U]`` arrays (or ``[U]`` for one seed), numpy or jax, as returned by
    ``jaxppo.train`` or stored in a run's ``metrics_per_seed.npz``; ``config`` is the run's
    ``PPOConfig`` / ``DQNConfig`` (gamma, env, algorithm and the fields that a fix would change).
    Missing metrics (older runs) silence the detectors that need them; nothing is trained.
    ``metrics_every``: each column holds that many updates (a run with ``run.metrics_every`` > 1);
    detectors then work in columns and report the last update of a column's block.
    ``evaluation``: the run's greedy evaluation at its final update, per seed (``{"eval_return": [S],
    "eval_return_memory_wiped": [S]}``, means over each seed's episodes, as in an ``eval.jsonl`` record);
    a recurrent run's ``memory_unused`` is judged from it, and is silent without it.

    ``verify=True`` re-trains the seeds under the candidate changes of the ranked causes and sets
    ``Diagnosis.verification`` (``jaxppo.diagnosis.verify.verify``; this one option trains). ``seed`` is
    the run's base seed, so the seeds are the run's own; ``verify_options`` go to ``verify``
    (``fraction``, ``limit``, ``out_dir``, ``progress``).
    """
    if not isinstance(metrics_every, int) or metrics_every < 1:
        raise ValueError(f"metrics_every={metrics_every!r} must be a positive integer.")
    thresholds = thresholds or Thresholds()
    per_seed, num_seeds, num_updates = per_seed_arrays(metrics)
    facts = env_facts(config)
    finals = final_returns(metrics, thresholds.final_fraction) if "episode_return" in per_seed else np.full(num_seeds, np.nan)
    outliers = causes_lib.config_outliers(config)
    last_update = getattr(config, "num_updates", None)
    run_length = last_update if isinstance(last_update, int) and last_update > 0 else num_updates * metrics_every
    seeds = []
    for seed in range(num_seeds):
        ctx = seed_series(per_seed, seed, num_updates, config, facts, thresholds, metrics_every,
                          {name: float(np.asarray(values, np.float64).reshape(num_seeds, -1)[seed].mean())
                           for name, values in (evaluation or {}).items()})
        final = float(finals[seed]) if math.isfinite(finals[seed]) else None
        solved = None if (final is None or facts.solved_return is None) else bool(final >= facts.solved_return)
        findings = []
        if num_updates > 0:
            for _, detector in DETECTORS:
                finding = detector(ctx)
                if finding is not None:
                    findings.append(_with_causes(finding, config, outliers, run_length, solved))
        findings.sort(key=lambda f: (f.start_update, PATHOLOGIES.index(f.name)))
        seeds.append(SeedDiagnosis(seed, tuple(findings), _phases(ctx) if num_updates else (), final, solved))
    counts = {name: sum(any(f.name == name for f in s.failures) for s in seeds) for name in PATHOLOGIES}
    healthy = np.array([s.healthy for s in seeds], dtype=bool)
    diagnosis = Diagnosis(num_seeds, tuple(seeds), counts, healthy, getattr(config, "env", ""),
                          getattr(config, "algorithm", ""), facts.solved_return)
    if verify:
        from jaxppo.diagnosis.verify import verify as verify_changes

        diagnosis = dataclasses.replace(diagnosis, verification=verify_changes(config, diagnosis, seed=seed,
                                                                               **verify_options))
    return diagnosis
