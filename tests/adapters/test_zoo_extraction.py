"""Extraction at scale (read-out pooling/projection, memory budget, cache reuse), the
shuffled-positions control, the Brain-Score bridge and `perf extract`."""

import argparse

import numpy as np
import pytest
import torch
from torch import nn

import neurobench as nb
from neurobench.adapters import brainscore as bsb
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import LayerError, MemoryBudgetError, NeurobenchError, NoSheetPositionsError
from neurobench.models.layerfile import LayerArray
from neurobench.models.positions import ShuffledPositions, with_positions
from neurobench.models.preprocess import ImagePreprocess
from neurobench.models.readout import Readout, sparse_projection


def tiny_adapter(seed=0, **kw):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.ReLU(), nn.Conv2d(12, 16, 3, stride=2, padding=1),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 6))
    return nb.TorchAdapter(net, layers=["0", "2", "5"], preprocess=ImagePreprocess(resize=16, crop=16),
                           identifier=f"tiny{seed}", sheet_layers=["2"], **kw)


def images(n=5, name="imgs", seed=0):
    rng = np.random.default_rng(seed)
    return StimulusSet(name, [f"i{k}" for k in range(n)],
                       images=[rng.integers(0, 256, (20, 20, 3), dtype=np.uint8) for _ in range(n)])


def test_mean_and_adaptive_pooling_match_raw():
    raw = tiny_adapter().activations(images(), cache=False)["2"].reshape(5, 16, 8, 8)
    mean = tiny_adapter().with_readout(pool="mean").activations(images(), cache=False)["2"]
    np.testing.assert_allclose(mean, raw.mean(axis=(2, 3)), atol=1e-5)
    k2 = tiny_adapter().with_readout(pool=2).activations(images(), cache=False)["2"]
    np.testing.assert_allclose(k2, raw.reshape(5, 16, 2, 4, 2, 4).mean(axis=(3, 5)).reshape(5, -1), atol=1e-5)
    tokens = Readout(pool="mean")("x", torch.ones(2, 5, 7))
    assert tokens.shape == (2, 7)


def test_sparse_projection_preserves_distances_and_is_seeded():
    r = sparse_projection(4096, 512, seed=1)
    assert torch.equal(r.to_dense(), sparse_projection(4096, 512, seed=1).to_dense())
    density = r._nnz() / (4096 * 512)
    assert abs(density - 1 / 64) < 0.002
    x = torch.randn(20, 4096)
    y = torch.sparse.mm(r, x.T).T
    ratio = (torch.pdist(y) / torch.pdist(x)).numpy()
    assert abs(np.median(ratio) - 1) < 0.05 and ratio.min() > 0.8
    out = Readout(project=32, seed=3)("layer", torch.randn(4, 16, 8, 8))
    assert out.shape == (4, 32)
    assert Readout(project=32)("small", torch.randn(4, 10)).shape == (4, 10)  # already small: kept
    with pytest.raises(nb.errors.InvalidInputError):
        Readout(pool="max")


def test_readout_is_part_of_the_cache_key(fresh_home):
    a = tiny_adapter()
    raw = a.activations(images(), layers=["2"])
    a.with_readout(pool="mean")
    pooled = a.activations(images(), layers=["2"])
    assert raw["2"].shape == (5, 1024) and pooled["2"].shape == (5, 16)
    assert "readout=poolmean" in a.extraction_id
    a.with_readout(pool=None)  # identity read-out: back to the raw entry
    assert a.readout is None and a.activations(images(), layers=["2"])["2"].shape == (5, 1024)


def test_cache_shared_by_benchmarks_with_the_same_stimuli(fresh_home, monkeypatch):
    a = tiny_adapter()
    first = a.activations(images(name="bench-a"), layers=["0", "5"])
    monkeypatch.setattr(type(a), "_extract", lambda *args, **kw: pytest.fail("cache was not reused"))
    second = a.activations(images(name="bench-b"), layers=["5", "0"])
    np.testing.assert_array_equal(first["0"], second["0"])


