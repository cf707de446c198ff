"""`neurobench perf extract`: streaming activation extraction against a bare forward pass.

N synthetic JPEG images (seeded, 256 px, written once under `NEUROBENCH_HOME/perf/`) go through
the model in batches. Each variant runs once in a fresh process (its peak RSS is its own):
- `bare`: what a bare script does: decode and preprocess each batch, then the model's forward
  pass, no hooks, nothing kept;
- `bare+loader`: the same with neurobench's loader threads decoding ahead of the model;
- `bare+loader+readout` (with a read-out): the same plus the read-out's own compute in forward
  hooks, outputs dropped: against it, what neurobench adds is hooks, checks, copies, streaming
  and compression;
- `neurobench` (one per `--workers` x `--compression`): `adapter.activations` into a fresh
  activation cache: hooks on every requested layer, the read-out (`--readout`, e.g.
  project=4096), per-batch checks, the background writer compressing chunked HDF5 files.
  Stimulus-set hashing (the cache key; decodes every image once) is timed apart (`hash_s`).
Reported: seconds, images/s (`img_s`), peak RSS, the overhead against both bare variants
(`vs_bare`, `vs_bare+loader`: 0.05 is 5% slower), activation and on-disk MB, the compression
ratio, and the speed of reading the cache back (`read_MB_s`).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import tempfile
import time
from typing import Any

import numpy as np

from .. import paths

log = logging.getLogger(__name__)


def make_images(n: int, size: int, seed: int) -> list[str]:
    """n JPEG files of smooth random scenes with texture (decoding costs what a photo costs)."""
    from PIL import Image

    folder = paths.subdir("perf") / f"extract-jpeg-{n}-{size}-seed{seed}"
    files = [str(folder / f"{i:06d}.jpg") for i in range(n)]
    if folder.is_dir() and all(os.path.exists(f) for f in files[-3:]) and len(os.listdir(folder)) == n:
        return files
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for path in files:
        base = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
        noisy = np.asarray(base, dtype=np.int16) + rng.integers(-24, 25, (size, size, 3))
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, quality=90)
    return files


def _stimuli(files):
    from ..data.stimuli import StimulusSet

    return StimulusSet(f"perf-extract-{len(files)}", [os.path.basename(f) for f in files], images=files)


def _worker(variant: dict, cfg: dict, queue) -> None:
    before = os.environ.get("NEUROBENCH_CACHE_COMPRESSION")
    try:
        _variant(variant, cfg, queue)
    finally:  # --in-process runs share this environment
        if before is None:
            os.environ.pop("NEUROBENCH_CACHE_COMPRESSION", None)
        else:
            os.environ["NEUROBENCH_CACHE_COMPRESSION"] = before


def _variant(variant: dict, cfg: dict, queue) -> None:
    try:
        import torch

        from ..api import load_model
        from ..devices import resolve_device
        from ..memory import peak_rss_bytes, rss_bytes
        from ..models.cache import ActivationCache
        from ..models.extract import prefetch

        if variant.get("compression"):
            os.environ["NEUROBENCH_CACHE_COMPRESSION"] = variant["compression"]
        device = resolve_device(cfg["device"])
        adapter = load_model(cfg["model"], weights=cfg["weights"], seed=cfg["seed"])
        if cfg["readout"]:
            adapter.with_readout(cfg["readout"])
        stimuli = _stimuli(cfg["files"])
        t0 = time.perf_counter()
        stimuli.content_hash()
        hash_s = time.perf_counter() - t0
        module = adapter.module.to(device).eval()
        layers = adapter.check_layers(cfg["layers"])
        bs, n = cfg["batch_size"], len(stimuli)
        base = rss_bytes()
        row: dict[str, Any] = {"variant": variant["name"]}
        if variant["kind"] == "bare":
            def make(i):
                return adapter.preprocess(stimuli.rgb_images(range(i * bs, min(n, (i + 1) * bs))))

            def drop_readout(name):  # the read-out's compute, its output dropped (the hook returns None)
                def hook(_m, _i, out):
                    adapter.readout(name, out[0] if isinstance(out, tuple) else out)
                return hook

            handles = [adapter._modules[name].register_forward_hook(drop_readout(name)) for name in layers] \
                if variant.get("readout") and adapter.readout is not None else []
            t0 = time.perf_counter()
            with torch.inference_mode():
                for batch in prefetch(make, (n + bs - 1) // bs, variant["workers"], device.type == "cuda"):
                    module(batch.to(device, non_blocking=True))
                if device.type == "cuda":
                    torch.cuda.synchronize()
            row["seconds"] = time.perf_counter() - t0
            for h in handles:
                h.remove()
        else:
            with tempfile.TemporaryDirectory(prefix="neurobench-perf-", dir=paths.subdir("perf")) as tmp:
                cache = ActivationCache(tmp, max_bytes=None)
                t0 = time.perf_counter()
                acts = adapter.activations(stimuli, layers, batch_size=bs, device=device, cache=cache, lazy=True,
                                           workers=variant["workers"])
                row["seconds"] = time.perf_counter() - t0
                raw = sum(a.nbytes for a in acts.values())
                disk = sum(a.path.stat().st_size for a in acts.values())
                t0 = time.perf_counter()
                for a in acts.values():
                    a.read()
                row.update(hash_s=hash_s, MB=raw / 1e6, disk_MB=disk / 1e6, ratio=raw / disk,
                           read_MB_s=raw / 1e6 / (time.perf_counter() - t0))
                for a in acts.values():
                    a.close()
        row.update(img_s=n / row["seconds"], peak_MB=peak_rss_bytes() / 1e6, base_MB=base / 1e6)
        queue.put(row)
    except Exception as exc:  # a row, so one failing variant does not hide the others
        queue.put({"variant": variant["name"], "error": f"{type(exc).__name__}: {exc}"})


def run(args) -> list[dict]:
    """Rows: variant, seconds, images/s, peak RSS, overheads, disk bytes and compression ratio."""
    from ..devices import resolve_device

    files = make_images(args.n, args.image_size, args.seed)
    workers = [int(w) for w in str(args.workers).split(",")]
    compressions = [c.strip() for c in str(args.compression).split(",")]
    readout = args.readout or (",".join(p for p in (f"pool={args.pool}" if args.pool else "",
                                                     f"project={args.project}" if args.project else "") if p))
    cfg = {"model": args.model, "weights": args.weights, "seed": args.seed, "readout": readout or None,
           "files": files, "layers": args.layers, "batch_size": args.batch_size,
           "device": str(resolve_device(args.device))}
    variants = [{"name": "bare", "kind": "bare", "workers": 0},
                {"name": f"bare+loader (workers={max(workers)})", "kind": "bare", "workers": max(workers)}]
    if readout:
        variants.append({"name": f"bare+loader+readout (workers={max(workers)})", "kind": "bare",
                         "workers": max(workers), "readout": True})
    variants += [{"name": f"neurobench (workers={w}, {c})", "kind": "neurobench", "workers": w, "compression": c}
                 for w in workers for c in compressions]
    ctx = mp.get_context("spawn")
    rows = []
    for variant in variants:
        if args.in_process:
            import queue as queue_module

            q = queue_module.Queue()
            _worker(variant, cfg, q)
            rows.append(q.get())
            continue
        q = ctx.Queue()
        proc = ctx.Process(target=_worker, args=(variant, cfg, q))
        proc.start()
        rows.append(q.get())
        proc.join()
        log.info("%s: %s", variant["name"], rows[-1])
    bare, loader = rows[0].get("seconds"), rows[1].get("seconds")
    with_readout = rows[2].get("seconds") if readout else None
    log.info("%s, read-out %s, %d images, batch %d, %s", args.model, readout or "none", args.n, args.batch_size,
             cfg["device"])
    for row in rows:
        if "seconds" in row and bare:
            row["vs_bare"] = row["seconds"] / bare - 1
            row["vs_bare+loader"] = row["seconds"] / loader - 1 if loader else None
            if with_readout:
                row["vs_bare+loader+readout"] = row["seconds"] / with_readout - 1
    return rows
