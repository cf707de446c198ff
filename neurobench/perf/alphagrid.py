"""`neurobench perf alphagrid`: ridge alpha grids on a wide layer, side by side with the best fixed alpha.

The problem is the one the relative grid exists for (docs/ridge.md): 300 stimuli, a wide ReLU
layer with large activations (`wide_layer`: p units reading 40 latent factors, as a network's
early layers do), targets that are a linear read-out of the factors at a low signal-to-noise
ratio. Each grid is used by the same nested cross-validated ridge (5-fold inner CV per target,
`--folds` outer folds); the reference is the best single alpha shared by every target and fold,
chosen by peeking at the held-out scores (`fixed_alpha_oracle`, an independent float64 kernel
ridge in numpy): no per-target choice can beat it by much, and a good grid should come close.
Reported per grid: median held-out r over targets, the share of (target, fold) choices at the top
of the grid, the targets at a binding end of the grid (`EncodingResult.alpha_edges`) and the
seconds taken.
"""

from __future__ import annotations

import time

import numpy as np

from ..metrics.ridge import DEFAULT_RELATIVE_ALPHAS, cross_validated_encoding
from ..metrics.splits import kfold_splits

OLD_DEFAULT = tuple(float(a) for a in np.logspace(-2, 6, 9))  # the absolute default before the relative grid


def wide_layer(p: int, t: int, seed: int, snr: float = 0.15, n: int = 300, factors: int = 40):
    """(X (n, p) float32, Y (n, t)): ReLU units reading `factors` latent factors (x10, large values),
    targets a random read-out of the factors plus noise at signal/noise variance `snr`."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, factors)).astype(np.float32)
    X = np.empty((n, p), dtype=np.float32)
    for s in range(0, p, 25_000):  # built in blocks: no float64 copy of the layer
        A = rng.standard_normal((factors, min(25_000, p - s)), dtype=np.float32) / np.float32(np.sqrt(factors))
        X[:, s:s + A.shape[1]] = 10 * np.maximum(Z @ A + 0.3, 0)
    S = Z.astype(np.float64) @ rng.standard_normal((factors, t))
    return X, S + rng.standard_normal((n, t)) * S.std(0) / np.sqrt(snr)


def fixed_alpha_oracle(X, Y, outer, alphas) -> float:
    """Best median held-out r over targets of one alpha shared by every target and fold (chosen by
    peeking at the held-out scores), from one float64 kernel of all rows (numpy)."""
    Xc = X - X.mean(0, dtype=np.float64).astype(X.dtype)
    K = (Xc @ Xc.T).astype(np.float64)
    per_alpha = np.zeros((len(alphas), len(outer), Y.shape[1]))
    for k, (tr, te) in enumerate(outer):
        a_tr = K[np.ix_(tr, tr)].mean(1)
        Ktt = K[np.ix_(tr, tr)] - a_tr[:, None] - a_tr[None, :] + a_tr.mean()
        Kvt = K[np.ix_(te, tr)] - K[np.ix_(te, tr)].mean(1, keepdims=True) - a_tr[None, :] + a_tr.mean()
        lam, U = np.linalg.eigh(Ktt)
        P, QY = Kvt @ U, U.T @ (Y[tr] - Y[tr].mean(0))
        yc = Y[te] - Y[te].mean(0)
        for i, a in enumerate(alphas):
            pred = P @ (QY / (lam + a)[:, None])
            pc = pred - pred.mean(0)
            per_alpha[i, k] = (pc * yc).sum(0) / np.sqrt((pc**2).sum(0) * (yc**2).sum(0))
    return float(np.median(per_alpha.mean(1), axis=1).max())


def run(args) -> list[dict]:
    """Rows: grid, median r, share of choices at the grid's top, binding edges, seconds."""
    X, Y = wide_layer(args.p, args.t, args.seed, args.snr)
    outer = kfold_splits(len(X), args.folds, seed=0)
    rows = []
    rel = DEFAULT_RELATIVE_ALPHAS
    for name, alphas in [(f"relative {rel[0]:g} .. {rel[-1]:g} ({len(rel)}) x trace(K)/n (default)", None),
                         ("absolute logspace(-2, 6, 9) (old default)", OLD_DEFAULT),
                         ("absolute logspace(-2, 10, 13)", tuple(np.logspace(-2, 10, 13)))]:
        start = time.perf_counter()
        res = cross_validated_encoding(X, Y, outer, alphas, inner_cv=5, device=args.device)
        low, high = res.alpha_edges()
        rows.append({"grid": name, "median r": round(float(np.median(res.r)), 4),
                     "choices at top": f"{(res.alpha_index == res.alpha_grids.shape[1] - 1).mean():.1%}",
                     "targets at a binding end": low + high, "s": round(time.perf_counter() - start, 1)})
    start = time.perf_counter()
    oracle = fixed_alpha_oracle(X, Y, outer, np.logspace(0, 14, 57))
    rows.append({"grid": "best fixed alpha, chosen on the held-out scores (oracle)", "median r": round(oracle, 4),
                 "choices at top": "", "targets at a binding end": "", "s": round(time.perf_counter() - start, 1)})
    return rows
