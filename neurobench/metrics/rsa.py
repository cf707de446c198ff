"""RDM comparators and the Nili et al. (2014) noise ceiling, batched (bootstrapped scores are in
`metrics.inference`, which builds on these).

Every comparator follows rsatoolbox 0.3.2's definition (`rsatoolbox.rdm.compare`):
- `tau_a`: Kendall tau-a, (concordant - discordant) / (K(K-1)/2), ties count as neither;
- `rho_a`: 12 / (K^3 - K) * sum of products of centred average ranks (Spearman without tie
  correction in the normaliser);
- `spearman`: Pearson correlation of average ranks;
- `pearson` (rsatoolbox `corr`): Pearson correlation;
- `cosine`: cosine similarity (0 when either vector is all zeros, as rsatoolbox does);
- `corr_cov` / `cosine_cov`: correlation / cosine after whitening by the covariance of
  dissimilarity estimates under i.i.d. pattern noise (no `sigma_k`), which equals the cosine of
  the double-centred matrices -D/2 (with the diagonal included).
Entries that are NaN in any compared RDM are removed from all of them (jointly); model and data
RDMs whose NaN positions differ are refused, as rsatoolbox refuses them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import InvalidInputError
from ..ids import check_same_ids
from . import ranks
from .ranks import average_ranks, tau_a
from .rdm import as_tensor, n_stimuli_from_length

log = logging.getLogger(__name__)

COMPARATORS = ("tau_a", "rho_a", "spearman", "pearson", "cosine", "corr_cov", "cosine_cov")
_ALIASES = {"tau-a": "tau_a", "rho-a": "rho_a", "corr": "pearson", "correlation": "pearson"}
BOOTSTRAP_KINDS = ("stimuli", "subjects", "both")


def canonical_method(method: str) -> str:
    """Comparator name in neurobench spelling; rsatoolbox spellings ('tau-a', 'corr') accepted."""
    name = _ALIASES.get(method, method)
    if name not in COMPARATORS:
        raise InvalidInputError(
            f"unknown RDM comparator {method!r}; choose one of {COMPARATORS} "
            "(rsatoolbox spellings 'tau-a', 'rho-a', 'corr' also work)"
        )
    return name


def _condensed(rdms, device, dtype, what: str) -> torch.Tensor:
    t = as_tensor(rdms, device, dtype)
    if t.ndim < 1 or t.shape[-1] == 0:
        raise InvalidInputError(f"{what}: expected condensed RDM vectors (..., K), got {tuple(t.shape)}")
    n = n_stimuli_from_length(t.shape[-1])
    if n < 3:
        raise InvalidInputError(f"{what}: RDMs need at least 3 stimuli; got {n}")
    # a finite sum means no inf (or NaN) anywhere: one cheap reduction instead of a mask on most calls
    if not bool(torch.isfinite(t.sum())) and bool(torch.isinf(t).any()):
        raise InvalidInputError(f"{what}: dissimilarities must be finite (NaN marks a missing entry); found inf")
    return t


def _joint_nan_mask(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Entries kept (non-NaN everywhere); InvalidInputError when the two sides disagree."""
    x2, y2 = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    # any NaN makes the sum NaN; only then look entry by entry (inf - inf is NaN too)
    if not (bool(torch.isnan(x2.sum())) or bool(torch.isnan(y2.sum()))):
        return torch.ones(x.shape[-1], dtype=torch.bool, device=x.device)
    nx = torch.isnan(x2).any(dim=0)
    ny = torch.isnan(y2).any(dim=0)
    if not torch.equal(nx, ny):
        only_x = int((nx & ~ny).sum())
        only_y = int((ny & ~nx).sum())
        raise InvalidInputError(
            f"model and data RDMs have NaN in different entries ({only_x} NaN only in the model "
            f"RDMs, {only_y} only in the data RDMs); mask the same dissimilarities on both sides"
        )
    keep = ~nx
    if int(keep.sum()) < 3:
        raise InvalidInputError("fewer than 3 dissimilarities are non-NaN in every RDM; nothing to compare")
    return keep


