"""TopoNets (Deb, Deb & Murty, ICLR 2025): torchvision networks trained with TopoLoss.

The vision releases wrap every strided conv with >= 16 input channels in a BlurPool module
(depthwise [1,2,1]x[1,2,1]/16 blur, stride 1, padding 1, then the conv), so the state dicts have
keys like `layer2.0.conv1.conv.weight` and a `blur_filter` buffer. We rebuild that structure
exactly, so the released state dicts load strictly.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from neurobench.adapter import TorchAdapter, state_dict_sha256
from neurobench.data import sha256_of
from neurobench.preprocess import imagenet_preprocess
from neurobench.registry import register_model
from neurobench.sheet import sheet_positions
from neurobench.weights import HubWeights, load_strict, read_state_dict

log = logging.getLogger(__name__)

RESNET18_REPO = "murtylab/topo-resnet18-imagenet"
RESNET18_TAUS = (0.5, 1.0, 5.0, 10.0, 20.0, 50.0)
RESNET18_DEFAULT_TAU = 10.0  # the release calls tau=10 its best-performing ResNet-18


class BlurPoolConv2d(nn.Module):
    """Anti-aliasing blur before a strided conv, with the release's module layout."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
        self.conv = conv
        self.register_buffer("blur_filter", kernel.expand(conv.in_channels, 1, 3, 3).clone())

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.blur_filter, stride=1, padding=1, groups=self.conv.in_channels)
        return self.conv(x)


def add_blurpool(model: nn.Module) -> nn.Module:
    """Wrap, in place, every conv with stride > 1 and >= 16 input channels."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Conv2d) and max(child.stride) > 1 and child.in_channels >= 16:
            setattr(model, name, BlurPoolConv2d(child))
        else:
            add_blurpool(child)
    return model


def topo_resnet(arch: str) -> nn.Module:
    """An untrained torchvision ResNet with the TopoNets BlurPool wrappers."""
    return add_blurpool(getattr(torchvision.models, arch)(weights=None))


def resnet_block_layers(model: nn.Module) -> list[str]:
    """Every residual block, then avgpool and fc: the default read-out layers."""
    blocks = [f"{stage}.{i}" for stage in ("layer1", "layer2", "layer3", "layer4")
              for i in range(len(getattr(model, stage)))]
    return blocks + ["avgpool", "fc"]


def topo_sheet_layers(model: nn.Module) -> list[str]:
    """Layers trained with TopoLoss: every conv in the residual blocks (BlurPool wrappers, not
    their inner conv), plus each block's output, whose channel c is its last conv's channel c."""
    names = []
    for name, mod in model.named_modules():
        if not name.startswith("layer") or ".downsample" in name or name.endswith(".conv"):
            continue
        if isinstance(mod, (nn.Conv2d, BlurPoolConv2d)):
            names.append(name)
    return names + [n for n in resnet_block_layers(model) if n.startswith("layer")]


class TopoResNetAdapter(TorchAdapter):
    """TorchAdapter whose `layers()` hides the convs inside BlurPool wrappers."""

    def __init__(self, model: nn.Module, **kwargs):
        super().__init__(model, layers=resnet_block_layers(model), preprocess=imagenet_preprocess(), **kwargs)
        inner = {f"{n}.conv" for n, m in model.named_modules() if isinstance(m, BlurPoolConv2d)}
        self._modules = {n: m for n, m in self._modules.items() if n not in inner}
        self._block_out = {n: self._modules[n] for n in resnet_block_layers(model) if n.startswith("layer")}
        on_sheet = set(topo_sheet_layers(model))
        self._sheet_layers = lambda layer: sheet_positions(self.channels(layer)) if layer in on_sheet else None

    def channels(self, layer: str) -> int | None:
        block = self._block_out.get(layer)
        if block is not None:  # a residual block's output has its last conv's channels
            convs = [m for n, m in block.named_modules() if isinstance(m, nn.Conv2d) and "downsample" not in n]
            return int(convs[-1].out_channels)
        return super().channels(layer)


def _tau_label(tau: float) -> str:
    return f"{tau:g}"


def make_toporesnet18(tau: float, weights: str | None = None, seed: int = 0) -> TopoResNetAdapter:
    """Build the adapter; `weights` is None (the release file), 'random', or a local path."""
    identifier = f"toporesnet18-tau{_tau_label(tau)}"
    if weights == "random":
        torch.manual_seed(seed)
        model = topo_resnet("resnet18")
        weights_id = f"random-{state_dict_sha256(model)[:16]}"
        return TopoResNetAdapter(model, identifier=identifier, weights_id=weights_id, trained=False,
                                 family="toponets")
    model = topo_resnet("resnet18")
    path = weights if weights is not None else HubWeights(RESNET18_REPO, f"all_topo_tau_{tau:.1f}.pt").fetch()
    load_strict(model, read_state_dict(path), str(path))
    return TopoResNetAdapter(model, identifier=identifier, weights_id=sha256_of(path), trained=True,
                             family="toponets")


def _register_resnet18() -> None:
    for tau in RESNET18_TAUS:
        hub = HubWeights(RESNET18_REPO, f"all_topo_tau_{tau:.1f}.pt")
        meta = dict(family="toponets", source=f"hf:{hub.repo_id}/{hub.filename}", weights=hub, tau=tau)

        def factory(weights: str | None = None, seed: int = 0, _tau=tau):
            return make_toporesnet18(_tau, weights, seed)

        factory.__doc__ = f"TopoNets ResNet-18, ImageNet, TopoLoss tau={_tau_label(tau)}"
        register_model(f"toporesnet18-tau{_tau_label(tau)}", **meta)(factory)
        if tau == RESNET18_DEFAULT_TAU:
            alias = lambda weights=None, seed=0: make_toporesnet18(RESNET18_DEFAULT_TAU, weights, seed)  # noqa: E731
            register_model("toporesnet18", f"TopoNets ResNet-18, ImageNet (alias of toporesnet18-tau{_tau_label(tau)})",
                           **meta)(alias)


_register_resnet18()
