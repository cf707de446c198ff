"""Feature reduction: JL dimension, sparse random projection, PCA fit on training rows."""

import numpy as np
import pytest
import torch

from neurobench.errors import InvalidInputError
from neurobench.metrics.reduction import PCA, SparseRandomProjection, jl_min_dim, reduce_features
from neurobench.metrics.ridge import cross_validated_encoding


@pytest.mark.parametrize("n,eps", [(10, 0.1), (1000, 0.1), (5000, 0.3), (70000, 0.5)])
def test_jl_dimension_matches_sklearn(n, eps):
    from sklearn.random_projection import johnson_lindenstrauss_min_dim

    assert jl_min_dim(n, eps) == int(johnson_lindenstrauss_min_dim(n, eps=eps))


def test_jl_bad_eps():
    with pytest.raises(InvalidInputError):
        jl_min_dim(10, 1.5)


def test_sparse_projection_is_seeded_sparse_and_preserves_distances():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6000)).astype(np.float32)
    srp = SparseRandomProjection(eps=0.3, seed=4, device="cpu")
    Z = srp.fit_transform(X)
    assert Z.shape == (40, jl_min_dim(40, 0.3))
    again = SparseRandomProjection(eps=0.3, seed=4, device="cpu").fit_transform(X)
    assert torch.equal(Z, again)
    other = SparseRandomProjection(eps=0.3, seed=5, device="cpu").fit_transform(X)
    assert not torch.equal(Z, other)
    M = srp.matrix.to_dense()
    vals = torch.unique(M)
    assert len(vals) == 3  # -s, 0, +s
    assert abs((M != 0).float().mean().item() - 1 / np.sqrt(6000)) < 0.003
    d0 = torch.pdist(torch.as_tensor(X))
    d1 = torch.pdist(Z)
    ratio = (d1 / d0).numpy()
    assert ((ratio > 0.7) & (ratio < 1.3)).mean() > 0.99
    assert srp.record()["applied"] and srp.record()["seed"] == 4


def test_projection_skipped_when_not_narrower():
    X = np.ones((20, 30))
    Z, rec = reduce_features(X, "srp", device="cpu", eps=0.5)
    assert not rec["applied"] and Z.shape == (20, 30)


def test_pca_matches_sklearn_on_training_rows_only():
    from sklearn.decomposition import PCA as SkPCA

    rng = np.random.default_rng(1)
    for n, p in [(60, 200), (300, 20)]:
        X = rng.standard_normal((n, p)) @ rng.standard_normal((p, p)) + 5
        train = np.arange(0, n, 2)
        ours = PCA(5, device="cpu", dtype="float64").fit(X, train)
        ref = SkPCA(5).fit(X[train])
        np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_,
                                   atol=1e-8)
        a, b = ours.transform(X).numpy(), ref.transform(X)
        np.testing.assert_allclose(np.abs(a), np.abs(b), atol=1e-6)  # components up to sign
        X2 = X.copy()
        X2[1::2] += 100  # test rows must not influence the fit
        moved = PCA(5, device="cpu", dtype="float64").fit(X2, train)
        np.testing.assert_allclose(moved.components_.numpy(), ours.components_.numpy())


def test_pca_variance_fraction_and_record():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((100, 3)) @ rng.standard_normal((3, 50))
    _, rec = reduce_features(X, "pca", np.arange(80), device="cpu", dtype="float64",
                             n_components=0.999)
    assert rec["n_components"] == 3 and rec["fit_rows"] == 80
    with pytest.raises(InvalidInputError):
        reduce_features(X, "ica", device="cpu")


def test_pca_inside_cv_is_fit_per_outer_fold():
    rng = np.random.default_rng(3)
    latent = rng.standard_normal((90, 3))
    X = latent @ rng.standard_normal((3, 40)) * 3 + rng.standard_normal((90, 40)) * 0.1
    Y = latent @ rng.standard_normal((3, 4)) + rng.standard_normal((90, 4)) * 0.1
    res = cross_validated_encoding(X, Y, 3, device="cpu", reduction="pca",
                                   reduction_kwargs={"n_components": 10})
    recs = res.record["reduction"]
    assert len(recs) == 3 and all(r["fit_rows"] == 60 for r in recs)
    assert np.all(res.r > 0.9)
