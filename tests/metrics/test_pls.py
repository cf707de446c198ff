"""The torch PLS regression against scikit-learn's PLSRegression (float64), on CPU (and CUDA if present)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurobench.errors import InvalidInputError
from neurobench.metrics.correlation import pearson_columns
from neurobench.metrics.pls import cross_validated_pls, pls_fit

sklearn = pytest.importorskip("sklearn")
from sklearn.cross_decomposition import PLSRegression  # noqa: E402


def _data(n, p, t, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) @ rng.normal(size=(p, p)) * 0.2 + rng.normal(size=p) * 3
    Y = X[:, : min(p, 5)] @ rng.normal(size=(min(p, 5), t)) + rng.normal(size=(n, t)) + 10
    return X, Y, rng.normal(size=(15, p)) + 1


def _reference(X, Y, k, scale):
    # NIPALS run to convergence: the exact PLS solution the torch version computes by SVD
    return PLSRegression(n_components=k, scale=scale, tol=1e-15, max_iter=100_000).fit(X, Y)


@pytest.mark.parametrize("n, p, t, k, scale", [
    (60, 40, 7, 5, False), (50, 200, 10, 25, False), (80, 30, 3, 10, True), (40, 500, 1, 25, False),
    (30, 12, 4, 12, False), (45, 20, 6, 1, True)])
def test_matches_sklearn_float64(n, p, t, k, scale):
    X, Y, Xt = _data(n, p, t)
    ref = _reference(X, Y, k, scale)
    fit = pls_fit(X, Y, k, scale=scale, dtype=torch.float64)
    pred, expected = fit.predict(Xt).numpy(), ref.predict(Xt).reshape(len(Xt), t)
    np.testing.assert_allclose(pred, expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(fit.coef.numpy(), ref.coef_.T, atol=1e-6 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(fit.y_mean.numpy(), ref.intercept_, atol=1e-12)
    # loadings agree up to the sign of each component
    signs = np.sign((fit.x_weights.numpy() * ref.x_weights_).sum(0))
    np.testing.assert_allclose(fit.x_loadings.numpy() * signs, ref.x_loadings_, atol=1e-5 * np.abs(ref.x_loadings_).max())


def test_default_sklearn_tolerance_is_close():
    X, Y, Xt = _data(60, 80, 8, seed=3)
    ref = PLSRegression(n_components=25, scale=False).fit(X, Y)  # Brain-Score's settings
    pred = pls_fit(X, Y, 25, dtype=torch.float64).predict(Xt).numpy()
    assert np.corrcoef(pred.ravel(), ref.predict(Xt).ravel())[0, 1] > 1 - 1e-5


def test_float32_path_is_close_to_float64():
    X, Y, Xt = _data(200, 300, 20, seed=1)
    p64 = pls_fit(X, Y, 25, dtype=torch.float64).predict(Xt).numpy()
    p32 = pls_fit(X.astype(np.float32), Y.astype(np.float32), 25).predict(Xt.astype(np.float32))
    assert p32.dtype == torch.float32
    np.testing.assert_allclose(p32.numpy(), p64, atol=2e-3 * np.abs(p64).max())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    X, Y, Xt = _data(300, 400, 30, seed=2)
    cpu = pls_fit(X, Y, 25, dtype=torch.float64).predict(Xt).numpy()
    gpu = pls_fit(X, Y, 25, dtype=torch.float64, device="cuda").predict(Xt).cpu().numpy()
    np.testing.assert_allclose(gpu, cpu, atol=1e-8 * np.abs(cpu).max())


def test_cross_validated_pls_is_the_per_split_loop():
    X, Y, _ = _data(60, 40, 5, seed=4)
    splits = [(np.arange(0, 50), np.arange(50, 60)), (np.arange(10, 60), np.arange(0, 10))]
    r = cross_validated_pls(X, Y, splits, n_components=5, dtype=torch.float64)
    for s, (train, test) in enumerate(splits):
        pred = _reference(X[train], Y[train], 5, False).predict(X[test])
        expected = [np.corrcoef(pred[:, j], Y[test, j])[0, 1] for j in range(5)]
        np.testing.assert_allclose(r[s].numpy(), expected, atol=1e-8)


def test_pearson_columns_constant_is_nan():
    a = torch.tensor([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]], dtype=torch.float64)
    r = pearson_columns(a, a)
    assert r[0] == pytest.approx(1.0) and torch.isnan(r[1])


def test_bad_inputs():
    X, Y, _ = _data(20, 10, 3)
    with pytest.raises(InvalidInputError, match="n_components"):
        pls_fit(X, Y, 11)
    with pytest.raises(InvalidInputError, match="rows"):
        pls_fit(X, Y[:-1], 2)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        pls_fit(bad, Y, 2)
    with pytest.raises(InvalidInputError, match="features"):
        pls_fit(X, Y, 2).predict(X[:, :5])


def test_registered_metric():
    from neurobench.registry import metrics

    assert "pls" in metrics.names()
    X, Y, _ = _data(40, 30, 2)
    r = metrics.get("pls").factory()(X, Y, [(np.arange(30), np.arange(30, 40))])
    assert r.shape == (1, 2)
