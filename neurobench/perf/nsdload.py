"""`neurobench perf nsdload`: read one ROI's betas from a full-size NSD session file.

Writes a session file with the release's layout (HDF5 `/betas`, int16, 750 trials x 83 x 104 x 81,
about 1 GB, random values) under NEUROBENCH_HOME/perf, then reads the betas of a V1-sized ROI
(a compact occipital block of voxels) the way the NSD benchmarks do (`nsd.read_session`: one
Z plane at a time, only the ROI's bounding box) and the naive way (the whole 4-D array, then the
ROI's voxels). Reported per way: median wall time over --repeats runs (alternating), and peak
memory traced by tracemalloc (numpy and h5py allocations) during one read. Both give the same
array (checked).
"""

from __future__ import annotations

import logging
import tracemalloc

import numpy as np

from .. import paths
from .rsa import _median_times

log = logging.getLogger(__name__)

VOLUME = (81, 104, 83)  # subj01 func1pt8mm, NIfTI order (X, Y, Z)


def _session_file(trials: int):
    import h5py

    path = paths.subdir("perf") / f"nsd_betas_session_{trials}.hdf5"
    shape = (trials, VOLUME[2], VOLUME[1], VOLUME[0])
    if path.is_file():
        with h5py.File(path, "r") as fh:
            if fh["betas"].shape == shape:
                return path
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as fh:
        ds = fh.create_dataset("betas", shape=shape, dtype=np.int16)
        for t0 in range(0, trials, 50):
            n = min(50, trials - t0)
            ds[t0:t0 + n] = rng.integers(-3000, 3000, size=(n, *shape[1:]), dtype=np.int16)
    return path


def _roi(n_voxels: int) -> np.ndarray:
    """A compact block of voxels near the occipital pole: (n, 3) ijk indices."""
    grid = np.stack(np.meshgrid(np.arange(25, 55), np.arange(5, 35), np.arange(20, 40), indexing="ij"), -1)
    vox = grid.reshape(-1, 3)
    centre = vox.mean(0)
    return vox[np.argsort(((vox - centre) ** 2).sum(1), kind="stable")[:n_voxels]]


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run(args) -> list[dict]:
    import h5py

    from ..benchmarks.nsd import read_session

    path = _session_file(args.trials)
    voxels = _roi(args.roi_voxels)

    def ours():
        return read_session(path, voxels, VOLUME)

    def naive():
        with h5py.File(path, "r") as fh:
            full = fh["betas"][:]
        return full[:, voxels[:, 2], voxels[:, 1], voxels[:, 0]].astype(np.float32) / 300.0

    (t_ours, t_naive), (a, b) = _median_times([ours, naive], max(3, args.repeats))
    if not np.allclose(a, b):
        raise AssertionError("the two readers disagree")
    m_ours, m_naive = _peak_bytes(ours), _peak_bytes(naive)
    size = {"trials": args.trials, "volume": "x".join(map(str, VOLUME)), "roi_voxels": len(voxels),
            "file_MB": round(path.stat().st_size / 1e6)}
    if not args.keep:
        path.unlink()
    return [{"reader": "neurobench (plane by plane, ROI box)", "seconds": t_ours, "peak_MB": m_ours / 1e6, **size},
            {"reader": "naive (whole 4-D array, then ROI)", "seconds": t_naive, "peak_MB": m_naive / 1e6, **size}]
