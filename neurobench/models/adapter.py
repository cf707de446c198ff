"""Adapters: a model plus which layers to read, how to feed it, and where its units sit."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..data.stimuli import StimulusSet
from ..devices import resolve_device
from ..errors import LayerError, StimulusError
from ..progress import progress_bar
from .cache import ActivationCache, run_hooked
from .preprocess import ImagePreprocess, imagenet_preprocess
from .readout import Readout
from .sheet import sheet_positions as _grid_positions

log = logging.getLogger(__name__)


def state_dict_sha256(module: torch.nn.Module) -> str:
    """sha256 over a module's parameters and buffers (names, shapes, bytes) in key order."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def activation_budget() -> int:
    """Most bytes one extraction may return: NEUROBENCH_ACTIVATION_BUDGET_GB, default half the RAM."""
    raw = os.environ.get("NEUROBENCH_ACTIVATION_BUDGET_GB")
    if raw:
        return int(float(raw) * 1e9)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 10**9


class Adapter:
    """Base class: subclasses provide `layers`, `_layer_modules` and a forward pass.

    Identity is `identifier` + `weights_id` (a sha256, or `random-seed<N>` for untrained weights),
    so caches and results never mix pretrained and untrained networks.
    """

    identifier: str
    weights_id: str
    trained: bool = True
    family: str = "custom"
    readout: Readout | None = None

    def with_readout(self, readout: Readout | None = None, **options) -> Adapter:
        """Pool and/or project layer outputs at extraction time: `with_readout(pool="mean")`,
        `with_readout(pool=2, project=4096)`; part of the cache key. Returns self."""
        self.readout = readout if readout is not None else Readout(**options)
        if self.readout.is_identity:
            self.readout = None
        return self

    @property
    def extraction_id(self) -> str:
        """Preprocessing plus read-out: everything besides model, weights and stimuli that
        changes the activations (the activation-cache key uses it)."""
        base = self.preprocess_id
        return base if self.readout is None else f"{base}|readout={self.readout.identifier}"

    def layers(self) -> list[str]:
        raise NotImplementedError

    def default_layers(self) -> list[str]:
        return self.layers()

    def sheet_positions(self, layer: str) -> np.ndarray | None:
        """(n_units, 2) grid positions of the layer's output units, or None without a sheet."""
        return None

    @property
    def display_name(self) -> str:
        """The name shown in tables: untrained networks are always labelled as such."""
        return self.identifier if self.trained else f"{self.identifier} [untrained]"

    @property
    def preprocess_id(self) -> str:
        raise NotImplementedError

    def check_layers(self, layers: Sequence[str] | None) -> list[str]:
        if layers is None:
            return list(self.default_layers())
        valid = self.layers()
        bad = [name for name in layers if name not in valid]
        if bad:
            raise LayerError(
                f"model {self.identifier!r} has no layer(s) {bad}; valid layers: {', '.join(valid)}"
            )
        return list(layers)

    def activations(
        self,
        stimuli: StimulusSet,
        layers: Sequence[str] | None = None,
        batch_size: int = 32,
        device: str | torch.device = "auto",
        cache: ActivationCache | bool = True,
    ) -> dict[str, np.ndarray]:
        """Activations per layer, (n_stimuli, n_units) float32, from the cache where possible."""
        layers = self.check_layers(layers)
        cache_obj = ActivationCache() if cache is True else (cache or None)
        out: dict[str, np.ndarray] = {}
        entry = None
        if cache_obj is not None:
            entry = cache_obj.entry_dir(self.identifier, self.weights_id, stimuli.content_hash(), self.extraction_id)
            for name in layers:
                hit = cache_obj.load(entry, name, stimuli.ids)
                if hit is not None:
                    out[name] = hit
        missing = [name for name in layers if name not in out]
        if missing:
            start = time.perf_counter()
            fresh = self._extract(stimuli, missing, batch_size, resolve_device(device))
            log.info("extracted %d layer(s) of %s in %.1fs", len(missing), self.identifier, time.perf_counter() - start)
            if cache_obj is not None:
                meta = {"model": self.identifier, "weights": self.weights_id, "stimuli": stimuli.content_hash(),
                        "preprocess": self.extraction_id}
                for name in missing:
                    cache_obj.save(entry, name, stimuli.ids, fresh[name], meta)
            out.update(fresh)
        return {name: out[name] for name in layers}

    def _extract(self, stimuli: StimulusSet, layers: list[str], batch_size: int,
                 device: torch.device) -> dict[str, np.ndarray]:
        raise NotImplementedError


