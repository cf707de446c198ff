"""Noise ceilings for repeated-trial data, and ceiling-normalised encoding scores.

Reliability (per target): repetitions are split at random into two halves (seeded, `n_splits`
times); each half is averaged over its repetitions; the Pearson r across presentations
between the two half-averages is Spearman-Brown corrected to the full number of repetitions,
``rho = 2 r / (1 + r)``, and the corrected values are averaged over the split-halves.  With an
odd number of repetitions one half has one more repetition; the factor-2 correction is kept
(a slightly conservative ceiling).  This is Brain-Score's internal-consistency ceiling.

Normalisation (per target), the convention `explainable_variance_fraction`
(`neurobench.conventions`, docs/conventions.md):

    normalised_t = sign(r_t) * r_t**2 / rho_t

where ``r_t`` is the held-out Pearson r of the model's prediction against the
repetition-averaged response and ``rho_t`` the reliability above (the expected r^2 of a
perfect model, since rho estimates the fraction of the averaged response's variance that is
signal).  The sign keeps anti-correlated predictions from scoring as positive.  The benchmark
score is the median over targets with a usable ceiling: a perfect model scores ~1.

This is *not* Brain-Score's `explained_variance` (brainscore_vision/benchmark_helpers/
neural_common.py), which squares the ratio of the aggregates, (median r / median rho)^2, on the
assumption r(X, X) ~ r(Y, Y) (Yamins et al. 2014): a perfect model scores ~1 / rho there, and
the sign is lost. `brainscore_explained_variance` computes Brain-Score's number under its own
name, for the benchmarks that follow a Brain-Score protocol.

Targets whose reliability is <= 0 or NaN (e.g. pure noise, constant responses) cannot be
normalised: they are reported in `usable` / `n_unusable` and left out of the median, never
dropped silently.  Values above 1 are kept as they are (ceiling noise), not clipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..conventions import EXPLAINABLE_VARIANCE_FRACTION
from ..errors import InvalidInputError
from .correlation import pearson_columns

log = logging.getLogger(__name__)

__all__ = ["Ceiling", "NormalizedScore", "split_half_reliability", "normalize_scores",
           "spearman_brown", "as_repeated_array", "median_scores", "brainscore_explained_variance"]

REPETITION_DIMS = ("repetition", "repetition_id", "trial", "rep")  # names a repetition dimension may have
_PRES_DIMS = ("presentation", "stimulus", "stimulus_id", "image")


def spearman_brown(r: torch.Tensor | np.ndarray, factor: float = 2.0):
    """Reliability of `factor` times as many trials: factor r / (1 + (factor - 1) r)."""
    return factor * r / (1 + (factor - 1) * r)


def as_repeated_array(data: Any, min_repetitions: int = 2,
                      allow_missing: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """(presentations, repetitions, targets) array from an ndarray or an xarray DataArray.

    A DataArray must have a repetition dimension (one of `REPETITION_DIMS`); the presentation
    dimension is the one named in `_PRES_DIMS` (else the first other one), the last is targets.
    With `allow_missing`, NaN marks a repetition a presentation lacks (ragged repeats); every
    presentation still needs at least one.
    """
    meta: dict[str, Any] = {}
    if hasattr(data, "dims") and hasattr(data, "transpose"):
        dims = list(data.dims)
        rep = next((d for d in dims if d in REPETITION_DIMS), None)
        if rep is None or len(dims) != 3:
            raise InvalidInputError(
                f"repeated data must have 3 dims including one of {REPETITION_DIMS}; got {dims}"
            )
        others = [d for d in dims if d != rep]
        pres = next((d for d in others if d in _PRES_DIMS), None)
        if pres is not None and others[0] != pres:
            others = [pres, others[0]]
        meta = {"dims": [others[0], rep, others[1]]}
        arr = np.asarray(data.transpose(others[0], rep, others[1]).values)
    else:
        arr = np.asarray(data)
    if arr.ndim != 3:
        raise InvalidInputError(
            f"repeated data must be (presentations x repetitions x targets), got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise InvalidInputError(f"repeated data must be numeric, got dtype {arr.dtype}")
    if arr.shape[1] < min_repetitions:
        raise InvalidInputError(
            f"split-half reliability needs >= 2 repetitions per presentation, got {arr.shape[1]}"
            + ("; with a single repetition give the ceiling explicitly" if min_repetitions > 1 else "")
        )
    if arr.shape[0] < 3:
        raise InvalidInputError(f"need >= 3 presentations to correlate halves, got {arr.shape[0]}")
    bad = ~np.isfinite(arr)
    if allow_missing:
        bad = np.isinf(arr) | np.isnan(arr).all(axis=1, keepdims=True).repeat(arr.shape[1], axis=1)
    if bad.any():
        i, j, k = (int(v[0]) for v in np.nonzero(bad))
        raise InvalidInputError(
            f"repeated data contains {int(bad.sum())} NaN/inf values (first at presentation {i}, "
            f"repetition {j}, target {k}); drop or impute missing trials first"
        )
    return arr, meta


@dataclass
class Ceiling:
    """Per-target split-half reliability (Spearman-Brown corrected), with what made it."""

    reliability: np.ndarray  # (t,)
    half_r: np.ndarray  # (t,) mean uncorrected split-half r
    n_splits: int
    seed: int
    n_repetitions: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> np.ndarray:
        return np.isfinite(self.reliability) & (self.reliability > 0)

    @property
    def n_unusable(self) -> int:
        return int((~self.usable).sum())

    @property
    def median(self) -> float:
        u = self.usable
        return float(np.median(self.reliability[u])) if u.any() else float("nan")

    def to_record(self) -> dict[str, Any]:
        return {"kind": "split-half spearman-brown", "n_splits": self.n_splits, "seed": self.seed,
                "n_repetitions": self.n_repetitions, "median": self.median,
                "n_unusable": self.n_unusable, **self.meta}


def split_half_reliability(data: Any, n_splits: int = 10, seed: int = 0,
                           device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64,
                           chunk: int = 4096) -> Ceiling:
    """Spearman-Brown-corrected split-half reliability per target, averaged over `n_splits`."""
    arr, meta = as_repeated_array(data)
    n, reps, t = arr.shape
    if n_splits < 1:
        raise InvalidInputError(f"n_splits must be >= 1, got {n_splits}")
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(reps) for _ in range(n_splits)]
    halves = [(torch.as_tensor(np.sort(pm[: reps // 2])), torch.as_tensor(np.sort(pm[reps // 2:])))
              for pm in perms]
    rel = np.empty(t)
    raw = np.empty(t)
    for s in range(0, t, chunk):
        block = torch.as_tensor(arr[:, :, s:s + chunk], dtype=dtype, device=device)
        sb_sum = torch.zeros(block.shape[2], dtype=dtype, device=device)
        r_sum = torch.zeros_like(sb_sum)
        for a, b in halves:
            r = pearson_columns(block[:, a.to(device)].mean(1), block[:, b.to(device)].mean(1))
            r_sum += r
            sb_sum += spearman_brown(r)
        rel[s:s + chunk] = (sb_sum / n_splits).cpu().numpy()
        raw[s:s + chunk] = (r_sum / n_splits).cpu().numpy()
    ceiling = Ceiling(rel, raw, n_splits, seed, reps, meta)
    if ceiling.n_unusable:
        log.warning("%d of %d targets have an unusable ceiling (reliability <= 0 or NaN)",
                    ceiling.n_unusable, t)
    return ceiling


@dataclass
class NormalizedScore:
    """Ceiling-normalised per-target scores and their median over usable targets."""

    per_target: np.ndarray  # (t,), NaN where unusable or r undefined
    score: float  # median over targets with a usable ceiling and a defined r
    usable: np.ndarray  # (t,) bool: ceiling usable and r finite
    n_unusable_ceiling: int
    n_undefined_r: int
    convention: str = EXPLAINABLE_VARIANCE_FRACTION

    def to_record(self) -> dict[str, Any]:
        return {"score": self.score, "convention": self.convention,
                "n_targets": int(self.per_target.size), "n_used": int(self.usable.sum()),
                "n_unusable_ceiling": self.n_unusable_ceiling, "n_undefined_r": self.n_undefined_r}


def normalize_scores(r: np.ndarray, ceiling: Ceiling | np.ndarray) -> NormalizedScore:
    """Per-target sign(r) r^2 / reliability, and the median over usable targets."""
    r = np.asarray(r, dtype=np.float64).reshape(-1)
    rel = np.asarray(ceiling.reliability if isinstance(ceiling, Ceiling) else ceiling,
                     dtype=np.float64).reshape(-1)
    if r.shape != rel.shape:
        raise InvalidInputError(f"{r.size} scores for {rel.size} ceilings; give one per target")
    ok_ceiling = np.isfinite(rel) & (rel > 0)
    ok_r = np.isfinite(r)
    usable = ok_ceiling & ok_r
    per = np.full_like(r, np.nan)
    per[usable] = np.sign(r[usable]) * r[usable] ** 2 / rel[usable]
    score = float(np.median(per[usable])) if usable.any() else float("nan")
    return NormalizedScore(per, score, usable, int((~ok_ceiling).sum()), int((~ok_r).sum()))


def median_scores(r: np.ndarray, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of (B, t) held-out r and ceilings: the median raw r and the median sign(r) r^2 /
    ceiling (`explainable_variance_fraction`), both over the targets with a usable ceiling and a
    finite r (e.g. every bootstrap resample at once)."""
    ok = np.isfinite(rel) & (rel > 0) & np.isfinite(r)
    norm = np.where(ok, np.sign(r) * r * r / np.where(ok, rel, 1.0), np.nan)
    raw = np.where(ok, r, np.nan)
    with np.errstate(all="ignore"):
        return np.nanmedian(raw, axis=-1), np.nanmedian(norm, axis=-1)


def brainscore_explained_variance(raw, ceiling):
    """Brain-Score's ceiled score, (raw / ceiling)^2, elementwise (`brainscore_explained_variance`).

    `raw` is Brain-Score's aggregate of held-out r (median over neuroids, mean over splits) and
    `ceiling` its aggregate internal consistency (median over neuroids of the split-half
    Spearman-Brown r, mean over splits), as `explained_variance` in
    brainscore_vision/benchmark_helpers/neural_common.py combines them (no sign is kept). A
    perfect model scores ~1 / ceiling, since its r is ~sqrt(ceiling).
    """
    return np.power(np.asarray(raw, dtype=np.float64) / np.asarray(ceiling, dtype=np.float64), 2)
