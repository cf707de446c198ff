"""Hierarchy alignment of a model's layers with the brain, in space and time, and its chronology
over training (Raugel et al. 2025, arXiv:2508.18226, ICLR 2026; docs/hierarchy.md).

Pure functions: tensors in, tensors out, float64 by default, on the device of their inputs.

- **Relative depth** of layer i of L scored layers: i / (L - 1) (0 the first scored layer, 1 the
  last; one layer: 0). Depth is the order of the layers as the model lists them.
- **Spatial score** (`spatial_score`): per target (voxel) the relative depth of the layer with
  the best held-out score, Pearson-correlated over targets with the target's hierarchical
  position (an ordered list of regions, or an atlas's per-voxel position). Interval: a percentile
  bootstrap over subjects (when there are >= 2) and, within each subject and region, over
  targets. p-value: permutation of the layer order (the null "the order of the layers carries no
  information about the hierarchy" keeps the spatial dependence between neighbouring voxels,
  which permuting positions over voxels would break), exact over all L! orders when L! <=
  `n_permutations`, one-sided (positive alignment).
- **Temporal score** (`temporal_score`): per layer the latency of the peak of its time course
  (mean over subjects), Pearson-correlated over layers with relative depth; interval: percentile
  bootstrap over subjects; p-value: permutation of the layer order as above.
- **Chronology** (`half_step`, `chronology`): for a trajectory of checkpoints, the training step
  at which a score first reaches half of its final value (the value at the last checkpoint),
  linearly interpolated between checkpoints; interval: each checkpoint's score resampled from a
  normal with the SD its 95% interval implies ((high - low) / (2 z_0.975)), independently across
  checkpoints, percentile interval of the resulting half-steps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..conventions import (
    CHECKPOINTS_NORMAL,
    NO_INTERVAL,
    SUBJECTS,
    SUBJECTS_TARGETS_IN_REGIONS,
    TARGETS_IN_REGIONS,
)
from ..errors import InvalidInputError
from .correlation import pearson_columns

__all__ = ["relative_depth", "best_layer_depth", "HierarchyScore", "spatial_score", "peak_latencies",
           "temporal_score", "depth_correlations", "half_step", "Chronology", "chronology", "layer_orders"]

Z975 = 1.959963984540054
_PERMUTATION_CHUNK = 128


def relative_depth(n_layers: int, dtype: torch.dtype = torch.float64, device="cpu") -> torch.Tensor:
    """(L,) relative depths i / (L - 1) of L layers in order (one layer: 0)."""
    if n_layers < 1:
        raise InvalidInputError("relative depth needs at least one layer")
    if n_layers == 1:
        return torch.zeros(1, dtype=dtype, device=device)
    return torch.arange(n_layers, dtype=dtype, device=device) / (n_layers - 1)


def best_layer_depth(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per target (column of a (layers, targets) score matrix) the index of the layer with the
    highest score (ties: the first) and its relative depth; a target with no finite score gets
    index -1 and depth NaN."""
    if scores.ndim != 2 or scores.shape[0] < 1:
        raise InvalidInputError(f"scores must be a (layers, targets) matrix, got shape {tuple(scores.shape)}")
    finite = torch.isfinite(scores)
    filled = torch.where(finite, scores, torch.full_like(scores, -math.inf))
    best = torch.argmax(filled, dim=0)
    ok = finite.any(0)
    depth = relative_depth(scores.shape[0], scores.dtype, scores.device)[best]
    depth = torch.where(ok, depth, torch.full_like(depth, float("nan")))
    return torch.where(ok, best, torch.full_like(best, -1)), depth


@dataclass
class HierarchyScore:
    """A correlation between layer depth and a brain hierarchy, with its interval and p-value.

    `score`: Pearson r; `ci_low` / `ci_high`: 95% percentile bootstrap (`interval` says what is
    resampled; NaN with no resamples); `p_value`: one-sided permutation p of the layer order
    (`n_permutations` orders, `exact` when every order was used); `samples`: the bootstrap
    values (B,)."""

    score: float
    ci_low: float
    ci_high: float
    p_value: float
    n_permutations: int
    exact: bool
    interval: str
    samples: np.ndarray


