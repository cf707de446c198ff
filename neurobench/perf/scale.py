"""`neurobench perf scale`: encoding at dataset size, end to end, under memory budgets, beside himalaya.

Two synthetic problems with the shapes of the datasets neurobench ships benchmarks for:
- `nsd`: 9,000 training and 1,000 test stimuli, one layer of 4,096 features (a layer projected at
  extraction time), 40,000 voxels, a per-voxel ceiling given by the dataset (as NSD's ncsnr);
- `things-meg`: 21,800 training stimuli shown once and 200 test stimuli x 12 repetitions,
  4,096 features, 27,000 (sensor, time) targets, split-half ceiling of the test repetitions.
Responses are a low-rank signal of latent stimulus features plus noise; the layer is another
noisy view of the same latents.

The data are written once under `NEUROBENCH_HOME/perf/` (the layer as an activation-cache file,
the responses as HDF5), then every run starts a fresh process (its peak memory is its own):
- neurobench, once per `--budgets` figure: `Benchmark.score` of a benchmark reading the responses
  from the HDF5 file, on an adapter whose activations are the cached layer, with the budget as
  `memory_budget`, the result stored in a results store: 5-fold inner CV over 9 alphas per
  target, refit, held-out r on the test stimuli, 1,000-resample bootstrap. Reported: seconds,
  peak RSS, `base_MB` (the process's RSS before the score: Python, torch and the libraries
  with their thread pools and BLAS buffers initialised) and `score_MB` = peak - base; `within`
  says whether score_MB <= budget + 32 MB, the stated fixed overhead of a score's bookkeeping
  (per-target tables, the result, the store) that the plan does not count.
- himalaya `RidgeCV` (torch backend) on the same training rows, the same contiguous inner folds
  and alphas (one alpha per target, by MSE), predicting the test stimuli; it holds every array in
  memory, so it runs only where the machine's free memory allows (`fits` says why not).
`mean_r` is the mean over targets of the held-out Pearson r of each tool's test predictions
against the test responses; the two tools must agree.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import paths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    name: str
    n_train: int
    n_test: int
    p: int
    t: int
    test_reps: int  # 0: one (mean) response per stimulus and a given ceiling

    @property
    def n(self) -> int:
        return self.n_train + self.n_test

    def scaled(self, f: float) -> Problem:
        def s(x):
            return max(8, int(round(x * f)))
        return Problem(self.name, s(self.n_train), s(self.n_test), s(self.p), s(self.t), self.test_reps)

    @property
    def key(self) -> str:
        return f"{self.name}-{self.n_train}x{self.n_test}-p{self.p}-t{self.t}-r{self.test_reps}"


PROBLEMS = {"nsd": Problem("nsd", 9000, 1000, 4096, 40000, 0),
            "things-meg": Problem("things-meg", 21800, 200, 4096, 27000, 12)}
LATENT = 64
BOOKKEEPING = 32 * 10**6  # what a score holds besides its planned work: tables, the result, the store


def _files(prob: Problem, seed: int) -> dict[str, Path]:
    folder = paths.subdir("perf") / f"scale-{prob.key}-seed{seed}"
    return {"folder": folder, "layer": folder / "layer.h5", "responses": folder / "responses.h5"}


def make_data(prob: Problem, seed: int = 0) -> dict[str, Path]:
    """Write the layer (activation-cache format) and the responses (HDF5) once; reuse them after."""
    import h5py

    from ..models.layerfile import LayerWriter

    files = _files(prob, seed)
    if files["layer"].is_file() and files["responses"].is_file():
        return files
    files["folder"].mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n, t, p = prob.n, prob.t, prob.p
    latent = rng.standard_normal((n, LATENT)).astype(np.float32)
    mix = rng.standard_normal((LATENT, p)).astype(np.float32) / np.float32(np.sqrt(LATENT))
    ids = [f"stim{i:06d}" for i in range(n)]
    writer = LayerWriter(files["layer"], "layer", ids, {"model": "perf-scale", "weights": "synthetic"})
    for s0 in range(0, n, 2048):
        block = latent[s0:s0 + 2048] @ mix
        writer.append(block + rng.standard_normal(block.shape, dtype=np.float32))
    writer.commit()
    part = files["responses"].with_suffix(".part")
    with h5py.File(part, "w") as fh:
        width = 256
        resp = fh.create_dataset("responses", (n, t), dtype=np.float32, chunks=(n, min(t, 64)))
        reps = (fh.create_dataset("test_repetitions", (prob.n_test, prob.test_reps, t), dtype=np.float32,
                                  chunks=(prob.n_test, prob.test_reps, min(t, 64))) if prob.test_reps else None)
        snr = rng.uniform(0.05, 1.0, t).astype(np.float32)  # per-target signal amplitude
        for s0 in range(0, t, width):
            c = min(width, t - s0)
            load = rng.standard_normal((LATENT, c)).astype(np.float32) / np.float32(np.sqrt(LATENT))
            signal = (latent @ load) * snr[s0:s0 + c]
            if prob.test_reps:
                noise = rng.standard_normal((prob.n_test, prob.test_reps, c), dtype=np.float32)
                rep = signal[prob.n_train:, None, :] + noise
                reps[:, :, s0:s0 + c] = rep
                train = signal[:prob.n_train] + rng.standard_normal((prob.n_train, c), dtype=np.float32)
                resp[:, s0:s0 + c] = np.concatenate([train, rep.mean(1)])
            else:
                resp[:, s0:s0 + c] = signal + 0.5 * rng.standard_normal((n, c), dtype=np.float32)
        if not prob.test_reps:  # the variance explained by the signal of the averaged response
            fh.create_dataset("ceiling", data=(snr**2 / (snr**2 + 0.25)).astype(np.float64))
    part.rename(files["responses"])
    return files


def _inner_folds(n_train: int, folds: int):
    from ..metrics.splits import kfold_splits

    return [(a, b) for a, b in kfold_splits(n_train, folds, shuffle=False)]


def _neurobench(prob: Problem, cfg: dict, budget: int | None, queue) -> None:
    """A fresh process: score the cached layer against the HDF5 responses, store the result."""
    try:
        import h5py
        import torch

        from ..data.stimuli import StimulusSet
        from ..kinds.base import Benchmark
        from ..kinds.encoding import score_encoding
        from ..memory import peak_rss_bytes, rss_bytes
        from ..metrics.splits import fixed_split
        from ..models.adapter import Adapter
        from ..models.layerfile import LayerArray
        from ..store import ResultStore

        files = _files(prob, cfg["seed"])
        ids = [f"stim{i:06d}" for i in range(prob.n)]

        class CachedLayer(Adapter):
            identifier, weights_id, trained = "perf-scale-layer", "synthetic", False
            preprocess_id = "synthetic"

            def layers(self):
                return ["layer"]

            def activations(self, stimuli, layers=None, **_kw):
                return {"layer": LayerArray(files["layer"], "layer", (prob.n, prob.p))}

        class Scale(Benchmark):
            identifier, description = f"perf.scale-{prob.name}", "synthetic dataset-size encoding"

            def stimuli(self):
                return StimulusSet(self.identifier, ids, texts=ids)

            def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
                split = fixed_split(np.arange(prob.n) < prob.n_train)
                with h5py.File(files["responses"], "r") as fh:
                    extra = ({"test_repetitions": fh["test_repetitions"]} if prob.test_reps
                             else {"ceiling": fh["ceiling"][()], "ceiling_note": "given per target"})
                    return score_encoding(activations, fh["responses"], ids, ids, splits=split,
                                          inner_cv=[_inner_folds(prob.n_train, cfg["folds"])],
                                          alphas=cfg["alphas"], n_bootstrap=cfg["n_bootstrap"], seed=seed,
                                          device=device, memory_budget=memory_budget, **extra)

        if cfg["threads"]:
            torch.set_num_threads(cfg["threads"])
        bench = Scale()
        bench.stimuli().content_hash()
        warm_up(files)
        base = rss_bytes()
        t0 = time.perf_counter()
        result = bench.score(CachedLayer(), device=cfg["device"], memory_budget=budget)
        ResultStore(files["folder"] / "results.sqlite").add(result, run_id=uuid.uuid4().hex)
        seconds = time.perf_counter() - t0
        peak = peak_rss_bytes()
        r = result.per_target["r"].to_numpy()
        mem = result.provenance["memory"]
        queue.put({"tool": "neurobench", "seconds": seconds, "peak_MB": peak / 1e6, "base_MB": base / 1e6,
                   "score_MB": (peak - base) / 1e6,
                   "within": None if budget is None else bool(peak - base <= budget + BOOKKEEPING),
                   "mean_r": float(np.nanmean(r)),
                   "plan": f"responses {_short(mem['responses'])}, predictions {_short(mem['predictions'])}, "
                           f"{mem['target_block']} targets/block",
                   **({"gpu_peak_MB": torch.cuda.max_memory_allocated() / 1e6} if cfg["device"].startswith("cuda")
                      else {})})
    except Exception as exc:  # a row, so one failing run does not hide the others
        queue.put({"tool": "neurobench", "error": f"{type(exc).__name__}: {exc}"})


def warm_up(files: dict[str, Path]) -> None:
    """What every process pays once, before any work: BLAS / LAPACK buffers and thread pools, an
    HDF5 read. Measured into the fixed overhead (`base_MB`), not into a score's memory."""
    import h5py
    import torch

    a = torch.randn(512, 512)
    (a @ a).sum()
    torch.linalg.eigh(a @ a.T)
    torch.linalg.svd(a)
    (a.double() @ a.double()).sum()
    with h5py.File(files["responses"], "r") as fh:
        fh["responses"][:2, :2]