class TorchAdapter(Adapter):
    """Wraps any torch.nn.Module for image stimuli; layers are module names from named_modules().

    `sheet_layers` names layers whose output units lie on a TopoLoss-style 2-D sheet (unit c at
    row c // w, col c % w); pass a callable instead for another layout.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        layers: Sequence[str] | None = None,
        preprocess: ImagePreprocess | Callable | None = None,
        identifier: str = "custom",
        weights_id: str | None = None,
        trained: bool = True,
        family: str = "custom",
        sheet_layers: Sequence[str] | Callable[[str], np.ndarray | None] | None = None,
    ):
        self.module = module.eval()
        self.identifier = identifier
        self.trained = trained
        self.family = family
        self.preprocess = preprocess if preprocess is not None else imagenet_preprocess()
        self._modules = dict(module.named_modules())
        self._modules.pop("", None)
        self._default = list(layers) if layers is not None else [n for n, m in self._modules.items()
                                                                   if not list(m.children())]
        bad = [name for name in self._default if name not in self._modules]
        if bad:
            raise LayerError(f"model {identifier!r} has no layer(s) {bad}; valid layers: {', '.join(self._modules)}")
        self._sheet_layers = sheet_layers
        self.weights_id = weights_id or state_dict_sha256(module)
        self._unit_counts: dict[str, int] = {}

    def layers(self) -> list[str]:
        return list(self._modules)

    def default_layers(self) -> list[str]:
        return list(self._default)

    @property
    def preprocess_id(self) -> str:
        return getattr(self.preprocess, "identifier", getattr(self.preprocess, "__name__", repr(self.preprocess)))

    def channels(self, layer: str) -> int | None:
        """Number of output units (conv channels / linear outputs) of a layer's module."""
        mod = self._modules[layer]
        for attr in ("out_channels", "out_features", "num_features"):
            if hasattr(mod, attr):
                return int(getattr(mod, attr))
        inner = getattr(mod, "conv", None)
        if inner is not None and hasattr(inner, "out_channels"):
            return int(inner.out_channels)
        return None

    def sheet_positions(self, layer: str) -> np.ndarray | None:
        self.check_layers([layer])
        if self._sheet_layers is None:
            return None
        if callable(self._sheet_layers):
            return self._sheet_layers(layer)
        if layer not in self._sheet_layers:
            return None
        n = self.channels(layer)
        return None if n is None else _grid_positions(n)

    def _batches(self, stimuli: StimulusSet, batch_size: int, bar):
        if stimuli.modality != "image":
            raise StimulusError(f"{self.identifier} is an image model; stimulus set {stimuli.identifier!r} holds text")
        for start in range(0, len(stimuli), batch_size):
            idx = range(start, min(start + batch_size, len(stimuli)))
            yield self.preprocess(stimuli.rgb_images(idx))
            bar.advance(len(idx))

    def _extract(self, stimuli, layers, batch_size, device):
        self.module.to(device)
        with progress_bar(len(stimuli), f"{self.display_name}: activations") as bar:
            return run_hooked(self.module, {n: self._modules[n] for n in layers},
                              self._batches(stimuli, batch_size, bar), device, transform=self.readout,
                              n_total=len(stimuli), max_bytes=activation_budget())
