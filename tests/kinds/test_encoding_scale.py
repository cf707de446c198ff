"""score_encoding at dataset scale: memory plans, spilled responses and predictions, lazy inputs."""

import re

import h5py
import numpy as np
import pytest

from neurobench.errors import MemoryBudgetError
from neurobench.kinds.columns import ColumnStore
from neurobench.kinds.encoding import score_encoding
from neurobench.memory import parse_size
from neurobench.models.layerfile import LayerArray, LayerWriter


def problem(n=120, reps=4, t=300, p=30, seed=0):
    rng = np.random.default_rng(seed)
    feats = {f"L{k}": rng.standard_normal((n, p)) for k in range(2)}
    w = rng.standard_normal((p, t)) / np.sqrt(p)
    signal = feats["L0"] @ w
    responses = signal[:, None, :] + rng.standard_normal((n, reps, t))
    ids = [f"s{i}" for i in range(n)]
    return feats, responses, ids


COMMON = dict(splits=5, inner_cv=3, n_bootstrap=50, seed=1, device="cpu", dtype="float64")


def assert_same(a, b):
    assert a.best_layer == b.best_layer
    for key in ("raw", "ci_low", "ci_high", "normalized", "ceiling"):
        assert getattr(a, key) == pytest.approx(getattr(b, key), abs=1e-10)
    np.testing.assert_allclose(a.per_target["r"], b.per_target["r"], atol=1e-10)
    np.testing.assert_allclose(a.bootstrap["L0"]["raw"], b.bootstrap["L0"]["raw"], atol=1e-10)


def minimum_named(*args, **kwargs) -> int:
    """The budget a MemoryBudgetError names for a budget far too small."""
    with pytest.raises(MemoryBudgetError, match=r"at least (\S+) \(") as info:
        score_encoding(*args, memory_budget=10_000, **kwargs)
    return parse_size(re.search(r"at least (\S+) \(", str(info.value)).group(1))


def test_the_minimum_budget_named_works_and_spilling_changes_no_number():
    feats, responses, ids = problem()
    full = score_encoding(feats, responses, ids, ids, **COMMON)
    assert full.provenance["memory"]["responses"] == "in memory"
    figure = minimum_named(feats, responses, ids, ids, **COMMON)
    tight = score_encoding(feats, responses, ids, ids, memory_budget=figure, **COMMON)
    mem = tight.provenance["memory"]
    assert mem["responses"] == "spilled to disk" and mem["predictions"] == "spilled to disk"
    assert mem["target_block"] < 300  # the targets went a block at a time
    assert_same(tight, full)
    with pytest.raises(MemoryBudgetError):
        score_encoding(feats, responses, ids, ids, memory_budget=figure - 2000, **COMMON)


def test_lazy_responses_and_activations_give_the_same_scores(tmp_path):
    feats, responses, ids = problem(t=70)
    full = score_encoding(feats, responses, ids, ids, **COMMON)
    with h5py.File(tmp_path / "resp.h5", "w") as fh:
        fh.create_dataset("r", data=responses, chunks=(120, 4, 16))
    lazy = {}
    for name, x in feats.items():
        w = LayerWriter(tmp_path / f"{name}.h5", name, ids)
        w.append(x.astype(np.float32))
        lazy[name] = LayerArray(w.commit(), name, x.shape)
    feats32 = {k: v.astype(np.float32) for k, v in feats.items()}
    in_memory = score_encoding(feats32, responses, ids, ids, **COMMON)
    with h5py.File(tmp_path / "resp.h5", "r") as fh:
        streamed = score_encoding(lazy, fh["r"], ids, ids, **COMMON)
    assert_same(streamed, in_memory)
    assert full.raw == pytest.approx(in_memory.raw, abs=1e-5)


def test_test_repetitions_and_a_given_ceiling_stream_too():
    feats, responses, ids = problem(n=100, reps=6, t=40)
    means = responses.mean(1)
    test = np.arange(80, 100)
    from neurobench.metrics.splits import fixed_split

    split = fixed_split(ids=np.asarray(ids), train_ids=ids[:80], test_ids=ids[80:])
    opts = dict(COMMON, splits=split)
    full = score_encoding(feats, means, ids, ids, test_repetitions=responses[test], **opts)
    figure = minimum_named(feats, means, ids, ids, test_repetitions=responses[test], **opts)
    tight = score_encoding(feats, means, ids, ids, test_repetitions=responses[test], memory_budget=figure, **opts)
    assert tight.provenance["memory"]["responses"] == "spilled to disk"
    assert_same(tight, full)
    given = score_encoding(feats, means[:, None, :], ids, ids, ceiling=np.full(40, 0.5), **opts)
    assert given.ceiling == 0.5 and np.isfinite(given.raw)


def test_column_store_round_trips_in_memory_and_on_disk(fresh_home):
    data = np.random.default_rng(0).standard_normal((11, 9)).astype(np.float32)
    for spill in (False, True):
        store = ColumnStore(11, 9, spill=spill)
        store.write(slice(0, 4), data[:, :4])
        store.write(slice(4, 9), data[:, 4:])
        np.testing.assert_array_equal(store[:, 2:7], data[:, 2:7])
        np.testing.assert_array_equal(store.read(slice(0, 9)), data)
        store.close()
    assert not list((fresh_home / "tmp").glob("columns.*"))
