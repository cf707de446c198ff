"""torchvision ImageNet classifiers: the non-topographic baselines and any model by name.

`resnet18`, `resnet50`, `vit_b_32` use the IMAGENET1K_V1 weights (the classic training recipe,
closest to how the TopoNets were trained); `torchvision:<name>` is any torchvision classification
model with its DEFAULT weights. Weights are downloaded to NEUROBENCH_HOME/torchvision, checked
against the sha256 prefix in their file name (torchvision's `check_hash`) before every load, and
read with `torch.load(weights_only=True)`. Preprocessing follows the weights' own transforms
(resize, crop, mean, std, interpolation).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
import torchvision
from torch import nn

from neurobench.data.files import sha256_of
from neurobench.errors import CheckpointError
from neurobench.models.adapter import TorchAdapter, state_dict_sha256
from neurobench.models.preprocess import ImagePreprocess
from neurobench.models.weights import WeightSource, load_strict, read_state_dict
from neurobench.registry import register_model

from .toponets import ViTAdapter, resnet_block_layers

log = logging.getLogger(__name__)

BASELINES = {"resnet18": "IMAGENET1K_V1", "resnet50": "IMAGENET1K_V1", "vit_b_32": "IMAGENET1K_V1"}


def weights_enum(model: str, weights: str = "DEFAULT"):
    """The torchvision weights entry (url, transforms, meta) of a model, by name."""
    try:
        return torchvision.models.get_model_weights(model)[weights]
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"torchvision has no weights {weights!r} for model {model!r}") from exc


def TorchvisionWeights(model: str, weights: str = "DEFAULT") -> WeightSource:
    """A torchvision weights file, cached under NEUROBENCH_HOME/torchvision and checked against the
    sha256 prefix in its file name (torchvision's `check_hash`) on every use."""
    url = weights_enum(model, weights).url
    filename = url.rsplit("/", 1)[-1]
    return WeightSource(filename, url=url, cache="torchvision", sha256="file-name", recheck=True,
                        what=f"torchvision weights {filename} ({model}, {weights})", local=f"a local copy of {url}")


def preprocess_of(model: str, weights: str = "DEFAULT") -> ImagePreprocess:
    """The evaluation transforms of a torchvision weights entry, as an ImagePreprocess."""
    t = weights_enum(model, weights).transforms()
    interp = str(getattr(t.interpolation, "value", t.interpolation)).lower()
    if interp not in ("bilinear", "bicubic"):
        raise CheckpointError(f"{model}: unsupported preprocessing interpolation {interp!r}")
    return ImagePreprocess(resize=int(t.resize_size[0]), crop=int(t.crop_size[0]), mean=tuple(t.mean),
                           std=tuple(t.std), interpolation=interp)


def build(model: str, weights: str = "DEFAULT") -> nn.Module:
    """The untrained architecture shaped for a weights entry (class count, image size)."""
    meta = weights_enum(model, weights).meta
    kwargs = {"num_classes": len(meta["categories"])}
    crop = preprocess_of(model, weights).crop
    if model.startswith("vit_") and crop != 224:
        kwargs["image_size"] = crop
    return torchvision.models.get_model(model, weights=None, **kwargs)


_DENSENET_LEGACY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _legacy_keys(model: str, state: dict) -> dict:
    """DenseNet files predate the module names torchvision now uses ('norm.1' -> 'norm1')."""
    if not model.startswith("densenet"):
        return state
    out = {}
    for key, value in state.items():
        m = _DENSENET_LEGACY.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out


def default_layers(model: str, module: nn.Module) -> list[str]:
    """Residual blocks for ResNets, blocks for ViTs, else the top-level stages (and `features`)."""
    if hasattr(module, "layer4") and hasattr(module, "fc"):
        return resnet_block_layers(module)
    names = []
    for name, child in module.named_children():
        if name == "features" and len(list(child.children())) > 1:
            names += [f"features.{n}" for n, _ in child.named_children()]
        else:
            names.append(name)
    return names


def make_torchvision(model: str, weights_name: str = "DEFAULT", weights: str | None = None, seed: int = 0,
                     identifier: str | None = None) -> TorchAdapter:
    """Adapter for a torchvision classifier; `weights` is None (official), 'random' or a path."""
    identifier = identifier or f"torchvision:{model}"
    prep = preprocess_of(model, weights_name)
    if weights == "random":
        torch.manual_seed(seed)
        module = build(model, weights_name)
        weights_id, trained = f"random-{state_dict_sha256(module)[:16]}", False
    else:
        source = TorchvisionWeights(model, weights_name)
        path = source.fetch() if weights is None else Path(weights)
        module = build(model, weights_name)
        load_strict(module, _legacy_keys(model, read_state_dict(path)), str(path))
        weights_id, trained = sha256_of(path), True
    common = dict(identifier=identifier, weights_id=weights_id, trained=trained, family="torchvision")
    if isinstance(module, torchvision.models.VisionTransformer):
        return ViTAdapter(module, topographic=False, preprocess=prep, **common)
    return TorchAdapter(module, layers=default_layers(model, module), preprocess=prep, **common)


def classification_models() -> list[str]:
    return sorted(torchvision.models.list_models(module=torchvision.models))


def _register() -> None:
    for name, weights_name in BASELINES.items():
        def baseline(weights: str | None = None, seed: int = 0, _n=name, _w=weights_name):
            return make_torchvision(_n, _w, weights, seed, identifier=_n)

        src = TorchvisionWeights(name, weights_name)
        register_model(name, f"torchvision {name}, ImageNet {weights_name} (non-topographic baseline)",
                       family="torchvision", source=f"torchvision:{name}.{weights_name}", weights=src)(baseline)
    for name in classification_models():
        def factory(weights: str | None = None, seed: int = 0, _n=name):
            return make_torchvision(_n, "DEFAULT", weights, seed)

        register_model(f"torchvision:{name}", f"torchvision {name}, ImageNet DEFAULT weights",
                       family="torchvision", source=f"torchvision:{name}.DEFAULT",
                       weights=TorchvisionWeights(name, "DEFAULT"))(factory)


_register()
