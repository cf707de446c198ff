"""Localised processing measured against the brain: how much does a brain score drop when the
most selective contiguous patch for a category is silenced, compared with silencing as many
randomly chosen selective units?

Units are output channels on the sheet; a conv layer's activations are (stimuli, channels x
space) in channel-major order, and silencing a channel sets all its spatial positions to their
mean over stimuli (it then carries no stimulus information). The patch is found from category
labels of the stimuli alone (no brain data), so the brain score is not used twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidInputError
from .selectivity import category_t_maps, most_selective_patch


@dataclass(frozen=True)
class BrainLesionResult:
    """Brain scores (all stimuli, the benchmark's metric) intact, patch-silenced and controls."""

    category: str
    n_silenced: int
    intact: float
    patch: float
    random: np.ndarray  # (n_random,) scores with as many random selective units silenced
    p_value: float  # one-sided: P(random drop >= patch drop), permutation over random draws

    @property
    def patch_drop(self) -> float:
        return self.intact - self.patch

    @property
    def random_drop(self) -> float:
        return float(self.intact - np.mean(self.random))


def _silence(flat: np.ndarray, n_channels: int, channels: np.ndarray) -> np.ndarray:
    x = flat.reshape(flat.shape[0], n_channels, -1).copy()
    x[:, channels] = x[:, channels].mean(axis=0, keepdims=True)
    return x.reshape(flat.shape[0], -1)


def lesion_brain_score(benchmark, activations: np.ndarray, positions, labels, category: str, *,
                       threshold: float = 3.0, n_random: int = 20, seed: int = 0,
                       device: str | torch.device = "cpu") -> BrainLesionResult:
    """Score `benchmark` on one layer intact, with the category's patch silenced, and with
    `n_random` equally sized random sets of selective channels silenced."""
    x = np.asarray(activations, dtype=np.float32)
    pos = np.asarray(positions)
    n_channels = pos.shape[0]
    if x.shape[1] % n_channels:
        raise InvalidInputError(f"{x.shape[1]} activation columns are not a multiple of {n_channels} channels")
    channel_means = x.reshape(x.shape[0], n_channels, -1).mean(axis=2)
    tmaps = category_t_maps(channel_means, labels, categories=[category])
    t = tmaps.of(category)
    patch = most_selective_patch(t, pos, threshold=threshold)
    selective = np.flatnonzero(t > threshold)
    if patch.size == 0:
        raise InvalidInputError(f"no unit is {category}-selective at t > {threshold}; lower the threshold")
    pool = selective if selective.size >= 2 * patch.size else np.arange(n_channels)
    rng = np.random.default_rng(seed)
    variants = {"intact": x, "patch": _silence(x, n_channels, patch)}
    for k in range(n_random):
        variants[f"random{k}"] = _silence(x, n_channels, rng.choice(pool, size=patch.size, replace=False))
    saved = getattr(benchmark, "n_bootstrap", None)
    if saved is not None:
        benchmark.n_bootstrap = 0  # per-layer point scores are all that is needed here
    try:
        table = benchmark.score_activations(variants, seed=seed, device=torch.device(device)).layers
    finally:
        if saved is not None:
            benchmark.n_bootstrap = saved
    score = dict(zip(table["layer"], table["raw"], strict=True))
    random = np.array([score[f"random{k}"] for k in range(n_random)])
    patch_drop = score["intact"] - score["patch"]
    p = (1 + np.sum(score["intact"] - random >= patch_drop)) / (1 + n_random)
    return BrainLesionResult(str(category), int(patch.size), float(score["intact"]), float(score["patch"]),
                             random, float(p))
