"""`neurobench perf kernels`: the numba kernels, compiled once and then loaded from disk.

Every jitted function in `metrics.ranks` has `cache=True`; compiled machine code goes to
`NUMBA_CACHE_DIR` (default `NEUROBENCH_HOME/numba-cache`). This runs the same small workload
(tau-a, Spearman, rho-a, and their bootstraps, which use every kernel) in fresh processes with a
fresh, empty home: the first compiles and writes the cache ("cold"), the next ones load it
("warm"). Reported per process: seconds from import to the last result, and numba's count of
kernels compiled (cache misses) and loaded (cache hits).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

WORKLOAD = r"""
import json, time
t0 = time.perf_counter()
import numpy as np, torch
from neurobench.metrics import ranks
from neurobench.metrics.inference import score_rdms
from neurobench.metrics.rsa import compare_rdms
rng = np.random.default_rng(0)
x = torch.as_tensor(rng.random((20, 4186)))
y = torch.as_tensor(rng.random((4, 4186)))
for method in ("tau_a", "spearman", "rho_a"):
    compare_rdms(x, y, method)
    score_rdms(x[:3], y, method=method, n_bootstrap=20, seed=0)
seconds = time.perf_counter() - t0
misses = hits = 0
for name in dir(ranks):
    fn = getattr(ranks, name)
    stats = getattr(fn, "stats", None)
    if stats is not None and hasattr(stats, "cache_misses"):
        misses += sum(stats.cache_misses.values())
        hits += sum(stats.cache_hits.values())
print(json.dumps({"seconds": seconds, "compiled": misses, "loaded": hits}))
"""


def measure(home: str, env: dict | None = None) -> dict:
    """Run the workload in a fresh interpreter with NEUROBENCH_HOME=home; its JSON line as a dict."""
    child = {**os.environ, **(env or {}), "NEUROBENCH_HOME": home}
    if env is None or "NUMBA_CACHE_DIR" not in env:
        child.pop("NUMBA_CACHE_DIR", None)  # the default: under NEUROBENCH_HOME
    out = subprocess.run([sys.executable, "-c", WORKLOAD], env=child, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(args) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="neurobench-kernels-") as home:
        for i in range(1 + max(1, args.warm_runs)):
            row = measure(home)
            rows.append({"process": "cold (fresh home, empty cache)" if i == 0 else f"warm {i} (same home)", **row})
        rows.append({"process": "cache folder", "seconds": None, "compiled": None, "loaded": None,
                     "where": os.path.join(home, "numba-cache") + " (NUMBA_CACHE_DIR overrides)"})
    return rows
