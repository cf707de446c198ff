"""Inference for RSA scores: bootstrap over stimuli / subjects / both, the corrected two-factor
variance of Schütt et al. (2023), fixed-effects SEM, and paired model-vs-model bootstrap tests.

Stimulus resamples follow rsatoolbox: stimuli are drawn with replacement and the pairs of a
stimulus with its own copy are dropped (rsatoolbox marks them NaN and removes them). For the
Pearson, cosine, Spearman, rho-a and tau-a comparators the resample is computed as a weighted
statistic over the original entries (see `weighted.py`), which is exact and batched; the
whitened comparators rebuild each resampled RDM because their whitening depends on which pairs
exist.

Intervals and their names (`neurobench.conventions`): `bootstrap="stimuli"` / `"subjects"` give
percentile intervals over one factor; `"both"` the percentile interval of the two-factor bootstrap
(conservative: resampling subjects already carries stimulus-level noise, so both factors count it
twice); `"both-corrected"` (the default with >= 2 subjects, `"auto"`) the interval
estimate +- t(0.975, min(S, n) - 1) sqrt(v) with v the corrected two-factor variance of Schütt et
al. (2023), computed from one set of draws as rsatoolbox's `eval_dual_bootstrap` does
(`dual_bootstrap`, `corrected_variance`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..conventions import (
    NO_INTERVAL,
    STIMULI,
    SUBJECTS,
    SUBJECTS_STIMULI_CORRECTED,
    SUBJECTS_STIMULI_PERCENTILE,
)
from ..errors import InvalidInputError
from . import ranks
from .rdm import n_stimuli_from_length, pair_positions
from .rsa import BOOTSTRAP_KINDS, _condensed, canonical_method, compare_rdms, noise_ceiling
from .weighted import WEIGHTED_METHODS, pair_weights, weighted_compare

log = logging.getLogger(__name__)


BOOTSTRAP_CHOICES = ("auto", "stimuli", "subjects", "both", "both-corrected")
INTERVAL_CONVENTION = {"stimuli": STIMULI, "subjects": SUBJECTS, "both": SUBJECTS_STIMULI_PERCENTILE,
                       "both-corrected": SUBJECTS_STIMULI_CORRECTED}


def resolve_bootstrap(kind: str, n_subjects: int, resampling: bool = True) -> str:
    """The bootstrap a request means for S subjects: "auto" is the corrected two-factor bootstrap
    with >= 2 subjects and the stimulus bootstrap with one; resampling the subjects of one
    subject is refused (unless nothing is resampled)."""
    if kind not in BOOTSTRAP_CHOICES:
        raise InvalidInputError(f"bootstrap must be one of {BOOTSTRAP_CHOICES}, got {kind!r}")
    if kind == "auto":
        return "both-corrected" if n_subjects >= 2 else "stimuli"
    if kind != "stimuli" and n_subjects < 2 and resampling:
        raise InvalidInputError(f"bootstrap={kind!r} resamples subjects and needs >= 2 subject RDMs; "
                                "use bootstrap='stimuli'")
    return kind


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


@dataclass
class DualBootstrap:
    """One set of bootstrap draws scored three ways, as rsatoolbox's `eval_dual_bootstrap` does:
    `both` resamples subjects and stimuli, `subjects` only the subjects of the same draw,
    `stimuli` only its stimuli. Each is (B, L): subject-mean similarity per resample and model."""

    both: torch.Tensor
    subjects: torch.Tensor
    stimuli: torch.Tensor
    n_subjects: int
    n_stimuli: int


def dual_bootstrap(model_rdms, data_rdms, method: str, n_bootstrap: int, seed: int = 0,
                   backend: str = "auto", indices: tuple[np.ndarray, np.ndarray] | None = None) -> DualBootstrap:
    """Two-factor bootstrap of the subject-mean similarity of L model RDMs (L, K) with S subject
    RDMs (S, K), with its two single-factor parts from the same draws (see `DualBootstrap`).

    `indices`: explicit draws (stimulus indices (B, n), subject indices (B, S)), e.g. rsatoolbox's
    own; else drawn from `np.random.default_rng(seed)` as `bootstrap_indices(kind="both")`.
    """
    method = canonical_method(method)
    x = _condensed(model_rdms, None, None, "model RDMs")
    y = _condensed(data_rdms, x.device, x.dtype, "data RDMs")
    x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    n, s = n_stimuli_from_length(x.shape[-1]), y.shape[0]
    if s < 2:
        raise InvalidInputError("a two-factor bootstrap needs >= 2 subject RDMs; use bootstrap='stimuli'")
    if indices is None:
        stim, subj = bootstrap_indices(n, s, n_bootstrap, "both", seed)
    else:
        stim, subj = (np.asarray(i, dtype=np.int64) for i in indices)
        if stim.ndim != 2 or subj.ndim != 2 or stim.shape[0] != subj.shape[0] or stim.shape[1] != n \
                or subj.shape[1] != s:
            raise InvalidInputError(f"indices must be (B, {n}) stimulus and (B, {s}) subject draws; got "
                                    f"{stim.shape} and {subj.shape}")
    per = bootstrap_per_subject(x, y, method, stim, backend)  # (B, L, S) on resampled stimuli
    plain = compare_rdms(x, y, method, backend=backend)  # (L, S)
    return DualBootstrap(both=_subject_mean(per, subj), stimuli=per.mean(-1),
                         subjects=_subject_mean(plain.expand(stim.shape[0], *plain.shape), subj),
                         n_subjects=s, n_stimuli=n)


def corrected_variance(v_both, v_subjects, v_stimuli, n_subjects: int, n_stimuli: int) -> np.ndarray:
    """Variance of a mean over S subjects and n stimuli from the three bootstrap variances of one
    set of draws (Schütt et al. 2023, eLife 12:e82566; the small-sample form of rsatoolbox 0.3.2's
    `util.inference_util._dual_bootstrap`, which `eval_dual_bootstrap` results use).

    v = S/(S-1) v_subj + n/(n-1) v_stim - S n/((S-1)(n-1)) (v_both - v_subj - v_stim): the
    two-factor variance counts measurement noise once through each factor, and the interaction
    term removes the excess. Bounded below by each bias-corrected single-factor variance and above
    by v_both, as rsatoolbox bounds it.
    """
    vb, vr, vp = (np.asarray(v, dtype=np.float64) for v in (v_both, v_subjects, v_stimuli))
    if n_subjects < 2 or n_stimuli < 2:
        raise InvalidInputError(f"the corrected variance needs >= 2 subjects and stimuli; got {n_subjects}, {n_stimuli}")
    fr, fp = n_subjects / (n_subjects - 1), n_stimuli / (n_stimuli - 1)
    v = fr * vr + fp * vp - fr * fp * (vb - vr - vp)
    return np.minimum(np.maximum(np.maximum(v, fr * vr), fp * vp), vb)


def two_factor_interval(estimate, both, subjects, stimuli, n_subjects: int, n_stimuli: int,
                        ci: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, corrected variance) per column: estimate +- t(1 - (1 - ci)/2, min(S, n) - 1)
    sqrt(v), v from `corrected_variance` of the sample variances (ddof 1) of the three (B, L)
    bootstraps over the resamples finite in all three; rsatoolbox's `Result.get_ci` with
    test_type='t-test', centred on the plain-sample estimate rather than the bootstrap mean."""
    from scipy.stats import t as t_dist

    est = np.asarray(estimate, dtype=np.float64).reshape(-1)
    parts = [np.asarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a,
                        dtype=np.float64).reshape(-1, est.size) for a in (both, subjects, stimuli)]
    ok = np.isfinite(parts[0]) & np.isfinite(parts[1]) & np.isfinite(parts[2])
    var = np.full(est.size, np.nan)
    for j in range(est.size):
        keep = ok[:, j]
        if keep.sum() >= 2:
            vb, vr, vp = (np.var(p[keep, j], ddof=1) for p in parts)
            var[j] = corrected_variance(vb, vr, vp, n_subjects, n_stimuli)
    half = t_dist.ppf(1 - (1 - ci) / 2, min(n_subjects, n_stimuli) - 1) * np.sqrt(var)
    return est - half, est + half, var


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
    variance: np.ndarray | None = None  # (L,) corrected two-factor variance (bootstrap="both-corrected")

    @property
    def interval(self) -> str:
        """The interval's convention name (`neurobench.conventions`)."""
        return INTERVAL_CONVENTION[self.bootstrap] if self.n_bootstrap > 0 else NO_INTERVAL


