"""Results store: provenance, leaderboard, CSV, untrained labels, concurrent writers."""

import multiprocessing as mp

import pandas as pd
import pytest

from neurobench.result import ScoreResult
from neurobench.store import LEADERBOARD_COLUMNS, ResultStore


def _result(model="m", trained=True, bench="b", raw=0.2, layers=("l1", "l2")):
    table = pd.DataFrame({"layer": list(layers), "raw": [raw - 0.1, raw], "ci_low": [0.0, raw - 0.05],
                          "ci_high": [0.2, raw + 0.05], "ceiling": [0.5, 0.5], "normalized": [0.2, raw / 0.5]})
    return ScoreResult(model=model, weights_id="w" * 64 if trained else "random-123", trained=trained, benchmark=bench,
                       layers=table, best_layer=layers[-1], raw=raw, ci_low=raw - 0.05, ci_high=raw + 0.05,
                       ceiling=0.5, normalized=raw / 0.5, selection="split half", metric="rsa-tau_a",
                       provenance={"seed": 0, "device": "cpu", "data_hashes": {"f": "abc"}, "duration_s": 1.0,
                                   "timestamp": "2026-01-01T00:00:00+00:00", "neurobench_version": "0.1.0"})


def test_rows_carry_provenance(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    run = store.add(_result())
    rows = store.rows()
    assert len(rows) == 3  # two layers + the headline
    assert set(rows["run_id"]) == {run}
    assert set(rows["row_kind"]) == {"layer", "headline"}
    assert rows["data_hashes"].iloc[0] == '{"f": "abc"}'
    assert rows["weights_sha256"].iloc[0] == "w" * 64


def test_leaderboard_latest_best_layer_and_csv(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.add(_result(raw=0.1))
    store.add(_result(raw=0.3))  # a later run replaces the earlier one
    store.add(_result(model="m", trained=False, raw=0.05))
    board = store.leaderboard()
    assert list(board.columns) == LEADERBOARD_COLUMNS
    assert len(board) == 2
    assert board.loc[board["model"] == "m", "raw"].item() == pytest.approx(0.3)
    assert (board["model"] == "m [untrained]").sum() == 1
    csv = pd.read_csv(store.export_csv(tmp_path / "lb.csv"))
    assert list(csv.columns) == LEADERBOARD_COLUMNS and len(csv) == 2


def test_schema_version_is_checked(tmp_path):
    import sqlite3

    path = tmp_path / "r.sqlite"
    ResultStore(path)
    with sqlite3.connect(path) as con:
        con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(Exception, match="schema version 99"):
        ResultStore(path)


def _writer(path, model, n):
    store = ResultStore(path)
    for i in range(n):
        store.add(_result(model=f"{model}-{i}"))


def test_two_processes_writing_at_once_lose_no_rows(tmp_path):
    path = tmp_path / "shared.sqlite"
    ResultStore(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, name, 15)) for name in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = ResultStore(path).rows()
    assert len(rows) == 2 * 15 * 3
    assert rows.groupby("result_id").size().eq(3).all()


def test_cli_leaderboard_prints_untrained_label(tmp_path, capsys):
    from neurobench.cli import main

    store = ResultStore(tmp_path / "r.sqlite")
    store.add(_result(model="m", trained=False))
    assert main(["leaderboard", "--store", str(tmp_path / "r.sqlite")]) == 0
    assert "m [untrained]" in capsys.readouterr().out


def test_perf_targets_suite_reads_back_what_it_stored(capsys):
    from neurobench.cli import main

    assert main(["perf", "targets", "--subjects", "2", "--targets", "50", "--layers", "2", "--repeats", "3"]) == 0
    assert "Parquet sidecar" in capsys.readouterr().out


def test_version_1_store_is_migrated_in_place(tmp_path):
    """A store written by schema version 1 (no target_files table) opens, keeps its rows, gains the
    sidecar table and version 2; a store from a newer neurobench is refused by name."""
    import sqlite3

    from neurobench import store as store_module
    from neurobench.errors import NeurobenchError

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(store_module._SCHEMA)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.commit()
    con.close()
    old = ResultStore(path)  # a v1 store holding rows: add one through the v1 columns only
    old.add(_result())
    con = sqlite3.connect(path)
    con.execute("DROP TABLE target_files")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    store = ResultStore(path)
    assert len(store.rows()) == 3
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    assert con.execute("SELECT COUNT(*) FROM target_files").fetchone()[0] == 0
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(NeurobenchError, match="schema version 99"):
        ResultStore(path)


def test_result_without_targets_has_no_sidecar(tmp_path):
    from neurobench.errors import DataUnavailableError

    store = ResultStore(tmp_path / "r.sqlite")
    store.add(_result())
    assert not store.targets_dir.exists()
    with pytest.raises(DataUnavailableError, match="no per-target values"):
        store.targets("m", "b")
    with pytest.raises(DataUnavailableError, match="benchmarks stored for 'm': \\['b'\\]"):
        store.targets("m", "other")
