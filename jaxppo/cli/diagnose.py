"""``jaxppo diagnose``: what went wrong in a run, on which seeds, when, why, and the change to try."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Optional

from jaxppo.cli.common import UsageError

_EPILOG = """\
Reads RUN_DIR/metrics_per_seed.npz and config.yaml (any run directory, also those written before
diagnosis existed); nothing is trained. For each pathology it counts the seeds that show it; for one
seed (default: the worst) it prints the phases of its learning curve with update numbers, each
finding's evidence and likely cause, and the change to try as a ready command line.
Detectors and thresholds: docs/stability.md#diagnosis.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "diagnose", help="label every seed of a run with its pathologies, their causes and fixes",
        description="Diagnose every seed of RUN_DIR: pathologies, when they began, why, and what to change.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--seed", type=int, default=None, metavar="I",
                        help="the seed to report in detail (default: the worst seed)")
    parser.add_argument("--json", action="store_true", help="print the whole diagnosis as JSON")
    parser.add_argument("--verify", action="store_true",
                        help="re-train the run's seeds under each candidate change (same keys) and recommend only a "
                             "change that measurably fixes seeds; results in RUN_DIR/verify/")
    parser.add_argument("--fraction", type=float, default=1.0, metavar="F",
                        help="with --verify: train this share of the run's env steps (default 1)")
    parser.add_argument("--candidates", type=int, default=5, metavar="N",
                        help="with --verify: at most N candidate changes (default 5)")
    parser.set_defaults(handler=run)


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_number(v)}" for k, v in value.items()) + "}"
    return str(value)


def _train_command(run_dir: str, suggestion: tuple[str, ...] | list[str]) -> str:
    sets = " ".join(f"--set {item}" for item in suggestion)
    return f"jaxppo train {os.path.join(run_dir, 'config.yaml')} {sets}"


def report_lines(run_dir: str, config: Any, diagnosis: Any, seed: int, labels: Optional[list[str]] = None
                 ) -> list[str]:
    """The human-readable report: counts over seeds, then one seed in detail. ``labels``: a sweep's
    setting and seed per lane (``jaxppo.run_summary.lane_labels``)."""
    what = "lanes (settings x seeds)" if labels else "seeds"
    lines = [f"{config.algorithm.upper()} on {config.env}: {diagnosis.num_seeds} {what}, "
             f"{diagnosis.num_healthy} healthy"]
    if labels:
        lines.append("  a sweep: each lane is one setting's seed; causes are ranked against the sweep's base config "
                     "(jaxppo sweep's table gives each setting's own diagnosis)")
    flagged = [(name, n) for name, n in diagnosis.counts.items() if n]
    if flagged:
        width = max([len("pathology")] + [len(name) for name, _ in flagged])
        lines.append("  " + "pathology".ljust(width) + "  seeds")
        for name, count in flagged:
            lines.append(f"  {name:<{width}}  {count}/{diagnosis.num_seeds}")
        lines.append("  worst seeds: " + ", ".join(str(s) for s in diagnosis.worst_seeds(5)))
    warned = [f"{name} {n}" for name, n in diagnosis.warning_counts.items() if n]
    if warned:
        lines.append("  warnings (signatures on seeds that solved all the same): " + ", ".join(warned))
    chosen = diagnosis.seeds[seed]
    final = "n/a (no episode finished)" if chosen.final_return is None else f"{chosen.final_return:.4g}"
    solved = ""
    if chosen.solved is not None:
        solved = f", {'solved' if chosen.solved else 'not solved'} (threshold {diagnosis.solved_return:g})"
    lines += ["", f"seed {seed}{f' ({labels[seed]})' if labels else ''}: final return {final}{solved}"]
    if chosen.phases:
        lines.append("  phases")
        for phase in chosen.phases:
            lines.append(f"    {phase.name:<9} updates {phase.start_update:>5}-{phase.end_update:<5}  return "
                         f"{_number(phase.return_start)} -> {_number(phase.return_end)}")
    if not chosen.findings:
        lines.append("  no pathology found")
        return lines
    lines.append("  findings (earliest first)")
    for finding in chosen.findings:
        label = "" if finding.severity == "failure" else " (warning: the seed solved all the same)"
        lines.append(f"    {finding.name} from update {finding.start_update}{label}")
        lines.append("      evidence: " + ", ".join(f"{k}={_number(v)}" for k, v in finding.evidence.items()))
        lines.append(f"      cause:    {finding.cause}")
    primary = chosen.primary
    if primary is None:
        lines += ["", "  no failure: the findings above did not keep this seed from solving"]
        return lines
    lines += ["", f"  likely cause: {primary.name}"]
    if len(primary.hypotheses) > 1:
        lines.append("  hypotheses, most likely first:")
        for rank, hypothesis in enumerate(primary.hypotheses[:3], 1):
            change = " ".join(hypothesis.suggestion) or "no single change"
            lines.append(f"    {rank}. [{change}] {hypothesis.explanation}")
    if primary.suggestion:
        lines.append(f"  try:          {_train_command(run_dir, primary.suggestion)}")
    else:
        lines.append("  try:          no single config change is known to fix it (see the cause above)")
    return lines


