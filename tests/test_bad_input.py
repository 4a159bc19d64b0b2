"""Every row of the bad-input table in docs/runs.md: exit status 2, one line, nothing created or compiled."""

from __future__ import annotations

import builtins
import errno
import importlib.util
import json
import os
import re
import shlex
import tempfile

import pytest
import yaml

from jaxppo import PPOConfig, apply_overrides, cli, config_to_dict, runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["num_envs=2", "num_steps=16", "total_timesteps=256", "num_epochs=1", "num_minibatches=2", "hidden_sizes=[16]"]


def table_rows() -> list[tuple[str, str, int, str]]:
    with open(os.path.join(REPO, "docs", "runs.md"), encoding="utf-8") as handle:
        text = handle.read()
    section = text.split("### Bad input", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith("`jaxppo "):
            rows.append((cells[0], cells[1].strip("`"), int(cells[2]), cells[3].strip("`")))
    return rows


ROWS = table_rows()


def test_the_table_covers_the_family():
    assert len(ROWS) >= 30
    commands = " ".join(command for _, command, _, _ in ROWS)
    for needle in ("learning_rate=[1e-3,3e-4]", "--out FILE", "--out READONLY", "dqn_cartpole --set env=Pendulum-v1",
                   "EMPTY.yaml", "LIST.yaml", "--out DIR", "--resume DIR", "--seeds -2", "--seed 1.5"):
        assert needle in commands, needle


def make_run_dir(path, env: str = "CartPole-v1") -> None:
    """A run directory as train_run leaves it before its first checkpoint."""
    os.makedirs(path)
    with open(os.path.join(path, "config.yaml"), "w") as handle:
        yaml.safe_dump(config_to_dict(apply_overrides(PPOConfig(), TINY + [f"env={env}"])), handle)
    with open(os.path.join(path, "run.json"), "w") as handle:
        json.dump({"seed": 0, "num_seeds": 2, "chunk_size": 4}, handle)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """The placeholders of the table, made under tmp_path (the working directory during the test)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("not a directory")
    (tmp_path / "DIR").mkdir()
    (tmp_path / "DIR" / "notes.txt").write_text("someone else's file")
    make_run_dir(tmp_path / "RUN")
    make_run_dir(tmp_path / "DAMAGED")
    make_run_dir(tmp_path / "NOVIS", env="MemoryChain-bsuite")
    (tmp_path / "DAMAGED" / "run.json").write_text("{not json")
    (tmp_path / "EMPTY.yaml").write_text("")
    (tmp_path / "LIST.yaml").write_text("- algorithm: ppo\n- gamma: 0.9\n")
    (tmp_path / "BROKEN.yaml").write_text("gamma: [0.9\n")
    (tmp_path / "BINARY.yaml").write_bytes(b"\xff\xfe\x00\x81gamma")
    (tmp_path / "NOPERM.yaml").write_text("gamma: 0.9\n")
    os.chmod(tmp_path / "NOPERM.yaml", 0)
    readonly = tmp_path / "READONLY"
    readonly.mkdir()
    os.chmod(readonly, 0o555)
    values = {"NEW": str(tmp_path / "NEW"), "READONLY": str(readonly)}
    for name in ("FILE", "DIR", "RUN", "DAMAGED", "NOVIS", "EMPTY.yaml", "LIST.yaml", "BROKEN.yaml", "BINARY.yaml",
                 "NOPERM.yaml"):
        values[name] = str(tmp_path / name)
    yield values
    os.chmod(readonly, 0o755)
    os.chmod(tmp_path / "NOPERM.yaml", 0o644)


def snapshot(root) -> dict:
    return {os.path.join(folder, name): os.path.getsize(os.path.join(folder, name)) if name in files else None
            for folder, dirs, files in os.walk(root) for name in dirs + files}


def refuse_as_the_os_would(monkeypatch, unreadable: str, readonly: str) -> None:
    """``open(unreadable)`` and creating anything inside ``readonly`` raise EACCES, as for a normal user."""
    real_open, real_mkdtemp = builtins.open, tempfile.mkdtemp

    def open_(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == unreadable:
            raise PermissionError(errno.EACCES, "Permission denied", unreadable)
        return real_open(file, *args, **kwargs)

    def mkdtemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.abspath(dir).startswith(os.path.abspath(readonly)):
            raise PermissionError(errno.EACCES, "Permission denied", dir)
        return real_mkdtemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_bad_input_row(row, places, tmp_path, capsys, monkeypatch):
    what, command, exit_code, message = row
    # Root reads and writes through mode bits, and tensorboardX may be installed: then the operating
    # system's refusal (or the missing package) is made to happen, so every row runs on every machine.
    if os.geteuid() == 0:
        refuse_as_the_os_would(monkeypatch, places["NOPERM.yaml"], places["READONLY"])
    if "--tensorboard" in command:
        real_find_spec = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name == "tensorboardX" else real_find_spec(name, *a))

    def no_compiling(*args, **kwargs):
        raise AssertionError(f"{what}: a chunk program was built before the input was refused")

    monkeypatch.setattr(runner.ChunkRunner, "__init__", no_compiling)
    argv = [re.sub(r"\b(" + "|".join(map(re.escape, places)) + r")\b", lambda m: places[m.group(1)], word)
            for word in shlex.split(command)[1:]]
    before = snapshot(tmp_path)
    code = cli.main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == exit_code, (what, err)
    assert len(lines) == 1 and lines[0].startswith("jaxppo: error: "), (what, err)
    assert message in lines[0], (what, lines[0])
    assert snapshot(tmp_path) == before, what


def test_force_writes_into_a_non_empty_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(runner.RunInputError, match="--force"):
        runner.check_run_dir(str(tmp_path))
    runner.check_run_dir(str(tmp_path), force=True)  # allowed, and creates nothing
    assert os.listdir(tmp_path) == ["notes.txt"]
    make_run_dir(tmp_path / "run")
    with pytest.raises(runner.RunInputError, match="already holds a run"):
        runner.check_run_dir(str(tmp_path / "run"), force=True)  # --force never overwrites a run


def test_a_failure_before_the_first_chunk_leaves_no_run_directory(tmp_path, monkeypatch):
    def broken_init(self, keys):
        raise RuntimeError("compilation failed")

    monkeypatch.setattr(runner.ChunkRunner, "init", broken_init)
    with pytest.raises(RuntimeError, match="compilation failed"):
        runner.train_run(apply_overrides(PPOConfig(), TINY), str(tmp_path / "run"), num_seeds=1, progress=False)
    assert not os.path.exists(tmp_path / "run")


def test_unknown_config_fields_name_the_nearest_valid_one():
    from jaxppo import DQNConfig

    with pytest.raises(ValueError, match=r"unknown field 'update_epochs' in PPOConfig\. Did you mean 'num_epochs'\?"):
        PPOConfig(update_epochs=4)
    with pytest.raises(ValueError, match=r"Did you mean 'num_epochs'\?"):
        PPOConfig().replace(update_epochs=4)
    with pytest.raises(ValueError, match=r"Did you mean 'learning_rate'\?"):
        DQNConfig(lr=1e-3)
    assert PPOConfig().replace(num_epochs=2).num_epochs == 2


@pytest.mark.slow
def test_load_policy_names_the_expected_observation_shape(tmp_path):
    import numpy as np

    import jaxppo

    config = apply_overrides(PPOConfig(), TINY + ["run.updates_per_chunk=8"])
    runner.train_run(config, str(tmp_path / "run"), num_seeds=1, progress=False, echo=lambda line: None)
    act = jaxppo.load_policy(str(tmp_path / "run"))
    assert act(np.zeros(4, np.float32)).shape == () and act(np.zeros((3, 4), np.float32)).shape == (3,)
    with pytest.raises(ValueError, match=r"expects one observation of shape \(4,\) or a batch of shape \(N, 4\)"):
        act(np.zeros(3, np.float32))