def test_activations_over_the_in_memory_limit_stream_to_disk(monkeypatch, fresh_home):
    monkeypatch.setenv("NEUROBENCH_ACTIVATION_BUDGET_GB", "0.00001")  # 10 kB
    lazy = tiny_adapter().activations(images(40), layers=["0"], batch_size=4, cache=False)
    assert isinstance(lazy["0"], LayerArray) and lazy["0"].shape == (40, 12 * 16 * 16)
    monkeypatch.delenv("NEUROBENCH_ACTIVATION_BUDGET_GB")
    np.testing.assert_array_equal(np.asarray(lazy["0"]), tiny_adapter().activations(
        images(40), layers=["0"], batch_size=4, cache=False)["0"])
    path = lazy["0"].path
    lazy["0"].close()  # a temporary extraction is deleted once released
    assert not path.exists()


def test_memory_budget_too_small_for_one_stimulus_stops_after_it():
    calls = []
    a = tiny_adapter()
    a.module[0].register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(MemoryBudgetError, match="--readout pool=mean"):
        a.activations(images(40), layers=["0"], batch_size=4, cache=False, memory_budget=1000)
    assert len(calls) == 1  # measured on the first stimulus, not run to the end


def test_batched_extraction_equals_one_batch():
    a = tiny_adapter()
    one = a.activations(images(7), batch_size=7, cache=False)
    many = a.activations(images(7), batch_size=2, cache=False)
    for layer in one:
        np.testing.assert_allclose(one[layer], many[layer], atol=1e-6)


def test_shuffled_positions_control():
    a = tiny_adapter()
    s = ShuffledPositions(a, seed=1)
    pos, shuf = a.sheet_positions("2"), s.sheet_positions("2")
    assert sorted(map(tuple, pos)) == sorted(map(tuple, shuf)) and not np.array_equal(pos, shuf)
    np.testing.assert_array_equal(shuf, ShuffledPositions(a, seed=1).sheet_positions("2"))
    assert not np.array_equal(shuf, ShuffledPositions(a, seed=2).sheet_positions("2"))
    assert s.sheet_positions("0").shape == (12, 2)  # a layer without a sheet gets the grid, shuffled
    with pytest.raises(NoSheetPositionsError):
        s.sheet_positions("3")  # the pooling layer has no unit count
    assert "shuffled-positions" in s.display_name and s.weights_id == a.weights_id
    np.testing.assert_array_equal(s.activations(images(), cache=False)["5"], a.activations(images(), cache=False)["5"])
    assert with_positions(a, "model") is a and isinstance(with_positions(a, "shuffled"), ShuffledPositions)
    with pytest.raises(LayerError):
        s.sheet_positions("nope")


def test_commit_layers():
    table = {"V4": {"0": 0.1, "2": 0.5}, "IT": {"2": 0.2, "5": 0.6}}
    assert bsb.commit_layers(table) == {"V4": "2", "IT": "5"}
    import pandas as pd

    assert bsb.commit_layers({"IT": pd.DataFrame({"layer": ["0", "5"], "score": [0.9, 0.1]})}) == {"IT": "0"}
    with pytest.raises(nb.errors.InvalidInputError):
        bsb.commit_layers({"IT": 3})


