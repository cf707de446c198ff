"""`neurobench perf targets`: storing every layer's per-target results with a result.

An NSD-sized result by default (8 subjects x 2,000 voxels x 10 layers = 160,000 rows: layer,
subject, target, r, ceiling, normalized, alpha, usable, voxel_i/j/k) is added to a fresh store in a
temporary folder: the median time of `ResultStore.add` with the Parquet sidecar and without it
(the rows alone), the sidecar's size, and reading it back (`ResultStore.targets`, sha256 checked)
against pandas writing and reading the same table as CSV.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .rsa import _median_times


def _result(args):
    from ..result import ScoreResult

    rng = np.random.default_rng(args.seed)
    n = args.subjects * args.targets
    frames = []
    for layer in range(args.layers):
        frames.append(pd.DataFrame({
            "layer": f"layer{layer}", "subject": np.repeat([f"subj{s + 1:02d}" for s in range(args.subjects)],
                                                           args.targets),
            "target": np.tile(np.arange(args.targets), args.subjects), "r": rng.uniform(-0.2, 0.8, n),
            "ceiling": rng.uniform(0, 0.9, n), "normalized": rng.uniform(-0.5, 1, n),
            "alpha": 10.0 ** rng.integers(-2, 7, n), "usable": rng.random(n) > 0.05,
            "voxel_i": rng.integers(0, 81, n), "voxel_j": rng.integers(0, 104, n), "voxel_k": rng.integers(0, 83, n)}))
    layers = pd.DataFrame({"layer": [f"layer{k}" for k in range(args.layers)], "raw": 0.3, "ci_low": 0.2,
                           "ci_high": 0.4, "ceiling": 0.5, "normalized": 0.6})
    return ScoreResult(layers=layers, best_layer="layer0", raw=0.3, ci_low=0.2, ci_high=0.4, ceiling=0.5,
                       normalized=0.6, normalization="explainable_variance_fraction", interval="stimuli", selection="perf", model="perf-model", weights_id="w", trained=True,
                       benchmark="perf.targets", targets=pd.concat(frames, ignore_index=True),
                       target_space={"subj01": {"columns": ["voxel_i", "voxel_j", "voxel_k"], "shape": [81, 104, 83],
                                                "affine": np.eye(4).tolist(), "source": "perf"}})


def run(args) -> list[dict]:
    from ..store import ResultStore

    repeats = max(3, int(args.repeats))
    result = _result(args)
    bare = dataclasses.replace(result, targets=None, target_space=None)
    with tempfile.TemporaryDirectory() as tmp:
        store, rows_only = ResultStore(Path(tmp) / "results.sqlite"), ResultStore(Path(tmp) / "rows.sqlite")
        csv = Path(tmp) / "targets.csv"
        (t_with, t_without, t_csv), _ = _median_times(
            [lambda: store.add(result), lambda: rows_only.add(bare),
             lambda: result.targets.to_csv(csv, index=False)], repeats)
        sidecar = next(store.targets_dir.iterdir())  # all the same size
        (t_read, t_csv_read), (back, _) = _median_times(
            [lambda: store.targets("perf-model", "perf.targets").frame, lambda: pd.read_csv(csv)], repeats)
        if not back.equals(result.targets):
            raise AssertionError("the per-target table read back differs from the one stored")
        rows = [
            {"what": "ResultStore.add with the Parquet sidecar", "seconds": t_with,
             "bytes": sidecar.stat().st_size, "rows": len(result.targets)},
            {"what": "ResultStore.add, rows only", "seconds": t_without, "bytes": None, "rows": len(result.layers) + 1},
            {"what": "pandas to_csv of the same table", "seconds": t_csv, "bytes": csv.stat().st_size,
             "rows": len(result.targets)},
            {"what": "ResultStore.targets (sha256 checked, read back equal)", "seconds": t_read, "bytes": None,
             "rows": len(back)},
            {"what": "pandas read_csv of the same table", "seconds": t_csv_read, "bytes": None,
             "rows": len(result.targets)},
        ]
    return rows
