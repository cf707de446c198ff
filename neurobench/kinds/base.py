"""Benchmark base class: owns stimuli and data, scores a model's layers, returns a ScoreResult.

A kind (RSA, encoding, ...) implements `score_activations(activations, seed, device,
memory_budget) -> Scores`; `score` extracts the activations, calls it, and makes the ScoreResult
(the model's identity, the options in effect and the run's provenance). Options are declared on
the kind (`neurobench.options`) and set with `configure` or the constructor's keyword arguments.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.files import availability, recorded_digest, select_files
from ..data.stimuli import StimulusSet
from ..devices import resolve_device
from ..errors import CacheCorruptError, InvalidInputError
from ..fingerprint import configuration, differences, fingerprint
from ..memory import bound_heap
from ..models.adapter import Adapter
from ..models.cache import ActivationCache
from ..models.layerfile import LayerArray
from ..options import configure, declared_options, documented_options, option_values
from ..result import ScoreResult, Scores
from ..version import __version__

log = logging.getLogger(__name__)


class Benchmark:
    """Subclasses set `identifier`, `datasets` (manifest names) and implement `stimuli` and
    `score_activations`. Data loading is lazy so `neurobench list` stays instant.

    Options are class attributes made with `neurobench.options.option` and documented in the
    numpydoc Parameters section of the kind's docstring; `configure(**options)` sets them.
    """

    identifier: str = ""
    description: str = ""
    datasets: tuple[str, ...] = ()
    metric: str = ""
    # The version of this kind's metric (`neurobench.fingerprint`): bump it when a change to the kind
    # or the metrics it calls changes its numbers; stored results of older versions are then recomputed.
    metric_version: int = 1
    # The options a freshly loaded benchmark has (`api.load_benchmark` records them before configuring);
    # a configuration is the default one when its options are these.
    default_options: dict | None = None

    data_files: tuple[tuple[str, str], ...] | None = None  # (dataset, file) pairs needed; None: all files

    def required_files(self) -> dict[str, list[str] | None]:
        """Per dataset, the manifest files this benchmark reads (None: all of them)."""
        if self.data_files is None:
            return {ds: None for ds in self.datasets}
        out: dict[str, list[str] | None] = {}
        for ds, name in self.data_files:
            out.setdefault(ds, []).append(name)
        return out

    def data_status(self) -> tuple[bool, str]:
        """(available locally?, reason if not) without downloading anything."""
        missing = []
        for ds, names in self.required_files().items():
            missing += [f"{ds}/{name}" for name, ok in availability(ds, names).items() if not ok]
        if missing:
            shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            return False, (f"data not available locally: {shown} (run `neurobench fetch {self.identifier}` "
                           "or set NEUROBENCH_MIRROR)")
        return True, ""

    def data_report(self) -> dict[str, int]:
        """Files needed, how many are local, and the bytes still to download (some sizes may be unknown)."""
        report = {"files": 0, "local": 0, "missing_bytes": 0, "missing_unknown_size": 0}
        for ds, names in self.required_files().items():
            local = availability(ds, names)
            for spec in select_files(ds, names=names):
                report["files"] += 1
                if local[spec.name]:
                    report["local"] += 1
                elif spec.size is None:
                    report["missing_unknown_size"] += 1
                else:
                    report["missing_bytes"] += spec.size
        return report

    def data_hashes(self) -> dict[str, str]:
        return {f"{ds}/{spec.name}": spec.checksum if spec.digest else f"tofu:sha256:{recorded_digest(ds, spec.name)}"
                for ds, names in self.required_files().items() for spec in select_files(ds, names=names)}

    _load_stimuli = None  # subclasses may set a loader instead of overriding `stimuli`
    _stimuli: StimulusSet | None = None

    def stimuli(self) -> StimulusSet:
        """The benchmark's stimulus set, loaded once."""
        if self._stimuli is None:
            if self._load_stimuli is None:
                raise NotImplementedError(f"{type(self).__name__} must set _load_stimuli or override stimuli()")
            self._stimuli = self._load_stimuli()
        return self._stimuli

    # ------------------------------------------------------------------ options

    def configure(self, **options) -> Benchmark:
        """Set declared options (unknown names and bad values raise InvalidOptionError). Returns self."""
        configure(self, options)
        return self

    def configure_from_text(self, options: dict[str, str]) -> Benchmark:
        """Set options from command-line text (`--option name=value`), parsed by each option."""
        configure(self, options, from_text=True)
        return self

    @classmethod
    def options(cls) -> dict[str, str]:
        """Each option this kind accepts -> its documentation (type: description)."""
        docs = documented_options(cls)
        return {name: docs.get(name, "") for name in declared_options(cls)}

    def option_values(self) -> dict:
        """The options in effect (set or default)."""
        return option_values(self)

    def configuration(self, adapter: Adapter, layers: Sequence[str] | None = None, seed: int = 0) -> dict:
        """The configuration a score of `adapter` would have (`neurobench.fingerprint`): layers None
        when they are the model's default set."""
        if layers is not None and list(layers) == list(adapter.default_layers()):
            layers = None
        readout = getattr(adapter, "readout", None)
        return configuration(model=adapter.identifier, weights_sha256=adapter.weights_id, benchmark=self.identifier,
                             metric_version=self.metric_version, layers=layers, options=self.option_values(),
                             seed=seed, readout=readout.identifier if readout is not None else None,
                             precision=getattr(adapter, "precision", "float32"))

    # ------------------------------------------------------------------ scoring

    def check_data(self) -> None:
        """Load and check the benchmark's data before any activation is extracted, so that bad
        data is refused before the expensive work (kinds override it; the default checks nothing)."""

    def score_activations(self, activations: dict[str, np.ndarray], seed: int = 0,
                          device: str | torch.device = "cpu", memory_budget: int | None = None) -> Scores:
        """Score precomputed activations (rows aligned with `self.stimuli().ids`).

        `memory_budget` (bytes) bounds the kind's working memory where it chunks (None: from free
        memory). Returns Scores; `score` adds the model's identity and provenance.
        """
        raise NotImplementedError

    def score(
        self,
        adapter: Adapter,
        layers: Sequence[str] | None = None,
        batch_size: int = 32,
        device: str | torch.device = "auto",
        seed: int = 0,
        cache: bool | ActivationCache = True,
        memory_budget: int | None = None,
    ) -> ScoreResult:
        """Extract the adapter's activations for this benchmark's stimuli and score them.

        `memory_budget` (bytes) bounds the whole score: the extraction (smaller batches), which
        activations are held in memory (larger ones are read lazily from disk) and the kind's
        working memory. A corrupt activation-cache entry found while scoring is reported,
        deleted and recomputed once.
        """
        dev = resolve_device(device)
        start = time.perf_counter()
        if memory_budget is not None:
            bound_heap()  # freed buffers go back to the system: the budget bounds resident memory
        stimuli = self.stimuli()
        self.check_data()
        for attempt in range(2):
            acts = adapter.activations(stimuli, layers, batch_size=batch_size, device=dev, cache=cache,
                                       memory_budget=memory_budget)
            try:
                scores = self.score_activations(acts, seed=seed, device=dev, memory_budget=memory_budget)
                break
            except CacheCorruptError as exc:
                if attempt or not cache:
                    raise
                store = cache if isinstance(cache, ActivationCache) else ActivationCache()
                store.discard(Path(exc.path), f"failed its checksum while scoring ({exc.why})")
                for values in acts.values():  # any other corrupt entry goes too, before the rerun
                    if isinstance(values, LayerArray) and values.path.exists() and not values.verify():
                        values.close()
                        store.discard(values.path, "failed its checksum")
            finally:
                for values in acts.values():
                    if isinstance(values, LayerArray):
                        values.close()
        readout = getattr(adapter, "readout", None)
        config = self.configuration(adapter, layers, seed)
        return ScoreResult.from_scores(scores, model=adapter.identifier, weights_id=adapter.weights_id,
                                       trained=adapter.trained, benchmark=self.identifier, provenance={
            "neurobench_version": __version__,
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "weights_sha256": adapter.weights_id,
            "data_hashes": self.data_hashes(),
            "stimulus_set_hash": stimuli.content_hash(),
            "preprocess": adapter.extraction_id,
            "readout": readout.to_record() if readout is not None else {"spec": "none"},
            "precision": getattr(adapter, "precision", "float32"),
            "memory_budget": memory_budget,
            "seed": seed,
            "device": str(dev),
            "duration_s": round(time.perf_counter() - start, 3),
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "options": {k: _jsonable(v) for k, v in self.option_values().items()},
            "configuration": config,
            "fingerprint": fingerprint(config),
            "differences": differences(config, self.default_options),
        })


