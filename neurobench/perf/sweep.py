"""`neurobench perf sweep`: a sweep on a LocalCluster of N worker processes against the same work
run one `neurobench score` at a time (one process per model, one after another, as a user would
type them), side by side in one run.

Each variant runs in fresh processes with its own empty NEUROBENCH_HOME (a cold activation cache
for both) and its own store. Reported: wall time (the sweep's includes starting the cluster),
peak resident memory of each `score` process / of each Dask worker and of the sweep's client,
the number of results, and whether both stored the same numbers (headline raw scores equal to
1e-9).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_SCORE = """
import json, resource, sys, time
from neurobench.cli import main
start = time.perf_counter()
code = main(json.loads(sys.argv[1]))
sys.stdout.flush()
print("PERF", json.dumps({"code": code, "wall_s": time.perf_counter() - start,
                          "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_SWEEP = """
import json, resource, sys, time

def peak():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

if __name__ == "__main__":
    start = time.perf_counter()
    from distributed import Client, LocalCluster
    import neurobench as nb
    kw = json.loads(sys.argv[1])
    cluster = LocalCluster(n_workers=kw.pop("workers"), threads_per_worker=kw.pop("threads"), processes=True,
                           dashboard_address=":0")
    client = Client(cluster)
    run = nb.sweep(client=client, **kw)
    wall = time.perf_counter() - start
    workers = sorted(client.run(peak).values())
    client.close()
    cluster.close()
    print("PERF", json.dumps({"wall_s": wall, "workers_mb": workers, "client_mb": peak(), "added": run.added,
                              "failures": len(run.failures)}))
"""


def _child(code: str, argument: dict | list, home: Path, mirror: str | None) -> dict:
    env = {**os.environ, "NEUROBENCH_HOME": str(home)}
    if mirror:
        env["NEUROBENCH_MIRROR"] = mirror
    done = subprocess.run([sys.executable, "-c", code, json.dumps(argument)], env=env, capture_output=True, text=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("PERF ")), None)
    if line is None:
        raise RuntimeError(f"perf sweep child failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return {**json.loads(line[5:]), "stderr": done.stderr[-2000:]}


def _headlines(path: Path) -> dict:
    from neurobench.store import ResultStore

    board = ResultStore(path, writable=False).leaderboard()
    return {(m, b): r for m, b, r in zip(board["model"], board["benchmark"], board["raw"])}


def run(args) -> list[dict]:
    models = args.models
    benchmarks = args.benchmarks
    mirror = os.environ.get("NEUROBENCH_MIRROR")
    options = [x for pair in (args.option or []) for x in ("-o", pair)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="neurobench-perf-sweep-") as tmp:
        tmp = Path(tmp)
        seq_store, sweep_store = tmp / "one-at-a-time.sqlite", tmp / "sweep.sqlite"
        start = time.perf_counter()
        peaks = []
        for model in models:
            argv = ["score", "--model", model, "--benchmark", *benchmarks, "--store", str(seq_store), "--quiet",
                    "--device", args.device, *options]
            if args.weights:
                argv += ["--weights", args.weights]
            out = _child(_SCORE, argv, tmp / "home-seq", mirror)
            if out["code"] != 0:
                raise RuntimeError(f"neurobench score --model {model} failed (exit {out['code']}): {out['stderr']}")
            peaks.append(out["peak_mb"])
        seq_wall = time.perf_counter() - start
        kw = {"models": models, "benchmarks": benchmarks, "store": str(sweep_store), "device": args.device,
              "weights": [args.weights] if args.weights else None, "workers": args.workers, "threads": args.threads,
              "option_text": dict(p.split("=", 1) for p in (args.option or []))}
        out = _child(_SWEEP, kw, tmp / "home-sweep", mirror)
        seq, swept = _headlines(seq_store), _headlines(sweep_store)
        same = set(seq) == set(swept) and all(abs(seq[k] - swept[k]) <= 1e-9 for k in seq)
        n = len(models) * len(benchmarks)
        rows.append({"variant": f"neurobench score, one at a time ({len(models)} processes)", "wall_s": round(seq_wall, 1),
                     "peak_mb": " / ".join(f"{p:.0f}" for p in peaks) + " (each score process)",
                     "results": len(seq), "expected": n, "same numbers": "-"})
        rows.append({"variant": f"neurobench sweep, LocalCluster {args.workers} workers x {args.threads} thread(s)",
                     "wall_s": round(out["wall_s"], 1),
                     "peak_mb": " / ".join(f"{p:.0f}" for p in out["workers_mb"])
                                + f" (each worker); client {out['client_mb']:.0f}",
                     "results": out["added"], "expected": n, "same numbers": "yes" if same else "NO"})
        rows.append({"variant": "speed-up (one at a time / sweep)", "wall_s": round(seq_wall / out["wall_s"], 2),
                     "peak_mb": "", "results": "", "expected": "", "same numbers": ""})
    return rows
