"""`neurobench perf gpu` (`make gpu-check`): the perf suites on a GPU and the GPU tests, one table.

Runs, each in its own process with its own time limit (the whole check is sized to finish in
under 5 minutes on one data-centre GPU):
1. the tests marked `gpu` (`pytest -m gpu`: CUDA results equal CPU ones, pinned non-blocking
   copies, half-precision extraction);
2. `perf ridge --device cuda` (n=2000, p=2048, t=10,000, 9 alphas, 5 folds) beside himalaya's
   `torch_cuda` backend;
3. `perf rsa --device cuda` at 92 and 200 stimuli (neurobench only: rsatoolbox has no GPU);
4. `perf extract --device cuda` (2,000 JPEG images, all default layers, project=4096);
5. `perf scale --device cuda` (the NSD shape at 0.4 of its size, an 8 GB budget, beside himalaya).
Each step's figures are read from the JSON rows the suite writes (`--json`), and the summary
table says per step: status (ok / failed / timed out / skipped), seconds, and its key figures.
Without a CUDA device every step is reported as skipped, with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

STEP_LIMIT_S = {"tests": 60, "ridge": 60, "rsa": 30, "extract": 60, "scale": 80}


@dataclass
class Step:
    name: str
    argv: list[str]  # arguments after `python -m`
    timeout: int
    suite: str | None = None  # a perf suite writes its rows to --json
    rows: list[dict] = field(default_factory=list)


def steps(device: str = "cuda") -> list[Step]:
    """The check's steps, in order."""
    perf = ["neurobench.cli", "perf"]
    return [
        Step("tests", ["pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"], STEP_LIMIT_S["tests"]),
        Step("ridge", perf + ["ridge", "--device", device, "--n", "2000", "--p", "2048", "--t", "10000",
                              "--alphas", "9", "--folds", "5", "--repeats", "3", "--tools", "neurobench,himalaya"],
             STEP_LIMIT_S["ridge"], "ridge"),
        Step("rsa", perf + ["rsa", "--device", device, "--n-stimuli", "92", "200", "--skip-rsatoolbox"],
             STEP_LIMIT_S["rsa"], "rsa"),
        Step("extract", perf + ["extract", "--device", device, "--n", "2000", "--readout", "project=4096",
                                "--workers", "8", "--batch-size", "128"], STEP_LIMIT_S["extract"], "extract"),
        Step("scale", perf + ["scale", "--device", device, "--problem", "nsd", "--scale", "0.4", "--budgets", "8GB",
                              "--tools", "neurobench,himalaya"], STEP_LIMIT_S["scale"], "scale"),
    ]


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def figures(step: Step, output: str = "") -> str:
    """The few numbers worth a line in the summary, from a step's rows (or pytest's last line)."""
    if step.suite is None:
        lines = [ln for ln in output.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else ""
    keys = {"ridge": ("tool", "median_s", "gpu_peak_mb", "mean_r", "speedup_vs_this"),
            "rsa": ("n_stimuli", "comparator", "seconds"),
            "extract": ("variant", "img_s", "vs_bare"),
            "scale": ("tool", "budget", "seconds", "score_MB", "mean_r", "gpu_peak_MB")}[step.suite]
    parts = []
    for row in step.rows:
        if "error" in row:
            parts.append(f"{row.get('tool', row.get('variant', '?'))}: error {row['error']}")
            continue
        parts.append(" ".join(_fmt(row[k]) for k in keys if row.get(k) is not None))
    return "; ".join(parts)


def run_step(step: Step, env: dict) -> dict:
    """Run one step in a fresh process under its time limit; a summary row."""
    with tempfile.TemporaryDirectory(prefix="neurobench-gpu-") as tmp:
        out_json = os.path.join(tmp, "rows.json")
        argv = [sys.executable, "-m", *step.argv] + (["--json", out_json] if step.suite else [])
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=step.timeout)
        except subprocess.TimeoutExpired:
            return {"step": step.name, "status": f"timed out after {step.timeout} s", "seconds": step.timeout,
                    "figures": ""}
        seconds = time.perf_counter() - t0
        if step.suite and os.path.exists(out_json):
            with open(out_json) as fh:
                step.rows = json.load(fh)
        ok = proc.returncode == 0
        text = figures(step, proc.stdout)
        if not ok:
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            text = (tail[-1] if tail else f"exit code {proc.returncode}") + (f" | {text}" if text else "")
        return {"step": step.name, "status": "ok" if ok else "failed", "seconds": seconds, "figures": text}


def run(args) -> list[dict]:
    import torch

    plan = steps(args.device)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        return [{"step": s.name, "status": "skipped: no CUDA device here", "seconds": 0.0, "figures": ""}
                for s in plan]
    env = {**os.environ, "NEUROBENCH_OFFLINE": "1"}
    rows = []
    for step in plan:
        if args.only and step.name not in args.only:
            continue
        rows.append(run_step(step, env))
    total = sum(r["seconds"] for r in rows)
    rows.append({"step": "total", "status": "ok" if all(r["status"] == "ok" for r in rows) else "check the steps",
                 "seconds": total, "figures": torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""})
    return rows
