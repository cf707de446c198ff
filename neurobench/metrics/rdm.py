"""Representational dissimilarity matrices (RDMs): computed in batches on device, checked, folded.

Conventions (kept identical to rsatoolbox 0.3.2 where it defines the same thing):

- `correlation`: 1 - Pearson correlation between two stimuli's patterns (across features).
- `euclidean`: rsatoolbox's "euclidean", which is the *squared* Euclidean distance divided by the
  number of features (the mean squared difference). The name is rsatoolbox's; the value is not
  scipy's `euclidean`.
- `sqeuclidean`: scipy's `sqeuclidean`, the plain sum of squared differences (no division).
- `cosine`: 1 - cosine similarity (scipy's `cosine`).
- `crossnobis_rdms`: rsatoolbox's `calc_rdm_crossnobis` (leave-one-fold-out, optional noise
  precision, divided by the number of features); unbiased, so it can be negative.

Condensed vectors follow scipy's `squareform` order: row-major upper triangle without diagonal.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..devices import resolve_device, resolve_dtype
from ..errors import InvalidInputError

RDM_METHODS = ("correlation", "euclidean", "sqeuclidean", "cosine")


def as_tensor(x, device=None, dtype=None) -> torch.Tensor:
    """Tensor on `device` (None: the tensor's own, else auto) in `dtype` (None: float32).

    A float64 tensor keeps float64 when dtype is None, so validation runs stay exact.
    """
    if isinstance(x, torch.Tensor):
        dev = x.device if device is None else resolve_device(device)
        if dtype is None:
            dt = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        else:
            dt = resolve_dtype(dtype)
        return x.to(device=dev, dtype=dt)
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidInputError(f"expected a numeric array, got dtype {arr.dtype}")
    dt = resolve_dtype(dtype)
    return torch.as_tensor(arr, device=resolve_device("auto" if device is None else device)).to(dt)


def n_stimuli_from_length(k: int) -> int:
    """n such that n(n-1)/2 == k; InvalidInputError if k is not such a number."""
    n = int(round((1 + math.sqrt(1 + 8 * k)) / 2))
    if n * (n - 1) // 2 != k:
        raise InvalidInputError(
            f"a condensed RDM has n(n-1)/2 entries for n stimuli; {k} is not such a number. "
            "Pass the upper triangle in scipy squareform order (or a square matrix)."
        )
    return n


def _triu_index(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    rows, cols = torch.triu_indices(n, n, offset=1, device=device)
    return rows, cols


def upper_triangle(rdms) -> torch.Tensor:
    """(..., n, n) -> (..., n(n-1)/2): row-major upper triangle, scipy `squareform` order."""
    t = rdms if isinstance(rdms, torch.Tensor) else torch.as_tensor(np.asarray(rdms))
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise InvalidInputError(f"expected square RDMs (..., n, n), got shape {tuple(t.shape)}")
    rows, cols = _triu_index(t.shape[-1], t.device)
    return t[..., rows, cols]


def square_form(vectors) -> torch.Tensor:
    """(..., n(n-1)/2) -> (..., n, n) symmetric with a zero diagonal (inverse of upper_triangle)."""
    v = vectors if isinstance(vectors, torch.Tensor) else torch.as_tensor(np.asarray(vectors))
    if v.ndim < 1:
        raise InvalidInputError("expected condensed RDM vectors (..., n(n-1)/2), got a scalar")
    n = n_stimuli_from_length(v.shape[-1])
    rows, cols = _triu_index(n, v.device)
    out = torch.zeros(*v.shape[:-1], n, n, dtype=v.dtype, device=v.device)
    out[..., rows, cols] = v
    out[..., cols, rows] = v
    return out


def pair_positions(n: int, index, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the pairs among stimuli `index` (in that order; repeats allowed) sit in a condensed
    RDM over n stimuli, and which of those pairs are a stimulus with itself (no position of its
    own: its entry is clamped and must be masked by the caller)."""
    idx = torch.as_tensor(np.asarray(index), dtype=torch.long, device=device)
    a, b = torch.triu_indices(len(idx), len(idx), offset=1, device=idx.device)
    ia, ib = idx[a], idx[b]
    lo, hi = torch.minimum(ia, ib), torch.maximum(ia, ib)
    same = lo == hi
    pos = lo * n - lo * (lo + 1) // 2 + (hi - lo - 1)
    return pos.clamp(0, max(n * (n - 1) // 2 - 1, 0)), same


def subset_condensed(vectors: torch.Tensor, index) -> torch.Tensor:
    """Condensed RDMs (..., K) restricted to the (distinct) stimuli in `index`, in that order."""
    n = n_stimuli_from_length(vectors.shape[-1])
    pos, same = pair_positions(n, index, vectors.device)
    if bool(same.any()):
        raise InvalidInputError("subset_condensed takes distinct stimuli; resample with repeats through "
                                "metrics.inference.resample_condensed")
    return vectors[..., pos]


def validate_rdms(rdms, atol: float = 1e-8, rtol: float = 1e-6) -> torch.Tensor:
    """Check square RDMs (..., n, n): n >= 3, symmetric, zero diagonal. Returns them as a tensor.

    NaN entries off the diagonal are allowed (they are removed jointly when compared) but must be
    symmetric. The tolerance scales with the largest finite dissimilarity.
    """
    t = rdms if isinstance(rdms, torch.Tensor) else torch.as_tensor(np.asarray(rdms, dtype=float))
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise InvalidInputError(
            f"RDMs must be square (..., n, n); got shape {tuple(t.shape)}. "
            "Condensed vectors can be expanded with square_form()."
        )
    n = t.shape[-1]
    if n < 3:
        raise InvalidInputError(
            f"RDMs need at least 3 stimuli (an RDM over {n} has fewer than 3 dissimilarities "
            "and no rank structure to compare); add stimuli"
        )
    finite = torch.isfinite(t)
    scale = float(t[finite].abs().max()) if bool(finite.any()) else 1.0
    tol = atol + rtol * scale
    diag = torch.diagonal(t, dim1=-2, dim2=-1)
    bad_diag = ~(diag.abs() <= tol)
    if bool(bad_diag.any()):
        where = torch.nonzero(bad_diag)[0].tolist()
        raise InvalidInputError(
            f"RDM diagonal must be zero (a stimulus is not dissimilar to itself); found "
            f"{float(diag[tuple(where)])} at index {where}. Pass dissimilarities, not similarities, "
            "and set the diagonal to 0."
        )
    tt = t.transpose(-1, -2)
    nan_asym = torch.isnan(t) != torch.isnan(tt)
    diff = (t - tt).abs()
    asym = nan_asym | (diff > tol)
    if bool(asym.any()):
        where = torch.nonzero(asym)[0].tolist()
        raise InvalidInputError(
            f"RDMs must be symmetric; entry {where} differs from its transpose "
            f"(max |D - D^T| = {float(torch.nan_to_num(diff, nan=0.0).max()):.3g}, tolerance {tol:.3g}). "
            "Symmetrise with (D + D^T) / 2 if the asymmetry is noise."
        )
    return t




def compute_rdms(patterns, method: str = "correlation", device=None, dtype=None) -> torch.Tensor:
    """Patterns (..., n_stimuli, n_features) -> RDMs (..., n, n), batched over leading axes."""
    if method not in RDM_METHODS:
        raise InvalidInputError(f"unknown RDM method {method!r}; choose one of {RDM_METHODS}")
    x = as_tensor(patterns, device, dtype)
    if x.ndim < 2:
        raise InvalidInputError(
            f"patterns must be (..., n_stimuli, n_features); got shape {tuple(x.shape)}"
        )
    n, f = x.shape[-2], x.shape[-1]
    if n < 3:
        raise InvalidInputError(f"RDMs need at least 3 stimuli; got {n}")
    if f < 1:
        raise InvalidInputError("patterns have no features")
    if not bool(torch.isfinite(x).all()):
        raise InvalidInputError("patterns contain NaN or inf; remove or impute those features first")
    if method in ("correlation", "cosine"):
        if method == "correlation":
            x = x - x.mean(dim=-1, keepdim=True)
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        if bool((norm == 0).any()):
            bad = torch.nonzero(norm[..., 0] == 0)[0].tolist()
            kind = "constant" if method == "correlation" else "all-zero"
            raise InvalidInputError(
                f"stimulus pattern {bad} is {kind} across features, so its {method} distance is "
                "undefined; drop that stimulus or use method='euclidean'"
            )
        x = x / norm
        rdm = 1.0 - x @ x.transpose(-1, -2)
    else:
        sq = (x * x).sum(dim=-1)
        rdm = sq[..., :, None] + sq[..., None, :] - 2.0 * (x @ x.transpose(-1, -2))
        rdm = rdm.clamp_min(0.0)
        if method == "euclidean":
            rdm = rdm / f
    rdm = 0.5 * (rdm + rdm.transpose(-1, -2))
    rdm.diagonal(dim1=-2, dim2=-1).zero_()
    return rdm


def crossnobis_rdms(patterns, noise=None, device=None, dtype=None) -> torch.Tensor:
    """Cross-validated (crossnobis) RDMs from repeated measurements, as rsatoolbox computes them.

    patterns: (..., n_folds, n_stimuli, n_features), one pattern estimate per fold (run/split).
    noise: optional noise *precision* (n_features, n_features); identity when None (cross-validated
    squared Euclidean). For each fold, the mean of the other folds is crossed with that fold:
    d_ij = (a_i - a_j) P (b_i - b_j)^T / n_features; the RDM is the mean over folds. Noise that is
    independent between folds cancels in expectation, so distances are unbiased (may be negative).
    """
    x = as_tensor(patterns, device, dtype)
    if x.ndim < 3:
        raise InvalidInputError(
            f"crossnobis needs patterns (..., n_folds, n_stimuli, n_features); got {tuple(x.shape)}"
        )
    k, n, f = x.shape[-3], x.shape[-2], x.shape[-1]
    if k < 2:
        raise InvalidInputError(f"cross-validated distances need >= 2 folds (repeats); got {k}")
    if n < 3:
        raise InvalidInputError(f"RDMs need at least 3 stimuli; got {n}")
    if not bool(torch.isfinite(x).all()):
        raise InvalidInputError("patterns contain NaN or inf")
    total = x.sum(dim=-3, keepdim=True)
    train = (total - x) / (k - 1)  # (..., k, n, f): mean of the other folds
    if noise is not None:
        p = as_tensor(noise, x.device, x.dtype)
        if p.shape != (f, f):
            raise InvalidInputError(f"noise precision must be ({f}, {f}); got {tuple(p.shape)}")
        train = train @ p
    kern = train @ x.transpose(-1, -2)  # (..., k, n, n): train_i . test_j
    d = torch.diagonal(kern, dim1=-2, dim2=-1)
    rdm = (d[..., :, None] + d[..., None, :] - kern - kern.transpose(-1, -2)) / f
    rdm = rdm.mean(dim=-3)
    rdm.diagonal(dim1=-2, dim2=-1).zero_()
    return rdm
