"""Synthetic ground-truth encoding benchmarks that ship with neurobench (no download).

Stimuli are 1,000 random 16x16 RGB images. Their hidden features are 8 fixed orthonormal linear
read-outs of the pixels (unit variance, uncorrelated). Responses are known linear maps of the
hidden features, so the true ceiling-normalised score of any feature set is known exactly:

- `synthetic.fmri-encoding`: 200 voxels; 4 runs, each showing every stimulus once in its own
  random order; each trial's response is the voxel's signal for the current stimulus plus 0.3 x
  the signal of the previous stimulus (haemodynamic spill-over) plus AR(1) noise (rho 0.5) at a
  per-trial SNR of 1 (signal variance / noise variance).
- `synthetic.spikes-encoding`: 100 neurons with linear tuning, rate = 6 + 1.5 x (W h) spikes per
  presentation, 6 repetitions of Poisson counts.

Two ground-truth models go with them: `synthetic-oracle` (layers `features`: all hidden
features, true normalised score 1; `half`: the first 6, true score = each target's share of
signal variance carried by those features, see `true_normalized_score`) and
`synthetic-distractor` (8 read-outs orthogonal to the hidden ones, true score 0).

Layers wider than the Johnson-Lindenstrauss dimension for 1,000 stimuli (eps 0.1: 5,920) are
sparse-randomly projected to it before the ridge (recorded in the results); narrower ones are
used as they are.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from neurobench.data.assemblies import repeated_assembly
from neurobench.data.stimuli import StimulusSet
from neurobench.kinds.encoding import EncodingBenchmark
from neurobench.models.adapter import TorchAdapter
from neurobench.models.preprocess import ImagePreprocess
from neurobench.registry import register_benchmark, register_model

N_STIMULI, SIZE, N_FEATURES = 1000, 16, 8
SEED = 20250101
PIXELS = ImagePreprocess(resize=SIZE, crop=SIZE, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


@functools.lru_cache(maxsize=1)
def _images() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    return rng.integers(0, 256, size=(N_STIMULI, SIZE, SIZE, 3), dtype=np.uint8)


def stimuli() -> StimulusSet:
    return StimulusSet("synthetic-1000", [f"syn{i:03d}" for i in range(N_STIMULI)], images=list(_images()))


@functools.lru_cache(maxsize=1)
def _directions() -> np.ndarray:
    """(3*16*16, 16) orthonormal pixel directions: 8 hidden, then 8 distractor."""
    rng = np.random.default_rng(SEED + 1)
    q, _ = np.linalg.qr(rng.standard_normal((3 * SIZE * SIZE, 2 * N_FEATURES)))
    return q


class Readout(torch.nn.Module):
    """Fixed linear read-outs of [0, 1] pixels, scaled to unit variance for uniform pixels."""

    def __init__(self, directions: np.ndarray):
        super().__init__()
        scale = np.sqrt(12.0)  # a uniform [0, 1] pixel has variance 1/12
        w = torch.as_tensor(directions.T * scale, dtype=torch.float32)
        self.features = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            self.features.weight.copy_(w)
            self.features.bias.copy_(-0.5 * w.sum(dim=1))
        self.partial = torch.nn.Identity()

    def forward(self, x):
        # channel-last flattening, matching the (H, W, 3) pixel order of the generator
        h = self.features(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))
        return self.partial(h[:, : N_FEATURES // 2])


def hidden_features(which: str = "hidden") -> np.ndarray:
    """The ground-truth features (1000, 8) the responses are generated from (float64)."""
    pixels = _images().reshape(N_STIMULI, -1).astype(np.float64) / 255.0
    d = _directions()[:, :N_FEATURES] if which == "hidden" else _directions()[:, N_FEATURES:]
    return (pixels - 0.5) @ d * np.sqrt(12.0)


def _model(which: str, seed: int = 0):
    module = Readout(_directions()[:, :N_FEATURES] if which == "oracle" else _directions()[:, N_FEATURES:])
    layers = ["features", "partial"] if which == "oracle" else ["features"]
    return TorchAdapter(module, layers=layers, preprocess=PIXELS, identifier=f"synthetic-{which}",
                        family="ground-truth")


@register_model("synthetic-oracle", family="ground-truth", source="built-in")
def synthetic_oracle(seed: int = 0):
    """Ground truth: carries the synthetic benchmarks' hidden features (true score 1)"""
    return _model("oracle", seed)


@register_model("synthetic-distractor", family="ground-truth", source="built-in")
def synthetic_distractor(seed: int = 0):
    """Ground truth: 8 pixel read-outs orthogonal to the hidden features (true score 0)"""
    return _model("distractor", seed)


def _weights(n_targets: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N_FEATURES, n_targets)) / np.sqrt(N_FEATURES)


def true_normalized_score(kind: str, n_features_carried: int) -> float:
    """Median over targets of the share of signal variance carried by the first k features."""
    w = _weights(*_SHAPES[kind])
    share = (w[:n_features_carried] ** 2).sum(0) / (w ** 2).sum(0)
    return float(np.median(share))


_SHAPES = {"fmri": (200, SEED + 2), "spikes": (100, SEED + 3)}


@functools.lru_cache(maxsize=1)
def fmri_responses():
    n_vox, seed = _SHAPES["fmri"]
    signal = hidden_features() @ _weights(n_vox, seed)  # (1000, 200), unit variance per voxel
    rng = np.random.default_rng(seed + 100)
    runs, rho, spill, noise_sd = 4, 0.5, 0.3, 1.0
    data = np.empty((N_STIMULI, runs, n_vox))
    for r in range(runs):
        order = rng.permutation(N_STIMULI)
        innov = rng.standard_normal((N_STIMULI, n_vox)) * noise_sd * np.sqrt(1 - rho**2)
        noise = np.empty_like(innov)
        noise[0] = rng.standard_normal(n_vox) * noise_sd
        for t in range(1, N_STIMULI):
            noise[t] = rho * noise[t - 1] + innov[t]
        previous = np.vstack([np.zeros((1, n_vox)), signal[order[:-1]]])
        data[order, r] = signal[order] + spill * previous + noise
    return repeated_assembly(data, stimuli().ids, [f"voxel{i:03d}" for i in range(n_vox)])


@functools.lru_cache(maxsize=1)
def spike_responses():
    n_neurons, seed = _SHAPES["spikes"]
    drive = hidden_features() @ _weights(n_neurons, seed)
    rate = np.clip(6.0 + 1.5 * drive, 0.0, None)
    counts = np.random.default_rng(seed + 100).poisson(rate[:, None, :], size=(N_STIMULI, 6, n_neurons))
    return repeated_assembly(counts.astype(np.float64), stimuli().ids, [f"unit{i:03d}" for i in range(n_neurons)])


@register_benchmark("synthetic.fmri-encoding", by_name_only=True, modality="fmri")
def synthetic_fmri():
    """Ground truth: 200 voxels = linear map of hidden features, spill-over, AR(1) noise, 4 runs"""
    return EncodingBenchmark("synthetic.fmri-encoding", synthetic_fmri.__doc__, (), stimuli, fmri_responses,
                             reduction="srp")


@register_benchmark("synthetic.spikes-encoding", by_name_only=True, modality="spikes")
def synthetic_spikes():
    """Ground truth: 100 neurons, Poisson counts from known linear tuning, 6 repetitions"""
    return EncodingBenchmark("synthetic.spikes-encoding", synthetic_spikes.__doc__, (), stimuli, spike_responses,
                             reduction="srp")
