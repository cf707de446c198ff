"""The topographic kind: a signature of a model's cortical sheet, per layer, on a stimulus set.

A signature is a function `(responses (n_stimuli, n_units), positions (n_units, 2) or None,
stimulus labels, seed, device) -> (value, ci_low, ci_high, extra columns)`; a signature with an
interval names its convention in the extra column `interval` (`neurobench.conventions`). The
values are not normalised scores (normalisation `none`). The headline is the
mean over the scored layers that have sheet positions (a signature of the whole model, no layer
picked by peeking); the per-layer table carries every layer's value with its p-value or CI.
There is no noise ceiling: the signature describes the model, not brain data. Conv layers are
read one value per channel (spatial mean), so units match their positions on the sheet; language
models give one value per unit already (their adapter pools each text's tokens).

A benchmark may declare the contrasts of its stimulus set (`contrasts`, over the label column
`label_column`), which `neurobench topo --stimuli <dataset>` maps on every sheet layer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..conventions import NO_INTERVAL, NO_NORMALIZATION
from ..data.stimuli import StimulusSet
from ..errors import InvalidInputError, NoSheetPositionsError
from ..result import LAYER_COLUMNS, Scores
from ..topography import NO_POSITIONS_HINT
from .base import Benchmark

NO_CEILING = "topographic signature of the model itself: no brain data, so no noise ceiling"


class TopographicBenchmark(Benchmark):
    """Scores one signature on every requested layer that has sheet positions (module docstring)."""

    def __init__(self, identifier: str, description: str, metric: str, fn: Callable,
                 load_stimuli: Callable[[], StimulusSet], datasets: tuple[str, ...] = (),
                 needs_positions: bool = True, contrasts: tuple = (), label_column: str | None = None,
                 **options):
        self.identifier, self.description, self.metric = identifier, description, metric
        self.datasets = datasets
        self.contrasts, self.label_column = tuple(contrasts), label_column
        self._fn, self._needs_positions = fn, needs_positions
        self._load_stimuli = load_stimuli
        self._adapter = None
        self.configure(**options)

    def score(self, adapter, layers=None, **kwargs):
        # one value per channel, so units match the sheet's positions; the adapter's own read-out
        # is restored afterwards so other benchmarks in the same run see it unchanged
        previous = adapter.readout
        if previous is None and getattr(self.stimuli(), "modality", "image") == "image":
            adapter.with_readout(pool="mean")
        self._adapter = adapter
        try:
            return super().score(adapter, layers, **kwargs)
        finally:
            adapter.readout = previous
            self._adapter = None

    def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
        labels = self.stimuli().labels
        rows, skipped = [], []
        for layer, x in activations.items():
            pos = self._adapter.sheet_positions(layer) if self._adapter is not None else None
            if pos is None and self._needs_positions:
                skipped.append(layer)
                continue
            raw, lo, hi, extra = self._fn(np.asarray(x), pos, labels, seed, str(device))
            extra = dict(extra)
            interval = extra.pop("interval", None)
            if interval is None and np.isfinite([lo, hi]).any():
                raise InvalidInputError(f"{self.identifier}: the signature gives an interval but no 'interval' column "
                                        "naming its convention (neurobench.conventions)")
            rows.append({"layer": layer, "raw": raw, "ci_low": lo, "ci_high": hi,
                         "ceiling": np.nan, "normalized": np.nan, "interval": interval or NO_INTERVAL, **extra})
        if not rows:
            raise NoSheetPositionsError(
                f"{self.identifier}: no requested layer has sheet positions (skipped {skipped}). "
                f"{NO_POSITIONS_HINT}"
            )
        table = pd.DataFrame(rows)
        table = table[LAYER_COLUMNS + [c for c in table.columns if c not in LAYER_COLUMNS]]
        return Scores(
            layers=table,
            best_layer="(mean over layers)", raw=float(table["raw"].mean()),
            ci_low=float("nan"), ci_high=float("nan"), ceiling=None, normalized=None,
            selection=f"mean over {len(rows)} layer(s)"
            + (" with sheet positions" if self._needs_positions else "")
            + (f"; skipped {skipped}" if skipped else ""),
            ceiling_note=NO_CEILING, metric=self.metric, normalization=NO_NORMALIZATION, interval=NO_INTERVAL,
        )
