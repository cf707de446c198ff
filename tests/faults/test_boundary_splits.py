"""Fault injection: splits are matched to rows by stimulus id, never by position.

A dataset's fixed split built in the order of its assembly file used to index the rows of the
benchmark (in the stimulus set's order): the wrong test set, silently. Splits now carry their ids.
"""

from __future__ import annotations

import numpy as np
import pytest

import neurobench as nb
from neurobench.errors import AlignmentError, InvalidOptionError
from neurobench.kinds.encoding import score_encoding
from neurobench.metrics.splits import Splits, fixed_split, kfold_splits

from . import boundary_data as bp
from .boundary_support import clean_registrations, cli, typed_error  # noqa: F401 (autouse)


def _problem(seed=0, n=40):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5))
    data = (x @ rng.standard_normal((5, 7)))[:, None] + rng.standard_normal((n, 3, 7))
    return x, data, [f"s{i:02d}" for i in range(n)]


COMMON = dict(alphas=(1.0, 10.0), inner_cv=3, n_bootstrap=30, device="cpu", dtype="float64")


def test_a_split_built_in_another_order_selects_the_same_test_stimuli():
    x, data, ids = _problem()
    order = np.random.default_rng(3).permutation(len(ids))
    file_ids = [ids[i] for i in order]  # the order a dataset's file lists them in
    test = set(file_ids[-10:])
    in_file_order = fixed_split(ids=file_ids, train_ids=[i for i in file_ids if i not in test])
    in_row_order = fixed_split(ids=ids, train_ids=[i for i in ids if i not in test])
    a = score_encoding({"l": x}, data, ids, ids, splits=in_file_order, **COMMON)
    b = score_encoding({"l": x}, data, ids, ids, splits=in_row_order, **COMMON)
    np.testing.assert_array_equal(a.per_target["r"], b.per_target["r"])
    assert a.raw == b.raw and a.ci_low == b.ci_low
    mask = np.asarray([i not in test for i in file_ids])  # a mask with the ids it was built for
    c = score_encoding({"l": x}, data, ids, ids, splits=fixed_split(mask, ids=file_ids), **COMMON)
    assert c.raw == b.raw


def test_the_benchmark_uses_the_datasets_test_set_whatever_the_order(capsys, tmp_path):
    store = tmp_path / "s.sqlite"
    for name in ("fault.assembly-order-encoding", "fault.stimulus-order-encoding"):
        rc, _out, err = cli(capsys, "score", "--model", "fault-net", "--benchmark", name, "--store", str(store),
                            "--device", "cpu", "--quiet")
        assert rc == 0, err
    rows = nb.ResultStore(store).rows().query("row_kind == 'layer'")
    by = {b: g.set_index("layer")[["raw", "ci_low", "ci_high"]] for b, g in rows.groupby("benchmark")}
    np.testing.assert_allclose(by["fault.assembly-order-encoding"].to_numpy(),
                               by["fault.stimulus-order-encoding"].to_numpy(), atol=1e-12)


def test_a_positional_split_given_to_a_benchmark_is_refused(capsys, tmp_path):
    rc, _out, err = cli(capsys, "score", "--model", "fault-net", "--benchmark", "fault.positional-split-encoding",
                        "--store", str(tmp_path / "s.sqlite"), "--device", "cpu", "--quiet")
    typed_error(rc, err, "option splits", "without stimulus ids", "fixed_split(mask, ids=")
    with pytest.raises(InvalidOptionError, match="without stimulus ids"):
        nb.EncodingBenchmark("api.enc", "", (), bp.stimuli, bp.assembly, splits=fixed_split(np.arange(bp.N) < 18))


def test_a_split_for_other_stimuli_is_an_alignment_error():
    x, data, ids = _problem()
    other = [f"t{i:02d}" for i in range(len(ids))]
    with pytest.raises(AlignmentError, match="different stimuli"):
        score_encoding({"l": x}, data, ids, ids, splits=fixed_split(ids=other, train_ids=other[:30]), **COMMON)
    straddles = Splits("fixed", None, [(np.arange(0, 30), np.arange(30, 40))], 40, ids=ids[:39] + ids[:1])
    with pytest.raises(AlignmentError):
        score_encoding({"l": x}, data, ids, ids, splits=straddles, **COMMON)


def test_the_existing_ways_of_building_splits_still_work():
    """Positional masks and k-fold splits index the rows given; a split keeps its ids in its record."""
    x, data, ids = _problem(1)
    by_mask = score_encoding({"l": x}, data, ids, ids, splits=fixed_split(np.arange(40) < 30), **COMMON)
    by_ids = score_encoding({"l": x}, data, ids, ids, splits=fixed_split(ids=ids, train_ids=ids[:30]), **COMMON)
    assert by_mask.raw == by_ids.raw
    folds = kfold_splits(40, 4, groups=ids, seed=2)
    assert score_encoding({"l": x}, data, ids, ids, splits=folds, **COMMON).provenance["splits"]["kind"] == "kfold"
    rec = fixed_split(ids=ids, train_ids=ids[:30]).to_record()
    assert Splits.from_record(rec).ids == tuple(ids)
