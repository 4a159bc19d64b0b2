"""Seed statistics against independent references: scipy's trim_mean and bootstrap, closed forms."""

import json

import numpy as np
import pytest
import scipy.stats

from jaxppo import stats


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 16, 17, 1000])
def test_interquartile_mean_equals_scipy_trim_mean(count):
    values = np.random.default_rng(count).standard_cauchy(count)
    assert stats.interquartile_mean(values) == pytest.approx(scipy.stats.trim_mean(values, 0.25))


def test_interquartile_mean_hand_case_and_axes():
    # 8 values sorted -50,1,2,3,4,5,6,100: cut 2 from each end, mean of (2, 3, 4, 5).
    assert stats.interquartile_mean([100.0, 1, 2, 3, 4, 5, 6, -50]) == pytest.approx(3.5)
    matrix = np.random.default_rng(0).normal(size=(12, 3))
    np.testing.assert_allclose(stats.interquartile_mean(matrix, axis=0), scipy.stats.trim_mean(matrix, 0.25, axis=0))
    np.testing.assert_allclose(stats.interquartile_mean(matrix, axis=1), scipy.stats.trim_mean(matrix, 0.25, axis=1))
    assert stats.interquartile_mean(matrix, axis=None) == pytest.approx(scipy.stats.trim_mean(matrix.reshape(-1), 0.25))


def test_interquartile_mean_propagates_nan_and_rejects_empty():
    assert np.isnan(stats.interquartile_mean([1.0, 2.0, np.nan, 4.0, 5.0]))
    with pytest.raises(ValueError):
        stats.interquartile_mean([])


def test_bootstrap_of_constant_data_has_zero_width():
    assert stats.bootstrap_interval(np.full(16, 3.5)) == (3.5, 3.5)
    # Stratified: each task constant, different levels -> the aggregate never changes.
    low, high = stats.bootstrap_interval(np.tile([1.0, 2.0, 9.0], (10, 1)))
    assert low == pytest.approx(high)


@pytest.mark.parametrize("statistic", [np.mean, stats.interquartile_mean])
def test_bootstrap_matches_scipy_percentile_bootstrap(statistic):
    values = np.random.default_rng(1).gamma(2.0, 100.0, size=32)
    ours = stats.bootstrap_interval(values, statistic=statistic, num_resamples=20_000, seed=3)
    reference = scipy.stats.bootstrap(
        (values,), lambda x, axis: np.apply_along_axis(statistic, axis, x), method="percentile",
        n_resamples=20_000, random_state=7, vectorized=True,
    ).confidence_interval
    width = reference.high - reference.low
    assert ours[0] == pytest.approx(reference.low, abs=0.05 * width)
    assert ours[1] == pytest.approx(reference.high, abs=0.05 * width)


def test_bootstrap_is_deterministic_and_covers_the_true_mean():
    # Coverage: over 300 independent samples of 20 normal seeds, a 90% interval of the mean should
    # contain the true mean about 90% of the time (percentile bootstrap runs a little narrow at n=20).
    rng = np.random.default_rng(0)
    hits = 0
    for trial in range(300):
        sample = rng.normal(5.0, 2.0, size=20)
        low, high = stats.bootstrap_interval(sample, statistic=np.mean, confidence=0.9, num_resamples=500, seed=trial)
        hits += low <= 5.0 <= high
    assert 0.82 <= hits / 300 <= 0.96
    values = rng.normal(size=10)
    assert stats.bootstrap_interval(values, seed=4) == stats.bootstrap_interval(values, seed=4)


def test_stratified_bootstrap_resamples_within_each_task():
    # Task 0 varies, task 1 is constant: the interval of the pooled mean equals half the interval of
    # task 0's mean plus task 1's constant, which a non-stratified resample of flattened scores would not give.
    rng = np.random.default_rng(2)
    task0 = rng.normal(0.0, 1.0, size=24)
    matrix = np.stack([task0, np.full(24, 10.0)], axis=1)
    pooled = stats.bootstrap_interval(matrix, statistic=np.mean, num_resamples=4000, seed=1)
    alone = stats.bootstrap_interval(task0, statistic=np.mean, num_resamples=4000, seed=1)
    np.testing.assert_allclose(pooled, [(alone[0] + 10.0) / 2, (alone[1] + 10.0) / 2], atol=0.03)


def test_summarize_seeds_keys_values_and_json():
    values = np.array([10.0, 500.0, 480.0, 3.0, 499.0, 350.0, 420.0, 500.0])
    summary = stats.summarize_seeds(values)
    json.dumps(summary, allow_nan=False)
    assert summary["iqm"] == pytest.approx(scipy.stats.trim_mean(values, 0.25))
    assert summary["mean"] == pytest.approx(values.mean())
    assert summary["median"] == pytest.approx(np.median(values))
    assert (summary["min"], summary["max"], summary["worst_seed"], summary["num_seeds"]) == (3.0, 500.0, 3, 8)
    low, high = summary["iqm_ci"]
    assert low <= summary["iqm"] <= high
    assert all(type(v) is float for v in (summary["iqm"], low, high, summary["mean"]))


def test_summarize_seeds_counts_nonfinite_seeds_as_the_worst_score():
    summary = stats.summarize_seeds([np.nan, 4.0, np.inf, 2.0])
    json.dumps(summary, allow_nan=False)
    assert summary["num_nonfinite"] == 2 and summary["num_seeds"] == 4
    # NaN and +Inf both become the worst finite score, 2: scores [2, 4, 2, 2].
    assert summary["mean"] == pytest.approx(2.5) and summary["median"] == pytest.approx(2.0)
    assert summary["worst_seed"] == 0 and summary["max"] == 4.0
    # One diverged seed among eight lowers the IQM; leaving it out would have raised it.
    scores = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, np.inf]
    # Sorted with the Inf as 1: [1, 1, 2, 3, 4, 5, 6, 7]; two cut from each end: mean(2, 3, 4, 5) = 3.5.
    assert stats.summarize_seeds(scores)["iqm"] == pytest.approx(3.5)
    assert stats.summarize_seeds(scores)["iqm"] < stats.interquartile_mean(scores[:7])
    nothing = stats.summarize_seeds([np.nan])
    assert nothing["iqm"] is None and nothing["iqm_ci"] == [None, None]
    json.dumps(nothing, allow_nan=False)


def test_share():
    assert stats.share([True, False, True, True]) == 0.75
    assert stats.share(np.zeros(5, bool)) == 0.0
    with pytest.raises(ValueError):
        stats.share([])
