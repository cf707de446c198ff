"""Bridge to Brain-Score (optional extra `neurobench[brainscore]`).

- `NeurobenchBrainModel(adapter, region_layers)`: any neurobench image adapter as a Brain-Score
  BrainModel (passive fixation + recordings); `commit_layers` picks each region's layer from
  neurobench's own per-layer scores.
- `BrainScoreAdapter(brain_model)`: a Brain-Score model (e.g. `brainscore_vision.load_model(id)`)
  as a neurobench adapter whose layers are its recording regions.

With brainscore-vision importable, NeurobenchBrainModel subclasses its BrainModel and returns
brainio NeuroidAssemblies; without it, the same class returns xarray DataArrays with the same
dimensions and coordinates, so the bridge is usable and testable either way.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from neurobench.data.stimuli import StimulusSet
from neurobench.errors import InvalidInputError, LayerError, NeurobenchError, StimulusError
from neurobench.models.adapter import Adapter

log = logging.getLogger(__name__)

try:  # the optional dependency
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    from brainscore_core.supported_data_standards.brainio.stimuli import (
        StimulusSet as BSStimulusSet,
    )
    from brainscore_vision.model_interface import BrainModel

    HAVE_BRAINSCORE = True
except Exception:  # not installed, or its imports fail
    BrainModel, NeuroidAssembly, BSStimulusSet = object, None, None
    HAVE_BRAINSCORE = False

PASSIVE = "passive"


def commit_layers(scores: Mapping[str, object]) -> dict[str, str]:
    """Region -> layer, from per-region neurobench results.

    Each value is a ScoreResult (its `best_layer`, chosen without peeking at test data), a
    DataFrame with `layer` and `score` columns, or a mapping layer -> score (highest wins).
    """
    out = {}
    for region, value in scores.items():
        if hasattr(value, "best_layer"):
            out[region] = value.best_layer
        elif isinstance(value, pd.DataFrame):
            if not {"layer", "score"} <= set(value.columns):
                raise InvalidInputError(f"region {region!r}: a per-layer table needs 'layer' and 'score' columns")
            out[region] = str(value.loc[value["score"].idxmax(), "layer"])
        elif isinstance(value, Mapping) and value:
            out[region] = max(value, key=lambda k: value[k])
        else:
            raise InvalidInputError(f"region {region!r}: expected a ScoreResult, a per-layer table or a mapping")
    return out


def _to_neurobench(stimuli) -> tuple[StimulusSet, pd.DataFrame]:
    """A Brain-Score StimulusSet (or list of image paths) as a neurobench StimulusSet."""
    if isinstance(stimuli, pd.DataFrame):
        if "stimulus_id" not in stimuli.columns or not hasattr(stimuli, "get_stimulus"):
            raise StimulusError("a Brain-Score StimulusSet needs a stimulus_id column and get_stimulus(id)")
        ids = [str(i) for i in stimuli["stimulus_id"]]
        paths = [str(stimuli.get_stimulus(i)) for i in stimuli["stimulus_id"]]
        meta = pd.DataFrame(stimuli).reset_index(drop=True)
        if "stimulus_path" not in meta.columns:
            meta["stimulus_path"] = paths
    else:
        paths = [str(p) for p in stimuli]
        ids = paths
        meta = pd.DataFrame({"stimulus_id": ids, "stimulus_path": paths})
    return StimulusSet("brainscore-stimuli", ids, images=paths), meta


class NeurobenchBrainModel(BrainModel):
    """A neurobench image adapter behind Brain-Score's BrainModel interface."""

    def __init__(self, adapter: Adapter, region_layers: Mapping[str, str], visual_degrees: float = 8,
                 batch_size: int = 32, device: str = "auto"):
        adapter.check_layers(list(region_layers.values()))
        self.adapter, self.region_layers = adapter, dict(region_layers)
        self._degrees, self.batch_size, self.device = visual_degrees, batch_size, device
        self._region: str | None = None
        self._time_bins: list[tuple[int, int]] = [(70, 170)]

    @property
    def identifier(self) -> str:
        return f"neurobench:{self.adapter.display_name}"

    def visual_degrees(self) -> float:
        return self._degrees

    def start_task(self, task: str, fitting_stimuli=None) -> None:
        if task != PASSIVE:
            raise NeurobenchError(
                f"task {task!r} is not supported: the bridge exposes a neurobench adapter's recordings only "
                "(passive fixation); wrap the model in Brain-Score's ModelCommitment for behavioural tasks"
            )

    def start_recording(self, recording_target: str, time_bins: Sequence[tuple[int, int]] = ((70, 170),)) -> None:
        if recording_target not in self.region_layers:
            raise LayerError(f"{self.identifier} has no layer committed to region {recording_target!r}; "
                             f"committed regions: {', '.join(self.region_layers)}")
        self._region, self._time_bins = recording_target, [tuple(map(int, b)) for b in time_bins]

    def look_at(self, stimuli, number_of_trials: int = 1):
        if self._region is None:
            raise NeurobenchError("call start_recording(region, time_bins) before look_at")
        layer = self.region_layers[self._region]
        ours, meta = _to_neurobench(stimuli)
        acts = self.adapter.activations(ours, [layer], batch_size=self.batch_size, device=self.device)[layer]
        values = np.repeat(acts[:, :, None], len(self._time_bins), axis=2)  # a static model: same every bin
        coords = {col: ("presentation", meta[col].to_numpy()) for col in meta.columns}
        coords.update({
            "neuroid_id": ("neuroid", [f"{layer}.{i}" for i in range(acts.shape[1])]),
            "layer": ("neuroid", [layer] * acts.shape[1]),
            "region": ("neuroid", [self._region] * acts.shape[1]),
            "time_bin_start": ("time_bin", [b[0] for b in self._time_bins]),
            "time_bin_end": ("time_bin", [b[1] for b in self._time_bins]),
        })
        da = xr.DataArray(values, coords=coords, dims=["presentation", "neuroid", "time_bin"])
        return NeuroidAssembly(da) if NeuroidAssembly is not None else da