_SERIAL_MATMUL_FLOPS = 2**22


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b; single-threaded on CPU when small: a BLAS thread pool costs more than such a product
    (tens of milliseconds on a busy 2-core machine for a 50 x 190 x 4 product that takes 10 us)."""
    if a.device.type != "cpu" or a.shape[0] * a.shape[1] * b.shape[-1] > _SERIAL_MATMUL_FLOPS:
        return a @ b
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return a @ b
    finally:
        torch.set_num_threads(before)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    na = torch.linalg.vector_norm(a, dim=-1)
    nb = torch.linalg.vector_norm(b, dim=-1)
    num = _matmul(a, b.T)
    den = na[:, None] * nb[None, :]
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


def _center(v: torch.Tensor) -> torch.Tensor:
    return v - v.mean(dim=-1, keepdim=True)


def _pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson r of every row of x (M, K) with every row of y (N, K), as `_cosine` of the centred
    rows (0 for a constant row), without a centred copy of the larger side: x . (y - ybar) equals
    (x - xbar) . (y - ybar), and |x - xbar|^2 = |x|^2 - K xbar^2 (float64; float32 centres)."""
    if x.shape[0] < y.shape[0]:
        return _pearson(y, x).T
    if x.dtype != torch.float64:
        return _cosine(_center(x), _center(y))
    yc = _center(y)
    k = x.shape[-1]
    mean = x.sum(dim=-1) / k
    sq = torch.linalg.vector_norm(x, dim=-1) ** 2
    nx2 = (sq - k * mean * mean).clamp_min(0)
    near = torch.nonzero(nx2 <= 1e-9 * sq, as_tuple=True)[0]  # maybe constant: decided exactly
    if near.numel():
        nx2[near] = torch.where(x[near].amax(-1) == x[near].amin(-1), torch.zeros_like(nx2[near]),
                                (x[near] - mean[near, None]).square().sum(-1))
    nx = nx2.sqrt()
    den = nx[:, None] * torch.linalg.vector_norm(yc, dim=-1)[None, :]
    num = _matmul(x, yc.T)
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


def _pair_index(n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.triu_indices(n, n, offset=1, device=device))


def cov_whiten(v: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """rsatoolbox's `_cov_weighting` without sigma_k: vectors (R, K') of kept entries ->
    (R, K' + n) isotropic representation (double-centred -D/2, off-diagonal scaled by sqrt 2).

    Without NaN this is exact double centring; with NaN it is rsatoolbox's weighted
    least-squares removal of row/column effects over the entries present.
    """
    n = n_stimuli_from_length(keep.shape[0])
    k = v.shape[-1]
    dev, dt = v.device, v.dtype
    w = torch.cat([-0.5 * v, torch.zeros(v.shape[0], n, dtype=dt, device=dev)], dim=1)
    rows, cols = _pair_index(n, dev)
    rows, cols = rows[keep], cols[keep]
    # indicator (K' + n, n): pair (i, j) -> e_i + e_j; diagonal (i, i) -> 2 e_i
    ind = torch.zeros(k + n, n, dtype=dt, device=dev)
    ar = torch.arange(k, device=dev)
    ind[ar, rows] += 1
    ind[ar, cols] += 1
    ind[k + torch.arange(n, device=dev), torch.arange(n, device=dev)] = 2
    if bool(keep.all()):
        m = w @ ind / n
        mm = (2 * w).sum(dim=1, keepdim=True) / (n * n)
        w = w - m @ ind.T + mm
    else:
        ind[k:] /= 2
        diag = torch.cat([torch.full((k, 1), 0.5, dtype=dt, device=dev),
                          torch.ones(n, 1, dtype=dt, device=dev)])
        wi = diag * ind
        w = w - (w @ ind) @ torch.linalg.solve(ind.T @ wi, wi.T)
    w[:, :k] = w[:, :k] * math.sqrt(2.0)
    return w


def _as_f64(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float64, copy=False))


def _compare_flat(x: torch.Tensor, y: torch.Tensor, method: str, keep: torch.Tensor,
                  backend: str) -> torch.Tensor:
    """x (M, K'), y (N, K') already NaN-free -> (M, N)."""
    if method == "cosine":
        return _cosine(x, y)
    if method == "pearson":
        return _pearson(x, y)
    if method in ("spearman", "rho_a"):
        if ranks._use_numba(x, backend):  # CPU: model ranks never materialised
            out = ranks.rank_correlations(_as_f64(x), _as_f64(y), method)
            if out is not None:
                return torch.from_numpy(out).to(dtype=x.dtype)
        rx, ry = _center(average_ranks(x, backend)), _center(average_ranks(y, backend))
        if method == "spearman":
            return _cosine(rx, ry)
        k = x.shape[-1]
        return (rx @ ry.T) * (12.0 / (k**3 - k))
    if method == "tau_a":
        return tau_a(x, y, backend).to(device=x.device, dtype=x.dtype)
    if method == "cosine_cov":
        return _cosine(cov_whiten(x, keep), cov_whiten(y, keep))
    if method == "corr_cov":
        return _cosine(cov_whiten(_center(x), keep), cov_whiten(_center(y), keep))
    raise InvalidInputError(f"unknown comparator {method!r}")  # pragma: no cover


