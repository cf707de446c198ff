"""`neurobench perf decoding`: time-resolved pairwise decoding RDMs against scikit-learn.

One simulated MEG recording (conditions x trials, channels, time bins; condition patterns under
correlated sensor noise). neurobench: `metrics.decoding.pairwise_decoding_rdms` (LDA with one
Ledoit-Wolf covariance, every pair and bin batched). The peers, with the same round-robin folds:
`sklearn-lda`, what a user would run per pair and bin - `LinearDiscriminantAnalysis(solver="lsqr",
shrinkage="auto")` fitted on the two conditions' training trials (its covariance is the pair's own,
so its RDM is a close relative, compared by Spearman correlation); and `sklearn-exact`, the
definition neurobench implements written with scikit-learn (Ledoit-Wolf of the pooled residuals,
whitening, `NearestCentroid` per pair and bin), whose answer must be identical (max abs diff).
Median wall time over --repeats runs, the tools alternating after one warm-up each.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.stats import spearmanr

from ..devices import resolve_device
from ..metrics.decoding import condition_folds, pairwise_decoding_rdms
from .rsa import _median_times

log = logging.getLogger(__name__)


def _problem(args):
    rng = np.random.default_rng(args.seed)
    envelope = np.exp(-0.5 * ((np.arange(args.times) - args.times / 2) / (args.times / 6)) ** 2)
    patterns = rng.standard_normal((args.conditions, args.channels, 1)) * 0.3 * envelope
    mixing = rng.standard_normal((args.channels, args.channels)) / np.sqrt(args.channels)
    labels = np.repeat(np.arange(args.conditions), args.trials)
    rng.shuffle(labels)
    noise = np.einsum("ij,njt->nit", mixing, rng.standard_normal((len(labels), args.channels, args.times)))
    return patterns[labels] + noise, labels, condition_folds(labels, args.folds)


def _sklearn_lda(x, y, folds):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    c = int(y.max()) + 1
    out = np.zeros((x.shape[2], c * (c - 1) // 2))
    for t in range(x.shape[2]):
        k = 0
        for i in range(c):
            for j in range(i + 1, c):
                pair = np.isin(y, [i, j])
                hits = 0
                for f in np.unique(folds):
                    tr, te = pair & (folds != f), pair & (folds == f)
                    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(x[tr, :, t], y[tr])
                    hits += int((lda.predict(x[te, :, t]) == y[te]).sum())
                out[t, k] = hits / pair.sum()
                k += 1
    return out


def _sklearn_exact(x, y, folds):
    from sklearn.covariance import ledoit_wolf
    from sklearn.neighbors import NearestCentroid

    c = int(y.max()) + 1
    correct = np.zeros((x.shape[2], c * (c - 1) // 2))
    for t in range(x.shape[2]):
        for f in np.unique(folds):
            tr, te = folds != f, folds == f
            means = np.stack([x[tr & (y == k), :, t].mean(0) for k in range(c)])
            cov, _ = ledoit_wolf(x[tr, :, t] - means[y[tr]], assume_centered=True)
            vals, vecs = np.linalg.eigh(cov)
            z = x[:, :, t] @ (vecs / np.sqrt(vals)) @ vecs.T
            k = 0
            for i in range(c):
                for j in range(i + 1, c):
                    p_tr, p_te = tr & np.isin(y, [i, j]), te & np.isin(y, [i, j])
                    clf = NearestCentroid().fit(z[p_tr], y[p_tr])
                    correct[t, k] += int((clf.predict(z[p_te]) == y[p_te]).sum())
                    k += 1
    counts = np.bincount(y)
    return correct / np.array([counts[i] + counts[j] for i in range(c) for j in range(i + 1, c)])


def run(args) -> list[dict]:
    """Rows: tool, seconds (median), speed-up of neurobench over it, agreement with neurobench."""
    repeats = max(3, int(args.repeats))
    x, y, folds = _problem(args)
    device = resolve_device(args.device)
    xt = torch.as_tensor(x, dtype=torch.float64, device=device)

    def ours():
        out = pairwise_decoding_rdms(xt, y, folds, dtype=torch.float64)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out.cpu().numpy()

    tools = {"neurobench": ours}
    if "sklearn-lda" in args.tools:
        tools["sklearn-lda"] = lambda: _sklearn_lda(x, y, folds)
    if "sklearn-exact" in args.tools:
        tools["sklearn-exact"] = lambda: _sklearn_exact(x, y, folds)
    times, results = _median_times(list(tools.values()), repeats)
    base = results[0]
    size = {"conditions": args.conditions, "trials": args.trials, "channels": args.channels, "bins": args.times,
            "folds": args.folds}
    rows = []
    for (name, _fn), seconds, res in zip(tools.items(), times, results):
        agreement = ("-" if name == "neurobench" else
                     f"max abs diff {np.max(np.abs(res - base)):.1e}" if name == "sklearn-exact" else
                     f"Spearman {spearmanr(res.ravel(), base.ravel())[0]:.3f}")
        rows.append({"tool": name, "seconds": seconds, "neurobench speed-up": seconds / times[0],
                     "agreement": agreement, "device": str(device) if name == "neurobench" else "cpu",
                     "mean accuracy": float(res.mean()), **size})
        log.info("%s: %.3fs", name, seconds)
    return rows
