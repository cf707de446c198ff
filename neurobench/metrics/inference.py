"""Inference for RSA scores: bootstrap over stimuli / subjects / both, fixed-effects SEM, and
paired model-vs-model bootstrap tests.

Stimulus resamples follow rsatoolbox: stimuli are drawn with replacement and the pairs of a
stimulus with its own copy are dropped (rsatoolbox marks them NaN and removes them). For the
Pearson, cosine, Spearman, rho-a and tau-a comparators the resample is computed as a weighted
statistic over the original entries (see `weighted.py`), which is exact and batched; the
whitened comparators rebuild each resampled RDM because their whitening depends on which pairs
exist.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InvalidInputError
from . import ranks
from .rdm import n_stimuli_from_length, pair_positions
from .rsa import BOOTSTRAP_KINDS, _condensed, canonical_method, compare_rdms, noise_ceiling
from .weighted import WEIGHTED_METHODS, pair_weights, weighted_compare

log = logging.getLogger(__name__)


def bootstrap_indices(n_stimuli: int, n_subjects: int, n_bootstrap: int, kind: str, seed: int):
    """Deterministic resampling plans: (stimulus idx (B, n) sorted, or None; subject idx (B, S)
    or None), drawn from numpy's default_rng(seed)."""
    if kind not in BOOTSTRAP_KINDS:
        raise InvalidInputError(f"bootstrap must be one of {BOOTSTRAP_KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    stim = subj = None
    if kind in ("stimuli", "both"):
        stim = np.sort(rng.integers(0, n_stimuli, size=(n_bootstrap, n_stimuli)), axis=1)
    if kind in ("subjects", "both"):
        subj = rng.integers(0, n_subjects, size=(n_bootstrap, n_subjects))
    return stim, subj


def bootstrap_counts(n: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """Stimulus-bootstrap weights as counts: (1 + n_bootstrap, n) float64.

    Row 0 is the plain sample (every stimulus once: all ones); rows 1..B are multinomial resamples
    of the n stimuli, each entry how often that stimulus was drawn (each row sums to n), from one
    `np.random.default_rng(seed).multinomial(n, [1/n] * n, size=n_bootstrap)` call.  Divide by n
    for frequencies (rows summing to 1).  The weighted statistics of `correlation.py` take either.
    """
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap)
    return np.vstack([np.ones((1, n)), counts]).astype(np.float64)


def resample_condensed(v: torch.Tensor, idx) -> torch.Tensor:
    """Condensed RDMs (..., K) over stimuli resampled by `idx` (with repeats), as rsatoolbox's
    `subsample_pattern` builds them: pairs of a stimulus with its own copy are NaN."""
    pos, same = pair_positions(n_stimuli_from_length(v.shape[-1]), idx, v.device)
    out = v[..., pos]
    if bool(same.any()):
        out = out.clone()
        out[..., same] = float("nan")
    return out


def _subject_mean(per: torch.Tensor, subj: np.ndarray | None) -> torch.Tensor:
    """per (B, L, S) -> (B, L): mean over subjects, resampled per bootstrap when subj is given."""
    if subj is None:
        return per.mean(-1)
    idx = torch.as_tensor(subj, device=per.device)  # (B, S)
    picked = torch.gather(per, 2, idx[:, None, :].expand(-1, per.shape[1], -1))
    return picked.mean(-1)


def bootstrap_per_subject(model_rdms, data_rdms, method: str, stim: np.ndarray,
                          backend: str = "auto", chunk: int | None = None) -> torch.Tensor:
    """(B, L, S) similarities of every model with every subject on each stimulus resample."""
    x, y = model_rdms, data_rdms
    n = n_stimuli_from_length(x.shape[-1])
    nb = stim.shape[0]
    nan_x = torch.isnan(x).any(0)
    if not torch.equal(nan_x, torch.isnan(y).any(0)):
        raise InvalidInputError("model and data RDMs have NaN in different entries")
    use_tau_numba = method == "tau_a" and ranks._use_numba(x, backend)
    if method in WEIGHTED_METHODS and (method != "tau_a" or use_tau_numba):
        keep = ~nan_x
        xk, yk = x[:, keep], y[:, keep]
        if chunk is None:  # bound the (chunk, L + S, K) working tensors to ~256 MB
            per_b = (x.shape[0] + y.shape[0]) * x.shape[-1] * 8 * 6
            chunk = max(1, min(nb, (256 * 2**20) // max(1, per_b)))
        out = []
        for s in range(0, nb, chunk):
            w = pair_weights(stim[s:s + chunk], n, x.device, x.dtype)[:, keep]
            out.append(weighted_compare(xk, yk, w, method))
        return torch.cat(out)
    out = torch.empty(nb, x.shape[0], y.shape[0], dtype=x.dtype, device=x.device)
    for b in range(nb):
        out[b] = compare_rdms(resample_condensed(x, stim[b]), resample_condensed(y, stim[b]),
                              method, backend=backend)
    return out


def bootstrap_scores(model_rdms, data_rdms, method: str, n_bootstrap: int, seed: int = 0,
                     bootstrap: str = "stimuli", backend: str = "auto") -> torch.Tensor:
    """(B, L) subject-mean similarities over bootstrap resamples of stimuli, subjects or both."""
    method = canonical_method(method)
    x = _condensed(model_rdms, None, None, "model RDMs")
    y = _condensed(data_rdms, x.device, x.dtype, "data RDMs")
    x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    n = n_stimuli_from_length(x.shape[-1])
    if bootstrap in ("subjects", "both") and y.shape[0] < 2:
        raise InvalidInputError("bootstrapping subjects needs >= 2 subject RDMs; use bootstrap='stimuli'")
    stim, subj = bootstrap_indices(n, y.shape[0], n_bootstrap, bootstrap, seed)
    if stim is None:
        per = compare_rdms(x, y, method, backend=backend)  # (L, S), resampled per bootstrap
        return _subject_mean(per.expand(n_bootstrap, *per.shape), subj)
    return _subject_mean(bootstrap_per_subject(x, y, method, stim, backend), subj)


def fixed_effects_sem(per_subject: torch.Tensor) -> torch.Tensor:
    """SEM of the subject mean, sd / sqrt(S) over the last axis (subjects as fixed effects of
    the stimulus set; needs S >= 2)."""
    s = per_subject.shape[-1]
    if s < 2:
        raise InvalidInputError("an SEM over subjects needs >= 2 subjects")
    return per_subject.std(dim=-1) / math.sqrt(s)


def percentile_ci(samples: torch.Tensor, ci: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Percentile bootstrap interval over axis 0, ignoring NaN samples."""
    alpha = (1 - ci) / 2
    q = torch.tensor([alpha, 1 - alpha], dtype=samples.dtype, device=samples.device)
    lo, hi = torch.nanquantile(samples, q, dim=0)
    return lo, hi


@dataclass
class ModelComparison:
    """Paired bootstrap test of score(a) - score(b) (subject means), two-sided."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_bootstrap: int
    bootstrap: str
    method: str


def compare_models(rdm_a, rdm_b, data_rdms, method: str = "tau_a", n_bootstrap: int = 1000,
                   seed: int = 0, bootstrap: str = "both", ci: float = 0.95,
                   backend: str = "auto") -> ModelComparison:
    """Is model a's RDM closer to the data than model b's? Both are scored on the *same*
    resamples (paired), and the two-sided p-value is the bootstrap proportion of differences on
    the other side of zero, doubled (with the +1 correction so it is never exactly 0)."""
    method = canonical_method(method)
    x = torch.stack([_condensed(rdm_a, None, None, "model a").reshape(-1),
                     _condensed(rdm_b, None, None, "model b").reshape(-1)])
    y = _condensed(data_rdms, x.device, x.dtype, "data RDMs").reshape(-1, x.shape[-1])
    obs = compare_rdms(x, y, method, backend=backend).mean(-1)
    diff = float(obs[0] - obs[1])
    samples = bootstrap_scores(x, y, method, n_bootstrap, seed, bootstrap, backend)
    d = samples[:, 0] - samples[:, 1]
    d = d[~torch.isnan(d)]
    lo, hi = percentile_ci(d[:, None], ci)
    nb = d.numel()
    p = min(1.0, 2 * min(float((d <= 0).sum() + 1), float((d >= 0).sum() + 1)) / (nb + 1))
    return ModelComparison(diff, float(lo[0]), float(hi[0]), p, nb, bootstrap, method)


# ---------------------------------------------------------------- bootstrapped scores

@dataclass
class RSAScores:
    """Per-layer RSA scores with the noise ceiling and bootstrap CIs (all on the input device)."""

    score: torch.Tensor  # (L,) mean over subjects
    per_subject: torch.Tensor  # (L, S)
    ceiling_lower: float | None
    ceiling_upper: float | None
    ci_low: torch.Tensor  # (L,) percentile bootstrap CI; NaN when n_bootstrap == 0
    ci_high: torch.Tensor
    n_bootstrap: int
    seed: int
    method: str
    bootstrap: str = "stimuli"
    ci: float = 0.95
    sem: torch.Tensor | None = None  # (L,) fixed-effects SEM over subjects (None when S == 1)
    ceiling_note: str = ""
    samples: torch.Tensor | None = field(default=None, repr=False)  # (B, L) bootstrap means


def score_rdms(model_rdms, data_rdms, method: str = "tau_a", n_bootstrap: int = 1000,
               seed: int = 0, bootstrap: str = "stimuli", ci: float = 0.95, *, device=None,
               dtype=None, ceiling: bool = True, backend: str = "auto") -> RSAScores:
    """Score L model RDMs (L, K) against S subject RDMs (S, K): per-subject similarities, their
    mean, Nili noise ceiling (S >= 2), fixed-effects SEM over subjects, and a percentile bootstrap
    CI of the subject-mean over stimuli, subjects or both (seeded, reproducible)."""
    method = canonical_method(method)
    if not 0 < ci < 1:
        raise InvalidInputError(f"ci must be in (0, 1), got {ci}")
    if n_bootstrap < 0:
        raise InvalidInputError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    x = _condensed(model_rdms, device, dtype, "model RDMs")
    y = _condensed(data_rdms, x.device, x.dtype, "data RDMs")
    x = x.reshape(-1, x.shape[-1]) if x.ndim == 1 else x
    y = y.reshape(-1, y.shape[-1]) if y.ndim == 1 else y
    if x.ndim != 2 or y.ndim != 2:
        raise InvalidInputError(f"score_rdms takes (L, K) and (S, K); got {tuple(x.shape)}, {tuple(y.shape)}")
    per_subject = compare_rdms(x, y, method, backend=backend)
    score = per_subject.mean(dim=1)
    s = y.shape[0]
    sem = per_subject.std(dim=1) / math.sqrt(s) if s > 1 else None
    lower = upper = None
    note = ""
    if ceiling and s >= 2:
        lower, upper = noise_ceiling(y, method)
        note = (f"Nili et al. (2014) noise ceiling over {s} subject RDMs: lower = leave-one-subject-"
                f"out pooled RDM, upper = all-subject pooled RDM ({method} pooling)")
    elif ceiling:
        note = ("no noise ceiling: a single data RDM gives no between-subject variability to "
                "estimate one from")
    nan = torch.full_like(score, float("nan"))
    ci_low, ci_high, samples = nan, nan.clone(), None
    if n_bootstrap > 0:
        if bootstrap in ("subjects", "both") and s < 2:
            raise InvalidInputError("bootstrapping subjects needs >= 2 subject RDMs; use bootstrap='stimuli'")
        samples = bootstrap_scores(x, y, method, n_bootstrap, seed, bootstrap, backend=backend)
        alpha = (1 - ci) / 2
        q = torch.tensor([alpha, 1 - alpha], dtype=samples.dtype, device=samples.device)
        ci_low, ci_high = torch.nanquantile(samples, q, dim=0)
    return RSAScores(score=score, per_subject=per_subject, ceiling_lower=lower,
                     ceiling_upper=upper, ci_low=ci_low, ci_high=ci_high, n_bootstrap=n_bootstrap,
                     seed=seed, method=method, bootstrap=bootstrap, ci=ci, sem=sem,
                     ceiling_note=note, samples=samples)
