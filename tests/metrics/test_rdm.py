"""RDM computation, folding and validation against scipy / rsatoolbox definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist, squareform

from neurobench.errors import AlignmentError, InvalidInputError
from neurobench.ids import check_same_ids
from neurobench.metrics.rdm import (
    compute_rdms,
    crossnobis_rdms,
    square_form,
    upper_triangle,
    validate_rdms,
)

F64 = torch.float64


@pytest.fixture
def patterns():
    return np.random.default_rng(1).normal(size=(3, 12, 20))


@pytest.mark.parametrize("method,scipy_metric,scale", [
    ("correlation", "correlation", 1.0),
    ("cosine", "cosine", 1.0),
    ("sqeuclidean", "sqeuclidean", 1.0),
    ("euclidean", "sqeuclidean", 1 / 20),  # rsatoolbox: squared distance / n_features
])
def test_compute_rdms_matches_scipy(patterns, method, scipy_metric, scale):
    got = compute_rdms(patterns, method, dtype=F64).numpy()
    assert got.shape == (3, 12, 12)
    for i in range(3):
        ref = squareform(pdist(patterns[i], scipy_metric)) * scale
        np.testing.assert_allclose(got[i], ref, atol=1e-10)


@pytest.mark.parametrize("method", ["correlation", "euclidean"])
def test_compute_rdms_matches_rsatoolbox(patterns, method):
    import rsatoolbox

    ds = rsatoolbox.data.Dataset(patterns[0])
    ref = rsatoolbox.rdm.calc_rdm(ds, method=method).get_vectors()[0]
    got = upper_triangle(compute_rdms(patterns[0], method, dtype=F64)).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-10)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")
def test_crossnobis_matches_rsatoolbox():
    import rsatoolbox

    rng = np.random.default_rng(2)
    n_folds, n, f = 4, 7, 15
    pats = rng.normal(size=(n_folds, n, f))
    noise = np.cov(rng.normal(size=(50, f)), rowvar=False)
    prec = np.linalg.inv(noise)
    meas = pats.reshape(-1, f)
    ds = rsatoolbox.data.Dataset(meas, obs_descriptors={
        "cond": np.tile(np.arange(n), n_folds), "run": np.repeat(np.arange(n_folds), n)})
    for p in (None, prec):
        ref = rsatoolbox.rdm.calc_rdm(ds, method="crossnobis", descriptor="cond",
                                      cv_descriptor="run", noise=p).get_vectors()[0]
        got = upper_triangle(crossnobis_rdms(pats, noise=p, dtype=F64)).numpy()
        np.testing.assert_allclose(got, ref, atol=1e-10)


def test_crossnobis_is_unbiased_where_plain_distance_is_not():
    rng = np.random.default_rng(3)
    true = np.zeros((5, 30))  # every stimulus identical: true distance 0
    pats = true[None] + rng.normal(size=(40, 5, 30))
    cv = upper_triangle(crossnobis_rdms(pats, dtype=F64)).mean().item()
    plain = upper_triangle(compute_rdms(pats.mean(0), "euclidean", dtype=F64)).mean().item()
    assert abs(cv) < 0.01 < plain


def test_upper_triangle_is_squareform_order_and_round_trips():
    rng = np.random.default_rng(4)
    v = rng.random((2, 3, 10))
    sq = square_form(torch.tensor(v))
    np.testing.assert_array_equal(sq[1, 2].numpy(), squareform(v[1, 2]))
    np.testing.assert_array_equal(upper_triangle(sq).numpy(), v)


def test_validate_rejects_bad_rdms():
    good = squareform(np.arange(1.0, 11.0))
    validate_rdms(good)
    asym = good.copy()
    asym[0, 1] += 1
    with pytest.raises(InvalidInputError, match="symmetric"):
        validate_rdms(asym)
    diag = good.copy()
    diag[2, 2] = 0.5
    with pytest.raises(InvalidInputError, match="diagonal"):
        validate_rdms(diag)
    with pytest.raises(InvalidInputError, match="at least 3"):
        validate_rdms(np.array([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(InvalidInputError, match="square"):
        validate_rdms(np.zeros((3, 4)))
    with pytest.raises(InvalidInputError, match="n\\(n-1\\)/2"):
        square_form(np.zeros(7))


def test_constant_pattern_correlation_is_refused():
    x = np.random.default_rng(0).normal(size=(4, 6))
    x[2] = 1.0
    with pytest.raises(InvalidInputError, match="constant"):
        compute_rdms(x, "correlation")


def test_stimulus_id_checks():
    check_same_ids(["a", "b", "c"], ["a", "b", "c"])
    with pytest.raises(AlignmentError, match="different order"):
        check_same_ids(["a", "b", "c"], ["a", "c", "b"])
    with pytest.raises(AlignmentError, match="different stimulus sets"):
        check_same_ids(["a", "b", "c"], ["a", "b", "d"])
