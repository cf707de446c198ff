"""Results store: provenance, conventions, leaderboard, CSV, untrained labels, concurrent writers,
the schema-1 -> 2 migration."""

import json
import multiprocessing as mp
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neurobench.errors import InvalidInputError
from neurobench.result import ScoreResult
from neurobench.store import LEADERBOARD_COLUMNS, SCHEMA_VERSION, ResultStore

SCHEMA1_DUMP = Path(__file__).parent / "fixtures" / "results_store_schema1.sql"


def _result(model="m", trained=True, bench="b", raw=0.2, layers=("l1", "l2"), normalization="nili_lower",
            metric="rsa-tau_a", ceiling=0.5, **extra):
    norm = [0.2, raw / ceiling] if ceiling else [np.nan, np.nan]
    table = pd.DataFrame({"layer": list(layers), "raw": [raw - 0.1, raw], "ci_low": [0.0, raw - 0.05],
                          "ci_high": [0.2, raw + 0.05], "ceiling": [ceiling or np.nan] * 2, "normalized": norm,
                          "alpha_at_max": [3, 0]})
    return ScoreResult(model=model, weights_id="w" * 64 if trained else "random-123", trained=trained, benchmark=bench,
                       layers=table, best_layer=layers[-1], raw=raw, ci_low=raw - 0.05, ci_high=raw + 0.05,
                       ceiling=ceiling, normalized=raw / ceiling if ceiling else None, selection="split half", metric=metric,
                       normalization=normalization, interval="stimuli",
                       provenance={"seed": 0, "device": "cpu", "data_hashes": {"f": "abc"}, "duration_s": 1.0,
                                   "timestamp": "2026-01-01T00:00:00+00:00", "neurobench_version": "0.1.0"}, **extra)


