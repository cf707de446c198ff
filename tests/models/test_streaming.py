"""Streaming extraction, the chunked layer files, the bounded cache and its integrity checks."""

import logging
import os

import h5py
import numpy as np
import pytest
import torch

import neurobench as nb
from neurobench.errors import (
    CacheCorruptError,
    ExtractionError,
    InvalidInputError,
    LayerNotReachedError,
)
from neurobench.models import layerfile
from neurobench.models.cache import ActivationCache
from neurobench.models.extract import prefetch
from neurobench.models.layerfile import LayerArray, LayerWriter


def stimuli(n=37, seed=0, size=20):
    rng = np.random.default_rng(seed)
    return nb.StimulusSet(f"s{n}-{seed}", [f"i{k}" for k in range(n)],
                          images=[rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)])


class Net(torch.nn.Module):
    def __init__(self, drop_rows=False, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.relu = torch.nn.ReLU()
        self.pool = torch.nn.AdaptiveAvgPool2d(2)
        self.fc = torch.nn.Linear(24, 5)
        self.unused = torch.nn.Linear(5, 5)
        self.drop_rows, self.calls = drop_rows, 0

    def forward(self, x):
        self.calls += 1
        h = self.pool(self.relu(self.conv(x))).flatten(1)
        if self.drop_rows:
            h = h[:-1]  # a model that loses a row
        return self.fc(h)


def adapter(net=None, layers=("conv", "pool", "fc")):
    return nb.TorchAdapter(net or Net(), layers=list(layers), preprocess=nb.ImagePreprocess(resize=16, crop=16),
                           identifier="net")


def entry_files(home):
    return sorted((home / "activations").rglob("*.h5"))


# --------------------------------------------------------------------------- streaming
def test_streaming_and_in_memory_extraction_are_bitwise_identical(fresh_home, monkeypatch):
    s = stimuli()
    memory = adapter().activations(s, batch_size=5, cache=False, workers=0)
    assert all(isinstance(a, np.ndarray) for a in memory.values())
    cached = adapter().activations(s, batch_size=5, workers=2)  # through the cache files, 2 loader threads
    lazy = adapter().activations(s, batch_size=5, lazy=True)  # read back lazily from the cache
    monkeypatch.setenv("NEUROBENCH_ACTIVATION_BUDGET_GB", "0.000001")  # too big for memory: temporary files
    temp = adapter().activations(s, batch_size=5, cache=False)
    assert isinstance(temp["conv"], LayerArray)
    for name in memory:
        for other in (cached[name], np.asarray(lazy[name]), np.asarray(temp[name])):
            assert other.dtype == np.float32 and np.array_equal(memory[name], other)
    x = nb.ImagePreprocess(resize=16, crop=16)(s.rgb_images())
    net = Net()
    with torch.no_grad():
        np.testing.assert_allclose(memory["fc"], net(x).numpy(), rtol=1e-5, atol=1e-6)


def test_prefetch_keeps_order_and_bounds_the_batches_in_flight():
    built = []

    def make(i):
        built.append(i)
        return torch.full((2,), i)

    got = []
    for batch in prefetch(make, 9, workers=2):
        got.append(int(batch[0]))
        assert len(built) - len(got) <= 3  # workers + 1 ahead at most
    assert got == list(range(9))


def test_a_model_returning_fewer_rows_is_an_extraction_error_and_nothing_is_cached(fresh_home):
    with pytest.raises(ExtractionError, match=r"the batch held 5 stimuli but layer\(s\) returned \{'fc': 4\}"):
        adapter(Net(drop_rows=True)).activations(stimuli(), batch_size=5)
    assert not entry_files(fresh_home)
    assert not list((fresh_home / "activations").rglob("*.part"))


def test_a_layer_never_reached_is_named(fresh_home):
    with pytest.raises(LayerNotReachedError, match="'unused'"):
        adapter(layers=("fc", "unused")).activations(stimuli(), batch_size=5)
    assert not entry_files(fresh_home)


def test_a_module_run_twice_in_one_pass_is_refused(fresh_home):
    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(16 * 16 * 3, 8)

        def forward(self, x):
            h = self.lin(x.flatten(1))
            return self.lin(torch.cat([h, x.flatten(1)[:, 8:]], 1))

    a = nb.TorchAdapter(Twice(), layers=["lin"], preprocess=nb.ImagePreprocess(resize=16, crop=16))
    with pytest.raises(ExtractionError, match="ran \\[2\\] times"):
        a.activations(stimuli(), cache=False)


def test_half_precision_is_for_gpus():
    with pytest.raises(InvalidInputError, match="for GPUs"):
        adapter().with_precision("float16").activations(stimuli(), device="cpu", cache=False)
    assert "precision=float16" in adapter().with_precision("float16").extraction_id


# --------------------------------------------------------------------------- layer files
def write_layer(path, values, chunk_cols=None, monkeypatch=None):
    if chunk_cols is not None:
        monkeypatch.setattr(layerfile, "MAX_CHUNK_COLS", chunk_cols)
        monkeypatch.setattr(layerfile, "CHUNK_BYTES", 4 * chunk_cols * 3)
    w = LayerWriter(path, "L", [f"i{k}" for k in range(len(values))])
    for s0 in range(0, len(values), 4):  # batches that do not match the chunk rows
        w.append(values[s0:s0 + 4])
    return w.commit()


def test_layer_files_are_chunked_compressed_checksummed_and_read_in_parts(tmp_path, monkeypatch):
    values = np.random.default_rng(1).standard_normal((23, 17)).astype(np.float32)
    path = write_layer(tmp_path / "L.h5", values, chunk_cols=7, monkeypatch=monkeypatch)
    with h5py.File(path) as fh:
        ds = fh["activations"]
        assert ds.chunks == (3, 6) and ds.compression == "lzf" and ds.fletcher32  # equal tiles of <= 7
    a = LayerArray(path, "L", values.shape)
    assert len(a) == 23 and a.shape == (23, 17) and a.nbytes == values.nbytes
    np.testing.assert_array_equal(np.asarray(a), values)
    rows = np.array([22, 0, 5, 5, 13])
    np.testing.assert_array_equal(a[rows], values[rows])
    np.testing.assert_array_equal(a[rows, 3:12], values[rows, 3:12])
    np.testing.assert_array_equal(a[-1], values[-1])
    np.testing.assert_array_equal(a[2:9, 16], values[2:9, 16])
    mask = np.arange(23) % 3 == 0
    np.testing.assert_array_equal(a[mask], values[mask])
    sub = a.subset([20, 1, 7])
    np.testing.assert_array_equal(np.asarray(sub), values[[20, 1, 7]])
    np.testing.assert_array_equal(sub[[2, 0]], values[[7, 20]])
    blocks = list(a.column_blocks(5, rows=np.array([4, 3])))
    assert [b.shape for _sl, b in blocks] == [(2, 5), (2, 5), (2, 5), (2, 2)]
    np.testing.assert_array_equal(np.concatenate([b for _sl, b in blocks], 1), values[[4, 3]])
    np.testing.assert_array_equal(torch.as_tensor(np.asarray(a)).numpy(), values)
    a.close()


def flip_a_data_bit(path):
    with h5py.File(path, "r") as fh:
        info = fh["activations"].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0x10]))


