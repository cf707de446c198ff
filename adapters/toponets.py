"""TopoNets (Deb, Deb & Murty, ICLR 2025): every released checkpoint, rebuilt so it loads strictly.

ResNet-18/50 and ViT-B/32 are torchvision networks; NanoGPT is `adapters/nanogpt.py`.

The vision releases wrap every strided conv with >= 16 input channels in a BlurPool module
(depthwise [1,2,1]x[1,2,1]/16 blur, stride 1, padding 1, then the conv), so the state dicts have
keys like `layer2.0.conv1.conv.weight` and a `blur_filter` buffer. We rebuild that structure
exactly, so the released state dicts load strictly.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from neurobench import paths
from neurobench.data.files import offline, sha256_of
from neurobench.errors import CheckpointError
from neurobench.models.adapter import TorchAdapter, state_dict_sha256
from neurobench.models.preprocess import imagenet_preprocess
from neurobench.models.sheet import sheet_positions
from neurobench.models.text import HookedTextAdapter
from neurobench.models.weights import (
    HubWeights,
    VerifiedHubWeights,
    WeightSource,
    load_strict,
    read_state_dict,
)
from neurobench.registry import register_model

from .nanogpt import GPT, GPTConfig

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


TAU_IN_NAME = re.compile(r"tau_([0-9]+(?:\.[0-9]+)?)\.pt$")


def check_release_name(path: str | Path, expected_file: str) -> None:
    """A local file named like another tau's release file is almost surely the wrong checkpoint
    (same architecture, so strict loading cannot tell): refuse it with the right id to use."""
    got, want = TAU_IN_NAME.search(Path(path).name), TAU_IN_NAME.search(expected_file)
    if got and want and float(got.group(1)) != float(want.group(1)):
        raise CheckpointError(
            f"{Path(path).name} is the release file for tau={float(got.group(1)):g}, but this model id expects "
            f"{expected_file} (tau={float(want.group(1)):g}); use the id for tau={float(got.group(1)):g}, or rename "
            "the file if the mismatch is deliberate"
        )


@dataclass(frozen=True)
class Release:
    """One TopoNets release family: hub repo, file pattern, taus, default tau, how to build it."""

    key: str                 # id prefix, e.g. "toporesnet50"
    title: str
    repo: str
    file_pattern: str        # formatted with tau=..., e.g. "all_topo_tau_{tau:.1f}.pt"
    taus: tuple[float, ...]
    default_tau: float
    default_reason: str
    needs_pickle: bool = False  # the file holds more than tensors: verify before any pickle load

    def hub(self, tau: float) -> WeightSource:
        cls = VerifiedHubWeights if self.needs_pickle else HubWeights
        return cls(self.repo, self.file_pattern.format(tau=tau))

    def model_id(self, tau: float) -> str:
        return f"{self.key}-tau{_tau_label(tau)}"


RESNET18 = Release("toporesnet18", "TopoNets ResNet-18, ImageNet", RESNET18_REPO, "all_topo_tau_{tau:.1f}.pt",
                   RESNET18_TAUS, RESNET18_DEFAULT_TAU, "the release calls tau=10 its best-performing ResNet-18")
RESNET50 = Release("toporesnet50", "TopoNets ResNet-50, ImageNet", "murtylab/topo-resnet50-imagenet",
                   "all_topo_tau_{tau:.1f}.pt", (30.0,), 30.0, "the only released tau")
VIT_B_32 = Release("topovit_b_32", "TopoNets ViT-B/32, ImageNet", "murtylab/topo-vit-b-32-imagenet",
                   "tau_{tau:.1f}.pt", (10.0,), 10.0, "the only released tau", needs_pickle=True)
NANOGPT = Release("toponanogpt", "TopoNets NanoGPT (GPT-2 small shape), FineWeb 10B",
                  "murtylab/topo-nanogpt-fineweb10B", "tau_{tau:.1f}.pt", (0.5, 1.0, 3.0, 50.0), 50.0,
                  "the release's loader defaults to tau=50, its strongest topography")
RELEASES = (RESNET18, RESNET50, VIT_B_32, NANOGPT)


def _resolve(release: Release, tau: float, weights: str | None) -> Path:
    """The checkpoint path: the verified hub file, or a local file whose name fits this tau."""
    expected = release.hub(tau).filename
    if weights is None:
        return release.hub(tau).fetch()
    check_release_name(weights, expected)
    return Path(weights)


def _random(build, seed: int):
    torch.manual_seed(seed)
    model = build()
    return model, f"random-{state_dict_sha256(model)[:16]}"


def make_toporesnet(release: Release, tau: float, weights: str | None = None, seed: int = 0) -> TopoResNetAdapter:
    """A TopoNets ResNet; `weights` is None (the release file), 'random', or a local path."""
    arch = "resnet18" if release is RESNET18 else "resnet50"
    identifier = release.model_id(tau)
    if weights == "random":
        model, weights_id = _random(lambda: topo_resnet(arch), seed)
        return TopoResNetAdapter(model, identifier=identifier, weights_id=weights_id, trained=False,
                                 family="toponets")
    model = topo_resnet(arch)
    path = _resolve(release, tau, weights)
    load_strict(model, read_state_dict(path), str(path))
    return TopoResNetAdapter(model, identifier=identifier, weights_id=sha256_of(path), trained=True,
                             family="toponets")


def make_toporesnet18(tau: float, weights: str | None = None, seed: int = 0) -> TopoResNetAdapter:
    return make_toporesnet(RESNET18, tau, weights, seed)


# ViT-B/32 ---------------------------------------------------------------------------------------

def trusted_hashes(extra: str | None = None) -> set[str]:
    """sha256 values the user vouched for: an argument plus NEUROBENCH_TRUSTED_SHA256 (comma list)."""
    raw = os.environ.get("NEUROBENCH_TRUSTED_SHA256", "")
    found = {h.strip().lower() for h in raw.split(",") if h.strip()}
    return found | ({extra.strip().lower()} if extra else set())


def read_nested_checkpoint(path: Path, nested_key: str, trusted_sha256: str | None = None,
                           strip_prefixes: tuple[str, ...] = ()) -> dict:
    """`ckpt[nested_key]` of a training checkpoint that may hold pickled objects besides weights.

    First `weights_only=True` (with argparse.Namespace allowed, as training scripts store their
    arguments that way). Only if that is refused, and the file's sha256 is `trusted_sha256`
    (the hub-verified hash, or one the user vouched for), is it loaded with pickle.
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as refusal:
        actual = sha256_of(path)
        if actual not in trusted_hashes(trusted_sha256):
            raise CheckpointError(
                f"checkpoint {path} holds pickled Python objects that a weights-only load refuses "
                f"({str(refusal).splitlines()[0]}). Loading it would run code from the file; neurobench does so "
                f"only for the release file verified against the hub's sha256, or a file you vouch for: pass "
                f"trusted_sha256='{actual}' (Python) or set NEUROBENCH_TRUSTED_SHA256={actual}"
            ) from refusal
        log.warning("loading %s with pickle (sha256 %s verified/trusted)", path, actual)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise CheckpointError(f"cannot read checkpoint {path} ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(exc).__name__}: {exc}); is it truncated, or not a torch checkpoint?"
        ) from exc
    if not isinstance(obj, dict) or nested_key not in obj:
        raise CheckpointError(f"checkpoint {path}: expected the weights under key {nested_key!r}")
    state = obj[nested_key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path}: {nested_key!r} is not a state dict")
    return {_strip(k, strip_prefixes): v for k, v in state.items()}


