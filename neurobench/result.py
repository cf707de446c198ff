"""Scores (what a benchmark computes from activations) and ScoreResult (the same, for a named model,
with provenance): per-layer table, headline, ceiling, CI."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

LAYER_COLUMNS = ["layer", "raw", "ci_low", "ci_high", "ceiling", "normalized"]


@dataclass(kw_only=True)
class Scores:
    """What a benchmark computes from a model's activations, before the model is named.

    `layers` has one row per scored layer (LAYER_COLUMNS, plus benchmark-specific columns).
    The headline (`raw`, `normalized`, `ci_*`) is the best layer's, chosen as `selection` says.
    `ceiling` is None when the data give no ceiling; `ceiling_note` then says why.
    `Benchmark.score` turns Scores into a ScoreResult by adding the model's identity and the
    run's provenance.
    """

    layers: pd.DataFrame
    best_layer: str
    raw: float
    ci_low: float
    ci_high: float
    ceiling: float | None
    normalized: float | None
    selection: str
    ceiling_note: str = ""
    ceiling_lower: float | None = None
    ceiling_upper: float | None = None
    metric: str = ""
    per_target: Any = None
    provenance: dict[str, Any] = field(default_factory=dict)
    bootstrap: dict[str, dict[str, Any]] | None = None  # layer -> {"raw": (B,), "normalized": (B,)}; not stored
    layer_targets: dict[str, pd.DataFrame] | None = None  # every layer's per-target values, when asked; not stored
    targets: pd.DataFrame | None = None  # every layer's (and subject's) per-target values, long; stored as a sidecar
    target_space: dict[str, dict] | None = None  # subject -> voxel-index columns, volume shape, affine (brain maps)


@dataclass(kw_only=True)
class ScoreResult(Scores):
    """What a benchmark says about a model: its Scores plus the model's identity and provenance."""

    model: str
    weights_id: str
    trained: bool
    benchmark: str

    @classmethod
    def from_scores(cls, scores: Scores, *, model: str, weights_id: str, trained: bool, benchmark: str,
                    provenance: dict[str, Any] | None = None) -> ScoreResult:
        fields_ = {f.name: getattr(scores, f.name) for f in dataclasses.fields(Scores)}
        fields_["provenance"] = {**scores.provenance, **(provenance or {})}
        return cls(model=model, weights_id=weights_id, trained=trained, benchmark=benchmark, **fields_)

    @property
    def model_display(self) -> str:
        return self.model if self.trained else f"{self.model} [untrained]"

    def to_frame(self) -> pd.DataFrame:
        """The per-layer table with model and benchmark columns, ready for pandas/xarray work."""
        frame = self.layers.copy()
        frame.insert(0, "benchmark", self.benchmark)
        frame.insert(0, "model", self.model_display)
        frame["is_best"] = frame["layer"] == self.best_layer
        return frame

    def summary(self) -> str:
        def fmt(x):
            return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"

        lines = [
            f"{self.model_display} on {self.benchmark}: best layer {self.best_layer}",
            f"  raw {fmt(self.raw)} [{fmt(self.ci_low)}, {fmt(self.ci_high)}], ceiling {fmt(self.ceiling)}, "
            f"normalised {fmt(self.normalized)}",
            f"  layer selection: {self.selection}",
        ]
        if self.ceiling_note:
            lines.append(f"  ceiling: {self.ceiling_note}")
        return "\n".join(lines)
