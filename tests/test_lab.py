"""The stability lab: a tiny grid end to end, resume after a crash, every shipped grid, bad grid input."""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import shutil

import numpy as np
import pytest
import yaml

from jaxppo import PPOConfig, cli, lab, machine
from jaxppo import config as config_module
from jaxppo.config import configs_dir as real_configs_dir
from jaxppo.diagnosis.core import PATHOLOGIES, diagnose

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_OVERRIDES = {"num_envs": 2, "num_steps": 16, "total_timesteps": 640, "num_epochs": 1, "num_minibatches": 2,
                  "hidden_sizes": [8]}


def write_grid(folder, **fields) -> str:
    data = {"base": "ppo", "seeds": 2, "overrides": dict(TINY_OVERRIDES),
            "variants": {"plain": {}, "clipped": {"value_clipping": "absolute"}}}
    data.update(fields)
    path = os.path.join(str(folder), "grid.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path


@pytest.fixture(scope="module")
def interrupted_then_resumed(tmp_path_factory):
    """A 2-variant x 2-seed grid whose first run dies after its first cell, then is run again."""
    folder = tmp_path_factory.mktemp("lab")
    grid = lab.load_grid(write_grid(folder))
    out_dir = str(folder / "out")
    real_train_group = lab._train_group
    trained: list[list[str]] = []

    def dies_on_the_second_program(configs, keys):
        if len(trained) == 1:
            raise RuntimeError("killed")
        trained.append([c.value_clipping for c in configs])
        return real_train_group(configs, keys)

    lab._train_group = dies_on_the_second_program
    try:
        with pytest.raises(RuntimeError, match="killed"):
            lab.run(grid, out_dir=out_dir, progress=False)
    finally:
        lab._train_group = real_train_group
    with open(os.path.join(out_dir, lab.RESULTS_FILE), encoding="utf-8") as handle:
        after_crash = json.load(handle)

    resumed: list[list[str]] = []

    def counting(configs, keys):
        resumed.append([c.value_clipping for c in configs])
        return real_train_group(configs, keys)

    lab._train_group = counting
    try:
        results = lab.run(grid, out_dir=out_dir, progress=False)
    finally:
        lab._train_group = real_train_group
    return {"grid": grid, "out_dir": out_dir, "trained": trained, "after_crash": after_crash, "resumed": resumed,
            "results": results}


def recompute_final_return(metrics: dict, scale: float) -> np.ndarray:
    """Numpy loop: per seed, mean return over the last 10% (rounded up) of updates from the first finished episode."""
    out = []
    for seed in range(metrics["episode_return"].shape[0]):
        valid = np.cumsum(metrics["episodes_completed"][seed]) > 0
        values = metrics["episode_return"][seed][valid]
        out.append(values[-math.ceil(0.1 * values.size):].mean() / scale)
    return np.array(out)


@pytest.mark.slow
def test_a_killed_lab_keeps_finished_cells_and_resumes_at_the_cell_it_was_on(interrupted_then_resumed):
    run = interrupted_then_resumed
    assert run["trained"] == [[PPOConfig().value_clipping]]  # the first cell trained, then the lab died on the second
    assert [c["variant"] for c in run["after_crash"]["cells"]] == ["plain"]
    assert run["resumed"] == [["absolute"]]  # only the unfinished cell is trained again
    first_before = run["after_crash"]["cells"][0]
    first_after = run["results"]["cells"][0]
    assert first_after["finished_utc"] == first_before["finished_utc"]
    assert first_after["per_seed"] == first_before["per_seed"]
    assert [c["variant"] for c in run["results"]["cells"]] == ["plain", "clipped"]


def test_tables_only_refreshes_statistics_without_training(interrupted_then_resumed, monkeypatch, capsys):
    run = interrupted_then_resumed

    def no_training(configs, keys):
        raise AssertionError("--tables-only must not train")

    monkeypatch.setattr(lab, "_train_group", no_training)
    code = cli.main(["lab", run["grid"].path, "--out", run["out_dir"], "--tables-only", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    with open(os.path.join(run["out_dir"], lab.RESULTS_FILE), encoding="utf-8") as handle:
        refreshed = json.load(handle)
    assert refreshed["cells"] == json.loads(json.dumps(run["results"]["cells"]))


def test_tiny_grid_tables_match_a_recomputation_from_the_saved_per_seed_metrics(interrupted_then_resumed):
    run = interrupted_then_resumed
    out_dir, grid = run["out_dir"], run["grid"]
    for name in (lab.RESULTS_FILE, lab.MARKDOWN_FILE, lab.THROUGHPUT_PNG, lab.CURVES_PNG, lab.PATHOLOGIES_PNG):
        assert os.path.getsize(os.path.join(out_dir, name)) > 0, name
    with open(os.path.join(out_dir, lab.RESULTS_FILE), encoding="utf-8") as handle:
        results = json.load(handle)
    with open(os.path.join(out_dir, lab.MARKDOWN_FILE), encoding="utf-8") as handle:
        markdown = handle.read()
    assert results == json.loads(json.dumps(run["results"]))
    machine = results["machine"]
    assert f"Machine: {machine['cpu_model']} ({machine['jax_backend']}, {machine['cpu_count_usable']} CPUs)" in markdown
    for cell, record in zip(grid.cells, results["cells"]):
        with np.load(os.path.join(out_dir, lab.CELLS_DIR, cell.file_stem + ".npz")) as data:
            metrics = {k: data[k] for k in data.files}
        assert metrics["episode_return"].shape == (2, cell.config.num_updates)
        finals = recompute_final_return(metrics, cell.reward_scale)
        final = record["final_return"]
        # With 2 seeds the interquartile mean keeps both (floor(2/4) = 0 cut from each end).
        assert final["iqm"] == pytest.approx(np.mean(finals), rel=1e-6)
        assert final["median"] == pytest.approx(np.median(finals), rel=1e-6)
        assert final["min"] == pytest.approx(finals.min(), rel=1e-6)
        assert final["worst_seed"] == int(np.argmin(finals))
        assert final["iqm_ci"][0] <= final["iqm"] <= final["iqm_ci"][1]
        assert final["iqm_ci"][0] >= finals.min() - 1e-6 and final["iqm_ci"][1] <= finals.max() + 1e-6
        healthy = diagnose(metrics, cell.config).healthy
        assert record["healthy_share"] == pytest.approx(np.mean(healthy))
        assert record["per_seed"]["healthy"] == [bool(h) for h in healthy]
        counts = diagnose(metrics, cell.config).counts
        assert set(record["pathology_share"]) == set(PATHOLOGIES)
        for name in PATHOLOGIES:
            assert record["pathology_share"][name] == pytest.approx(counts[name] / 2)
        steps = cell.config.num_updates * cell.config.steps_per_update * 2
        assert record["env_steps_per_s"] == pytest.approx(steps / record["run_s"])
        assert record["compile_s"] > 0 and record["program"]["run_cpu_s"] > 0
        assert record["env_steps_per_cpu_s"] == pytest.approx(steps / record["program"]["run_cpu_s"])
        # The Markdown row shows the same numbers.
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {cell.variant} | CartPole-v1 |"))
        assert f"{100 * np.mean(healthy):.0f}% ({int(np.sum(healthy))}/2)" in row
        assert lab._fmt(float(np.mean(finals))) in row and f"(#{int(np.argmin(finals))})" in row
        assert f"{record['env_steps_per_s']:,.0f}" in row


@pytest.mark.slow
def test_reward_scales_share_one_program_that_gives_what_their_own_programs_give(tmp_path):
    grid = lab.load_grid(write_grid(tmp_path, reward_scales=[1e-3, 1e3], variants={"plain": {}}))
    real_train_group = lab._train_group
    programs: list[int] = []

    def counting(configs, keys):
        programs.append(len(configs))
        return real_train_group(configs, keys)

    lab._train_group = counting
    try:
        shared = lab.run(grid, out_dir=str(tmp_path / "shared"), progress=False)
        separate = lab.run(dataclasses.replace(grid, share_programs=False), out_dir=str(tmp_path / "separate"),
                           progress=False)
    finally:
        lab._train_group = real_train_group
    assert programs == [2, 1, 1]  # one stacked program for both scales, then one program per cell
    assert shared["cells"][0]["program"]["cells"] == ["plain/CartPole-v1/x0.001", "plain/CartPole-v1/x1000"]
    for cell, a, b in zip(grid.cells, shared["cells"], separate["cells"]):
        assert a["reward_scale"] == b["reward_scale"] == cell.config.env_reward_scale
        with np.load(tmp_path / "shared" / lab.CELLS_DIR / (cell.file_stem + ".npz")) as x, \
                np.load(tmp_path / "separate" / lab.CELLS_DIR / (cell.file_stem + ".npz")) as y:
            assert set(x.files) == set(y.files)
            for name in x.files:
                # Return-unit metrics scale with the rewards; the policy loss (normalised advantages) does
                # not, and its near-zero mean carries float32 rounding of its O(1) terms at every scale.
                np.testing.assert_allclose(x[name], y[name], rtol=2e-5, atol=max(1e-6 * cell.reward_scale, 1e-7),
                                           err_msg=name)
        assert a["per_seed"]["healthy"] == b["per_seed"]["healthy"]


def grid_paths() -> list[str]:
    return sorted(glob.glob(os.path.join(REPO, "configs", "lab", "*.yaml")))


def test_the_shipped_grids_exist_for_every_report_and_question():
    names = {os.path.basename(p)[:-5] for p in grid_paths()}
    assert {"report000", "report001", "report002", "report003", "report004", "reward_scale", "implementation_details"} <= names


@pytest.mark.parametrize("path", grid_paths(), ids=lambda p: os.path.basename(p))
def test_every_shipped_grid_builds_all_its_cells(path):
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    grid = lab.load_grid(path)
    scales = data.get("reward_scales") or [1.0]
    assert len(grid.cells) == len(data["variants"]) * len(grid.envs) * len(scales)
    for cell in grid.cells:
        assert cell.config.env == cell.env
        assert getattr(cell.config, "env_reward_scale", 1.0) == pytest.approx(cell.reward_scale)
        overrides = {**(data.get("overrides") or {}), **(data["variants"][cell.variant] or {})}
        assert config_module.apply_overrides(cell.config, overrides) == cell.config  # every override took effect
    assert {c.variant for c in grid.cells} == set(data["variants"])
    # The reward scales of one variant and env share a program; different variants never do.
    groups = lab.program_groups(grid.cells, grid.share_programs)
    assert len(groups) == len(data["variants"]) * len(grid.envs)
    assert all(len({c.variant for c in g}) == 1 and len({c.env for c in g}) == 1 for g in groups)


def test_grids_are_found_by_name_in_a_clone_and_in_an_installed_wheel(tmp_path, monkeypatch):
    assert lab.grids_dir() == os.path.join(REPO, "configs", "lab")
    assert lab.load_grid("report000").path == os.path.join(REPO, "configs", "lab", "report000.yaml")
    wheel_package = tmp_path / "site-packages" / "jaxppo"
    (wheel_package / "bundled_configs" / "lab").mkdir(parents=True)
    shutil.copy(os.path.join(REPO, "configs", "ppo_report000_absolute_clip.yaml"), wheel_package / "bundled_configs")
    shutil.copy(os.path.join(REPO, "configs", "lab", "report000.yaml"), wheel_package / "bundled_configs" / "lab")
    monkeypatch.setattr(config_module, "configs_dir", lambda: real_configs_dir(str(wheel_package)))
    grid = lab.load_grid("report000")
    assert grid.path == str(wheel_package / "bundled_configs" / "lab" / "report000.yaml")
    assert grid.cells[0].config.value_clipping == "absolute"


@pytest.mark.parametrize("fields, fragments", [
    ({"varaints": {"a": {}}}, ["'varaints'", "Did you mean 'variants'?"]),
    ({"variants": {"a": {"learnin_rate": 1e-3}}}, ["variant 'a'", "Did you mean 'learning_rate'?"]),
    ({"variants": {"a": {"num_minibatches": 3}}}, ["variant 'a'", "num_minibatches"]),
    ({"envs": ["CartPol-v1"]}, ["CartPol-v1", "Did you mean 'CartPole-v1'?"]),
    ({"variants": {"a": {"env": "Acrobot-v1"}}}, ["variant 'a'", "'envs'"]),
    ({"reward_scales": [1.0, -2.0]}, ["reward_scales", "-2.0"]),
    ({"seeds": 0}, ["seeds=0"]),
    ({"base": "ppo_cartpol"}, ["ppo_cartpol", "Did you mean 'ppo_cartpole'?"]),
    ({"variants": {"a b": {}}}, ["'a b'"]),
])
def test_bad_grid_input_is_one_line_exit_2_before_anything_is_created(capsys, tmp_path, fields, fragments):
    path = write_grid(tmp_path, **fields)
    if "varaints" in fields:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
        data.pop("variants")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(data, handle, sort_keys=False)
    out_dir = tmp_path / "out"
    code = cli.main(["lab", path, "--out", str(out_dir)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("jaxppo: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not out_dir.exists()


def test_missing_grid_names_the_nearest_bundled_grid(capsys, tmp_path):
    code = cli.main(["lab", "report00", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "Did you mean" in err
    code = cli.main(["lab", "report000", "--seeds", "0", "--out", str(tmp_path / "out")])
    assert code == 2 and "--seeds" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_readme_tables_are_generated_from_results_json(interrupted_then_resumed, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("lab_tables", os.path.join(REPO, "tools", "lab_tables.py"))
    lab_tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab_tables)
    shutil.copytree(interrupted_then_resumed["out_dir"], tmp_path / "lab" / "report000")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{lab_tables.BEGIN}\nstale\n{lab_tables.END}\noutro\n")
    assert lab_tables.main(["--lab-dir", str(tmp_path / "lab"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "stale" not in text
    for record in interrupted_then_resumed["results"]["cells"]:
        failed = 2 - sum(record["per_seed"]["healthy"])
        row = next(line for line in text.splitlines() if f"| {record['variant']} | CartPole-v1 (x1) |" in line)
        assert f"| {100 * failed / 2:.0f}% ({failed}/2) |" in row
    assert "not run yet (`jaxppo lab report004`)" in text


def test_results_tables_name_the_machine_of_new_and_older_records():
    # A describe() record, as the lab writes it now...
    now = machine.describe()
    assert machine.short_description(now) == f"{now['cpu_model']} ({now['jax_backend']}, {now['cpu_count_usable']} CPUs)"
    # ...and a record in the keys the lab wrote before jaxppo.machine (the committed docs/lab/report000 has one),
    # which `jaxppo lab --tables-only` must still describe instead of printing "?".
    with open(os.path.join(REPO, "docs", "lab", "report000", "results.json"), encoding="utf-8") as handle:
        older = json.load(handle)["machine"]
    assert "cpu_model" not in older
    assert machine.short_description(older) == f"{older['processor']} ({older['jax_backend']}, {older['cpu_count']} CPUs)"
    assert "?" not in machine.short_description(older)


def test_a_rerun_with_another_set_trains_again_and_says_what_changed(tmp_path):
    """Cells finished under ``--set total_timesteps=640`` are not reused for ``--set total_timesteps=320``;
    the same request again reuses them; results.md says which --set changed the grid's cells."""
    path = write_grid(tmp_path, variants={"plain": {}})
    out_dir = str(tmp_path / "out")
    trained: list[int] = []
    real_train_group = lab._train_group

    def counting(configs, keys):
        trained.append(configs[0].total_timesteps)
        return real_train_group(configs, keys)

    lab._train_group = counting
    try:
        for steps in (640, 320, 320):
            lab.run(lab.load_grid(path, sets=[f"total_timesteps={steps}"]), out_dir=out_dir, progress=False)
    finally:
        lab._train_group = real_train_group
    assert trained == [640, 320]
    with open(os.path.join(out_dir, lab.MARKDOWN_FILE), encoding="utf-8") as handle:
        assert "--set total_timesteps=320" in handle.read()