_CHECK_ROWS_BYTES = 64 * 2**20  # activations are checked for inf/NaN in blocks of rows of this size


def check_activations(activations: Mapping[str, Any], ids: Sequence, what: str = "") -> None:
    """Refuse activations a kind cannot score, naming the layer and the stimulus.

    Every layer must be a numeric (stimuli x units) matrix with one row per id of `ids` (in that
    order), at least one unit, and only finite values (inf is an overflow in the model or in a
    float16/float32 read-out; NaN an undefined value): InvalidInputError otherwise.
    """
    where = f"{what}: " if what else ""
    if not isinstance(activations, Mapping) or not activations:
        raise InvalidInputError(f"{where}activations must be a non-empty mapping of layer name -> (stimuli x units) "
                                f"array; got {type(activations).__name__}")
    for layer, acts in activations.items():
        shape = tuple(getattr(acts, "shape", np.shape(acts)))
        if len(shape) != 2:
            raise InvalidInputError(f"{where}layer {layer!r}: activations of shape {shape}; expected a (stimuli x units) "
                                    "matrix (flatten each stimulus's activations to one row)")
        if shape[0] != len(ids):
            raise InvalidInputError(f"{where}layer {layer!r}: {shape[0]} activation rows for {len(ids)} stimuli; "
                                    "extract activations for the benchmark's own stimulus set")
        if shape[1] == 0:
            raise InvalidInputError(f"{where}layer {layer!r} has no units (width 0): there is nothing to score; "
                                    "choose another layer (--layers) or check the model's read-out")
        dtype = acts.dtype if hasattr(acts, "dtype") else np.asarray(acts).dtype
        if isinstance(dtype, torch.dtype):
            numeric = dtype.is_floating_point or not (dtype.is_complex or dtype == torch.bool)
            floating = dtype.is_floating_point
        else:
            numeric = np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.complexfloating)
            floating = np.issubdtype(dtype, np.floating)
        if not numeric:
            raise InvalidInputError(f"{where}layer {layer!r}: activations of dtype {dtype}; expected real numbers")
        if not floating:
            continue
        step = max(1, _CHECK_ROWS_BYTES // max(1, shape[1] * 8))
        for r0 in range(0, shape[0], step):
            block = acts[r0:r0 + step]
            if isinstance(block, torch.Tensor):
                bad = ~torch.isfinite(block)
                found = bad.nonzero(as_tuple=True) if bool(bad.any()) else None
            else:
                bad = ~np.isfinite(np.asarray(block))
                found = bad.nonzero() if bad.any() else None
            if found is not None:
                r, c = int(found[0][0]), int(found[1][0])
                value = float(block[r, c])
                kind = "NaN" if value != value else ("+inf" if value > 0 else "-inf")
                raise InvalidInputError(
                    f"{where}layer {layer!r} has non-finite activations: {kind} for stimulus {ids[r0 + r]!r} (row "
                    f"{r0 + r}), unit {c}. inf is an overflow (in the model, or in a float16 read-out), NaN an "
                    "undefined value: fix the model or its weights, or score other layers (--layers)")


def _jsonable(value):
    """Option values as JSON-friendly data (tuples to lists, objects to their record or repr)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_record"):
        rec = value.to_record()
        return {k: v for k, v in rec.items() if k != "folds"}
    return repr(value)