def himalaya_bytes(prob: Problem, n_targets_batch: int, n_alphas: int) -> int:
    """A generous estimate of himalaya's peak: X, Y (and its training copy) in float32, the
    per-fold predictions of every alpha for one target batch, the decompositions."""
    n_val = prob.n_train // 5
    return 4 * (prob.n * prob.p + 2 * prob.n * prob.t + 3 * n_alphas * n_val * n_targets_batch
                + 3 * prob.n_train * min(prob.n_train, prob.p) + prob.p * prob.p)


def _himalaya(prob: Problem, cfg: dict, queue) -> None:
    try:
        import h5py
        import torch
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV

        from ..memory import peak_rss_bytes, rss_bytes
        from ..models.layerfile import LayerArray

        if cfg["threads"]:
            torch.set_num_threads(cfg["threads"])
        files = _files(prob, cfg["seed"])
        warm_up(files)
        base = rss_bytes()
        t0 = time.perf_counter()
        X = LayerArray(files["layer"], "layer", (prob.n, prob.p)).read()
        with h5py.File(files["responses"], "r") as fh:
            Y = fh["responses"][()]
        backend = set_backend("torch_cuda" if cfg["device"].startswith("cuda") else "torch")
        model = RidgeCV(alphas=np.asarray(cfg["alphas"]), cv=_inner_folds(prob.n_train, cfg["folds"]),
                        fit_intercept=True, solver_params={"warn": False, "n_targets_batch": cfg["himalaya_batch"]})
        model.fit(backend.asarray(X[:prob.n_train]), backend.asarray(Y[:prob.n_train]))
        pred = model.predict(backend.asarray(X[prob.n_train:]))
        pred = pred.cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
        seconds = time.perf_counter() - t0
        yt = Y[prob.n_train:].astype(np.float64)
        pc, yc = pred - pred.mean(0), yt - yt.mean(0)
        with np.errstate(all="ignore"):
            r = (pc * yc).sum(0) / np.sqrt((pc * pc).sum(0) * (yc * yc).sum(0))
        peak = peak_rss_bytes()
        queue.put({"tool": "himalaya", "seconds": seconds, "peak_MB": peak / 1e6, "base_MB": base / 1e6,
                   "score_MB": (peak - base) / 1e6, "mean_r": float(np.nanmean(r)),
                   "plan": f"in memory, n_targets_batch={cfg['himalaya_batch']}; no bootstrap or ceiling"})
    except Exception as exc:
        queue.put({"tool": "himalaya", "error": f"{type(exc).__name__}: {exc}"})


