"""Nili et al. (2014) noise ceiling and pooling against rsatoolbox 0.3.2, and the published figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurobench.errors import InvalidInputError
from neurobench.metrics.inference import score_rdms
from neurobench.metrics.rdm import upper_triangle
from neurobench.metrics.rsa import COMPARATORS, noise_ceiling, pool_rdms

from ..rsa_data import RSATOOLBOX_NAMES, fig1_rdms, random_condensed, subject_rdms


def rsa_ceiling(y, method):
    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs

    return boot_noise_ceiling(RDMs(y), method=RSATOOLBOX_NAMES[method])


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("method", COMPARATORS)
def test_ceiling_matches_rsatoolbox_random(method):
    rng = np.random.default_rng(70)
    y = random_condensed(rng, 5, 11) + 0.1
    lo, up = noise_ceiling(torch.tensor(y), method)
    rlo, rup = rsa_ceiling(y, method)
    assert lo == pytest.approx(rlo, abs=1e-6)
    assert up == pytest.approx(rup, abs=1e-6)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("method", COMPARATORS)
def test_ceiling_matches_rsatoolbox_real(method):
    y = upper_triangle(torch.tensor(subject_rdms())).numpy()
    lo, up = noise_ceiling(torch.tensor(y), method)
    rlo, rup = rsa_ceiling(y, method)
    assert (lo, up) == pytest.approx((rlo, rup), abs=1e-6)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("method", COMPARATORS)
def test_pooling_matches_rsatoolbox(method):
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.util.inference_util import pool_rdm

    rng = np.random.default_rng(80)
    y = random_condensed(rng, 4, 9) + 0.2
    y[:, 5] = np.nan
    ref = pool_rdm(RDMs(y), method=RSATOOLBOX_NAMES[method]).get_vectors()[0]
    np.testing.assert_allclose(pool_rdms(torch.tensor(y), method).numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("method,lower,upper", [("tau_a", 0.2539, 0.4767),
                                                ("spearman", 0.3723, 0.6657),
                                                ("pearson", 0.3944, 0.6804)])
def test_reference_ceilings(method, lower, upper):
    y = upper_triangle(torch.tensor(subject_rdms()))
    lo, up = noise_ceiling(y, method)
    assert (lo, up) == pytest.approx((lower, upper), abs=5e-5)


def test_score_rdms_single_subject_has_no_ceiling():
    mit, hit = fig1_rdms()
    res = score_rdms(mit, hit, "tau_a", n_bootstrap=0)
    assert res.ceiling_lower is None and res.ceiling_upper is None
    assert "single data RDM" in res.ceiling_note
    assert res.score.item() == pytest.approx(0.3040, abs=5e-5)
    assert torch.isnan(res.ci_low).all()


def test_ceiling_needs_two_subjects():
    with pytest.raises(InvalidInputError, match=">= 2 subject"):
        noise_ceiling(np.random.default_rng(0).random((1, 10)), "tau_a")