def compare_rdms(model_rdms, data_rdms, method: str = "tau_a", *, device=None, dtype=None,
                 model_ids: Sequence | None = None, data_ids: Sequence | None = None,
                 backend: str = "auto") -> torch.Tensor:
    """Similarity of every model RDM with every data RDM.

    model_rdms: condensed (M, K) or (K,); data_rdms: (S, K), (K,) or (S, T, K) with a time axis.
    Returns (M, S) or (M, S, T). Pass stimulus ids to have order/set mismatches refused.
    `backend`: "auto" (numba on CPU when installed, else torch), "torch" or "numba".
    """
    method = canonical_method(method)
    if model_ids is not None and data_ids is not None:
        check_same_ids(model_ids, data_ids, "model RDMs", "data RDMs",
                       hint="compute both RDMs over the same stimuli")
    x = _condensed(model_rdms, device, dtype, "model RDMs")
    y = _condensed(data_rdms, x.device, x.dtype, "data RDMs")
    if x.shape[-1] != y.shape[-1]:
        raise InvalidInputError(
            f"model RDMs cover {n_stimuli_from_length(x.shape[-1])} stimuli, data RDMs "
            f"{n_stimuli_from_length(y.shape[-1])}; compute both over the same stimulus set"
        )
    if x.ndim > 2:
        raise InvalidInputError(f"model RDMs must be (M, K); got {tuple(x.shape)}")
    if y.ndim > 3:
        raise InvalidInputError(f"data RDMs must be (S, K) or (S, T, K); got {tuple(y.shape)}")
    x2 = x.reshape(-1, x.shape[-1])
    y2 = y.reshape(-1, y.shape[-1])
    keep = _joint_nan_mask(x2, y2)
    xk = x2[:, keep] if not bool(keep.all()) else x2
    yk = y2[:, keep] if not bool(keep.all()) else y2
    out = _compare_flat(xk, yk, method, keep, backend)
    if y.ndim == 1:
        out = out[:, 0]
    else:
        out = out.reshape(x2.shape[0], *y.shape[:-1])
    if x.ndim == 1:
        out = out[0]
    return out


# ---------------------------------------------------------------- pooling and noise ceiling

def _nan_std(v: torch.Tensor) -> torch.Tensor:
    mu = torch.nanmean(v, dim=-1, keepdim=True)
    return torch.sqrt(torch.nanmean((v - mu) ** 2, dim=-1, keepdim=True))


def _nan_average_ranks(v: torch.Tensor) -> torch.Tensor:
    out = torch.full_like(v, float("nan"))
    for i in range(v.shape[0]):
        ok = ~torch.isnan(v[i])
        out[i, ok] = average_ranks(v[i, ok][None])[0]
    return out


def pool_rdms(data_rdms, method: str) -> torch.Tensor:
    """The pooled RDM (K,) that rsatoolbox's `pool_rdm` builds for `method` (Nili et al. 2014).

    rank comparators: mean of rank-transformed RDMs; pearson / corr_cov: mean of z-scored RDMs
    shifted to a zero minimum; cosine / cosine_cov: mean of RMS-normalised RDMs. Entries NaN in the
    first RDM stay NaN (rsatoolbox's `_nan_mean`).
    """
    method = canonical_method(method)
    v = as_tensor(data_rdms)
    v = v.reshape(-1, v.shape[-1])
    if method in ("cosine", "cosine_cov"):
        v = v / torch.sqrt(torch.nanmean(v**2, dim=1, keepdim=True))
    elif method in ("pearson", "corr_cov"):
        v = v - torch.nanmean(v, dim=1, keepdim=True)
        v = v / _nan_std(v)
    else:
        v = _nan_average_ranks(v)
    ok = ~torch.isnan(v[0])
    pooled = torch.full((v.shape[1],), float("nan"), dtype=v.dtype, device=v.device)
    pooled[ok] = v[:, ok].mean(dim=0)
    if method in ("pearson", "corr_cov"):
        pooled = pooled - pooled[ok].min()
    return pooled


def noise_ceiling(data_rdms, method: str = "tau_a", device=None, dtype=None) -> tuple[float, float]:
    """(lower, upper) Nili et al. (2014) noise ceiling, as rsatoolbox's `boot_noise_ceiling`.

    lower: mean over subjects of comparing each subject with the pooled RDM of the others;
    upper: the same with the pooled RDM of all subjects. Needs >= 2 subject RDMs (S, K).
    """
    method = canonical_method(method)
    y = _condensed(data_rdms, device, dtype, "data RDMs")
    if y.ndim != 2 or y.shape[0] < 2:
        raise InvalidInputError(
            f"a noise ceiling needs >= 2 subject RDMs (S, K); got shape {tuple(y.shape)}"
        )
    s = y.shape[0]
    pooled_all = pool_rdms(y, method)
    upper = compare_rdms(pooled_all[None], y, method)[0]
    lower = torch.stack([
        compare_rdms(pool_rdms(y[torch.arange(s, device=y.device) != i], method)[None],
                     y[i:i + 1], method)[0, 0]
        for i in range(s)
    ])
    return float(lower.mean()), float(upper.mean())
