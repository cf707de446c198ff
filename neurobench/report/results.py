"""Stored results read back for reports: one `StoredResult` per scored (model, weights, benchmark),
with its headline, every layer's row, its provenance and conventions (read-only, through
`ResultStore.rows()`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..errors import DataUnavailableError
from ..store import ResultStore


@dataclass
class StoredResult:
    """One stored result: `headline` (the held-out score of the selected layer, as a dict of the
    scores table's columns), `layers` (every layer on all stimuli, DataFrame with the details
    JSON expanded into columns), `provenance` (dict) and `notes` (list)."""

    model: str
    trained: bool
    weights_sha256: str
    benchmark: str
    result_id: str
    headline: dict[str, Any]
    layers: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def model_display(self) -> str:
        return self.model if self.trained else f"{self.model} [untrained]"

    @property
    def ceiling_bounds(self) -> tuple[float | None, float | None]:
        """(lower, upper) of the headline's ceiling; upper None where the ceiling has none."""
        details = _json(self.headline.get("details"), {})
        lower = details.get("ceiling_lower", _value(self.headline.get("ceiling")))
        return _value(lower), _value(details.get("ceiling_upper"))

    @property
    def step(self) -> float | None:
        """The checkpoint step, where the provenance records one (`step` or `checkpoint_step`)."""
        for key in ("step", "checkpoint_step"):
            if key in self.provenance:
                return _value(self.provenance[key])
        return None


def _json(text, default):
    try:
        return json.loads(text) if isinstance(text, str) and text else default
    except ValueError:
        return default


def _value(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def stored_results(store: ResultStore, models: list[str] | None = None,
                   benchmarks: list[str] | None = None, latest: bool = True) -> list[StoredResult]:
    """The results in `store` (the latest of each (model, weights, benchmark) when `latest`),
    optionally only those of `models` (ids, with or without ' [untrained]') and of benchmarks
    named or starting with a prefix in `benchmarks`. Raises DataUnavailableError naming what the
    store holds when nothing matches."""
    rows = store.rows()
    if rows.empty:
        raise DataUnavailableError(f"no results in {store.path}: run `neurobench score --model ...` first")
    if models:
        bare = {m.removesuffix(" [untrained]") for m in models}
        found = rows[rows["model"].isin(bare)]
        if found.empty:
            raise DataUnavailableError(f"no results of {sorted(bare)} in {store.path}; models there: "
                                       f"{sorted(set(rows['model']))}")
        rows = found
    if benchmarks:
        keep = [any(b == p or b.startswith(p) for p in benchmarks) for b in rows["benchmark"]]
        if not any(keep):
            raise DataUnavailableError(f"no results on {benchmarks} in {store.path}; benchmarks there: "
                                       f"{sorted(set(rows['benchmark']))}")
        rows = rows[keep]
    out = []
    for result_id, part in rows.groupby("result_id", sort=False):
        heads = part[part["row_kind"] == "headline"]
        if heads.empty:
            continue
        head = heads.iloc[0].to_dict()
        layers = part[part["row_kind"] == "layer"].reset_index(drop=True)
        details = pd.DataFrame([_json(d, {}) for d in layers["details"]])
        layers = pd.concat([layers.drop(columns=["details"]), details], axis=1)
        out.append(StoredResult(model=head["model"], trained=bool(head["trained"]),
                                weights_sha256=head["weights_sha256"], benchmark=head["benchmark"],
                                result_id=result_id, headline=head, layers=layers,
                                provenance=_json(head.get("provenance"), {}), notes=_json(head.get("notes"), [])))
    out.sort(key=lambda r: int(r.headline["id"]))
    if latest:
        last: dict[tuple, StoredResult] = {}
        for r in out:
            last[(r.model, r.weights_sha256, r.benchmark)] = r
        out = list(last.values())
    return out
