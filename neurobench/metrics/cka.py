"""Centered kernel alignment (Kornblith et al. 2019), linear and debiased, batched on device.

linear CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with linear Gram matrices of column-centred
features. The debiased form replaces HSIC by the unbiased estimator of Song et al. (2012), as
Nguyen, Raghu & Kornblith (2021) do, which removes the upward bias of CKA when features outnumber
stimuli. Computed from n x n Gram matrices, so cost is independent of the feature counts beyond
one matmul.
"""

from __future__ import annotations

import torch

from ..errors import InvalidInputError
from .rdm import as_tensor


def _gram(x: torch.Tensor) -> torch.Tensor:
    xc = x - x.mean(dim=-2, keepdim=True)
    return xc @ xc.transpose(-1, -2)


def _hsic_biased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
    kc = k - k.mean(-1, keepdim=True) - k.mean(-2, keepdim=True) + k.mean((-1, -2), keepdim=True)
    return (kc * l).sum((-1, -2))


def _hsic_unbiased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
    n = k.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=k.device)
    kt = k.masked_fill(eye, 0.0)
    lt = l.masked_fill(eye, 0.0)
    term1 = (kt * lt).sum((-1, -2))
    term2 = kt.sum((-1, -2)) * lt.sum((-1, -2)) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (kt.sum(-1) * lt.sum(-1)).sum(-1)
    return (term1 + term2 - term3) / (n * (n - 3))


def linear_cka(x, y, debiased: bool = False, device=None, dtype=None) -> torch.Tensor:
    """CKA between x (..., n, p) and y (..., n, q) over the same n stimuli; leading axes broadcast
    (e.g. x (L, n, p) against y (n, q) gives (L,)). Returns NaN where a representation is
    constant (zero self-similarity)."""
    xt = as_tensor(x, device, dtype)
    yt = as_tensor(y, xt.device, xt.dtype)
    if xt.ndim < 2 or yt.ndim < 2:
        raise InvalidInputError("CKA needs (..., n_stimuli, n_features) arrays")
    n = xt.shape[-2]
    if yt.shape[-2] != n:
        raise InvalidInputError(f"CKA compares the same stimuli; got {n} and {yt.shape[-2]} rows")
    if n < (4 if debiased else 2):
        raise InvalidInputError(f"{'debiased ' if debiased else ''}CKA needs more stimuli; got {n}")
    k, l = _gram(xt), _gram(yt)  # noqa: E741
    hsic = _hsic_unbiased if debiased else _hsic_biased
    kl, kk, ll = hsic(k, l), hsic(k, k), hsic(l, l)
    den = torch.sqrt(kk * ll)
    return torch.where(den > 0, kl / torch.where(den > 0, den, torch.ones_like(den)),
                       torch.full_like(kl, float("nan")))
