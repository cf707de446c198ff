"""Fault injection at the RSA boundary: data RDMs that are not RDMs, and activations that overflow.

Every bad data RDM is refused by name, through the CLI (exit code 2, one line saying what to do) and
the Python API (InvalidInputError), before any activation is extracted; a conversion happens only
when an option says so, and then gives the score of the converted RDM.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurobench as nb
from neurobench.errors import InvalidInputError
from neurobench.kinds.rsa import RSABenchmark

from . import boundary_data as bp
from .boundary_support import clean_registrations, cli, load, typed_error  # noqa: F401 (autouse)

# (benchmark case, phrases the one-line error must hold)
RDM_FAULTS = [
    ("asymmetric", ["not symmetric", "'img02' and 'img05'", "(D + D^T) / 2"]),
    ("diagonal", ["diagonal", "must be zero"]),
    ("similarity", ["similarity matrix", "similarity_to_dissimilarity=true"]),
    ("lower", ["only its lower triangle filled", "D + D.T"]),
    ("negative", ["negative dissimilarities", "allow_negative=true"]),
    ("short", ["275 entries", "24 stimuli", "276 pairs"]),
    ("inf", ["infinite"]),
    ("nan", ["missing (NaN)"]),
    ("constant", ["every dissimilarity", "is 1"]),
]


@pytest.mark.parametrize("case,phrases", RDM_FAULTS, ids=[c for c, _ in RDM_FAULTS])
def test_bad_data_rdm_is_refused_through_the_cli(capsys, tmp_path, case, phrases):
    rc, _out, err = cli(capsys, "score", "--model", "fault-net", "--benchmark", f"fault.{case}-rsa",
                        "--store", str(tmp_path / "s.sqlite"), "--device", "cpu", "--quiet")
    typed_error(rc, err, f"fault.{case}-rsa data RDMs", *phrases)
    assert not (tmp_path / "s.sqlite").exists() or nb.ResultStore(tmp_path / "s.sqlite").rows().empty


@pytest.mark.parametrize("case,phrases", RDM_FAULTS, ids=[c for c, _ in RDM_FAULTS])
def test_bad_data_rdm_is_refused_through_the_api(case, phrases):
    bench = RSABenchmark(f"api.{case}-rsa", "", (), bp.stimuli, lambda: (bp.IDS, bp.rdm_cases()[case], ""),
                         n_bootstrap=10)
    acts = {"a": bp.HIDDEN + 0.5 * np.random.default_rng(0).standard_normal(bp.HIDDEN.shape)}
    with pytest.raises(InvalidInputError) as info:
        bench.score_activations(acts)
    for phrase in phrases:
        assert phrase in str(info.value)


def test_data_rdms_are_refused_before_any_activation_is_extracted(capsys, tmp_path):
    """fault-explodes raises in its forward pass: the data error must come first."""
    rc, _out, err = cli(capsys, "score", "--model", "fault-explodes", "--benchmark", "fault.similarity-rsa",
                        "--store", str(tmp_path / "s.sqlite"), "--device", "cpu", "--quiet")
    typed_error(rc, err, "similarity matrix")
    assert "forward pass" not in err


def test_similarity_is_converted_only_when_the_option_says_so(capsys, tmp_path):
    store = tmp_path / "s.sqlite"
    rc, _out, err = cli(capsys, "score", "--model", "fault-net", "--benchmark", "fault.similarity-rsa",
                        "-o", "similarity_to_dissimilarity=true", "--store", str(store), "--device", "cpu", "--quiet")
    assert rc == 0, err
    converted = nb.ResultStore(store).rows().query("row_kind == 'layer'").set_index("layer")["raw"]
    # the same model scored against 1 - r, the RDM the conversion must give for a correlation matrix
    one_minus_r = nb.RSABenchmark("api.one-minus-r", "", (), bp.stimuli,
                                  lambda: (bp.IDS, 1 - bp.rdm_cases()["similarity"], ""), comparator="spearman",
                                  n_bootstrap=20)
    expected = nb.score("fault-net", one_minus_r, device="cpu").layers.set_index("layer")["raw"]
    np.testing.assert_allclose(converted.loc[expected.index].to_numpy(), expected.to_numpy(), atol=1e-12)


def test_negative_dissimilarities_are_scored_when_declared_cross_validated():
    load()
    res = nb.score("fault-net", "fault.negative-rsa", device="cpu", options={"allow_negative": True})
    assert np.isfinite(res.raw)


@pytest.mark.parametrize("case,phrases", [("similarity", ["time point 3", "similarity matrix"]),
                                          ("lower", ["time point 3", "only its lower triangle"])])
def test_bad_time_resolved_data_rdms_are_refused(capsys, tmp_path, case, phrases):
    rc, _out, err = cli(capsys, "score", "--model", "fault-net", "--benchmark", f"fault.{case}-trsa",
                        "--store", str(tmp_path / "s.sqlite"), "--device", "cpu", "--quiet")
    typed_error(rc, err, f"fault.{case}-trsa data RDMs", *phrases)
    with pytest.raises(InvalidInputError, match="time point 3"):
        nb.score("fault-net", f"fault.{case}-trsa", device="cpu")
    assert np.isfinite(nb.score("fault-net", "fault.good-trsa", device="cpu").raw)


@pytest.mark.parametrize("method", ["correlation", "euclidean"])
@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e30])
def test_rsa_of_activations_that_would_overflow_is_the_rsa_of_the_same_pattern(method, scale):
    """Model RDMs are computed in float64; activations whose squares overflow (or underflow) it are
    rescaled exactly, and every comparator is scale-free: the scores are those of the unscaled layer."""
    acts = bp.HIDDEN + 0.5 * np.random.default_rng(1).standard_normal(bp.HIDDEN.shape)
    bench = RSABenchmark("api.good-rsa", "", (), bp.stimuli, lambda: (bp.IDS, bp.rdm_cases()["good"], ""),
                         rdm_method=method, n_bootstrap=20)
    ref = bench.score_activations({"a": acts})
    big = bench.score_activations({"a": acts * scale})
    assert big.raw == pytest.approx(ref.raw, abs=1e-10)
    np.testing.assert_allclose(big.layers["raw"], ref.layers["raw"], atol=1e-10)
    assert abs(ref.raw) > 0.1


def test_non_finite_activations_name_the_layer_and_the_stimulus(capsys, tmp_path):
    rc, _out, err = cli(capsys, "score", "--model", "fault-overflow", "--benchmark", "fault.good-rsa",
                        "--store", str(tmp_path / "s.sqlite"), "--device", "cpu", "--quiet")
    typed_error(rc, err, "layer '4'", "inf", "stimulus 'img")
    bench = RSABenchmark("api.good-rsa", "", (), bp.stimuli, lambda: (bp.IDS, bp.rdm_cases()["good"], ""))
    acts = bp.HIDDEN.copy()
    acts[3, 1] = np.nan
    with pytest.raises(InvalidInputError, match="layer 'x' has non-finite activations: NaN for stimulus 'img03'"):
        bench.score_activations({"x": acts})


def test_a_layer_of_width_zero_is_named(capsys, tmp_path):
    rc, _out, err = cli(capsys, "score", "--model", "fault-wide0", "--benchmark", "fault.good-rsa",
                        "--store", str(tmp_path / "s.sqlite"), "--device", "cpu", "--quiet")
    typed_error(rc, err, "layer '4'")
    bench = RSABenchmark("api.good-rsa", "", (), bp.stimuli, lambda: (bp.IDS, bp.rdm_cases()["good"], ""))
    with pytest.raises(InvalidInputError, match="layer 'w' has no units"):
        bench.score_activations({"w": torch.zeros(bp.N, 0)})
