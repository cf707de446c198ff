"""Extracting zip and tar archives within limits: no member outside the destination, no bomb.

Limits (environment variables, read at each extraction):

- `NEUROBENCH_UNPACK_MAX_BYTES` (default 100 GiB): the most bytes one archive may unpack to;
- `NEUROBENCH_UNPACK_MAX_RATIO` (default 100): the most unpacked bytes per byte of archive (the
  compression ratio of the whole archive; real data releases stay far below it, a zip bomb that
  turns 1 MB into 1 GiB is at 1000);
- and the free space of the destination's disk.

A zip is checked before anything is written (its central directory lists every member's size) and
again while each member is written (the bytes actually produced are counted); a tar is checked
member by member from its headers as the stream reaches them, before each member is written.
Members are named by the rule of `neurobench.paths.name_problem` (relative, no '..'); a tar is
also extracted with Python's "data" filter (no links out, no devices, no absolute paths).
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArchiveError, UnsafePathError
from ..paths import inside
from . import limits

DEFAULT_MAX_BYTES = limits.UNPACK_MAX_BYTES
DEFAULT_MAX_RATIO = limits.UNPACK_MAX_RATIO
_COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class UnpackLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_ratio: float = DEFAULT_MAX_RATIO

    @classmethod
    def from_env(cls) -> UnpackLimits:
        return cls(int(limits.positive("NEUROBENCH_UNPACK_MAX_BYTES", DEFAULT_MAX_BYTES, ArchiveError, "number of bytes")),
                   limits.positive("NEUROBENCH_UNPACK_MAX_RATIO", DEFAULT_MAX_RATIO, ArchiveError))


class _Budget:
    """Counts unpacked bytes against the limits and the free disk space, naming the archive."""

    def __init__(self, archive: Path, dest: Path, limits: UnpackLimits):
        self.archive, self.dest, self.limits = archive, dest, limits
        self.archive_size = max(archive.stat().st_size, 1)
        self.cap = min(limits.max_bytes, int(limits.max_ratio * self.archive_size))
        self.used = 0

    def check(self, extra: int, member: str) -> None:
        """Raise ArchiveError if `extra` more bytes would pass a limit (nothing is added)."""
        total = self.used + extra
        if total > self.limits.max_bytes:
            raise ArchiveError(
                f"{self.archive} would unpack to more than {_gib(self.limits.max_bytes)} (at member {member!r}): "
                "refused as a possible archive bomb. If the archive is what its manifest describes, raise "
                "NEUROBENCH_UNPACK_MAX_BYTES (bytes).")
        if total > self.limits.max_ratio * self.archive_size:
            raise ArchiveError(
                f"{self.archive} ({self.archive_size} bytes) would unpack to more than {self.limits.max_ratio:g} "
                f"times its size (at member {member!r}, {total} bytes): refused as a possible archive bomb. If the "
                "archive is what its manifest describes, raise NEUROBENCH_UNPACK_MAX_RATIO.")
        free = shutil.disk_usage(self.dest).free
        if extra > free:
            raise ArchiveError(f"unpacking {self.archive}: member {member!r} needs {extra} bytes, {free} are free on "
                               f"the disk of {self.dest}; free some space (or move NEUROBENCH_HOME) and run again")

    def add(self, n: int, member: str) -> None:
        self.check(n, member)
        self.used += n


def extract(archive: Path, dest: Path, limits: UnpackLimits | None = None) -> int:
    """Extract a zip or tar `archive` into the folder `dest` within `limits`; return the bytes
    written. Raises ArchiveError (unreadable, past a limit) or UnsafePathError (a member name)."""
    limits = limits or UnpackLimits.from_env()
    budget = _Budget(archive, dest, limits)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, dest, budget)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, dest, budget)
        else:
            raise ArchiveError(f"{archive} is neither a zip nor a tar archive; is it the file its manifest describes?")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, OSError, RuntimeError,
            NotImplementedError) as exc:  # RuntimeError: an encrypted zip member; NotImplementedError: a method
        raise ArchiveError(f"cannot unpack {archive} ({type(exc).__name__}: {exc}); is it the archive its manifest "
                           "describes?") from exc
    return budget.used


def _member_path(archive: Path, dest: Path, name: str, is_dir: bool) -> Path | None:
    """Where a member goes; None for a folder entry naming the destination itself ('./')."""
    if is_dir and all(part in ("", ".") for part in name.split("/")):
        return None
    return inside(dest, name, f"{archive}: member")


def _extract_zip(archive: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        targets = [_member_path(archive, dest, i.filename, i.is_dir()) for i in infos]  # all names, before writing
        budget.check(sum(info.file_size for info in infos), "(all members)")
        for info, target in zip(infos, targets):
            if target is None or info.is_dir():
                if target is not None:
                    target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                while block := src.read(_COPY_BLOCK):
                    budget.add(len(block), info.filename)  # counts what is produced, not what is declared
                    out.write(block)


def _extract_tar(archive: Path, dest: Path, budget: _Budget) -> None:
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:  # read lazily: each header is checked before its member is written
            if _member_path(archive, dest, member.name, member.isdir()) is None:
                continue
            if member.isfile():
                budget.add(member.size, member.name)
            try:
                tf.extract(member, dest, filter="data")
            except tarfile.FilterError as exc:
                raise UnsafePathError(f"{archive}: member {member.name!r} is refused ({exc})") from exc


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"
