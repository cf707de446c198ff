"""`neurobench perf ridge`: time cross-validated ridge against himalaya and scikit-learn.

Every tool solves the same problem in the same run: the same random data (regenerated from the
seed inside each worker), one fixed train/test split (last `--test-fraction` of a seeded
permutation), the same contiguous k-fold inner splits of the training rows, the same alphas.
Each tool fits RidgeCV with an intercept on the training rows, predicts the test rows, and its
"held-out r" is the mean over targets of the Pearson r between prediction and truth on the test
rows.  himalaya and neurobench choose one alpha per target (by mean squared error over the inner
folds); scikit-learn's RidgeCV with explicit folds can only choose one alpha shared by all
targets (GridSearchCV, R^2 scorer), so its r is not expected to match.

Each tool runs in its own fresh process (multiprocessing, spawn), so its peak memory
(`ru_maxrss`, and `torch.cuda.max_memory_allocated` on GPU) is its own; `base_mb` is the
process's resident memory after the data were made, before the first fit.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import multiprocessing as mp
import resource
import statistics
import time
from typing import Any

import numpy as np

from . import RIDGE_TOOLS, add_arguments

log = logging.getLogger(__name__)

TOOLS = tuple(RIDGE_TOOLS.split(","))
_AVAILABLE = {"neurobench": "torch", "himalaya": "himalaya", "sklearn": "sklearn"}


def parse_alphas(spec: str | int | list) -> np.ndarray:
    """'9' -> logspace(-2, 6, 9); '0.1,1,10' -> that list."""
    if isinstance(spec, (list, tuple, np.ndarray)):
        return np.asarray(spec, dtype=np.float64)
    spec = str(spec)
    if "," in spec:
        return np.asarray([float(a) for a in spec.split(",") if a.strip()], dtype=np.float64)
    return np.logspace(-2, 6, int(spec))


def make_problem(n: int, p: int, t: int, seed: int, dtype: str = "float32"):
    """Random encoding problem: Y = X W (dense, SNR 1) + noise, float32 or float64."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p), dtype=np.float32)
    Y = np.empty((n, t), dtype=np.float32)
    step = 2048
    for s in range(0, t, step):  # in blocks, so making data does not set the memory peak
        e = min(t, s + step)
        W = rng.standard_normal((p, e - s), dtype=np.float32) * np.float32(1 / np.sqrt(p))
        Y[:, s:e] = X @ W + rng.standard_normal((n, e - s), dtype=np.float32)
    if dtype == "float64":
        X, Y = X.astype(np.float64), Y.astype(np.float64)
    return X, Y


def make_splits(n: int, folds: int, test_fraction: float, seed: int):
    """(train, test, inner) with inner folds as index pairs relative to the training rows."""
    perm = np.random.default_rng(seed + 1).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    train, test = np.sort(perm[n_test:]), np.sort(perm[:n_test])
    from ..metrics.splits import kfold_splits

    inner = [(a, b) for a, b in kfold_splits(len(train), folds, shuffle=False)]
    return train, test, inner


