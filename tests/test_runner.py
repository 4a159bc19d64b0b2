"""The run loop: chunking, run directory, atomic writes, checkpoints and exact resume, evaluation, plots."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
import yaml

from jaxppo import PPOConfig, apply_overrides, config_to_dict, load_config, make_algorithm
from jaxppo import run_io, run_records, runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 12 updates of 2 envs x 16 steps with a tiny network: compiles and runs in seconds on a laptop CPU.
TINY = [
    "num_envs=2", "num_steps=16", "total_timesteps=384", "num_epochs=1", "num_minibatches=2",
    "hidden_sizes=[16]", "run.updates_per_chunk=4", "run.eval_interval=4", "run.eval_episodes=3",
    "run.checkpoint_every_chunks=1",
]
NUM_SEEDS = 2


def tiny_config(*extra: str) -> PPOConfig:
    return apply_overrides(PPOConfig(), TINY + list(extra))


def tree_equal(a, b) -> bool:
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    return tree_a == tree_b and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(leaves_a, leaves_b))


class RecordingLogger:
    """Stands in for TensorBoard / W&B: records what the run loop hands a logger."""

    def __init__(self):
        self.calls, self.closed = [], False

    def log(self, update, env_steps, scalars):
        self.calls.append((update, env_steps, dict(scalars)))

    def close(self):
        self.closed = True


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("runs") / "tiny")
    logger = RecordingLogger()
    lines = []
    result = runner.train_run(tiny_config(), run_dir, num_seeds=NUM_SEEDS, seed=3, progress=False,
                              loggers=[logger], echo=lines.append)
    return run_dir, result, logger, lines


# Chunking ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_chunk_size_does_not_change_results_and_compiles_once_per_length():
    config = tiny_config()
    keys = runner.seed_keys(0, NUM_SEEDS)
    chunk_runner = runner.ChunkRunner(make_algorithm(config))
    init_params = jax.device_get(chunk_runner.init(keys).params)

    def train_in_chunks(lengths):
        traces_before = chunk_runner.trace_count
        state = chunk_runner.init(keys)
        pieces = []
        for length in lengths:
            state, metrics = chunk_runner.run(state, length)
            pieces.append(jax.device_get(metrics))
        metrics = {k: np.concatenate([p[k] for p in pieces], axis=1) for k in pieces[0]}
        return state, metrics, chunk_runner.trace_count - traces_before

    state_one, metrics_one, traces_one = train_in_chunks([12])
    state_even, metrics_even, traces_even = train_in_chunks([4, 4, 4])
    state_ragged, metrics_ragged, traces_ragged = train_in_chunks([4, 4, 3, 1])
    assert metrics_one["episode_return"].shape == (NUM_SEEDS, 12)
    assert tree_equal(state_one, state_even) and tree_equal(state_one, state_ragged)
    assert tree_equal(metrics_one, metrics_even) and tree_equal(metrics_one, metrics_ragged)
    # One program per new chunk length: a repeated length (4, 4, 4) reuses the compiled one.
    assert (traces_one, traces_even, traces_ragged) == (1, 1, 2)
    # The parameters actually moved, so the equalities above are not trivially true.
    assert not tree_equal(init_params, state_one.params)


@pytest.mark.parametrize("num_updates, per_chunk, interval, expected", [
    (976, 61, 61, 61), (100, 50, 0, 50), (100, 50, 10, 50), (100, 50, 30, 50), (100, 50, 70, 50),
    (100, 500, 0, 50), (12, 4, 100, 4), (195, 50, 61, 50),
    # A long run is cut into at least 10 chunks so the progress bar moves (DQN: 5000 updates).
    (5000, 5000, 0, 500), (50_000, 5000, 2500, 5000), (300, 5000, 0, 50),
])
def test_chunks_stop_at_every_evaluation_and_are_never_needlessly_short(num_updates, per_chunk, interval, expected):
    chunk = runner.chunk_size_for(num_updates, per_chunk)
    assert chunk == expected
    stops, update = [], 0
    while update < num_updates:
        update = runner.next_stop(update, num_updates, chunk, interval)
        stops.append(update)
    lengths = np.diff([0] + stops)
    assert stops[-1] == num_updates and lengths.max() <= chunk
    if 0 < interval < num_updates:
        assert set(range(interval, num_updates + 1, interval)) <= set(stops)
        # Within an evaluation period: whole chunks, then the rest; so at most three lengths per run.
        assert len(set(lengths.tolist())) <= 3
        assert lengths.min() >= min(chunk, interval % chunk or chunk, num_updates % interval or interval,
                                    num_updates % chunk or chunk)
    else:
        assert all(length == chunk for length in lengths[:-1])


def test_a_prime_evaluation_interval_no_longer_makes_one_update_chunks():
    """The stress env at 1e5 env steps: 195 updates, evaluation every 61 updates (the bundled default)."""
    chunk = runner.chunk_size_for(195, 50)
    stops, update = [], 0
    while update < 195:
        update = runner.next_stop(update, 195, chunk, 61)
        stops.append(update)
    assert stops == [50, 61, 111, 122, 172, 183, 195]  # 7 chunks, where the old rule made 195 of one update


# Run directory --------------------------------------------------------------------------------

@pytest.mark.slow
def test_run_directory_holds_consistent_metrics_eval_and_summary(finished_run):
    run_dir, result = finished_run[:2]
    config = tiny_config()
    assert load_config(os.path.join(run_dir, "config.yaml")) == config
    lines = run_io.read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
    assert [r["update"] for r in lines] == list(range(1, 13))
    assert [r["env_steps"] for r in lines] == [32 * u for u in range(1, 13)]
    with np.load(os.path.join(run_dir, "metrics_per_seed.npz")) as data:
        per_seed = {k: data[k] for k in data.files}
    assert per_seed["episode_return"].shape == (NUM_SEEDS, 12)
    for name in ("episode_return", "value_loss", "approx_kl"):
        values = per_seed[name].astype(np.float64)
        np.testing.assert_allclose([r["metrics"][name]["median"] for r in lines], np.median(values, axis=0), rtol=1e-6)
        np.testing.assert_allclose([r["metrics"][name]["max"] for r in lines], values.max(axis=0), rtol=1e-6)
        np.testing.assert_allclose([r["metrics"][name]["q25"] for r in lines], np.percentile(values, 25, axis=0), rtol=1e-6)
    evals = run_io.read_jsonl(os.path.join(run_dir, "eval.jsonl"))
    assert [r["update"] for r in evals] == [4, 8, 12]
    assert len(evals[-1]["eval_return"]["per_seed"]) == NUM_SEEDS
    with open(os.path.join(run_dir, "summary.json")) as handle:
        summary = json.load(handle)
    # The final return: per seed, the mean over the last 10% (here ceil(1.2) = 2) of the updates that
    # finished an episode.
    returns = per_seed["episode_return"].astype(np.float64)
    started = np.cumsum(per_seed["episodes_completed"], axis=1) > 0
    final = np.array([row[ok][-2:].mean() for row, ok in zip(returns, started)])
    assert summary["complete"] and summary["updates"] == 12 and summary["num_seeds"] == NUM_SEEDS
    assert summary["env_steps_total"] == 12 * 32 * NUM_SEEDS
    assert summary["final_return"]["median"] == pytest.approx(np.median(final), rel=1e-6)
    assert summary["final_return"]["min"] == pytest.approx(final.min(), rel=1e-6)
    assert summary["final_eval_return"]["per_seed"] == evals[-1]["eval_return"]["per_seed"]
    assert summary["wall_time_s"] > 0 and summary["steps_per_second"] > 0
    assert result.summary == summary


def test_loggers_and_status_lines_get_the_median_over_seeds_per_update(finished_run):
    run_dir, _, logger, lines = finished_run
    assert logger.closed
    assert [call[0] for call in logger.calls] == list(range(1, 13))
    assert [call[1] for call in logger.calls] == [32 * u for u in range(1, 13)]
    with np.load(os.path.join(run_dir, "metrics_per_seed.npz")) as data:
        returns = data["episode_return"].astype(np.float64)
    assert [c[2]["train/episode_return"] for c in logger.calls] == pytest.approx(np.median(returns, axis=0))
    evals = run_io.read_jsonl(os.path.join(run_dir, "eval.jsonl"))
    assert logger.calls[7][2]["eval/return_median"] == evals[1]["eval_return"]["median"]
    assert "eval/return_median" not in logger.calls[6][2]
    assert len(lines) == 3 and lines[-1].startswith("update 12/12")


def test_missing_tracker_package_is_a_clear_error(monkeypatch, tmp_path):
    from jaxppo.loggers import TensorBoardLogger

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # makes the import fail
    with pytest.raises(ValueError, match=r"pip install 'jaxppo\[tensorboard\]'"):
        TensorBoardLogger(str(tmp_path))


def test_existing_run_directory_is_not_overwritten(finished_run):
    run_dir = finished_run[0]
    with pytest.raises(ValueError, match="already holds a run"):
        runner.train_run(tiny_config(), run_dir, num_seeds=1, progress=False)


def _png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def test_plots_are_real_pngs_and_can_be_redrawn(finished_run):
    run_dir = finished_run[0]
    for name in ("learning_curve.png", "diagnostics.png"):
        path = os.path.join(run_dir, name)
        os.remove(path)
    paths = runner.render_plots(run_dir)
    for path in paths:
        width, height = _png_size(path)
        assert os.path.getsize(path) > 5_000
        assert width >= 400 and height >= 250
    assert _png_size(paths[1])[0] >= 1000  # a grid of diagnostic panels, three across


def test_a_run_is_diagnosed_once_and_its_plot_reads_the_summary(tmp_path, monkeypatch):
    import jaxppo.diagnosis.core as core

    calls = []
    real = core.diagnose
    monkeypatch.setattr(core, "diagnose", lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    run_dir = str(tmp_path / "once")
    runner.train_run(tiny_config(), run_dir, num_seeds=2, seed=1, progress=False, echo=lambda line: None)
    assert len(calls) == 1  # the summary's diagnosis; the diagnostics plot reused its pathology starts
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    assert "starts" in summary["diagnosis"] and summary["metric_columns"] == summary["updates"]
    runner.render_plots(run_dir)  # redrawn later from the same files: still no second diagnosis
    assert len(calls) == 1


# Atomic writes ----------------------------------------------------------------------------------

def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    run_io.atomic_write_text(path, '{"update": 1}\n')

    def write_half_then_fail(handle, data):
        handle.write(data[: len(data) // 2])
        handle.flush()
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(run_io, "_write_all", write_half_then_fail)
    with pytest.raises(OSError, match="simulated"):
        run_io.atomic_write_text(path, '{"update": 1}\n{"update": 2}\n' * 100)
    assert path.read_text() == '{"update": 1}\n'
    assert os.listdir(tmp_path) == ["metrics.jsonl"]  # no temp file left behind
    monkeypatch.undo()
    run_io.atomic_write_json(tmp_path / "summary.json", {"a": np.float32(1.5)})
    assert json.loads((tmp_path / "summary.json").read_text()) == {"a": 1.5}


def test_failed_progress_write_keeps_every_run_file_readable(finished_run, monkeypatch, tmp_path):
    run_dir = finished_run[0]
    before = {n: open(os.path.join(run_dir, n), "rb").read() for n in ("metrics.jsonl", "metrics_per_seed.npz")}
    records = run_records.Records({"episode_return": np.ones((1, 3), np.float32)}, 3, [], 1.0, ["{}\n"] * 3)

    def fail_after_partial(handle, data):
        handle.write(data[:10])
        raise OSError("killed (simulated)")

    monkeypatch.setattr(run_io, "_write_all", fail_after_partial)
    with pytest.raises(OSError):
        runner.write_progress_files(run_dir, records)
    after = {n: open(os.path.join(run_dir, n), "rb").read() for n in before}
    assert after == before


# Checkpoints and resume -------------------------------------------------------------------------

_BLOCKING_TRAINER = textwrap.dedent("""
    import os, sys, time
    from jaxppo import cli, runner

    marker, block_at = sys.argv[1], int(sys.argv[2])
    original = runner.write_progress_files
    calls = []

    def write_then_block(run_dir, records):
        original(run_dir, records)
        calls.append(records.update)
        if len(calls) == block_at:  # records past the last checkpoint are on disk now
            open(marker, "w").write(str(records.update))
            time.sleep(600)

    runner.write_progress_files = write_then_block
    sys.exit(cli.main(sys.argv[3:]))
