"""Linear and debiased CKA against a plain float64 numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurobench.errors import InvalidInputError
from neurobench.metrics.cka import linear_cka


def ref_cka(x, y, debiased):
    x = x - x.mean(0)
    y = y - y.mean(0)
    k, l = x @ x.T, y @ y.T  # noqa: E741
    n = k.shape[0]

    def hsic(a, b):
        if not debiased:
            h = np.eye(n) - 1.0 / n
            return np.trace(a @ h @ b @ h)
        a, b = a.copy(), b.copy()
        np.fill_diagonal(a, 0)
        np.fill_diagonal(b, 0)
        one = np.ones(n)
        return (np.trace(a @ b) + one @ a @ one * (one @ b @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ a @ b @ one) / (n * (n - 3))

    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


@pytest.mark.parametrize("debiased", [False, True])
def test_matches_numpy_reference(debiased):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 50)), rng.normal(size=(30, 8))
    y[:, :3] += x[:, :3]
    got = linear_cka(x, y, debiased=debiased, dtype=torch.float64).item()
    assert got == pytest.approx(ref_cka(x, y, debiased), abs=1e-10)


def test_feature_space_formula_and_invariances():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 6)), rng.normal(size=(20, 9))
    xc, yc = x - x.mean(0), y - y.mean(0)
    feat = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    got = linear_cka(x, y, dtype=torch.float64).item()
    assert got == pytest.approx(feat, abs=1e-12)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert linear_cka(3 * x @ q + 2, y, dtype=torch.float64).item() == pytest.approx(got, abs=1e-12)
    assert linear_cka(x, x, dtype=torch.float64).item() == pytest.approx(1.0)


def test_debiased_removes_high_dimensional_bias():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(25, 2000)), rng.normal(size=(25, 2000))
    biased = linear_cka(x, y, dtype=torch.float64).item()
    unbiased = linear_cka(x, y, debiased=True, dtype=torch.float64).item()
    assert biased > 0.5 and abs(unbiased) < 0.1


def test_batched_and_errors():
    rng = np.random.default_rng(3)
    xs, y = rng.normal(size=(4, 15, 7)), rng.normal(size=(15, 5))
    got = linear_cka(xs, y, dtype=torch.float64)
    assert got.shape == (4,)
    assert got[2].item() == pytest.approx(ref_cka(xs[2], y, False), abs=1e-10)
    with pytest.raises(InvalidInputError, match="same stimuli"):
        linear_cka(xs[0], y[:10])
