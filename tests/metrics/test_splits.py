"""Splits grouped by stimulus: repeats never straddle train and test; seeded; recordable."""

import numpy as np
import pytest

from neurobench.errors import InvalidInputError
from neurobench.metrics.splits import Splits, fixed_split, kfold_splits


def test_grouped_kfold_keeps_repeats_together_and_tests_every_row_once():
    ids = np.repeat(np.arange(23), 3)  # 23 stimuli, 3 repeats each
    ids = np.random.default_rng(1).permutation(ids)
    sp = kfold_splits(groups=ids, n_splits=5, seed=7)
    seen = np.zeros(len(ids), int)
    for tr, te in sp:
        assert not set(ids[tr]) & set(ids[te])
        assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(ids)
        seen[te] += 1
    assert (seen == 1).all()
    sizes = [len(set(ids[te])) for _, te in sp]
    assert max(sizes) - min(sizes) <= 1


def test_seed_reproduces_and_changes_splits():
    a, b, c = (kfold_splits(40, 4, seed=s) for s in (3, 3, 4))
    assert all((x[1] == y[1]).all() for x, y in zip(a, b))
    assert any((x[1] != y[1]).any() for x, y in zip(a, c))
    unshuffled = kfold_splits(10, 5, shuffle=False)
    assert unshuffled[0][1].tolist() == [0, 1]


def test_record_round_trip():
    sp = kfold_splits(groups=list("aabbccddee"), n_splits=2, seed=1)
    rec = sp.to_record()
    assert rec["seed"] == 1 and rec["kind"] == "kfold" and rec["n_splits"] == 2
    back = Splits.from_record(rec)
    assert all((x[0] == y[0]).all() and (x[1] == y[1]).all() for x, y in zip(sp, back))


def test_fewer_stimuli_than_folds_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="3 distinct stimuli"):
        kfold_splits(groups=[1, 1, 2, 2, 3, 3], n_splits=5)
    with pytest.raises(InvalidInputError, match="n_splits"):
        kfold_splits(10, 1)


def test_fixed_split_from_mask_and_ids():
    sp = fixed_split(np.array([True, False, True, True]))
    assert sp[0][0].tolist() == [0, 2, 3] and sp[0][1].tolist() == [1]
    sp = fixed_split(ids=["a", "b", "a", "c"], train_ids=["a"])
    assert sp[0][0].tolist() == [0, 2] and sp[0][1].tolist() == [1, 3]
    with pytest.raises(InvalidInputError, match="both sides"):
        fixed_split(ids=["a", "b"], train_ids=["a"], test_ids=["a", "b"])
    with pytest.raises(InvalidInputError):
        fixed_split(np.array([True, True]))
