"""A results store with known numbers for the report, leaderboard and terminal tests: two models
(one untrained), three benchmarks (RSA with a two-bound ceiling, one without a ceiling, a
time-resolved one with a time course), three checkpoints of the trained model (with steps)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurobench.result import ScoreResult
from neurobench.store import ResultStore

LAYERS = ("conv1", "conv2", "fc")
TIMES = [0.0, 0.05, 0.1, 0.15, 0.2]


def result(model="alexnet", trained=True, bench="toy.hit-rsa", raw=0.2, ceiling=(0.4, 0.6), weights=None,
           step=None, timecourse=False) -> ScoreResult:
    n = len(LAYERS)
    raws = [raw - 0.05 * (n - 1 - i) for i in range(n)]
    lower, upper = ceiling if ceiling else (None, None)
    table = pd.DataFrame({"layer": list(LAYERS), "raw": raws, "ci_low": [r - 0.03 for r in raws],
                          "ci_high": [r + 0.03 for r in raws], "ceiling": [lower or np.nan] * n,
                          "normalized": [r / lower if lower else np.nan for r in raws]})
    if upper:
        table["ceiling_upper"] = upper
    prov = {"seed": 0, "device": "cpu", "data_hashes": {"f": "abc"}, "duration_s": 1.5,
            "timestamp": "2026-01-01T00:00:00+00:00", "neurobench_version": "0.1.0", "rdm_method": "correlation",
            "comparator": "tau_a"}
    if step is not None:
        prov["step"] = step
    if timecourse:
        prov["timecourse"] = {"times": TIMES, "layers": list(LAYERS),
                              "r": [[0.0, 0.05 * (i + 1), 0.1 * (i + 1), 0.05, 0.0] for i in range(n)],
                              "peak_latency": [0.1] * n, "peak_latency_ci": [[0.05, 0.15]] * n}
    return ScoreResult(model=model, weights_id=weights or ("w" * 64 if trained else "random-1234"), trained=trained,
                       benchmark=bench, layers=table, best_layer=LAYERS[-1], raw=raw - 0.01, ci_low=raw - 0.08,
                       ci_high=raw + 0.06, ceiling=lower, ceiling_lower=lower, ceiling_upper=upper,
                       normalized=(raw - 0.01) / lower if lower else None,
                       selection="layer chosen on one half of the stimuli (seed 0); headline on the other half",
                       metric="rsa-tau_a", normalization="nili_lower" if lower else "none",
                       interval="stimuli", ceiling_note="" if lower else "a single data RDM: no ceiling",
                       provenance=prov)


def make_store(path) -> ResultStore:
    """alexnet (trained): 0.30 / 0.10 on hit-rsa / meg-rsa, no-ceiling benchmark too; untrained
    alexnet and 'tiny <b>net</b>' (a name to escape) on hit-rsa; alexnet on hit-rsa at three
    checkpoints (steps 100, 10, 1000: the latest stored is step 1000)."""
    store = ResultStore(path)
    for step, raw in ((100, 0.25), (10, 0.15)):
        store.add(result(raw=raw, weights=f"{step:064d}", step=step))
    store.add(result(raw=0.3, weights="1" * 64, step=1000))
    store.add(result(bench="toy.meg-rsa", raw=0.1, ceiling=(0.3, 0.5), weights="1" * 64, timecourse=True))
    store.add(result(bench="toy.mit-rsa", raw=0.12, ceiling=None, weights="1" * 64))
    store.add(result(trained=False, raw=0.05))
    store.add(result(model="tiny <b>net</b>", raw=0.2, weights="2" * 64))
    return store
