"""Synthetic ground truth for the hierarchy scores and the training chronology (no download).

The generating network, `synthetic-hierarchy`, has 4 layers (`stage1` ... `stage4`) on the
1,000 random 16x16 images of `neurobench.benchmarks.synthetic`; layer k reads 8 pixel
directions of its own (orthonormal across layers, so for uniform pixels the layers carry
uncorrelated unit-variance features). `synthetic-hierarchy-shuffled` is the same network with its
layers listed in the order stage2, stage4, stage1, stage3 (the control: the same features, the
depth order broken).

- `synthetic.area{1..4}-encoding`: 2 subjects x 40 voxels per area, 4 repetitions with unit noise;
  34 voxels of area k are driven by layer k, the other 6 by the other layers (2 each). Area k sits
  at hierarchy position k (`hierarchy.synthetic-spatial`). True spatial score: 0.8 for the
  generating network, 0 for the shuffled one (`true_spatial_score`), if every voxel's best layer
  is its driving layer.
- `synthetic.meg-encoding`: 3 subjects x 6 sensors x 31 bins (0-300 ms, 10 ms); every sensor sums
  each layer's drive under a Gaussian envelope (SD 10 ms) peaking at 80, 110, 170 and 260 ms for
  layers 1-4; 800 single-trial training images, 200 test images x 4 repetitions
  (`hierarchy.synthetic-temporal`). True temporal score: Pearson r of depths (0, 1/3, 2/3, 1) and
  those latencies, 0.976; 0 for the shuffled network (`true_temporal_score`).
- The checkpoint trajectory (`checkpoint_state`, `write_checkpoints`): at training step s, layer
  k reads alpha D_k + (1 - alpha) R_k with alpha = min(1, s / T_k), D_k its final directions, R_k
  random ones orthogonal to every D, T = (200, 400, 600, 800): early layers are learned first.
  Area k's held-out r is proportional to alpha / sqrt(alpha^2 + (1 - alpha)^2), which reaches
  half of its final value at alpha = 1 / (1 + sqrt 3), i.e. step 0.366 T_k (`true_half_steps`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neurobench.benchmarks import synthetic
from neurobench.data.files import sha256_of
from neurobench.kinds.hierarchy import HierarchyBenchmark
from neurobench.kinds.per_subject import PerSubjectEncodingBenchmark, SubjectResponses
from neurobench.kinds.targets import KeepsLayerTargets
from neurobench.kinds.temporal_encoding import TemporalEncodingBenchmark, split_responses
from neurobench.metrics.hierarchy import half_step
from neurobench.models.adapter import TorchAdapter
from neurobench.models.weights import load_strict, read_state_dict
from neurobench.registry import register_benchmark, register_model

N_LAYERS, WIDTH = 4, 8
LAYERS = tuple(f"stage{k + 1}" for k in range(N_LAYERS))
SHUFFLED_ORDER = (1, 3, 0, 2)  # stage2, stage4, stage1, stage3: rank correlation 0 with the true order
SEED = 20250817
SUBJECTS = ("sub-01", "sub-02")
VOXELS, OWN, REPETITIONS = 40, 34, 4
VOLUME = (8, 5, N_LAYERS)  # area k fills the slab z = k
MEG_SUBJECTS = ("sub-01", "sub-02", "sub-03")
N_SENSORS, TIMES = 6, np.round(np.arange(31) * 0.01, 3)
LATENCIES = (0.08, 0.11, 0.17, 0.26)  # s, layers 1-4; cov with the shuffled depths is 0
ENVELOPE_SD = 0.01
N_TRAIN, MEG_REPETITIONS, MEG_NOISE = 800, 4, 0.5
SCHEDULE = (200, 400, 600, 800)  # training step at which layer k reaches its final weights
HALF_ALPHA = 1 / (1 + np.sqrt(3))  # alpha / sqrt(alpha^2 + (1 - alpha)^2) = 1/2


@functools.lru_cache(maxsize=1)
def _directions() -> np.ndarray:
    """(768, 64) orthonormal pixel directions: 4 x 8 final (D), then 4 x 8 initial (R)."""
    rng = np.random.default_rng(SEED)
    q, _ = np.linalg.qr(rng.standard_normal((3 * synthetic.SIZE * synthetic.SIZE, 2 * N_LAYERS * WIDTH)))
    return q


def _alpha(step: float | None) -> np.ndarray:
    if step is None:
        return np.ones(N_LAYERS)
    return np.clip(float(step) / np.asarray(SCHEDULE, dtype=np.float64), 0.0, 1.0)


def checkpoint_state(step: float | None = None) -> dict[str, torch.Tensor]:
    """The network's state dict at a training step (None: the final weights)."""
    q = _directions()
    state = {}
    for k, a in enumerate(_alpha(step)):
        d = q[:, k * WIDTH:(k + 1) * WIDTH]
        r = q[:, (N_LAYERS + k) * WIDTH:(N_LAYERS + k + 1) * WIDTH]
        w = torch.as_tensor((a * d + (1 - a) * r).T * np.sqrt(12.0), dtype=torch.float32)
        state[f"{LAYERS[k]}.weight"] = w
        state[f"{LAYERS[k]}.bias"] = -0.5 * w.sum(dim=1)
    return state


