"""Hierarchy scores and chronology (metrics.hierarchy) against scipy / brute force, in float64."""

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from neurobench.errors import InvalidInputError
from neurobench.metrics.hierarchy import (
    _resample_targets,
    best_layer_depth,
    chronology,
    half_step,
    layer_orders,
    peak_latencies,
    relative_depth,
    spatial_score,
    temporal_score,
)


def _scores(n_layers=5, n_targets=240, seed=0):
    rng = np.random.default_rng(seed)
    positions = np.repeat(np.arange(1, 5), n_targets // 4).astype(float)
    scores = rng.standard_normal((n_layers, n_targets))
    # targets of later regions are better predicted by deeper layers, noisily
    scores[np.clip(positions.astype(int) + rng.integers(-1, 2, n_targets), 0, n_layers - 1), np.arange(n_targets)] += 2
    return torch.as_tensor(scores), torch.as_tensor(positions)


def test_relative_depth_and_best_layer():
    assert relative_depth(1).tolist() == [0.0]
    np.testing.assert_allclose(relative_depth(5).numpy(), [0, 0.25, 0.5, 0.75, 1])
    s = torch.tensor([[0.1, np.nan, 0.5], [0.3, np.nan, 0.5], [0.2, np.nan, 0.1]], dtype=torch.float64)
    best, depth = best_layer_depth(s)
    assert best.tolist() == [1, -1, 0]  # ties: the first layer
    assert depth[0] == 0.5 and torch.isnan(depth[1]) and depth[2] == 0


def test_spatial_score_is_pearson_of_best_depth_and_position():
    scores, positions = _scores()
    res, best, depth = spatial_score(scores, positions, groups=positions.numpy(), n_bootstrap=300,
                                     n_permutations=100, seed=1)
    expected = np.argmax(scores.numpy(), axis=0) / (scores.shape[0] - 1)
    np.testing.assert_allclose(depth.numpy(), expected)
    assert res.score == pytest.approx(pearsonr(expected, positions.numpy())[0], abs=1e-12)
    assert res.ci_low < res.score < res.ci_high
    assert res.interval == "targets within regions (percentile)"
    assert res.exact is False and res.n_permutations == 100 and 1 / 100 <= res.p_value <= 0.05  # identity counted


def test_spatial_permutation_p_is_exact_over_every_layer_order():
    scores, positions = _scores(n_layers=4, n_targets=40, seed=3)
    scores[:, :] += torch.randn(4, 40, dtype=torch.float64) * 3  # weak alignment: p well inside (0, 1)
    res, best, _ = spatial_score(scores, positions, n_bootstrap=0, n_permutations=1000)
    assert res.exact and res.n_permutations == 24
    b = best.numpy()
    null = []
    for order in itertools.permutations(range(4)):
        depth = np.argsort(order)[b] / 3
        null.append(0.0 if np.std(depth) == 0 else pearsonr(depth, positions.numpy())[0])
    assert res.p_value == pytest.approx(np.mean(np.asarray(null) >= res.score - 1e-12))
    assert np.isnan(res.ci_low) and res.interval == "none"


def test_bootstrap_keeps_each_subject_region_count():
    groups = np.array(["a"] * 5 + ["b"] * 3 + ["a"] * 5 + ["b"] * 3)
    subjects = np.array(["s1"] * 8 + ["s2"] * 8)
    draws = _resample_targets(groups, subjects, 50, seed=0)
    assert draws.shape == (50, 16)
    for d in draws:
        assert (groups[d] == "a").sum() == 10 and (groups[d] == "b").sum() == 6


def test_spatial_score_refuses_what_it_cannot_score():
    scores, positions = _scores()
    with pytest.raises(InvalidInputError, match="at least 2 layers"):
        spatial_score(scores[:1], positions)
    with pytest.raises(InvalidInputError, match="distinct hierarchy positions"):
        spatial_score(scores, torch.ones_like(positions))
    with pytest.raises(InvalidInputError, match="positions"):
        spatial_score(scores, positions[:10])


def test_temporal_score_is_pearson_of_depth_and_peak_latency():
    times = torch.arange(40, dtype=torch.float64) * 0.01
    peaks = np.array([0.08, 0.12, 0.15, 0.31, 0.33])
    rng = np.random.default_rng(0)
    courses = np.exp(-0.5 * ((times.numpy()[None, None] - peaks[None, :, None]) / 0.02) ** 2) * np.ones((6, 1, 1))
    courses = courses + 0.05 * rng.standard_normal(courses.shape)
    res, latency, lo, hi = temporal_score(torch.as_tensor(courses), times, n_bootstrap=500, n_permutations=1000, seed=2)
    mean_peak = times.numpy()[np.argmax(courses.mean(0), axis=1)]
    np.testing.assert_allclose(latency.numpy(), mean_peak)
    assert res.score == pytest.approx(pearsonr(np.linspace(0, 1, 5), mean_peak)[0], abs=1e-12)
    assert res.exact and res.n_permutations == 120 and res.p_value == pytest.approx(1 / 120)
    assert res.interval == "subjects" and res.ci_low <= res.score <= res.ci_high
    assert (lo.numpy() <= latency.numpy() + 1e-12).all() and (hi.numpy() >= latency.numpy() - 1e-12).all()
    assert peak_latencies(torch.full((2, 3), float("nan"), dtype=torch.float64), times[:3]).isnan().all()


def test_layer_orders_sampled_include_the_identity():
    orders, exact = layer_orders(8, 50, seed=0)
    assert not exact and orders.shape == (50, 8) and orders[0].tolist() == list(range(8))
    assert all(sorted(o) == list(range(8)) for o in orders)


def test_half_step_interpolates_between_checkpoints():
    steps = np.array([0, 100, 200, 400])
    values = np.array([[0.0, 0.2, 0.6, 0.8],   # half of 0.8 = 0.4: between 100 and 200 -> 150
                       [0.5, 0.9, 1.0, 1.0],   # reached at the first checkpoint
                       [0.0, 0.1, 0.0, -0.1],  # final <= 0: undefined
                       [0.3, 0.1, 0.2, 0.4]])  # first reached at 0 (0.3 >= 0.2)
    np.testing.assert_allclose(half_step(steps, values), [150, 0, np.nan, 0])
    np.testing.assert_allclose(half_step(steps, values[:1], fraction=0.25), [100])
    with pytest.raises(InvalidInputError, match="increase"):
        half_step(np.array([0, 0, 1]), np.zeros(3))


def test_chronology_orders_names_with_intervals():
    traj = {s: {"late": min(1.0, s / 800), "early": min(1.0, s / 200)} for s in range(0, 1001, 100)}
    cis = {s: {k: (v - 0.02, v + 0.02) for k, v in d.items()} for s, d in traj.items()}
    res = chronology(traj, cis, n_bootstrap=400, seed=0)
    assert res.order == ["early", "late"]
    half = dict(zip(res.names, res.half))
    assert half["early"] == pytest.approx(100) and half["late"] == pytest.approx(400)
    for i, _ in enumerate(res.names):
        assert res.ci_low[i] <= res.half[i] <= res.ci_high[i]
    assert res.interval == "checkpoints (normal approximation)"
    assert np.isnan(chronology(traj).ci_low).all()
    with pytest.raises(InvalidInputError, match="every name"):
        chronology({0: {"a": 1.0}, 100: {"b": 1.0}})
