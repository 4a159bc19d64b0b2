"""Verified advice: re-train a run's seeds under each candidate change and keep what measurably helps.

The five debugging reports behind jaxppo each applied the fix that matched a symptom and never
checked it. Here the candidates come from the diagnosis's ranked hypotheses (the changes proposed
for the most failing seeds, best score first), each is trained on the run's own seeds (the same
keys), and each is judged against the unchanged config trained beside it at the same length:

* flagged seeds fixed: unhealthy under the unchanged config, healthy under the candidate;
* healthy seeds broken: the reverse;
* the final return's interquartile mean with its 95% bootstrap interval;
* the cost, in env steps per second of the program that trained it.

The recommendation is the candidate that fixes the most seeds net of those it breaks, among those
that fix more than they break and whose final-return IQM is at least the unchanged config's. Where
none qualifies there is no recommendation, and the report says so: a change that measured worse than
the run is never recommended.

Configs that differ only in numeric leaves (``learning_rate``, ``entropy_coef`` ...) are stacked into
one program with the unchanged config, as ``jaxppo.sweep`` stacks a grid; a change to a size or a
mode (``num_epochs``, ``return_normalization``) needs a program of its own. Each program's results
are written to ``out_dir/results.json`` as soon as it finishes, so an interrupted verification
resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

__all__ = ["Candidate", "CandidateResult", "Verification", "candidates_from", "verify", "markdown_table"]

BASELINE = "unchanged"
RESULTS_FILE = "results.json"
TABLE_FILE = "results.md"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A change to try: ``key=value`` overrides, why the diagnosis proposes it, for how many failing seeds."""

    overrides: tuple[str, ...]
    why: str
    seeds_proposing: int
    score: float

    @property
    def name(self) -> str:
        return " ".join(self.overrides) if self.overrides else BASELINE


@dataclasses.dataclass(frozen=True)
class CandidateResult:
    name: str
    overrides: tuple[str, ...]
    why: str
    healthy: tuple[bool, ...]
    final_returns: tuple[Optional[float], ...]
    final_return: dict  # jaxppo.stats.summarize_seeds
    env_steps_per_second: Optional[float]
    flagged_fixed: int = 0
    flagged_total: int = 0
    healthy_broken: int = 0
    healthy_total: int = 0
    error: Optional[str] = None  # the change could not be applied (the config refused it)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["overrides"] = list(self.overrides)
        data["healthy"] = list(self.healthy)
        data["final_returns"] = list(self.final_returns)
        return data


@dataclasses.dataclass(frozen=True)
class Verification:
    baseline: CandidateResult
    results: tuple[CandidateResult, ...]
    recommended: Optional[str]
    reason: str
    num_seeds: int
    seed: int
    fraction: float
    total_timesteps: int

    def to_dict(self) -> dict:
        return {"baseline": self.baseline.to_dict(), "candidates": [r.to_dict() for r in self.results],
                "recommended": self.recommended, "reason": self.reason, "num_seeds": self.num_seeds,
                "seed": self.seed, "fraction": self.fraction, "total_timesteps": self.total_timesteps}


def candidates_from(diagnosis: Any, limit: int = 5) -> list[Candidate]:
    """The changes the diagnosis proposes for its failing seeds, most-proposed first (ties: best score).

    Every hypothesis with a change, on every failure of every unhealthy seed, counts once per seed.
    """
    proposed: dict[tuple[str, ...], dict] = {}
    for seed in diagnosis.seeds:
        if seed.healthy:
            continue
        best_for_seed: dict[tuple[str, ...], tuple[float, str]] = {}
        for finding in seed.failures:
            for hypothesis in finding.hypotheses or ():
                if not hypothesis.suggestion:
                    continue
                key = tuple(hypothesis.suggestion)
                if key not in best_for_seed or hypothesis.score > best_for_seed[key][0]:
                    best_for_seed[key] = (hypothesis.score, hypothesis.explanation)
        for key, (score, why) in best_for_seed.items():
            entry = proposed.setdefault(key, {"seeds": 0, "score": 0.0, "why": why})
            entry["seeds"] += 1
            if score > entry["score"]:
                entry["score"], entry["why"] = score, why
    ranked = sorted(proposed.items(), key=lambda item: (-item[1]["score"], -item[1]["seeds"]))
    return [Candidate(key, entry["why"], entry["seeds"], entry["score"]) for key, entry in ranked[:limit]]


