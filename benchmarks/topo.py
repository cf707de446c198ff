"""`topo.*` benchmarks: topographic signatures of a model's sheet layers on the 92 objects.

They register through the `neurobench.plugins` entry point like any other benchmark. Headline = mean over the scored layers that
have sheet positions (a signature of the whole model, no layer picked by peeking); the per-layer
table carries every layer's value with its p-value or CI. There is no noise ceiling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurobench.benchmarks.kriegeskorte2008 import load_stimuli
from neurobench.errors import NoSheetPositionsError
from neurobench.kinds.base import Benchmark
from neurobench.registry import register_benchmark
from neurobench.result import LAYER_COLUMNS, Scores
from neurobench.topography import (
    NO_POSITIONS_HINT,
    effective_dimensionality,
    selectivity,
    smoothness,
)

NO_CEILING = "topographic signature of the model itself: no brain data, so no noise ceiling"


def _smoothness(x, pos, labels, seed, device):
    r = smoothness(x, pos, seed=seed, device=device)
    return r.score, np.nan, np.nan, {"p_value": r.p_value, "z": r.z, "n_constant": r.n_constant}


def _face_clusters(x, pos, labels, seed, device):
    lab = np.where(labels["face"].to_numpy(bool), "face", "non-face")
    s = selectivity(x, lab, pos, categories=["face"], seed=seed).per_category["face"]
    return s.moran.i, np.nan, np.nan, {"morans_i_p": s.moran.p_value,
                                       "n_clusters": s.clusters.n_clusters,
                                       "largest_cluster": s.clusters.largest,
                                       "largest_cluster_p": s.clusters.largest_p,
                                       "selective_fraction": s.selective_fraction}


def _effective_dim(x, pos, labels, seed, device):
    r = effective_dimensionality(x, seed=seed, device=device)
    return r.participation_ratio, r.ci_low, r.ci_high, {"n_constant": r.n_constant}


class TopoBenchmark(Benchmark):
    """Scores one signature on every requested layer that has sheet positions."""

    def __init__(self, identifier, description, metric, fn, needs_positions=True):
        self.identifier, self.description, self.metric = identifier, description, metric
        self.datasets = ("kriegeskorte2008",)
        self._fn, self._needs_positions = fn, needs_positions
        self._load_stimuli = load_stimuli
        self._adapter = None

    def score(self, adapter, layers=None, **kwargs):
        # one value per channel, so units match the sheet's positions; the adapter's own read-out
        # is restored afterwards so other benchmarks in the same run see it unchanged
        previous = adapter.readout
        if previous is None:
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
            rows.append({"layer": layer, "raw": raw, "ci_low": lo, "ci_high": hi,
                         "ceiling": np.nan, "normalized": np.nan, **extra})
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
            ceiling_note=NO_CEILING, metric=self.metric,
        )


@register_benchmark("topo.smoothness", dataset="kriegeskorte2008")
def topo_smoothness():
    """Near-minus-far tuning similarity on the sheet, centred on shuffled positions (92 objects)"""
    return TopoBenchmark("topo.smoothness", topo_smoothness.__doc__, "topo-smoothness", _smoothness)


@register_benchmark("topo.face-selectivity-clusters", dataset="kriegeskorte2008")
def topo_face_clusters():
    """Moran's I of face-vs-rest t maps, with face patch counts and sizes (92 objects)"""
    return TopoBenchmark("topo.face-selectivity-clusters", topo_face_clusters.__doc__,
                         "topo-face-morans-i", _face_clusters)


@register_benchmark("topo.effective-dim", dataset="kriegeskorte2008")
def topo_effective_dim():
    """Participation ratio of layer responses to the 92 objects, bootstrap CI over stimuli"""
    return TopoBenchmark("topo.effective-dim", topo_effective_dim.__doc__, "participation-ratio",
                         _effective_dim, needs_positions=False)
