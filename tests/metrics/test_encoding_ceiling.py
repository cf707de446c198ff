"""Split-half noise ceilings and ceiling-normalised encoding scores."""

import numpy as np
import pytest

from neurobench.errors import InvalidInputError
from neurobench.metrics.ceiling import (
    normalize_scores,
    spearman_brown,
    split_half_reliability,
)
from neurobench.metrics.ridge import cross_validated_encoding


def repeated(n=400, reps=4, t=30, noise=None, seed=0):
    """Signal (n x t) plus independent noise per repetition; returns data, signal, true rel."""
    rng = np.random.default_rng(seed)
    sig = rng.standard_normal((n, t))
    noise = np.linspace(0.5, 3, t) if noise is None else noise
    data = sig[:, None, :] + rng.standard_normal((n, reps, t)) * noise
    true_rel = 1 / (1 + noise**2 / reps)  # reliability of the mean over reps
    return data, sig, true_rel


def test_spearman_brown_formula():
    assert spearman_brown(0.5) == pytest.approx(2 / 3)
    assert spearman_brown(0.5, 3) == pytest.approx(0.75)


def test_reliability_recovers_the_truth_and_is_seeded():
    data, _, true_rel = repeated(n=3000, reps=4, t=12)
    c = split_half_reliability(data, n_splits=10, seed=1)
    np.testing.assert_allclose(c.reliability, true_rel, atol=0.04)
    assert c.n_unusable == 0 and c.n_repetitions == 4
    again = split_half_reliability(data, n_splits=10, seed=1)
    np.testing.assert_array_equal(c.reliability, again.reliability)
    assert c.to_record()["n_splits"] == 10


def test_unusable_ceilings_are_flagged_not_dropped():
    data, _, _ = repeated(n=200, reps=2, t=5)
    rng = np.random.default_rng(3)
    data[:, :, 1] = rng.standard_normal((200, 2))  # pure noise: reliability about 0
    data[:, :, 2] = 4.0  # constant: NaN
    c = split_half_reliability(data, n_splits=20, seed=0)
    assert np.isnan(c.reliability[2]) and not c.usable[2]
    assert c.reliability.shape == (5,)
    assert c.n_unusable == int((~c.usable).sum()) >= 1
    ns = normalize_scores(np.array([0.5, 0.1, 0.3, 0.4, np.nan]), c)
    assert ns.n_unusable_ceiling == c.n_unusable and ns.n_undefined_r == 1
    assert np.isnan(ns.per_target[2]) and np.isnan(ns.per_target[4])
    assert ns.score == pytest.approx(np.median(ns.per_target[ns.usable]))


def test_xarray_input_in_any_dim_order():
    xr = pytest.importorskip("xarray")
    data, _, _ = repeated(n=100, reps=3, t=4)
    da = xr.DataArray(data.transpose(2, 0, 1), dims=("neuroid", "presentation", "repetition"))
    a = split_half_reliability(data, seed=2).reliability
    b = split_half_reliability(da.transpose("neuroid", "repetition", "presentation"), seed=2)
    np.testing.assert_allclose(a, b.reliability)


def test_bad_repeated_data():
    data, _, _ = repeated(n=50, reps=2, t=3)
    with pytest.raises(InvalidInputError, match="2 repetitions"):
        split_half_reliability(data[:, :1])
    data[3, 1, 2] = np.nan
    with pytest.raises(InvalidInputError, match="presentation 3, repetition 1, target 2"):
        split_half_reliability(data)
    with pytest.raises(InvalidInputError, match="one per target"):
        normalize_scores(np.ones(3), np.ones(4))


def test_normalisation_convention():
    ns = normalize_scores(np.array([0.6, -0.5, 0.3]), np.array([0.36, 0.5, 0.0]))
    np.testing.assert_allclose(ns.per_target[:2], [1.0, -0.5])
    assert np.isnan(ns.per_target[2]) and ns.n_unusable_ceiling == 1
    assert ns.score == pytest.approx(0.25)
    assert ns.convention == "explainable_variance_fraction"


def test_model_with_the_true_features_reaches_the_ceiling():
    """Encoding + ceiling agree: a model holding the hidden features scores about 1."""
    rng = np.random.default_rng(5)
    n, k, t, reps = 800, 10, 40, 4
    hidden = rng.standard_normal((n, k))
    sig = hidden @ rng.standard_normal((k, t))
    noise = np.linspace(1, 4, t) * sig.std(0)
    data = sig[:, None, :] + rng.standard_normal((n, reps, t)) * noise
    ceiling = split_half_reliability(data, n_splits=10, seed=0)
    res = cross_validated_encoding(hidden, data.mean(1), 5, device="cpu")
    good = normalize_scores(res.r, ceiling).score
    assert good == pytest.approx(1.0, abs=0.08)
    wrong = cross_validated_encoding(rng.standard_normal((n, k)), data.mean(1), 5, device="cpu")
    assert normalize_scores(wrong.r, ceiling).score < 0.05


def test_alphas_at_the_grid_edge_are_counted_warned_and_noted(caplog):
    """A grid that stops short (absolute alphas far below a large-valued layer's eigenvalues)
    leaves every target at its top: the layer's row counts them, a warning is logged and the
    result carries a note; the relative default leaves none there."""
    import logging

    from neurobench.kinds.encoding import score_encoding

    rng = np.random.default_rng(3)
    n, p, t = 120, 400, 12
    hidden = rng.standard_normal((n, 5))
    X = np.maximum(hidden @ rng.standard_normal((5, p)), 0) * 100  # large activations
    data = (hidden @ rng.standard_normal((5, t)))[:, None, :] + rng.standard_normal((n, 4, t)) * 6
    ids = [f"s{i}" for i in range(n)]
    with caplog.at_level(logging.WARNING, logger="neurobench.kinds.encoding"):
        short = score_encoding({"wide": X}, data, ids, ids, alphas=np.logspace(-2, 2, 5), n_bootstrap=0,
                               device="cpu", dtype="float64")
    row = short.layers.iloc[0]
    assert row["alpha_at_max"] == t and row["alpha_at_min"] == 0 and row["n_targets"] == t
    assert any("chose the largest ridge alpha" in m for m in caplog.messages)
    assert len(short.notes) == 1 and "wide" in short.notes[0] and "relative_alphas" in short.notes[0]
    relative = score_encoding({"wide": X}, data, ids, ids, n_bootstrap=0, device="cpu", dtype="float64")
    assert relative.layers.iloc[0][["alpha_at_min", "alpha_at_max"]].tolist() == [0, 0] and not relative.notes
    assert relative.provenance["ridge"]["alpha_grid"]["kind"].startswith("relative")
    assert np.shape(relative.provenance["alpha_grids"]["wide"]) == (5, 9)  # every layer's grid per outer fold
    assert relative.normalized > short.normalized