def shortened(config: Any, fraction: float) -> Any:
    """``config`` trained for ``fraction`` of its env steps (whole updates, at least one)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction={fraction!r} must be in (0, 1].")
    if fraction == 1.0:
        return config
    steps = config.steps_per_update
    updates = max(1, int(round(fraction * config.total_timesteps / steps)))
    return config.replace(total_timesteps=updates * steps)


def _summarize(name: str, overrides: tuple[str, ...], why: str, metrics: Mapping[str, np.ndarray], config: Any,
               steps_per_second: Optional[float]) -> CandidateResult:
    from jaxppo.diagnosis.report import diagnose, final_returns
    from jaxppo.stats import summarize_seeds

    diagnosis = diagnose(dict(metrics), config)
    finals = final_returns(metrics)
    clean = tuple(float(x) if math.isfinite(x) else None for x in finals)
    return CandidateResult(name, overrides, why, tuple(bool(h) for h in diagnosis.healthy), clean,
                           summarize_seeds(finals), steps_per_second)


def _compare(result: CandidateResult, baseline: CandidateResult) -> CandidateResult:
    base, new = np.asarray(baseline.healthy), np.asarray(result.healthy)
    return dataclasses.replace(result, flagged_fixed=int(np.sum(~base & new)), flagged_total=int(np.sum(~base)),
                               healthy_broken=int(np.sum(base & ~new)), healthy_total=int(np.sum(base)))


def _recommend(baseline: CandidateResult, results: Sequence[CandidateResult]) -> tuple[Optional[str], str]:
    base_iqm = baseline.final_return.get("iqm")
    qualified = []
    for result in results:
        iqm = result.final_return.get("iqm")
        if result.error or iqm is None or result.flagged_fixed <= result.healthy_broken:
            continue
        if base_iqm is not None and iqm < base_iqm:
            continue
        qualified.append(result)
    if not qualified:
        return None, ("no candidate fixed more seeds than it broke without lowering the final-return IQM below "
                      "the unchanged config's; none is recommended")
    best = max(qualified, key=lambda r: (r.flagged_fixed - r.healthy_broken, r.final_return["iqm"]))
    return best.name, (f"fixes {best.flagged_fixed} of {best.flagged_total} flagged seeds and breaks "
                       f"{best.healthy_broken} of {best.healthy_total} healthy ones; final-return IQM "
                       f"{best.final_return['iqm']:.4g} against {_fmt(base_iqm)} unchanged")


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _fingerprint(config: Any, seed: int, num_seeds: int, fraction: float) -> str:
    from jaxppo.config import config_to_dict

    text = json.dumps({"config": config_to_dict(config), "seed": seed, "num_seeds": num_seeds, "fraction": fraction},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def verify(config: Any, diagnosis: Any, *, seed: int = 0, num_seeds: Optional[int] = None, fraction: float = 1.0,
           limit: int = 5, candidates: Optional[Sequence[Candidate]] = None, out_dir: Optional[str] = None,
           progress: Optional[Callable[[str], None]] = None,
           train_fn: Optional[Callable[..., tuple]] = None,
           run_metrics: Optional[Mapping[str, np.ndarray]] = None) -> Verification:
    """Trains the run's seeds under each candidate change (default: ``candidates_from(diagnosis, limit)``).

    ``seed`` / ``num_seeds``: the run's base seed and seed count (seed ``i`` uses
    ``split(PRNGKey(seed), num_seeds)[i]``, as the run did). ``fraction``: the share of the run's env
    steps to train; the unchanged config is re-trained at that length beside the candidates, except at
    ``fraction=1`` with ``run_metrics`` (the finished run's per-seed metrics ``[S, num_updates]``, from
    the same config and keys): those are the unchanged config's result, so it is not trained again (its
    env steps/s then reads n/a: the run's own rate counts compilation and host work).
    ``out_dir``: where ``results.json`` and ``results.md`` go, written after every program (a rerun
    with the same config, seeds and fraction skips what is there). ``train_fn``: a seam for tests,
    ``jaxppo.programs.train_stacked`` by default.
    """
    from jaxppo import programs
    from jaxppo.config import apply_overrides
    from jaxppo.run_io import atomic_write_json, atomic_write_text

    train_fn = train_fn or programs.train_stacked
    num_seeds = diagnosis.num_seeds if num_seeds is None else int(num_seeds)
    base_config = shortened(config, fraction)
    candidates = list(candidates_from(diagnosis, limit) if candidates is None else candidates)
    say = progress or (lambda _: None)

    fingerprint = _fingerprint(config, seed, num_seeds, fraction)
    done: dict[str, dict] = {}
    results_path = os.path.join(out_dir, RESULTS_FILE) if out_dir else None
    if results_path and os.path.exists(results_path):
        try:
            with open(results_path, encoding="utf-8") as handle:
                previous = json.load(handle)
            if previous.get("fingerprint") == fingerprint:
                done = dict(previous.get("raw", {}))
        except (OSError, ValueError):
            done = {}  # unreadable: start over (it is replaced atomically below)

    entries: list[tuple[str, tuple[str, ...], str, Any, Optional[str]]] = [(BASELINE, (), "", base_config, None)]
    for candidate in candidates:
        try:
            entries.append((candidate.name, candidate.overrides, candidate.why,
                            apply_overrides(base_config, list(candidate.overrides)), None))
        except ValueError as error:
            entries.append((candidate.name, candidate.overrides, candidate.why, None, str(error)))

    if BASELINE not in done and _run_is_baseline(run_metrics, base_config, num_seeds, fraction):
        done[BASELINE] = _summarize(BASELINE, (), "", {k: np.asarray(v) for k, v in run_metrics.items()},
                                    base_config, None).to_dict()
        say("verify: the run itself is the unchanged config's result at fraction 1 (not trained again)")

    groups: dict[tuple, list[int]] = {}
    for index, (name, _, _, cfg, error) in enumerate(entries):
        if cfg is not None and name not in done:
            groups.setdefault(programs.program_signature(cfg), []).append(index)
    keys = programs.seed_keys(seed, num_seeds)

    def write(partial: bool) -> Verification:
        verification = _assemble(entries, done, num_seeds, seed, fraction, base_config.total_timesteps)
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
            atomic_write_json(results_path, {"fingerprint": fingerprint, "complete": not partial,
                                             "verification": verification.to_dict(), "raw": done})
            atomic_write_text(os.path.join(out_dir, TABLE_FILE), markdown_table(verification) + "\n")
        return verification

    for number, indices in enumerate(groups.values(), 1):
        names = ", ".join(entries[i][0] for i in indices)
        say(f"verify: program {number}/{len(groups)}: {len(indices)} config(s) x {num_seeds} seeds ({names})")
        metrics, _, run_s, _ = train_fn([entries[i][3] for i in indices], keys)
        steps = len(indices) * num_seeds * base_config.total_timesteps
        rate = steps / run_s if run_s > 0 else None
        for position, index in enumerate(indices):
            name, overrides, why, cfg, _ = entries[index]
            cell = {key: np.asarray(value[position]) for key, value in metrics.items()}
            done[name] = _summarize(name, overrides, why, cell, cfg, rate).to_dict()
        write(partial=number < len(groups))
    return write(partial=False)


def _run_is_baseline(run_metrics: Optional[Mapping[str, np.ndarray]], config: Any, num_seeds: int,
                     fraction: float) -> bool:
    """The run's own metrics stand for the unchanged config: the full length, every update recorded
    (``run.metrics_every`` 1), every seed."""
    if run_metrics is None or fraction != 1.0 or "episode_return" not in run_metrics:
        return False
    return tuple(np.shape(run_metrics["episode_return"])) == (num_seeds, config.num_updates)


def _assemble(entries: Sequence[tuple], done: Mapping[str, dict], num_seeds: int, seed: int, fraction: float,
              total_timesteps: int) -> Verification:
    def load(data: Mapping[str, Any]) -> CandidateResult:
        return CandidateResult(**{**data, **{name: tuple(data[name])
                                             for name in ("overrides", "healthy", "final_returns")}})

    empty = CandidateResult(BASELINE, (), "", (), (), {"iqm": None, "iqm_ci": [None, None]}, None)
    baseline = load(done[BASELINE]) if BASELINE in done else empty
    results = []
    for name, overrides, why, _, error in entries[1:]:
        if error is not None:
            results.append(dataclasses.replace(empty, name=name, overrides=overrides, why=why, error=error))
        elif name in done:
            results.append(_compare(load(done[name]), baseline) if baseline.healthy else load(done[name]))
    recommended, reason = _recommend(baseline, results) if baseline.healthy else (None, "not finished")
    return Verification(baseline, tuple(results), recommended, reason, num_seeds, seed, fraction, total_timesteps)


def markdown_table(verification: Verification) -> str:
    """One row per candidate (the unchanged config first), and the recommendation under it."""
    def interval(summary: Mapping[str, Any]) -> str:
        low, high = summary.get("iqm_ci") or [None, None]
        return f"{_fmt(summary.get('iqm'))} [{_fmt(low)}, {_fmt(high)}]"

    def rate(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:,.0f}"

    base = verification.baseline
    lines = [f"Same {verification.num_seeds} seeds (base seed {verification.seed}), "
             f"{verification.total_timesteps:,} env steps each ({verification.fraction:g} of the run).", "",
             "| change | flagged seeds fixed | healthy seeds broken | final return IQM [95% CI] | env steps/s |",
             "|---|---|---|---|---|",
             f"| {BASELINE} ({sum(not h for h in base.healthy)}/{len(base.healthy)} seeds flagged) | - | - | "
             f"{interval(base.final_return)} | {rate(base.env_steps_per_second)} |"]
    for result in verification.results:
        if result.error:
            lines.append(f"| `{result.name}` | refused: {result.error} | | | |")
            continue
        mark = " (recommended)" if result.name == verification.recommended else ""
        lines.append(f"| `{result.name}`{mark} | {result.flagged_fixed}/{result.flagged_total} | "
                     f"{result.healthy_broken}/{result.healthy_total} | {interval(result.final_return)} | "
                     f"{rate(result.env_steps_per_second)} |")
    verdict = (f"Recommended: `{verification.recommended}`: {verification.reason}." if verification.recommended
               else f"No recommendation: {verification.reason}.")
    return "\n".join(lines + ["", verdict])
