"""Seeds spread over several devices: same results as one device, really spread, resumable anywhere.

XLA fixes the host platform's device count when the backend starts, so the 4-device checks run in a
subprocess with ``--xla_force_host_platform_device_count=4``.

Why a tolerance and not bit equality: XLA's CPU kernels (batched matmuls, reductions) pick their
blocking from the batch size, so a seed's float32 results already differ in the last bits between a
2-seed and an 8-seed run on one device. Sharding changes the per-device batch in the same way and
adds nothing beyond that: counts and episode returns agree exactly, losses to float32 rounding.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jaxppo.parallel import SeedLayout, seed_mesh

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Compared with a float tolerance (see the module docstring); everything else must match exactly.
FLOAT_METRICS = ("advantage_mean", "advantage_std", "approx_kl", "explained_variance", "grad_clip_ratio",
                 "grad_norm", "mean_ratio", "policy_loss", "return_mean", "return_std", "value_loss",
                 "value_mean", "entropy", "clip_fraction", "value_clip_fraction", "return_stats_mean",
                 "return_stats_std")

_FOUR_DEVICES = textwrap.dedent(r"""
    import json, os, shutil, sys
    import jax, numpy as np
    import jaxppo
    from jaxppo import PPOConfig, apply_overrides, runner

    assert jax.device_count() == 4, jax.devices()
    out = sys.argv[1]
    config = apply_overrides(PPOConfig(), [
        "num_envs=2", "num_steps=16", "total_timesteps=384", "num_epochs=1", "num_minibatches=2",
        "hidden_sizes=[16]", "run.updates_per_chunk=4", "run.eval_interval=4", "run.eval_episodes=3",
        "run.checkpoint_every_chunks=1"])
    one_device = jax.devices()[:1]
    report = {}

    # jaxppo.train: 4 seeds over 4 devices against the same 4 seeds on one device.
    state, metrics = jaxppo.train(config, num_seeds=4, seed=1)
    kernel = jax.tree.leaves(state.params)[0]
    report["train_devices"] = sorted(d.id for d in kernel.sharding.device_set)
    report["train_shards"] = sorted((s.device.id, s.data.shape[0]) for s in kernel.addressable_shards)
    report["metric_devices"] = sorted(d.id for d in metrics["policy_loss"].sharding.device_set)
    np.savez(os.path.join(out, "train_4.npz"), kernel=np.asarray(kernel),
             **{k: np.asarray(v) for k, v in metrics.items()})
    state, metrics = jaxppo.train(config, num_seeds=4, seed=1, devices=one_device)
    np.savez(os.path.join(out, "train_1.npz"), kernel=np.asarray(jax.tree.leaves(state.params)[0]),
             **{k: np.asarray(v) for k, v in metrics.items()})

    # The run loop with 3 seeds on 4 devices (padded to 4), 3 chunks of one length: one trace.
    runners = []
    plain_init = runner.ChunkRunner.__init__

    def recording_init(self, *args, **kwargs):
        plain_init(self, *args, **kwargs)
        runners.append(self)

    runner.ChunkRunner.__init__ = recording_init
    run_a = os.path.join(out, "run_a")
    result = runner.train_run(config, run_a, num_seeds=3, seed=2, progress=False, echo=lambda line: None)
    leaf = jax.tree.leaves(result.state.params)[0]
    report["run_state_devices"] = sorted(d.id for d in leaf.sharding.device_set)
    report["run_state_rows"] = int(leaf.shape[0])
    report["chunk_traces"] = runners[0].trace_count

    # Resume a copy from its second-to-last checkpoint on ONE device: checkpoints do not depend on the layout.
    run_b = os.path.join(out, "run_b")
    shutil.copytree(run_a, run_b)
    checkpoints = sorted(int(n) for n in os.listdir(os.path.join(run_b, "checkpoints")) if n.isdigit())
    shutil.rmtree(os.path.join(run_b, "checkpoints", str(checkpoints[-1])))
    report["resumed_from"] = checkpoints[-2]
    runner.resume_run(run_b, progress=False, echo=lambda line: None, devices=one_device)
    with open(os.path.join(out, "report.json"), "w") as handle:
        json.dump(report, handle)
