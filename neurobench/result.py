"""Scores (what a benchmark computes from activations) and ScoreResult (the same, for a named model,
with provenance): per-layer table, headline, ceiling, CI."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .conventions import NO_INTERVAL, NO_NORMALIZATION, check_convention

LAYER_COLUMNS = ["layer", "raw", "ci_low", "ci_high", "ceiling", "normalized"]


@dataclass(kw_only=True)
class Scores:
    """What a benchmark computes from a model's activations, before the model is named.

    `layers` has one row per scored layer (LAYER_COLUMNS, plus benchmark-specific columns).
    The headline (`raw`, `normalized`, `ci_*`) is the best layer's, chosen as `selection` says.
    `ceiling` is None when the data give no ceiling; `ceiling_note` then says why.
    `Benchmark.score` turns Scores into a ScoreResult by adding the model's identity and the
    run's provenance.

    Conventions (`neurobench.conventions`, docs/conventions.md): `normalization` names how
    `normalized` was computed and `interval` what `ci_low` / `ci_high` resample; both are required
    when there is a normalised value / an interval ("none" otherwise, the default then). The
    per-layer table may carry its own `normalization` / `interval` columns where rows differ from
    the headline. `other_normalizations` holds the headline under other conventions (e.g.
    Brain-Score's explained variance), keyed by convention name; the per-layer table carries them
    as columns of the same names. `notes` are warnings a reader of the score must see (e.g. ridge
    alphas at the edge of their grid).
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
    normalization: str | None = None
    interval: str | None = None
    other_normalizations: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    per_target: Any = None
    provenance: dict[str, Any] = field(default_factory=dict)
    bootstrap: dict[str, dict[str, Any]] | None = None  # layer -> {"raw": (B,), "normalized": (B,)}; not stored
    layer_targets: dict[str, pd.DataFrame] | None = None  # every layer's per-target values, when asked; not stored
    targets: pd.DataFrame | None = None  # every layer's (and subject's) per-target values, long; stored as a sidecar
    target_space: dict[str, dict] | None = None  # subject -> voxel-index columns, volume shape, affine (brain maps)

    def __post_init__(self) -> None:
        has_value = self.normalized is not None and not _nan(self.normalized) or (
            "normalized" in self.layers and self.layers["normalized"].notna().any())
        if self.normalization is None and not has_value:
            self.normalization = NO_NORMALIZATION
        has_ci = not (_nan(self.ci_low) and _nan(self.ci_high)) or (
            "ci_low" in self.layers and self.layers["ci_low"].notna().any())
        if self.interval is None and not has_ci:
            self.interval = NO_INTERVAL
        check_convention("normalization", self.normalization, "Scores.normalization (the convention of `normalized`)")
        check_convention("interval", self.interval, "Scores.interval (what `ci_low` / `ci_high` resample)")
        for name in self.other_normalizations:
            check_convention("normalization", name, "each key of Scores.other_normalizations")
        for column in ("normalization", "interval"):
            if column in self.layers:
                for value in self.layers[column].unique():
                    check_convention(column, value, f"the per-layer table's {column!r} column")

    def layer_conventions(self) -> pd.DataFrame:
        """The per-layer table with `normalization` and `interval` columns (the headline's where the
        table has none)."""
        table = self.layers.copy()
        if "normalization" not in table:
            table["normalization"] = self.normalization
        if "interval" not in table:
            table["interval"] = self.interval
        return table


def _nan(x) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return False


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
            f"  raw {fmt(self.raw)} [{fmt(self.ci_low)}, {fmt(self.ci_high)}] (interval: {self.interval}), "
            f"ceiling {fmt(self.ceiling)}, normalised {fmt(self.normalized)} ({self.normalization})",
            f"  layer selection: {self.selection}",
        ]
        lines += [f"  also: {name} {fmt(value)}" for name, value in self.other_normalizations.items()]
        if self.ceiling_note:
            lines.append(f"  ceiling: {self.ceiling_note}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)
