"""Regression tests (these held before issue 12 and must keep holding): concurrent writers lose no
row, and a writer killed with SIGKILL in the middle of a transaction leaves no partial result."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from neurobench.store import ResultStore

REPO = Path(__file__).resolve().parents[2]

_RESULT = textwrap.dedent("""
    import sys, time
    import pandas as pd
    from neurobench.result import ScoreResult
    from neurobench.store import ResultStore

    def result(model, n_layers=3):
        layers = [f"l{i}" for i in range(n_layers)]
        table = pd.DataFrame({"layer": layers, "raw": [0.1] * n_layers, "ci_low": [0.0] * n_layers,
                              "ci_high": [0.2] * n_layers, "ceiling": [0.5] * n_layers, "normalized": [0.2] * n_layers})
        return ScoreResult(model=model, weights_id="w" * 64, trained=True, benchmark="b", layers=table,
                           best_layer=layers[-1], raw=0.1, ci_low=0.0, ci_high=0.2, ceiling=0.5, normalized=0.2,
                           selection="s", metric="m", normalization="nili_lower", interval="stimuli", provenance={"seed": 0, "timestamp": "2026-01-01T00:00:00"})
""")


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", _RESULT + textwrap.dedent(code)]


def test_four_concurrent_writers_lose_no_row(tmp_path):
    store = tmp_path / "shared.sqlite"
    ResultStore(store)
    writer = """
        store = ResultStore(sys.argv[1])
        for i in range(12):
            store.add(result(f"{sys.argv[2]}-{i}"))
    """
    procs = [subprocess.Popen(_python(writer) + [str(store), name], cwd=REPO, stderr=subprocess.PIPE)
             for name in ("a", "b", "c", "d")]
    for p in procs:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    rows = ResultStore(store).rows()
    assert len(rows) == 4 * 12 * 4  # 3 layers + the headline per result
    assert rows.groupby("result_id").size().eq(4).all() and rows["model"].nunique() == 48


def test_sigkill_in_the_middle_of_a_transaction_leaves_no_partial_result(tmp_path):
    store = tmp_path / "r.sqlite"
    ResultStore(store).add(_result_in_parent())
    killed = """
        connect = ResultStore._connect
        def traced(self):
            con = connect(self)
            seen = []
            def trace(statement):
                if statement.startswith("INSERT INTO scores"):
                    seen.append(statement)
                    if len(seen) == 3:  # two rows of this result are written, not committed
                        print("mid-transaction", flush=True)
                        time.sleep(120)
            con.set_trace_callback(trace)
            return con
        ResultStore._connect = traced
        ResultStore(sys.argv[1]).add(result("killed", n_layers=50))
    """
    proc = subprocess.Popen(_python(killed) + [str(store)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline().decode().strip()
        assert line == "mid-transaction", proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    reopened = ResultStore(store)
    rows = reopened.rows()
    assert "killed" not in set(rows["model"]) and len(rows) == 3
    import sqlite3

    with sqlite3.connect(store) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    reopened.add(_result_in_parent("after"))  # the store takes new results
    assert len(ResultStore(store).rows()) == 6


def _result_in_parent(model: str = "before"):
    namespace: dict = {}
    exec(_RESULT, namespace)  # the same result builder as the writer processes
    return namespace["result"](model, n_layers=2)
