"""`neurobench perf rsa`: time RDM comparison against rsatoolbox on the same random RDMs.

2,000 random model RDMs against 4 subject RDMs over 92, 200 and 1,000 stimuli by default (fewer
model RDMs where they would pass --max-gb: 200 at 1,000 stimuli); each tool's median
wall time over --repeats runs (after one warm-up run each, which also compiles or loads the numba
kernels; the two tools' runs alternate so that load from other jobs hits both alike), and the
largest absolute difference between the two tools' answers. neurobench's time includes everything
`compare_rdms` does (checks, NaN handling, ranking); rsatoolbox's is its `compare` on prebuilt
`RDMs` objects.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import numpy as np
import torch

from ..devices import resolve_device
from ..metrics.rsa import canonical_method, compare_rdms
from . import add_arguments

log = logging.getLogger(__name__)

_RSATOOLBOX = {"tau_a": "tau-a", "rho_a": "rho-a", "spearman": "spearman", "pearson": "corr",
               "cosine": "cosine", "corr_cov": "corr_cov", "cosine_cov": "cosine_cov"}


def _median_time(fn, repeats: int):
    result = fn()  # warm-up (numba compilation, allocator)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _median_times(fns, repeats: int):
    """Median wall time of each function, the runs interleaved (a, b, a, b, ...) after one
    warm-up each, so that a change in machine load between runs hits both tools alike."""
    results = [fn() for fn in fns]
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times], results


def run(args) -> list[dict]:
    """Rows: stimuli, comparator, tool, seconds (median), speedup vs rsatoolbox, max_abs_diff."""
    rows = []
    for n_stimuli in args.n_stimuli:
        rows += _run_size(args, int(n_stimuli))
    return rows


def _run_size(args, n_stimuli: int) -> list[dict]:
    repeats = max(3, int(args.repeats))
    rng = np.random.default_rng(args.seed)
    k = n_stimuli * (n_stimuli - 1) // 2
    n_models = max(1, min(args.n_models, int(args.max_gb * 1e9 // (8 * k))))
    models = rng.random((n_models, k))
    subjects = rng.random((args.n_subjects, k))
    device = resolve_device(args.device)
    xm = torch.as_tensor(models, dtype=torch.float64, device=device)
    ys = torch.as_tensor(subjects, dtype=torch.float64, device=device)
    rows = []
    common = {"n_stimuli": n_stimuli, "n_models": n_models, "n_subjects": args.n_subjects}
    for comp in args.comparators:
        method = canonical_method(comp)

        def ours(method=method):
            out = compare_rdms(xm, ys, method)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return out.cpu().numpy()

        ref = None
        if not args.skip_rsatoolbox:
            try:
                from rsatoolbox.rdm import RDMs, compare
            except ImportError:  # pragma: no cover - rsatoolbox is a test dependency
                log.warning("rsatoolbox is not installed; timing neurobench only")
            else:
                rm, rs = RDMs(models), RDMs(subjects)

                def ref(m=method, a=rm, b=rs):
                    return compare(a, b, _RSATOOLBOX[m])

        if ref is None:
            t_ours, r_ours = _median_time(ours, repeats)
        else:
            (t_ours, t_ref), (r_ours, r_ref) = _median_times([ours, ref], repeats)
        row = {**common, "comparator": method, "tool": "neurobench", "seconds": t_ours, "device": str(device),
               "speedup": None, "max_abs_diff": None}
        if ref is not None:
            diff = float(np.nanmax(np.abs(r_ours - r_ref)))
            row.update(speedup=t_ref / t_ours, max_abs_diff=diff)
            rows.append(row)
            rows.append({**common, "comparator": method, "tool": "rsatoolbox", "seconds": t_ref, "device": "cpu",
                         "speedup": 1.0, "max_abs_diff": diff})
        else:
            rows.append(row)
        log.info("%d stimuli, %s: neurobench %.3fs", n_stimuli, method, t_ours)
    return rows


def main(argv=None) -> None:  # pragma: no cover - convenience for `python -m`
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments("rsa", parser)
    for row in run(parser.parse_args(argv)):
        print(row)


if __name__ == "__main__":  # pragma: no cover
    main()
