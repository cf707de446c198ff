"""Benchmark base class: owns stimuli and data, scores a model's layers, returns a ScoreResult."""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np
import torch

from .. import __version__
from ..data.files import availability, recorded_digest, select_files
from ..data.stimuli import StimulusSet
from ..devices import resolve_device
from ..models.adapter import Adapter
from ..result import ScoreResult

log = logging.getLogger(__name__)


class Benchmark:
    """Subclasses set `identifier`, `datasets` (manifest names) and implement `stimuli` and
    `score_activations`. Data loading is lazy so `neurobench list` stays instant."""

    identifier: str = ""
    description: str = ""
    datasets: tuple[str, ...] = ()
    metric: str = ""

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

    def score_activations(self, activations: dict[str, np.ndarray], seed: int, device: torch.device) -> ScoreResult:
        """Score precomputed activations (rows aligned with `self.stimuli().ids`).

        The returned ScoreResult has model fields left empty; `score` fills them.
        """
        raise NotImplementedError

    def score(
        self,
        adapter: Adapter,
        layers: Sequence[str] | None = None,
        batch_size: int = 32,
        device: str | torch.device = "auto",
        seed: int = 0,
        cache: bool = True,
    ) -> ScoreResult:
        dev = resolve_device(device)
        start = time.perf_counter()
        stimuli = self.stimuli()
        acts = adapter.activations(stimuli, layers, batch_size=batch_size, device=dev, cache=cache)
        result = self.score_activations(acts, seed=seed, device=dev)
        result.model, result.weights_id, result.trained = adapter.identifier, adapter.weights_id, adapter.trained
        result.benchmark = self.identifier
        result.provenance.update({
            "neurobench_version": __version__,
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "weights_sha256": adapter.weights_id,
            "data_hashes": self.data_hashes(),
            "stimulus_set_hash": stimuli.content_hash(),
            "preprocess": adapter.extraction_id,
            "seed": seed,
            "device": str(dev),
            "duration_s": round(time.perf_counter() - start, 3),
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        return result
