"""Detectors: each reads one seed's metric series and returns the evidence of one pathology, or None.

Each detector is a pure function over one seed's metric series (``[U]`` numpy arrays, one value per
update, held by ``SeedSeries``) that returns a ``Finding`` or ``None``: when the pathology began, the
numbers that triggered it and the symptom's own cause and change. Ranking the candidate causes
(``jaxppo.diagnosis.causes``) and assembling the diagnosis is ``jaxppo.diagnosis.report``'s work. A
detector whose metrics are missing (older runs) stays quiet.

Every threshold is a field of ``Thresholds`` with the reason for its value; ``docs/stability.md``
("Diagnosis") says which debugging report each detector answers and how the thresholds were checked
against real failing and healthy runs.

Conventions: update numbers are 1-based, as in ``metrics.jsonl`` (update ``k`` is column ``k - 1``).
A condition is *sustained* when it holds for ``sustain_fraction`` of the run's updates in a row (at
least ``min_sustain_updates``), so a single noisy update never makes a finding.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, Optional

import numpy as np

from jaxppo.diagnosis import causes as causes_lib
from jaxppo.diagnosis.env_facts import EnvFacts
from jaxppo.diagnosis.series import (early_value, final_value, finite_number, first_run, first_run_after_startup,
                                     holds_to_end_from, json_float, json_safe, learning_mask, median, moving_mean,
                                     return_valid_mask)

__all__ = [
    "DETECTORS",
    "PATHOLOGIES",
    "Finding",
    "SeedSeries",
    "Thresholds",
    "detect_critic_useless",
    "detect_entropy_collapse",
    "detect_exploration_collapse",
    "detect_exploration_never_decays",
    "detect_memory_unused",
    "detect_frozen_policy",
    "detect_gradient_explosion",
    "detect_greedy_drift",
    "detect_no_learning",
    "detect_nonfinite",
    "detect_policy_collapse",
    "detect_q_divergence",
    "detect_stalled",
    "detect_trust_region_breakdown",
    "detect_updates_clipped_away",
    "detect_value_clip_saturated",
    "detect_value_loss_explosion",
    "detect_value_loss_stuck",
    "return_levels",
    "seed_series",
]


# Thresholds --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Every number a detector compares against, with the reason for its default.

    Override any of them: ``diagnose(metrics, config, Thresholds(frozen_kl=1e-7))``.
    """

    # Shared -----------------------------------------------------------------------------------------
    #: A condition must hold for this fraction of the run's updates in a row: 10% separates a
    #: pathology from the noisy stretches that healthy runs show (checked on 16-seed default runs).
    sustain_fraction: float = 0.10
    #: ...and never for fewer updates than this, so a 20-update run is not judged on one update.
    min_sustain_updates: int = 5
    #: Returns are smoothed with a centred moving mean over this fraction of the run (at least one update)
    #: before peaks and levels are read: per-update returns of a few episodes are too noisy to compare.
    smoothing_fraction: float = 0.05
    #: "The end of the run" for final levels: the last 10% of updates.
    final_fraction: float = 0.10

    # value_loss_stuck (report 003) ----------------------------------------------------------------------
    #: The value loss divided by the variance of its targets (critic units) reads 1.0 for a critic that
    #: predicts the batch mean (exactly so under per-batch normalisation, tests/test_losses.py), plus
    #: the variance of its own output noise. Within +-35% of 1 counts as pinned: report 003 read 0.9995
    #: to 1.0022 for 200 iterations; a CartPole critic that cannot learn (rate 1e-8) reads 0.97 to 1.32;
    #: a learning critic falls below 0.65 within the first 10% of the run.
    stuck_ratio_tolerance: float = 0.35
    #: ...while explained variance stays below this: the critic explains (almost) nothing.
    stuck_explained_variance: float = 0.1
    #: Both must hold for this fraction of the run in a row: longer than the few early updates in which
    #: every critic starts at the mean (healthy runs leave the band within ~5% of the run).
    stuck_fraction: float = 0.30

    # value_loss_explosion (reports 000, 004) ---------------------------------------------------------------
    #: Value loss at least this many times its early level (first 5% of updates): "orders of magnitude".
    explosion_growth: float = 100.0
    #: ...or at least this many times the variance of the targets it should fit (critic units): a
    #: critic that knew only the mean would read 1. 25 means its error is 5 target standard deviations,
    #: which only happens when the critic cannot follow the targets' scale (raw returns of -1000 read ~12
    #: at the first update before any learning, so the condition must also be sustained).
    explosion_variance_ratio: float = 25.0
    #: ...or above this in absolute terms (critic units), an error of 100: a critic whose output layer
    #: starts near 0 needs many steps to get there, and its gradient swamps the actor's in the shared
    #: clip. Raw Monte Carlo returns on Pendulum (report 004's setting) start at 1e5 and stay above 1e4
    #: for 30% of the run; CartPole's raw returns peak near 1.5e2, and Acrobot's discounted returns are
    #: bounded by 100 (loss <= 1e4 for a critic at 0).
    explosion_absolute: float = 1e4

    # frozen_policy (report 001) ---------------------------------------------------------------------
    #: Approximate KL per update below this: report 001 read 2e-7; a learning PPO policy moves 1e-4 to 1e-2.
    frozen_kl: float = 1e-5
    #: ...with (almost) no ratio clipping: report 001 read 0.
    frozen_clip_fraction: float = 1e-3
    #: ...entropy still within this fraction of its first value (the policy never sharpens).
    frozen_entropy_fraction: float = 0.05
    #: ...held for this fraction of the run in a row.
    frozen_fraction: float = 0.5

    # critic_useless (report 001's -143) ----------------------------------------------------------------
    #: Explained variance below this (median over a sustained stretch): the critic's predictions add more
    #: variance than they remove. -1 is far below the ~0 every fresh critic starts at.
    useless_explained_variance: float = -1.0
    #: ...judged only where the returns' std is at least this fraction of their magnitude: explained
    #: variance divides by Var[R], so for near-constant returns (a solved seed) it is noise.
    useless_min_return_spread: float = 0.01

    # value_clip_saturated (report 000) ---------------------------------------------------------------
    #: Fraction of value predictions changed by the value clip above this, sustained: the clip, not the
    #: loss, decides where the critic goes (report 000's absolute clip of 0.2 on returns of 1000+).
    value_clip_saturation: float = 0.5
    value_clip_fraction_of_run: float = 0.3

    # gradient_explosion / updates_clipped_away -----------------------------------------------------------
    #: Clipped / raw gradient norm (smoothed like the returns) below this: every step is shrunk 200-fold
    #: or more. Raw-return Pendulum (report 004's setting) sits at 4e-4 to 5e-3 for the whole run; the
    #: default CartPole PPO (max_grad_norm 0.5) spends half of its first 100k env steps between 0.0054
    #: and 0.01 and learns, so 0.01 would flag a healthy config.
    clip_ratio_pinned: float = 0.005
    #: gradient_explosion: ...while the raw norm ends at least this many times its early level.
    grad_norm_growth: float = 10.0
    #: updates_clipped_away: ...pinned for this fraction of the run in a row (the actor then learns at
    #: a few hundredths of its rate or less).
    clipped_away_fraction: float = 0.5

    # policy_collapse (report 002) ---------------------------------------------------------------------
    #: A seed collapses when its smoothed return, after a peak, loses this fraction of what it had gained
    #: over the starting level, and is still that low at the end.
    collapse_loss_fraction: float = 0.5
    #: The gain must be at least this fraction of (solved - random) (or of |start| when the env is
    #: unknown); otherwise there was nothing to collapse from.
    collapse_min_gain: float = 0.25

    # q_divergence / greedy_drift (report 002) ------------------------------------------------------------
    #: Q-values above this many times the bound r_max / (1 - gamma). Healthy CartPole DQN overshoots the
    #: bound (100) to ~3x transiently while the target network catches up; Huber-loss divergence reaches 1e7.
    q_bound_factor: float = 10.0
    #: Without a known bound: |Q| growing by this factor over the learning updates, ending above 1e3.
    q_growth_factor: float = 1000.0
    #: Greedy agreement must first hold a plateau at or above this...
    drift_plateau: float = 0.8
    #: ...then fall by at least this much and stay there to the end (report 002: 90% -> 10%).
    drift_drop: float = 0.3

    # entropy_collapse -------------------------------------------------------------------------------------
    #: Entropy below this fraction of its first value (discrete actions, where the first value is about
    #: log(A)) while the return is still below the solved level: the policy became deterministic first.
    entropy_collapse_fraction: float = 0.05

    # no_learning ------------------------------------------------------------------------------------------
    #: The final return gained less than this fraction of (solved - random) over the random-policy level
    #: (or, for unknown envs, over the seed's own first returns, relative to their magnitude).
    no_learning_gain: float = 0.1

    # start-up transients -----------------------------------------------------------------------------
    #: A condition that holds only inside this first fraction of the run (and is over by its end) is a
    #: start-up transient, not a finding: every critic starts far from its targets, and a fresh
    #: optimiser's first steps are its largest.
    startup_fraction: float = 0.1

    # trust_region_breakdown --------------------------------------------------------------------------
    #: Approximate KL per update above this, sustained, without target_kl: a learning PPO policy moves
    #: 1e-4 to 1e-2 per update (see frozen_kl), so 0.1 is ten times the top of that band.
    trust_region_kl: float = 0.1
    #: With target_kl set: KL above this many times target_kl, sustained, means early stopping is not
    #: holding the policy inside the region it asked for.
    trust_region_target_factor: float = 10.0

    # exploration_collapse (Gaussian policies) -----------------------------------------------------------
    #: The Gaussian's entropy fell by this many nats per action dimension below its first value: every
    #: standard deviation is exp(3) = 20 times smaller than at the start, while the return is not good.
    gaussian_entropy_drop: float = 3.0

    # exploration_never_decays (DQN) ---------------------------------------------------------------------
    #: Epsilon still at or above this at the run's end: a fifth of all actions are random to the last
    #: step, where the usual schedules end at 0.01 to 0.1.
    epsilon_high: float = 0.2

    # memory_unused (recurrent policies) ------------------------------------------------------------------
    #: The greedy return with the memory carried exceeds the return with the memory wiped at every step
    #: (same episodes) by less than this fraction of (solved - random): the memory is worth less than a
    #: tenth of the way from a random policy to solving. On MemoryChain a policy that uses its memory
    #: gains the whole span (about 1.0 against 0.0); one that does not gains nothing, up to the noise of
    #: the evaluation's episodes (16 by default, each +-1).
    memory_benefit: float = 0.1

    # stalled ----------------------------------------------------------------------------------------
    #: A seed that learned (beat no_learning_gain) but ends below this fraction of the way from the
    #: random-policy return to the solved return...
    stall_fraction: float = 0.5
    #: ...and whose smoothed return rose by less than this fraction of (solved - random) over the last
    #: stall_window of the run: it stopped improving, it is not merely slow.
    stall_rise: float = 0.05
    stall_window: float = 0.3


