"""Embedded SQLite results store: one row per (run, model, benchmark, layer), with provenance.

Concurrent writers (two `neurobench score` processes) are safe: WAL journal, a generous busy
timeout and one IMMEDIATE transaction per result, so either all of a result's rows land or none.

Every row names the conventions of its numbers (`neurobench.conventions`): `normalization` (how
`normalized` was computed), `interval` (what `ci_low` / `ci_high` resample) and
`other_normalizations` (the same score under other conventions, JSON {name: value}); `details`
holds the row's other per-layer columns (JSON, e.g. the ridge's `alpha_at_min` / `alpha_at_max`)
and `notes` the result's notes (JSON list). The leaderboard never puts two conventions in one
column: one column per normalisation convention, and the row's `normalization` says which is
its headline.

Schema history (`SCHEMA_VERSION`; `_MIGRATIONS` upgrades an older store in place, in one
transaction, when it is opened):
  1  the first store.
  2  + normalization, interval, other_normalizations, details, notes. Schema-1 rows get the
     conventions their kind used when they were written, inferred from `metric` (`_to_schema_2`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
import uuid
from pathlib import Path

import pandas as pd

from . import paths
from .conventions import (
    BRAINSCORE_EXPLAINED_VARIANCE,
    EXPLAINABLE_VARIANCE_FRACTION,
    NILI_LOWER,
    NO_INTERVAL,
    NO_NORMALIZATION,
    NORMALIZATIONS,
    STIMULI,
    STIMULI_NORMAL,
    UNRECORDED,
    convention,
)
from .errors import NeurobenchError
from .result import LAYER_COLUMNS, ScoreResult

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

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
    row_kind TEXT NOT NULL,  -- 'layer': all stimuli, 'headline': selected layer, held-out score
    is_best INTEGER NOT NULL,
    raw REAL, ci_low REAL, ci_high REAL,
    ceiling REAL, normalized REAL,
    metric TEXT, selection TEXT, ceiling_note TEXT,
    neurobench_version TEXT, data_hashes TEXT, seed INTEGER, device TEXT,
    duration_s REAL, timestamp TEXT NOT NULL,
    provenance TEXT,
    normalization TEXT, interval TEXT, other_normalizations TEXT, details TEXT, notes TEXT
);
CREATE INDEX IF NOT EXISTS scores_model_bench ON scores (model, benchmark, weights_sha256);
"""

_COLUMNS = ("run_id", "result_id", "model", "trained", "weights_sha256", "benchmark", "layer", "row_kind", "is_best",
            "raw", "ci_low", "ci_high", "ceiling", "normalized", "metric", "selection", "ceiling_note",
            "neurobench_version", "data_hashes", "seed", "device", "duration_s", "timestamp", "provenance",
            "normalization", "interval", "other_normalizations", "details", "notes")

# one column per normalisation convention (a convention's name is its column's name)
NORMALIZATION_COLUMNS = [n for n in NORMALIZATIONS if n not in (NO_NORMALIZATION, UNRECORDED)]
LEADERBOARD_COLUMNS = (["model", "trained", "weights_sha256", "benchmark", "best_layer", "raw", "ci_low", "ci_high",
                        "interval", "ceiling", "normalization"] + NORMALIZATION_COLUMNS
                       + ["metric", "timestamp", "run_id"])
_STANDARD = set(LAYER_COLUMNS) | {"normalization", "interval"}


def default_store_path() -> Path:
    return paths.home() / "results.sqlite"


def _num(x):
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _json_value(x):
    """A per-layer cell as JSON: numbers (NaN as null), strings, booleans, lists."""
    if hasattr(x, "item") and not isinstance(x, (list, tuple, dict)):
        x = x.item()
    if isinstance(x, float):
        return None if math.isnan(x) else x
    if isinstance(x, (list, tuple)):
        return [_json_value(v) for v in x]
    return x if isinstance(x, (str, int, bool)) or x is None else str(x)


# ------------------------------------------------------------------------------ migrations

