"""The PostgreSQL results store against a real server started by the fixture (tests/postgres.py):
results exactly once by fingerprint, the default-configuration leaderboard, two sweeps writing
at once (separate processes) lose and duplicate nothing, merging SQLite stores into it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import postgres

REASON = postgres.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no PostgreSQL server: {REASON}")

REPO = Path(__file__).resolve().parents[2]
PLUGIN = str(Path(__file__).with_name("plugin.py"))


@pytest.fixture(scope="module")
def pg_url():
    server = postgres.Server().start()
    yield server.url
    server.stop()


def test_results_exactly_once_and_leaderboard(pg_url, tmp_path):
    import psycopg

    from neurobench.cli import main
    from neurobench.store import ResultStore
    from neurobench.stores import open_store
    from tests.test_store import _result

    with psycopg.connect(pg_url, autocommit=True) as con:  # a fresh schema for this test
        con.execute("DROP TABLE IF EXISTS meta, scores, results, failures, target_files")
    store = open_store(pg_url)
    assert type(store).__name__ == "PostgresStore"
    assert store.insert(_result(raw=0.3), "run1") is True
    assert store.insert(_result(raw=0.1), "run2") is False  # the same configuration: not added
    partial = _result(raw=0.9, layers=("l1", "fc"))
    partial.provenance = {**partial.provenance, "configuration": {**_config(partial), "layers": ["fc"]},
                          "differences": {"layers": ["fc"]}}
    assert store.insert(partial, "run3") is True
    board = store.leaderboard()
    assert len(board) == 1 and board["raw"].item() == pytest.approx(0.3)
    assert set(store.leaderboard(default_only=False)["configuration"]) == {"default", "layers=fc"}
    assert len(store.rows()) == 6 and len(store.results()) == 2
    # SQLite per-job stores merge into it exactly once
    job = tmp_path / "job.sqlite"
    ResultStore(job).add(_result(model="other"))
    ResultStore(job).add(_result(raw=0.3))  # stored in PostgreSQL already
    assert main(["store", "merge", str(job), "--into", pg_url]) == 0
    assert len(open_store(pg_url).results()) == 3


def _config(result):
    from neurobench.store import result_configuration

    return result_configuration(result)[0]


_SWEEP = textwrap.dedent("""
    import sys
    from distributed import Client, LocalCluster
    import neurobench as nb

    if __name__ == "__main__":
        models = sys.argv[3].split(",")
        with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \\
                Client(cluster) as client:  # two units at once in one process: models are built one at a time
            run = nb.sweep(models, ["sweeptest.hue-spearman", "sweeptest.hue-pearson"], plugins=[sys.argv[2]],
                           store=sys.argv[1], device="cpu", client=client)
        print("RESULT", run.added, run.duplicates, run.skipped, len(run.failures))
""")


def test_two_sweeps_at_once_lose_and_duplicate_nothing(pg_url, tmp_path):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS meta, scores, results, failures, target_files")
    script = tmp_path / "sweep_job.py"
    script.write_text(_SWEEP)
    jobs = [subprocess.Popen([sys.executable, str(script), pg_url, PLUGIN, models], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for models in ("sweeptest-a,sweeptest-b", "sweeptest-b,sweeptest-c")]
    counts = []
    for job in jobs:
        out, err = job.communicate(timeout=400)
        assert job.returncode == 0, err[-3000:]
        counts.append([int(x) for x in out.split("RESULT")[1].split()])
    with psycopg.connect(pg_url) as con:
        rows = con.execute("SELECT model, benchmark, fingerprint, run_id FROM results ORDER BY model").fetchall()
        assert con.execute("SELECT COUNT(*), COUNT(DISTINCT fingerprint) FROM results").fetchone() == (6, 6), rows
        assert con.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 6 * 4
        assert con.execute("SELECT COUNT(DISTINCT result_id) FROM scores").fetchone()[0] == 6
    assert sum(c[0] for c in counts) == 6, (counts, rows)  # 3 models x 2 benchmarks, each added by one sweep
    assert sum(c[0] + c[1] + c[2] for c in counts) == 8 and all(c[3] == 0 for c in counts)
