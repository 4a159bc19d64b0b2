"""The user-facing verbs and outputs: config show, envs, eval's saved file, render, smoothing, DQN configs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

from jaxppo import cli, config_to_dict
from jaxppo import runner
from jaxppo.config import apply_overrides, config_from_dict, configs_dir, load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_lists_every_verb(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for verb in ("train", "eval", "plot", "render", "config", "envs"):
        assert f"jaxppo {verb}" in out or f"  {verb}" in out, verb


def test_config_show_prints_the_resolved_config_as_yaml_that_loads_back(capsys):
    code, out, err = run_cli(capsys, "config", "show", "dqn_cartpole", "--set", "gamma=0.98",
                             "--set", "run.eval_interval=7")
    assert code == 0, err
    assert out.startswith("# dqn_cartpole with --set gamma=0.98 --set run.eval_interval=7\n")
    shown = config_from_dict(yaml.safe_load(out))
    expected = apply_overrides(load_config("dqn_cartpole"), {"gamma": 0.98, "run.eval_interval": 7})
    assert shown == expected
    # Every field is there, not only those the file sets.
    assert set(yaml.safe_load(out)) == set(config_to_dict(expected))
    code, out, _ = run_cli(capsys, "config", "show")
    assert code == 0 and config_from_dict(yaml.safe_load(out)) == load_config("ppo_cartpole")


def test_envs_lists_the_registry_with_action_spaces(capsys, monkeypatch):
    import jaxppo.envs as envs

    real_make_env = envs.make_env

    def make_env(name):
        if name == "Broken-v0":
            raise OSError("its data could not be downloaded")
        return real_make_env(name)

    registry = ["CartPole-v1", "Pendulum-v1", "Catch-bsuite", "MemoryChain-bsuite", "Broken-v0"]
    monkeypatch.setattr(envs, "known_env_names", lambda: list(registry))
    monkeypatch.setattr(envs, "make_env", make_env)
    code, out, err = run_cli(capsys, "envs")
    assert code == 0, err
    from jaxppo.envs.core import SUITES

    is_suite_line = lambda line: line.split(" ", 1)[0].rstrip(":") in SUITES  # noqa: E731
    suite_lines = [line for line in out.splitlines() if is_suite_line(line)]
    assert len(suite_lines) == len(SUITES)  # one line per suite: installed with its names, or the extra to add
    lines = [line for line in out.splitlines() if not is_suite_line(line)]
    rows = {line.split()[0]: line for line in lines[1:] if not line.startswith("cannot")}
    assert list(rows) == registry[:-1]  # the registry's names, in its order
    assert "Discrete(2)" in rows["CartPole-v1"] and "ppo, dqn" in rows["CartPole-v1"]
    assert "Box(1,) in [-2, 2]" in rows["Pendulum-v1"] and "dqn" not in rows["Pendulum-v1"]
    assert rows["Catch-bsuite"].endswith("yes") and rows["MemoryChain-bsuite"].endswith("no")
    assert lines[-1].startswith("cannot be made here: Broken-v0 (OSError: its data could not be downloaded)")


@pytest.fixture(scope="module")
def catch_run(tmp_path_factory):
    """A tiny finished PPO run on Catch-bsuite (gymnax draws Catch with matplotlib alone)."""
    run_dir = str(tmp_path_factory.mktemp("verbs") / "catch")
    config = apply_overrides(load_config("ppo_cartpole"), [
        "env=Catch-bsuite", "num_envs=2", "num_steps=16", "total_timesteps=128", "num_epochs=1",
        "num_minibatches=2", "hidden_sizes=[8]", "run.eval_interval=0"])
    runner.train_run(config, run_dir, num_seeds=2, progress=False, echo=lambda line: None)
    return run_dir


@pytest.mark.slow
def test_eval_saves_its_results_in_the_run_directory(catch_run, capsys):
    code, out, err = run_cli(capsys, "eval", catch_run, "--episodes", "3")
    assert code == 0, err
    path = os.path.join(catch_run, "eval_4.json")
    assert f"wrote {path}" in out
    with open(path) as handle:
        saved = json.load(handle)
    returns = np.array(saved["episode_returns"])
    assert saved["update"] == 4 and saved["evaluation_seed"] == 0 and returns.shape == (2, 3)
    np.testing.assert_allclose(saved["per_seed_mean_return"], returns.mean(axis=1), rtol=1e-6)
    assert saved["eval_return"]["median"] == pytest.approx(np.median(returns.mean(axis=1)))
    for index, value in enumerate(returns.mean(axis=1)):
        assert f"seed {index}: mean return {value:.4g}" in out
    code, out, _ = run_cli(capsys, "eval", catch_run, "--episodes", "2", "--seed", "7")
    assert code == 0 and os.path.exists(os.path.join(catch_run, "eval_4_seed7.json"))
    assert not [name for name in os.listdir(catch_run) if name.endswith(".tmp")]  # written atomically


def test_render_writes_an_animated_gif_of_one_episode(catch_run, capsys, tmp_path):
    from PIL import Image

    out_path = str(tmp_path / "episode.gif")
    code, out, err = run_cli(capsys, "render", catch_run, "--out", out_path, "--seed", "1")
    assert code == 0, err
    steps = int(out.split(" steps")[0].rsplit(" ", 1)[1])
    assert "(ended)" in out and steps == 9  # Catch: the ball falls 9 rows, whatever the policy does
    with Image.open(out_path) as image:
        assert image.format == "GIF" and image.n_frames == steps
    assert os.listdir(tmp_path) == ["episode.gif"]


def test_moving_average_matches_a_loop_and_skips_nans():
    from jaxppo.plotting import auto_smoothing, moving_average

    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 40))
    values[1, 5] = np.nan
    window = 7
    expected = np.array([[np.nanmean(row[max(0, t - window + 1): t + 1]) for t in range(40)] for row in values])
    np.testing.assert_allclose(moving_average(values, window), expected, rtol=1e-12)
    np.testing.assert_array_equal(moving_average(values, 1), values)
    assert auto_smoothing(50_000) == 500 and auto_smoothing(976) == 9 and auto_smoothing(150) == 1


def test_learning_curve_states_the_window_and_panels_have_x_labels(tmp_path, monkeypatch):
    from jaxppo import plotting

    labels = {}
    real_save = plotting.save_figure

    def capture(fig, path, dpi=100):
        labels[os.path.basename(path)] = [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes if ax.axison]
        real_save(fig, path, dpi)

    monkeypatch.setattr(plotting, "save_figure", capture)
    steps = np.arange(1, 1001) * 10
    returns = np.random.default_rng(1).normal(size=(2, 1000))
    window = plotting.learning_curve_png(str(tmp_path / "curve.png"), steps, returns, "DQN")
    assert window == 10
    assert "moving average over 10 updates = 100 steps" in labels["curve.png"][0][1]
    plotting.learning_curve_png(str(tmp_path / "raw.png"), steps, returns, "DQN", smooth=1)
    assert labels["raw.png"][0][1] == "episode return"
    plotting.diagnostics_png(str(tmp_path / "panels.png"), steps,
                             {"td_loss": returns, "nonfinite_updates": returns}, "DQN")
    assert labels["panels.png"] and all(x == "environment steps per seed" for x, _ in labels["panels.png"])


def test_bundled_dqn_configs_evaluate_and_their_bar_moves():
    names = [n for n in os.listdir(configs_dir()) if n.startswith("dqn_") and n.endswith(".yaml")]
    assert names
    for name in names:
        config = load_config(os.path.join(configs_dir(), name))
        assert config.run.eval_interval > 0, name
        chunk = runner.chunk_size_for(config.num_updates, config.run.updates_per_chunk)
        assert config.num_updates // chunk >= 10, name
        # Shortened to 5,000 updates (the report's case) the run still moves in 10 chunks.
        short = config.replace(total_timesteps=5000 * config.steps_per_update)
        assert short.num_updates // runner.chunk_size_for(short.num_updates, short.run.updates_per_chunk) >= 10


def test_the_project_stands_alone_and_ships_its_type_hints():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    for folder in ("README.md", "docs", "jaxppo", "benchmarks", "configs", "tests"):
        path = os.path.join(REPO, folder)
        files = [path] if os.path.isfile(path) else [os.path.join(root, name) for root, _, names in os.walk(path)
                                                     for name in names if name.endswith((".md", ".py", ".yaml"))]
        for file in files:
            with open(file, encoding="utf-8") as handle:
                text = handle.read()
            assert "../" + "shared" not in text, file  # split so this test does not find itself
    assert os.path.isfile(os.path.join(REPO, "jaxppo", "py.typed"))
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        package_data = tomllib.load(handle)["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["jaxppo"]