def score_rdms(model_rdms, data_rdms, method: str = "tau_a", n_bootstrap: int = 1000,
               seed: int = 0, bootstrap: str = "auto", ci: float = 0.95, *, device=None,
               dtype=None, ceiling: bool = True, backend: str = "auto") -> RSAScores:
    """Score L model RDMs (L, K) against S subject RDMs (S, K): per-subject similarities, their
    mean, Nili noise ceiling (S >= 2), fixed-effects SEM over subjects, and a seeded bootstrap CI
    of the subject mean: `bootstrap` "stimuli" / "subjects" / "both" (percentile intervals) or
    "both-corrected" (Schütt et al. 2023 corrected two-factor variance, t interval); "auto" is
    "both-corrected" with >= 2 subjects, else "stimuli" (module docstring)."""
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
    kind = resolve_bootstrap(bootstrap, s, resampling=n_bootstrap > 0)
    nan = torch.full_like(score, float("nan"))
    ci_low, ci_high, samples, variance = nan, nan.clone(), None, None
    if n_bootstrap > 0 and kind == "both-corrected":
        dual = dual_bootstrap(x, y, method, n_bootstrap, seed, backend=backend)
        lo, hi, variance = two_factor_interval(score.cpu().numpy(), dual.both, dual.subjects, dual.stimuli,
                                               dual.n_subjects, dual.n_stimuli, ci)
        ci_low, ci_high = (torch.as_tensor(v, dtype=score.dtype, device=score.device) for v in (lo, hi))
        samples = dual.both
    elif n_bootstrap > 0:
        samples = bootstrap_scores(x, y, method, n_bootstrap, seed, kind, backend=backend)
        ci_low, ci_high = percentile_ci(samples, ci)
    return RSAScores(score=score, per_subject=per_subject, ceiling_lower=lower,
                     ceiling_upper=upper, ci_low=ci_low, ci_high=ci_high, n_bootstrap=n_bootstrap,
                     seed=seed, method=method, bootstrap=kind, ci=ci, sem=sem,
                     ceiling_note=note, samples=samples, variance=variance)


# ---------------------------------------------------------------- multiple comparisons

P_ADJUSTMENTS = {
    "holm": "Holm (1979) step-down: controls the family-wise error rate",
    "fdr_bh": "Benjamini-Hochberg (1995) step-up: controls the false discovery rate",
}


def adjust_pvalues(p, method: str = "holm") -> np.ndarray:
    """p-values of a family of tests adjusted for multiple comparisons: `method` "holm" (family-
    wise error) or "fdr_bh" (false discovery rate), as statsmodels' `multipletests` and R's
    `p.adjust` define them; NaN p-values stay NaN and do not count in the family."""
    if method not in P_ADJUSTMENTS:
        raise InvalidInputError(f"p-value adjustment must be one of {list(P_ADJUSTMENTS)}, got {method!r}")
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    ranked = q[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        adj = np.minimum.accumulate(m / np.arange(m, 0, -1) * ranked[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adj, 1.0)
    out[ok] = adjusted
    return out