""")


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("four_devices")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    completed = subprocess.run([sys.executable, "-c", _FOUR_DEVICES, str(out)], env=env, capture_output=True,
                               text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    import json

    with open(out / "report.json") as handle:
        return out, json.load(handle)


@pytest.mark.slow
def test_train_on_four_devices_equals_one_device_and_is_spread(four_devices):
    out, report = four_devices
    assert report["train_devices"] == [0, 1, 2, 3]
    assert report["train_shards"] == [[0, 1], [1, 1], [2, 1], [3, 1]]  # (device, seeds on it)
    assert report["metric_devices"] == [0, 1, 2, 3]
    with np.load(out / "train_4.npz") as sharded, np.load(out / "train_1.npz") as single:
        assert sorted(sharded.files) == sorted(single.files)
        for name in sharded.files:
            if name in FLOAT_METRICS or name == "kernel":
                np.testing.assert_allclose(sharded[name], single[name], rtol=1e-4, atol=1e-5, err_msg=name)
            else:
                np.testing.assert_array_equal(sharded[name], single[name], err_msg=name)


def test_padded_run_resumes_on_another_device_count_to_the_same_result(four_devices):
    out, report = four_devices
    assert report["run_state_devices"] == [0, 1, 2, 3]
    assert report["run_state_rows"] == 4  # 3 seeds padded to the device count
    assert report["resumed_from"] == 8
    with np.load(out / "run_a" / "metrics_per_seed.npz") as a, np.load(out / "run_b" / "metrics_per_seed.npz") as b:
        assert a["episode_return"].shape == (3, 12)
        for name in a.files:
            np.testing.assert_array_equal(a[name][:, :8], b[name][:, :8], err_msg=name)  # before the resume
            if name in FLOAT_METRICS:
                np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)
            else:
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_chunk_program_is_traced_once_on_four_devices(four_devices):
    _, report = four_devices
    assert report["chunk_traces"] == 1


def test_layout_pads_by_repeating_the_last_lane_and_cuts_it_off_again():
    import jax

    layout = SeedLayout(seed_mesh(jax.devices()[:1]), 3)
    assert (layout.padded_lanes, layout.lanes_per_device) == (3, 3)
    tree = {"x": np.arange(6.0).reshape(3, 2)}
    np.testing.assert_array_equal(layout.to_host(layout.place(tree))["x"], tree["x"])
    # Over 4 devices (a stand-in mesh: only its size matters for padding) 3 lanes get a copy of the last.
    fake = SeedLayout.__new__(SeedLayout)
    object.__setattr__(fake, "mesh", type("FakeMesh", (), {"devices": np.empty(4, object)})())
    object.__setattr__(fake, "num_lanes", 3)
    padded = fake._pad_host(tree["x"])
    np.testing.assert_array_equal(padded, np.concatenate([tree["x"], tree["x"][-1:]]))
    with pytest.raises(ValueError, match="leading lane axis of 3"):
        layout.place({"x": np.zeros((2, 2))})


def test_seeds_times_buffer_beyond_device_memory_is_refused_before_anything_is_created(capsys, tmp_path):
    """4096 seeds x a 10^7-transition CartPole replay buffer cannot fit: one line with the estimate,
    exit 2, no run directory. The estimate is the exact state size from jax.eval_shape."""
    import jax

    from jaxppo import cli, parallel

    out = tmp_path / "huge"
    code = cli.main(["train", "dqn_cartpole", "--seeds", "4096", "--set", "buffer_size=10000000",
                     "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "4096 seeds need about" in lines[0] and "per device" in lines[0] and "fewer seeds" in lines[0]
    # The buffer dominates: 10^7 x (two 4-float observations, int32 action, float reward, bool
    # terminated) = 41 bytes per transition, per seed (the message rounds to 0.01 GiB).
    per_seed_gib = float(lines[0].split("(")[1].split(" GiB per seed")[0])
    assert per_seed_gib == pytest.approx(10_000_000 * (2 * 4 * 4 + 4 + 4 + 1) / 2**30, abs=0.006)
    assert not out.exists()
    assert parallel.device_memory_bytes(jax.devices()[0]) > 0
