"""Column-wise Pearson r, plain and weighted, against numpy / scipy in float64 and against an
explicit resampled computation."""

import numpy as np
import pytest
import scipy.stats
import torch

from neurobench.metrics.correlation import pearson_columns, weighted_pearson_columns
from neurobench.metrics.inference import bootstrap_counts


def _data(n=30, c=5, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, c))
    b = 0.5 * a + rng.standard_normal((n, c))
    return a, b


def test_pearson_columns_matches_scipy():
    a, b = _data()
    r = pearson_columns(torch.as_tensor(a), torch.as_tensor(b))
    assert r.dtype == torch.float64
    expected = [scipy.stats.pearsonr(a[:, j], b[:, j])[0] for j in range(a.shape[1])]
    np.testing.assert_allclose(r.numpy(), expected, rtol=0, atol=1e-14)


def test_pearson_columns_keeps_float32_and_marks_constant_columns():
    a, b = _data()
    a[:, 2] = 3.0
    r = pearson_columns(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32))
    assert r.dtype == torch.float32 and torch.isnan(r[2]) and torch.isfinite(r[[0, 1, 3, 4]]).all()
    np.testing.assert_allclose(r[0].item(), np.corrcoef(a[:, 0], b[:, 0])[0, 1], atol=1e-6)


def _resampled(a, b, counts):
    """r per column of the resample that draws row i counts[i] times (explicit copies)."""
    idx = np.repeat(np.arange(len(counts)), counts.astype(int))
    return np.array([np.corrcoef(a[idx, j], b[idx, j])[0, 1] for j in range(a.shape[1])])


def test_weighted_equals_explicit_resamples():
    a, b = _data()
    counts = bootstrap_counts(len(a), 20, seed=3)
    expected = np.stack([_resampled(a, b, c) for c in counts])
    at, bt = torch.as_tensor(a), torch.as_tensor(b)
    r = weighted_pearson_columns(torch.as_tensor(counts), at, bt)
    np.testing.assert_allclose(r.numpy(), expected, rtol=0, atol=1e-12)
    freq = weighted_pearson_columns(torch.as_tensor(counts / len(a)), at, bt)  # the scale does not matter
    np.testing.assert_allclose(freq.numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r[0].numpy(), pearson_columns(at, bt).numpy(), rtol=0, atol=1e-14)


def test_weighted_groups_centre_each_group_then_pool():
    a, b = _data(n=24)
    groups = [np.arange(0, 8), np.arange(8, 24)]
    counts = bootstrap_counts(len(a), 10, seed=5)
    expected = []
    for c in counts:
        num = va = vb = 0.0
        for g in groups:
            idx = np.repeat(g, c[g].astype(int))
            if len(idx) == 0:
                continue
            ac, bc = a[idx] - a[idx].mean(0), b[idx] - b[idx].mean(0)
            num, va, vb = num + (ac * bc).sum(0), va + (ac * ac).sum(0), vb + (bc * bc).sum(0)
        expected.append(num / np.sqrt(va * vb))
    r = weighted_pearson_columns(torch.as_tensor(counts), torch.as_tensor(a), torch.as_tensor(b),
                                 groups=[torch.as_tensor(g) for g in groups])
    np.testing.assert_allclose(r.numpy(), np.stack(expected), rtol=0, atol=1e-12)


def test_weighted_finite_only_uses_the_rows_where_both_are_finite():
    a, b = _data()
    a[[1, 4], 0] = np.nan
    b[7, 0] = np.nan
    b[2, 3] = np.nan
    counts = bootstrap_counts(len(a), 8, seed=1)
    r = weighted_pearson_columns(torch.as_tensor(counts), torch.as_tensor(a), torch.as_tensor(b),
                                 finite_only=True)
    for k, c in enumerate(counts):
        for j in range(a.shape[1]):
            ok = np.isfinite(a[:, j]) & np.isfinite(b[:, j])
            idx = np.repeat(np.flatnonzero(ok), c[ok].astype(int))
            assert r[k, j].item() == pytest.approx(np.corrcoef(a[idx, j], b[idx, j])[0, 1], abs=1e-12)


def test_weighted_constant_column_is_nan_and_dtype_is_kept():
    a, b = _data()
    b[:, 1] = -2.0
    w = torch.as_tensor(bootstrap_counts(len(a), 4, seed=0), dtype=torch.float32)
    r = weighted_pearson_columns(w, torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32))
    assert r.dtype == torch.float32 and r.shape == (5, 5)
    assert torch.isnan(r[:, 1]).all() and torch.isfinite(r[:, [0, 2, 3, 4]]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_results_stay_on_the_input_device():
    a, b = _data()
    at, bt = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
    w = torch.as_tensor(bootstrap_counts(len(a), 4, seed=0), device="cuda")
    assert pearson_columns(at, bt).device.type == "cuda"
    assert weighted_pearson_columns(w, at, bt).device.type == "cuda"
    np.testing.assert_allclose(weighted_pearson_columns(w, at, bt).cpu().numpy(),
                               weighted_pearson_columns(w.cpu(), at.cpu(), bt.cpu()).numpy(), atol=1e-12)


def test_bootstrap_counts_are_the_seeded_multinomial_stream():
    counts = bootstrap_counts(7, 5, seed=11)
    assert counts.shape == (6, 7) and counts.dtype == np.float64
    np.testing.assert_array_equal(counts[0], np.ones(7))
    np.testing.assert_array_equal(counts.sum(1), np.full(6, 7.0))
    expected = np.random.default_rng(11).multinomial(7, np.full(7, 1 / 7), size=5)
    np.testing.assert_array_equal(counts[1:], expected)
    assert bootstrap_counts(7, 0, seed=11).shape == (1, 7)


def test_constant_columns_are_nan_whatever_the_rounding():
    a, b = _data(n=3)
    a[:, 0] = 0.1  # the float mean of three 0.1 is not 0.1
    assert torch.isnan(pearson_columns(torch.as_tensor(a), torch.as_tensor(b))[0])
    w = torch.tensor([[0.0, 3.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)  # row 0 draws one row only
    r = weighted_pearson_columns(w, torch.as_tensor(a), torch.as_tensor(b))
    assert torch.isnan(r[0]).all() and torch.isnan(r[1, 0]) and torch.isfinite(r[1, 1:]).all()
    r = weighted_pearson_columns(w, torch.as_tensor(a), torch.as_tensor(b), groups=[torch.arange(3)])
    assert torch.isnan(r[0]).all()
