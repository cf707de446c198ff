"""Every comparator against rsatoolbox 0.3.2 (float64, 1e-6), on random, tied, NaN and real RDMs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurobench.errors import AlignmentError, InvalidInputError
from neurobench.metrics import ranks
from neurobench.metrics.rsa import COMPARATORS, compare_rdms

from ..rsa_data import RSATOOLBOX_NAMES, fig1_rdms, random_condensed, subject_rdms

F64 = torch.float64


def rsa_ref(x, y, method):
    from rsatoolbox.rdm import RDMs, compare

    return compare(RDMs(np.atleast_2d(x)), RDMs(np.atleast_2d(y)), RSATOOLBOX_NAMES[method])


@pytest.mark.parametrize("method", COMPARATORS)
@pytest.mark.parametrize("ties", [False, True])
def test_matches_rsatoolbox_random(method, ties):
    rng = np.random.default_rng(10 + ties)
    x = random_condensed(rng, 5, 12, ties)
    y = random_condensed(rng, 3, 12, ties)
    got = compare_rdms(torch.tensor(x), torch.tensor(y), method).numpy()
    np.testing.assert_allclose(got, rsa_ref(x, y, method), atol=1e-6)


@pytest.mark.parametrize("method", COMPARATORS)
def test_matches_rsatoolbox_with_joint_nans(method):
    rng = np.random.default_rng(20)
    x = random_condensed(rng, 4, 10)
    y = random_condensed(rng, 2, 10)
    x[:, [3, 17]] = np.nan
    y[:, [3, 17]] = np.nan
    got = compare_rdms(torch.tensor(x), torch.tensor(y), method).numpy()
    np.testing.assert_allclose(got, rsa_ref(x, y, method), atol=1e-6)


@pytest.mark.parametrize("method", COMPARATORS)
def test_matches_rsatoolbox_on_real_rdms(method):
    from neurobench.metrics.rdm import upper_triangle

    subj = upper_triangle(torch.tensor(subject_rdms())).numpy()
    mit, hit = fig1_rdms()
    models = np.concatenate([mit, hit])
    got = compare_rdms(torch.tensor(models), torch.tensor(subj), method).numpy()
    np.testing.assert_allclose(got, rsa_ref(models, subj, method), atol=1e-6)


@pytest.mark.parametrize("method,expected", [("tau_a", 0.3040), ("spearman", 0.4389),
                                             ("pearson", 0.4912)])
def test_reference_figures_mit_vs_hit(method, expected):
    mit, hit = fig1_rdms()
    assert compare_rdms(mit, hit, method, dtype=F64).item() == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("method,expected", [("tau_a", 0.2009), ("spearman", 0.2963),
                                             ("pearson", 0.3335)])
def test_reference_figures_mit_vs_subjects(method, expected):
    from neurobench.metrics.rdm import upper_triangle

    mit, _ = fig1_rdms()
    subj = upper_triangle(torch.tensor(subject_rdms()))
    got = compare_rdms(torch.tensor(mit), subj, method).mean().item()
    assert got == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_tau_a_backends_agree_exactly(backend):
    if backend == "numba" and not ranks.HAVE_NUMBA:
        pytest.skip("numba not installed")
    rng = np.random.default_rng(30)
    x = torch.tensor(rng.integers(0, 8, size=(6, 300)).astype(float))
    y = torch.tensor(rng.integers(0, 5, size=(4, 300)).astype(float))
    ref = rsa_ref(x.numpy(), y.numpy(), "tau_a")
    got = ranks.tau_a(x, y, backend=backend).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_time_axis_on_data():
    rng = np.random.default_rng(40)
    x = random_condensed(rng, 3, 9)
    y = rng.random((2, 5, 36))
    got = compare_rdms(x, y, "spearman", dtype=F64)
    assert got.shape == (3, 2, 5)
    flat = compare_rdms(x, y.reshape(10, 36), "spearman", dtype=F64).reshape(3, 2, 5)
    torch.testing.assert_close(got, flat)


def test_bad_inputs_are_refused():
    rng = np.random.default_rng(50)
    x, y = random_condensed(rng, 2, 8), random_condensed(rng, 2, 8)
    yn = y.copy()
    yn[:, 4] = np.nan
    with pytest.raises(InvalidInputError, match="NaN in different entries"):
        compare_rdms(x, yn, "tau_a")
    with pytest.raises(InvalidInputError, match="same stimulus set"):
        compare_rdms(x, random_condensed(rng, 2, 9), "tau_a")
    with pytest.raises(InvalidInputError, match="n\\(n-1\\)/2"):
        compare_rdms(x[:, :27], y[:, :27], "tau_a")
    with pytest.raises(InvalidInputError, match="at least 3"):
        compare_rdms(np.ones((1, 1)), np.ones((1, 1)), "tau_a")
    with pytest.raises(InvalidInputError, match="unknown RDM comparator"):
        compare_rdms(x, y, "kendall_b")
    ids = [f"s{i}" for i in range(8)]
    with pytest.raises(AlignmentError):
        compare_rdms(x, y, "tau_a", model_ids=ids, data_ids=ids[::-1])
    compare_rdms(x, y, "tau_a", model_ids=ids, data_ids=list(ids))


def test_rsatoolbox_spellings_accepted():
    rng = np.random.default_rng(60)
    x, y = random_condensed(rng, 2, 6), random_condensed(rng, 1, 6)
    torch.testing.assert_close(compare_rdms(x, y, "tau-a"), compare_rdms(x, y, "tau_a"))
    torch.testing.assert_close(compare_rdms(x, y, "corr"), compare_rdms(x, y, "pearson"))


def _brute_tau_a(xa, ya):
    from scipy.stats import rankdata

    rx, ry = rankdata(xa, axis=1), rankdata(ya, axis=1)  # monotone: same tau-a, no inf - inf
    k = xa.shape[1]
    out = np.zeros((len(xa), len(ya)))
    for i in range(len(xa)):
        sx = np.sign(rx[i][:, None] - rx[i][None])
        for j in range(len(ya)):
            sy = np.sign(ry[j][:, None] - ry[j][None])
            out[i, j] = (sx * sy).sum() / 2 / (k * (k - 1) / 2)
    return out


def test_packed_key_ranks_exact_on_hard_rows():
    """The CPU kernels sort packed keys (value bits + index): ties, near-ties that agree in the
    high bits, -0.0 vs 0.0, negative and infinite values must still rank exactly."""
    if not ranks.HAVE_NUMBA:
        pytest.skip("numba not installed")
    from scipy.stats import rankdata

    rng = np.random.default_rng(60)
    x = rng.random((40, 190))
    x[:8, :30] = 0.5 + 1e-15 * rng.integers(0, 3, (8, 30))  # equal high bits, distinct values
    x[8:12, :60] = np.nextafter(0.7, 1)
    x[8:12, 60:70] = 0.7
    x[12, 5], x[12, 6] = -0.0, 0.0
    x[13, 7], x[14, :5] = np.inf, -np.inf
    x[15:20] = rng.normal(size=(5, 190))
    x[20:25] = rng.integers(-3, 4, size=(5, 190))
    x[25] = 1.0
    y = np.concatenate([x[[0, 9, 15, 21]], rng.random((2, 190))])
    got = ranks.tau_a(torch.tensor(x), torch.tensor(y), backend="numba").numpy()
    np.testing.assert_array_equal(got, _brute_tau_a(x, y))
    r = ranks.average_ranks(torch.tensor(x), backend="numba").numpy()
    np.testing.assert_array_equal(r, rankdata(x, axis=1))
    got = compare_rdms(torch.tensor(x[15:25]), torch.tensor(y), "spearman").numpy()
    ref = rsa_ref(x[15:25], y, "spearman")
    np.testing.assert_allclose(got, ref, atol=1e-12)
    got = compare_rdms(torch.tensor(x[15:25]), torch.tensor(y), "rho_a").numpy()
    np.testing.assert_allclose(got, rsa_ref(x[15:25], y, "rho_a"), atol=1e-12)


def test_infinite_dissimilarities_are_refused():
    import numpy as np
    import pytest

    from neurobench.errors import InvalidInputError
    from neurobench.metrics.rsa import compare_rdms

    x = np.random.default_rng(0).random((2, 10))
    x[0, 3] = np.inf
    with pytest.raises(InvalidInputError, match="finite"):
        compare_rdms(x, x[1:], "tau_a")


@pytest.mark.skipif(not ranks.HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("ties", [False, True])
def test_merge_sort_tau_a_equals_the_bitset_sweep_and_rsatoolbox(monkeypatch, ties):
    rng = np.random.default_rng(7)
    x, y = rng.random((5, 1830)), rng.random((3, 1830))
    if ties:
        x, y = np.round(x * 6) / 6, np.round(y * 4) / 4
        x[2] = 1.0  # a constant row: every pair tied
    sweep = ranks._tau_a_numerators(x, y)
    monkeypatch.setattr(ranks, "MERGE_TAU_MIN_K", 10)
    merge = ranks._tau_a_numerators(x, y)
    np.testing.assert_array_equal(merge, sweep)
    rsatoolbox = pytest.importorskip("rsatoolbox.rdm")
    ref = rsatoolbox.compare(rsatoolbox.RDMs(x), rsatoolbox.RDMs(y), "tau-a")
    np.testing.assert_allclose(compare_rdms(torch.as_tensor(x), torch.as_tensor(y), "tau_a").numpy(), ref,
                               atol=1e-12)
