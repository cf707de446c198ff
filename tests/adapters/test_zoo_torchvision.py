"""torchvision baselines and any torchvision classifier by name; `list models` information."""

import numpy as np
import pytest
import torch
import torchvision

import neurobench as nb
import neurobench.adapters.huggingface  # noqa: F401  (registers the language ids until entry points do)
from neurobench.adapters import torchvision_zoo as tvz
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import CheckpointError, LayerError


def _images(n, size=48):
    rng = np.random.default_rng(0)
    return StimulusSet(f"img{n}-{size}", [f"i{k}" for k in range(n)],
                       images=[rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)])


def test_baseline_ids_registered_with_meta():
    for name in ("resnet18", "resnet50", "vit_b_32", "torchvision:alexnet", "torchvision:convnext_tiny"):
        meta = nb.registry.models.get(name).meta
        assert meta["family"] == "torchvision" and meta["source"].startswith("torchvision:")
    assert nb.registry.models.get("resnet50").meta["weights"].filename == "resnet50-0676ba61.pth"


def test_torchvision_format_checkpoint_loads_strictly_and_matches(tmp_path):
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(ref.state_dict(), path)
    a = nb.load_model("resnet18", weights=str(path))
    assert a.trained and a.identifier == "resnet18" and a.family == "torchvision"
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(a.module(x), ref(x))
    acts = a.activations(_images(2), layers=["layer4.1", "fc"], cache=False)
    assert acts["fc"].shape == (2, 1000)
    assert a.sheet_positions("layer4.1") is None  # not a topographic model


def test_wrong_architecture_checkpoint(tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(CheckpointError, match="missing key"):
        nb.load_model("resnet50", weights=str(tmp_path / "r18.pth"))


def test_offline_error_points_to_alternatives():
    with pytest.raises(CheckpointError) as info:
        nb.load_model("resnet18")
    msg = str(info.value)
    assert "resnet18-f37072fd.pth" in msg and "--weights PATH" in msg and "neurobench fetch" in msg
    assert "--weights random" in msg


def test_cached_file_is_hash_checked(fresh_home):
    src = tvz.TorchvisionWeights("resnet18", "IMAGENET1K_V1")
    assert src.cached_path() is None
    (fresh_home / "torchvision").mkdir(exist_ok=True)
    (fresh_home / "torchvision" / src.filename).write_bytes(b"not the weights")
    assert src.cached_path() is not None  # `list models` shows it as cached ...
    with pytest.raises(CheckpointError, match="sha256 does not start with f37072fd"):
        src.fetch()  # ... but it is never used


def test_preprocessing_follows_weights_transforms():
    p = tvz.preprocess_of("efficientnet_b3")
    assert (p.resize, p.crop, p.interpolation) == (320, 300, "bicubic")
    p = tvz.preprocess_of("vit_b_32", "IMAGENET1K_V1")
    assert (p.resize, p.crop, p.interpolation) == (256, 224, "bilinear")


def test_any_model_by_name_random_weights():
    a = nb.load_model("torchvision:mobilenet_v3_small", weights="random")
    assert not a.trained and a.identifier == "torchvision:mobilenet_v3_small"
    assert "features.3" in a.default_layers()
    acts = a.activations(_images(2), layers=["features.3", "classifier"], cache=False)
    assert acts["classifier"].shape == (2, 1000)
    with pytest.raises(LayerError, match="valid layers"):
        a.activations(_images(2), layers=["features.99"], cache=False)
    with pytest.raises(nb.errors.UnknownNameError, match="torchvision:resnet18"):
        nb.load_model("torchvision:resnet181")


def test_list_models_cli_shows_family_source_and_cache(capsys, fresh_home):
    from neurobench.cli import main

    src = nb.registry.models.get("resnet18").meta["weights"]
    (fresh_home / "torchvision").mkdir(exist_ok=True)
    (fresh_home / "torchvision" / src.filename).write_bytes(b"x")
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    for token in ("toponets", "torchvision", "language", "gpt2", "resnet50", "yes", "no"):
        assert token in out
