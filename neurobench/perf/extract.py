"""`neurobench perf extract`: activation extraction against a bare torch forward pass.

On N synthetic images (seeded), times (median over --repeats runs, after one warm-up each):
- `bare-forward`: the model's forward over the already preprocessed batches, no hooks;
- `bare-preprocess+forward`: the same plus preprocessing the images, as a bare script must;
- `neurobench-extract`: `adapter.activations(..., cache=False)` (preprocessing, hooks, copies);
- `cache-read`: reading the same activations back from a warm HDF5 cache.
Overheads are neurobench-extract over each bare baseline; cache reads are reported in MB/s.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time

import numpy as np
import torch

from ..api import load_model
from ..data.stimuli import StimulusSet
from ..devices import resolve_device
from ..errors import NeurobenchError
from ..models.cache import ActivationCache

log = logging.getLogger(__name__)


def _interleaved_medians(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds per function, run round-robin so load drifts hit every variant alike."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def run(args) -> list[dict]:
    """Rows: variant, seconds (median), images_per_s, overhead (vs the bare baselines), MB_per_s."""
    repeats = max(3, int(args.repeats))
    device = resolve_device(args.device)
    adapter = load_model(args.model, weights=args.weights, seed=args.seed)
    if not hasattr(adapter, "module") or not hasattr(adapter, "preprocess"):
        raise NeurobenchError(f"perf extract times image models read through hooks; {args.model!r} is not one")
    pool = int(args.pool) if args.pool and str(args.pool).isdigit() else args.pool
    if pool or args.project:
        adapter.with_readout(pool=pool, project=args.project, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    images = [rng.integers(0, 256, (args.image_size, args.image_size, 3), dtype=np.uint8) for _ in range(args.n)]
    stimuli = StimulusSet(f"perf-{args.n}-{args.seed}", [f"img{i}" for i in range(args.n)], images=images)
    layers = adapter.check_layers(args.layers)
    module = adapter.module.to(device).eval()
    bs = args.batch_size
    rgb = stimuli.rgb_images()
    batches = [adapter.preprocess(rgb[i:i + bs]) for i in range(0, len(rgb), bs)]

    def bare_forward():
        with torch.inference_mode():
            for b in batches:
                module(b.to(device))

    def bare_full():
        with torch.inference_mode():
            for i in range(0, len(stimuli), bs):
                module(adapter.preprocess(stimuli.rgb_images(range(i, min(i + bs, len(stimuli))))).to(device))

    def extract():
        return adapter.activations(stimuli, layers, batch_size=bs, device=device, cache=False)

    t = _interleaved_medians({"fwd": bare_forward, "full": bare_full, "ext": extract}, repeats)
    t_fwd, t_full, t_ext = t["fwd"], t["full"], t["ext"]
    with tempfile.TemporaryDirectory(prefix="neurobench-perf-") as tmp:
        cache = ActivationCache(tmp)
        acts = adapter.activations(stimuli, layers, batch_size=bs, device=device, cache=cache)
        nbytes = sum(a.nbytes for a in acts.values())
        t_read = _interleaved_medians(
            {"read": lambda: adapter.activations(stimuli, layers, batch_size=bs, device=device, cache=cache)},
            repeats)["read"]
    common = {"model": adapter.display_name, "n": args.n, "batch_size": bs, "layers": len(layers),
              "device": str(device), "repeats": repeats}
    rows = [
        {"variant": "bare-forward", "seconds": t_fwd},
        {"variant": "bare-preprocess+forward", "seconds": t_full},
        {"variant": "neurobench-extract", "seconds": t_ext, "overhead_vs_forward": t_ext / t_fwd - 1,
         "overhead_vs_preprocess+forward": t_ext / t_full - 1, "MB": nbytes / 1e6},
        {"variant": "cache-read", "seconds": t_read, "MB": nbytes / 1e6, "MB_per_s": nbytes / 1e6 / t_read},
    ]
    for row in rows:
        row["images_per_s"] = args.n / row["seconds"]
        row.update(common)
    return rows