class BrainScoreAdapter(Adapter):
    """A Brain-Score BrainModel read as a neurobench adapter: one layer per recording region.

    Its weights cannot be hashed from outside, so `weights_id` is the Brain-Score identifier
    (override it when you know the weights' hash); responses are averaged over time bins.
    """

    family = "brainscore"

    def __init__(self, brain_model, regions: Sequence[str] = ("V1", "V2", "V4", "IT"),
                 time_bins: Sequence[tuple[int, int]] = ((70, 170),), identifier: str | None = None,
                 weights_id: str | None = None):
        self.brain_model = brain_model
        self.regions = list(regions)
        self.time_bins = [tuple(b) for b in time_bins]
        self.identifier = identifier or f"brainscore:{brain_model.identifier}"
        self.weights_id = weights_id or f"brainscore-{brain_model.identifier}"

    def layers(self) -> list[str]:
        return list(self.regions)

    @property
    def preprocess_id(self) -> str:
        bins = ",".join(f"{a}-{b}" for a, b in self.time_bins)
        return f"brainscore-{self.brain_model.visual_degrees()}deg-bins{bins}"

    def _extract(self, stimuli, layers, batch_size, device):
        if stimuli.modality != "image":
            raise StimulusError(f"{self.identifier} is an image model; {stimuli.identifier!r} holds text")
        with tempfile.TemporaryDirectory(prefix="neurobench-bs-") as tmp:
            paths = {}
            for sid, img in zip(stimuli.ids, stimuli.rgb_images()):
                paths[sid] = Path(tmp) / f"{len(paths):06d}.png"
                img.save(paths[sid])
            frame = pd.DataFrame({"stimulus_id": list(paths)})
            stim = (BSStimulusSet if BSStimulusSet is not None else _LocalStimulusSet)(frame)
            stim.stimulus_paths = paths
            stim.identifier = f"neurobench-{stimuli.content_hash()[:16]}"
            self.brain_model.start_task(PASSIVE)
            out = {}
            for region in layers:
                self.brain_model.start_recording(region, self.time_bins)
                rec = self.brain_model.look_at(stim)
                out[region] = _rows(rec, stimuli.ids)
        return out


class _LocalStimulusSet(pd.DataFrame):
    """Brain-Score's StimulusSet shape (a frame + stimulus_paths) when brainscore is absent."""

    _metadata = ["stimulus_paths", "identifier"]

    def get_stimulus(self, stimulus_id):
        return self.stimulus_paths[stimulus_id]


def _rows(recording, ids: list[str]) -> np.ndarray:
    """(stimuli, neuroids) in `ids` order from a presentation x neuroid [x time_bin] assembly."""
    rec = recording.mean("time_bin") if "time_bin" in recording.dims else recording
    rec = rec.transpose("presentation", "neuroid")
    # brainio turns a lone presentation coordinate into the dimension's own index
    key = "stimulus_id" if "stimulus_id" in rec.coords else "presentation"
    got = [str(s) for s in np.asarray(rec[key].values)]
    pos = {s: i for i, s in enumerate(got)}
    missing = [s for s in ids if s not in pos]
    if missing:
        raise StimulusError(f"the Brain-Score model returned no recording for stimuli {missing[:3]}")
    return np.asarray(rec.values, dtype=np.float32)[[pos[s] for s in ids]]


def load_plugin(identifier: str, **kwargs) -> BrainScoreAdapter:
    """A Brain-Score model plugin by identifier (needs brainscore-vision and its model data)."""
    if not HAVE_BRAINSCORE:
        raise NeurobenchError("Brain-Score is not installed: pip install 'neurobench[brainscore]'")
    from brainscore_vision import load_model

    return BrainScoreAdapter(load_model(identifier), **kwargs)
