"""``run.metrics_every``: per-seed history in blocks of updates, for runs too long or too wide to keep
every update of every seed, while metrics.jsonl keeps every update's statistics over seeds."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from jaxppo import PPOConfig, apply_overrides, runner
from jaxppo.diagnosis.core import diagnose

# 12 updates of a tiny PPO, chunks of 4, evaluation every 4: three blocks of 4 when metrics_every=4.
TINY = [
    "num_envs=2", "num_steps=16", "total_timesteps=384", "num_epochs=1", "num_minibatches=2",
    "hidden_sizes=[16]", "run.updates_per_chunk=4", "run.eval_interval=4", "run.eval_episodes=2",
    "run.checkpoint_every_chunks=1",
]


def blocks_by_loop(values: np.ndarray, every: int) -> np.ndarray:
    """The documented reduction written as a plain loop: non-NaN mean for floats, last for integers."""
    num_seeds, n = values.shape[:2]
    out = []
    for start in range(0, n, every):
        block = values[:, start:start + every]
        if np.issubdtype(values.dtype, np.floating):
            column = np.full((num_seeds,) + values.shape[2:], np.nan)
            for s in range(num_seeds):
                kept = [v for v in block[s] if not np.all(np.isnan(v))] if block.ndim == 2 else None
                if block.ndim == 2:
                    column[s] = np.mean(kept) if kept else np.nan
                else:
                    column[s] = np.nanmean(block[s], axis=0)
            out.append(column.astype(values.dtype))
        else:
            out.append(block[:, -1])
    return np.stack(out, axis=1)


def test_blocks_are_nan_ignoring_means_and_counters_keep_their_last_value():
    rng = np.random.default_rng(0)
    floats = rng.normal(size=(3, 10)).astype(np.float32)
    floats[0, 0:4] = np.nan  # no episode ended in the whole first block: stays NaN
    floats[1, 5] = np.nan  # one missing update: the mean of the other three
    counters = np.cumsum(rng.integers(0, 2, size=(3, 10)), axis=1).astype(np.int32)
    flags = rng.integers(0, 2, size=(3, 10)).astype(bool)
    for every in (1, 3, 4, 10, 20):
        got = runner.metric_blocks(floats, every)
        np.testing.assert_allclose(got, blocks_by_loop(floats, every), rtol=1e-5, atol=1e-6)
        assert got.dtype == np.float32 and got.shape == (3, -(-10 // every))
        np.testing.assert_array_equal(runner.metric_blocks(counters, every), blocks_by_loop(counters, every))
        np.testing.assert_array_equal(runner.metric_blocks(flags, every), blocks_by_loop(flags, every))
    assert np.isnan(runner.metric_blocks(floats, 4)[0, 0])
    # An Inf is not averaged away: the block shows it.
    spiky = np.ones((1, 8), np.float32)
    spiky[0, 6] = np.inf
    assert np.isinf(runner.metric_blocks(spiky, 4)[0, 1]) and runner.metric_blocks(spiky, 4)[0, 0] == 1.0
    # Vector metrics (a histogram per update) are averaged per entry.
    histogram = rng.random((2, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(runner.metric_blocks(histogram, 4), histogram.reshape(2, 2, 4, 3).mean(axis=2),
                               rtol=1e-6)


@pytest.mark.parametrize("num_updates, per_chunk, interval, every, expected", [
    (12, 4, 4, 4, 4), (100, 50, 0, 8, 48), (100, 50, 20, 4, 48), (100, 3, 0, 4, 4), (976, 61, 0, 10, 60),
    (1000, 500, 100, 25, 100), (100, 50, 40, 20, 40),
])
def test_chunks_are_whole_blocks_and_end_on_evaluations(num_updates, per_chunk, interval, every, expected):
    chunk = runner.chunk_size_for(num_updates, per_chunk, every)
    assert chunk == expected and chunk % every == 0
    update = 0
    while update < num_updates:
        stop = runner.next_stop(update, num_updates, chunk, interval)
        assert stop % every == 0 or stop == num_updates  # whole blocks, the run's end aside
        if 0 < interval < num_updates:
            assert update // interval == (stop - 1) // interval  # no evaluation falls inside a chunk
        update = stop


def test_eval_interval_must_be_whole_blocks_and_metrics_every_positive():
    with pytest.raises(ValueError, match="multiple of run.metrics_every"):
        apply_overrides(PPOConfig(), ["run.eval_interval=61", "run.metrics_every=10"])
    with pytest.raises(ValueError, match="run.metrics_every"):
        apply_overrides(PPOConfig(), ["run.metrics_every=0"])
    with pytest.raises(ValueError, match="metrics_every"):
        diagnose({"episode_return": np.zeros((1, 4))}, PPOConfig(), metrics_every=0)


def _read(run_dir: str) -> tuple[dict, list[str], dict]:
    with np.load(os.path.join(run_dir, runner.PER_SEED_FILE)) as data:
        per_seed = {name: data[name] for name in data.files}
    with open(os.path.join(run_dir, runner.METRICS_FILE)) as handle:
        lines = handle.read().splitlines()
    with open(os.path.join(run_dir, runner.SUMMARY_FILE)) as handle:
        summary = json.load(handle)
    return per_seed, lines, summary


@pytest.mark.slow
def test_blocked_run_keeps_block_means_every_jsonl_line_and_resumes_exactly(tmp_path):
    full_dir, blocked_dir = str(tmp_path / "full"), str(tmp_path / "blocked")
    config = apply_overrides(PPOConfig(), TINY)
    runner.train_run(config, full_dir, num_seeds=2, seed=5, progress=False, echo=lambda line: None)
    blocked = config.replace(run=config.run.replace(metrics_every=4))
    result = runner.train_run(blocked, blocked_dir, num_seeds=2, seed=5, progress=False, echo=lambda line: None)
    full, full_lines, full_summary = _read(full_dir)
    per_seed, lines, summary = _read(blocked_dir)

    # Training is the same; only the per-seed record is thinned, to the documented block reduction.
    assert set(per_seed) == set(full)
    for name, values in full.items():
        assert per_seed[name].shape == (2, 3) + values.shape[2:], name
        np.testing.assert_allclose(per_seed[name], blocks_by_loop(values, 4), rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(result.metrics["episode_return"], per_seed["episode_return"])
    # metrics.jsonl still holds every update, identical to the unthinned run.
    assert len(lines) == 12 and lines == full_lines
    # The summary's final return is the mean over the last 10% of columns (here the last block of 3); the
    # evaluation is untouched.
    np.testing.assert_allclose(summary["final_return"]["per_seed"], per_seed["episode_return"][:, -1], rtol=1e-6)
    assert summary["final_return"]["definition"].startswith("per seed, the mean episode return")
    assert summary["final_eval_return"] == full_summary["final_eval_return"]
    for png in (runner.CURVE_FILE, runner.DIAGNOSTICS_FILE):
        assert os.path.getsize(os.path.join(blocked_dir, png)) > 1000

    # Cut back to the checkpoint after update 8 and resume: the same files as the uninterrupted run.
    resumed_dir = str(tmp_path / "resumed")
    shutil.copytree(blocked_dir, resumed_dir)
    shutil.rmtree(os.path.join(resumed_dir, runner.CHECKPOINT_DIR, "12"))
    runner.resume_run(resumed_dir, progress=False, echo=lambda line: None)
    resumed, resumed_lines, _ = _read(resumed_dir)
    assert resumed_lines == lines
    for name in per_seed:
        np.testing.assert_array_equal(resumed[name], per_seed[name], err_msg=name)


def test_diagnosis_reports_update_numbers_not_columns():
    # Skipped updates begin at update 37 of 80; in blocks of 4 the first flagged column ends at update 40.
    skipped = np.zeros((1, 80), np.int32)
    skipped[0, 36:] = np.arange(1, 45)
    metrics = {"episode_return": np.full((1, 80), 20.0, np.float32), "nonfinite_updates": skipped}
    config = apply_overrides(PPOConfig(), ["total_timesteps=40960"])  # 80 updates of 512 steps
    exact = diagnose(metrics, config).seeds[0].findings
    blocked = diagnose({k: runner.metric_blocks(v, 4) for k, v in metrics.items()}, config,
                       metrics_every=4).seeds[0].findings
    start = {f.name: f.start_update for f in exact}["nonfinite"]
    assert start == 37
    assert {f.name: f.start_update for f in blocked}["nonfinite"] == 40


def test_a_metric_history_too_big_for_the_host_is_refused_before_anything_is_made(tmp_path, monkeypatch):
    config = apply_overrides(PPOConfig(), TINY)
    specs = {"episode_return": ((), np.dtype(np.float32)), "nonfinite_updates": ((), np.dtype(np.int32))}
    # 2 copies x 1000 seeds x 12 updates x 8 bytes = 192,000 bytes: fits in 1 MB, not in 300 kB.
    monkeypatch.setattr(runner, "host_memory_bytes", lambda: 10**6)
    assert runner.check_metric_history(1000, specs, 12, 1) == 192_000
    monkeypatch.setattr(runner, "host_memory_bytes", lambda: 300_000)
    with pytest.raises(runner.RunInputError, match=r"set run.metrics_every=2 "):
        runner.check_metric_history(1000, specs, 12, 1)
    assert runner.check_metric_history(1000, specs, 12, 2) == 96_000
    # The run loop asks before creating or compiling anything.
    monkeypatch.setattr(runner, "host_memory_bytes", lambda: 1000)
    out = tmp_path / "run"
    with pytest.raises(runner.RunInputError, match="run.metrics_every"):
        runner.train_run(config, str(out), num_seeds=2, progress=False)
    assert not out.exists()
