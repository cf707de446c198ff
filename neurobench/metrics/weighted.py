"""Comparators on integer-weighted RDM entries: the stimulus bootstrap without resampled copies.

Resampling n stimuli with replacement (counts c_i) and dropping the pairs of a stimulus with its
own copy, as rsatoolbox's `subsample_pattern` does, leaves every original pair (i, j) repeated
c_i * c_j times. Pearson, cosine, Spearman, rho-a and tau-a of the resampled vectors are therefore
weighted statistics of the original vectors with weights c_i * c_j, computed here for many
bootstrap samples at once (matmuls and one sort per RDM instead of one sort per sample).
"""

from __future__ import annotations

import numpy as np
import torch

from . import ranks

WEIGHTED_METHODS = ("pearson", "cosine", "spearman", "rho_a", "tau_a")


def pair_weights(stim_idx: np.ndarray, n: int, device, dtype) -> torch.Tensor:
    """(B, n) resampled stimulus indices -> (B, K) weights c_i * c_j over condensed pairs."""
    counts = np.zeros((stim_idx.shape[0], n), dtype=np.int64)
    rows = np.repeat(np.arange(stim_idx.shape[0]), stim_idx.shape[1])
    np.add.at(counts, (rows, stim_idx.ravel()), 1)
    a, b = np.triu_indices(n, k=1)
    w = counts[:, a] * counts[:, b]
    return torch.as_tensor(w, device=device).to(dtype)


def _weighted_pearson(x, y, w, center: bool) -> torch.Tensor:
    """x (B, M, K) or (M, K); y likewise with N rows; w (B, K) -> (B, M, N)."""
    if x.ndim == 2 and y.ndim == 2:
        return _weighted_pearson_2d(x, y, w, center)
    xb = x if x.ndim == 3 else x.expand(w.shape[0], *x.shape)
    yb = y if y.ndim == 3 else y.expand(w.shape[0], *y.shape)
    sw = w.sum(-1)[:, None, None]
    wx = xb * w[:, None, :]
    sxy = wx @ yb.transpose(-1, -2)
    sxx = (wx * xb).sum(-1)
    syy = (yb * yb * w[:, None, :]).sum(-1)
    if center:
        sx = wx.sum(-1)
        sy = (yb * w[:, None, :]).sum(-1)
        sxy = sxy - sx[:, :, None] * sy[:, None, :] / sw
        sxx = sxx - sx * sx / sw[:, :, 0]
        syy = syy - sy * sy / sw[:, :, 0]
    den = torch.sqrt(sxx.clamp_min(0)[:, :, None] * syy.clamp_min(0)[:, None, :])
    return torch.where(den > 0, sxy / torch.where(den > 0, den, torch.ones_like(den)),
                       torch.zeros_like(sxy))


def _weighted_pearson_2d(x, y, w, center: bool) -> torch.Tensor:
    """Same as _weighted_pearson for unbatched x, y: only (B, K) @ (K, .) matmuls."""
    sw = w.sum(-1)[:, None, None]
    sxy = torch.stack([w @ (x * y[j]).T for j in range(y.shape[0])], dim=-1)  # (B, M, N)
    sxx = w @ (x * x).T
    syy = w @ (y * y).T
    if center:
        sx, sy = w @ x.T, w @ y.T
        sxy = sxy - sx[:, :, None] * sy[:, None, :] / sw
        sxx = sxx - sx * sx / sw[:, :, 0]
        syy = syy - sy * sy / sw[:, :, 0]
    den = torch.sqrt(sxx.clamp_min(0)[:, :, None] * syy.clamp_min(0)[:, None, :])
    return torch.where(den > 0, sxy / torch.where(den > 0, den, torch.ones_like(den)),
                       torch.zeros_like(sxy))


def weighted_compare(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, method: str) -> torch.Tensor:
    """(B, M, N) similarities of x (M, K) and y (N, K) under entry weights w (B, K)."""
    if method == "pearson":
        return _weighted_pearson(x, y, w, center=True)
    if method == "cosine":
        return _weighted_pearson(x, y, w, center=False)
    if method in ("spearman", "rho_a"):
        rx, ry = ranks.weighted_average_ranks(x, w), ranks.weighted_average_ranks(y, w)
        if method == "spearman":
            return _weighted_pearson(rx, ry, w, center=True)
        nn = w.sum(-1)
        mean = (nn + 1) / 2
        rxc = rx - mean[:, None, None]
        ryc = ry - mean[:, None, None]
        cov = (rxc * w[:, None, :]) @ ryc.transpose(-1, -2)
        return cov * (12.0 / (nn**3 - nn))[:, None, None]
    if method == "tau_a":
        return ranks.weighted_tau_a(x, y, w.round().to(torch.int64)).to(x.dtype)
    raise ValueError(f"no weighted form of {method!r}")
