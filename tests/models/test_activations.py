"""Extraction, the HDF5 cache, and failure mid-extraction."""

import numpy as np
import pytest
import torch

import neurobench as nb
from neurobench.errors import ExtractionError, LayerError
from neurobench.models.cache import ActivationCache


def _stimuli(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return nb.StimulusSet(f"toy{seed}", [f"i{k}" for k in range(n)],
                          images=[rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(n)])


class Tiny(torch.nn.Module):
    def __init__(self, fail_after=None):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=4)
        self.pool = torch.nn.AdaptiveAvgPool2d(2)
        self.fc = torch.nn.Linear(16, 5)
        self.calls, self.fail_after = 0, fail_after

    def forward(self, x):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("boom")
        return self.fc(self.pool(self.conv(x)).flatten(1))


def _adapter(module):
    return nb.TorchAdapter(module, layers=["conv", "fc"], preprocess=nb.ImagePreprocess(resize=32, crop=32),
                           identifier="tiny")


def test_activations_match_a_direct_forward(fresh_home):
    module = Tiny()
    stim = _stimuli()
    acts = _adapter(module).activations(stim, batch_size=3, device="cpu")
    x = nb.ImagePreprocess(resize=32, crop=32)(stim.rgb_images())
    with torch.no_grad():
        expected_fc = module(x).numpy()
        expected_conv = module.conv(x).reshape(len(stim), -1).numpy()
    np.testing.assert_allclose(acts["fc"], expected_fc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["conv"], expected_conv, rtol=1e-5, atol=1e-6)


def test_cache_hit_skips_the_model(fresh_home):
    module = Tiny()
    adapter, stim = _adapter(module), _stimuli()
    first = adapter.activations(stim, device="cpu")
    calls = module.calls
    second = adapter.activations(stim, device="cpu")
    assert module.calls == calls
    np.testing.assert_array_equal(first["fc"], second["fc"])
    assert len(list((fresh_home / "activations").rglob("*.h5"))) == 2


def test_cache_keys_separate_weights_and_stimuli(fresh_home):
    stim = _stimuli()
    a = _adapter(Tiny()).activations(stim, device="cpu")
    torch.manual_seed(5)
    b = _adapter(Tiny()).activations(stim, device="cpu")  # other weights
    c = _adapter(Tiny()).activations(_stimuli(seed=1), device="cpu")  # other images
    assert not np.allclose(a["fc"], b["fc"]) and c["fc"].shape == a["fc"].shape


def test_model_raising_mid_extraction_leaves_no_cache(fresh_home):
    adapter = _adapter(Tiny(fail_after=2))
    with pytest.raises(ExtractionError, match="boom"):
        adapter.activations(_stimuli(), batch_size=3, device="cpu")
    assert not list((fresh_home / "activations").rglob("*.h5"))
    assert not list((fresh_home / "activations").rglob("*.part"))


def test_unknown_layer_lists_valid_ones():
    with pytest.raises(LayerError, match="valid layers: conv, pool, fc"):
        _adapter(Tiny()).activations(_stimuli(), layers=["fc2"])


def test_stale_cache_entry_is_ignored(fresh_home, tmp_path):
    cache = ActivationCache(tmp_path / "c")
    entry = cache.entry_dir("m", "w", "s" * 64, "p")
    cache.save(entry, "fc", ["a", "b"], np.ones((2, 3), np.float32), {})
    assert cache.load(entry, "fc", ["a", "b"]) is not None
    assert cache.load(entry, "fc", ["b", "a"]) is None
    cache.path(entry, "fc").write_bytes(b"corrupt")
    assert cache.load(entry, "fc", ["a", "b"]) is None


def test_failing_model_in_the_cli_stores_nothing(fresh_home, tmp_path, capsys):
    from neurobench.cli import main
    from neurobench.registry import models

    @nb.register_model("tiny-that-fails")
    def tiny_that_fails():
        return nb.TorchAdapter(Tiny(fail_after=1), layers=["fc"], preprocess=nb.ImagePreprocess(resize=16, crop=16))

    store = tmp_path / "s.sqlite"
    try:
        code = main(["score", "--model", "tiny-that-fails", "--benchmark", "synthetic.spikes-encoding",
                     "--store", str(store), "--quiet", "--batch-size", "64"])
    finally:
        models.remove("tiny-that-fails")
    assert code == 2 and "boom" in capsys.readouterr().err
    assert nb.ResultStore(store).rows().empty
    assert not list((fresh_home / "activations").rglob("*.h5"))
