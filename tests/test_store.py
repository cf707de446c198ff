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