def _short(where: str) -> str:
    return "on disk" if "disk" in where else "in RAM"


def _spawn(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    row = queue.get()
    proc.join()
    if proc.exitcode:
        row.setdefault("error", f"exit code {proc.exitcode}")
    return row


def run(args) -> list[dict[str, Any]]:
    from ..devices import available_memory_bytes, resolve_device
    from ..memory import parse_size
    from .ridge import parse_alphas

    device = str(resolve_device(args.device))
    cfg = {"seed": args.seed, "folds": args.folds, "alphas": parse_alphas(args.alphas).tolist(),
           "n_bootstrap": args.n_bootstrap, "device": device, "threads": args.threads,
           "himalaya_batch": args.himalaya_targets_batch}
    budgets = [None if b.strip().lower() in ("none", "") else parse_size(b, "--budgets")
               for b in args.budgets.split(",")]
    tools = [s.strip() for s in args.tools.split(",") if s.strip()]
    rows = []
    for name in args.problem:
        prob = PROBLEMS[name].scaled(args.scale) if args.scale != 1 else PROBLEMS[name]
        t0 = time.perf_counter()
        make_data(prob, args.seed)
        log.info("%s data ready in %.0f s", prob.key, time.perf_counter() - t0)
        shape = {"problem": f"{name} {prob.n_train}+{prob.n_test}"
                 + (f"x{prob.test_reps}" if prob.test_reps else "") + f" x {prob.p} -> {prob.t}", "device": device}
        for tool in tools:
            if tool == "neurobench":
                for budget in budgets:
                    row = _spawn(_neurobench, prob, cfg, budget)
                    rows.append({**shape, "budget": "none" if budget is None else f"{budget / 1e9:g} GB", **row})
            elif tool == "himalaya":
                need = himalaya_bytes(prob, args.himalaya_targets_batch, len(cfg["alphas"]))
                free = available_memory_bytes(resolve_device(device))
                if need > 0.8 * free:
                    rows.append({**shape, "tool": "himalaya", "error": f"does not fit: needs about {need / 1e9:.1f} "
                                 f"GB, {free / 1e9:.1f} GB free"})
                    continue
                rows.append({**shape, "budget": "-", **_spawn(_himalaya, prob, cfg)})
            else:
                raise ValueError(f"unknown tool {tool!r}; choose neurobench, himalaya")
        ours = [r for r in rows if r.get("problem") == name and r.get("tool") == "neurobench" and "seconds" in r]
        ref = next((r for r in rows if r.get("problem") == name and r.get("tool") == "himalaya" and "seconds" in r),
                   None)
        if ours and ref is not None:
            best = statistics.median(r["seconds"] for r in ours)
            for r in ours + [ref]:
                r["himalaya/this"] = ref["seconds"] / r["seconds"]
            log.info("%s: neurobench median %.0f s, himalaya %.0f s", name, best, ref["seconds"])
        if not args.keep:
            for key in ("layer", "responses"):
                _files(prob, args.seed)[key].unlink(missing_ok=True)
    return rows