def write_checkpoints(folder: str | Path, steps=(0, 100, 200, 300, 400, 500, 600, 700, 800, 1000)) -> list[Path]:
    """Write the trajectory as `step_<step>.pt` state dicts (torch.save) in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for step in steps:
        path = folder / f"step_{int(step):06d}.pt"
        torch.save(checkpoint_state(step), path)
        out.append(path)
    return out


class HierarchyNet(torch.nn.Module):
    """Four stages on one pixel stream; stage k reads 8 pixel directions of its own."""

    def __init__(self):
        super().__init__()
        for name in LAYERS:
            setattr(self, name, torch.nn.Linear(3 * synthetic.SIZE * synthetic.SIZE, WIDTH))

    def forward(self, x):
        pixels = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # channel-last, as the generator
        return torch.cat([getattr(self, name)(pixels) for name in LAYERS], dim=1)


def _model(identifier: str, order, weights: str | None):
    module = HierarchyNet()
    trained = weights != "random"
    if weights is None:
        state, weights_id = checkpoint_state(None), "synthetic-hierarchy-final"
    elif weights == "random":
        state, weights_id = checkpoint_state(0), "random-step0"
    else:
        state, weights_id = read_state_dict(weights), sha256_of(Path(weights))
    load_strict(module, state, str(weights or "final weights"))
    return TorchAdapter(module, layers=[LAYERS[i] for i in order], preprocess=synthetic.PIXELS, identifier=identifier,
                        family="ground-truth", weights_id=weights_id, trained=trained)


@register_model("synthetic-hierarchy", family="ground-truth", source="built-in")
def synthetic_hierarchy(weights: str | None = None, seed: int = 0):
    """Ground truth: 4 layers driving 4 synthetic areas / MEG latencies in order (weights: a step_*.pt checkpoint)"""
    return _model("synthetic-hierarchy", range(N_LAYERS), weights)


@register_model("synthetic-hierarchy-shuffled", family="ground-truth", source="built-in")
def synthetic_hierarchy_shuffled(weights: str | None = None, seed: int = 0):
    """Control: synthetic-hierarchy with its layers listed out of order (true hierarchy scores 0)"""
    return _model("synthetic-hierarchy-shuffled", SHUFFLED_ORDER, weights)


def layer_features() -> np.ndarray:
    """(1000, 4, 8) the final (generating) features of every layer (float64)."""
    pixels = synthetic._images().reshape(synthetic.N_STIMULI, -1).astype(np.float64) / 255.0
    q = _directions()[:, :N_LAYERS * WIDTH]
    return ((pixels - 0.5) @ q * np.sqrt(12.0)).reshape(-1, N_LAYERS, WIDTH)


def driving_layers() -> np.ndarray:
    """(4 areas, 40 voxels) the layer that drives each voxel."""
    out = np.empty((N_LAYERS, VOXELS), dtype=np.int64)
    for k in range(N_LAYERS):
        others = [j for j in range(N_LAYERS) if j != k]
        out[k] = [k] * OWN + [others[i % len(others)] for i in range(VOXELS - OWN)]
    return out


def true_spatial_score(shuffled: bool = False) -> float:
    """Pearson r of the driving layer's relative depth and the area's position over voxels."""
    order = SHUFFLED_ORDER if shuffled else tuple(range(N_LAYERS))
    depth = np.argsort(order) / (N_LAYERS - 1)  # depth of layer i in the listed order
    drive = driving_layers()
    pos = np.repeat(np.arange(1, N_LAYERS + 1), VOXELS)
    return float(np.corrcoef(depth[drive.reshape(-1)], pos)[0, 1])


def true_temporal_score(shuffled: bool = False) -> float:
    order = SHUFFLED_ORDER if shuffled else tuple(range(N_LAYERS))
    depth = np.argsort(order) / (N_LAYERS - 1)
    return float(np.corrcoef(depth, LATENCIES)[0, 1])


def true_half_steps(steps=None) -> dict[str, float]:
    """Per area benchmark, the step at which its score reaches half of its final value: on the
    continuous trajectory (steps None: 0.366 T_k), or as the chronology estimates it from
    checkpoints at `steps` (linear interpolation of the true score curve between checkpoints;
    its resolution is the checkpoint spacing)."""
    if steps is None:
        return {f"synthetic.area{k + 1}-encoding": float(HALF_ALPHA * SCHEDULE[k]) for k in range(N_LAYERS)}
    steps = np.asarray(steps, dtype=np.float64)
    alpha = np.clip(steps[None, :] / np.asarray(SCHEDULE, dtype=np.float64)[:, None], 0, 1)  # (areas, steps)
    curve = alpha / np.sqrt(alpha ** 2 + (1 - alpha) ** 2)
    half = half_step(steps, curve)
    return {f"synthetic.area{k + 1}-encoding": float(half[k]) for k in range(N_LAYERS)}


@functools.cache
def area_responses(area: int, subject: str) -> np.ndarray:
    """(1000, 4 repetitions, 40 voxels) responses of one area of one subject."""
    s = SUBJECTS.index(subject)
    rng = np.random.default_rng([SEED, area, s])
    feats = layer_features()
    drive = driving_layers()[area]
    w = rng.standard_normal((WIDTH, VOXELS)) / np.sqrt(WIDTH)
    w /= np.linalg.norm(w, axis=0, keepdims=True)  # unit-norm weights: unit signal variance
    signal = np.einsum("nvf,fv->nv", feats[:, drive, :], w)
    return signal[:, None, :] + rng.standard_normal((synthetic.N_STIMULI, REPETITIONS, VOXELS))


class _SyntheticImages:
    """Benchmarks on the synthetic benchmarks' 1,000 images (one stimulus set, loaded once)."""

    _stimuli = None

    def stimuli(self):
        if self._stimuli is None:
            self._stimuli = synthetic.stimuli()
        return self._stimuli


