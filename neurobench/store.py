"""Embedded SQLite results store: one row per (run, model, benchmark, layer), with provenance.

Concurrent writers (two `neurobench score` processes) are safe: WAL journal, a generous busy
timeout and one IMMEDIATE transaction per result, so either all of a result's rows land or none.
"""

from __future__ import annotations

import json
import math
import sqlite3
import uuid
from pathlib import Path

import pandas as pd

from . import paths
from .errors import NeurobenchError
from .result import ScoreResult

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    result_id TEXT NOT NULL,
    model TEXT NOT NULL,
    trained INTEGER NOT NULL,
    weights_sha256 TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    layer TEXT NOT NULL,
    row_kind TEXT NOT NULL,  -- 'layer': all stimuli; 'headline': selected layer, held-out score
    is_best INTEGER NOT NULL,
    raw REAL, ci_low REAL, ci_high REAL,
    ceiling REAL, normalized REAL,
    metric TEXT, selection TEXT, ceiling_note TEXT,
    neurobench_version TEXT, data_hashes TEXT, seed INTEGER, device TEXT,
    duration_s REAL, timestamp TEXT NOT NULL,
    provenance TEXT
);
CREATE INDEX IF NOT EXISTS scores_model_bench ON scores (model, benchmark, weights_sha256);
"""

LEADERBOARD_COLUMNS = ["model", "trained", "weights_sha256", "benchmark", "best_layer", "raw", "ci_low",
                       "ci_high", "ceiling", "normalized", "metric", "timestamp", "run_id"]


def default_store_path() -> Path:
    return paths.home() / "results.sqlite"


def _num(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


class ResultStore:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)
            row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise NeurobenchError(
                    f"results store {self.path} has schema version {row[0]}, this neurobench reads {SCHEMA_VERSION}; "
                    "use another --store path or upgrade neurobench"
                )

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=120000")
        return con

    def add(self, result: ScoreResult, run_id: str | None = None) -> str:
        """Store every layer row of a result in one transaction; returns the run id."""
        run_id = run_id or uuid.uuid4().hex
        result_id = uuid.uuid4().hex
        prov = result.provenance
        rows = []
        for rec in result.layers.to_dict("records"):
            rows.append((
                run_id, result_id, result.model, int(result.trained), result.weights_id, result.benchmark,
                rec["layer"], "layer", int(rec["layer"] == result.best_layer), _num(rec.get("raw")), _num(rec.get("ci_low")),
                _num(rec.get("ci_high")), _num(rec.get("ceiling")), _num(rec.get("normalized")), result.metric,
                result.selection, result.ceiling_note, prov.get("neurobench_version"),
                json.dumps(prov.get("data_hashes", {}), sort_keys=True), prov.get("seed"), prov.get("device"),
                prov.get("duration_s"), prov.get("timestamp", ""), json.dumps(prov, sort_keys=True, default=str),
            ))
        # The headline row carries the held-out score of the selected layer.
        rows.append((
            run_id, result_id, result.model, int(result.trained), result.weights_id, result.benchmark,
            result.best_layer, "headline", 1, _num(result.raw), _num(result.ci_low), _num(result.ci_high),
            _num(result.ceiling), _num(result.normalized), result.metric, result.selection, result.ceiling_note,
            prov.get("neurobench_version"), json.dumps(prov.get("data_hashes", {}), sort_keys=True),
            prov.get("seed"), prov.get("device"), prov.get("duration_s"), prov.get("timestamp", ""),
            json.dumps(prov, sort_keys=True, default=str),
        ))
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            con.executemany(
                "INSERT INTO scores (run_id, result_id, model, trained, weights_sha256, benchmark, layer, row_kind, is_best, raw,"
                " ci_low, ci_high, ceiling, normalized, metric, selection, ceiling_note, neurobench_version,"
                " data_hashes, seed, device, duration_s, timestamp, provenance)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()
        return run_id

    def rows(self) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query("SELECT * FROM scores ORDER BY id", con)

    def leaderboard(self) -> pd.DataFrame:
        """Latest headline per (model, weights, benchmark): best layer, raw, CI, ceiling, normalised."""
        with self._connect() as con:
            frame = pd.read_sql_query(
                "SELECT s.* FROM scores s JOIN (SELECT model, weights_sha256, benchmark, MAX(id) AS id FROM scores"
                 " WHERE row_kind = 'headline' GROUP BY model, weights_sha256, benchmark) latest ON s.id = latest.id"
                " ORDER BY s.benchmark, s.normalized DESC, s.raw DESC", con)
        frame["best_layer"] = frame["layer"]
        frame["trained"] = frame["trained"].astype(bool)
        frame["model"] = [m if t else f"{m} [untrained]" for m, t in zip(frame["model"], frame["trained"])]
        return frame[LEADERBOARD_COLUMNS].reset_index(drop=True)

    def export_csv(self, path: str | Path) -> Path:
        path = Path(path)
        self.leaderboard().to_csv(path, index=False)
        return path
