"""Bootstrap over stimuli / subjects / both, SEM and paired model comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurobench.metrics.inference import (
    bootstrap_indices,
    bootstrap_per_subject,
    compare_models,
    fixed_effects_sem,
    resample_condensed,
    score_rdms,
)
from neurobench.metrics.rdm import upper_triangle
from neurobench.metrics.rsa import COMPARATORS, compare_rdms

from ..rsa_data import fig1_rdms, random_condensed, subject_rdms


def test_resample_matches_rsatoolbox_subsample_pattern():
    from rsatoolbox.rdm import RDMs

    rng = np.random.default_rng(0)
    v = random_condensed(rng, 2, 9)
    idx = np.sort(rng.integers(0, 9, size=9))
    ref = RDMs(v).subsample_pattern("index", idx).get_vectors()
    got = resample_condensed(torch.tensor(v), idx).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got[~np.isnan(got)], ref[~np.isnan(ref)])


@pytest.mark.parametrize("method", COMPARATORS)
def test_stimulus_bootstrap_equals_rsatoolbox_on_resampled_rdms(method):
    from rsatoolbox.rdm import RDMs, compare

    from ..rsa_data import RSATOOLBOX_NAMES

    rng = np.random.default_rng(1)
    x, y = random_condensed(rng, 3, 10, ties=True), random_condensed(rng, 2, 10)
    stim, _ = bootstrap_indices(10, 2, 5, "stimuli", seed=3)
    got = bootstrap_per_subject(torch.tensor(x), torch.tensor(y), method, stim).numpy()
    for b in range(5):
        ref = compare(RDMs(x).subsample_pattern("index", stim[b]),
                      RDMs(y).subsample_pattern("index", stim[b]), RSATOOLBOX_NAMES[method])
        np.testing.assert_allclose(got[b], ref, atol=1e-6)


def test_score_rdms_bootstrap_kinds_and_sem():
    y = upper_triangle(torch.tensor(subject_rdms()))
    mit, _ = fig1_rdms()
    x = torch.tensor(np.concatenate([mit, np.random.default_rng(2).random((2, 4186))]))
    res = {k: score_rdms(x, y, "pearson", n_bootstrap=100, seed=4, bootstrap=k)
           for k in ("stimuli", "subjects", "both")}
    for r in res.values():
        assert r.score.shape == (3,) and r.per_subject.shape == (3, 4)
        assert bool((r.ci_low <= r.score).all()) and bool((r.score <= r.ci_high).all())
    torch.testing.assert_close(res["stimuli"].sem, fixed_effects_sem(res["stimuli"].per_subject))
    assert res["stimuli"].sem[0].item() == pytest.approx(
        np.std(res["stimuli"].per_subject[0].numpy(), ddof=1) / 2)
    # the combined bootstrap is at least as wide as either source alone for the real model
    width = {k: float(r.ci_high[0] - r.ci_low[0]) for k, r in res.items()}
    assert width["both"] >= 0.8 * max(width["stimuli"], width["subjects"])
    again = score_rdms(x, y, "pearson", n_bootstrap=100, seed=4, bootstrap="both")
    torch.testing.assert_close(again.ci_low, res["both"].ci_low)  # seeded


def test_subject_bootstrap_is_resampled_subject_mean():
    rng = np.random.default_rng(5)
    x, y = random_condensed(rng, 2, 8), random_condensed(rng, 5, 8)
    r = score_rdms(x, y, "spearman", n_bootstrap=30, seed=6, bootstrap="subjects", ceiling=False,
                   dtype=torch.float64)
    per = compare_rdms(x, y, "spearman", dtype=torch.float64).numpy()
    _, subj = bootstrap_indices(8, 5, 30, "subjects", 6)
    expected = per[:, subj].mean(-1).T
    np.testing.assert_allclose(r.samples.numpy(), expected, atol=1e-12)


def test_model_comparison_detects_better_model():
    y = upper_triangle(torch.tensor(subject_rdms()))
    mit, hit = fig1_rdms()
    noise = np.random.default_rng(7).random(4186)
    good = compare_models(hit[0], noise, y, "pearson", n_bootstrap=200, seed=0, bootstrap="both")
    assert good.difference > 0 and good.ci_low > 0 and good.p_value < 0.05
    same = compare_models(hit[0], hit[0] + 0.0, y, "pearson", n_bootstrap=50, seed=0)
    assert same.difference == 0 and same.p_value == 1.0


def test_auto_bootstrap_is_the_corrected_two_factor_interval_with_subjects():
    from scipy.stats import t as t_dist

    from neurobench.metrics.inference import corrected_variance, dual_bootstrap

    rng = np.random.default_rng(8)
    x, y = random_condensed(rng, 2, 12), random_condensed(rng, 5, 12)
    res = score_rdms(x, y, "pearson", n_bootstrap=200, seed=2, dtype=torch.float64)
    assert res.bootstrap == "both-corrected" and res.interval == "subjects+stimuli (Schütt 2023 corrected)"
    dual = dual_bootstrap(torch.tensor(x), torch.tensor(y), "pearson", 200, seed=2)
    for j in range(2):
        v = corrected_variance(*[np.var(p[:, j].numpy(), ddof=1) for p in (dual.both, dual.subjects, dual.stimuli)],
                               5, 12)
        half = t_dist.ppf(0.975, 4) * np.sqrt(v)
        assert float(res.ci_low[j]) == pytest.approx(float(res.score[j]) - half)
        assert float(res.ci_high[j]) == pytest.approx(float(res.score[j]) + half)
    one = score_rdms(x, y[:1], "pearson", n_bootstrap=50, seed=2)
    assert one.bootstrap == "stimuli" and one.interval == "stimuli"
    assert score_rdms(x, y, "pearson", n_bootstrap=0).interval == "none"
    with pytest.raises(Exception, match="needs >= 2 subject RDMs"):
        score_rdms(x, y[:1], "pearson", n_bootstrap=10, bootstrap="both-corrected")


def test_corrected_variance_is_rsatoolbox_dual_bootstrap_formula():
    from rsatoolbox.util.inference_util import _dual_bootstrap

    from neurobench.metrics.inference import corrected_variance

    rng = np.random.default_rng(9)
    for _ in range(50):  # in range, and clipped at either bound
        v = rng.uniform(0.1, 2.0, size=3)
        v[0] = v[1] + v[2] + rng.uniform(-1.5, 1.5)
        s, n = int(rng.integers(2, 12)), int(rng.integers(5, 200))
        assert corrected_variance(v[0], v[1], v[2], s, n) == pytest.approx(
            float(_dual_bootstrap(v[:, None], n_rdm=s, n_pattern=n)[0]), rel=1e-12)