def _v1_conventions(metric: str | None, has_normalized: bool, has_ci: bool, layer_row: bool) -> tuple[str, str]:
    """(normalization, interval) that schema-1 neurobench used for a row of `metric`."""
    metric = metric or ""
    interval = STIMULI if has_ci else NO_INTERVAL  # schema-1 RSA, encoding and PLS bootstrapped stimuli only
    if metric == "ridge-encoding":
        return (EXPLAINABLE_VARIANCE_FRACTION if has_normalized else NO_NORMALIZATION), interval
    if metric.startswith(("rsa-", "temporal-rsa-")):
        return (NILI_LOWER if has_normalized else NO_NORMALIZATION), interval
    if metric == "pls":
        return (BRAINSCORE_EXPLAINED_VARIANCE if has_normalized else NO_NORMALIZATION), interval
    if metric.startswith("topo-") or metric == "participation-ratio":
        per_layer_ci = STIMULI_NORMAL if metric == "participation-ratio" and layer_row and has_ci else NO_INTERVAL
        return NO_NORMALIZATION, per_layer_ci
    return (UNRECORDED if has_normalized else NO_NORMALIZATION), (UNRECORDED if has_ci else NO_INTERVAL)


def _to_schema_2(con: sqlite3.Connection) -> None:
    """Schema 1 -> 2: add the convention columns and fill them from what schema-1 kinds did.

    PLS rows (`majajhong2015.*-pls`) stored sign(raw) (raw / ceiling)^2; they are relabelled
    `brainscore_explained_variance` with the value recomputed from the stored raw and ceiling as
    Brain-Score computes it, (raw / ceiling)^2 (the same number unless raw < 0, which a note records).
    """
    for column in ("normalization", "interval", "other_normalizations", "details", "notes"):
        con.execute(f"ALTER TABLE scores ADD COLUMN {column} TEXT")
    rows = con.execute("SELECT id, metric, row_kind, raw, ci_low, ci_high, ceiling, normalized FROM scores").fetchall()
    updates = []
    for rid, metric, row_kind, raw, lo, hi, ceiling, norm in rows:
        normalization, interval = _v1_conventions(metric, norm is not None, lo is not None or hi is not None,
                                                  row_kind == "layer")
        notes = ["stored by results-store schema 1; conventions inferred from the metric by the schema-2 migration"]
        if normalization == BRAINSCORE_EXPLAINED_VARIANCE and raw is not None and ceiling:
            if raw < 0:
                notes.append(f"schema 1 stored sign(raw) (raw / ceiling)^2 = {norm}; Brain-Score's value drops the sign")
            norm = (raw / ceiling) ** 2
        updates.append((normalization, interval, "{}", "{}", json.dumps(notes), norm, rid))
    con.executemany("UPDATE scores SET normalization=?, interval=?, other_normalizations=?, details=?, notes=?, "
                    "normalized=? WHERE id=?", updates)


_MIGRATIONS = {2: _to_schema_2}  # the version a migration reaches -> the function that gets there