def bs_stimulus_set(tmp_path, n=4):
    """A Brain-Score-style stimulus set built locally: stimulus_id column + get_stimulus(id)."""
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(5)
    paths = {}
    for k in range(n):
        paths[f"st{k}"] = tmp_path / f"st{k}.png"
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(paths[f"st{k}"])
    frame = pd.DataFrame({"stimulus_id": list(paths), "category": ["a", "b"] * (n // 2)})
    frame.get_stimulus = paths.__getitem__
    return frame


def test_neurobench_adapter_as_brain_model(tmp_path):
    a = tiny_adapter()
    model = bsb.NeurobenchBrainModel(a, bsb.commit_layers({"V4": {"2": 1.0}, "IT": {"5": 1.0}}), visual_degrees=8)
    model.start_task(bsb.PASSIVE)
    with pytest.raises(NeurobenchError, match="not supported"):
        model.start_task("label")
    with pytest.raises(LayerError, match="committed regions: V4, IT"):
        model.start_recording("V1", [(70, 170)])
    model.start_recording("IT", [(70, 170), (170, 270)])
    stim = bs_stimulus_set(tmp_path)
    rec = model.look_at(stim)
    assert rec.dims == ("presentation", "neuroid", "time_bin") and rec.shape == (4, 6, 2)
    assert list(rec["stimulus_id"].values) == list(stim["stimulus_id"])
    assert list(rec["category"].values) == ["a", "b", "a", "b"] and set(rec["region"].values) == {"IT"}
    direct = a.activations(StimulusSet("x", list(stim["stimulus_id"]),
                                       images=[str(tmp_path / f"st{k}.png") for k in range(4)]), ["5"], cache=False)
    np.testing.assert_allclose(np.asarray(rec.values)[:, :, 1], direct["5"], atol=1e-6)


def test_brain_model_as_neurobench_adapter(tmp_path):
    inner = tiny_adapter()
    brain = bsb.NeurobenchBrainModel(inner, {"V4": "2", "IT": "5"})
    wrapped = bsb.BrainScoreAdapter(brain, regions=["V4", "IT"])
    assert wrapped.layers() == ["V4", "IT"] and wrapped.identifier.startswith("brainscore:neurobench:")
    s = images(4)
    got = wrapped.activations(s, cache=False)
    want = inner.activations(s, layers=["2", "5"], cache=False)
    np.testing.assert_allclose(got["IT"], want["5"], atol=1e-5)
    np.testing.assert_allclose(got["V4"], want["2"], atol=1e-5)
    with pytest.raises(LayerError):
        wrapped.activations(s, layers=["MT"], cache=False)


def test_perf_extract_rows(fresh_home):
    from neurobench.perf import add_arguments, extract

    nb.registry.models.add("perf-tiny", lambda weights=None, seed=0: tiny_adapter(seed), replace=True)
    try:
        parser = argparse.ArgumentParser()
        add_arguments("extract", parser)
        args = parser.parse_args(["--model", "perf-tiny", "--n", "6", "--batch-size", "3", "--image-size", "20",
                                  "--workers", "0,2", "--compression", "lzf,none", "--readout", "project=8",
                                  "--in-process"])
        rows = extract.run(args)
    finally:
        nb.registry.models.remove("perf-tiny")
    by = {r["variant"]: r for r in rows}
    assert set(by) == {"bare", "bare+loader (workers=2)", "bare+loader+readout (workers=2)",
                       "neurobench (workers=0, lzf)", "neurobench (workers=0, none)",
                       "neurobench (workers=2, lzf)", "neurobench (workers=2, none)"}
    assert all("error" not in r for r in rows), rows
    ours = by["neurobench (workers=2, lzf)"]
    assert ours["read_MB_s"] > 0 and ours["disk_MB"] > 0 and "vs_bare+loader+readout" in ours
    assert ours["MB"] == pytest.approx(6 * (8 + 8 + 6) * 4 / 1e6)  # project=8 on the wide layers
    assert not list((fresh_home / "perf").rglob("*.h5"))  # the cache it filled is gone


@pytest.mark.skipif(not bsb.HAVE_BRAINSCORE, reason="brainscore-vision is not importable")
def test_bridge_speaks_the_real_brainscore_interface(tmp_path):
    model = bsb.NeurobenchBrainModel(tiny_adapter(), {"IT": "5"})
    assert isinstance(model, bsb.BrainModel)
    model.start_task(bsb.BrainModel.Task.passive)
    model.start_recording(bsb.BrainModel.RecordingTarget.IT, [(70, 170)])
    frame = bs_stimulus_set(tmp_path)
    stim = bsb.BSStimulusSet(frame[["stimulus_id", "category"]])
    stim.stimulus_paths = {sid: frame.get_stimulus(sid) for sid in frame["stimulus_id"]}
    rec = model.look_at(stim)
    assert isinstance(rec, bsb.NeuroidAssembly) and rec.sizes["presentation"] == 4