def layer_orders(n_layers: int, n_permutations: int, seed: int) -> tuple[np.ndarray, bool]:
    """(P, L) orders of the layers for a permutation test: every order when L! <= n_permutations
    (exact; the identity included), else the identity plus n_permutations - 1 seeded random ones."""
    if math.factorial(n_layers) <= n_permutations:
        return np.array(list(itertools.permutations(range(n_layers))), dtype=np.int64), True
    rng = np.random.default_rng([seed, 7])
    rand = np.stack([rng.permutation(n_layers) for _ in range(max(0, n_permutations - 1))]) if n_permutations > 1 \
        else np.empty((0, n_layers), dtype=np.int64)
    return np.vstack([np.arange(n_layers)[None], rand]).astype(np.int64), False


def _permutation_p(best: torch.Tensor, other: torch.Tensor, observed: float, n_layers: int, n_permutations: int,
                   seed: int) -> tuple[float, int, bool]:
    """One-sided p of `observed` among the correlations of `other` with the depth each layer order
    gives the best layers (`best`: (T,) layer indices)."""
    if n_permutations <= 0 or n_layers < 2:
        return float("nan"), 0, False
    orders, exact = layer_orders(n_layers, n_permutations, seed)
    depth = relative_depth(n_layers, other.dtype, other.device)
    # under order o, layer i sits at depth position o.index(i): inverse permutation
    inverse = torch.as_tensor(np.argsort(orders, axis=1), device=other.device)
    count = 0
    for start in range(0, len(orders), _PERMUTATION_CHUNK):  # (targets x chunk) at a time
        permuted = depth[inverse[start:start + _PERMUTATION_CHUNK]][:, best].T
        r = torch.nan_to_num(pearson_columns(permuted, other[:, None].expand(-1, permuted.shape[1])), nan=0.0)
        count += int((r >= observed - 1e-12).sum())
    # exact: the share of all L! orders; sampled: the identity is among them, i.e. (1 + k) / (1 + N)
    return count / len(orders), len(orders), exact


def _percentile(samples: np.ndarray) -> tuple[float, float]:
    ok = samples[np.isfinite(samples)]
    if not len(ok):
        return float("nan"), float("nan")
    return float(np.percentile(ok, 2.5)), float(np.percentile(ok, 97.5))