class ResultStore:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as con:  # one opener at a time creates or migrates
            fresh = con.execute("SELECT name FROM sqlite_master WHERE name='scores'").fetchone() is None
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            found = SCHEMA_VERSION if row is None and fresh else int(row[0]) if row else 1
            if found > SCHEMA_VERSION:
                raise NeurobenchError(
                    f"results store {self.path} has schema version {found}, this neurobench reads {SCHEMA_VERSION}; "
                    "use another --store path or upgrade neurobench")
            for version in range(found + 1, SCHEMA_VERSION + 1):
                log.info("results store %s: migrating schema %d -> %d", self.path, version - 1, version)
                _MIGRATIONS[version](con)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=120000")
        return con

    @contextlib.contextmanager
    def _transaction(self):
        """One IMMEDIATE transaction: committed if the block completes, rolled back otherwise."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def add(self, result: ScoreResult, run_id: str | None = None) -> str:
        """Store every layer row of a result in one transaction; returns the run id."""
        run_id = run_id or uuid.uuid4().hex
        result_id = uuid.uuid4().hex
        prov = result.provenance
        common = {
            "run_id": run_id, "result_id": result_id, "model": result.model, "trained": int(result.trained),
            "weights_sha256": result.weights_id, "benchmark": result.benchmark, "metric": result.metric,
            "selection": result.selection, "ceiling_note": result.ceiling_note,
            "neurobench_version": prov.get("neurobench_version"),
            "data_hashes": json.dumps(prov.get("data_hashes", {}), sort_keys=True), "seed": prov.get("seed"),
            "device": prov.get("device"), "duration_s": prov.get("duration_s"), "timestamp": prov.get("timestamp", ""),
            "provenance": json.dumps(prov, sort_keys=True, default=str), "notes": json.dumps(list(result.notes)),
        }
        others = [c for c in result.layers.columns if c in NORMALIZATIONS]
        rows = []
        for rec in result.layer_conventions().to_dict("records"):
            rows.append({**common, "layer": rec["layer"], "row_kind": "layer", "is_best": int(rec["layer"] == result.best_layer),
                         **{k: _num(rec.get(k)) for k in ("raw", "ci_low", "ci_high", "ceiling", "normalized")},
                         "normalization": rec["normalization"], "interval": rec["interval"],
                         "other_normalizations": json.dumps({k: _num(rec[k]) for k in others}),
                         "details": json.dumps({k: _json_value(v) for k, v in rec.items()
                                                if k not in _STANDARD and k not in others})})
        # The headline row carries the held-out score of the selected layer.
        rows.append({**common, "layer": result.best_layer, "row_kind": "headline", "is_best": 1,
                     "raw": _num(result.raw), "ci_low": _num(result.ci_low), "ci_high": _num(result.ci_high),
                     "ceiling": _num(result.ceiling), "normalized": _num(result.normalized),
                     "normalization": result.normalization, "interval": result.interval,
                     "other_normalizations": json.dumps({k: _num(v) for k, v in result.other_normalizations.items()}),
                     "details": json.dumps({k: _num(v) for k, v in (("ceiling_lower", result.ceiling_lower),
                                                                     ("ceiling_upper", result.ceiling_upper))
                                            if v is not None})})
        with self._transaction() as con:
            con.executemany(f"INSERT INTO scores ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                            [tuple(row[c] for c in _COLUMNS) for row in rows])
        return run_id

    def rows(self) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query("SELECT * FROM scores ORDER BY id", con)

    def leaderboard(self) -> pd.DataFrame:
        """Latest headline per (model, weights, benchmark): best layer, raw, CI and its interval,
        ceiling, and the normalised score in the column of its convention (`normalization` names
        it; a value under another convention, e.g. Brain-Score's explained variance, sits in that
        convention's column). Ranked within (benchmark, normalisation) by the headline convention's
        value: rows under different conventions are grouped apart, never interleaved."""
        with self._connect() as con:
            frame = pd.read_sql_query(
                "SELECT s.* FROM scores s JOIN (SELECT model, weights_sha256, benchmark, MAX(id) AS id FROM scores"
                " WHERE row_kind = 'headline' GROUP BY model, weights_sha256, benchmark) latest ON s.id = latest.id",
                con)
        frame["best_layer"] = frame["layer"]
        frame["trained"] = frame["trained"].astype(bool)
        frame["model"] = [m if t else f"{m} [untrained]" for m, t in zip(frame["model"], frame["trained"])]
        columns = NORMALIZATION_COLUMNS + ([UNRECORDED] if (frame["normalization"] == UNRECORDED).any() else [])
        values = {c: [math.nan] * len(frame) for c in columns}
        for i, (name, value, others) in enumerate(zip(frame["normalization"], frame["normalized"],
                                                       frame["other_normalizations"])):
            for other, v in json.loads(others or "{}").items():
                if other in values:
                    values[other][i] = math.nan if v is None else v
            if name in values:
                values[name][i] = value
        for c in columns:
            frame[c] = values[c]
        frame["_rank_by"] = [values[n][i] if n in values else math.nan for i, n in enumerate(frame["normalization"])]
        # ranked within (benchmark, convention): rows under different conventions are never interleaved
        frame = frame.sort_values(["benchmark", "normalization", "_rank_by", "raw"],
                                  ascending=[True, True, False, False], na_position="last")
        out = LEADERBOARD_COLUMNS[:-3] + columns[len(NORMALIZATION_COLUMNS):] + LEADERBOARD_COLUMNS[-3:]
        return frame[out].reset_index(drop=True)

    def leaderboard_sections(self) -> list[tuple[str, str, pd.DataFrame]]:
        """The leaderboard split by headline normalisation convention, for printing: (name,
        definition, rows) per convention, in the registry's order, each with only its own
        normalisation columns (its convention's, and others that hold a value in the section)."""
        board = self.leaderboard()
        norm_columns = [c for c in board.columns if c in NORMALIZATIONS]
        sections = []
        for name in NORMALIZATIONS:
            part = board[board["normalization"] == name]
            if part.empty:
                continue
            keep = [c for c in norm_columns if c == name or part[c].notna().any()]
            drop = [c for c in norm_columns if c not in keep] + ["normalization"]
            sections.append((name, convention("normalization", name).definition,
                             part.drop(columns=drop).reset_index(drop=True)))
        return sections

    def export_csv(self, path: str | Path) -> Path:
        path = Path(path)
        self.leaderboard().to_csv(path, index=False)
        return path