class SyntheticArea(_SyntheticImages, KeepsLayerTargets, PerSubjectEncodingBenchmark):
    """One synthetic area (module docstring): 40 voxels per subject, 4 repetitions, voxel
    coordinates in a small volume for brain maps.

    Parameters
    ----------
    subjects : list of str or None
        sub-01, sub-02 (None: both).
    """

    datasets = ()

    def __init__(self, area: int, **options):
        self.area = area
        self.identifier = f"synthetic.area{area + 1}-encoding"
        self.description = f"Ground truth: synthetic area {area + 1}, 34 of 40 voxels driven by layer {area + 1}"
        self.configure(**options)

    def available_subjects(self):
        return SUBJECTS

    def subject_responses(self, subject: str, **_run) -> SubjectResponses:
        grid = np.stack(np.unravel_index(np.arange(VOXELS), VOLUME[:2]), 1)
        targets = pd.DataFrame({"voxel_i": grid[:, 0], "voxel_j": grid[:, 1], "voxel_k": self.area,
                                "driving_layer": [LAYERS[i] for i in driving_layers()[self.area]]})
        space = {"columns": ["voxel_i", "voxel_j", "voxel_k"], "shape": list(VOLUME),
                 "affine": (np.diag([4.0, 4.0, 4.0, 1.0]) + np.array([[0, 0, 0, -16], [0, 0, 0, -10], [0, 0, 0, -8],
                                                                       [0, 0, 0, 0]])).tolist(),
                 "source": "synthetic (4 mm voxels; area k is the slab voxel_k = k)"}
        return SubjectResponses(subject, synthetic.stimuli().ids, area_responses(self.area, subject), targets=targets,
                                info={"space": space, "n_voxels": VOXELS})


