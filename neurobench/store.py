"""Embedded SQLite results store: one row per (run, model, benchmark, layer), with provenance.

Concurrent writers (two `neurobench score` processes) are safe: WAL journal, a generous busy
timeout and one IMMEDIATE transaction per result, so either all of a result's rows land or none.

Per-target results (`ScoreResult.targets`: every layer's held-out r, ceiling, normalised value,
alpha and usable flag per voxel, neuron or (sensor, time) bin) go to a sidecar Parquet file per
result, `<store stem>.targets/<result_id>.parquet` beside the store, referenced from the table
`target_files` by relative path and sha256 (schema version 2). The file is written and renamed
into place inside the result's write transaction and the rows are committed after it, so a
committed row always has its file; a file left by a crash before the commit (or a `.tmp-` file
from a crash while writing) has no row and is removed, under the write lock, the next time the
store is opened.

Every row names the conventions of its numbers (`neurobench.conventions`): `normalization` (how
`normalized` was computed), `interval` (what `ci_low` / `ci_high` resample) and
`other_normalizations` (the same score under other conventions, JSON {name: value}); `details`
holds the row's other per-layer columns (JSON, e.g. the ridge's `alpha_at_min` / `alpha_at_max`)
and `notes` the result's notes (JSON list). The leaderboard never puts two conventions in one
column: one column per normalisation convention, and the row's `normalization` says which is
its headline.

Schema history (`SCHEMA_VERSION`; `_MIGRATIONS` upgrades a store in place, one step n -> n + 1
per transaction, when it is opened for writing; a fresh store is created at version 1 and upgraded
the same way):
  1  the first store.
  2  + table `target_files` (per-target sidecar files).
  3  + normalization, interval, other_normalizations, details, notes. Older rows get the
     conventions their kind used when they were written, inferred from `metric` (`_add_conventions`).

A store is checked when it is opened, which the API does before any scoring work: a folder, a
file that is not an SQLite database (or a corrupt one), another program's SQLite database (it is
only read, never written: neurobench's own stores carry the SQLite application id 'NBRS' or
neurobench's tables) and a store neurobench cannot write (permissions, a read-only file system:
checked with a write that is rolled back) each raise `StoreError` saying what to do. A store
opened with `writable=False` (the leaderboard) is only read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

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
from .errors import ChecksumMismatchError, DataUnavailableError, StoreError
from .fingerprint import configuration, differences, fingerprint, short, summary
from .result import LAYER_COLUMNS, ScoreResult

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4


def _add_target_files(con: sqlite3.Connection) -> None:
    """Schema 1 -> 2: the table of per-target sidecar files."""
    con.execute("""
CREATE TABLE IF NOT EXISTS target_files (
    result_id TEXT PRIMARY KEY,   -- the scores rows' result_id
    path TEXT NOT NULL,           -- relative to the store's folder
    sha256 TEXT NOT NULL,
    format TEXT NOT NULL,         -- 'parquet'
    n_rows INTEGER NOT NULL,
    columns TEXT NOT NULL         -- JSON list of the file's columns
)""")


APPLICATION_ID = int.from_bytes(b"NBRS", "big")  # SQLite header field: "this file is a neurobench results store"
_TABLES = {"meta", "scores"}

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

_COLUMNS = ("run_id", "result_id", "model", "trained", "weights_sha256", "benchmark", "layer", "row_kind", "is_best",
            "raw", "ci_low", "ci_high", "ceiling", "normalized", "metric", "selection", "ceiling_note",
            "neurobench_version", "data_hashes", "seed", "device", "duration_s", "timestamp", "provenance",
            "normalization", "interval", "other_normalizations", "details", "notes")

# one column per normalisation convention (a convention's name is its column's name)
NORMALIZATION_COLUMNS = [n for n in NORMALIZATIONS if n not in (NO_NORMALIZATION, UNRECORDED)]
LEADERBOARD_COLUMNS = (["model", "trained", "weights_sha256", "step", "benchmark", "best_layer", "raw", "ci_low",
                        "ci_high", "interval", "ceiling", "ceiling_lower", "ceiling_upper", "normalization"]
                       + NORMALIZATION_COLUMNS + ["config", "configuration", "metric", "timestamp", "run_id"])
_JOINED = ("fingerprint", "config_summary", "is_default", "step", "weights_label")
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


def _add_conventions(con: sqlite3.Connection) -> None:
    """Schema 2 -> 3: add the convention columns and fill them from what schema-1 kinds did.

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
        notes = ["stored before results-store schema 3; conventions inferred from the metric by the schema-3 migration"]
        if normalization == BRAINSCORE_EXPLAINED_VARIANCE and raw is not None and ceiling:
            if raw < 0:
                notes.append(f"schema 1 stored sign(raw) (raw / ceiling)^2 = {norm}; Brain-Score's value drops the sign")
            norm = (raw / ceiling) ** 2
        updates.append((normalization, interval, "{}", "{}", json.dumps(notes), norm, rid))
    con.executemany("UPDATE scores SET normalization=?, interval=?, other_normalizations=?, details=?, notes=?, "
                    "normalized=? WHERE id=?", updates)


_RESULTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    result_id TEXT PRIMARY KEY,      -- the scores rows' result_id
    fingerprint TEXT UNIQUE,         -- sha256 of the configuration (NULL: an older duplicate, never ranked)
    model TEXT NOT NULL, weights_sha256 TEXT NOT NULL, benchmark TEXT NOT NULL,
    weights_label TEXT,              -- the weights as asked for: published, random, or a checkpoint's name
    step INTEGER,                    -- training step of a checkpoint (a trajectory), NULL otherwise
    is_default INTEGER NOT NULL,     -- 1: the benchmark's default configuration (the leaderboard's rows)
    config TEXT NOT NULL,            -- the configuration, JSON (neurobench.fingerprint)
    config_summary TEXT NOT NULL,    -- what differs from the default, e.g. 'layers=fc, seed=1'
    request TEXT,                    -- the sweep request it answers (neurobench.sweeps: weights as asked for)
    run_id TEXT NOT NULL, timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_request ON results (request);
CREATE INDEX IF NOT EXISTS results_model_bench ON results (model, benchmark, step);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY,            -- the request key (neurobench.sweeps), or the fingerprint of a result scored outside a sweep
    model TEXT NOT NULL, weights_label TEXT, step INTEGER, benchmark TEXT NOT NULL,
    error_type TEXT NOT NULL, message TEXT NOT NULL, run_id TEXT NOT NULL, timestamp TEXT NOT NULL
);
"""


def _legacy_configuration(prov: dict, model: str, weights: str, benchmark: str, layers: list[str] | None) -> dict:
    """The configuration of a result stored before schema 4, from its provenance."""
    readout = prov.get("readout") or {}
    spec = readout.get("spec", "none") if isinstance(readout, dict) else "none"
    return configuration(model=model, weights_sha256=weights, benchmark=benchmark, metric_version=1, layers=layers,
                         options=prov.get("options") or {}, seed=prov.get("seed") or 0,
                         readout=None if spec == "none" else spec, precision=prov.get("precision") or "float32")


def _add_fingerprints(con: sqlite3.Connection) -> None:
    """Schema 3 -> 4: the `results` table (one row per result: configuration fingerprint, unique;
    step; default or not) and the `failures` table.

    Results stored before schema 4 did not record the layers asked for: within one (model, weights,
    benchmark, seed, options), the result with the most layers is taken as the default-layer run
    and the others as runs on the layers they hold. A later duplicate of a configuration keeps the
    fingerprint; earlier ones keep their rows with a NULL fingerprint (history, never ranked).
    """
    for statement in _statements(_RESULTS_SCHEMA):  # not executescript: it would commit the migration's transaction
        con.execute(statement)
    heads = con.execute("SELECT result_id, run_id, model, weights_sha256, benchmark, provenance, timestamp, id "
                        "FROM scores WHERE row_kind = 'headline' ORDER BY id").fetchall()
    layer_sets = {}
    for rid, layer in con.execute("SELECT result_id, layer FROM scores WHERE row_kind = 'layer' ORDER BY id"):
        layer_sets.setdefault(rid, []).append(layer)
    entries = []
    for rid, run_id, model, weights, bench, prov, stamp, _ in heads:
        prov = json.loads(prov or "{}")
        entries.append((rid, run_id, model, weights, bench, prov, stamp, layer_sets.get(rid, [])))
    widest: dict[str, int] = {}
    for _rid, _, model, weights, bench, prov, _, layers in entries:
        group = fingerprint(_legacy_configuration(prov, model, weights, bench, None))
        widest[group] = max(widest.get(group, 0), len(set(layers)))
    rows, seen = [], {}
    for rid, run_id, model, weights, bench, prov, stamp, layers in entries:
        group = fingerprint(_legacy_configuration(prov, model, weights, bench, None))
        full = len(set(layers)) >= widest[group]
        config = _legacy_configuration(prov, model, weights, bench, None if full else layers)
        fp = fingerprint(config)
        diff = differences(config, None)
        if fp in seen:  # the later run keeps the fingerprint
            rows[seen[fp]][1] = None
        seen[fp] = len(rows)
        rows.append([rid, fp, model, weights, bench, None, None, int(not diff), json.dumps(config),
                     summary(diff) + " (inferred: stored before schema 4)", None, run_id, stamp or ""])
    con.executemany("INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)


def _statements(script: str) -> list[str]:
    return [stmt.strip() for stmt in script.split(";") if stmt.strip()]


# version n -> n + 1
_MIGRATIONS = {1: _add_target_files, 2: _add_conventions, 3: _add_fingerprints}


_RESULT_COLUMNS = ("result_id", "fingerprint", "model", "weights_sha256", "benchmark", "weights_label", "step",
                   "is_default", "config", "config_summary", "request", "run_id", "timestamp")

# insert-or-ignore on the unique fingerprint: a configuration stored already adds nothing
_INSERT_RESULT = (f"INSERT INTO results ({', '.join(_RESULT_COLUMNS)}) VALUES ({', '.join('?' * len(_RESULT_COLUMNS))})"
                  " ON CONFLICT DO NOTHING")
_INSERT_SCORES = f"INSERT INTO scores ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def result_configuration(result: ScoreResult) -> tuple[dict, dict]:
    """(configuration, differences from the default) of a result: as `Benchmark.score` recorded
    them, or, for a result built by hand, from its provenance (layers: the default set)."""
    prov = result.provenance
    if "configuration" in prov:
        return prov["configuration"], prov.get("differences", {})
    readout = prov.get("readout") or {}
    spec = readout.get("spec", "none") if isinstance(readout, dict) else "none"
    config = configuration(model=result.model, weights_sha256=result.weights_id, benchmark=result.benchmark,
                           metric_version=prov.get("metric_version", 1), layers=None,
                           options=prov.get("options") or {}, seed=prov.get("seed") or 0,
                           readout=None if spec == "none" else spec, precision=prov.get("precision") or "float32")
    return config, differences(config, None)


def _result_rows(result: ScoreResult, run_id: str, result_id: str, step, weights_label,
                 request=None) -> tuple[dict, list[dict]]:
    """The `results` row and the `scores` rows (every layer, then the headline) of a result."""
    prov = result.provenance
    config, diff = result_configuration(result)
    head = {"result_id": result_id, "fingerprint": fingerprint(config), "model": result.model,
            "weights_sha256": result.weights_id, "benchmark": result.benchmark, "weights_label": weights_label,
            "step": step, "is_default": int(not diff), "config": json.dumps(config, sort_keys=True),
            "config_summary": summary(diff), "request": request, "run_id": run_id, "timestamp": prov.get("timestamp", "")}
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
    return head, rows


_FIX = "give another --store path"


@dataclass
class StoredTargets:
    """Per-target values of one stored result, read back from its sidecar (checksum verified)."""

    frame: pd.DataFrame
    space: dict | None  # subject -> {"columns", "shape", "affine", "source"} (brain maps), or None
    result: dict  # the headline row: model, weights, benchmark, best layer, run and result ids, ...
    path: Path


class ResultStore:
    """The results store at `path` (default `$NEUROBENCH_HOME/results.sqlite`), checked on opening
    (module docstring). `writable=False` only reads: a missing store reads as empty."""

    def __init__(self, path: str | Path | None = None, writable: bool = True):
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self.writable = writable
        self._absent = False
        if self.path.is_dir() or (self.path.exists() and not self.path.is_file()):
            raise StoreError(f"results store {self.path} is a folder, not a file; {_FIX} naming a file, e.g. "
                             f"--store {self.path / 'results.sqlite'}")
        if self.path.exists():
            self._inspect()
        elif not writable:
            self._absent = True
            return
        if writable:
            self._initialise()

    # ------------------------------------------------------------------ opening

    def _inspect(self) -> None:
        """Read (never write) an existing file: an SQLite database of neurobench's, at our schema."""
        try:
            con = self._read_only()
        except sqlite3.OperationalError as exc:
            raise StoreError(f"results store {self.path} cannot be opened for reading ({exc}); check its permissions "
                             f"or {_FIX}") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._not_a_database(exc)) from None
        try:
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
                      if not r[0].startswith("sqlite_")}
            ours = _TABLES <= tables and app_id in (0, APPLICATION_ID)
            version = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() if ours else None
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._not_a_database(exc)) from None
        finally:
            con.close()
        if (tables or app_id) and (not ours or version is None):
            shown = ", ".join(sorted(tables)[:6]) or "none"
            raise StoreError(
                f"{self.path} is another program's SQLite database (application id {app_id:#x}, tables: {shown}), not a "
                f"neurobench results store; neurobench did not touch it: {_FIX}")
        if version is not None and int(version[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"results store {self.path} has schema version {version[0]}, this neurobench reads {SCHEMA_VERSION}; "
                "use another --store path or upgrade neurobench")

    def _not_a_database(self, exc: Exception) -> str:
        return (f"results store {self.path} is not a readable SQLite database ({exc}): a corrupt store or another "
                f"kind of file. neurobench left it as it is; move it aside or {_FIX}")

    def _initialise(self) -> None:
        """Create the folder, the schema and the application id; prove the store writable with a
        write that is rolled back, so that a result is never computed for a store that cannot take it.
        A store on a network filesystem is refused: SQLite's WAL journal needs shared memory that
        NFS, CIFS or Lustre do not give, so concurrent writers could corrupt it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of results store {self.path} ({exc.strerror}); {_FIX}") from None
        fs = network_filesystem(self.path.parent)
        if fs is not None:
            raise StoreError(
                f"results store {self.path} is on a network filesystem ({fs}), where SQLite's WAL journal is unsafe "
                "with several writers: use a PostgreSQL store (--store postgresql://user@host/db), or one SQLite store "
                "per job on local disk (e.g. --store $TMPDIR/job.sqlite) merged afterwards with `neurobench store merge`")
        try:
            con = self._connect()
            try:
                con.executescript(_SCHEMA)
                if con.execute("PRAGMA application_id").fetchone()[0] == 0:
                    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                with self._transaction(con):
                    row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                    version = 1 if row is None else int(row[0])  # a fresh store starts at 1 and is upgraded
                    for step in range(version, SCHEMA_VERSION):
                        log.info("results store %s: migrating schema %d -> %d", self.path, step, step + 1)
                        _MIGRATIONS[step](con)
                    # also proves the store writable before any scoring work
                    con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    self._sweep(con)
            finally:
                con.close()
        except sqlite3.OperationalError as exc:
            raise StoreError(self._unwritable(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"results store {self.path} is corrupt ({exc}); move it aside or {_FIX}") from None

    def _unwritable(self, exc: Exception) -> str:
        text = str(exc)
        if not self.path.exists():
            return (f"cannot create results store {self.path} ({text}): its folder {self.path.parent} is not writable; "
                    f"make it writable or {_FIX}")
        if "readonly" in text or "read-only" in text or not os.access(self.path.parent, os.W_OK) or (
                self.path.exists() and not os.access(self.path, os.W_OK)):
            return (f"results store {self.path} is read-only ({text}): neurobench checks this before scoring so that "
                    f"no result is lost; make it and its folder writable (chmod u+w) or {_FIX}")
        return f"results store {self.path} cannot be written ({text}); {_FIX}"

    @property
    def targets_dir(self) -> Path:
        return self.path.parent / f"{self.path.stem}.targets"

    def _sweep(self, con: sqlite3.Connection) -> None:
        """Remove sidecar files no committed row references (a crash between the file and the
        commit) and temporary files; runs under the write lock, so no writer is mid-result."""
        folder = self.targets_dir
        if not folder.is_dir():
            return
        known = {r[0] for r in con.execute("SELECT path FROM target_files")}
        for f in folder.iterdir():
            rel = f"{folder.name}/{f.name}"
            if f.is_file() and rel not in known:
                log.warning("removing %s: no stored result refers to it (left by an interrupted write)", f)
                f.unlink()

    def _read_only(self) -> sqlite3.Connection:
        """A connection that cannot write. A WAL store in a folder nobody may write to cannot get
        its shared-memory file, so it is then read as an immutable file (nothing can be writing it)."""
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        con = sqlite3.connect(uri, uri=True, timeout=120, isolation_level=None)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return con
        except sqlite3.OperationalError as exc:
            con.close()
            if "unable to open" not in str(exc):
                raise
        return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=120, isolation_level=None)

    def _connect(self) -> sqlite3.Connection:
        if not self.writable:
            return self._read_only()
        con = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=120000")
        return con

    @contextlib.contextmanager
    def _reading(self):
        """A connection for a query; SQLite errors become StoreError."""
        try:
            con = self._connect()
            try:
                yield con
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read results store {self.path} ({exc}); if it is corrupt, move it aside or "
                             f"{_FIX}") from None

    def add(self, result: ScoreResult, run_id: str | None = None, *, step: int | None = None,
            weights_label: str | None = None) -> str:
        """Store every layer row of a result in one transaction, once per configuration
        fingerprint (a result whose fingerprint is stored already adds nothing); returns the run id."""
        run_id = run_id or uuid.uuid4().hex
        self.insert(result, run_id, step=step, weights_label=weights_label)
        return run_id

    def insert(self, result: ScoreResult, run_id: str, *, step: int | None = None, weights_label: str | None = None,
               request: str | None = None) -> bool:
        """Store a result unless its configuration fingerprint is stored already (insert-or-ignore
        on the unique fingerprint, in the result's one transaction); True when it was added. A stored
        result removes the failure rows of its fingerprint and of its sweep `request` key."""
        result_id = uuid.uuid4().hex
        head, rows = _result_rows(result, run_id, result_id, step, weights_label, request)
        if not self.writable:
            raise StoreError(f"results store {self.path} was opened read-only; open it with writable=True to add results")
        sidecar = self.targets_dir / f"{result_id}.parquet"
        try:
            try:
                with self._transaction() as con:
                    added = con.execute(_INSERT_RESULT, tuple(head[c] for c in _RESULT_COLUMNS)).rowcount == 1
                    if added:
                        con.executemany(_INSERT_SCORES, [tuple(row[c] for c in _COLUMNS) for row in rows])
                        if result.targets is not None:
                            con.execute("INSERT INTO target_files VALUES (?,?,?,?,?,?)",
                                        self._write_targets(result, result_id))
                        con.executemany("DELETE FROM failures WHERE key = ?", [(k,) for k in (head["fingerprint"], request) if k])
            except BaseException:
                sidecar.unlink(missing_ok=True)  # a file whose rows were not committed
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"{self._unwritable(exc) if isinstance(exc, sqlite3.OperationalError) else exc}; the result "
                             f"of {result.model_display} on {result.benchmark} was not stored") from None
        if not added:
            log.info("%s on %s: configuration %s is stored already; not added again", result.model_display,
                     result.benchmark, head["fingerprint"][:12])
        return added

    def add_failure(self, key: str, *, model: str, benchmark: str, error_type: str, message: str, run_id: str,
                    weights_label: str | None = None, step: int | None = None) -> None:
        """Record that a (model, weights, benchmark) configuration raised: one row per `key` (the
        configuration fingerprint, or a request key when the model did not load); a later failure
        replaces it, a later success removes it."""
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._write("INSERT INTO failures VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (key) DO UPDATE SET "
                    "error_type = excluded.error_type, message = excluded.message, run_id = excluded.run_id, "
                    "timestamp = excluded.timestamp",
                    (key, model, weights_label, step, benchmark, error_type, message, run_id, stamp))

    @contextlib.contextmanager
    def _transaction(self, con=None):
        """A connection (`con`, or a new one, closed at the end) in a write transaction (SQLite:
        BEGIN IMMEDIATE, the write lock), committed when the block ends, rolled back if it raises."""
        own = con is None
        con = self._connect() if own else con
        try:
            con.execute("BEGIN IMMEDIATE")
            yield con
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            if own:
                con.close()

    def _write(self, sql: str, params: tuple) -> None:
        if not self.writable:
            raise StoreError(f"results store {self.path} was opened read-only; open it with writable=True")
        try:
            with self._transaction() as con:
                con.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(self._unwritable(exc) if isinstance(exc, sqlite3.OperationalError) else str(exc)) from None

    def copy_result(self, head: dict, rows: list[dict], sidecar: tuple | None, source_folder: Path) -> bool:
        """Copy one stored result (its `results` row, scores rows and sidecar) from another store,
        unless its fingerprint is here already; True when it was added (`merge_stores`)."""

        from .data.download import file_digest

        src_file = None
        if sidecar is not None:
            src_file = source_folder / sidecar[1]
            if not src_file.is_file() or file_digest(src_file) != sidecar[2]:
                raise ChecksumMismatchError(f"{src_file}: the per-target file is missing or changed since it was stored; "
                                            "not merged")
        dest = self.targets_dir / f"{head['result_id']}.parquet"
        try:
            with self._transaction() as con:
                added = self._copy_rows(con, head, rows, sidecar, src_file, dest)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return added

    def _copy_rows(self, con, head: dict, rows: list[dict], sidecar, src_file, dest: Path) -> bool:
        import shutil

        added = con.execute(_INSERT_RESULT, tuple(_sql_value(head[c]) for c in _RESULT_COLUMNS)).rowcount == 1
        if added:
            con.executemany(_INSERT_SCORES, [tuple(_sql_value(row[c]) for c in _COLUMNS) for row in rows])
            if src_file is not None:
                self.targets_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src_file, dest)
                con.execute("INSERT INTO target_files VALUES (?,?,?,?,?,?)",
                            (head["result_id"], f"{self.targets_dir.name}/{dest.name}", *sidecar[2:]))
        return added

    def copy_failure(self, failure: dict) -> int:
        """Copy a failure row unless its key is here (1 when added)."""
        con = self._connect()
        try:
            cur = con.execute("INSERT INTO failures VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                              tuple(_sql_value(failure[c]) for c in ("key", "model", "weights_label", "step",
                                                                     "benchmark", "error_type", "message", "run_id",
                                                                     "timestamp")))
            return cur.rowcount
        finally:
            con.close()

    def _write_targets(self, result: ScoreResult, result_id: str) -> tuple:
        """The result's per-target table as Parquet (temporary file, fsync, rename); returns its
        `target_files` row. Called under the write lock."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from .data.download import file_digest

        folder = self.targets_dir
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{result_id}.parquet"
        tmp = folder / f".tmp-{result_id}.parquet"
        table = pa.Table.from_pandas(result.targets, preserve_index=False)
        meta = {b"neurobench.target_space": json.dumps(result.target_space).encode(),
                b"neurobench.result": json.dumps({"model": result.model, "weights_sha256": result.weights_id,
                                                   "benchmark": result.benchmark, "best_layer": result.best_layer,
                                                   "result_id": result_id}).encode()}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        try:
            pq.write_table(table, tmp, compression="zstd")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            digest = file_digest(tmp)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return (result_id, f"{folder.name}/{final.name}", digest, "parquet", len(result.targets),
                json.dumps(list(result.targets.columns)))

    def targets(self, model: str, benchmark: str, layer: str | None = None) -> StoredTargets:
        """The per-target values of the latest stored result of `model` on `benchmark` (every layer,
        or one), read from its sidecar after checking its sha256."""
        import pyarrow.parquet as pq

        from .data.download import file_digest

        if self._absent:
            raise DataUnavailableError(f"no results store at {self.path} yet: run `neurobench score --model {model} "
                                       f"--benchmark {benchmark}` first")
        with self._reading() as con:
            con.row_factory = sqlite3.Row
            head = con.execute(
                "SELECT s.*, t.path AS t_path, t.sha256 AS t_sha256 FROM scores s LEFT JOIN target_files t"
                " ON s.result_id = t.result_id WHERE s.model = ? AND s.benchmark = ? AND s.row_kind = 'headline'"
                " ORDER BY s.id DESC LIMIT 1", (model, benchmark)).fetchone()
            if head is None:
                stored = [r[0] for r in con.execute(
                    "SELECT DISTINCT benchmark FROM scores WHERE model = ? ORDER BY benchmark", (model,))]
        if head is None:
            raise DataUnavailableError(
                f"no stored result of model {model!r} on {benchmark!r} in {self.path} (benchmarks stored for "
                f"{model!r}: {stored or 'none'}); run `neurobench score --model {model} --benchmark {benchmark}` first")
        if head["t_path"] is None:
            raise DataUnavailableError(
                f"the stored result of {model!r} on {benchmark!r} ({head['timestamp']}) has no per-target values: its "
                "kind scores RDMs or layers, not individual targets, or it was stored before per-target sidecars")
        path = self.path.parent / head["t_path"]
        if not path.is_file():
            raise DataUnavailableError(f"{path}: the per-target file of {model!r} on {benchmark!r} is missing")
        digest = file_digest(path)
        if digest != head["t_sha256"]:
            raise ChecksumMismatchError(f"{path}: sha256 {digest}, the store recorded {head['t_sha256']}; the "
                                        "per-target file was changed after it was stored")
        table = pq.read_table(path)
        frame = table.to_pandas()
        if layer is not None:
            if layer not in set(frame["layer"]):
                raise DataUnavailableError(f"{benchmark}: no layer {layer!r} in the stored targets of {model!r}; "
                                           f"layers: {list(dict.fromkeys(frame['layer']))}")
            frame = frame[frame["layer"] == layer].reset_index(drop=True)
        space = json.loads((table.schema.metadata or {}).get(b"neurobench.target_space", b"null"))
        keep = ("model", "trained", "weights_sha256", "benchmark", "layer", "raw", "normalized", "metric",
                "timestamp", "run_id", "result_id")
        result = {k: head[k] for k in keep}
        result["best_layer"] = result.pop("layer")
        return StoredTargets(frame, space, result, path)

    def _query(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        with self._reading() as con:
            return pd.read_sql_query(sql, con, params=params)

    def rows(self, *, model: str | None = None, benchmark: str | None = None, fingerprint: str | None = None,
             step: int | None = None, default_only: bool = False) -> pd.DataFrame:
        """Every stored scores row (layers and headlines), with its result's configuration
        (`fingerprint`, `config_summary`, `is_default`, `step`, `weights_label`), filtered by model,
        benchmark, fingerprint (or a unique prefix), step and default configuration."""
        if self._absent:
            return pd.DataFrame(columns=[*_columns(), *_JOINED])
        where, params = _filters(model, benchmark, fingerprint, step, default_only, "s.")
        return self._query(f"SELECT s.*, {', '.join('r.' + c for c in _JOINED)} FROM scores s "
                           f"LEFT JOIN results r ON s.result_id = r.result_id{where} ORDER BY s.id", params)

    def results(self, *, model: str | None = None, benchmark: str | None = None, fingerprint: str | None = None,
                step: int | None = None, default_only: bool = False) -> pd.DataFrame:
        """One row per stored result: its fingerprint, configuration (JSON) and summary, step,
        weights label, default flag, run and time (filters as `rows`)."""
        if self._absent:
            return pd.DataFrame(columns=list(_RESULT_COLUMNS))
        where, params = _filters(model, benchmark, fingerprint, step, default_only, "r.")
        return self._query(f"SELECT r.* FROM results r{where} ORDER BY r.timestamp, r.result_id", params)

    def fingerprints(self, model: str | None = None) -> set[str]:
        """The configuration fingerprints stored (of one model's results, or all)."""
        frame = self.results(model=model)
        return {fp for fp in frame["fingerprint"] if isinstance(fp, str)}

    def requests(self) -> set[str]:
        """The sweep request keys answered by a stored result (`neurobench.sweeps`)."""
        frame = self.results()
        return {r for r in frame["request"] if isinstance(r, str)}

    def failures(self) -> pd.DataFrame:
        """The failure rows: configurations whose last attempt raised (key, model, weights label,
        step, benchmark, error type and message, run, time)."""
        if self._absent:
            return pd.DataFrame(columns=["key", "model", "weights_label", "step", "benchmark", "error_type", "message",
                                         "run_id", "timestamp"])
        return self._query("SELECT * FROM failures ORDER BY timestamp, key")

    def leaderboard(self, default_only: bool = True, config: str | None = None, *, model: str | None = None,
                    benchmark: str | None = None) -> pd.DataFrame:
        """Latest headline per (model, weights, step, benchmark) in the benchmark's **default
        configuration** (`default_only`; a run on a subset of layers, another seed or other options
        is stored but never replaces it), or one row per configuration (`default_only=False`), or
        the results of one configuration (`config`: a fingerprint or a unique prefix). Columns:
        the bare model id and `trained`, best layer, raw, CI and its interval, ceiling, the normalised score in the column of its
        convention (`normalization` names it; a value under another convention, e.g. Brain-Score's
        explained variance, sits in that convention's column), `step`, `config` (short
        fingerprint) and `configuration` (what differs from the default). Ranked within (benchmark,
        normalisation) by the headline convention's value: rows under different conventions are
        grouped apart, never interleaved."""
        if self._absent:
            return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
        where, params = _filters(model, benchmark, config, None, default_only and config is None, "r.")
        where = (where + " AND" if where else " WHERE") + " s.row_kind = 'headline' AND r.fingerprint IS NOT NULL"
        group = ("r.fingerprint" if (config is not None or not default_only)
                 else "s.model, s.weights_sha256, s.benchmark, COALESCE(r.step, -1)")
        frame = self._query(
            f"SELECT s.*, {', '.join('r.' + c for c in _JOINED)} FROM scores s JOIN results r ON s.result_id = r.result_id"
            f" JOIN (SELECT MAX(s.id) AS id FROM scores s JOIN results r ON s.result_id = r.result_id{where}"
            f" GROUP BY {group}) latest ON s.id = latest.id", params)
        frame["best_layer"] = frame["layer"]
        frame["trained"] = frame["trained"].astype(bool)  # its own column: `model` is the bare model id
        frame["config"] = [short(fp) for fp in frame["fingerprint"]]
        frame["configuration"] = frame["config_summary"]
        frame["step"] = frame["step"].astype("Int64")
        bounds = [json.loads(d or "{}") for d in frame["details"]]
        frame["ceiling_lower"] = [b.get("ceiling_lower", c) for b, c in zip(bounds, frame["ceiling"])]
        frame["ceiling_upper"] = [b.get("ceiling_upper", math.nan) for b in bounds]
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
        frame = frame.sort_values(["benchmark", "normalization", "_rank_by", "raw", "step"],
                                  ascending=[True, True, False, False, True], na_position="last")
        out = LEADERBOARD_COLUMNS[:-5] + columns[len(NORMALIZATION_COLUMNS):] + LEADERBOARD_COLUMNS[-5:]
        return frame[out].reset_index(drop=True)

    def leaderboard_sections(self, default_only: bool = True,
                             config: str | None = None) -> list[tuple[str, str, pd.DataFrame]]:
        """The leaderboard split by headline normalisation convention, for printing: (name,
        definition, rows) per convention, in the registry's order, each with only its own
        normalisation columns (its convention's, and others that hold a value in the section)."""
        board = self.leaderboard(default_only, config)
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
        """Write the leaderboard as CSV to `path` (checked first: `check_export_path`)."""
        path = check_export_path(path)
        board = self.leaderboard()
        try:
            board.to_csv(path, index=False)
        except OSError as exc:
            raise StoreError(f"cannot write {path} ({exc.strerror or exc}); give another --export path") from None
        return path


NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "glusterfs",
                       "fuse.sshfs", "fuse.glusterfs", "fuse.ceph", "9p", "afs")


def network_filesystem(path: Path) -> str | None:
    """The type of the network filesystem `path` is on (the longest mount point in /proc/mounts
    that contains it), or None (a local one, or no /proc/mounts)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = str(Path(path).resolve())
    best, kind = "", None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best, kind = point, fields[2]
    return kind if kind in NETWORK_FILESYSTEMS else None


def _sql_value(value):
    """A pandas cell as an SQL parameter (NaN/NA as NULL, numpy scalars as Python values)."""
    if value is None or (not isinstance(value, (str, bytes)) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _filters(model, benchmark, fp, step, default_only, prefix: str) -> tuple[str, tuple]:
    """A WHERE clause (and its parameters) over scores `s` / results `r`."""
    clauses, params = [], []
    for column, value in (("model", model), ("benchmark", benchmark)):
        if value is not None:
            clauses.append(f"{prefix}{column} = ?")
            params.append(value)
    if fp is not None:
        clauses.append("r.fingerprint LIKE ?")
        params.append(fp.lower().strip() + "%")
    if step is not None:
        clauses.append("r.step = ?")
        params.append(int(step))
    if default_only:
        clauses.append("r.is_default = 1")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _columns() -> list[str]:
    """The columns of the scores table at the current schema, in order."""
    return ["id", *_COLUMNS]


def check_export_path(path: str | Path) -> Path:
    """A path a CSV can be written to: not a folder, in an existing folder neurobench can write;
    StoreError saying what to do otherwise (checked before anything is computed or read)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise StoreError(f"--export {path} is a folder; give a file name, e.g. --export {path / 'leaderboard.csv'}")
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(f"--export {path}: the folder {folder} does not exist; create it or give another path")
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(folder, os.W_OK):
        raise StoreError(f"--export {path} is not writable (permissions); give a path in a folder you can write")
    return path