def test_rows_carry_provenance(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    run = store.add(_result())
    rows = store.rows()
    assert len(rows) == 3  # two layers + the headline
    assert set(rows["run_id"]) == {run}
    assert set(rows["row_kind"]) == {"layer", "headline"}
    assert rows["data_hashes"].iloc[0] == '{"f": "abc"}'
    assert rows["weights_sha256"].iloc[0] == "w" * 64
    assert set(rows["normalization"]) == {"nili_lower"} and set(rows["interval"]) == {"stimuli"}
    assert [json.loads(d).get("alpha_at_max") for d in rows["details"]] == [3, 0, None]  # per-layer columns kept


def test_a_score_must_name_its_conventions():
    with pytest.raises(InvalidInputError, match="normalization convention"):
        _result(normalization=None)
    with pytest.raises(InvalidInputError, match="normalization convention.*'r2'"):
        _result(normalization="r2")


def test_leaderboard_latest_best_layer_and_csv(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.add(_result(raw=0.3))
    store.add(_result(raw=0.1))  # the same configuration again: not added (exactly once per fingerprint)
    store.add(_result(model="m", trained=False, raw=0.05))
    assert len(store.results()) == 2 and len(store.rows()) == 6
    board = store.leaderboard()
    assert list(board.columns) == LEADERBOARD_COLUMNS
    assert len(board) == 2
    trained = board[board["model"] == "m"].set_index("trained")
    assert trained.loc[True, "raw"] == pytest.approx(0.3)
    assert trained.loc[True, "nili_lower"] == pytest.approx(0.6)
    assert trained.loc[False, "raw"] == pytest.approx(0.05)  # the bare model id; `trained` says which
    assert set(board["configuration"]) == {"default"} and board["config"].str.len().eq(12).all()
    csv = pd.read_csv(store.export_csv(tmp_path / "lb.csv"))
    assert list(csv.columns) == LEADERBOARD_COLUMNS and len(csv) == 2
    assert "normalized" not in csv  # never one column for values under different conventions


def test_leaderboard_one_column_per_convention(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.add(_result(model="a", bench="x.rsa", raw=0.2))
    store.add(_result(model="b", bench="x.rsa", raw=0.3))
    store.add(_result(model="a", bench="x.pls", raw=0.5, normalization="explainable_variance_fraction", metric="pls",
                      other_normalizations={"brainscore_explained_variance": 1.4}))
    store.add(_result(model="a", bench="topo.x", raw=7.0, normalization="none", metric="participation-ratio",
                      ceiling=None))
    board = store.leaderboard().set_index(["benchmark", "model"])
    assert board.loc[("x.rsa", "b"), "nili_lower"] == pytest.approx(0.6)
    assert np.isnan(board.loc[("x.rsa", "b"), "explainable_variance_fraction"])
    assert board.loc[("x.pls", "a"), "explainable_variance_fraction"] == pytest.approx(1.0)
    assert board.loc[("x.pls", "a"), "brainscore_explained_variance"] == pytest.approx(1.4)
    assert np.isnan(board.loc[("x.pls", "a"), "nili_lower"])
    topo = board.loc[("topo.x", "a")]
    assert topo["normalization"] == "none" and topo[["explainable_variance_fraction", "nili_lower"]].isna().all()
    assert list(store.leaderboard().query("benchmark == 'x.rsa'")["model"]) == ["b", "a"]  # ranked in its column
    # one benchmark under two conventions (an old row and a new one): grouped apart, each ranked in its own column
    store.add(_result(model="c", bench="x.rsa", raw=0.9, normalization="explainable_variance_fraction"))
    rsa = store.leaderboard().query("benchmark == 'x.rsa'")
    assert list(rsa["normalization"]) == ["explainable_variance_fraction", "nili_lower", "nili_lower"]
    assert list(rsa["model"]) == ["c", "b", "a"]
    sections = {name: part for name, _definition, part in store.leaderboard_sections()}
    assert set(sections) == {"explainable_variance_fraction", "nili_lower", "none"}
    assert "nili_lower" not in sections["explainable_variance_fraction"]
    assert "brainscore_explained_variance" in sections["explainable_variance_fraction"]
    assert list(sections["nili_lower"]["benchmark"]) == ["x.rsa", "x.rsa"]


def _schema1_store(path: Path) -> Path:
    with sqlite3.connect(path) as con:
        con.executescript(SCHEMA1_DUMP.read_text())
    return path


def test_schema1_store_is_migrated_in_place(tmp_path):
    path = _schema1_store(tmp_path / "old.sqlite")
    before = pd.read_sql_query("SELECT * FROM scores ORDER BY id", sqlite3.connect(path))
    store = ResultStore(path)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    rows = store.rows().set_index("id")
    assert len(rows) == len(before)
    for col in ("raw", "ci_low", "ci_high", "ceiling", "metric", "provenance", "run_id"):  # nothing else touched
        pd.testing.assert_series_equal(rows[col].reset_index(drop=True), before[col], check_names=False)
    by_metric = rows.groupby("metric")[["normalization", "interval"]].agg(lambda v: sorted(set(v)))
    assert by_metric.loc["ridge-encoding", "normalization"] == ["explainable_variance_fraction"]
    assert by_metric.loc["rsa-tau_a", "normalization"] == ["nili_lower", "none"]  # hIT has a ceiling, mIT none
    assert by_metric.loc["rsa-tau_a", "interval"] == ["stimuli"]
    assert by_metric.loc["temporal-rsa-spearman", "normalization"] == ["nili_lower"]
    assert by_metric.loc["pls", "normalization"] == ["brainscore_explained_variance"]
    assert by_metric.loc["participation-ratio", "normalization"] == ["none"]
    assert by_metric.loc["participation-ratio", "interval"] == ["none", "stimuli (normal approximation)"]
    assert by_metric.loc["custom-metric", "normalization"] == ["unrecorded"]
    pls = rows[rows["metric"] == "pls"].iloc[0]
    assert pls["normalized"] == pytest.approx((pls["raw"] / pls["ceiling"]) ** 2)
    assert "schema 3" in json.loads(pls["notes"])[0]
    # the migrated store takes new rows and ranks old and new ones by convention
    store.add(_result(model="synthetic-oracle", bench="kriegeskorte2008.hit-rsa", raw=0.1))
    board = store.leaderboard()
    assert "unrecorded" in board and board["unrecorded"].notna().sum() == 1
    assert ResultStore(path).rows().shape[0] == len(before) + 3  # opening again migrates nothing


def test_migration_is_one_transaction(tmp_path, monkeypatch):
    from neurobench import store as store_module

    path = _schema1_store(tmp_path / "old.sqlite")

    def broken(con):  # fails half-way: the column is added, then the disk is full
        con.execute("ALTER TABLE scores ADD COLUMN normalization TEXT")
        raise RuntimeError("disk full")

    monkeypatch.setitem(store_module._MIGRATIONS, 2, broken)
    with pytest.raises(RuntimeError, match="disk full"):
        ResultStore(path)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
        assert "normalization" not in [r[1] for r in con.execute("PRAGMA table_info(scores)")]


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


def test_cli_leaderboard_prints_the_trained_column(tmp_path, capsys):
    from neurobench.cli import main

    store = ResultStore(tmp_path / "r.sqlite")
    store.add(_result(model="m", trained=False))
    assert main(["leaderboard", "--store", str(tmp_path / "r.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "│ m " in out and "false" in out and "[untrained]" not in out  # `trained` is its own column
    assert "normalisation: nili_lower" in out and "Nili et al. (2014)" in out


def test_perf_targets_suite_reads_back_what_it_stored(capsys):
    from neurobench.cli import main

    assert main(["perf", "targets", "--subjects", "2", "--targets", "50", "--layers", "2", "--repeats", "3"]) == 0
    assert "Parquet sidecar" in capsys.readouterr().out


def test_version_1_store_is_migrated_in_place(tmp_path):
    """A store written by schema version 1 (no target_files table, no convention columns) opens,
    keeps its rows, gains the sidecar table, the convention columns and version 3; a store from a
    newer neurobench is refused by name."""
    import sqlite3

    from neurobench import store as store_module
    from neurobench.errors import NeurobenchError

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(store_module._SCHEMA)  # the schema-1 tables
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO scores (run_id, result_id, model, trained, weights_sha256, benchmark, layer, row_kind, "
                "is_best, raw, ci_low, ci_high, ceiling, normalized, metric, timestamp) VALUES "
                "('r', 'x', 'm', 1, 'w', 'b', 'fc', 'headline', 1, 0.2, 0.1, 0.3, 0.4, 0.5, 'rsa-tau_a', 't')")
    con.commit()
    con.close()
    store = ResultStore(path)
    rows = store.rows()
    assert len(rows) == 1 and rows["normalization"][0] == "nili_lower" and rows["interval"][0] == "stimuli"
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
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
