"""Opening a results store by location (SQLite path or `postgresql://` URL) and merging stores.

Kept apart from `store` (SQLite) and `pgstore` (PostgreSQL, a subclass of the SQLite store) so
that neither imports the other's user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import StoreError
from .store import ResultStore


@dataclass
class MergeReport:
    """What `merge_stores` did per source store: results added and skipped (their fingerprint was
    in the target already), and failure rows added."""

    source: str
    added: int = 0
    skipped: int = 0
    failures_added: int = 0


def merge_stores(sources: list[str | Path], into: str | Path) -> list[MergeReport]:
    """Merge per-job SQLite stores into `into` (created if absent; an SQLite path or a
    `postgresql://` URL), exactly once by configuration fingerprint: a result whose fingerprint the
    target holds is skipped, the others are copied with their layer rows and per-target sidecar
    (its sha256 checked), one transaction per result. Sources at an older schema are upgraded in
    place first (as any neurobench command does when it opens them)."""
    target = open_store(str(into))
    reports = []
    for source in sources:
        path = Path(source).expanduser()
        if not path.is_file():
            raise StoreError(f"store merge: {path} is not a results store file")
        if isinstance(target, ResultStore) and path.resolve() == target.path.resolve():
            raise StoreError(f"store merge: {path} is the target itself; give another --into")
        src = ResultStore(path)
        report = MergeReport(str(path))
        heads = src.results()
        scores = src.rows()
        with src._reading() as con:
            files = {r[0]: r for r in con.execute("SELECT * FROM target_files")}
        for head in heads.to_dict("records"):
            if not isinstance(head["fingerprint"], str):
                continue  # an older duplicate kept as history: never merged
            rows = scores[scores["result_id"] == head["result_id"]]
            sidecar = files.get(head["result_id"])
            if target.copy_result(head, rows.to_dict("records"), sidecar, src.path.parent):
                report.added += 1
            else:
                report.skipped += 1
        for failure in src.failures().to_dict("records"):
            report.failures_added += target.copy_failure(failure)
        reports.append(report)
    return reports


def open_store(location: str | Path | None = None, writable: bool = True):
    """The results store at `location`: a `postgresql://` URL (PostgreSQL, `neurobench.pgstore`)
    or an SQLite file path (None: the default store)."""
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        from .pgstore import PostgresStore  # psycopg is imported only for a PostgreSQL store

        return PostgresStore(location)
    return ResultStore(location, writable=writable)