def _resample_targets(groups: np.ndarray, subjects: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
    """(B, T) target indices: subjects resampled (>= 2 subjects), then targets within each
    (subject, group) stratum of every drawn subject."""
    rng = np.random.default_rng([seed, 3])
    subject_ids = np.unique(subjects)
    strata = {s: [np.flatnonzero((subjects == s) & (groups == g)) for g in np.unique(groups[subjects == s])]
              for s in subject_ids}
    draws = []
    for _ in range(n_bootstrap):
        chosen = rng.choice(subject_ids, size=len(subject_ids)) if len(subject_ids) > 1 else subject_ids
        rows = [rng.choice(idx, size=len(idx)) for s in chosen for idx in strata[s]]
        draws.append(np.concatenate(rows))
    lengths = {len(d) for d in draws}
    if len(lengths) > 1:  # subjects with different target counts: pad by resampling to a common length
        n = max(lengths)
        draws = [np.concatenate([d, rng.choice(d, size=n - len(d))]) if len(d) < n else d for d in draws]
    return np.stack(draws)


def spatial_score(scores: torch.Tensor, positions: torch.Tensor, *, groups: Sequence | None = None,
                  subjects: Sequence | None = None, n_bootstrap: int = 1000, n_permutations: int = 1000,
                  seed: int = 0) -> tuple[HierarchyScore, torch.Tensor, torch.Tensor]:
    """The spatial score of a (layers, targets) matrix of held-out per-target scores against each
    target's hierarchical position (module docstring). `groups` (e.g. the region of each target)
    and `subjects` stratify the bootstrap. Returns (score, best layer index per target, its
    relative depth); targets with no finite score are left out."""
    if scores.ndim != 2 or positions.shape != (scores.shape[1],):
        raise InvalidInputError(f"scores must be (layers, targets) and positions (targets,); got "
                                f"{tuple(scores.shape)} and {tuple(positions.shape)}")
    if scores.shape[0] < 2:
        raise InvalidInputError("a spatial score needs at least 2 layers (the depth of one layer is constant)")
    best, depth = best_layer_depth(scores)
    pos = positions.to(scores.dtype)
    keep = torch.isfinite(depth) & torch.isfinite(pos)
    if int(keep.sum()) < 3 or torch.unique(pos[keep]).numel() < 2:
        raise InvalidInputError("a spatial score needs >= 3 scored targets at >= 2 distinct hierarchy positions")
    idx = torch.nonzero(keep).flatten()
    d, p, b = depth[idx], pos[idx], best[idx]
    observed = float(pearson_columns(d[:, None], p[:, None])[0])
    if not math.isfinite(observed):
        observed = 0.0  # every target best predicted by one layer: depth carries no information
    k = idx.cpu().numpy()
    g = np.asarray(groups if groups is not None else np.zeros(scores.shape[1]), dtype=object)[k].astype(str)
    s = np.asarray(subjects if subjects is not None else np.zeros(scores.shape[1]), dtype=object)[k].astype(str)
    samples = np.empty(0)
    if n_bootstrap > 0:
        draws = torch.as_tensor(_resample_targets(g, s, n_bootstrap, seed), device=scores.device).T  # (T', B)
        samples = torch.nan_to_num(pearson_columns(d[draws], p[draws]), nan=0.0).cpu().numpy()
    lo, hi = _percentile(samples) if len(samples) else (float("nan"), float("nan"))
    p_value, n_perm, exact = _permutation_p(b, p, observed, scores.shape[0], n_permutations, seed)
    interval = NO_INTERVAL if not len(samples) else (
        SUBJECTS_TARGETS_IN_REGIONS if len(np.unique(s)) > 1 else TARGETS_IN_REGIONS)
    return HierarchyScore(observed, lo, hi, p_value, n_perm, exact, interval, samples), best, depth


def peak_latencies(courses: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """(..., L) time of the peak of each layer's time course in (..., L, bins) (first peak on
    ties; NaN for a course with no finite value)."""
    finite = torch.isfinite(courses)
    filled = torch.where(finite, courses, torch.full_like(courses, -math.inf))
    at = times.to(courses.dtype)[torch.argmax(filled, dim=-1)]
    return torch.where(finite.any(-1), at, torch.full_like(at, float("nan")))


def temporal_score(courses: torch.Tensor, times: torch.Tensor, *, n_bootstrap: int = 1000, n_permutations: int = 1000,
                   seed: int = 0) -> tuple[HierarchyScore, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The temporal score of per-subject time courses (subjects, layers, bins) at `times` (module
    docstring). Returns (score, per-layer peak latency of the subject mean, and its 95% percentile
    bootstrap interval over subjects: low (L,), high (L,))."""
    if courses.ndim != 3 or courses.shape[-1] != times.shape[0]:
        raise InvalidInputError(f"courses must be (subjects, layers, bins) with one time per bin; got "
                                f"{tuple(courses.shape)} and {tuple(times.shape)} times")
    n_subj, n_layers, _ = courses.shape
    if n_layers < 2:
        raise InvalidInputError("a temporal score needs at least 2 layers")
    depth = relative_depth(n_layers, courses.dtype, courses.device)
    with torch.no_grad():
        latency = peak_latencies(courses.nanmean(0), times)
    if not bool(torch.isfinite(latency).all()):
        raise InvalidInputError("a layer has no finite time course: the temporal score needs every layer's")
    observed = float(pearson_columns(depth[:, None], latency[:, None])[0])
    observed = observed if math.isfinite(observed) else 0.0  # every layer peaks at the same time
    samples, lat_lo, lat_hi = np.empty(0), torch.full_like(latency, float("nan")), torch.full_like(latency, float("nan"))
    if n_bootstrap > 0 and n_subj > 1:
        rng = np.random.default_rng([seed, 5])
        draws = torch.as_tensor(rng.integers(0, n_subj, size=(n_bootstrap, n_subj)), device=courses.device)
        boot = peak_latencies(courses[draws].nanmean(1), times)  # (B, L)
        samples = depth_correlations(boot).cpu().numpy()
        lat_lo = torch.quantile(boot, 0.025, dim=0)
        lat_hi = torch.quantile(boot, 0.975, dim=0)
    lo, hi = _percentile(samples) if len(samples) else (float("nan"), float("nan"))
    best = torch.arange(n_layers, device=courses.device)
    p_value, n_perm, exact = _permutation_p(best, latency, observed, n_layers, n_permutations, seed)
    interval = SUBJECTS if len(samples) else NO_INTERVAL
    return (HierarchyScore(observed, lo, hi, p_value, n_perm, exact, interval, samples), latency, lat_lo, lat_hi)


def depth_correlations(latency_samples: torch.Tensor) -> torch.Tensor:
    """(B,) Pearson r of relative depth and each row of (B, L) resampled peak latencies (0 where a
    resample's latencies are all equal)."""
    depth = relative_depth(latency_samples.shape[1], latency_samples.dtype, latency_samples.device)
    r = pearson_columns(depth[:, None].expand(-1, latency_samples.shape[0]), latency_samples.T)
    return torch.nan_to_num(r, nan=0.0)


def half_step(steps: np.ndarray, values: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """The step at which each trajectory first reaches `fraction` of its final value.

    `steps` (C,) increasing; `values` (..., C). Linear interpolation between the last checkpoint
    below the threshold and the next; the first step if it is already reached there; NaN if the
    final value is not positive or finite (no 'half of the final value' to reach)."""
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if steps.ndim != 1 or values.shape[-1] != len(steps) or len(steps) < 2:
        raise InvalidInputError(f"need >= 2 increasing steps and values (..., {len(steps)}); got {values.shape}")
    if not (np.diff(steps) > 0).all():
        raise InvalidInputError(f"steps must increase strictly, got {steps.tolist()}")
    flat = values.reshape(-1, len(steps))
    out = np.full(len(flat), np.nan)
    for i, v in enumerate(flat):
        final = v[-1]
        if not (np.isfinite(final) and final > 0):
            continue
        threshold = fraction * final
        reached = np.flatnonzero(np.nan_to_num(v, nan=-np.inf) >= threshold)
        j = int(reached[0])
        if j == 0:
            out[i] = steps[0]
            continue
        v0, v1 = v[j - 1], v[j]
        out[i] = steps[j - 1] + (threshold - v0) / (v1 - v0) * (steps[j] - steps[j - 1]) if np.isfinite(v0) \
            else steps[j]
    return out.reshape(values.shape[:-1])


@dataclass
class Chronology:
    """Half-steps of several trajectories (one per region / metric): the step, its 95% interval
    and the order of the names by step (earliest first; NaN last)."""

    names: list[str]
    steps: np.ndarray  # checkpoints' training steps (C,)
    values: np.ndarray  # (N, C) scores
    final: np.ndarray  # (N,)
    half: np.ndarray  # (N,)
    ci_low: np.ndarray
    ci_high: np.ndarray
    fraction: float
    interval: str

    @property
    def order(self) -> list[str]:
        key = np.where(np.isfinite(self.half), self.half, np.inf)
        return [self.names[i] for i in np.argsort(key, kind="stable")]


def chronology(trajectory: Mapping[int, Mapping[str, float]], intervals: Mapping[int, Mapping[str, tuple]] | None = None,
               *, fraction: float = 0.5, n_bootstrap: int = 1000, seed: int = 0) -> Chronology:
    """Half-steps of every name in a trajectory `{step: {name: score}}` (names: regions,
    metrics); `intervals` `{step: {name: (ci_low, ci_high)}}` gives each score's 95% interval for
    the half-step's interval (module docstring; none: no interval). Every step must score every
    name."""
    if len(trajectory) < 2:
        raise InvalidInputError(f"a chronology needs >= 2 checkpoints, got {len(trajectory)}")
    if not 0 < fraction < 1:
        raise InvalidInputError(f"fraction must be in (0, 1), got {fraction}")
    steps = np.array(sorted(trajectory), dtype=np.float64)
    names = list(dict.fromkeys(n for s in sorted(trajectory) for n in trajectory[s]))
    missing = [(int(s), n) for s in steps for n in names if n not in trajectory[int(s)]]
    if missing:
        raise InvalidInputError(f"every checkpoint must score every name; missing (step, name): {missing[:5]}")
    values = np.array([[float(trajectory[int(s)][n]) for s in steps] for n in names])
    half = half_step(steps, values, fraction)
    lo = hi = np.full(len(names), np.nan)
    interval = NO_INTERVAL
    if intervals is not None and n_bootstrap > 0:
        sd = np.array([[_sd(intervals.get(int(s), {}).get(n)) for s in steps] for n in names])
        rng = np.random.default_rng([seed, 11])
        draws = values[None] + rng.standard_normal((n_bootstrap, *values.shape)) * np.nan_to_num(sd)[None]
        boot = half_step(steps, draws, fraction)  # (B, N)
        with np.errstate(all="ignore"):
            lo = np.array([np.nanpercentile(boot[:, i], 2.5) if np.isfinite(boot[:, i]).any() else np.nan
                           for i in range(len(names))])
            hi = np.array([np.nanpercentile(boot[:, i], 97.5) if np.isfinite(boot[:, i]).any() else np.nan
                           for i in range(len(names))])
        interval = CHECKPOINTS_NORMAL
    return Chronology(names, steps, values, values[:, -1], half, lo, hi, fraction, interval)


def _sd(ci) -> float:
    if ci is None:
        return float("nan")
    low, high = (float(c) for c in ci)
    return (high - low) / (2 * Z975) if np.isfinite(low) and np.isfinite(high) else float("nan")
