"""Every comparator against rsatoolbox 0.3.2 (float64, 1e-6), on random, tied, NaN and real RDMs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurobench.errors import AlignmentError, InvalidInputError
from neurobench.metrics import ranks
from neurobench.metrics.rsa import COMPARATORS, compare_rdms

from .rsa_data import RSATOOLBOX_NAMES, fig1_rdms, random_condensed, subject_rdms

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
