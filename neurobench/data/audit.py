"""`neurobench verify`: hash every local copy of a dataset's files again, whatever the memo says.

The memo of `files.verify` re-hashes a file when its device, inode, size, mtime or ctime change;
a change that keeps all five (a disk fault, a raw write to the device) is only caught here. Every
local copy (the cache and each mirror) of every file asked for is hashed and reported as ok or
corrupt; a file asked for by name (a dataset or benchmark given) with no local copy is missing;
archives unpacked into the cache are checked file by file against the sizes and sha256s recorded
when they were unpacked. A corrupt copy loses its memo, so its next use hashes it (and refuses it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ChecksumMismatchError, NeurobenchError
from ..progress import progress_bar
from . import files, safefs

log = logging.getLogger(__name__)

PROBLEMS = ("corrupt", "missing", "error")


@dataclass(frozen=True)
class FileCheck:
    """One local copy checked (or one file found nowhere): status ok, corrupt, missing or error."""

    dataset: str
    file: str
    status: str
    path: str = ""
    detail: str = ""


@dataclass
class VerifyReport:
    checks: list[FileCheck] = field(default_factory=list)
    not_local: int = 0  # files of the datasets looked at that have no local copy (not asked for by name)

    @property
    def problems(self) -> list[FileCheck]:
        return [c for c in self.checks if c.status in PROBLEMS]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_local(targets: Mapping[str, Sequence[str] | None] | None = None) -> VerifyReport:
    """Hash again every local copy of the files in `targets` (dataset -> file names, None for all
    of a dataset's files; a file named here with no local copy is reported missing). Without
    targets: every local copy of every dataset's files (absent files are only counted)."""
    named = targets is not None
    wanted = dict(targets) if named else {name: None for name in files.list_manifests()}
    report = VerifyReport()
    jobs: list[tuple[str, files.FileSpec, list[Path]]] = []
    for dataset, names in wanted.items():
        try:
            specs = files.select_files(dataset, names=names)
        except NeurobenchError as exc:
            report.checks.append(FileCheck(dataset, "(manifest)", "error", detail=str(exc)))
            continue
        for spec in specs:
            copies = files.local_candidates(dataset, spec.name)
            if copies:
                jobs.append((dataset, spec, copies))
            elif named:
                report.checks.append(FileCheck(dataset, spec.name, "missing", detail=f"no copy in the cache "
                                               f"({files.cache_path(dataset, spec.name)}) or any mirror"))
            else:
                report.not_local += 1
    with progress_bar(sum(len(copies) for _, _, copies in jobs), "verifying") as bar:
        for dataset, spec, copies in jobs:
            for path in copies:
                report.checks.append(_check_copy(dataset, spec, path))
                bar.advance()
            unpacked = files.cache_path(dataset, spec.name + ".contents")
            if unpacked.is_dir():
                report.checks.append(_check_unpacked(dataset, spec, unpacked))
    return report


def _check_copy(dataset: str, spec: files.FileSpec, path: Path) -> FileCheck:
    first_use = spec.tofu and files.recorded_digest(dataset, spec.name) is None
    try:
        checksum = files.verify(path, spec, dataset, force=True)
    except ChecksumMismatchError as exc:
        return FileCheck(dataset, spec.name, "corrupt", str(path), str(exc))
    except OSError as exc:
        return FileCheck(dataset, spec.name, "error", str(path), f"cannot read it: {exc}")
    detail = f"{checksum} (trust on first use: recorded now)" if first_use else checksum
    return FileCheck(dataset, spec.name, "ok", str(path), detail)


def _check_unpacked(dataset: str, spec: files.FileSpec, folder: Path) -> FileCheck:
    """An unpacked archive's files against the sizes and sha256s recorded when it was unpacked."""
    name = spec.name + " (unpacked)"
    stamp = safefs.read_json(folder / files.UNPACKED_STAMP)
    if not isinstance(stamp, dict) or not isinstance(stamp.get("files"), dict):
        return FileCheck(dataset, name, "corrupt", str(folder), "no record of a complete unpacking; delete the "
                         "folder, the next use unpacks the archive again")
    bad = []
    for rel, (size, sha256) in stamp["files"].items():
        path = folder / rel
        try:
            if path.stat().st_size != size or files.digest_of(path) != sha256:
                bad.append(f"{rel} changed")
        except OSError:
            bad.append(f"{rel} is missing")
    if bad:
        (folder / files.UNPACKED_STAMP).unlink(missing_ok=True)  # the next use unpacks it again
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        return FileCheck(dataset, name, "corrupt", str(folder), f"{shown}; its record was removed, so the next use "
                         "unpacks the archive again")
    return FileCheck(dataset, name, "ok", str(folder), f"{len(stamp['files'])} files as unpacked")
