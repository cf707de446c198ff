"""Dataset-defined test sets, dataset-given ceilings, ragged repetitions, and the subject mean."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from neurobench.errors import InvalidInputError
from neurobench.kinds.encoding import score_encoding
from neurobench.kinds.per_subject import combine_subjects, subject_draws
from neurobench.metrics.splits import fixed_split


def _problem(seed, n=80, p=6, t=12, reps=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p))
    w = rng.standard_normal((p, t))
    data = (x @ w)[:, None, :] + rng.standard_normal((n, reps, t)) * 2.0
    ids = [f"s{i:03d}" for i in range(n)]
    return x, data, ids


def test_fixed_split_matches_sklearn_ridge_on_the_test_rows():
    x, data, ids = _problem(0)
    data[:60, 1:] = np.nan  # training images seen once, test images three times
    split = fixed_split(ids=ids, train_ids=ids[:60])
    ceiling = np.linspace(0.2, 0.9, data.shape[2])
    res = score_encoding({"l": x}, data, ids, ids, splits=split, alphas=(3.0,), ceiling=ceiling,
                         ceiling_note="given", n_bootstrap=50, device="cpu", dtype="float64")
    y = np.nanmean(data, axis=1)
    pred = Ridge(alpha=3.0).fit(x[:60], y[:60]).predict(x[60:])
    r = [np.corrcoef(pred[:, j], y[60:, j])[0, 1] for j in range(y.shape[1])]
    np.testing.assert_allclose(res.per_target["r"], r, atol=1e-8)
    np.testing.assert_allclose(res.per_target["normalized"], np.sign(r) * np.square(r) / ceiling, atol=1e-8)
    assert res.provenance["n_test_stimuli"] == 20 and res.provenance["ceiling"]["kind"] == "given"
    assert res.bootstrap["l"]["normalized"].shape == (50,)
    assert res.ci_low <= res.raw <= res.ci_high


def test_split_half_needs_complete_test_repetitions():
    x, data, ids = _problem(1)
    data[70, 2] = np.nan
    with pytest.raises(InvalidInputError, match="complete repetitions"):
        score_encoding({"l": x}, data, ids, ids, splits=fixed_split(ids=ids, train_ids=ids[:60]), device="cpu")


def test_single_repetition_needs_a_given_ceiling():
    x, data, ids = _problem(2, reps=1)
    with pytest.raises(InvalidInputError, match="ceiling"):
        score_encoding({"l": x}, data, ids, ids, device="cpu")


def test_combine_subjects_is_the_mean_with_a_two_factor_interval():
    per = {}
    for s in range(3):
        x, data, ids = _problem(10 + s)
        per[f"subj{s}"] = score_encoding({"a": x, "b": x[:, :2]}, data, ids, ids,
                                         splits=fixed_split(ids=ids, train_ids=ids[:60]),
                                         n_bootstrap=40, device="cpu", dtype="float64")
    out = combine_subjects(per, "toy.encoding")
    for layer in ("a", "b"):
        row = out.layers.set_index("layer").loc[layer]
        expect = np.mean([r.layers.set_index("layer").loc[layer, "normalized"] for r in per.values()])
        assert row["normalized"] == pytest.approx(expect)
        assert row["n_subjects"] == 3
    cv = {layer: np.mean([r.layers.set_index("layer").loc[layer, "cv_score"] for r in per.values()])
          for layer in ("a", "b")}
    assert out.best_layer == max(cv, key=cv.get)
    # two-factor interval: subjects drawn with replacement, each at its own stimulus resample of the
    # same index; rsatoolbox's small-sample dual-bootstrap variance; t interval with min(S, n) - 1 dof
    from rsatoolbox.util.inference_util import _dual_bootstrap
    from scipy.stats import t as t_dist

    samples = np.stack([r.bootstrap[out.best_layer]["raw"] for r in per.values()])  # (S, B)
    points = np.array([r.layers.set_index("layer").loc[out.best_layer, "raw"] for r in per.values()])
    subj = subject_draws(3, samples.shape[1], seed=0)
    both = np.array([samples[subj[b], b].mean() for b in range(samples.shape[1])])
    variances = np.array([np.var(v, ddof=1) for v in (both, points[subj].mean(1), samples.mean(0))])
    var = _dual_bootstrap(variances, n_rdm=3, n_pattern=20)
    half = t_dist.ppf(0.975, 2) * np.sqrt(var)
    assert out.ci_low == pytest.approx(points.mean() - half) and out.ci_high == pytest.approx(points.mean() + half)
    assert out.interval == "subjects+stimuli (Schütt 2023 corrected)"
    assert out.normalization == "explainable_variance_fraction"
    assert set(out.per_target["subject"]) == set(per)
    one = combine_subjects({"subj0": per["subj0"]}, "toy.encoding")  # one subject: its stimulus interval
    assert one.interval == "stimuli" and one.ci_low == pytest.approx(per["subj0"].ci_low)


def test_test_repetitions_give_the_same_score_as_padding():
    """Training images shown once, test images three times: the compact form (means + the test rows'
    repetitions) equals the NaN-padded one."""
    x, data, ids = _problem(3)
    padded = data.copy()
    padded[:60, 1:] = np.nan
    split = fixed_split(ids=ids, train_ids=ids[:60])
    common = dict(splits=split, alphas=(3.0,), n_bootstrap=30, device="cpu", dtype="float64")
    a = score_encoding({"l": x}, padded, ids, ids, **common)
    means = np.nanmean(padded, axis=1)
    b = score_encoding({"l": x}, means, ids, ids, test_repetitions=data[60:], **common)
    np.testing.assert_allclose(b.per_target["r"], a.per_target["r"], atol=1e-10)
    np.testing.assert_allclose(b.per_target["reliability"], a.per_target["reliability"], atol=1e-10)
    assert b.normalized == pytest.approx(a.normalized) and b.ci_low == pytest.approx(a.ci_low)
    with pytest.raises(InvalidInputError, match="test_repetitions"):
        score_encoding({"l": x}, means, ids, ids, test_repetitions=data[50:], **common)
