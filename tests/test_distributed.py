"""Two processes on localhost (jax.distributed, gloo CPU collectives) train like one process.

Each process has one CPU device; the 4 seeds are split 2 + 2 over the global mesh, metrics are
gathered, and process 0 alone writes the run directory. A checkpoint written by a one-process run
resumes on two processes. Equality is to float32 rounding for losses (the per-device batch differs,
see tests/test_parallel.py) and exact for counts and returns.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml

from jaxppo import PPOConfig, apply_overrides, config_to_dict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "num_envs=2", "num_steps=16", "total_timesteps=256", "num_epochs=1", "num_minibatches=2",
    "hidden_sizes=[16]", "run.updates_per_chunk=4", "run.eval_interval=4", "run.eval_episodes=2",
    "run.checkpoint_every_chunks=1",
]
FLOAT_METRICS = ("advantage_mean", "advantage_std", "approx_kl", "explained_variance", "grad_clip_ratio",
                 "grad_norm", "mean_ratio", "policy_loss", "return_mean", "return_std", "value_loss",
                 "value_mean", "entropy", "clip_fraction", "value_clip_fraction", "return_stats_mean",
                 "return_stats_std")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    return env


def _two_processes(*argv: str) -> list[subprocess.CompletedProcess]:
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "jaxppo.cli", *argv, "--no-progress", "--distributed",
                               "--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id", str(i)],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    for result in done:
        assert result.returncode == 0, result.stderr[-3000:]
    return done


def _per_seed(run_dir) -> dict:
    with np.load(os.path.join(run_dir, "metrics_per_seed.npz")) as data:
        return {name: data[name] for name in data.files}


def _assert_same_training(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        if name in FLOAT_METRICS:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.slow
def test_two_processes_equal_one_and_resume_a_one_process_checkpoint(tmp_path):
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(config_to_dict(apply_overrides(PPOConfig(), TINY))))
    two, one = tmp_path / "two", tmp_path / "one"
    results = _two_processes("train", str(config_path), "--seeds", "4", "--seed", "1", "--out", str(two))
    assert "final training return" in results[0].stdout
    assert "training" not in results[1].stdout  # process 1 prints no progress or summary
    reference = subprocess.run([sys.executable, "-m", "jaxppo.cli", "train", str(config_path), "--seeds", "4",
                                "--seed", "1", "--out", str(one), "--no-progress"], env=_env(), capture_output=True,
                               text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]
    with open(two / "run.json") as handle:
        run_info = yaml.safe_load(handle)
    assert (run_info["processes"], run_info["devices"]) == (2, 2)
    for name in ("summary.json", "eval.jsonl", "learning_curve.png", "checkpoints/8"):
        assert (two / name).exists(), name
    _assert_same_training(_per_seed(two), _per_seed(one))

    # The one-process run's checkpoint at update 4, continued by two processes.
    resumed = tmp_path / "resumed"
    shutil.copytree(one, resumed)
    shutil.rmtree(resumed / "checkpoints" / "8")
    _two_processes("train", "--resume", str(resumed))
    _assert_same_training(_per_seed(resumed), _per_seed(one))
    np.testing.assert_array_equal(_per_seed(resumed)["episode_return"][:, :4], _per_seed(one)["episode_return"][:, :4])
