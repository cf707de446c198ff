"""TDANN's smoothness (Margalit et al., Neuron 2024; code `neuroailab/TDANN`, `spacetorch`).

TDANN summarises a curve that tracks how much some quantity *changes* with cortical distance
(e.g. the mean absolute difference in category selectivity between two units, per distance bin)
by `spacetorch.utils.spatial_utils.smoothness`:

    smoothness = (max(curve) - curve[0]) / max(curve)

after cutting the curve at its first empty (NaN) bin; a flat curve (peak-to-peak 0) scores 1, as
in their code. A map whose neighbours are alike has a small first bin and scores near 1; a map
with no organisation has a flat curve, near 0 once it is not exactly flat.

`tdann_category_smoothness` builds the curve as TDANN's `category_smoothness` (spacetorch
`maps/it_map.py`) does for IT: each unit's category selectivity is TDANN's t statistic (category
vs the other stimuli, unpooled variances with population SDs: `array_utils.tstat`); in each of
`n_samples` seeded random samples of `sample_size` units, the absolute selectivity difference of
every unit pair is averaged in `n_bins` equal-width distance bins (half-open [low, high), edges
from the first sample's distances, as `agg_by_distance`); each sample's curve gets a smoothness
and the result is their mean (NaN-aware). The chance level repeats this with the pairs'
distances shuffled. Differences from TDANN's setting: sheet distances are in the model's grid
units (TDANN: millimetres, pairs beyond 60 mm dropped; here `distance_cutoff`, default none);
TDANN drops units whose mean response is <= 0.5 (a threshold in its own units), we drop constant
units; a layer with at most `sample_size` units is one exact sample.

neurobench's own near-minus-far score (`smoothness.py`, benchmark `topo.near-far-similarity`) is
a different quantity; docs/topography.md sets the two side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from ._common import UnitMask, as_responses, require_positions


def tdann_smoothness(curve) -> float:
    """TDANN's smoothness of one curve: (max(curve) - curve[0]) / max(curve), the curve cut at its
    first NaN; 1.0 for a flat curve (`spacetorch.utils.spatial_utils.smoothness`)."""
    c = np.asarray(curve, dtype=np.float64).reshape(-1)
    nans = np.flatnonzero(np.isnan(c))
    if len(nans):
        c = c[: nans[0]]
    if c.size == 0:
        raise InvalidInputError("TDANN smoothness needs a curve whose first bin is not empty (NaN)")
    if np.ptp(c) == 0:
        return 1.0
    return float((c.max() - c[0]) / c.max())


def tdann_tstat(on: np.ndarray, off: np.ndarray) -> np.ndarray:
    """TDANN's selectivity t per unit: (mean_on - mean_off) / sqrt(sd_on^2/n_on + sd_off^2/n_off),
    population SDs (ddof 0), 0 where the denominator is 0 (`spacetorch.utils.array_utils.tstat`)."""
    denom = np.sqrt(on.var(axis=0) / len(on) + off.var(axis=0) / len(off))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom == 0, 0.0, (on.mean(axis=0) - off.mean(axis=0)) / np.where(denom == 0, 1.0, denom))


def binned_means(distances: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of `values` per half-open distance bin [edges[i], edges[i+1]); NaN for an empty bin
    (so a pair exactly at the last edge falls in no bin, as in TDANN's `agg_by_distance`)."""
    idx = np.searchsorted(edges, distances, side="right") - 1
    ok = (idx >= 0) & (idx < len(edges) - 1)
    n = len(edges) - 1
    counts = np.bincount(idx[ok], minlength=n)
    sums = np.bincount(idx[ok], weights=values[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


@dataclass(frozen=True)
class TDANNSmoothnessResult:
    """Curves of |selectivity difference| vs distance and TDANN's smoothness of them."""

    bin_edges: np.ndarray  # (n_bins + 1,)
    curves: np.ndarray  # (n_samples, n_bins): mean |t_i - t_j| per distance bin, NaN if empty
    chance_curves: np.ndarray  # the same with the pairs' distances shuffled
    smoothness: float  # NaN-mean over samples of tdann_smoothness(curve)
    chance: float  # the same for the shuffled curves
    n_units: int
    n_constant: int
    n_samples: int
    sample_size: int
    seed: int


def tdann_category_smoothness(responses, in_category, positions, *, n_samples: int = 500,
                              sample_size: int = 500, n_bins: int = 20, distance_cutoff: float | None = None,
                              seed: int = 0, layer: str | None = None) -> TDANNSmoothnessResult:
    """TDANN's category-selectivity smoothness of one layer (module docstring).

    responses: (n_stimuli, n_units); in_category: (n_stimuli,) bool, True for the category's
    stimuli; positions: (n_units, d) sheet or volume coordinates.
    """
    x = as_responses(responses)
    pos = require_positions(positions, x.shape[1], layer)
    on = np.asarray(in_category, dtype=bool).reshape(-1)
    if on.size != x.shape[0]:
        raise InvalidInputError(f"{on.size} category flags for {x.shape[0]} stimuli")
    if on.sum() < 2 or (~on).sum() < 2:
        raise InvalidInputError(f"the category needs >= 2 stimuli in and out of it; got {int(on.sum())} in, "
                                f"{int((~on).sum())} out")
    if n_bins < 1 or n_samples < 1 or sample_size < 2:
        raise InvalidInputError(f"need n_bins >= 1, n_samples >= 1, sample_size >= 2; got {n_bins}, "
                                f"{n_samples}, {sample_size}")
    mask = UnitMask.of(x)
    x, pos = x[:, mask.valid], pos[mask.valid]
    n = x.shape[1]
    if n < 3:
        raise InvalidInputError(f"TDANN smoothness needs >= 3 non-constant units, got {n}")
    sel = tdann_tstat(x[on], x[~on])
    rng = np.random.default_rng(seed)
    size = min(sample_size, n)
    draws = 1 if size == n else n_samples  # all units: every sample would be the same
    edges, curves, chance = None, [], []
    for _ in range(draws):
        idx = np.sort(rng.choice(n, size=size, replace=False)) if size < n else np.arange(n)
        i, j = np.tril_indices(size, -1)
        diff = np.abs(sel[idx[i]] - sel[idx[j]])
        d = np.linalg.norm(pos[idx[i]] - pos[idx[j]], axis=1)
        if distance_cutoff is not None:
            keep = d <= distance_cutoff
            d, diff = d[keep], diff[keep]
        if edges is None:
            edges = np.histogram_bin_edges(d, bins=n_bins)
        curves.append(binned_means(d, diff, edges))
        chance.append(binned_means(rng.permutation(d), diff, edges))
    curves, chance = np.stack(curves), np.stack(chance)

    def mean_smoothness(cs):
        values = [tdann_smoothness(c) if not np.isnan(c[0]) else np.nan for c in cs]
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    return TDANNSmoothnessResult(bin_edges=edges, curves=curves, chance_curves=chance,
                                 smoothness=mean_smoothness(curves), chance=mean_smoothness(chance),
                                 n_units=n, n_constant=mask.n_constant, n_samples=draws, sample_size=size,
                                 seed=seed)
