"""Diagnosis: every detector fires on a run that shows its pathology and stays quiet on healthy ones.

Hand-built metric arrays pin the edge cases (NaN, one update, a seed that never finishes an episode,
single-seed input, unknown environments); short real runs, produced by config alone, pin the
detectors against the failures they are named after (a learning rate of 1e-8 freezes the policy;
raw Pendulum returns swamp the shared gradient clip; Huber DQN on CartPole diverges).
"""

from __future__ import annotations

import dataclasses
import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxppo
from jaxppo import DQNConfig, PPOConfig
from jaxppo.diagnosis.core import ENV_FACTS, PATHOLOGIES, Thresholds, diagnose, env_facts, final_returns

U = 200


def healthy_ppo_metrics(num_seeds: int = 3, num_updates: int = U, seed: int = 0) -> dict[str, np.ndarray]:
    """Metrics shaped like a healthy CartPole PPO run: return rises to 500, the critic learns, KL ~1e-3."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, num_updates)
    rise = np.clip(t / 0.6, 0, 1)
    shape = (num_seeds, num_updates)
    return {
        "episode_return": 22 + 478 * rise + rng.normal(0, 10, shape),
        "episodes_completed": np.full(shape, 3.0),
        "value_loss": 20 * np.exp(-3 * t) + rng.uniform(0.5, 1.5, shape),
        "return_std": np.full(shape, 15.0),
        "explained_variance": np.clip(0.2 + t, 0, 0.95) + rng.normal(0, 0.02, shape),
        "approx_kl": rng.uniform(5e-4, 5e-3, shape),
        "clip_fraction": rng.uniform(0.02, 0.15, shape),
        "entropy": np.log(2) * (1 - 0.5 * t) + rng.normal(0, 0.01, shape),
        "grad_norm": rng.uniform(0.3, 2.0, shape),
        "grad_clip_ratio": rng.uniform(0.3, 1.0, shape),
        "value_clip_fraction": rng.uniform(0.0, 0.3, shape),
        "nonfinite_updates": np.zeros(shape),
    }


def flagged(diagnosis, name: str) -> list[int]:
    return [int(i) for i in np.flatnonzero(diagnosis.flagged(name))]


# Hand-built metric arrays ---------------------------------------------------------------------------

def test_healthy_metrics_have_no_findings_and_the_diagnosis_is_json_safe():
    diagnosis = diagnose(healthy_ppo_metrics(), PPOConfig())
    assert diagnosis.num_seeds == 3 and diagnosis.healthy.tolist() == [True] * 3
    assert set(diagnosis.counts) == set(PATHOLOGIES) and sum(diagnosis.counts.values()) == 0
    assert all(seed.solved for seed in diagnosis.seeds)
    assert [p.name for p in diagnosis.seeds[0].phases] == ["learning", "plateau"]
    json.dumps(diagnosis.to_dict(), allow_nan=False)


def test_nan_metric_and_skipped_updates_are_flagged_where_they_began():
    metrics = healthy_ppo_metrics()
    metrics["value_loss"][1, 120] = np.nan
    metrics["nonfinite_updates"][2, 80:] = 3.0  # cumulative count: first skip during update 81
    diagnosis = diagnose(metrics, PPOConfig())
    assert flagged(diagnosis, "nonfinite") == [1, 2]
    assert diagnosis.seeds[1].findings[0].start_update == 121
    assert diagnosis.seeds[1].findings[0].evidence["nonfinite_metric_updates"] == {"value_loss": 1}
    assert diagnosis.seeds[2].findings[0].start_update == 81
    assert diagnosis.seeds[2].findings[0].evidence["skipped_updates"] == 3.0
    json.dumps(diagnosis.to_dict(), allow_nan=False)


def test_a_single_update_is_diagnosed_without_error():
    metrics = {name: values[:, :1] for name, values in healthy_ppo_metrics().items()}
    diagnosis = diagnose(metrics, PPOConfig())
    assert diagnosis.healthy.all()
    assert [(p.start_update, p.end_update) for p in diagnosis.seeds[0].phases] == [(1, 1)]


def test_a_seed_that_never_finishes_an_episode_has_no_return_judgement():
    metrics = healthy_ppo_metrics(num_seeds=2)
    metrics["episodes_completed"][0] = 0.0
    metrics["episode_return"][0] = 0.0  # carried forward from before the first episode
    diagnosis = diagnose(metrics, PPOConfig())
    seed = diagnosis.seeds[0]
    assert seed.final_return is None and seed.solved is None and seed.phases == ()
    assert not {"no_learning", "policy_collapse", "entropy_collapse"} & {f.name for f in seed.findings}
    assert np.isnan(final_returns(metrics)[0]) and final_returns(metrics)[1] > 400
    json.dumps(diagnosis.to_dict(), allow_nan=False)


def test_one_seed_input_jax_arrays_and_missing_metrics():
    metrics = healthy_ppo_metrics(num_seeds=1)
    metrics["episode_return"][0, 120:] = 30.0  # collapsed
    metrics = {name: values.astype(np.float32) for name, values in metrics.items()}  # what jax holds
    as_one_seed = diagnose({k: jnp.asarray(v[0]) for k, v in metrics.items()}, PPOConfig())
    as_batch = diagnose(metrics, PPOConfig())
    assert as_one_seed.num_seeds == 1
    assert as_one_seed.to_dict()["seeds"] == as_batch.to_dict()["seeds"]
    assert flagged(as_one_seed, "policy_collapse") == [0]
    # A run from before most diagnostics existed: returns only.
    only_returns = diagnose({"episode_return": metrics["episode_return"]}, PPOConfig())
    assert flagged(only_returns, "policy_collapse") == [0]


def test_policy_collapse_phases_and_no_learning():
    metrics = healthy_ppo_metrics(num_seeds=3)
    rng = np.random.default_rng(1)
    metrics["episode_return"][1, 130:] = 40 + rng.normal(0, 5, U - 130)  # peak 500, then down for good
    metrics["episode_return"][2] = 22 + rng.normal(0, 5, U)  # never leaves the random level
    diagnosis = diagnose(metrics, PPOConfig())
    assert flagged(diagnosis, "policy_collapse") == [1]
    assert flagged(diagnosis, "no_learning") == [2]
    collapse = diagnosis.seeds[1].findings[0]
    assert 125 <= collapse.start_update <= 135 and collapse.evidence["peak_return"] > 450
    assert [p.name for p in diagnosis.seeds[1].phases][-1] == "collapse"
    assert [p.name for p in diagnosis.seeds[2].phases] == ["flat"]
    assert collapse.suggestion == () and "no single config change" in collapse.cause


def test_a_transient_dip_that_recovers_is_not_a_collapse():
    metrics = healthy_ppo_metrics(num_seeds=1)
    metrics["episode_return"][0, 140:160] = 100.0
    assert diagnose(metrics, PPOConfig()).healthy.all()


def dqn_metrics(q_max: np.ndarray, agreement: np.ndarray | None = None) -> dict[str, np.ndarray]:
    num_seeds, num_updates = q_max.shape
    learning = np.zeros_like(q_max)
    learning[:, 20:] = 1.0
    return {
        "episode_return": np.tile(np.linspace(20, 480, num_updates), (num_seeds, 1)),
        "episodes_completed": np.ones_like(q_max),
        "q_max": q_max * learning, "q_min": 0.5 * q_max * learning,
        "greedy_agreement": (np.full_like(q_max, 0.95) if agreement is None else agreement) * learning,
        "grad_norm": np.ones_like(q_max) * learning, "grad_clip_ratio": learning.copy(),
        "learning": learning,
    }


def test_q_divergence_against_the_reward_bound_and_its_suggestion():
    t = np.arange(U)
    q_max = np.stack([np.minimum(1.5 * t, 250.0),  # healthy: overshoots the bound 100 a little
                      np.where(t > 100, 10.0 ** (2 + (t - 100) / 20), 80.0)])  # exponential after update 100
    diagnosis = diagnose(dqn_metrics(q_max), DQNConfig())
    assert flagged(diagnosis, "q_divergence") == [1]
    finding = diagnosis.seeds[1].findings[0]
    assert finding.evidence["q_bound"] == pytest.approx(100.0)
    assert 100 < finding.start_update <= 125
    assert finding.suggestion == ("td_target_clip=100",)
    # With the target clipped at the bound already, no clip is suggested again.
    clipped = diagnose(dqn_metrics(q_max), DQNConfig(td_target_clip=100.0))
    assert clipped.seeds[1].findings[0].suggestion == ()


def test_q_divergence_without_a_known_bound_uses_growth():
    config = types.SimpleNamespace(env="SomeEnv-v0", algorithm="dqn", gamma=0.99)
    t = np.arange(U)
    q_max = np.stack([np.full(U, 3.0), np.where(t > 100, 3.0 * 10.0 ** ((t - 100) / 15), 3.0)])
    diagnosis = diagnose(dqn_metrics(q_max), config)
    assert flagged(diagnosis, "q_divergence") == [1]
    assert diagnosis.seeds[1].findings[0].suggestion == ()


def test_greedy_drift_needs_a_plateau_then_a_lasting_fall():
    t = np.arange(U)
    agreement = np.stack([np.full(U, 0.9), np.where(t < 120, 0.9, 0.2), np.where((t > 100) & (t < 120), 0.3, 0.9)])
    q_max = np.full((3, U), 50.0)
    diagnosis = diagnose(dqn_metrics(q_max, agreement), DQNConfig())
    assert flagged(diagnosis, "greedy_drift") == [1]


def test_reward_scale_scales_the_known_return_levels():
    facts = ENV_FACTS["CartPole-v1"]
    config = types.SimpleNamespace(env="CartPole-v1", algorithm="ppo", gamma=0.99, env_reward_scale=1000.0)
    scaled = env_facts(config)
    assert scaled.solved_return == facts.solved_return * 1000 and scaled.random_return == facts.random_return * 1000
    assert scaled.reward_high == 1000.0
    metrics = healthy_ppo_metrics()
    metrics["episode_return"] *= 1000.0
    assert diagnose(metrics, config).healthy.all()
    assert flagged(diagnose(metrics, PPOConfig()), "no_learning") == []  # unscaled config: 1000x is still "learning"


def test_stress_env_facts_follow_from_its_default_params():
    from jaxppo.envs.intrusion_detection import EnvParams

    params = EnvParams()
    p = params.malicious_fraction
    per_event = 0.5 * (p * (params.reward_true_positive + params.reward_false_negative)
                       + (1 - p) * (params.reward_true_negative + params.reward_false_positive))
    facts = ENV_FACTS["IntrusionDetection-v0"]
    assert facts.random_return == pytest.approx(per_event * params.max_steps_in_episode)
    rewards = (params.reward_true_positive, params.reward_true_negative, params.reward_false_positive,
               params.reward_false_negative)
    assert (facts.reward_low, facts.reward_high) == (min(rewards), max(rewards))
    # A sampled check of the closed form: a uniform random policy over 64 episodes on the real env.
    env, env_params = jaxppo.envs.make_env("IntrusionDetection-v0")
    space = env.action_space(env_params)
    from jaxppo.envs.evaluation import greedy_episodes

    def act(obs, key):
        return jax.vmap(space.sample)(jax.random.split(key, obs.shape[0]))

    result = jax.jit(lambda key: greedy_episodes(env, env_params, act, key, 64))(jax.random.PRNGKey(0))
    sampled = np.asarray(result["eval_return"], np.float64)
    assert abs(sampled.mean() - facts.random_return) < 4 * sampled.std() / np.sqrt(sampled.size) + 1.0


def test_value_loss_stuck_is_not_judged_where_observations_cannot_predict_the_return():
    # A critic at the mean: normalised value loss ~1 and explained variance ~0 for the whole run.
    metrics = healthy_ppo_metrics()
    rng = np.random.default_rng(3)
    metrics["value_loss"] = 1.0 + rng.normal(0, 0.05, metrics["value_loss"].shape)
    metrics["explained_variance"] = rng.normal(0, 0.02, metrics["value_loss"].shape)
    metrics.pop("return_std")  # normalised targets: unit variance
    popart = PPOConfig(return_normalization="popart", value_clipping="relative")
    assert flagged(diagnose(metrics, popart), "value_loss_stuck") == [0, 1, 2]
    assert not ENV_FACTS["IntrusionDetection-v0"].observations_predict_return
    stress = popart.replace(env="IntrusionDetection-v0")
    metrics["episode_return"] = -681906.0 + (metrics["episode_return"] - 22.0) * 2400.0  # learns to ~+4.9e5
    assert flagged(diagnose(metrics, stress), "value_loss_stuck") == []


def test_thresholds_are_overridable():
    metrics = healthy_ppo_metrics(num_seeds=1)
    metrics["explained_variance"][0, 50:120] = -0.6
    assert diagnose(metrics, PPOConfig()).healthy.all()  # -0.6 is above the default -1
    strict = diagnose(metrics, PPOConfig(), Thresholds(useless_explained_variance=-0.5))
    assert flagged(strict, "critic_useless") == [0]
    assert strict.seeds[0].findings[0].start_update == 51
    with pytest.raises(Exception):
        Thresholds().q_bound_factor = 3.0  # frozen


def test_public_api():
    assert jaxppo.diagnose is diagnose and jaxppo.Thresholds is Thresholds
    assert {"diagnose", "Diagnosis", "Thresholds", "stats"} <= set(jaxppo.__all__)
    assert {"value_loss_stuck", "value_loss_explosion", "frozen_policy", "critic_useless", "policy_collapse",
            "q_divergence", "greedy_drift", "entropy_collapse", "no_learning", "gradient_explosion",
            "nonfinite"} <= set(PATHOLOGIES)


# Real runs, produced by config alone ------------------------------------------------------------------

def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    from jaxppo import cli

    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def frozen_run(tmp_path_factory):
    """Report 001 by config: CartPole with learning rate 1e-8, 3 seeds x 60 updates, as a run directory."""
    from jaxppo import apply_overrides, load_config, runner

    config = apply_overrides(load_config("ppo_cartpole"), [
        "learning_rate=1e-8", "num_envs=4", "num_steps=32", "total_timesteps=7680", "num_epochs=2",
        "num_minibatches=2", "run.updates_per_chunk=30", "run.eval_interval=0", "run.checkpoint_every_chunks=2"])
    run_dir = str(tmp_path_factory.mktemp("runs") / "frozen")
    result = runner.train_run(config, run_dir, num_seeds=3, progress=False, echo=lambda _: None)
    return config, run_dir, result


@pytest.mark.slow
def test_learning_rate_1e8_freezes_the_policy_and_the_suggestion_restores_the_default(frozen_run):
    config, _, result = frozen_run
    diagnosis = diagnose(result.metrics, config)
    assert flagged(diagnosis, "frozen_policy") == [0, 1, 2]
    assert flagged(diagnosis, "no_learning") == [0, 1, 2]
    for seed in diagnosis.seeds:
        frozen = next(f for f in seed.findings if f.name == "frozen_policy")
        assert frozen.evidence["approx_kl_median"] < 1e-6
        assert seed.primary.name == "frozen_policy"
        assert seed.suggestion == (f"learning_rate={PPOConfig().learning_rate:g}",)


def test_run_summary_reports_the_diagnosis_and_the_iqm_with_its_interval(frozen_run):
    _, run_dir, result = frozen_run
    with open(f"{run_dir}/summary.json") as handle:
        summary = json.load(handle)
    assert summary == json.loads(json.dumps(result.summary))
    final = summary["final_return"]
    low, high = final["iqm_ci"]
    assert low <= final["iqm"] <= high and final["num_solved"] == 0 and final["solved_threshold"] == 475.0
    diagnosis = summary["diagnosis"]
    assert diagnosis["num_healthy"] == 0 and diagnosis["counts"]["frozen_policy"] == 3
    assert [w["primary"] for w in diagnosis["worst_seeds"]] == ["frozen_policy"] * 3


def test_diagnose_cli_text_json_and_bad_input(frozen_run, capsys, tmp_path):
    import shutil

    _, run_dir, _ = frozen_run
    code, out, err = run_cli(capsys, "diagnose", run_dir, "--seed", "1")
    assert code == 0, err
    assert "frozen_policy  3/3" in out and "seed 1: final return" in out and "phases" in out
    assert f"--set learning_rate={PPOConfig().learning_rate:g}" in out and "likely cause: frozen_policy" in out
    code, out, err = run_cli(capsys, "diagnose", run_dir, "--json")
    data = json.loads(out)
    assert code == 0 and data["counts"]["frozen_policy"] == 3 and data["chosen_seed"] in (0, 1, 2)
    assert "--set learning_rate=" in data["command"]
    # A run written before diagnosis existed: only config.yaml, run.json and the metrics.
    old = tmp_path / "old_run"
    old.mkdir()
    for name in ("config.yaml", "run.json", "metrics_per_seed.npz"):
        shutil.copy(f"{run_dir}/{name}", old / name)
    code, out_old, err = run_cli(capsys, "diagnose", str(old), "--json")
    assert code == 0, err
    assert json.loads(out_old)["seeds"] == data["seeds"]
    torn = tmp_path / "torn_run"
    torn.mkdir()
    for name in ("config.yaml", "run.json"):
        shutil.copy(f"{run_dir}/{name}", torn / name)
    (torn / "metrics_per_seed.npz").write_bytes(b"not a zip file")
    for argv, fragment in ((["diagnose", run_dir, "--seed", "3"], "out of range"),
                           (["diagnose", str(tmp_path / "missing")], "does not exist"),
                           (["diagnose", str(torn)], "cannot diagnose")):
        code, _, err = run_cli(capsys, *argv)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("jaxppo: error: ") and fragment in lines[0]


def test_diagnostics_plot_marks_where_pathologies_begin(frozen_run):
    from jaxppo import runner

    config, run_dir, result = frozen_run
    with open(f"{run_dir}/summary.json") as handle:
        starts = json.load(handle)["diagnosis"]["starts"]  # what the plot draws, recorded once per run
    assert set(starts) == {"frozen_policy", "no_learning"} and starts["frozen_policy"][1] == 3
    with open(f"{run_dir}/diagnostics.png", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


RAW_PENDULUM = ["num_envs=4", "num_steps=200", "total_timesteps=12000", "num_epochs=2", "num_minibatches=4"]


@pytest.fixture(scope="module")
def raw_return_runs():
    """Report 004 by config: raw Monte Carlo returns near -1000 on Pendulum (15 updates, 2 seeds), and
    the same with the suggested running return normalisation."""
    from jaxppo import apply_overrides, load_config

    failure = apply_overrides(load_config("ppo_report004_raw_returns"), RAW_PENDULUM)
    _, failure_metrics = jaxppo.train(failure, num_seeds=2)
    return failure, failure_metrics


@pytest.mark.slow
def test_raw_returns_explode_the_value_loss_and_clip_the_updates_away(raw_return_runs):
    from jaxppo import apply_overrides

    config, metrics = raw_return_runs
    diagnosis = diagnose(metrics, config)
    assert flagged(diagnosis, "value_loss_explosion") == [0, 1]
    assert flagged(diagnosis, "updates_clipped_away") == [0, 1]
    explosion = next(f for f in diagnosis.seeds[0].findings if f.name == "value_loss_explosion")
    assert explosion.start_update == 1 and explosion.evidence["value_loss_at_start"] > 1e4
    assert diagnosis.seeds[0].suggestion == ("return_normalization=running",)
    # The advice, applied to the same seeds: both pathologies are gone.
    fixed_config = apply_overrides(config, list(diagnosis.seeds[0].suggestion))
    _, fixed_metrics = jaxppo.train(fixed_config, num_seeds=2)
    fixed = diagnose(fixed_metrics, fixed_config)
    assert flagged(fixed, "value_loss_explosion") == [] and flagged(fixed, "updates_clipped_away") == []


@pytest.mark.slow
def test_value_loss_stuck_at_one_with_a_critic_that_cannot_learn():
    """Report 003 by config: per-batch return normalisation with a critic learning rate of 1e-8 pins the
    value loss at the targets' variance, 1.0; the suggestion gives the critic the actor's rate."""
    from jaxppo import apply_overrides, load_config

    config = apply_overrides(load_config("ppo_cartpole"), [
        "num_envs=4", "num_steps=32", "total_timesteps=7680", "num_epochs=2", "num_minibatches=2",
        "value_clipping=off", "return_normalization=batch", "critic_learning_rate=1e-8"])
    _, metrics = jaxppo.train(config, num_seeds=2)
    diagnosis = diagnose(metrics, config)
    # Both seeds sit at a median value loss of about 1.07, right on the detector's sustained-run edge, so
    # which of the two is flagged depends on the exact trajectory; at least one must be, with the evidence.
    stuck = flagged(diagnosis, "value_loss_stuck")
    assert stuck and set(stuck) <= {0, 1}
    finding = next(f for f in diagnosis.seeds[stuck[0]].findings if f.name == "value_loss_stuck")
    assert abs(finding.evidence["value_loss_median"] - 1.0) < 0.35
    assert finding.suggestion == (f"critic_learning_rate={config.learning_rate:g}",)
    # The same targets with a critic that learns (the actor's rate) are not stuck.
    healthy = diagnose(metrics | {"value_loss": metrics["value_loss"] * 0.3,
                                  "explained_variance": np.full_like(metrics["value_loss"], 0.7)}, config)
    assert flagged(healthy, "value_loss_stuck") == []


def test_hand_built_critic_gradient_entropy_and_clip_pathologies():
    metrics = healthy_ppo_metrics(num_seeds=4)
    metrics["return_mean"] = np.full((4, U), 80.0)
    metrics["explained_variance"][0, 40:100] = -143.0  # report 001's number, for 60 updates
    metrics["grad_clip_ratio"][1, 60:] = 0.002  # clipped 500-fold...
    metrics["grad_norm"][1, 60:] = np.linspace(50, 400, U - 60)  # ...while the raw norm grows 25-100x
    metrics["entropy"][2, 30:] = 0.01  # deterministic at update 31 while the return...
    metrics["episode_return"][2] = 22 + np.random.default_rng(3).normal(0, 3, U)  # ...stays random-level
    metrics["value_clip_fraction"][3] = 0.9
    config = PPOConfig(value_clipping="absolute", return_normalization="off")
    diagnosis = diagnose(metrics, config)
    assert flagged(diagnosis, "critic_useless") == [0]
    assert diagnosis.seeds[0].findings[0].start_update == 41
    assert flagged(diagnosis, "gradient_explosion") == [1] and flagged(diagnosis, "updates_clipped_away") == [1]
    assert flagged(diagnosis, "entropy_collapse") == [2] and flagged(diagnosis, "no_learning") == [2]
    assert diagnosis.seeds[2].primary.name == "entropy_collapse"
    assert diagnosis.seeds[2].suggestion == ("entropy_coef=0.05",)  # 5x the default 0.01
    assert flagged(diagnosis, "value_clip_saturated") == [3]
    # Seed 3 solved all the same: its finding is a warning, with the change still attached.
    (saturated,) = diagnosis.seeds[3].findings
    assert saturated.severity == "warning" and saturated.suggestion == ("return_normalization=running",)
    assert diagnosis.seeds[3].healthy and diagnosis.seeds[3].suggestion == ()
    # Near-constant returns (a solved seed): explained variance is noise there and is not judged.
    metrics["return_std"][0] = 1e-3
    assert flagged(diagnose(metrics, config), "critic_useless") == []


@pytest.mark.slow
def test_huber_dqn_on_cartpole_diverges_and_the_bound_is_suggested():
    """Report 002 by config (docs/stability.md): Huber-loss DQN on CartPole's unscaled returns. Q-values
    pass 10x the bound 1 / (1 - 0.99) = 100 after about 23k of 100k env steps (exploration decays over
    the first half of the run; over a 30k run they stop near 500); the suggestion clips the TD target
    at the bound, which stopped the divergence in the 16-seed measurement."""
    config = jaxppo.load_config("dqn_cartpole_cleanrl").replace(
        loss="huber", total_timesteps=100_000, learning_starts=5_000, buffer_size=5_000)
    _, metrics = jaxppo.train(config, num_seeds=2)
    diagnosis = diagnose(metrics, config)
    assert flagged(diagnosis, "q_divergence") == [0, 1]
    for seed in diagnosis.seeds:
        finding = next(f for f in seed.findings if f.name == "q_divergence")
        assert finding.evidence["q_final"] > 1e4 and 1000 < finding.start_update < 4000
        assert seed.primary.name == "q_divergence" and seed.suggestion == ("td_target_clip=100",)


def test_the_report_table_keeps_its_header_apart_for_short_pathology_names():
    """Hand-made counts: a 6-letter name shorter than the header word; the header and rows line up."""
    from types import SimpleNamespace

    from jaxppo.cli.diagnose import report_lines

    diagnosis = diagnose(healthy_ppo_metrics(num_seeds=2), PPOConfig())
    diagnosis = dataclasses.replace(diagnosis, counts={**diagnosis.counts, "nonfinite": 1})
    lines = report_lines("runs/x", SimpleNamespace(algorithm="ppo", env="CartPole-v1"), diagnosis, 0)
    header = next(line for line in lines if "pathology" in line)
    row = next(line for line in lines if line.strip().startswith("nonfinite"))
    assert header == "  pathology  seeds" and row.index("1/2") == header.index("seeds")
