"""A PostgreSQL results store (`--store postgresql://user@host/db`): one lab's shared leaderboard
written by many sweeps at once.

The tables and their meaning are the SQLite store's (`neurobench.store`, schema version
`SCHEMA_VERSION`), created on first use; every result is written in one transaction, and the
unique configuration fingerprint with `INSERT ... ON CONFLICT DO NOTHING` keeps two sweeps that
race on the same configuration to one result. The driver is psycopg 3 (`pip install
'neurobench[postgres]'`). Per-target sidecar files of a PostgreSQL store are written under
`$NEUROBENCH_HOME/pg-targets/<host>-<database>/` on the machine that stored the result (the
table records their path and sha256); `neurobench export` reads SQLite stores only.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from . import paths
from .errors import StoreError
from .store import _COLUMNS, _RESULTS_SCHEMA, SCHEMA_VERSION, ResultStore

_REAL = {"raw", "ci_low", "ci_high", "ceiling", "normalized", "duration_s"}
_INT = {"trained", "is_best", "seed"}


def _schema() -> list[str]:
    columns = ",\n".join(f"    {c} {'DOUBLE PRECISION' if c in _REAL else 'BIGINT' if c in _INT else 'TEXT'}"
                         + (" NOT NULL" if c in ("run_id", "result_id", "model", "benchmark", "layer") else "")
                         for c in _COLUMNS)
    results = _RESULTS_SCHEMA.replace("step INTEGER", "step BIGINT")
    results = re.sub(r"--[^\n]*", "", results)
    statements = ["CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                  f"CREATE TABLE IF NOT EXISTS scores (\n    id BIGSERIAL PRIMARY KEY,\n{columns}\n)",
                  "CREATE INDEX IF NOT EXISTS scores_model_bench ON scores (model, benchmark, weights_sha256)",
                  "CREATE INDEX IF NOT EXISTS scores_result ON scores (result_id)",
                  "CREATE TABLE IF NOT EXISTS target_files (result_id TEXT PRIMARY KEY, path TEXT NOT NULL, "
                  "sha256 TEXT NOT NULL, format TEXT NOT NULL, n_rows BIGINT NOT NULL, columns TEXT NOT NULL)"]
    statements += [s.strip() for s in results.split(";") if s.strip()]
    return statements


class _Connection:
    """psycopg's connection with the sqlite3 calls the store makes: `?` parameters, `execute`
    returning a cursor, `executemany`, `in_transaction`; psycopg errors become StoreError."""

    def __init__(self, url: str):
        import psycopg

        self._psycopg = psycopg
        try:
            self._con = psycopg.connect(url, autocommit=True, connect_timeout=30)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the PostgreSQL results store {_redact(url)} ({exc}); check the URL, "
                             "that the server runs and accepts this user") from None
        self.in_transaction = False

    def execute(self, sql: str, params: tuple = ()):
        head = sql.strip().upper()
        if head.startswith("BEGIN"):
            sql = "BEGIN"
        try:
            cur = self._con.execute(sql.replace("?", "%s"), params or None)
        except self._psycopg.Error as exc:
            raise StoreError(f"PostgreSQL results store: {exc}") from None
        if head.startswith("BEGIN"):
            self.in_transaction = True
        elif head.startswith(("COMMIT", "ROLLBACK")):
            self.in_transaction = False
        return cur

    def executemany(self, sql: str, rows) -> None:
        try:
            with self._con.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), list(rows))
        except self._psycopg.Error as exc:
            raise StoreError(f"PostgreSQL results store: {exc}") from None

    def close(self) -> None:
        self._con.close()


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


class PostgresStore(ResultStore):
    """The results store in a PostgreSQL database (module docstring); the same query API as the
    SQLite store (`leaderboard`, `rows`, `results`, `failures`, `insert`, ...)."""

    def __init__(self, url: str):
        try:
            import psycopg  # noqa: F401
        except ModuleNotFoundError:
            raise StoreError("a postgresql:// store needs psycopg 3: pip install 'neurobench[postgres]'") from None
        self.url = url
        self.path = Path(_redact(url))  # what messages name
        self.writable = True
        self._absent = False
        parts = urlsplit(url)
        self._targets = paths.home() / "pg-targets" / f"{parts.hostname or 'local'}-{parts.path.strip('/') or 'db'}"
        with self._transaction() as con:
            con.execute("SELECT pg_advisory_xact_lock(727527)")  # one creator at a time
            for statement in _schema():
                con.execute(statement)
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"PostgreSQL results store {self.path} has schema version {row[0]}, this neurobench "
                                 f"reads {SCHEMA_VERSION}; upgrade neurobench")
            con.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
                        (str(SCHEMA_VERSION),))

    @property
    def targets_dir(self) -> Path:
        return self._targets

    def _connect(self):
        return _Connection(self.url)

    @contextlib.contextmanager
    def _reading(self):
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    def _query(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        with self._reading() as con:
            cur = con.execute(sql, params)
            names = [d.name for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=names)

    def targets(self, model: str, benchmark: str, layer: str | None = None):
        raise StoreError("per-target exports read SQLite stores; merge the results into one (`neurobench store "
                         "merge`) or export on the machine that scored them")