# Findings -------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Finding:
    """One pathology on one seed: when it began, the numbers that triggered it, its cause and fix.

    ``suggestion`` holds ready ``key=value`` overrides for ``--set``; empty when no single change is
    known to fix it, and ``cause`` then says so.
    """

    name: str
    start_update: int
    evidence: dict
    cause: str
    suggestion: tuple[str, ...] = ()
    #: "failure" (the seed's return suffered) or "warning" (the signature, on a seed that still solved).
    severity: str = "failure"
    #: Ranked candidate causes (``jaxppo.diagnosis.causes``); ``cause`` and ``suggestion`` are the first.
    hypotheses: tuple[causes_lib.Hypothesis, ...] = ()

    def to_dict(self) -> dict:
        return {"name": self.name, "start_update": int(self.start_update), "severity": self.severity,
                "evidence": json_safe(self.evidence), "cause": self.cause, "suggestion": list(self.suggestion),
                "hypotheses": [h.to_dict() for h in self.hypotheses]}


# Per-seed series ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SeedSeries:
    """What every detector sees for one seed: its metric series, the config, env facts and thresholds."""

    series: Mapping[str, np.ndarray]  # name -> [U] float64
    config: Any
    facts: EnvFacts
    thresholds: Thresholds
    num_updates: int
    learning: np.ndarray  # bool [U]: the update learned (DQN: after learning_starts)
    return_valid: np.ndarray  # bool [U]: at least one episode has finished by this update
    smoothed_return: np.ndarray  # [U], NaN where no episode had finished
    metrics_every: int = 1  # a column holds this many updates (a run's run.metrics_every)
    last_update: Optional[int] = None  # the run's number of updates, when known
    #: The run's final greedy evaluation for this seed (mean over its episodes), when known: for a
    #: recurrent policy ``eval_return`` and ``eval_return_memory_wiped``.
    evaluation: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def get(self, name: str) -> Optional[np.ndarray]:
        """The series ``name``, or None when the run did not record it."""
        return self.series.get(name)

    def update(self, index: int) -> int:
        """The 1-based update number of column ``index`` (the last update of its block)."""
        update = (int(index) + 1) * self.metrics_every
        return update if self.last_update is None else min(update, self.last_update)

    @property
    def sustain(self) -> int:
        """Columns a condition must hold in a row to be sustained (``sustain_fraction``, at least ``min_sustain_updates``)."""
        t = self.thresholds
        return max(t.min_sustain_updates, int(math.ceil(t.sustain_fraction * self.num_updates)))

    def length(self, fraction: float) -> int:
        """Columns in ``fraction`` of the run, at least ``min_sustain_updates``."""
        return max(self.thresholds.min_sustain_updates, int(math.ceil(fraction * self.num_updates)))

    @property
    def startup(self) -> int:
        """Columns in the start-up window (``startup_fraction`` of the run), where transients end."""
        return int(math.ceil(self.thresholds.startup_fraction * self.num_updates))

    def final(self, x: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
        """Median of the last ``final_fraction`` of the (masked) finite values."""
        return final_value(x, self.thresholds.final_fraction, mask)


def seed_series(per_seed: Mapping[str, np.ndarray], seed: int, num_updates: int, config: Any, facts: EnvFacts,
                thresholds: Thresholds, metrics_every: int = 1,
                evaluation: Optional[Mapping[str, float]] = None) -> SeedSeries:
    """One seed's ``SeedSeries`` from the per-seed arrays: its returns smoothed and masked where valid."""
    series = {name: values[seed] for name, values in per_seed.items()}
    valid = return_valid_mask(per_seed, seed, num_updates)
    returns = series.get("episode_return", np.full(num_updates, np.nan))
    window = max(1, int(thresholds.smoothing_fraction * num_updates))
    smoothed = moving_mean(np.where(valid, returns, np.nan), window)
    smoothed = np.where(valid, smoothed, np.nan)
    last = getattr(config, "num_updates", None) if metrics_every > 1 else None
    return SeedSeries(series, config, facts, thresholds, num_updates,
                      learning_mask(per_seed, config, seed, num_updates, metrics_every), valid, smoothed,
                      metrics_every, last if isinstance(last, int) else None, dict(evaluation or {}))


def _default_of(config: Any, name: str) -> Any:
    field = {f.name: f for f in dataclasses.fields(type(config))}.get(name)
    return None if field is None else field.default


def _fmt(value: Any) -> str:
    """A --set value as YAML reads it back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def return_levels(ctx: SeedSeries) -> tuple[float, float]:
    """(baseline, scale): the no-learning level and the gain that counts as "a lot" for this env.

    Known env: the random-policy return and (solved - random). Unknown: the seed's own early return,
    and the magnitude of the returns it saw (at least 1), since no better yardstick exists.
    """
    facts = ctx.facts
    if facts.random_return is not None and facts.solved_return is not None:
        return facts.random_return, abs(facts.solved_return - facts.random_return)
    smoothed = ctx.smoothed_return[ctx.return_valid]
    start = float(smoothed[0]) if smoothed.size else math.nan
    baseline = facts.random_return if facts.random_return is not None else start
    magnitude = max(float(np.nanmax(np.abs(smoothed))) if smoothed.size else 1.0, 1.0)
    return baseline, magnitude


# Detectors: each (ctx) -> Optional[Finding] -----------------------------------------------------------

def detect_nonfinite(ctx: SeedSeries) -> Optional[Finding]:
    """Skipped non-finite updates (``nonfinite_updates`` > 0) or NaN/Inf in losses and diagnostics."""
    skipped = ctx.get("nonfinite_updates")
    start: Optional[int] = None
    evidence: dict[str, Any] = {}
    if skipped is not None and np.any(np.nan_to_num(skipped) > 0):
        first = int(np.flatnonzero(np.nan_to_num(skipped) > 0)[0])
        start = first
        evidence["skipped_updates"] = float(np.nanmax(skipped))
    bad = {}
    for name, values in ctx.series.items():
        if name in _NONFINITE_EXEMPT:
            continue
        where = np.flatnonzero(~np.isfinite(values))
        if where.size:
            bad[name] = int(where.size)
            start = int(where[0]) if start is None else min(start, int(where[0]))
    if start is None:
        return None
    if bad:
        evidence["nonfinite_metric_updates"] = bad
    cause = ("a loss or gradient became NaN/Inf; the guard skipped those updates (the parameters stayed "
             "finite), but the values or targets feeding them overflowed or the data held NaN/Inf")
    suggestion: tuple[str, ...] = ()
    if getattr(ctx.config, "algorithm", "") == "ppo" and getattr(ctx.config, "return_normalization", "") == "off":
        suggestion = ("return_normalization=running",)
        cause += "; with raw-scale value targets the critic's loss is the usual source"
    else:
        cause += "; no single config change is known to fix it: find the first non-finite metric"
    return Finding("nonfinite", ctx.update(start), evidence, cause, suggestion)


# explained_variance is NaN by definition when the targets have zero variance; episode metrics are
# judged by the return detectors.
_NONFINITE_EXEMPT = ("explained_variance",)


def _critic_target_variance(ctx: SeedSeries) -> Optional[np.ndarray]:
    """Variance of the value targets in the critic's units, ``[U]``, or None if not derivable.

    ``return_std`` is in raw return units (times the reward scale); the critic fits
    ``return_scale * normalize(R / reward_scale)``, whose std is
    ``return_scale * return_std / return_stats_std`` with return normalisation on, else
    ``return_scale * return_std / reward_scale``.
    """
    return_std = ctx.get("return_std")
    if return_std is None:
        return None
    std = return_std.copy()
    stats_std = ctx.get("return_stats_std")
    reward_scale = ctx.get("reward_scale")
    if stats_std is not None and getattr(ctx.config, "return_normalization", "off") != "off":
        std = std / np.where(stats_std > 0, stats_std, np.nan)
    elif reward_scale is not None:
        std = std / np.where(reward_scale > 0, reward_scale, np.nan)
    std = std * float(getattr(ctx.config, "return_scale", 1.0) or 1.0)
    return std ** 2


def _value_fix(ctx: SeedSeries) -> tuple[tuple[str, ...], str]:
    """The change that puts the critic's targets on a learnable scale, and why."""
    config = ctx.config
    if getattr(config, "return_normalization", "off") == "off":
        return ("return_normalization=running",), (
            "the critic regresses raw returns, whose scale it cannot follow; running return normalisation "
            "(with predictions de-normalised for GAE) puts the targets near unit scale")
    if getattr(config, "return_normalization", "") == "batch":
        return ("return_normalization=running",), (
            "per-batch return normalisation changes the targets' units every batch; running statistics keep "
            "them stable")
    return (), "the targets are already normalised; no single config change is known to fix it"


def detect_value_loss_explosion(ctx: SeedSeries) -> Optional[Finding]:
    """Value loss orders of magnitude above its early level, or far above the target variance (000, 004)."""
    value_loss = ctx.get("value_loss")
    if value_loss is None or ctx.num_updates < 2:
        return None
    t = ctx.thresholds
    smooth = moving_mean(value_loss, max(1, int(t.smoothing_fraction * ctx.num_updates)))
    early = early_value(value_loss)
    grew = smooth >= t.explosion_growth * max(early, 1e-12)
    start = first_run_after_startup(grew, ctx.sustain, ctx.startup)
    evidence: dict[str, Any] = {"early_value_loss": early}
    if start is not None:
        evidence.update(value_loss_at_start=float(smooth[start]), growth=float(smooth[start] / max(early, 1e-12)))
    target_var = _critic_target_variance(ctx)
    if start is None and target_var is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = value_loss / target_var
        high = np.nan_to_num(ratio, nan=0.0) >= t.explosion_variance_ratio
        start = first_run_after_startup(high, ctx.sustain, ctx.startup)
        if start is not None:
            stretch = ratio[start:start + ctx.sustain]
            evidence.update(value_loss_at_start=float(value_loss[start]),
                            loss_over_target_variance=median(stretch),
                            target_std=float(math.sqrt(max(median(target_var[start:start + ctx.sustain]), 0.0))))
    if start is None:
        huge = np.nan_to_num(smooth, nan=0.0) >= t.explosion_absolute
        start = first_run_after_startup(huge, ctx.sustain, ctx.startup)
        if start is not None:
            evidence.update(value_loss_at_start=float(value_loss[start]), value_loss_max=float(np.nanmax(value_loss)),
                            updates_above=int(np.sum(huge)))
    if start is None:
        return None
    suggestion, why = _value_fix(ctx)
    cause = "the critic's error is far larger than it can correct in a few steps: " + why
    return Finding("value_loss_explosion", ctx.update(start), evidence, cause, suggestion)


def detect_value_loss_stuck(ctx: SeedSeries) -> Optional[Finding]:
    """Value loss pinned at the target variance (1.0 when normalised) with explained variance ~0 (003)."""
    value_loss, ev = ctx.get("value_loss"), ctx.get("explained_variance")
    if value_loss is None or ev is None or not ctx.facts.observations_predict_return:
        return None
    t = ctx.thresholds
    target_var = _critic_target_variance(ctx)
    if target_var is None:
        if getattr(ctx.config, "return_normalization", "off") == "off":
            return None
        target_var = np.ones_like(value_loss)  # normalised targets: unit variance
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = value_loss / target_var
    pinned = (np.abs(np.nan_to_num(ratio, nan=99.0) - 1.0) <= t.stuck_ratio_tolerance) & (
        np.nan_to_num(ev, nan=0.0) < t.stuck_explained_variance)
    start = first_run(pinned, ctx.length(t.stuck_fraction))
    if start is None:
        return None
    stop = start + ctx.length(t.stuck_fraction)
    evidence = {"value_loss_median": median(value_loss[start:stop]), "loss_over_target_variance": median(ratio[start:stop]),
                "explained_variance_median": median(ev[start:stop]), "updates_pinned": int(np.sum(pinned[start:]))}
    config = ctx.config
    critic_lr = getattr(config, "critic_learning_rate", None)
    lr = getattr(config, "learning_rate", None)
    if critic_lr is not None and finite_number(critic_lr) and float(critic_lr) < 1e-5:
        suggestion = (f"critic_learning_rate={_fmt(float(lr) if lr else _default_of(config, 'learning_rate'))}",)
        cause = (f"the critic predicts the batch mean and never more: critic_learning_rate={float(critic_lr):.3g} "
                 "is too small for it to learn")
    elif lr is not None and finite_number(lr) and float(lr) < 1e-5 and critic_lr is None:
        suggestion = (f"learning_rate={_fmt(_default_of(config, 'learning_rate'))}",)
        cause = f"the critic predicts the batch mean and never more: learning_rate={float(lr):.3g} is too small"
    else:
        suggestion, why = _value_fix(ctx)
        cause = "the critic predicts the batch mean and never more (loss = target variance, explained variance ~0); " + why
        if getattr(config, "return_normalization", "off") == "off":
            suggestion, cause = (), cause.split(";")[0] + (
                "; its inputs may not predict the return, and no single config change is known to fix it")
    return Finding("value_loss_stuck", ctx.update(start), evidence, cause, suggestion)


def detect_critic_useless(ctx: SeedSeries) -> Optional[Finding]:
    """Explained variance strongly negative for a sustained stretch (001's -143)."""
    ev = ctx.get("explained_variance")
    if ev is None:
        return None
    t = ctx.thresholds
    low = np.nan_to_num(ev, nan=0.0) < t.useless_explained_variance
    return_std, return_mean = ctx.get("return_std"), ctx.get("return_mean")
    if return_std is not None and return_mean is not None:
        # A solved CartPole seed sees the same return every step (std 5e-4 around 100): any critic noise
        # then reads as explained variance -1 or worse, but there is nothing left to explain.
        low &= np.nan_to_num(return_std, nan=0.0) >= t.useless_min_return_spread * np.maximum(np.abs(return_mean), 1.0)
    start = first_run(low, ctx.sustain)
    if start is None:
        return None
    evidence = {"explained_variance_median": median(ev[start:start + ctx.sustain]),
                "explained_variance_min": float(np.nanmin(ev)), "updates_below": int(np.sum(low))}
    suggestion, why = _value_fix(ctx)
    cause = ("the critic's predictions vary far more than the returns (explained variance well below 0), so its "
             "advantages are noise; " + why)
    return Finding("critic_useless", ctx.update(start), evidence, cause, suggestion)


def detect_value_clip_saturated(ctx: SeedSeries) -> Optional[Finding]:
    """Most value predictions clipped for a long stretch: the clip, not the loss, moves the critic (000)."""
    fraction = ctx.get("value_clip_fraction")
    if fraction is None or getattr(ctx.config, "value_clipping", "off") == "off":
        return None
    t = ctx.thresholds
    saturated = np.nan_to_num(fraction, nan=0.0) > t.value_clip_saturation
    length = ctx.length(t.value_clip_fraction_of_run)
    start = first_run(saturated, length)
    if start is None:
        return None
    evidence = {"value_clip_fraction_median": median(fraction[start:start + length]),
                "updates_saturated": int(np.sum(saturated)), "value_clip_epsilon": json_float(
                    getattr(ctx.config, "value_clip_epsilon", None))}
    suggestion, why = _value_fix(ctx)
    cause = (f"{ctx.config.value_clipping} value clipping at {float(ctx.config.value_clip_epsilon):.3g} binds on most "
             "samples, so the critic can move only a little per update towards targets far away; " + why)
    return Finding("value_clip_saturated", ctx.update(start), evidence, cause, suggestion)


def detect_frozen_policy(ctx: SeedSeries) -> Optional[Finding]:
    """KL ~0, no ratio clipping, entropy not falling, return not improving, for most of the run (001)."""
    kl, clip = ctx.get("approx_kl"), ctx.get("clip_fraction")
    if kl is None:
        return None
    t = ctx.thresholds
    frozen = np.nan_to_num(np.abs(kl), nan=0.0) < t.frozen_kl
    if clip is not None:
        frozen &= np.nan_to_num(clip, nan=0.0) < t.frozen_clip_fraction
    entropy = ctx.get("entropy")
    if entropy is not None and np.isfinite(entropy[0]):
        scale = max(abs(float(entropy[0])), 1e-3)
        frozen &= np.abs(entropy - entropy[0]) <= t.frozen_entropy_fraction * scale
    length = ctx.length(t.frozen_fraction)
    start = first_run(frozen, length)
    if start is None:
        return None
    baseline, scale = return_levels(ctx)
    gain = ctx.final(ctx.smoothed_return, ctx.return_valid) - baseline
    if math.isfinite(gain) and gain > t.no_learning_gain * scale:
        return None  # the return improved after all: a quiet policy that already works is not frozen
    stop = start + length
    evidence = {"approx_kl_median": median(kl[start:stop]),
                "clip_fraction_median": median(clip[start:stop]) if clip is not None else None,
                "entropy_first": float(entropy[0]) if entropy is not None else None,
                "entropy_last": float(entropy[-1]) if entropy is not None else None,
                "return_gain_over_random": json_float(gain)}
    config = ctx.config
    lr = getattr(config, "learning_rate", None)
    if lr is not None and finite_number(lr) and float(lr) < 1e-5:
        default = _default_of(config, "learning_rate")
        suggestion = (f"learning_rate={_fmt(default)}",)
        cause = (f"learning_rate={float(lr):.3g} moves the policy by almost nothing per step (KL "
                 f"{evidence['approx_kl_median']:.2g}); {_fmt(default)} is the default")
    else:
        adv = ctx.get("advantage_std")
        if adv is not None and median(adv) < 1e-3 and getattr(config, "reward_normalization", "off") == "off":
            suggestion = ("reward_normalization=running",)
            cause = "the rewards are so small that the advantages carry no signal; scale them by running statistics"
        else:
            suggestion = ()
            cause = ("the policy does not move (KL ~0, nothing clipped) although the learning rate is ordinary; "
                     "no single config change is known to fix it: check that the rewards vary with the actions")
    return Finding("frozen_policy", ctx.update(start), evidence, cause, suggestion)


def _smoothed_ratio(ratio: np.ndarray, ctx: SeedSeries) -> np.ndarray:
    """The clip ratio averaged like the returns, over learning updates only: one update's spike must not
    split a stretch in which every other step was clipped to nothing."""
    window = max(1, int(ctx.thresholds.smoothing_fraction * ctx.num_updates))
    return moving_mean(np.where(ctx.learning, ratio, np.nan), window)


def detect_gradient_explosion(ctx: SeedSeries) -> Optional[Finding]:
    """Clip ratio pinned near 0 while the raw gradient norm grows an order of magnitude or more."""
    ratio, norm = ctx.get("grad_clip_ratio"), ctx.get("grad_norm")
    if ratio is None or norm is None:
        return None
    t = ctx.thresholds
    mask = ctx.learning
    pinned = (np.nan_to_num(_smoothed_ratio(ratio, ctx), nan=1.0) < t.clip_ratio_pinned) & mask
    early = early_value(norm, mask)
    smooth = moving_mean(np.where(mask, norm, np.nan), max(1, int(t.smoothing_fraction * ctx.num_updates)))
    grown = np.nan_to_num(smooth, nan=0.0) >= t.grad_norm_growth * max(early, 1e-12)
    start = first_run_after_startup(pinned & grown, ctx.sustain, ctx.startup)
    if start is None:
        return None
    evidence = {"grad_norm_early": early, "grad_norm_at_start": float(norm[start]),
                "grad_norm_max": float(np.nanmax(np.where(mask, norm, np.nan))),
                "clip_ratio_median": median(ratio[start:start + ctx.sustain])}
    if getattr(ctx.config, "algorithm", "") == "ppo":
        suggestion, why = _value_fix(ctx)
        cause = ("the raw gradient norm grows until the global-norm clip shrinks every step 200-fold or more; in PPO the "
                 "critic's loss on growing targets is the usual source; " + why)
    else:
        bound = _q_bound(ctx)
        suggestion = (f"td_target_clip={_fmt(round(bound, 6))}",) if bound is not None else ()
        cause = ("the TD gradient grows without bound; clipping the gradient only rescales it (Adam normalises the "
                 "step anyway), clipping the TD target at the largest true value bounds the feedback loop"
                 if bound is not None else "the TD gradient grows without bound; no single change is known to fix "
                 "it without a bound on the returns")
    return Finding("gradient_explosion", ctx.update(start), evidence, cause, suggestion)


def detect_updates_clipped_away(ctx: SeedSeries) -> Optional[Finding]:
    """Global-norm clipping shrinks every step 200-fold or more for most of the run: one loss drowns the rest."""
    ratio = ctx.get("grad_clip_ratio")
    if ratio is None:
        return None
    t = ctx.thresholds
    pinned = (np.nan_to_num(_smoothed_ratio(ratio, ctx), nan=1.0) < t.clip_ratio_pinned) & ctx.learning
    length = ctx.length(t.clipped_away_fraction)
    start = first_run(pinned, length)
    if start is None:
        return None
    norm = ctx.get("grad_norm")
    evidence = {"clip_ratio_median": median(ratio[start:start + length]),
                "grad_norm_median": median(norm[start:start + length]) if norm is not None else None,
                "max_grad_norm": json_float(getattr(ctx.config, "max_grad_norm", None)),
                "updates_pinned": int(np.sum(pinned))}
    if getattr(ctx.config, "algorithm", "") == "ppo":
        suggestion, why = _value_fix(ctx)
        cause = ("actor and critic share one global-norm clip, and the critic's raw-scale gradient is so large that "
                 "every step is shrunk 200-fold or more: the policy learns at a two-hundredth of its rate; " + why)
    elif getattr(ctx.config, "reward_normalization", "off") == "off":
        suggestion = ("reward_normalization=running",)
        cause = ("every gradient step is shrunk 200-fold or more by the clip: the Q-network regresses raw returns "
                 "whose scale it cannot reach at its learning rate; normalising rewards by the running size of the "
                 "discounted return puts the targets near 1 (measured: CartPole at reward scale 1e3, 0/8 healthy "
                 "seeds without it, 8/8 with it)")
    else:
        suggestion = ()
        cause = "every gradient step is shrunk 200-fold or more by the clip; no single change is known to fix it"
    return Finding("updates_clipped_away", ctx.update(start), evidence, cause, suggestion)


def _q_bound(ctx: SeedSeries) -> Optional[float]:
    facts = ctx.facts
    if facts.reward_low is None or facts.reward_high is None:
        return None
    gamma = float(getattr(ctx.config, "gamma", 0.99))
    if gamma >= 1.0:
        return None
    return max(abs(facts.reward_low), abs(facts.reward_high)) / (1.0 - gamma)


def detect_q_divergence(ctx: SeedSeries) -> Optional[Finding]:
    """|Q| beyond ``q_bound_factor * r_max / (1 - gamma)``, or growing exponentially without a bound (002)."""
    q_max, q_min = ctx.get("q_max"), ctx.get("q_min")
    if q_max is None:
        return None
    t = ctx.thresholds
    mask = ctx.learning
    magnitude = np.abs(q_max) if q_min is None else np.maximum(np.abs(q_max), np.abs(q_min))
    magnitude = np.where(mask, np.nan_to_num(magnitude, nan=np.inf), 0.0)
    bound = _q_bound(ctx)
    evidence: dict[str, Any] = {"q_abs_max": float(np.max(magnitude)) if magnitude.size else None}
    if bound is not None:
        beyond = magnitude > t.q_bound_factor * bound
        start = first_run(beyond, ctx.sustain)
        evidence["q_bound"] = bound
    else:
        learned = magnitude[mask]
        if learned.size < 2:
            return None
        early = early_value(learned)
        beyond = mask & (magnitude > max(t.q_growth_factor * max(early, 1e-6), 1e3))
        start = first_run(beyond, ctx.sustain)
        evidence["q_early"] = early
    if start is None:
        return None
    evidence.update(q_at_start=float(magnitude[start]), q_final=ctx.final(np.where(mask, magnitude, np.nan)))
    clip = getattr(ctx.config, "td_target_clip", None)
    if bound is not None and (clip is None or float(clip) > bound * 1.0001):
        suggestion = (f"td_target_clip={_fmt(round(bound, 6))}",)
        cause = (f"Q-values far beyond the largest true value {bound:.4g} (r_max / (1 - gamma)): bootstrapped "
                 "over-estimates feed on themselves; gradient clipping does not stop this (Adam normalises the "
                 "step), clipping the TD target at the bound does")
    else:
        suggestion = ()
        cause = ("Q-values grow without bound; no single change is known to fix it without a bound on the returns "
                 "(set td_target_clip to r_max / (1 - gamma) if you know r_max)")
    return Finding("q_divergence", ctx.update(start), evidence, cause, suggestion)


def detect_greedy_drift(ctx: SeedSeries) -> Optional[Finding]:
    """Greedy agreement (online vs target) held a plateau, then fell and stayed down (002)."""
    agreement = ctx.get("greedy_agreement")
    if agreement is None:
        return None
    t = ctx.thresholds
    mask = ctx.learning
    if np.sum(mask) < 2 * ctx.sustain:
        return None
    smooth = moving_mean(np.where(mask, agreement, np.nan), max(1, int(t.smoothing_fraction * ctx.num_updates)))
    plateau_mask = np.nan_to_num(smooth, nan=0.0) >= t.drift_plateau
    plateau = first_run(plateau_mask, ctx.sustain)
    if plateau is None:
        return None
    level = median(smooth[plateau:plateau + ctx.sustain])
    low = np.nan_to_num(smooth, nan=1.0) <= level - t.drift_drop
    low[: plateau + ctx.sustain] = False
    start = holds_to_end_from(low)
    if start is None or ctx.num_updates - start < ctx.sustain:
        return None
    evidence = {"plateau_update": ctx.update(plateau), "plateau_agreement": level, "agreement_at_start": float(smooth[start]),
                "agreement_final": ctx.final(smooth)}
    q = detect_q_divergence(ctx)
    if q is not None and q.suggestion:
        suggestion, cause = q.suggestion, ("online and target networks stopped agreeing on the greedy action after "
                                           "agreeing; here the Q-values diverge too: " + q.cause)
    else:
        suggestion = ()
        cause = ("online and target networks stopped agreeing on the greedy action after agreeing: the values the "
                 "policy rests on keep changing; no single config change is known to fix it")
    return Finding("greedy_drift", ctx.update(start), evidence, cause, suggestion)


def detect_entropy_collapse(ctx: SeedSeries) -> Optional[Finding]:
    """Policy entropy near zero (relative to its first value) while the return is still not good."""
    entropy = ctx.get("entropy")
    if entropy is None or not np.isfinite(entropy[0]) or entropy[0] <= 0 or ctx.facts.discrete is False:
        return None
    t = ctx.thresholds
    collapsed = np.nan_to_num(entropy, nan=np.inf) < t.entropy_collapse_fraction * entropy[0]
    start = first_run(collapsed, ctx.sustain)
    if start is None:
        return None
    final_return = ctx.final(ctx.smoothed_return, ctx.return_valid)
    solved = ctx.facts.solved_return
    if solved is not None and math.isfinite(final_return) and final_return >= solved:
        return None
    at_collapse = ctx.smoothed_return[start]
    if solved is None:
        baseline, scale = return_levels(ctx)
        best = float(np.nanmax(ctx.smoothed_return[ctx.return_valid])) if np.any(ctx.return_valid) else math.nan
        if math.isfinite(best) and math.isfinite(final_return) and final_return >= best - 0.1 * scale:
            return None  # deterministic and at its best: cannot tell a collapse from convergence
    evidence = {"entropy_first": float(entropy[0]), "entropy_at_start": float(entropy[start]),
                "return_at_start": json_float(at_collapse), "smoothed_final_return": json_float(final_return)}
    coef = float(getattr(ctx.config, "entropy_coef", 0.0) or 0.0)
    new = 0.01 if coef <= 0 else coef * 5
    suggestion = (f"entropy_coef={_fmt(new)}",)
    cause = ("the policy became (almost) deterministic before its return was good, so it stopped exploring; a "
             "larger entropy bonus keeps it exploring longer")
    return Finding("entropy_collapse", ctx.update(start), evidence, cause, suggestion)


def detect_policy_collapse(ctx: SeedSeries) -> Optional[Finding]:
    """The smoothed return peaked, then lost most of its gain and was still down at the end (002)."""
    valid = ctx.return_valid
    smooth = ctx.smoothed_return
    if np.sum(valid) < 2 * ctx.sustain:
        return None
    t = ctx.thresholds
    baseline, scale = return_levels(ctx)
    values = np.where(valid, smooth, np.nan)
    peak_index = int(np.nanargmax(values))
    peak = float(values[peak_index])
    start_level = float(values[np.flatnonzero(valid)[0]])
    floor = min(baseline, start_level) if math.isfinite(baseline) else start_level
    gain = peak - floor
    if not math.isfinite(gain) or gain < t.collapse_min_gain * scale:
        return None
    threshold = peak - t.collapse_loss_fraction * gain
    below = np.nan_to_num(values, nan=np.inf) < threshold
    below[: peak_index + 1] = False
    start = holds_to_end_from(below)
    if start is None or ctx.num_updates - start < ctx.sustain:
        return None
    evidence = {"peak_update": ctx.update(peak_index), "peak_return": peak, "threshold": threshold,
                "smoothed_final_return": ctx.final(values), "random_return": json_float(ctx.facts.random_return)}
    cause = "the return rose to a peak, then fell most of the way back and stayed there"
    suggestion: tuple[str, ...] = ()
    for detector in (detect_q_divergence, detect_value_loss_explosion):
        underlying = detector(ctx)
        if underlying is not None and underlying.suggestion:
            suggestion = underlying.suggestion
            cause += f"; it follows {underlying.name}: " + underlying.cause
            break
    else:
        cause += "; no single config change is known to fix it (try more seeds: it may be this seed's luck)"
    return Finding("policy_collapse", ctx.update(start), evidence, cause, suggestion)


def detect_no_learning(ctx: SeedSeries) -> Optional[Finding]:
    """The final return is still at the random-policy level (or the seed's first returns)."""
    valid = ctx.return_valid
    if np.sum(valid) < ctx.sustain:
        return None
    t = ctx.thresholds
    baseline, scale = return_levels(ctx)
    final = ctx.final(ctx.smoothed_return, valid)
    if not (math.isfinite(final) and math.isfinite(baseline)):
        return None
    gain = final - baseline
    if gain >= t.no_learning_gain * scale:
        return None
    peak = float(np.nanmax(ctx.smoothed_return[valid]))
    if peak - baseline >= t.collapse_min_gain * scale:
        return None  # it did learn, then lost it: that is policy_collapse, not no_learning
    evidence = {"smoothed_final_return": final, "baseline_return": baseline, "gain": gain, "needed_gain": t.no_learning_gain * scale,
                "baseline_is": "random policy" if ctx.facts.random_return is not None else "the seed's first returns"}
    cause = "the return never rose above the random-policy level"
    return Finding("no_learning", ctx.update(int(np.flatnonzero(valid)[0])), evidence, cause, ())


def detect_trust_region_breakdown(ctx: SeedSeries) -> Optional[Finding]:
    """PPO's approximate KL per update far above any trust region, sustained: the clip no longer bounds
    how far one update moves the policy."""
    kl = ctx.get("approx_kl")
    if kl is None or getattr(ctx.config, "algorithm", "") != "ppo":
        return None
    t = ctx.thresholds
    target = getattr(ctx.config, "target_kl", None)
    limit = t.trust_region_kl
    if target is not None and finite_number(target):
        limit = t.trust_region_target_factor * float(target)
    smooth = moving_mean(kl, max(1, int(t.smoothing_fraction * ctx.num_updates)))
    start = first_run_after_startup(np.nan_to_num(smooth, nan=np.inf) > limit, ctx.sustain, ctx.startup)
    if start is None:
        return None
    above = np.flatnonzero(np.nan_to_num(kl[start:], nan=np.inf) > limit)
    start += int(above[0]) if above.size else 0  # the smoothing window reaches back before the first such update
    evidence = {"approx_kl_median": median(kl[start:start + ctx.sustain]), "kl_limit": limit,
                "target_kl": json_float(target), "learning_rate": json_float(getattr(ctx.config, "learning_rate", None)),
                "num_epochs": getattr(ctx.config, "num_epochs", None),
                "clip_epsilon": json_float(getattr(ctx.config, "clip_epsilon", None))}
    if target is None:
        suggestion: tuple[str, ...] = ("target_kl=0.02",)
        cause = (f"each update moves the policy by a KL of {evidence['approx_kl_median']:.3g}, over {limit:g}: the "
                 "ratio clip only zeroes the gradient of samples already outside it, so many epochs or large steps "
                 "walk far past it; stopping an update's epochs once KL exceeds a target bounds the step")
    else:
        suggestion = ()
        cause = (f"KL of {evidence['approx_kl_median']:.3g} per update despite target_kl={_fmt(target)}: single "
                 "minibatch steps are already too large for early stopping to catch")
    return Finding("trust_region_breakdown", ctx.update(start), evidence, cause, suggestion)


def _gaussian_action_dims(ctx: SeedSeries, first_entropy: float) -> Optional[int]:
    """The action dimension if ``first_entropy`` is a diagonal Gaussian's at ``log_std_init``, else None.

    The actor's log-std is one parameter per dimension starting at ``log_std_init``, so its entropy
    starts at ``d * (log_std_init + 0.5 * log(2 pi e))``; a categorical policy's does not fit that."""
    per_dim = float(getattr(ctx.config, "log_std_init", 0.0) or 0.0) + 0.5 * (1.0 + math.log(2 * math.pi))
    if per_dim <= 0.1:
        return None
    dims = round(first_entropy / per_dim)
    if dims < 1 or abs(first_entropy - dims * per_dim) > 0.1 * dims:
        return None
    return int(dims)


def detect_exploration_collapse(ctx: SeedSeries) -> Optional[Finding]:
    """A Gaussian policy's standard deviations shrank about 20-fold while the return is still not good."""
    entropy = ctx.get("entropy")
    if entropy is None or ctx.facts.discrete is True or not np.isfinite(entropy[0]):
        return None
    dims = _gaussian_action_dims(ctx, float(entropy[0]))
    if dims is None:
        return None
    t = ctx.thresholds
    collapsed = np.nan_to_num(entropy, nan=np.inf) < float(entropy[0]) - t.gaussian_entropy_drop * dims
    start = first_run(collapsed, ctx.sustain)
    if start is None:
        return None
    final_return = ctx.final(ctx.smoothed_return, ctx.return_valid)
    if ctx.facts.solved_return is None:
        _, scale = return_levels(ctx)
        best = float(np.nanmax(ctx.smoothed_return[ctx.return_valid])) if np.any(ctx.return_valid) else math.nan
        if math.isfinite(best) and math.isfinite(final_return) and final_return >= best - 0.1 * scale:
            return None  # narrow and at its best: cannot tell a collapse from convergence
    std_ratio = math.exp((float(entropy[start]) - float(entropy[0])) / dims)
    evidence = {"entropy_first": float(entropy[0]), "entropy_at_start": float(entropy[start]), "action_dims": dims,
                "std_over_initial": std_ratio, "smoothed_final_return": json_float(final_return)}
    coef = float(getattr(ctx.config, "entropy_coef", 0.0) or 0.0)
    suggestion = (f"entropy_coef={_fmt(0.01 if coef <= 0 else coef * 5)}",)
    cause = (f"the Gaussian policy's standard deviations fell to {std_ratio:.2g} of their start before the return "
             "was good, so it stopped exploring; an entropy bonus keeps them wider for longer")
    return Finding("exploration_collapse", ctx.update(start), evidence, cause, suggestion)


def _epsilon_at(config: Any, env_steps: np.ndarray) -> Optional[np.ndarray]:
    """DQN's epsilon schedule (linear decay over ``epsilon_decay_fraction * total_timesteps``), or None."""
    names = ("epsilon_start", "epsilon_end", "epsilon_decay_fraction", "total_timesteps")
    values = [getattr(config, name, None) for name in names]
    if not all(finite_number(v) for v in values):
        return None
    start, end, fraction, total = (float(v) for v in values)
    progress = np.clip(env_steps / max(fraction * total, 1.0), 0.0, 1.0)
    return start + (end - start) * progress


def detect_exploration_never_decays(ctx: SeedSeries) -> Optional[Finding]:
    """DQN's epsilon is still high at the end of the run: much of every policy's behaviour is random."""
    steps = getattr(ctx.config, "steps_per_update", None)
    total_updates = getattr(ctx.config, "num_updates", None)
    if getattr(ctx.config, "algorithm", "") != "dqn" or not steps or not isinstance(total_updates, int):
        return None
    if ctx.num_updates * ctx.metrics_every < total_updates:
        return None  # the metrics do not reach the run's end, where the schedule is judged
    updates = np.array([ctx.update(i) for i in range(ctx.num_updates)], dtype=np.float64)
    epsilon = _epsilon_at(ctx.config, updates * float(steps))
    if epsilon is None or epsilon[-1] < ctx.thresholds.epsilon_high:
        return None
    high = epsilon >= ctx.thresholds.epsilon_high
    # From where the usual schedules are done (half the run) the high epsilon is no longer the plan.
    start = max(int(ctx.num_updates // 2), int(np.flatnonzero(high)[0]))
    evidence = {"epsilon_final": float(epsilon[-1]), "epsilon_end": json_float(getattr(ctx.config, "epsilon_end", None)),
                "epsilon_decay_fraction": json_float(getattr(ctx.config, "epsilon_decay_fraction", None)),
                "smoothed_final_return": json_float(ctx.final(ctx.smoothed_return, ctx.return_valid))}
    cause = (f"epsilon is still {evidence['epsilon_final']:.2g} at the last step, so that share of actions is random "
             "to the end and the return measures the exploration as much as the policy")
    return Finding("exploration_never_decays", ctx.update(start), evidence, cause, ("epsilon_end=0.05",
                                                                                 "epsilon_decay_fraction=0.5"))


def detect_memory_unused(ctx: SeedSeries) -> Optional[Finding]:
    """A recurrent policy whose greedy return does not fall when its memory is wiped at every step.

    Judged from the run's final evaluation (the same episodes played twice), so only where one is
    given: ``jaxppo diagnose`` on a run directory and the end of ``jaxppo train`` pass the last
    ``eval.jsonl`` record when it evaluated the final update.
    """
    carried = ctx.evaluation.get("eval_return")
    wiped = ctx.evaluation.get("eval_return_memory_wiped")
    if carried is None or wiped is None or not (math.isfinite(carried) and math.isfinite(wiped)):
        return None
    _, scale = return_levels(ctx)
    benefit = carried - wiped
    needed = ctx.thresholds.memory_benefit * scale
    if benefit >= needed:
        return None
    evidence = {"eval_return": carried, "eval_return_memory_wiped": wiped, "memory_benefit": benefit,
                "needed_benefit": needed}
    cause = (f"the policy plays as well with its memory wiped at every step ({wiped:.4g}) as with it ({carried:.4g}): "
             "it acts on the current observation alone, so on a task that needs memory it can do no better than a "
             "feed-forward policy")
    last = ctx.last_update if ctx.last_update is not None else ctx.update(ctx.num_updates - 1)
    return Finding("memory_unused", last, evidence, cause, ())


def detect_stalled(ctx: SeedSeries) -> Optional[Finding]:
    """Learned something, then stopped improving well below the env's solved level."""
    facts = ctx.facts
    valid = ctx.return_valid
    if facts.random_return is None or facts.solved_return is None or np.sum(valid) < 2 * ctx.sustain:
        return None
    t = ctx.thresholds
    baseline, scale = return_levels(ctx)
    final = ctx.final(ctx.smoothed_return, valid)
    if not math.isfinite(final):
        return None
    gain = final - baseline
    if gain < t.no_learning_gain * scale or final >= baseline + t.stall_fraction * scale:
        return None  # no_learning's case, or far enough along
    values = ctx.smoothed_return
    window = max(ctx.sustain, int(math.ceil(t.stall_window * ctx.num_updates)))
    if window >= ctx.num_updates:
        return None
    before = median(values[-window:-window + ctx.sustain])
    rise = final - before
    if not math.isfinite(rise) or rise >= t.stall_rise * scale:
        return None  # still rising: slow, not stalled
    peak = float(np.nanmax(values[valid]))
    if peak - final >= t.collapse_loss_fraction * gain:
        return None  # it was higher before: policy_collapse's case
    evidence = {"smoothed_final_return": final, "random_return": baseline, "solved_return": facts.solved_return,
                "rise_over_last_window": rise, "window_updates": window}
    cause = (f"the return rose above random, then stayed at {final:.4g}, less than half way to the solved level "
             f"{facts.solved_return:g}, for the last {window} updates")
    return Finding("stalled", ctx.update(ctx.num_updates - window), evidence, cause, ())


# The order is the order of likely causation: when a seed shows several, the first is reported as the
# primary cause and its suggestion is the one to try first.
DETECTORS: tuple[tuple[str, Callable[[SeedSeries], Optional[Finding]]], ...] = (
    ("nonfinite", detect_nonfinite),
    ("q_divergence", detect_q_divergence),
    ("value_loss_explosion", detect_value_loss_explosion),
    ("updates_clipped_away", detect_updates_clipped_away),
    ("value_clip_saturated", detect_value_clip_saturated),
    ("value_loss_stuck", detect_value_loss_stuck),
    ("critic_useless", detect_critic_useless),
    ("frozen_policy", detect_frozen_policy),
    ("gradient_explosion", detect_gradient_explosion),
    ("trust_region_breakdown", detect_trust_region_breakdown),
    ("entropy_collapse", detect_entropy_collapse),
    ("exploration_collapse", detect_exploration_collapse),
    ("exploration_never_decays", detect_exploration_never_decays),
    ("memory_unused", detect_memory_unused),
    ("greedy_drift", detect_greedy_drift),
    ("policy_collapse", detect_policy_collapse),
    ("stalled", detect_stalled),
    ("no_learning", detect_no_learning),
)

PATHOLOGIES: tuple[str, ...] = tuple(name for name, _ in DETECTORS)
"""The detectors' names in ``DETECTORS`` order, the order of likely causation."""
