"""`neurobench perf pls`: time Brain-Score's PLS mapping against scikit-learn on the same data.

The default problem is Majaj-Hong public IT-sized: 3,200 images, a 2,048-unit layer, 168 neuroids,
25 components, 10 train/test splits of 90/10 (the `majajhong2015.it-pls` protocol). Each tool fits
and predicts every split. Reported: the median wall time over --repeats runs (the runs alternate
between the tools after one warm-up each, so machine load hits both alike) and the difference
between the two tools' scores (mean over splits of the median test r over neuroids).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..devices import resolve_device
from ..metrics.correlation import pearson_columns
from ..metrics.pls import cross_validated_pls
from .rsa import _median_time, _median_times

log = logging.getLogger(__name__)


def _problem(args):
    rng = np.random.default_rng(args.seed)
    latent = rng.standard_normal((args.n, 40))
    X = latent @ rng.standard_normal((40, args.p)) + rng.standard_normal((args.n, args.p))
    Y = latent @ rng.standard_normal((40, args.t)) * 0.3 + rng.standard_normal((args.n, args.t))
    splits = []
    for _ in range(args.splits):
        order = rng.permutation(args.n)
        cut = int(round(0.9 * args.n))
        splits.append((np.sort(order[:cut]), np.sort(order[cut:])))
    return X, Y, splits


def run(args) -> list[dict]:
    """Rows: tool, seconds (median), speedup vs scikit-learn, score, max_abs_diff."""
    repeats = max(3, int(args.repeats))
    X, Y, splits = _problem(args)
    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    Xt = torch.as_tensor(X, dtype=dtype, device=device)
    Yt = torch.as_tensor(Y, dtype=dtype, device=device)

    def ours():
        r = cross_validated_pls(Xt, Yt, splits, n_components=args.components, device=device, dtype=dtype)
        return float(r.median(dim=1).values.mean())

    def sklearn():
        from sklearn.cross_decomposition import PLSRegression

        scores = []
        for train, test in splits:
            pred = PLSRegression(n_components=args.components, scale=False).fit(X[train], Y[train]).predict(X[test])
            r = pearson_columns(torch.as_tensor(pred), torch.as_tensor(Y[test]))
            scores.append(float(r.median()))
        return float(np.mean(scores))

    size = {"n": args.n, "p": args.p, "t": args.t, "components": args.components, "splits": args.splits}
    if args.skip_sklearn:
        t_ours, s_ours = _median_time(ours, repeats)
        return [{"tool": "neurobench", "device": str(device), "dtype": args.dtype, "seconds": t_ours,
                 "score": s_ours, **size}]
    (t_ours, t_ref), (s_ours, s_ref) = _median_times([ours, sklearn], repeats)
    diff = abs(s_ours - s_ref)
    log.info("pls: neurobench %.2fs, scikit-learn %.2fs", t_ours, t_ref)
    return [{"tool": "neurobench", "device": str(device), "dtype": args.dtype, "seconds": t_ours,
             "speedup": t_ref / t_ours, "score": s_ours, "max_abs_diff": diff, **size},
            {"tool": "scikit-learn", "device": "cpu", "dtype": "float64", "seconds": t_ref, "speedup": 1.0,
             "score": s_ref, "max_abs_diff": diff, **size}]