""")


@pytest.mark.slow
def test_run_killed_after_a_checkpoint_resumes_to_the_uninterrupted_result(tmp_path):
    # 6 chunks of 2 updates, a checkpoint every 2 chunks; the process is killed after chunk 3, so it
    # has written metrics for 6 updates but its latest checkpoint is at update 4.
    overrides = ["run.updates_per_chunk=2", "run.checkpoint_every_chunks=2"]
    config = tiny_config(*overrides)
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(config_to_dict(config)))
    killed_dir, marker = str(tmp_path / "killed"), str(tmp_path / "blocked")
    script = tmp_path / "blocking_trainer.py"
    script.write_text(_BLOCKING_TRAINER)
    process = subprocess.Popen(
        [sys.executable, str(script), marker, "3", "train", str(config_path), "--out", killed_dir,
         "--seeds", str(NUM_SEEDS), "--seed", "7", "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    try:
        deadline = time.time() + 480  # importing JAX and compiling on a loaded 2-core CI took over 120 s
        while not os.path.exists(marker):
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the training subprocess never reached chunk 3"
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert len(run_io.read_jsonl(os.path.join(killed_dir, "metrics.jsonl"))) == 6
    assert runner.latest_checkpoint_update(os.path.join(killed_dir, "checkpoints")) == 4
    assert not os.path.exists(os.path.join(killed_dir, "summary.json"))

    from jaxppo import cli

    assert cli.main(["train", "--resume", killed_dir, "--no-progress"]) == 0

    full_dir = str(tmp_path / "uninterrupted")
    runner.train_run(config, full_dir, num_seeds=NUM_SEEDS, seed=7, progress=False, echo=lambda line: None)
    for name in ("metrics.jsonl", "eval.jsonl"):
        with open(os.path.join(killed_dir, name)) as a, open(os.path.join(full_dir, name)) as b:
            assert a.read() == b.read(), name
    with np.load(os.path.join(killed_dir, "metrics_per_seed.npz")) as a, \
            np.load(os.path.join(full_dir, "metrics_per_seed.npz")) as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            assert a[name].shape == (NUM_SEEDS, 12)
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    resumed, uninterrupted = runner.load_run_state(killed_dir), runner.load_run_state(full_dir)
    assert resumed.update == uninterrupted.update == 12
    assert tree_equal(resumed.state, uninterrupted.state)


# Evaluation and acting --------------------------------------------------------------------------

def _hand_rollout(act, env, env_params, key, num_episodes: int, max_steps: int) -> np.ndarray:
    """Greedy episodes stepped one step at a time in Python, with the key layout ``evaluate`` documents.

    All episodes step together, as in ``evaluate``: the policy sees the same ``[E, obs]`` batch and the
    env is the same vmapped step.
    """
    reset_key, run_key = jax.random.split(key)
    step_keys = jax.random.split(run_key, max_steps)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_episodes), env_params)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    totals, running = np.zeros(num_episodes), np.ones(num_episodes, bool)
    for t in range(max_steps):
        action = act(obs)
        obs, state, reward, terminated, truncated, _ = step(jax.random.split(step_keys[t], num_episodes), state,
                                                            action, env_params)
        totals += np.where(running, np.asarray(reward, np.float64), 0.0)
        running &= ~(np.asarray(terminated) | np.asarray(truncated))
        if not running.any():
            break
    return totals


@pytest.mark.slow
def test_evaluation_matches_a_hand_run_greedy_rollout(finished_run):
    run_dir = finished_run[0]
    result = runner.evaluate_run(run_dir, episodes=2, seed=5)
    assert result["eval_return"].shape == (NUM_SEEDS, 2)
    loaded = runner.load_run_state(run_dir)
    keys = runner.evaluation_keys(5, NUM_SEEDS, loaded.update)
    max_steps = int(loaded.algorithm.env_params.max_steps_in_episode)
    for seed_index in range(NUM_SEEDS):
        act = runner.load_policy(run_dir, seed_index=seed_index)
        expected = _hand_rollout(act, loaded.algorithm.env, loaded.algorithm.env_params, keys[seed_index], 2,
                                 max_steps)
        # Up to one step: evaluate's step is compiled inside its scan, this one alone, and XLA may fuse
        # CartPole's physics differently (an FMA here, not there); an episode that ends on the pole-angle
        # threshold can then end one step apart (199 against 198, seen). A wrong key layout starts other
        # episodes altogether.
        np.testing.assert_allclose(result["eval_return"][seed_index], expected, atol=1.0, rtol=0)
    assert result["eval_return"].min() >= 1


def test_load_policy_act_matches_algorithm_act(finished_run):
    run_dir = finished_run[0]
    loaded = runner.load_run_state(run_dir)
    import jaxppo

    observations = jax.random.normal(jax.random.PRNGKey(1), (64, 4))
    actions_by_seed = []
    for seed_index in range(NUM_SEEDS):
        act = jaxppo.load_policy(run_dir, seed_index=seed_index)
        policy = loaded.algorithm.policy_of(jax.tree.map(lambda x: x[seed_index], loaded.state))
        expected = loaded.algorithm.act(policy, observations, jax.random.PRNGKey(0), deterministic=True)
        batch = np.asarray(act(observations))
        np.testing.assert_array_equal(batch, np.asarray(expected))
        assert int(act(observations[3], jax.random.PRNGKey(9))) == int(batch[3])
        actions_by_seed.append(batch)
    assert len(np.unique(actions_by_seed[0])) == 2  # a trained policy, not a constant
    with pytest.raises(ValueError, match="seed_index"):
        jaxppo.load_policy(run_dir, seed_index=NUM_SEEDS)


# Default config -------------------------------------------------------------------------------

def test_bundled_default_config_is_ppo_defaults_and_is_the_cli_default():
    from jaxppo.cli import resolve_config

    config = load_config(os.path.join(REPO, "configs", "ppo_cartpole.yaml"))
    # The file is PPOConfig() with its own run settings, whatever PPOConfig()'s defaults are.
    assert config.replace(run=PPOConfig().run) == PPOConfig()
    # `jaxppo train` with no CONFIG trains exactly this file (a wheel ships it as package data).
    assert resolve_config(None)[0] == config
    # The documented run settings: 976 updates in 16 equal chunks, evaluation after each.
    assert config.num_updates == 976 and config.num_updates % config.run.updates_per_chunk == 0
    assert runner.chunk_size_for(config.num_updates, config.run.updates_per_chunk) == 61
    assert config.run.eval_interval == 61 and config.run.checkpoint_every_chunks == 4


def test_rate_and_eta_leave_out_the_first_chunk_which_compiles():
    times = iter([130.0, 132.0, 134.0])  # the first chunk ended 30 s in (compiling), later ones take 2 s
    clock = runner.RateClock(total_steps=4000, steps_done=0, clock=lambda: next(times))
    assert "compiled" in clock.chunk_done(1000)
    assert clock.chunk_done(2000) == "500 steps/s, ETA 0:04"  # 1000 steps in 2 s; 2000 left
    assert clock.chunk_done(3000) == "500 steps/s, ETA 0:02"
    # A rate that counted the first chunk (started at 100 s) would read 3000 / 34 s = 88 steps/s, ETA 0:11.
    resumed = runner.RateClock(total_steps=4000, steps_done=3000, clock=lambda: 0.0)
    assert resumed.chunk_done(4000) == "done"


def test_a_later_chunk_that_compiles_a_new_length_is_left_out_of_the_rate():
    """Hand-timed: chunks of 1000 steps take 2 s; the third chunk (500 steps, a new length) takes 10.5 s
    because it compiles. The rate stays 500 steps/s instead of 2500 / 14.5 s = 172."""
    times = iter([130.0, 132.0, 142.5, 144.5])
    clock = runner.RateClock(total_steps=6000, steps_done=0, clock=lambda: next(times))
    clock.chunk_done(1000)
    assert clock.chunk_done(2000) == "500 steps/s, ETA 0:08"
    assert clock.chunk_done(2500) == "500 steps/s, ETA 0:07"
    assert clock.chunk_done(3500) == "500 steps/s, ETA 0:05"