def test_a_flipped_bit_is_detected_reported_deleted_and_recomputed(fresh_home, caplog):
    net, s = Net(), stimuli()
    first = adapter(net).activations(s, batch_size=5)
    calls = net.calls
    target = next(p for p in entry_files(fresh_home) if p.name == "conv.h5")
    flip_a_data_bit(target)
    with pytest.raises(CacheCorruptError, match="conv.h5"):
        LayerArray(target, "conv", first["conv"].shape).read()
    with caplog.at_level(logging.WARNING):
        again = adapter(net).activations(s, batch_size=5)
    assert str(target) in caplog.text and "checksum" in caplog.text
    assert net.calls > calls  # recomputed
    np.testing.assert_array_equal(again["conv"], first["conv"])
    np.testing.assert_array_equal(LayerArray(target, "conv", first["conv"].shape).read(), first["conv"])


@pytest.mark.parametrize("damage", ["random bytes", "directory", "truncated", "old format"])
def test_a_damaged_entry_never_crashes_and_is_recomputed(fresh_home, caplog, damage):
    s = stimuli()
    first = adapter().activations(s, batch_size=5)
    target = next(p for p in entry_files(fresh_home) if p.name == "fc.h5")
    if damage == "random bytes":
        target.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif damage == "directory":
        target.unlink()
        (target / "inner").mkdir(parents=True)
    elif damage == "truncated":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    else:
        with h5py.File(target, "a") as fh:
            fh.attrs["format"] = 1
    with caplog.at_level(logging.WARNING):
        again = adapter().activations(s, batch_size=5)
    assert str(target) in caplog.text
    np.testing.assert_array_equal(again["fc"], first["fc"])
    assert target.is_file()