def _strip(key: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


def vit_layers(model: nn.Module) -> list[str]:
    """Patch embedding, every encoder block, the final norm and the classifier."""
    blocks = [f"encoder.layers.{n}" for n, _ in model.encoder.layers.named_children()]
    return ["conv_proj", *blocks, "encoder.ln", "heads.head"]


def vit_sheet_layers(model: nn.Module) -> dict[str, int]:
    """Each block's first MLP linear (768 -> 3072): the ViT layers TopoLoss shapes (see docs)."""
    return {f"encoder.layers.{n}.mlp.0": blk.mlp[0].out_features for n, blk in model.encoder.layers.named_children()}


class ViTAdapter(TorchAdapter):
    """torchvision ViT read at its blocks; MLP layers of the TopoNet have sheet positions."""

    def __init__(self, model: nn.Module, topographic: bool = False, preprocess=None, **kwargs):
        sheet = vit_sheet_layers(model) if topographic else {}
        super().__init__(model, layers=vit_layers(model), preprocess=preprocess or imagenet_preprocess(256, 224),
                         sheet_layers=lambda layer: sheet_positions(sheet[layer]) if layer in sheet else None,
                         **kwargs)


def make_topovit(tau: float = 10.0, weights: str | None = None, seed: int = 0,
                 trusted_sha256: str | None = None) -> ViTAdapter:
    """TopoNets ViT-B/32; the release file needs a pickle load, done only after sha256 checks."""
    identifier = VIT_B_32.model_id(tau)
    if weights == "random":
        model, weights_id = _random(lambda: torchvision.models.vit_b_32(weights=None), seed)
        return ViTAdapter(model, topographic=True, identifier=identifier, weights_id=weights_id, trained=False,
                          family="toponets")
    hub = VIT_B_32.hub(tau)
    if weights is None:
        path, verified = hub.fetch_verified()
        trusted_sha256 = verified
    else:
        check_release_name(weights, hub.filename)
        path = Path(weights)
    model = torchvision.models.vit_b_32(weights=None)
    load_strict(model, read_nested_checkpoint(path, "model", trusted_sha256), str(path))
    return ViTAdapter(model, topographic=True, identifier=identifier, weights_id=sha256_of(path), trained=True,
                      family="toponets")


# NanoGPT ----------------------------------------------------------------------------------------

def nanogpt_layers(cfg: GPTConfig) -> list[str]:
    blocks = [f"transformer.h.{i}" for i in range(cfg.n_layer)]
    return blocks + [f"{b}.mlp.c_fc" for b in blocks] + ["transformer.ln_f"]


GPT2_TOKENIZER_ENV = "NEUROBENCH_GPT2_TOKENIZER"


def gpt2_tokenizer():
    """The GPT-2 BPE tokenizer NanoGPT was trained with: from the folder in
    $NEUROBENCH_GPT2_TOKENIZER, neurobench's copy of `gpt2`, the Hugging Face cache, or the hub."""
    from transformers import AutoTokenizer

    from .huggingface import HUB_MODELS

    hub = HUB_MODELS["gpt2"][0]
    folder = os.environ.get(GPT2_TOKENIZER_ENV)
    if folder:
        try:
            return AutoTokenizer.from_pretrained(folder, use_fast=True)
        except Exception as exc:
            raise CheckpointError(
                f"{GPT2_TOKENIZER_ENV}={folder}: cannot read a GPT-2 tokenizer there ({type(exc).__name__}: {exc}); "
                "the folder needs vocab.json and merges.txt (or tokenizer.json) of openai-community/gpt2"
            ) from exc
    cached = hub.cached_path()
    attempts = [(cached, {})] if cached is not None else []
    attempts += [(hub.repo_id, {"local_files_only": True}), ("gpt2", {"local_files_only": True})]
    if not offline():
        attempts.append((hub.repo_id, {"cache_dir": paths.subdir("hub")}))
    problem = None
    for source, kwargs in attempts:
        try:
            return AutoTokenizer.from_pretrained(source, use_fast=True, **kwargs)
        except Exception as exc:  # not cached here, or the hub is unreachable: try the next place
            problem = exc
    why = "NEUROBENCH_OFFLINE is set" if offline() else f"{type(problem).__name__}: {str(problem).splitlines()[0]}"
    raise CheckpointError(
        "NanoGPT reads text with the GPT-2 BPE tokenizer (vocab.json + merges.txt, or tokenizer.json, of "
        f"{hub.repo_id}), which is neither in neurobench's cache ({paths.home() / 'hub'}) nor in the Hugging Face "
        f"cache, and cannot be downloaded here ({why}). Provide it in one of three ways: run `neurobench fetch gpt2` "
        f"where the hub is reachable (downloads GPT-2 with its tokenizer); set {GPT2_TOKENIZER_ENV} to a folder "
        "holding those tokenizer files; or, in Python, pass tokenizer=<a transformers fast tokenizer> to the model"
    )


def make_toponanogpt(tau: float = 50.0, weights: str | None = None, seed: int = 0, tokenizer=None,
                     config: GPTConfig | None = None, **options) -> HookedTextAdapter:
    """TopoNets NanoGPT; options are TextAdapter's (pooling, level, truncation)."""
    cfg = config or GPTConfig()
    identifier = NANOGPT.model_id(tau)
    tok = tokenizer if tokenizer is not None else gpt2_tokenizer()  # before building 124M parameters
    if weights == "random":
        model, weights_id = _random(lambda: GPT(cfg), seed)
        trained = False
    else:
        path = _resolve(NANOGPT, tau, weights)
        model = GPT(cfg)
        load_strict(model, read_state_dict(path, nested_key="model", strip_prefixes=("_orig_mod.",)), str(path))
        weights_id, trained = sha256_of(path), True
    tok_id = getattr(tok, "name_or_path", None) or type(tok).__name__
    layers = nanogpt_layers(cfg)
    return HookedTextAdapter(
        model, layers=layers, default_layers=layers[:-1],
        sheet_layers={f"transformer.h.{i}.mlp.c_fc": 4 * cfg.n_embd for i in range(cfg.n_layer)},
        tokenizer=tok, max_length=cfg.block_size, identifier=identifier, weights_id=weights_id,
        tokenizer_id=str(tok_id).replace("/", "_"), trained=trained, family="toponets", **options,
    )


# registration -----------------------------------------------------------------------------------

def _builder(release: Release):
    if release is VIT_B_32:
        return make_topovit
    if release is NANOGPT:
        return make_toponanogpt
    return lambda tau, weights=None, seed=0: make_toporesnet(release, tau, weights, seed)


def _register(release: Release) -> None:
    build = _builder(release)
    for tau in release.taus:
        hub = release.hub(tau)
        meta = dict(family="toponets", source=f"hf:{hub.repo_id}/{hub.filename}", weights=hub, tau=tau)

        def factory(weights: str | None = None, seed: int = 0, _tau=tau, **options):
            return build(_tau, weights=weights, seed=seed, **options)

        register_model(release.model_id(tau), f"{release.title}, TopoLoss tau={_tau_label(tau)}", **meta)(factory)
        if tau == release.default_tau:
            def alias(weights: str | None = None, seed: int = 0, **options):
                return build(release.default_tau, weights=weights, seed=seed, **options)

            register_model(release.key, f"{release.title} (alias of {release.model_id(tau)}: "
                           f"{release.default_reason})", **meta)(alias)


for _release in RELEASES:
    _register(_release)
