"""Config-aware causes: which config field most likely produced a finding, ranked with the evidence.

A detector sees a symptom (entropy gone, KL far too large, Q-values beyond their bound). The symptom
alone does not name its cause: a policy whose entropy collapsed in the first updates because its
learning rate is 400 times the usual one is not cured by a larger entropy bonus. So each finding gets
ranked hypotheses:

* **config outliers**: a numeric field far outside the range that working configs of this algorithm
  use (``USUAL_RANGES``, each with its source). An outlier that can produce this finding
  (``SUSPECTS``) ranks above the symptom's own remedy, more so the further outside it is and when
  the finding began in the run's first updates, where a setting that acts from the start is the
  first thing that moved;
* **the symptom's remedy**: the detector's own cause and change, ranked next.

Every function here is pure and takes a plain config (any object with the fields), so it can be
tested on hand-built cases and used without training anything.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Sequence

__all__ = ["Hypothesis", "Outlier", "SUSPECTS", "USUAL_RANGES", "UsualRange", "config_outliers", "rank_hypotheses"]


@dataclasses.dataclass(frozen=True)
class UsualRange:
    """Where a field's value lies in configs that work for this algorithm, and why we say so.

    ``scale="log"`` compares ratios (rates, coefficients); ``scale="horizon"`` compares
    ``1 / (1 - value)`` (discount factors, whose effect is their horizon). ``low`` / ``high`` are in
    the field's own units; None leaves that side open.
    """

    field: str
    low: Optional[float]
    high: Optional[float]
    source: str
    scale: str = "log"
    #: Where the field's default is None ("same as another field"), that field's value is the suggestion.
    default_field: Optional[str] = None


_PPO_PAPER = "Schulman et al. 2017 (PPO) and the tuned configs of CleanRL, PureJaxRL and rl-baselines3-zoo"
_DQN_PAPER = "Mnih et al. 2015 (DQN) and the tuned configs of CleanRL, rejax and rl-baselines3-zoo"

USUAL_RANGES: dict[str, tuple[UsualRange, ...]] = {
    "ppo": (
        UsualRange("learning_rate", 1e-5, 1e-3, _PPO_PAPER + ": 2.5e-4 to 3e-4, tuned values within a decade"),
        UsualRange("critic_learning_rate", 1e-5, 3e-3, _PPO_PAPER + ": the actor's rate, up to a few times it",
                   default_field="learning_rate"),
        UsualRange("clip_epsilon", 0.05, 0.5, "Schulman et al. 2017 compared 0.1, 0.2 and 0.3"),
        UsualRange("entropy_coef", None, 0.05, _PPO_PAPER + ": 0 (MuJoCo) to 0.01 (Atari)"),
        UsualRange("num_epochs", 1, 10, "Schulman et al. 2017 (3 to 10 epochs); Andrychowicz et al. 2021"),
        UsualRange("value_loss_coef", 0.1, 2.0, _PPO_PAPER + ": 0.5 to 1"),
        UsualRange("max_grad_norm", 0.1, 10.0, _PPO_PAPER + ": 0.5"),
        UsualRange("target_kl", 0.003, 0.05, "rl-baselines3-zoo and Spinning Up: 0.01 to 0.03"),
        UsualRange("gamma", 0.9, 0.999, _PPO_PAPER + ": 0.99 (horizons of 10 to 1000 steps)", scale="horizon"),
    ),
    "dqn": (
        UsualRange("learning_rate", 1e-5, 1e-3, _DQN_PAPER + ": 1e-4 to 2.5e-4"),
        UsualRange("target_update_interval", 100, 40_000, _DQN_PAPER + ": 500 (classic control) to 10,000 updates"),
        UsualRange("tau", 1e-3, 1.0, "polyak averaging: 0.005 (SAC, TD3) to 1 (a hard copy)"),
        UsualRange("epsilon_end", None, 0.1, _DQN_PAPER + ": 0.01 to 0.1"),
        UsualRange("epsilon_decay_fraction", 0.01, 0.5, _DQN_PAPER + ": 0.1 (Atari) to 0.5 (classic control)"),
        UsualRange("max_grad_norm", 0.1, 100.0, "rl-baselines3-zoo: 10"),
        UsualRange("gamma", 0.9, 0.999, _DQN_PAPER + ": 0.99", scale="horizon"),
    ),
}

# Which fields, pushed which way ("high": above the usual range, "low": below, "both"), can produce
# each finding. A field outside its range in a listed direction is a suspect for that finding.
_TOO_FAST = (("learning_rate", "high"), ("num_epochs", "high"), ("clip_epsilon", "high"), ("max_grad_norm", "high"))
SUSPECTS: dict[str, tuple[tuple[str, str], ...]] = {
    "entropy_collapse": _TOO_FAST,
    "exploration_collapse": _TOO_FAST + (("entropy_coef", "low"),),
    "trust_region_breakdown": _TOO_FAST + (("target_kl", "high"),),
    "policy_collapse": _TOO_FAST + (("target_update_interval", "low"), ("tau", "high")),
    "frozen_policy": (("learning_rate", "low"), ("clip_epsilon", "low"), ("max_grad_norm", "low")),
    "value_loss_explosion": (("critic_learning_rate", "high"), ("learning_rate", "high"), ("value_loss_coef", "high")),
    "value_loss_stuck": (("critic_learning_rate", "low"), ("learning_rate", "low")),
    "critic_useless": (("critic_learning_rate", "high"), ("learning_rate", "high")),
    "gradient_explosion": (("learning_rate", "high"), ("critic_learning_rate", "high"), ("max_grad_norm", "high")),
    "updates_clipped_away": (("max_grad_norm", "low"), ("value_loss_coef", "high")),
    "q_divergence": (("learning_rate", "high"), ("target_update_interval", "low"), ("tau", "high"),
                     ("gamma", "high")),
    "greedy_drift": (("learning_rate", "high"), ("target_update_interval", "low"), ("tau", "high")),
    "exploration_never_decays": (("epsilon_end", "high"), ("epsilon_decay_fraction", "high")),
    "stalled": (("learning_rate", "both"), ("entropy_coef", "high"), ("epsilon_end", "high"),
                ("epsilon_decay_fraction", "high"), ("clip_epsilon", "low"), ("gamma", "low")),
    "no_learning": (("learning_rate", "both"), ("entropy_coef", "high"), ("epsilon_end", "high"),
                    ("epsilon_decay_fraction", "high"), ("clip_epsilon", "both"), ("gamma", "low"),
                    ("num_epochs", "high")),
}

#: An outlier must lie at least this factor beyond its range's edge (2: twice the largest usual rate),
#: so a config at the edge of common practice is never blamed.
MIN_OUTLIER_FACTOR = 2.0
#: A finding that begins within this fraction of the run began "from the start": a setting that acts
#: on every update is then the first thing that moved.
EARLY_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class Outlier:
    """A config field outside its usual range: ``factor`` times beyond the ``direction`` edge."""

    field: str
    value: float
    usual: UsualRange
    direction: str  # "high" | "low"
    factor: float
    suggested: float  # the config class's default when it lies in the range, else the nearest edge


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    """One candidate cause for a finding: the fields it blames, why, the change to try, its rank score."""

    fields: tuple[str, ...]
    explanation: str
    suggestion: tuple[str, ...]
    score: float

    def to_dict(self) -> dict:
        return {"fields": list(self.fields), "explanation": self.explanation, "suggestion": list(self.suggestion),
                "score": round(float(self.score), 3)}


def _number(value: Any) -> Optional[float]:
    if value is None or isinstance(value, (bool, str)):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _transform(value: float, scale: str) -> Optional[float]:
    """The value on the axis where "a factor away" is meaningful; None where it has no place there."""
    if scale == "horizon":
        return 1.0 / (1.0 - value) if value < 1.0 else math.inf
    return value if value > 0 else None


def _default(config: Any, name: str) -> Optional[float]:
    fields = {f.name: f for f in dataclasses.fields(type(config))} if dataclasses.is_dataclass(config) else {}
    field = fields.get(name)
    return None if field is None else _number(field.default)


def _suggested(config: Any, usual: UsualRange) -> float:
    default = _default(config, usual.field)
    if default is None and usual.default_field is not None:
        default = _number(getattr(config, usual.default_field, None))
    low = -math.inf if usual.low is None else usual.low
    high = math.inf if usual.high is None else usual.high
    if default is not None and low <= default <= high:
        return default
    if default is None:
        return usual.high if usual.high is not None else usual.low  # type: ignore[return-value]
    return min(max(default, low), high)


def config_outliers(config: Any, algorithm: Optional[str] = None) -> tuple[Outlier, ...]:
    """Every numeric field of ``config`` at least ``MIN_OUTLIER_FACTOR`` beyond its usual range."""
    algorithm = algorithm or str(getattr(config, "algorithm", ""))
    found = []
    for usual in USUAL_RANGES.get(algorithm, ()):
        value = _number(getattr(config, usual.field, None))
        if value is None:
            continue  # the field is off (None) or absent
        x = _transform(value, usual.scale)
        if x is None:
            continue  # zero on a log axis: "off", judged by the open side only
        for direction, edge in (("high", usual.high), ("low", usual.low)):
            if edge is None:
                continue
            edge_x = _transform(edge, usual.scale)
            if edge_x is None or edge_x <= 0:
                continue
            factor = x / edge_x if direction == "high" else edge_x / x
            if factor >= MIN_OUTLIER_FACTOR:
                found.append(Outlier(usual.field, value, usual, direction, factor, _suggested(config, usual)))
    return tuple(found)


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.6g}"


def _related(finding: str, outlier: Outlier) -> bool:
    return any(field == outlier.field and direction in (outlier.direction, "both")
               for field, direction in SUSPECTS.get(finding, ()))


def rank_hypotheses(finding: str, start_fraction: float, config: Any, symptom_cause: str,
                    symptom_suggestion: Sequence[str], outliers: Optional[Sequence[Outlier]] = None
                    ) -> tuple[Hypothesis, ...]:
    """Hypotheses for one finding, best first.

    ``start_fraction``: where in the run the finding began (0 = the first update). The symptom's own
    remedy scores 1 (0.25 when it has no change to try). A config outlier scores
    ``log10(factor)``, plus 1 when it can produce this finding (``SUSPECTS``) and 0.5 more when the
    finding began in the first ``EARLY_FRACTION`` of the run; so a suspect twice outside its range
    outranks the symptom's remedy, and an unrelated outlier needs to be ten times outside to tie it.
    """
    outliers = config_outliers(config) if outliers is None else outliers
    hypotheses = [Hypothesis((), symptom_cause, tuple(symptom_suggestion), 1.0 if symptom_suggestion else 0.25)]
    early = start_fraction <= EARLY_FRACTION
    for outlier in outliers:
        related = _related(finding, outlier)
        score = math.log10(outlier.factor) + (1.0 if related else 0.0) + (0.5 if related and early else 0.0)
        side = "above" if outlier.direction == "high" else "below"
        edge = outlier.usual.high if outlier.direction == "high" else outlier.usual.low
        when = " and the finding began in the run's first updates" if early and related else ""
        explanation = (f"{outlier.field}={_fmt(outlier.value)} is {outlier.factor:.3g}x {side} the usual "
                       f"range's edge {_fmt(edge)} ({outlier.usual.source}){when}; "
                       + (f"such a {outlier.field} produces {finding}" if related else
                          f"it is not a known cause of {finding} but is far from what works"))
        hypotheses.append(Hypothesis((outlier.field,), explanation,
                                     (f"{outlier.field}={_fmt(outlier.suggested)}",), score))
    # Stable: on equal scores the symptom's remedy (listed first) stays first. Two hypotheses that
    # suggest the same change are one, ranked by the better score and explained by it.
    ranked: list[Hypothesis] = []
    for hypothesis in sorted(hypotheses, key=lambda h: -h.score):
        if not any(h.suggestion and h.suggestion == hypothesis.suggestion for h in ranked):
            ranked.append(hypothesis)
    return tuple(ranked)
