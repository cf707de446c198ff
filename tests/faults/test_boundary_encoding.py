"""Fault injection at the encoding boundary: nothing scorable, a layer of width 0, an assembly
that is a plain array, activations and responses whose magnitude overflows float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurobench as nb
from neurobench.errors import InvalidInputError
from neurobench.kinds.encoding import EncodingBenchmark, score_encoding

from . import boundary_data as bp
from .boundary_support import clean_registrations, cli, typed_error  # noqa: F401 (autouse)


def _problem(seed=0, n=40, t=6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5))
    data = (x @ rng.standard_normal((5, t)))[:, None] + 0.5 * rng.standard_normal((n, 3, t))
    return x, data, [f"s{i:02d}" for i in range(n)]


COMMON = dict(alphas=(0.1, 10.0), inner_cv=3, n_bootstrap=30, device="cpu")


def test_constant_responses_are_a_typed_error_not_a_nan_score(capsys, tmp_path):
    rc, _out, err = cli(capsys, "score", "--model", "fault-net", "--benchmark", "fault.constant-encoding",
                        "--store", str(tmp_path / "s.sqlite"), "--device", "cpu", "--quiet")
    typed_error(rc, err, "nothing to score", "usable ceiling")
    assert nb.ResultStore(tmp_path / "s.sqlite").rows().empty
    x, _data, ids = _problem()
    with pytest.raises(InvalidInputError, match="nothing to score"):
        score_encoding({"l": x}, np.ones((40, 3, 6)), ids, ids, **COMMON)


def test_a_layer_whose_score_is_undefined_has_no_interval():
    """A constant layer predicts the mean: its r is undefined, and so is its CI (never [1, 1])."""
    x, data, ids = _problem(1)
    res = score_encoding({"flat": np.ones((40, 5)), "l": x}, data, ids, ids, **COMMON)
    flat = res.layers.set_index("layer").loc["flat"]
    assert np.isnan(flat["raw"]) and np.isnan(flat["ci_low"]) and np.isnan(flat["ci_high"])
    assert np.isnan(flat["normalized_ci_low"]) and np.isnan(flat["normalized_ci_high"])
    assert res.best_layer == "l" and res.ci_low <= res.raw <= res.ci_high
    with pytest.raises(InvalidInputError, match="predictions are constant"):
        score_encoding({"flat": np.ones((40, 5))}, data, ids, ids, **COMMON)


def test_a_layer_of_width_zero_is_named():
    x, data, ids = _problem()
    with pytest.raises(InvalidInputError, match="layer 'empty' has no units"):
        score_encoding({"l": x, "empty": np.zeros((40, 0))}, data, ids, ids, **COMMON)


def test_a_plain_array_assembly_names_the_expected_dims_and_coordinate(capsys, tmp_path):
    rc, _out, err = cli(capsys, "score", "--model", "fault-explodes", "--benchmark", "fault.numpy-encoding",
                        "--store", str(tmp_path / "s.sqlite"), "--device", "cpu", "--quiet")
    typed_error(rc, err, "got ndarray of shape (24, 3, 6)", "presentation", "stimulus_id")  # before extraction
    bench = EncodingBenchmark("api.enc", "", (), bp.stimuli, lambda: bp.responses()[:, 0])
    with pytest.raises(InvalidInputError, match="expected an xarray.DataArray"):
        bench.score_activations({"l": bp.HIDDEN})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activations_near_1e20_score_as_the_same_fit_in_their_units(dtype):
    """Ridge is scale-equivariant: features x c with penalties x c^2 is the same fit. At c = 1e20
    the float32 Gram matrix overflows (it used to score 0, or fail in eigh); now it is rescaled exactly.
    (float64 held before: a regression check.)"""
    x, data, ids = _problem(2)
    common = {**COMMON, "dtype": dtype}
    ref = score_encoding({"l": x}, data, ids, ids, **common)
    big = score_encoding({"l": (x * 1e20).astype(dtype)}, data, ids, ids,
                         **{**common, "alphas": tuple(a * 1e40 for a in COMMON["alphas"])})
    tol = 1e-4 if dtype == "float32" else 1e-9
    np.testing.assert_allclose(big.per_target["r"], ref.per_target["r"], atol=tol)
    assert big.raw == pytest.approx(ref.raw, abs=tol) and ref.raw > 0.5


def test_a_model_with_activations_near_1e20_is_scored(capsys, tmp_path):
    """Through the CLI: finite float32 activations of 1e20 (squares overflow float32) give a finite score."""
    store = tmp_path / "s.sqlite"
    rc, _out, err = cli(capsys, "score", "--model", "fault-huge", "--benchmark", "fault.stimulus-order-encoding",
                        "--store", str(store), "--device", "cpu", "--quiet")
    assert rc == 0, err
    raw = nb.ResultStore(store).rows().query("row_kind == 'headline'")["raw"].item()
    assert raw is not None and np.isfinite(raw)


def test_responses_of_huge_magnitude_give_the_scores_of_their_pattern():
    """Responses of 1e200 (their squares overflow even float64) are rescaled exactly: r, ceilings and
    normalised scores do not depend on the scale, and the provenance says what was done."""
    x, data, ids = _problem(3)
    common = {**COMMON, "dtype": "float64"}
    ref = score_encoding({"l": x}, data, ids, ids, **common)
    big = score_encoding({"l": x}, data * 1e200, ids, ids, **common)  # penalties act on X: the same alphas
    np.testing.assert_allclose(big.per_target["r"], ref.per_target["r"], atol=1e-6)
    np.testing.assert_allclose(big.per_target["reliability"], ref.per_target["reliability"], atol=1e-12)
    assert "response_rescaling" in big.provenance and np.isfinite(big.raw)


def test_non_finite_activations_name_the_layer_and_the_stimulus(capsys, tmp_path):
    rc, _out, err = cli(capsys, "score", "--model", "fault-overflow", "--benchmark", "fault.stimulus-order-encoding",
                        "--store", str(tmp_path / "s.sqlite"), "--device", "cpu", "--quiet")
    typed_error(rc, err, "layer '4' has non-finite activations: +inf for stimulus 'img")
    x, data, ids = _problem()
    x[7, 2] = -np.inf
    with pytest.raises(InvalidInputError, match="layer 'l' has non-finite activations: -inf for stimulus 's07'"):
        score_encoding({"l": x}, data, ids, ids, **COMMON)
    with pytest.raises(InvalidInputError, match="layer 't' has non-finite activations: -inf for stimulus 's07'"):
        score_encoding({"t": torch.as_tensor(x)}, data, ids, ids, **COMMON)  # tensors are checked alike
