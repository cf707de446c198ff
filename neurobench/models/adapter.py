"""Adapters: a model plus which layers to read, how to feed it, and where its units sit."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.stimuli import StimulusSet
from ..devices import resolve_device
from ..errors import (
    CacheCorruptError,
    ExtractionError,
    InvalidInputError,
    LayerError,
    LayerNotReachedError,
    StimulusError,
)
from ..progress import progress_bar
from .cache import ActivationCache, temp_writer
from .extract import (
    PRECISIONS,
    WRITER_QUEUE_BYTES,
    LayerSinks,
    check_precision,
    default_workers,
    fit_pca,
    pca_transform,
    stream,
    to_host,
)
from .layerfile import LayerArray
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
    """Most bytes of activations one call returns in memory: NEUROBENCH_ACTIVATION_BUDGET_GB,
    default half the RAM. Larger results come back as lazily-read arrays (`LayerArray`)."""
    raw = os.environ.get("NEUROBENCH_ACTIVATION_BUDGET_GB")
    if raw:
        return int(float(raw) * 1e9)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 10**9


def in_memory_limit(memory_budget: int | None) -> int:
    """Activations up to this many bytes are returned as numpy arrays, larger ones lazily: the
    activation budget, and a quarter of a run's memory budget when one is given (a kind then
    holds one lazily-read layer at a time)."""
    limit = activation_budget()
    return limit if memory_budget is None else min(limit, int(memory_budget) // 4)


class Adapter:
    """Base class: subclasses provide `layers`, `_layer_modules` and a forward pass.

    Identity is `identifier` + `weights_id` (a sha256, or `random-seed<N>` for untrained weights),
    so caches and results never mix pretrained and untrained networks.

    Extraction streams (`activations`): subclasses implement `_extract_into(stimuli, layers,
    batch_size, device, sinks, ...)`, handing each batch's rows to `sinks`; an adapter that only
    implements `_extract(stimuli, layers, batch_size, device) -> {layer: array}` still works (its
    result is checked and stored the same way, but held in memory while it is built).
    """

    identifier: str
    weights_id: str
    trained: bool = True
    family: str = "custom"
    readout: Readout | None = None
    precision: str = "float32"

    def with_readout(self, readout: Readout | str | None = None, **options) -> Adapter:
        """Pool, project and/or PCA layer outputs at extraction time: `with_readout(pool="mean")`,
        `with_readout("pool=2,project=4096")`, `with_readout(pca=256, fit="first:1000")`; part of
        the cache key. Returns self."""
        self.readout = Readout.parse(readout) if readout is not None else Readout(**options)
        if self.readout.is_identity:
            self.readout = None
        return self

    def with_precision(self, precision: str = "float32") -> Adapter:
        """Run the forward pass in 'float16' or 'bfloat16' autocast on a GPU (activations are
        stored as float32); part of the cache key. Returns self."""
        if precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        return self

    @property
    def extraction_id(self) -> str:
        """Preprocessing, read-out and precision: everything besides model, weights and stimuli
        that changes the activations (the activation-cache key uses it)."""
        base = self.preprocess_id
        if self.readout is not None:
            base = f"{base}|readout={self.readout.identifier}"
        if self.precision != "float32":
            base = f"{base}|precision={self.precision}"
        return base

    def extraction_key(self, stimuli: StimulusSet) -> str:
        """`extraction_id`, plus the PCA fitting set's ids when the read-out fits a PCA."""
        if self.readout is not None and self.readout.needs_fit:
            return f"{self.extraction_id}|fitset={self.readout.fit_digest(stimuli.ids, stimuli.labels)}"
        return self.extraction_id

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
        *,
        memory_budget: int | None = None,
        lazy: bool | None = None,
        workers: int | None = None,
    ) -> dict[str, np.ndarray | LayerArray]:
        """Activations per layer, (n_stimuli, n_units) float32, from the cache where possible.

        Missing layers are extracted in one streaming pass (`models.extract`). Small results come
        back as numpy arrays; results over `in_memory_limit(memory_budget)` (or with `lazy=True`)
        as `LayerArray`s read from disk on demand, so a kind that reads one layer, or some rows or
        columns, never loads the others. `memory_budget` (bytes) bounds the extraction's working
        memory too (smaller batches; MemoryBudgetError when one stimulus does not fit).
        `workers`: loader threads that decode and preprocess images ahead of the model
        (default `NEUROBENCH_LOADER_WORKERS`, else 2). A corrupt cache entry is reported,
        deleted and recomputed.
        """
        layers = self.check_layers(layers)
        dev = resolve_device(device)
        check_precision(self.precision, dev)
        cache_obj = ActivationCache() if cache is True else (cache or None)
        limit = in_memory_limit(memory_budget)
        for attempt in range(2):
            out = self._gather(stimuli, layers, batch_size, dev, cache_obj, memory_budget, limit,
                               default_workers() if workers is None else int(workers))
            if lazy or (lazy is None and sum(_nbytes(a) for a in out.values()) > limit):
                return out
            try:
                return {name: _materialise(a) for name, a in out.items()}
            except CacheCorruptError as exc:
                if cache_obj is None or attempt:
                    raise
                cache_obj.discard(Path(exc.path), f"failed its checksum ({exc.why})")
        raise AssertionError("unreachable")  # pragma: no cover

    def _gather(self, stimuli, layers, batch_size, dev, cache_obj, memory_budget, limit, workers):
        out: dict[str, np.ndarray | LayerArray] = {}
        entry = None
        if cache_obj is not None:
            entry = cache_obj.entry_dir(self.identifier, self.weights_id, stimuli.content_hash(),
                                        self.extraction_key(stimuli))
            for name in layers:
                hit = cache_obj.open(entry, name, stimuli.ids)
                if hit is not None:
                    out[name] = hit
        missing = [name for name in layers if name not in out]
        if not missing:
            return {name: out[name] for name in layers}
        meta = {"model": self.identifier, "weights": self.weights_id, "stimuli": stimuli.content_hash(),
                "stimulus_set": stimuli.identifier, "preprocess": self.extraction_key(stimuli)}

        def file_writer(layer: str, in_memory: bool):
            if cache_obj is not None:
                return cache_obj.writer(entry, layer, stimuli.ids, meta)
            return None if in_memory else temp_writer(layer, stimuli.ids, meta)

        queue = WRITER_QUEUE_BYTES if memory_budget is None else min(WRITER_QUEUE_BYTES, int(memory_budget) // 8)
        sinks = LayerSinks(missing, len(stimuli), file_writer, memory_limit=limit, queue_bytes=queue,
                           files_always=cache_obj is not None)
        start = time.perf_counter()
        try:
            self._extract_into(stimuli, missing, batch_size, dev, sinks, memory_budget=memory_budget,
                               workers=workers)
            sinks.finish()
        except BaseException:
            sinks.abort()
            raise
        log.info("extracted %d layer(s) of %s in %.1fs", len(missing), self.identifier, time.perf_counter() - start)
        for name in missing:
            if name in sinks.arrays:
                out[name] = sinks.arrays[name]
            elif cache_obj is not None:
                out[name] = cache_obj.commit(sinks.writers[name])
            else:
                w = sinks.writers[name]
                out[name] = LayerArray(w.commit(), name, (w.n_total, w.n_cols), delete=True)
        return {name: out[name] for name in layers}

    def _extract_into(self, stimuli: StimulusSet, layers: list[str], batch_size: int, device: torch.device,
                      sinks: LayerSinks, memory_budget: int | None = None, workers: int = 0) -> None:
        """Hand every layer's rows to `sinks` (default: one call to `_extract`, then checked)."""
        fresh = self._extract(stimuli, layers, batch_size, device)
        bad = {k: np.shape(fresh[k]) for k in layers if k in fresh and (np.ndim(fresh[k]) != 2
                                                                        or len(fresh[k]) != len(stimuli))}
        missing = [k for k in layers if k not in fresh]
        if missing:
            raise LayerNotReachedError(f"{self.identifier} returned no activations for layer(s) {missing}")
        if bad:
            raise ExtractionError(f"{self.identifier} returned activations of shapes {bad} for "
                                  f"{len(stimuli)} stimuli; expected one row per stimulus")
        sinks.append({k: np.asarray(fresh[k], dtype=np.float32) for k in layers})

    def _extract(self, stimuli: StimulusSet, layers: list[str], batch_size: int,
                 device: torch.device) -> dict[str, np.ndarray]:
        raise NotImplementedError


def _nbytes(a) -> int:
    return int(a.nbytes)


def _materialise(a):
    """A LayerArray read whole (every chunk verified) and released; numpy arrays as they are."""
    if not isinstance(a, LayerArray):
        return a
    try:
        return a.read()
    finally:
        a.close()


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

    def _extract_into(self, stimuli, layers, batch_size, device, sinks, memory_budget=None, workers=0):
        if stimuli.modality != "image":
            raise StimulusError(f"{self.identifier} is an image model; stimulus set {stimuli.identifier!r} holds text")
        self.module.to(device)
        modules = {n: self._modules[n] for n in layers}

        def make_batch(rows):
            return self.preprocess(stimuli.rgb_images(rows.tolist()))

        common = dict(precision=self.precision, batch_size=batch_size, workers=workers, memory_budget=memory_budget,
                      fixed_bytes=sinks.buffer_bytes)
        readout = self.readout
        transform = readout
        if readout is not None and readout.needs_fit:
            pcas = fit_pca(self.module, modules, stimuli, readout, make_batch, device, common, self.display_name)
            transform = pca_transform(readout, pcas)
        with progress_bar(len(stimuli), f"{self.display_name}: activations") as bar:
            stream(self.module, modules, np.arange(len(stimuli)), make_batch, device,
                   lambda batch: sinks.append(to_host(batch)), transform=transform, on_batch=bar.advance, **common)
