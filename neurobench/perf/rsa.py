"""`neurobench perf rsa`: time RDM comparison against rsatoolbox on the same random RDMs.

2,000 random model RDMs over 92 stimuli against 4 subject RDMs by default; each tool's median
wall time over --repeats runs (after one warm-up run, which also compiles the numba kernels),
and the largest absolute difference between the two tools' answers.
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

log = logging.getLogger(__name__)

_RSATOOLBOX = {"tau_a": "tau-a", "rho_a": "rho-a", "spearman": "spearman", "pearson": "corr",
               "cosine": "cosine", "corr_cov": "corr_cov", "cosine_cov": "cosine_cov"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-models", type=int, default=2000, help="random model RDMs (default 2000)")
    parser.add_argument("--n-stimuli", type=int, default=92, help="stimuli per RDM (default 92)")
    parser.add_argument("--n-subjects", type=int, default=4, help="subject RDMs (default 4)")
    parser.add_argument("--comparators", nargs="+", default=["tau_a", "spearman", "pearson"],
                        help="comparators to time (default: tau_a spearman pearson)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool (median; >= 3)")
    parser.add_argument("--device", default="cpu", help="device for neurobench (default cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-rsatoolbox", action="store_true",
                        help="time neurobench only (rsatoolbox is a test-only dependency)")


def _median_time(fn, repeats: int):
    result = fn()  # warm-up (numba compilation, allocator)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def run(args) -> list[dict]:
    """Rows: tool, comparator, seconds (median), speedup vs rsatoolbox, max_abs_diff."""
    repeats = max(3, int(args.repeats))
    rng = np.random.default_rng(args.seed)
    k = args.n_stimuli * (args.n_stimuli - 1) // 2
    models = rng.random((args.n_models, k))
    subjects = rng.random((args.n_subjects, k))
    device = resolve_device(args.device)
    xm = torch.as_tensor(models, dtype=torch.float64, device=device)
    ys = torch.as_tensor(subjects, dtype=torch.float64, device=device)
    rows = []
    for comp in args.comparators:
        method = canonical_method(comp)

        def ours(method=method):
            out = compare_rdms(xm, ys, method)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return out.cpu().numpy()

        t_ours, r_ours = _median_time(ours, repeats)
        row = {"tool": "neurobench", "comparator": method, "seconds": t_ours,
               "device": str(device), "n_models": args.n_models, "n_subjects": args.n_subjects,
               "n_stimuli": args.n_stimuli, "speedup": None, "max_abs_diff": None}
        if not args.skip_rsatoolbox:
            try:
                from rsatoolbox.rdm import RDMs, compare
            except ImportError:  # pragma: no cover - rsatoolbox is a test dependency
                log.warning("rsatoolbox is not installed; timing neurobench only")
                rows.append(row)
                continue
            rm, rs = RDMs(models), RDMs(subjects)
            t_ref, r_ref = _median_time(
                lambda m=method, a=rm, b=rs: compare(a, b, _RSATOOLBOX[m]), repeats)
            diff = float(np.max(np.abs(r_ours - r_ref)))
            row.update(speedup=t_ref / t_ours, max_abs_diff=diff)
            rows.append(row)
            rows.append({"tool": "rsatoolbox", "comparator": method, "seconds": t_ref,
                         "device": "cpu", "n_models": args.n_models,
                         "n_subjects": args.n_subjects, "n_stimuli": args.n_stimuli,
                         "speedup": 1.0, "max_abs_diff": diff})
        else:
            rows.append(row)
        log.info("%s: neurobench %.3fs", method, t_ours)
    return rows


def main(argv=None) -> None:  # pragma: no cover - convenience for `python -m`
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    for row in run(parser.parse_args(argv)):
        print(row)


if __name__ == "__main__":  # pragma: no cover
    main()
