"""Results-store schema 4: one result per configuration fingerprint (insert-or-ignore, also for
racing writers), a leaderboard of default configurations that a partial run never replaces,
migrations of stores written by the old code (schemas 2 and 3), merging per-job stores."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from neurobench.cli import main
from neurobench.registry import benchmarks, models
from neurobench.store import SCHEMA_VERSION, ResultStore
from tests.test_store import _writer

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_plugin.py"


def _old_store(tmp_path: Path, version: int) -> Path:
    """A store written by neurobench at schema `version` (tests/fixtures: the old code scored
    tiny-convnet on toy.colour-rsa: a full run, the same again, `layers=['5']`, then seed 1)."""
    path = tmp_path / f"schema{version}.sqlite"
    with sqlite3.connect(path) as con:
        con.executescript((FIXTURES / f"results_store_schema{version}.sql").read_text())
    return path


@pytest.mark.parametrize("version", [2, 3])
def test_old_stores_are_migrated_with_configurations(tmp_path, version):
    path = _old_store(tmp_path, version)
    before = pd.read_sql_query("SELECT * FROM scores ORDER BY id", sqlite3.connect(path))
    old_head = before[before["row_kind"] == "headline"]
    full_best = old_head.iloc[0]["layer"]
    assert old_head.iloc[2]["layer"] == "5" and full_best != "5"  # the partial run is stored after the full one
    store = ResultStore(path)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert len(store.rows()) == len(before)  # every row kept
    results = store.results()
    assert len(results) == 4
    assert results["fingerprint"].isna().sum() == 1  # the earlier of two identical runs: history, never ranked
    summaries = sorted(results["config_summary"])
    assert summaries[0].startswith("default") and any(s.startswith("layers=5") for s in summaries)
    assert any(s.startswith("seed=1") for s in summaries)
    board = store.leaderboard()
    assert len(board) == 1 and board["best_layer"].item() == full_best  # not the partial run's layer
    assert board["raw"].item() == pytest.approx(old_head.iloc[1]["raw"])  # the later of the identical runs
    assert len(store.leaderboard(default_only=False)) == 3
    assert len(ResultStore(path).results()) == 4  # opening again migrates nothing


@pytest.fixture
def example_plugin():
    from neurobench.registry import load_plugin

    assert load_plugin(str(EXAMPLE)) is None
    yield
    models.remove("tiny-convnet")
    benchmarks.remove("toy.colour-rsa")


def test_partial_run_never_replaces_the_full_one(tmp_path, capsys, example_plugin):
    store = str(tmp_path / "s.sqlite")
    score = ["score", "--model", "tiny-convnet", "--benchmark", "toy.colour-rsa", "--store", store, "--quiet"]
    assert main(score) == 0
    full = ResultStore(store).leaderboard().iloc[0]
    assert main([*score, "--layers", "5"]) == 0
    capsys.readouterr()
    assert main(score) == 0  # the identical configuration again: no rows added, and it says so
    assert "not added again (the identical configuration is stored already): toy.colour-rsa" in capsys.readouterr().out
    s = ResultStore(store)
    assert len(s.results()) == 2 and len(s.rows()) == 4 + 2
    board = s.leaderboard()
    assert len(board) == 1
    assert board["best_layer"].item() == full["best_layer"] and board["raw"].item() == pytest.approx(full["raw"])
    assert board["configuration"].item() == "default"
    every = s.leaderboard(default_only=False).set_index("configuration")
    assert set(every.index) == {"default", "layers=5"} and every.loc["layers=5", "best_layer"] == "5"
    partial = every.loc["layers=5", "config"]
    assert s.leaderboard(config=partial)["best_layer"].tolist() == ["5"]
    capsys.readouterr()
    assert main(["leaderboard", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "default configurations only" in out and "layers=5" not in out
    assert main(["leaderboard", "--store", store, "--all-configs"]) == 0
    assert "layers=5" in capsys.readouterr().out
    csv = tmp_path / "lb.csv"
    assert main(["leaderboard", "--store", store, "--export", str(csv)]) == 0
    assert pd.read_csv(csv)["best_layer"].astype(str).tolist() == [str(full["best_layer"])]


def test_racing_writers_store_each_fingerprint_once(tmp_path):
    path = tmp_path / "shared.sqlite"
    ResultStore(path)
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:  # two writers of the same results
        list(pool.map(_writer, [path, path], ["same", "same"], [12, 12], timeout=300))
    store = ResultStore(path)
    assert len(store.results()) == 12 and len(store.rows()) == 12 * 3


def test_store_merge_exactly_once(tmp_path, capsys):
    from tests.test_store import _result

    a, b, into = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "c.sqlite"
    for i in range(3):
        ResultStore(a).add(_result(model=f"m{i}"))
    for i in range(2, 5):
        ResultStore(b).add(_result(model=f"m{i}"))
    ResultStore(b).add_failure("request:x", model="broken", benchmark="b", error_type="ExtractionError",
                               message="boom", run_id="r")
    assert main(["store", "merge", str(a), str(b), "--into", str(into)]) == 0
    out = capsys.readouterr().out
    assert "5 result(s) added, 1 skipped" in out
    merged = ResultStore(into)
    assert len(merged.results()) == 5 and len(merged.rows()) == 15 and len(merged.failures()) == 1
    assert main(["store", "merge", str(a), str(b), "--into", str(into)]) == 0  # again: nothing added
    assert "0 result(s) added, 6 skipped" in capsys.readouterr().out
    assert len(ResultStore(into).rows()) == 15


def test_store_on_a_network_filesystem_is_refused(tmp_path, monkeypatch):
    from neurobench import store as store_module
    from neurobench.errors import StoreError

    assert store_module.network_filesystem(tmp_path) is None  # the test machine's /tmp is local
    mounts = f"server:/export {tmp_path} nfs4 rw,relatime 0 0\n"
    original = Path.read_text
    monkeypatch.setattr(store_module.Path, "read_text",
                        lambda self, *a, **k: mounts if str(self) == "/proc/mounts" else original(self, *a, **k))
    assert store_module.network_filesystem(tmp_path / "x") == "nfs4"
    with pytest.raises(StoreError, match=r"network filesystem \(nfs4\).*postgresql://.*store merge"):
        ResultStore(tmp_path / "lab.sqlite")
