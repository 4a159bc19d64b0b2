"""The ``jaxppo`` command line: help, one-line errors with exit status 2, and train -> eval -> plot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from jaxppo import PPOConfig, apply_overrides, cli, config_to_dict, load_config
from jaxppo import config as config_module
from jaxppo.config import configs_dir as real_configs_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "num_envs=2", "num_steps=16", "total_timesteps=256", "num_epochs=1", "num_minibatches=2",
    "hidden_sizes=[16]", "run.updates_per_chunk=4", "run.eval_interval=4", "run.eval_episodes=2",
    "run.checkpoint_every_chunks=1",
]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("jaxppo: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_help_lists_the_commands_and_train_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("train", "eval", "plot", "--resume"):
        assert word in out
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    for option in ("--seeds", "--seed", "--out", "--set", "--resume", "--no-progress", "ppo_cartpole"):
        assert option in out


def test_unknown_override_key_names_the_nearest_valid_key(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--set", "learnin_rate=1e-3", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "learnin_rate", "Did you mean 'learning_rate'?")
    code, _, err = run_cli(capsys, "train", "--set", "run.eval_intervall=3", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "Did you mean 'run.eval_interval'?")
    assert not os.path.exists(tmp_path / "r")


def test_missing_config_file_is_a_one_line_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", str(tmp_path / "nope.yaml"))
    assert_one_line_error(code, err, "nope.yaml", "does not exist")


def test_bad_env_and_inconsistent_sizes_are_one_line_errors(capsys):
    code, _, err = run_cli(capsys, "train", "--set", "env=CartPol-v1")
    assert_one_line_error(code, err, "CartPol-v1", "Did you mean 'CartPole-v1'?")
    code, _, err = run_cli(capsys, "train", "--set", "num_minibatches=3")
    assert_one_line_error(code, err, "num_minibatches=3", "divisible")
    code, _, err = run_cli(capsys, "train", "--seeds", "0")
    assert_one_line_error(code, err, "--seeds")
    code, _, err = run_cli(capsys, "train", "--seeds", "many")
    assert_one_line_error(code, err, "invalid int value")
    code, _, err = run_cli(capsys, "eval", "/nonexistent/run")
    assert_one_line_error(code, err, "does not exist")
    code, _, err = run_cli(capsys, "train", "--resume", "/nonexistent/run")
    assert_one_line_error(code, err, "does not exist")


@pytest.mark.slow
def test_console_script_reports_bad_input_without_a_traceback():
    process = subprocess.run([sys.executable, "-m", "jaxppo.cli", "train", "--set", "gama=0.9"],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
    assert process.returncode == 2
    assert process.stderr.strip() == ("jaxppo: error: unknown key 'gama' in overrides. Did you mean 'gamma'?")


@pytest.mark.slow
def test_train_eval_plot_end_to_end(capsys, tmp_path):
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(config_to_dict(apply_overrides(PPOConfig(), TINY))))
    run_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", str(config_path), "--out", str(run_dir), "--seeds", "2",
                             "--set", "learning_rate=1e-3", "--no-progress")
    assert code == 0, err
    assert "final training return" in out and "greedy eval return" in out and str(run_dir) in out
    assert "update 8/8" in out
    with open(run_dir / "summary.json") as handle:
        summary = json.load(handle)
    assert summary["num_seeds"] == 2 and summary["complete"]
    with open(run_dir / "config.yaml") as handle:
        assert yaml.safe_load(handle)["learning_rate"] == 1e-3
    with open(run_dir / "run.json") as handle:
        assert json.load(handle)["config_name"] == "tiny"

    code, out, err = run_cli(capsys, "eval", str(run_dir), "--episodes", "3")
    assert code == 0, err
    assert "3 episodes x 2 seeds" in out and "seed 1:" in out

    os.remove(run_dir / "learning_curve.png")
    code, out, err = run_cli(capsys, "plot", str(run_dir))
    assert code == 0, err
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    code, _, err = run_cli(capsys, "train", str(config_path), "--out", str(run_dir))
    assert_one_line_error(code, err, "already holds a run", "--resume")
    code, _, err = run_cli(capsys, "train", "--resume", str(run_dir), "--seeds", "3")
    assert_one_line_error(code, err, "--resume")


def test_default_config_is_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, name = cli.resolve_config(None)
    assert name == "ppo_cartpole"
    assert config.run.updates_per_chunk == 61 and config.replace(run=PPOConfig().run) == PPOConfig()  # the bundled file
    config, name = cli.resolve_config("ppo_cartpole")
    assert name == "ppo_cartpole" and config.num_envs == 4
    # An installed wheel: no configs/ beside the package, the YAMLs under jaxppo/bundled_configs.
    wheel_package = tmp_path / "site-packages" / "jaxppo"
    (wheel_package / "bundled_configs").mkdir(parents=True)
    shutil.copy(os.path.join(REPO, "configs", "ppo_cartpole.yaml"), wheel_package / "bundled_configs")
    monkeypatch.setattr(config_module, "configs_dir", lambda: real_configs_dir(str(wheel_package)))
    config, name = cli.resolve_config(None)
    assert config == load_config(os.path.join(REPO, "configs", "ppo_cartpole.yaml")) and name == "ppo_cartpole"


def test_bundled_configs_ship_in_the_wheel_and_are_found_there():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        setuptools_table = tomllib.load(handle)["tool"]["setuptools"]
    assert setuptools_table["package-dir"]["jaxppo.bundled_configs"] == "configs"
    assert "jaxppo.bundled_configs" in setuptools_table["packages"]
    assert setuptools_table["package-data"]["jaxppo.bundled_configs"] == ["*.yaml", "lab/*.yaml"]
    # The package list is explicit (package-dir needs it), so every subpackage on disk must be in it.
    on_disk = {os.path.relpath(root, REPO).replace(os.sep, ".") for root, _, files in os.walk(os.path.join(REPO, "jaxppo"))
               if "__init__.py" in files}
    assert on_disk <= set(setuptools_table["packages"]), on_disk - set(setuptools_table["packages"])
    # In this clone there is no jaxppo/bundled_configs, so the repository's configs/ is used.
    assert real_configs_dir() == os.path.join(REPO, "configs")


def test_import_jaxppo_loads_no_run_loop_tracker_or_plotting_modules():
    code = ("import sys, jaxppo; heavy = ['jaxppo.runner', 'jaxppo.cli', 'orbax.checkpoint', 'tensorboardX', "
            "'wandb', 'matplotlib', 'tqdm']; print([m for m in heavy if m in sys.modules])")
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == "[]"
    assert callable(__import__("jaxppo").load_policy)  # the lazy attribute resolves to the runner's