def _check_verify_args(args: argparse.Namespace) -> None:
    if not args.verify:
        if args.fraction != 1.0 or args.candidates != 5:
            raise UsageError("--fraction and --candidates apply only with --verify")
        return
    if not 0.0 < args.fraction <= 1.0:
        raise UsageError(f"--fraction {args.fraction:g} must be in (0, 1]: the share of the run's env steps to train")
    if args.candidates < 1:
        raise UsageError(f"--candidates {args.candidates} must be at least 1")
    if os.path.isdir(args.run_dir) and not os.access(args.run_dir, os.W_OK):
        raise UsageError(f"{args.run_dir!r} is read-only: --verify writes its results to {VERIFY_DIR}/ inside it")


VERIFY_DIR = "verify"


def _finished_run_metrics(run_dir: str) -> Optional[dict]:
    """The run's per-seed metrics if its summary says it is complete, else None: at ``--fraction 1`` they
    are the unchanged config's result, which then is not trained again."""
    from jaxppo.run_dir import SUMMARY_FILE, read_per_seed_metrics

    try:
        with open(os.path.join(run_dir, SUMMARY_FILE), encoding="utf-8") as handle:
            summary = json.load(handle)
        if not summary.get("complete"):
            return None
        return read_per_seed_metrics(run_dir, scalars_only=True)
    except (OSError, ValueError):
        return None


def run(args: argparse.Namespace) -> int:
    import sys

    from jaxppo import runner

    _check_verify_args(args)
    config, run_info, diagnosis = runner.diagnose_run(args.run_dir)
    if args.verify:
        import dataclasses

        from jaxppo.diagnosis.verify import verify

        if run_info.get("grid"):
            raise UsageError(f"{args.run_dir!r} is a sweep; --verify re-trains plain seed runs only")
        run_metrics = _finished_run_metrics(args.run_dir)
        verification = verify(config, diagnosis, seed=int(run_info["seed"]), num_seeds=int(run_info["num_seeds"]),
                              fraction=args.fraction, limit=args.candidates,
                              out_dir=os.path.join(args.run_dir, VERIFY_DIR),
                              progress=lambda line: print(line, file=sys.stderr, flush=True),
                              run_metrics=run_metrics)
        diagnosis = dataclasses.replace(diagnosis, verification=verification)
    seed: Optional[int] = args.seed
    if seed is None:
        worst = diagnosis.worst_seeds(1)
        seed = worst[0] if worst else 0
    if not 0 <= seed < diagnosis.num_seeds:
        raise UsageError(f"--seed {seed} is out of range: this run has seeds 0 to {diagnosis.num_seeds - 1}")
    if args.json:
        data = diagnosis.to_dict()
        data["run_dir"] = os.path.abspath(args.run_dir)
        data["chosen_seed"] = seed
        chosen = diagnosis.seeds[seed]
        data["command"] = _train_command(args.run_dir, chosen.suggestion) if chosen.suggestion else None
        print(json.dumps(data, indent=2, allow_nan=False))
    else:
        from jaxppo.run_summary import lane_labels

        print("\n".join(report_lines(args.run_dir, config, diagnosis, seed, lane_labels(run_info))))
        if diagnosis.verification is not None:
            from jaxppo.diagnosis.verify import markdown_table

            verification = diagnosis.verification
            print("\nverified changes (" + os.path.join(args.run_dir, VERIFY_DIR, "results.md") + ")")
            print(markdown_table(verification))
            if verification.recommended:
                print("try (verified):  " + _train_command(args.run_dir, verification.recommended.split()))
    return 0
