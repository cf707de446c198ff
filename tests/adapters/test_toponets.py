"""TopoNets ResNet-18: release-format checkpoints, BlurPool layout, sheet positions, hub errors."""

import numpy as np
import pytest
import torch
import torchvision

import neurobench as nb
from neurobench.adapters.toponets import BlurPoolConv2d, topo_resnet
from neurobench.errors import CheckpointError, LayerError
from neurobench.models.sheet import sheet_positions, sheet_shape


@pytest.fixture(scope="module")
def release_checkpoint(tmp_path_factory):
    """A checkpoint written in the release's format: a plain state dict of the BlurPool ResNet-18."""
    torch.manual_seed(1)
    model = topo_resnet("resnet18")
    path = tmp_path_factory.mktemp("ckpt") / "all_topo_tau_10.0.pt"
    torch.save(model.state_dict(), path)
    return path, model


def test_release_key_layout():
    keys = set(topo_resnet("resnet18").state_dict())
    assert "layer2.0.conv1.conv.weight" in keys and "layer2.0.conv1.blur_filter" in keys
    assert "layer2.0.downsample.0.conv.weight" in keys
    assert "layer1.0.conv1.weight" in keys  # stride 1: not wrapped
    assert "conv1.weight" in keys  # 3 input channels: not wrapped
    assert topo_resnet("resnet18").state_dict()["layer3.0.conv1.blur_filter"].shape == (128, 1, 3, 3)


def test_blurpool_is_blur_then_conv():
    conv = torch.nn.Conv2d(16, 8, 3, stride=2, padding=1, bias=False)
    wrapped = BlurPoolConv2d(conv)
    x = torch.randn(2, 16, 9, 9)
    k = torch.tensor([1.0, 2.0, 1.0])
    kernel = (k[:, None] * k[None, :] / 16).expand(16, 1, 3, 3)
    expected = conv(torch.nn.functional.conv2d(x, kernel, padding=1, groups=16))
    torch.testing.assert_close(wrapped(x), expected)


def test_checkpoint_loads_strictly_and_reproduces_outputs(release_checkpoint):
    path, reference = release_checkpoint
    adapter = nb.load_model("toporesnet18", weights=str(path))
    assert adapter.trained and adapter.identifier == "toporesnet18-tau10"
    x = torch.randn(2, 3, 64, 64)
    reference.eval()
    torch.testing.assert_close(adapter.module(x), reference(x))
    # same as torchvision's resnet18 once the BlurPool wrappers are the identity on the conv path
    assert isinstance(adapter.module, torchvision.models.ResNet)


def test_wrong_keys_and_shapes_are_explained(tmp_path, release_checkpoint):
    path, model = release_checkpoint
    plain = torchvision.models.resnet18(weights=None).state_dict()  # no BlurPool wrappers
    torch.save(plain, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="missing key.*unexpected key"):
        nb.load_model("toporesnet18", weights=str(tmp_path / "plain.pt"))
    state = dict(model.state_dict())
    state["fc.weight"] = torch.zeros(10, 512)
    state["fc.bias"] = torch.zeros(10)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match=r"shape mismatch.*fc\.(bias|weight)"):
        nb.load_model("toporesnet18", weights=str(tmp_path / "shape.pt"))


def test_truncated_checkpoint(tmp_path, release_checkpoint):
    path, _ = release_checkpoint
    blob = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(CheckpointError, match="truncated"):
        nb.load_model("toporesnet18", weights=str(tmp_path / "cut.pt"))


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError):
        nb.load_model("toporesnet18", weights=str(tmp_path / "evil.pt"))


def test_unreachable_hub_points_to_alternatives():
    with pytest.raises(CheckpointError) as info:
        nb.load_model("toporesnet18-tau50")
    msg = str(info.value)
    assert "all_topo_tau_50.0.pt" in msg and "--weights PATH" in msg and "--weights random" in msg


def test_random_weights_are_labelled_untrained():
    a = nb.load_model("toporesnet18", weights="random")
    assert not a.trained and a.weights_id.startswith("random-") and "untrained" in a.display_name


@pytest.mark.parametrize("n, shape", [(64, (8, 8)), (128, (8, 16)), (512, (16, 32)), (1000, (25, 40)), (7, (1, 7))])
def test_sheet_shape(n, shape):
    assert sheet_shape(n) == shape


def test_sheet_positions_row_major():
    pos = sheet_positions(128)
    assert pos[0].tolist() == [0, 0] and pos[15].tolist() == [0, 15] and pos[16].tolist() == [1, 0]


def test_adapter_sheet_layers():
    a = nb.load_model("toporesnet18", weights="random")
    assert a.sheet_positions("layer3.1").shape == (256, 2)
    assert a.sheet_positions("layer2.0.conv1").shape == (128, 2)  # the BlurPool wrapper
    assert a.sheet_positions("fc") is None and a.sheet_positions("avgpool") is None
    assert "layer2.0.conv1.conv" not in a.layers()  # the wrapper is hooked, not its inner conv
    with pytest.raises(LayerError, match="valid layers"):
        a.sheet_positions("layer9")
    np.testing.assert_array_equal(a.sheet_positions("layer1.0"), sheet_positions(64))