def test_corruption_found_while_scoring_lazily_is_recomputed(fresh_home, caplog, monkeypatch):
    s = stimuli(24)
    rdm = np.random.default_rng(3).random((24, 24))
    rdm = (rdm + rdm.T) / 2
    np.fill_diagonal(rdm, 0)
    bench = nb.RSABenchmark("toy.lazy-rsa", "toy", (), lambda: s, lambda: (s.ids, rdm[None], "one RDM"),
                            comparator="spearman", n_bootstrap=0)
    monkeypatch.setenv("NEUROBENCH_ACTIVATION_BUDGET_GB", "0.000001")  # every layer is read lazily
    net = Net()
    first = bench.score(adapter(net), device="cpu")
    for path in entry_files(fresh_home):
        flip_a_data_bit(path)
    calls = net.calls
    with caplog.at_level(logging.WARNING):
        again = bench.score(adapter(net), device="cpu")
    assert "corrupt" in caplog.text or "checksum" in caplog.text
    assert net.calls > calls
    assert again.raw == first.raw


# --------------------------------------------------------------------------- the bounded cache
def test_least_recently_used_entries_are_evicted_but_never_one_being_read(tmp_path):
    cache = ActivationCache(tmp_path / "c", max_bytes=None)
    ids = [f"i{k}" for k in range(50)]
    values = np.random.default_rng(0).standard_normal((50, 400)).astype(np.float32)  # incompressible
    paths = {}
    for i, name in enumerate("ABC"):
        paths[name] = cache.save(cache.entry_dir("m", "w", "s" * 64, "p"), name, ids, values, {})
        os.utime(paths[name], (1000 + i, 1000 + i))  # A oldest, C newest
    size = paths["A"].stat().st_size
    held = cache.open(cache.entry_dir("m", "w", "s" * 64, "p"), "A", ids)  # a reader holds A (and touches it)
    os.utime(paths["A"], (999, 999))  # ... and A is still the least recently used
    cache.max_bytes = int(3.5 * size)
    paths["D"] = cache.save(cache.entry_dir("m", "w", "s" * 64, "p"), "D", ids, values, {})
    assert paths["A"].exists() and not paths["B"].exists() and paths["C"].exists() and paths["D"].exists()
    held.close()
    cache.evict(int(1.5 * size))
    assert not paths["A"].exists() and not paths["C"].exists() and paths["D"].exists()


def test_an_entry_larger_than_the_cap_is_used_once_and_not_kept(fresh_home, monkeypatch, caplog):
    monkeypatch.setenv("NEUROBENCH_CACHE_MAX", "1kB")
    with caplog.at_level(logging.WARNING):
        acts = adapter().activations(stimuli(), batch_size=5, lazy=True)
    assert "not kept" in caplog.text
    assert not entry_files(fresh_home)
    path = acts["conv"].path
    assert path.exists() and np.asarray(acts["conv"]).shape == (37, 6 * 16 * 16)
    acts["conv"].close()
    assert not path.exists()


def test_cache_ls_and_clear(fresh_home, capsys):
    from neurobench.cli import main

    adapter().activations(stimuli(), batch_size=5)
    a2 = nb.TorchAdapter(Net(), layers=["fc"], preprocess=nb.ImagePreprocess(resize=16, crop=16), identifier="other")
    a2.activations(stimuli(), batch_size=5)
    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert "4 entries" in out and "net" in out and "other" in out and "NEUROBENCH_CACHE_MAX" in out
    assert main(["cache", "clear", "--model", "net"]) == 0
    assert "deleted 3 entries" in capsys.readouterr().out
    assert [p.name for p in entry_files(fresh_home)] == ["fc.h5"]
    assert main(["cache", "clear"]) == 0 and not entry_files(fresh_home)
