"""``jaxppo sweep``: bad grids are one-line errors that create nothing; a sweep run has its table,
plot, checkpoints and exact resume, with lanes in the documented order."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import yaml

from jaxppo import PPOConfig, apply_overrides, cli, config_to_dict
from jaxppo import stats, sweep_report

TINY = [
    "num_envs=2", "num_steps=16", "total_timesteps=256", "num_epochs=1", "num_minibatches=2",
    "hidden_sizes=[16]", "run.updates_per_chunk=4", "run.eval_interval=4", "run.eval_episodes=2",
    "run.checkpoint_every_chunks=1", "value_head_init_scale=1.0",  # first values differ between seeds
]
NUM_SEEDS = 2
RATES = (1e-4, 3e-2)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def tiny_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(apply_overrides(PPOConfig(), TINY))))
    return str(path)


@pytest.mark.parametrize("grid, fragment", [
    (["--grid", "num_envs=2,4"], "'num_envs' is a static field"),
    (["--grid", "learning_rat=1e-3"], "did you mean 'learning_rate'"),
    (["--grid", "learning_rate=1e-3,fast"], "'fast' is not a number"),
    (["--grid", "learning_rate"], "must look like FIELD=V1,V2"),
    (["--grid", "learning_rate=1e-3", "--grid", "learning_rate=1e-4"], "names 'learning_rate' twice"),
    (["--grid", "clip_epsilon=0.2,-1"], "clip_epsilon"),
    ([], "at least one --grid"),
])
def test_bad_grid_is_one_line_exit_2_and_creates_nothing(capsys, tmp_path, tiny_yaml, grid, fragment):
    out = tmp_path / "sweep"
    code, _, err = run_cli(capsys, "sweep", tiny_yaml, *grid, "--out", str(out))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("jaxppo: error: "), err
    assert fragment in lines[0], lines[0]
    assert not out.exists()


@pytest.mark.slow
def test_sweep_out_is_checked_before_compiling_and_force_writes_into_a_non_run_folder(capsys, tmp_path, tiny_yaml):
    grid = ["--grid", "learning_rate=1e-3", "--seeds", "1", "--no-progress"]
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    for out, fragment in ((a_file, "is not a directory"), (folder, "pass --force")):
        code, stdout, err = run_cli(capsys, "sweep", tiny_yaml, *grid, "--out", str(out))
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and fragment in lines[0], err
        assert "sweeping" not in stdout  # refused before anything was announced or compiled
    assert sorted(os.listdir(folder)) == ["keep.txt"] and a_file.read_text() == "x"
    code, _, err = run_cli(capsys, "sweep", tiny_yaml, *grid, "--out", str(folder), "--force")
    assert code == 0, err
    assert (folder / "keep.txt").read_text() == "mine" and (folder / "sweep.json").exists()
    # --force never writes over a run: the folder now holds one.
    code, _, err = run_cli(capsys, "sweep", tiny_yaml, *grid, "--out", str(folder), "--force")
    assert code == 2 and "already holds a run" in err
    code, _, err = run_cli(capsys, "sweep", "--resume", str(folder), "--force")
    assert code == 2 and "drop CONFIG" in err


@pytest.mark.slow
def test_sweep_run_writes_table_and_plot_and_resumes_exactly(capsys, tmp_path, tiny_yaml):
    run_dir = tmp_path / "sweep"
    code, out, err = run_cli(capsys, "sweep", tiny_yaml, "--grid", "learning_rate=" + ",".join(map(str, RATES)),
                             "--seeds", str(NUM_SEEDS), "--seed", "3", "--out", str(run_dir), "--no-progress")
    assert code == 0, err
    assert "2 settings x 2 seeds" in out and "| learning_rate | final return IQM [95% CI]" in out
    with open(run_dir / "run.json") as handle:
        run_info = json.load(handle)
    assert run_info["grid"] == {"learning_rate": list(RATES)} and run_info["num_lanes"] == 4
    with np.load(run_dir / "metrics_per_seed.npz") as data:
        per_lane = {name: data[name] for name in data.files}
    returns = per_lane["episode_return"]
    assert returns.shape == (4, 8)
    # Lane g * seeds + s: both settings start seed s from the same key, so their first rollouts (before
    # any update) are identical, and the two seeds of one setting are not.
    np.testing.assert_array_equal(per_lane["value_mean"][0:2, 0], per_lane["value_mean"][2:4, 0])
    assert per_lane["value_mean"][0, 0] != per_lane["value_mean"][1, 0]
    assert not np.array_equal(per_lane["value_loss"][0:2], per_lane["value_loss"][2:4])

    with open(run_dir / "sweep.json") as handle:
        table = json.load(handle)
    assert table["axes"] == ["learning_rate", "seed"] and len(table["settings"]) == 2
    for index, row in enumerate(table["settings"]):
        assert row["values"] == {"learning_rate": RATES[index]}
        rows = {name: values[index * NUM_SEEDS:(index + 1) * NUM_SEEDS] for name, values in per_lane.items()}
        finals = sweep_report.final_returns(rows)
        np.testing.assert_allclose(row["final_return_per_seed"], finals)
        other = sweep_report.final_returns({n: v[(1 - index) * NUM_SEEDS:(2 - index) * NUM_SEEDS]
                                            for n, v in per_lane.items()})
        assert not np.allclose(finals, other)  # the rows really are this setting's lanes
        assert row["final_return"]["iqm"] == pytest.approx(float(stats.interquartile_mean(finals)))
        assert row["eval_return"]["num_seeds"] == NUM_SEEDS
    markdown = (run_dir / "sweep.md").read_text()
    assert markdown.count("\n| ") == 3  # header + 2 settings
    assert (run_dir / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # eval, diagnose and render name each lane's setting, and eval summarises per setting, not pooled.
    code, out, err = run_cli(capsys, "eval", str(run_dir), "--episodes", "2")
    assert code == 0, err
    assert f"seed 3 (learning_rate={RATES[1]:g}, seed 1)" in out and f"  learning_rate={RATES[0]:g}: mean" in out
    assert "over seeds" not in out
    code, out, err = run_cli(capsys, "diagnose", str(run_dir), "--seed", "2")
    assert code == 0, err
    assert "4 lanes (settings x seeds)" in out and f"seed 2 (learning_rate={RATES[1]:g}, seed 0)" in out
    code, _, err = run_cli(capsys, "render", str(run_dir), "--out", str(tmp_path / "ep.gif"), "--seed", "4")
    assert code == 2 and "[0, 3]" in err and "settings x seeds" in err

    # Resume a copy from its second-to-last checkpoint: the finished files equal the uninterrupted run's.
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "checkpoints" / "8")
    for name in ("sweep.json", "sweep.md", "sweep.png"):
        os.remove(copy / name)
    code, out, err = run_cli(capsys, "sweep", "--resume", str(copy), "--no-progress")
    assert code == 0, err
    with np.load(copy / "metrics_per_seed.npz") as data:
        for name, values in per_lane.items():
            np.testing.assert_array_equal(data[name], values, err_msg=name)
    with open(copy / "sweep.json") as handle:
        assert json.load(handle)["settings"] == table["settings"]
    code, _, err = run_cli(capsys, "sweep", "--resume", str(copy), "--seeds", "3")
    assert code == 2 and "--resume" in err
