"""The small things a new user trips over in the first hour (the CLI's messages, hints and listings)."""

from __future__ import annotations

import os
import types

import numpy as np
import pytest

from jaxppo import cli, runner
from jaxppo.config import configs_dir


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_training_a_lab_grid_names_the_lab_verb(capsys, tmp_path):
    grid = os.path.join(configs_dir(), "lab", "report000.yaml")
    code, _, err = run_cli(capsys, "train", grid, "--out", str(tmp_path / "run"))
    assert code == 2 and "is a lab grid" in err and f"jaxppo lab {grid}" in err
    assert not (tmp_path / "run").exists()


def test_seed_without_seeds_is_named_and_ctrl_c_prints_the_real_directory(capsys, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "train_run", interrupted)
    out = str(tmp_path / "run")
    code, stdout, err = run_cli(capsys, "train", "--seed", "16", "--out", out,
                                "--set", "total_timesteps=2048")
    assert code == 130
    assert "4 seeds (base seed 16)" in stdout
    assert "note: --seed 16 sets the base seed; the seed count is 4" in stdout
    assert f"jaxppo train --resume {out}" in err and "DIR" not in err


def test_progress_line_prints_the_iqr_as_a_readable_range():
    records = types.SimpleNamespace(per_seed={"episode_return": np.array([[-100.0], [-92.4], [-83.3], [-80.0],
                                                                          [-90.0]])},
                                    columns=1, eval_records=[], update=1)
    text = runner._progress_text(records)
    assert text == "return -90.0 (IQR -92.4 to -83.3)"


def test_listing_envs_never_makes_an_env_that_downloads_data(capsys, monkeypatch):
    from jaxppo.cli import envs

    made = []

    def describe(name):
        made.append(name)
        return envs.EnvRow(name, "Discrete(2)", "(4,)", "ppo, dqn", "yes")

    monkeypatch.setattr(envs, "describe", describe)
    code, out, _ = run_cli(capsys, "envs")
    assert code == 0 and "MNISTBandit-bsuite" not in made
    assert "MNISTBandit-bsuite" in out and "downloads MNIST when first made" in out
    assert "CartPole-v1" in made


def test_lab_set_applies_to_every_cell_after_its_variant():
    from jaxppo import lab

    grid = lab.load_grid("report000", sets=["total_timesteps=20480", "learning_rate=1e-3"])
    assert grid.cells and all(c.config.total_timesteps == 20480 and c.config.learning_rate == 1e-3
                              for c in grid.cells)
    assert grid.to_dict()["sets"] == ["total_timesteps=20480", "learning_rate=1e-3"]
    plain = lab.load_grid("report000")
    assert "sets" not in plain.to_dict() and plain.cells[0].config.total_timesteps != 20480
    with pytest.raises(runner.RunInputError, match="--set"):
        lab.load_grid("report000", sets=["no_such_field=1"])


def test_plots_draw_placeholders_as_gaps():
    """Before a seed's first finished episode its return is a placeholder 0 (a Pendulum curve would start
    at 0); before DQN learns, its clip ratio is a placeholder 0 ("fully clipped"). Both become gaps."""
    from jaxppo.plotting import plotted_series

    metrics = {"episode_return": np.array([[0.0, 0.0, -1200.0, -1100.0], [0.0, -1300.0, -1250.0, -1000.0]]),
               "episodes_completed": np.array([[0, 0, 4, 4], [0, 3, 4, 4]], float),
               "learning": np.array([[0, 0, 1, 1], [0, 0, 0, 1]], float),
               "grad_clip_ratio": np.zeros((2, 4))}
    plotted = plotted_series(metrics)
    np.testing.assert_array_equal(np.isnan(plotted["episode_return"]),
                                  [[True, True, False, False], [True, False, False, False]])
    np.testing.assert_array_equal(np.isnan(plotted["grad_clip_ratio"]),
                                  [[True, True, False, False], [True, True, True, False]])
    np.testing.assert_array_equal(plotted["learning"], metrics["learning"])
    assert metrics["episode_return"][0, 0] == 0.0  # the input is not changed


def test_the_throughput_axis_gets_several_readable_ticks():
    from jaxppo.lab import throughput_ticks

    ticks = throughput_ticks(40_000 / 1.5, 52_000 * 1.5)  # two variants 1.3x apart: less than a decade
    assert len(ticks) == 5 and ticks == sorted(ticks)
    assert 40_000 / 1.5 < ticks[0] and ticks[-1] < 52_000 * 1.5
    assert all(float(f"{t:.2g}") == t for t in ticks)


def test_a_sweeps_learning_curve_has_one_band_per_setting():
    groups = runner.sweep_groups({"num_seeds": 3, "grid": {"learning_rate": [1e-4, 1e-3], "gamma": [0.9, 0.99]}})
    assert [label for label, _ in groups] == ["learning_rate=0.0001, gamma=0.9", "learning_rate=0.0001, gamma=0.99",
                                              "learning_rate=0.001, gamma=0.9", "learning_rate=0.001, gamma=0.99"]
    assert groups[2][1] == [6, 7, 8]  # lane g * seeds + s, as jaxppo.sweep lays them out
    assert runner.sweep_groups({"num_seeds": 3}) is None


def test_readme_config_paths_load_from_any_folder(tmp_path, monkeypatch):
    import jaxppo
    from jaxppo import lab

    monkeypatch.chdir(tmp_path)  # not a clone: no configs/ folder here
    assert jaxppo.load_config("configs/ppo_cartpole.yaml") == jaxppo.load_config("ppo_cartpole")
    assert lab.load_grid("configs/lab/report000.yaml").name == "report000"
    with pytest.raises(ValueError, match="Did you mean 'ppo_cartpole'"):
        jaxppo.load_config("configs/ppo_cartpol.yaml")


def test_every_config_field_has_a_one_line_meaning_and_config_show_explains_them(capsys):
    import dataclasses

    import yaml

    from jaxppo import DQNConfig, PPOConfig, RunSettings
    from jaxppo.config_help import RUN, help_for

    for cls, algorithm in ((PPOConfig, "ppo"), (DQNConfig, "dqn")):
        missing = [f.name for f in dataclasses.fields(cls) if not help_for(algorithm, f.name)]
        assert missing == [], (algorithm, missing)
    assert [f.name for f in dataclasses.fields(RunSettings) if f.name not in RUN] == []
    code, out, _ = run_cli(capsys, "config", "show", "ppo_cartpole", "--explain")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("learning_rate:"))
    assert line.endswith("# Adam step size (per optimiser step)")
    assert any(line.startswith("  eval_interval:") and "# greedy evaluation" in line for line in out.splitlines())
    plain = run_cli(capsys, "config", "show", "ppo_cartpole")[1]
    assert yaml.safe_load(out) == yaml.safe_load(plain)  # the comments change nothing a loader reads
