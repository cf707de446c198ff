"""Feature reduction for very wide layers, on device: sparse random projection and PCA.

* Sparse random projection (Achlioptas 2003; Li, Hastie & Church 2006): entries
  ``+-sqrt(1 / (density * k))`` with probability ``density / 2`` each, else 0, with
  ``density = 1 / sqrt(p)`` by default; ``k`` defaults to the Johnson-Lindenstrauss dimension
  ``4 ln(n) / (eps^2 / 2 - eps^3 / 3)`` that keeps pairwise distances of ``n`` stimuli within
  ``1 +- eps``.  The matrix is data-independent (only the seed matters), so it may be applied
  before any split; it is drawn on the CPU generator for identical results on every device and
  kept sparse.
* PCA: centred on, and fit to, the training rows only (pass `train_idx` inside CV); keeps
  `n_components` components (an int, or a float in (0, 1) for a fraction of variance).

Every transform returns a `record()` dict that goes into the results.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from ..devices import resolve_device, resolve_dtype
from ..errors import InvalidInputError

log = logging.getLogger(__name__)

__all__ = ["jl_min_dim", "SparseRandomProjection", "PCA", "reduce_features"]


def jl_min_dim(n_samples: int, eps: float = 0.1) -> int:
    """Smallest k keeping all pairwise distances of n_samples points within 1 +- eps (JL)."""
    if not 0 < eps < 1:
        raise InvalidInputError(f"eps must be in (0, 1), got {eps}")
    if n_samples < 1:
        raise InvalidInputError(f"n_samples must be >= 1, got {n_samples}")
    return int(4 * math.log(n_samples) / (eps**2 / 2 - eps**3 / 3))


def _to_tensor(X: Any, device: torch.device, dtype: torch.dtype, name: str = "X") -> torch.Tensor:
    t = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    if t.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (stimuli x features), got {tuple(t.shape)}")
    t = t.to(device=device, dtype=dtype)
    if not bool(torch.isfinite(t).all()):
        raise InvalidInputError(f"{name} contains NaN/inf values; clean the features first")
    return t


class SparseRandomProjection:
    """Seeded sparse random projection to the JL dimension (or a given `n_components`)."""

    def __init__(self, n_components: int | str = "auto", eps: float = 0.1,
                 density: float | str = "auto", seed: int = 0,
                 device: str | torch.device = "auto", dtype: str | torch.dtype = "float32"):
        self.n_components, self.eps, self.density, self.seed = n_components, eps, density, seed
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)
        self.matrix: torch.Tensor | None = None  # sparse (k, p)

    def fit(self, n_samples: int, n_features: int) -> SparseRandomProjection:
        k = jl_min_dim(n_samples, self.eps) if self.n_components == "auto" else int(self.n_components)
        if k < 1:
            raise InvalidInputError(f"n_components must be >= 1, got {k}")
        dens = 1 / math.sqrt(n_features) if self.density == "auto" else float(self.density)
        if not 0 < dens <= 1:
            raise InvalidInputError(f"density must be in (0, 1], got {dens}")
        self.k_, self.p_, self.density_ = k, n_features, dens
        self.skipped_ = k >= n_features
        if self.skipped_:
            log.info("JL dimension %d >= %d features: no projection applied", k, n_features)
            return self
        gen = torch.Generator().manual_seed(int(self.seed))
        rows, cols, vals = [], [], []
        step = max(1, int(2**24 // max(n_features, 1)))
        scale = 1 / math.sqrt(dens * k)
        for s in range(0, k, step):
            e = min(k, s + step)
            u = torch.rand(e - s, n_features, generator=gen)
            nz = torch.nonzero(u < dens, as_tuple=True)
            sign = torch.where(u[nz] < dens / 2, -1.0, 1.0)
            rows.append(nz[0] + s)
            cols.append(nz[1])
            vals.append(sign * scale)
        idx = torch.stack([torch.cat(rows), torch.cat(cols)])
        self.matrix = torch.sparse_coo_tensor(
            idx, torch.cat(vals), (k, n_features), check_invariants=False).coalesce().to(self.device, self.dtype)
        return self

    def transform(self, X: Any) -> torch.Tensor:
        Xt = _to_tensor(X, self.device, self.dtype)
        if Xt.shape[1] != self.p_:
            raise InvalidInputError(f"X has {Xt.shape[1]} features; projection fit on {self.p_}")
        if self.skipped_:
            return Xt
        return torch.sparse.mm(self.matrix, Xt.T).T.contiguous()

    def fit_transform(self, X: Any) -> torch.Tensor:
        return self.fit(len(X), X.shape[1]).transform(X)

    def record(self) -> dict[str, Any]:
        return {"method": "sparse_random_projection", "n_components": self.k_,
                "n_features_in": self.p_, "eps": self.eps, "density": self.density_,
                "seed": self.seed, "applied": not self.skipped_}


class PCA:
    """PCA fit on training rows only; components from the smaller Gram matrix."""

    def __init__(self, n_components: int | float = 0.99, device: str | torch.device = "auto",
                 dtype: str | torch.dtype = "float32"):
        self.n_components = n_components
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)

    def fit(self, X: Any, train_idx: np.ndarray | None = None) -> PCA:
        Xt = _to_tensor(X, self.device, self.dtype)
        if train_idx is not None:
            Xt = Xt[torch.as_tensor(np.asarray(train_idx), device=self.device)]
        n, p = Xt.shape
        if n < 2:
            raise InvalidInputError(f"PCA needs >= 2 training rows, got {n}")
        self.mean_ = Xt.mean(0)
        Xc = Xt - self.mean_
        if n <= p:
            lam, U = torch.linalg.eigh(Xc @ Xc.T)
            lam, U = lam.flip(0).clamp_min(0), U.flip(1)
            keep = lam > lam[0] * torch.finfo(self.dtype).eps * max(n, p)
            comps = (Xc.T @ U[:, keep]) / torch.sqrt(lam[keep])
            lam = lam[keep]
        else:
            lam, V = torch.linalg.eigh(Xc.T @ Xc)
            lam, comps = lam.flip(0).clamp_min(0), V.flip(1)
        var = lam / (n - 1)
        frac = var / var.sum()
        nc = self.n_components
        if isinstance(nc, float) and 0 < nc < 1:
            k = int(torch.searchsorted(torch.cumsum(frac, 0), torch.tensor(nc, dtype=frac.dtype,
                                                                         device=frac.device))) + 1
        else:
            k = int(nc)
            if k < 1:
                raise InvalidInputError(f"n_components must be >= 1 or a fraction, got {nc}")
        k = min(k, comps.shape[1])
        self.components_ = comps[:, :k]  # (p, k)
        self.explained_variance_ratio_ = frac[:k].cpu().numpy()
        self.n_train_ = n
        self.p_ = p
        return self

    def transform(self, X: Any) -> torch.Tensor:
        Xt = _to_tensor(X, self.device, self.dtype)
        return (Xt - self.mean_) @ self.components_

    def record(self) -> dict[str, Any]:
        return {"method": "pca", "n_components": int(self.components_.shape[1]),
                "requested": self.n_components, "n_features_in": self.p_,
                "fit_rows": self.n_train_,
                "explained_variance": float(self.explained_variance_ratio_.sum())}


def reduce_features(X: Any, method: str | None, train_idx: np.ndarray | None = None, *,
                    device: str | torch.device = "auto", dtype: str | torch.dtype = "float32",
                    **kwargs: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """Apply `method` ("none", "srp" or "pca") and say what was applied.

    PCA is fit on `train_idx` rows only (all rows when None: only outside cross-validation).
    """
    if method in (None, "none"):
        Xt = _to_tensor(X, resolve_device(device), resolve_dtype(dtype))
        return Xt, {"method": "none", "n_features": int(Xt.shape[1])}
    if method == "srp":
        srp = SparseRandomProjection(device=device, dtype=dtype, **kwargs)
        Xt = srp.fit(len(X), X.shape[1]).transform(X)
        return Xt, srp.record()
    if method == "pca":
        pca = PCA(device=device, dtype=dtype, **kwargs).fit(X, train_idx)
        return pca.transform(X), pca.record()
    raise InvalidInputError(f"reduction must be 'none', 'srp' or 'pca', got {method!r}")
