"""Fault injection: results stores that cannot take a result are refused when opened, before any
scoring work, with a typed error saying what to do; another program's database is never touched."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import neurobench as nb
from neurobench.errors import StoreError
from neurobench.store import ResultStore

from .boundary_support import clean_registrations, cli, load, read_only, typed_error  # noqa: F401 (autouse)


def _score(capsys, store: Path):
    """`neurobench score` with a model whose forward pass raises: a store error must come first."""
    return cli(capsys, "score", "--model", "fault-explodes", "--benchmark", "fault.good-rsa", "--store", str(store),
               "--device", "cpu", "--quiet")


def _api(store: Path):
    with pytest.raises(StoreError) as info:
        nb.score_many("fault-explodes", ["fault.good-rsa"], store=store, device="cpu")
    return str(info.value)


def _digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def test_a_folder_as_store(capsys, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    rc, _out, err = _score(capsys, folder)
    typed_error(rc, err, "is a folder", "results.sqlite")
    load()
    assert "is a folder" in _api(folder)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("content", [os.urandom(4096), b"SQLite format 3\x00" + b"\x07" * 200, b"col1,col2\n1,2\n"],
                         ids=["random bytes", "damaged header", "a CSV file"])
def test_a_file_that_is_not_a_readable_database(capsys, tmp_path, content):
    store = tmp_path / "r.sqlite"
    store.write_bytes(content)
    before = _digest(store)
    rc, _out, err = _score(capsys, store)
    typed_error(rc, err, "not a readable SQLite database", "move it aside or give another --store path")
    rc, _out, err = cli(capsys, "leaderboard", "--store", str(store), plugin=False)
    typed_error(rc, err, "not a readable SQLite database")
    assert _digest(store) == before


def test_another_programs_database_is_refused_untouched(capsys, tmp_path):
    store = tmp_path / "app.sqlite"
    with sqlite3.connect(store) as con:
        con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        con.execute("INSERT INTO users (name) VALUES ('ada')")
    con.close()
    before = _digest(store)
    rc, _out, err = _score(capsys, store)
    typed_error(rc, err, "another program's SQLite database", "tables: users", "did not touch it")
    rc, _out, err = cli(capsys, "leaderboard", "--store", str(store), plugin=False)
    typed_error(rc, err, "another program's SQLite database")
    load()
    assert "another program's" in _api(store)
    assert _digest(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite"]  # no journal or WAL left either


def test_a_read_only_store_is_refused_before_scoring_and_still_readable(capsys, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    store = folder / "r.sqlite"
    ResultStore(store)
    with read_only(store, folder):
        rc, _out, err = _score(capsys, store)
        typed_error(rc, err, "read-only", "before scoring", "--store")
        assert "forward pass" not in err
        load()
        assert "read-only" in _api(store)
        board = ResultStore(store, writable=False).leaderboard()  # reading needs no write access
        assert board.empty
        rc, out, err = cli(capsys, "leaderboard", "--store", str(store), plugin=False)
        assert rc == 0 and "no results" in out, err


def test_a_store_in_a_folder_that_cannot_be_written(capsys, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    with read_only(folder):
        rc, _out, err = _score(capsys, folder / "new.sqlite")
        typed_error(rc, err, "cannot create results store", "not writable")
    assert not (folder / "new.sqlite").exists()


def test_a_store_that_fails_after_scoring_keeps_the_scores(tmp_path, monkeypatch, neurobench_home):
    """The store was checked, then failed at the end (a full disk): the error says where the scores are."""
    load()
    calls = {"n": 0}
    connect = ResultStore._connect

    def full_disk(self):
        calls["n"] += 1
        if calls["n"] > 1:  # the check on opening passes; the write of the result does not
            raise sqlite3.OperationalError("database or disk is full")
        return connect(self)

    monkeypatch.setattr(ResultStore, "_connect", full_disk)
    with pytest.raises(StoreError, match="disk is full.*was not stored; its scores were kept in ") as info:
        nb.score_many("fault-net", ["fault.good-rsa"], store=tmp_path / "s.sqlite", device="cpu")
    kept = Path(str(info.value).rsplit("kept in ", 1)[1])
    assert kept.is_file() and kept.is_relative_to(neurobench_home)
    frame = pd.read_csv(kept)
    assert set(frame["layer"].astype(str)) == {"1", "3"} and frame["headline_raw"].notna().all()


def test_a_store_of_another_schema_version(capsys, tmp_path):
    """Regression (held before): a store written by another neurobench version is refused, not mixed."""
    store = tmp_path / "r.sqlite"
    ResultStore(store)
    with sqlite3.connect(store) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    rc, _out, err = _score(capsys, store)
    typed_error(rc, err, "schema version 99", "upgrade neurobench")
    rc, _out, err = cli(capsys, "leaderboard", "--store", str(store), plugin=False)
    typed_error(rc, err, "schema version 99")
