"""Smoothness: do units near each other on the sheet share tuning?

Tuning similarity is the Pearson correlation of two units' response profiles over stimuli. The
curve bins it by sheet distance; the null comes from reassigning positions to units at random
(the `shuffled-positions` control), which is exact under "no topography" because units become
exchangeable. See docs/topography.md for the score's definition.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from ..devices import resolve_device, resolve_dtype
from ..errors import InvalidInputError
from ._common import (
    UnitMask,
    as_responses,
    cpu_threads_for,
    perm_p_value,
    permutations,
    require_positions,
    rng_for,
)

log = logging.getLogger(__name__)

NULL_PERCENTILES = (2.5, 97.5)


@dataclass(frozen=True)
class SmoothnessResult:
    """Similarity-vs-distance curve, its shuffled-position null band, and scalar scores."""

    bin_centers: np.ndarray  # (n_bins,) mean distance of the pairs in each non-empty bin
    bin_edges: np.ndarray  # (n_bins, 2) [low, high) of each bin
    similarity: np.ndarray  # (n_bins,) mean tuning correlation per bin
    counts: np.ndarray  # (n_bins,) pairs used per bin
    null_mean: np.ndarray  # (n_bins,) mean over shuffles
    null_low: np.ndarray  # (n_bins,) 2.5th percentile over shuffles
    null_high: np.ndarray  # (n_bins,) 97.5th percentile over shuffles
    score: float  # smoothness: (near - far similarity) minus its shuffled mean
    contrast: float  # near - far similarity, not null-centred
    near_similarity: float
    far_similarity: float
    z: float  # score / sd of the shuffled contrasts
    p_value: float  # one-sided permutation p for contrast
    distance_correlation: float  # -corr(distance, similarity) minus its shuffled mean
    distance_correlation_p: float
    distance_correlation_raw: float  # -corr(distance, similarity) over pairs, not centred
    null_scores: np.ndarray  # (n_perm,) shuffled contrasts, centred like `score`
    near_radius: float
    far_distance: float
    n_units: int  # units used (constant ones excluded)
    n_constant: int
    n_pairs: int
    exact: bool  # all pairs (True) or near pairs + a seeded random sample of the rest (False)
    n_perm: int
    seed: int

    def summary(self) -> dict:
        """Scalars only, for tables and stores."""
        return {k: v for k, v in asdict(self).items() if not isinstance(v, np.ndarray)}


def _standardise(x: np.ndarray) -> np.ndarray:
    z = x - x.mean(axis=0)
    return z / np.sqrt((z**2).mean(axis=0))


@dataclass(frozen=True)
class _PairSet:
    """Which unit pairs enter the curve, their distances, and their weights.

    Small layers: every pair, weight 1 (`subset` = all units). Large layers and volumes: every pair
    within `near_radius` (found with a k-d tree) plus all pairs among a seeded random subset of
    units beyond near_radius, weighted by (#far pairs / #sampled far pairs) so that bin means
    estimate the all-pairs means without bias.
    """

    subset: np.ndarray  # units whose pairs (upper triangle, filtered by `keep`) are used
    flat: np.ndarray  # flat indices into the subset's (m x m) similarity matrix
    near: np.ndarray  # (k, 2) extra near pairs (sampled mode only)
    w: np.ndarray
    d: np.ndarray
    exact: bool

    @property
    def n_pairs(self) -> int:
        return len(self.w)


def _pair_set(pos: np.ndarray, near_radius: float, max_units: int, seed: int) -> _PairSet:
    n = pos.shape[0]
    exact = n <= max_units
    subset = np.arange(n) if exact else np.sort(rng_for(seed).choice(n, max_units, replace=False))
    m = subset.size
    i, j = np.triu_indices(m, 1)
    d_sub = np.linalg.norm(pos[subset[i]] - pos[subset[j]], axis=1)
    if exact:
        return _PairSet(subset, i * m + j, np.empty((0, 2), np.int64), np.ones(len(i)), d_sub, True)
    keep = d_sub > near_radius
    near = cKDTree(pos).query_pairs(near_radius, output_type="ndarray").reshape(-1, 2)
    d_near = np.linalg.norm(pos[near[:, 0]] - pos[near[:, 1]], axis=1)
    n_far_total = n * (n - 1) // 2 - len(near)
    w_far = n_far_total / max(int(keep.sum()), 1)
    w = np.concatenate([np.full(int(keep.sum()), w_far), np.ones(len(near))])
    return _PairSet(subset, (i * m + j)[keep], near, w, np.concatenate([d_sub[keep], d_near]), False)


def _weighted_median(d: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(d, kind="stable")
    cw = np.cumsum(w[order])
    return float(d[order][np.searchsorted(cw, 0.5 * cw[-1])])


class _PairStats:
    """Weighted statistics of one vector of pair similarities, with fixed bins and weights."""

    def __init__(self, bins, w, d, near, far, n_bins, device, dtype):
        as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), device=device, dtype=dtype)  # noqa: E731
        self.bins = torch.as_tensor(bins, device=device)
        self.w = as_t(w)
        self.wsum_bin = torch.bincount(self.bins, weights=self.w, minlength=n_bins)
        self.wn, self.wf = as_t(w * near), as_t(w * far)
        dc = d - np.sum(w * d) / np.sum(w)
        self.wdc = as_t(w * dc)
        self.d_sd = float(np.sqrt(np.sum(w * dc**2)))
        self.wsum = float(np.sum(w))
        self.n_bins = n_bins

    def __call__(self, r: torch.Tensor) -> np.ndarray:
        """r: (B, P) similarities -> (B, n_bins + 3): bin means, near, far, -corr(d, r)."""
        rt = r.T.contiguous()  # (P, B): index_add over rows is fast
        wr = self.w[:, None] * rt
        sums = torch.zeros(self.n_bins, r.shape[0], device=r.device, dtype=r.dtype)
        means = sums.index_add_(0, self.bins, wr) / self.wsum_bin.clamp_min(1e-30)[:, None]
        near = (self.wn @ rt) / self.wn.sum()
        far = (self.wf @ rt) / self.wf.sum()
        mean_r = wr.sum(0) / self.wsum
        var_r = (wr * rt).sum(0) / self.wsum - mean_r**2
        cov = (self.wdc @ rt) / self.wsum
        dcorr = -cov / (self.d_sd / np.sqrt(self.wsum) * torch.sqrt(var_r.clamp_min(1e-30)))
        out = torch.cat([means, torch.stack([near, far, dcorr])], dim=0).T
        return out.double().cpu().numpy()


def smoothness(responses, positions, *, n_bins: int = 12, near_radius: float | None = None,
               n_perm: int = 200, seed: int = 0, max_units: int = 2048,
               device: str | torch.device | None = "cpu",
               dtype: str | torch.dtype | None = "float32", chunk_bytes: int = 256 * 2**20,
               layer: str | None = None) -> SmoothnessResult:
    """Tuning-similarity vs distance on the sheet (any (n, d) coordinates), with shuffled null.

    responses: (n_stimuli, n_units); positions: (n_units, d) or None (-> NoSheetPositionsError).
    near_radius defaults to 1.5 x the median nearest-neighbour spacing (on a unit grid: the 8
    neighbours); "far" pairs are those beyond the median pair distance. Layers with more than
    max_units non-constant units use all near pairs plus the pairs of a seeded unit subset.
    Cost: n_perm x (one m x m similarity matrix + O(pairs)); memory O(max_units^2).
    """
    x = as_responses(responses)
    pos = require_positions(positions, x.shape[1], layer)
    mask = UnitMask.of(x)
    x, pos = x[:, mask.valid], pos[mask.valid]
    n = x.shape[1]
    if n < 4:
        raise InvalidInputError(f"smoothness needs >= 4 non-constant units, got {n}")
    if n_bins < 2:
        raise InvalidInputError(f"n_bins must be >= 2, got {n_bins}")
    if n_perm < 2:
        raise InvalidInputError(f"n_perm must be >= 2 (the score is centred on the shuffles), got {n_perm}")
    if max_units < 4:
        raise InvalidInputError(f"max_units must be >= 4, got {max_units}")
    if near_radius is None:
        nn, _ = cKDTree(pos).query(pos, k=2)
        near_radius = 1.5 * float(np.median(nn[:, 1]))
    ps = _pair_set(pos, near_radius, max_units, seed)
    d, w = ps.d, ps.w
    near = d <= near_radius
    if not near.any():
        raise InvalidInputError(
            f"no unit pairs lie within near_radius={near_radius:g}; positions may have duplicates "
            "or a very uneven spacing; pass near_radius explicitly"
        )
    far_distance = _weighted_median(d, w)
    far = d > max(far_distance, near_radius)
    if not far.any():
        raise InvalidInputError("no unit pairs lie beyond the median distance; positions too few")
    edges = np.linspace(0.0, float(d.max()) * (1 + 1e-9), n_bins + 1)
    bins = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, n_bins - 1)

    dev, dt = resolve_device(device), resolve_dtype(dtype)
    z = torch.as_tensor(_standardise(x), device=dev, dtype=dt)
    stats = _PairStats(bins, w, d, near, far, n_bins, dev, dt)
    s = x.shape[0]
    sub = torch.as_tensor(ps.subset, device=dev)
    flat = torch.as_tensor(ps.flat, device=dev)
    ni = torch.as_tensor(ps.near[:, 0], device=dev)
    nj = torch.as_tensor(ps.near[:, 1], device=dev)

    def sims(zp: torch.Tensor) -> torch.Tensor:
        """(B, P) pair similarities from (B, S, n) standardised responses (units relabelled)."""
        zs = zp.index_select(2, sub)
        r = ((zs.transpose(1, 2) @ zs) / s).reshape(zp.shape[0], -1).index_select(1, flat)
        if ni.numel():
            near_r = (zp.index_select(2, ni) * zp.index_select(2, nj)).sum(1) / s
            r = torch.cat([r, near_r], dim=1)
        return r

    def relabelled(p: np.ndarray) -> torch.Tensor:
        """(B, S, n): standardised responses with units permuted by each row of p."""
        idx = torch.as_tensor(p.reshape(-1), device=dev)
        return z.index_select(1, idx).reshape(s, p.shape[0], n).permute(1, 0, 2)

    perms = permutations(n, n_perm, seed + 1)
    m = ps.subset.size
    per_perm = m * m + 2 * ps.n_pairs + 2 * s * n + len(ps.near) * 2 * s
    step = max(1, int(chunk_bytes // (per_perm * dt.itemsize)))
    with cpu_threads_for(per_perm * min(step, n_perm), dev):
        obs = stats(sims(z[None]))[0]
        nb = np.concatenate([stats(sims(relabelled(perms[a:a + step])))
                             for a in range(0, n_perm, step)])
    log.debug("smoothness: %d units, %d pairs (%s), %d shuffles", n, ps.n_pairs,
              "exact" if ps.exact else "sampled", n_perm)

    keep = np.bincount(bins, minlength=n_bins) > 0
    wb = np.bincount(bins, weights=w, minlength=n_bins)[keep]
    centers = np.bincount(bins, weights=w * d, minlength=n_bins)[keep] / wb
    nbins_null = nb[:, :n_bins][:, keep]
    contrast = float(obs[n_bins] - obs[n_bins + 1])
    null_contrast = nb[:, n_bins] - nb[:, n_bins + 1]
    c_mean, c_sd = float(null_contrast.mean()), float(null_contrast.std(ddof=1))
    dcorr, null_dcorr = float(obs[n_bins + 2]), nb[:, n_bins + 2]
    band = np.percentile(nbins_null, NULL_PERCENTILES, axis=0)
    return SmoothnessResult(
        bin_centers=centers,
        bin_edges=np.stack([edges[:-1], edges[1:]], 1)[keep],
        similarity=obs[:n_bins][keep],
        counts=np.bincount(bins, minlength=n_bins)[keep],
        null_mean=nbins_null.mean(0),
        null_low=band[0],
        null_high=band[1],
        score=contrast - c_mean,
        contrast=contrast,
        near_similarity=float(obs[n_bins]),
        far_similarity=float(obs[n_bins + 1]),
        z=(contrast - c_mean) / c_sd if c_sd > 0 else 0.0,
        p_value=perm_p_value(contrast, null_contrast),
        distance_correlation=dcorr - float(null_dcorr.mean()),
        distance_correlation_p=perm_p_value(dcorr, null_dcorr),
        distance_correlation_raw=dcorr,
        null_scores=null_contrast - c_mean,
        near_radius=float(near_radius),
        far_distance=float(far_distance),
        n_units=n,
        n_constant=mask.n_constant,
        n_pairs=ps.n_pairs,
        exact=ps.exact,
        n_perm=n_perm,
        seed=seed,
    )