def _mean_r(pred: np.ndarray, y: np.ndarray) -> float:
    pc = pred - pred.mean(0)
    yc = y - y.mean(0)
    den = np.sqrt((pc * pc).sum(0) * (yc * yc).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (pc * yc).sum(0) / den
    return float(np.nanmean(r))


def _fit_predict(tool: str, X, Y, train, test, inner, alphas, cfg) -> np.ndarray:
    if tool == "neurobench":
        from ..metrics.ridge import cross_validated_encoding
        from ..metrics.splits import Splits

        outer = Splits("fixed", None, [(train, test)], len(X))
        res = cross_validated_encoding(
            X, Y, outer, alphas, inner_cv=inner, device=cfg["device"], dtype=cfg["dtype"],
            memory_budget=cfg["memory_budget"], return_predictions=True)
        return res.predictions[test]
    if tool == "himalaya":
        import torch
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV

        backend = set_backend("torch_cuda" if cfg["device"].startswith("cuda") else "torch")
        m = RidgeCV(alphas=alphas, cv=inner, fit_intercept=True,
                    solver_params={"warn": False})
        m.fit(backend.asarray(X[train]), backend.asarray(Y[train]))
        pred = m.predict(backend.asarray(X[test]))
        return pred.cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
    if tool == "sklearn":
        from sklearn.linear_model import RidgeCV

        m = RidgeCV(alphas=alphas, cv=inner, fit_intercept=True)
        m.fit(X[train], Y[train])
        return m.predict(X[test])
    raise ValueError(f"unknown tool {tool!r}")


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _worker(tool: str, cfg: dict[str, Any], queue) -> None:
    """Runs in a fresh process: make data, time `repeats` fits, report peak memory."""
    try:
        import torch

        if cfg["threads"]:
            torch.set_num_threads(cfg["threads"])
        X, Y = make_problem(cfg["n"], cfg["p"], cfg["t"], cfg["seed"], cfg["dtype"])
        train, test, inner = make_splits(cfg["n"], cfg["folds"], cfg["test_fraction"], cfg["seed"])
        alphas = np.asarray(cfg["alphas"])
        cuda = cfg["device"].startswith("cuda")
        base = _rss_mb()
        times, r = [], float("nan")
        for _ in range(cfg["repeats"]):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            pred = _fit_predict(tool, X, Y, train, test, inner, alphas, cfg)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            r = _mean_r(np.asarray(pred, dtype=np.float64), Y[test].astype(np.float64))
            del pred
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
        row = {
            "tool": tool,
            "version": _version(tool),
            "device": cfg["device"],
            "dtype": cfg["dtype"],
            "alpha_choice": "shared" if tool == "sklearn" else "per target",
            "median_s": statistics.median(times),
            "min_s": min(times),
            "times_s": times,
            "peak_mb": peak,
            "base_mb": base,
            "mean_r": r,
        }
        if cuda:
            row["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        queue.put(row)
    except Exception as exc:  # reported as a row, so one failing tool does not hide the others
        queue.put({"tool": tool, "error": f"{type(exc).__name__}: {exc}"})


def _version(tool: str) -> str:
    from importlib import metadata

    name = {"neurobench": "neurobench", "himalaya": "himalaya", "sklearn": "scikit-learn"}[tool]
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time each requested, installed tool in its own process; rows for a table."""
    tools = [s.strip() for s in str(args.tools).split(",") if s.strip()]
    unknown = [s for s in tools if s not in TOOLS]
    if unknown:
        raise ValueError(f"unknown tools {unknown}; choose from {TOOLS}")
    device = args.device
    if device == "auto":
        from ..devices import resolve_device

        device = str(resolve_device("auto"))
    cfg = {
        "n": args.n, "p": args.p, "t": args.t, "alphas": parse_alphas(args.alphas).tolist(),
        "folds": args.folds, "device": device, "repeats": max(1, args.repeats),
        "dtype": args.dtype, "seed": args.seed, "test_fraction": args.test_fraction,
        "memory_budget": args.memory_budget, "threads": args.threads,
    }
    ctx = mp.get_context("spawn")
    rows = []
    for tool in tools:
        if importlib.util.find_spec(_AVAILABLE[tool]) is None:
            log.info("%s is not installed; skipped", tool)
            continue
        log.info("timing %s (%d runs)", tool, cfg["repeats"])
        queue = ctx.Queue()
        proc = ctx.Process(target=_worker, args=(tool, cfg, queue))
        proc.start()
        row = queue.get()
        proc.join()
        row.update({k: cfg[k] for k in ("n", "p", "t", "folds")}, n_alphas=len(cfg["alphas"]))
        rows.append(row)
    ref = next((r for r in rows if r["tool"] == "neurobench" and "error" not in r), None)
    for row in rows:
        if ref is not None and "error" not in row:
            row["speedup_vs_this"] = row["median_s"] / ref["median_s"]
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table (the CLI may render its own)."""
    head = f"{'tool':<11}{'device':<7}{'alpha':<11}{'median s':>9}{'peak MB':>9}{'base MB':>9}" \
           f"{'mean r':>9}{'nb faster':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['tool']:<11}error: {r['error']}")
            continue
        lines.append(
            f"{r['tool']:<11}{r['device']:<7}{r['alpha_choice']:<11}{r['median_s']:>9.2f}"
            f"{r['peak_mb']:>9.0f}{r['base_mb']:>9.0f}{r['mean_r']:>9.4f}"
            f"{r.get('speedup_vs_this', float('nan')):>9.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="neurobench perf ridge", description=__doc__)
    add_arguments("ridge", parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(format_table(run(args)))  # noqa: T201 - command-line entry point


if __name__ == "__main__":
    main()
