"""Partial least squares regression (PLS2, regression-mode deflation) in torch.

Brain-Score's standard neural predictivity metric maps model activations to neural responses
with scikit-learn's ``PLSRegression(n_components=25, scale=False)``; this module computes the same
model on any torch device, batched over targets, without materialising the deflated X.

Why no deflated X is needed: in regression mode the x-scores t_1..t_k are mutually orthogonal and
deflating X and Y by t_k is the projection P = I - t t'/t't, so the cross-covariance X_k'Y_k
equals X'Y_k and can be updated by a rank-1 term per component; scores are X w orthogonalised
against the previous scores. Each component's weight vector w is the first left singular vector
of X_k'Y_k (exact, from the t x t eigenproblem of (X_k'Y_k)'(X_k'Y_k)); scikit-learn's NIPALS
finds the same vector by power iteration up to its tolerance (``tol=1e-6`` on the squared change
of w), so predictions agree to that tolerance, and to ~1e-10 against NIPALS run to convergence.
Prediction is ``(X - x_mean) @ coef + y_mean`` with ``coef = W (P'W)^+ Q'``, as in scikit-learn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from ..errors import InvalidInputError
from ..registry import register_metric
from .correlation import pearson_columns

log = logging.getLogger(__name__)

__all__ = ["PLSFit", "pls_fit", "pls_predict", "cross_validated_pls"]


@dataclass
class PLSFit:
    """A fitted PLS regression: predictions are ``(X - x_mean) @ coef + y_mean`` (coef = sklearn's coef_.T)."""

    x_mean: torch.Tensor  # (p,)
    x_std: torch.Tensor  # (p,)
    y_mean: torch.Tensor  # (t,)
    coef: torch.Tensor  # (p, t), in the units of X and Y
    x_weights: torch.Tensor  # (p, k)
    x_loadings: torch.Tensor  # (p, k)
    y_loadings: torch.Tensor  # (t, k)
    n_components: int

    def predict(self, X: Any) -> torch.Tensor:
        return pls_predict(self, X)


def _as_tensor(a: Any, device, dtype, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a)
    t = t.to(device=device, dtype=dtype)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise InvalidInputError(f"PLS: {name} must be 2-D (samples x features), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise InvalidInputError(f"PLS: {name} contains NaN or inf values")
    return t


def _std(a: torch.Tensor, scale: bool) -> torch.Tensor:
    if not scale:
        return torch.ones(a.shape[1], dtype=a.dtype, device=a.device)
    s = a.std(dim=0, correction=1)
    return torch.where(s == 0, torch.ones_like(s), s)


def _first_left_singular_vector(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, sigma) of the largest singular value of M (p x t), via the t x t Gram matrix."""
    G = M.T @ M
    evals, evecs = torch.linalg.eigh(G)
    v = evecs[:, -1]
    u = M @ v
    sigma = torch.linalg.vector_norm(u)
    return u / sigma.clamp_min(torch.finfo(M.dtype).tiny), sigma


def pls_fit(X: Any, Y: Any, n_components: int = 25, *, scale: bool = False, device: Any = None,
            dtype: torch.dtype | None = None) -> PLSFit:
    """Fit PLS2 (scikit-learn's PLSRegression model) of Y (n x t) on X (n x p).

    `dtype` defaults to X's floating dtype (float32 for float32 activations); use float64 to
    validate. Components whose cross-covariance is exhausted (X'Y_k = 0) are dropped, as
    scikit-learn stops when the Y residual is constant.
    """
    dev = torch.device(device) if device is not None else (X.device if isinstance(X, torch.Tensor) else "cpu")
    dt = dtype or (X.dtype if isinstance(X, torch.Tensor) and X.is_floating_point() else
                   (torch.float64 if np.asarray(X).dtype == np.float64 else torch.float32))
    X, Y = _as_tensor(X, dev, dt, "X"), _as_tensor(Y, dev, dt, "Y")
    n, p = X.shape
    if Y.shape[0] != n:
        raise InvalidInputError(f"PLS: X has {n} rows but Y has {Y.shape[0]}")
    if not 1 <= n_components <= min(n, p):
        raise InvalidInputError(f"PLS: n_components must be in [1, min(n_samples, n_features) = {min(n, p)}], "
                                f"got {n_components}")
    x_mean, y_mean = X.mean(0), Y.mean(0)
    x_std, y_std = _std(X, scale), _std(Y, scale)
    Xs = X if not scale else X / x_std  # centring is applied implicitly below
    xs_mean = x_mean / x_std
    Yc = (Y - y_mean) / y_std
    M = Xs.T @ Yc  # = Xc'Yc, since Yc has zero column means
    tiny = float(torch.linalg.matrix_norm(M, ord="fro")) * n * torch.finfo(dt).eps
    basis = torch.empty(n, 0, dtype=dt, device=dev)  # the scores so far, normalised (orthonormal columns)
    W, P, Q = [], [], []
    for _k in range(n_components):
        w, sigma = _first_left_singular_vector(M)
        if float(sigma) <= tiny:
            log.warning("PLS: cross-covariance exhausted after %d components", len(W))
            break
        t = Xs @ w - xs_mean @ w
        for _ in range(2):  # orthogonalise against the previous scores (twice: exact in float32 too)
            t = t - basis @ (basis.T @ t)
        tt = t @ t
        p_load = (Xs.T @ t - xs_mean * t.sum()) / tt
        q = (Yc.T @ t) / tt
        M = M - tt * torch.outer(p_load, q)
        basis = torch.cat([basis, (t / tt.sqrt())[:, None]], 1)
        W.append(w)
        P.append(p_load)
        Q.append(q)
    if not W:
        raise InvalidInputError("PLS: X'Y is zero (constant X or Y); nothing to fit")
    Wm, Pm, Qm = torch.stack(W, 1), torch.stack(P, 1), torch.stack(Q, 1)
    rotations = Wm @ torch.linalg.pinv(Pm.T @ Wm)
    coef = (rotations @ Qm.T) * y_std / x_std[:, None]
    return PLSFit(x_mean, x_std, y_mean, coef, Wm, Pm, Qm, Wm.shape[1])


def pls_predict(fit: PLSFit, X: Any) -> torch.Tensor:
    """Predictions (n x t) for new rows of X."""
    X = _as_tensor(X, fit.coef.device, fit.coef.dtype, "X")
    if X.shape[1] != fit.coef.shape[0]:
        raise InvalidInputError(f"PLS: X has {X.shape[1]} features, the fit {fit.coef.shape[0]}")
    return (X - fit.x_mean) @ fit.coef + fit.y_mean


def cross_validated_pls(X: Any, Y: Any, splits: Sequence[tuple[np.ndarray, np.ndarray]], *,
                        n_components: int = 25, scale: bool = False, device: Any = None,
                        dtype: torch.dtype | None = None, return_predictions: bool = False):
    """Per split, Pearson r per target between the PLS prediction and Y on the test rows.

    Returns a (n_splits, t) tensor (and, with `return_predictions`, the list of test-row
    predictions). Brain-Score's score is the mean over splits of the median over targets.
    """
    r, preds = [], []
    for train, test in splits:
        train, test = np.asarray(train), np.asarray(test)
        fit = pls_fit(_rows(X, train), _rows(Y, train), n_components, scale=scale, device=device, dtype=dtype)
        pred = fit.predict(_rows(X, test))
        y = _as_tensor(_rows(Y, test), pred.device, pred.dtype, "Y")
        r.append(pearson_columns(pred, y))
        preds.append(pred)
    out = torch.stack(r)
    return (out, preds) if return_predictions else out


def _rows(a: Any, idx: np.ndarray):
    if isinstance(a, torch.Tensor):
        return a[torch.as_tensor(idx, device=a.device)]
    return np.asarray(a)[idx]


@register_metric("pls", family="encoding")
def pls_metric():
    """Cross-validated PLS regression (25 components, scale=False; Brain-Score's 'pls'), Pearson r per target."""
    return partial(cross_validated_pls, n_components=25, scale=False)