@functools.cache
def meg_responses(subject: str) -> tuple[np.ndarray, np.ndarray]:
    """(train (800, sensors*bins), test (200, 4, sensors*bins)) sensor-major targets."""
    s = MEG_SUBJECTS.index(subject)
    rng = np.random.default_rng([SEED, 99, s])
    feats = layer_features()
    w = rng.standard_normal((N_LAYERS, WIDTH, N_SENSORS))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    drive = np.einsum("nkf,kfs->nks", feats, w)  # (n, layers, sensors)
    env = np.exp(-0.5 * ((TIMES[None, :] - np.asarray(LATENCIES)[:, None]) / ENVELOPE_SD) ** 2)  # (layers, bins)
    signal = np.einsum("nks,kt->nst", drive, env).reshape(synthetic.N_STIMULI, -1)
    train = signal[:N_TRAIN] + MEG_NOISE * rng.standard_normal((N_TRAIN, signal.shape[1]))
    test = signal[N_TRAIN:, None] + MEG_NOISE * rng.standard_normal(
        (synthetic.N_STIMULI - N_TRAIN, MEG_REPETITIONS, signal.shape[1]))
    return train, test


class SyntheticMEG(_SyntheticImages, TemporalEncodingBenchmark):
    """Synthetic time-resolved encoding (module docstring): 6 sensors x 31 bins, 3 subjects.

    Parameters
    ----------
    subjects : list of str or None
        sub-01 .. sub-03 (None: all three).
    """

    datasets = ()
    splits = None
    identifier = "synthetic.meg-encoding"
    description = "Ground truth: 6 sensors x 31 bins, layers 1-4 peaking at 80/110/170/260 ms, 3 subjects"

    def __init__(self, **options):
        self.configure(**options)

    def available_subjects(self):
        return MEG_SUBJECTS

    def subject_responses(self, subject: str, **_run) -> SubjectResponses:
        ids = synthetic.stimuli().ids
        train, test = meg_responses(subject)
        ids, means, test = split_responses(train, test, ids[:N_TRAIN], ids[N_TRAIN:])
        targets = pd.DataFrame({"sensor": np.repeat([f"S{i}" for i in range(N_SENSORS)], len(TIMES)),
                                "time": np.tile(TIMES, N_SENSORS)})
        return SubjectResponses(subject, ids, means, test_ids=ids[N_TRAIN:], test_repetitions=test, targets=targets)


def _register_area(area: int) -> None:
    def factory(**options):
        return SyntheticArea(area, **options)

    factory.__doc__ = f"Ground truth: synthetic area {area + 1} of 4 (34 of 40 voxels driven by layer {area + 1})"
    register_benchmark(f"synthetic.area{area + 1}-encoding", by_name_only=True)(factory)


for _area in range(N_LAYERS):
    _register_area(_area)


@register_benchmark("synthetic.meg-encoding", by_name_only=True)
def synthetic_meg(**options):
    """Ground truth: time-resolved encoding, layers 1-4 peaking at 80, 110, 170, 260 ms"""
    return SyntheticMEG(**options)


AREAS = tuple((f"synthetic.area{k + 1}-encoding", float(k + 1)) for k in range(N_LAYERS))


@register_benchmark("hierarchy.synthetic-spatial", by_name_only=True)
def synthetic_spatial(**options):
    """Ground truth: spatial score over synthetic areas 1-4 (true 0.8; shuffled layers 0)"""
    return HierarchyBenchmark("hierarchy.synthetic-spatial", synthetic_spatial.__doc__, "spatial", AREAS, **options)


@register_benchmark("hierarchy.synthetic-temporal", by_name_only=True)
def synthetic_temporal(**options):
    """Ground truth: temporal score over synthetic MEG (true 0.976; shuffled layers 0)"""
    return HierarchyBenchmark("hierarchy.synthetic-temporal", synthetic_temporal.__doc__, "temporal",
                              [("synthetic.meg-encoding", 1.0)], **options)
