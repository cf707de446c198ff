"""Resumable, verified HTTP downloads with a progress bar.

Dataset files run to tens of gigabytes, so a dropped connection must not cost the bytes already
fetched: data streams into `<target>.part`, which survives failures and is resumed with an HTTP
Range request, and only a file whose size and digest match the manifest is renamed to `target`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from ..errors import ChecksumMismatchError, DataUnavailableError, InvalidInputError
from ..progress import progress_enabled

log = logging.getLogger(__name__)

ALGORITHMS = {"sha256": 64, "sha1": 40, "md5": 32}  # supported algorithm -> hex digest length
_BACKOFF_S = 0.5  # first retry delay; doubles per retry, capped at _BACKOFF_MAX_S
_BACKOFF_MAX_S = 8.0
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)


class _Transient(Exception):
    """A failure worth retrying (connection drop, timeout, 5xx); the .part file is kept."""


@dataclass
class _Hashed:
    """Digest state of the first `length` bytes of the .part file, so a retry need not re-read them."""

    hasher: object
    length: int


def download(
    url: str,
    target: Path,
    *,
    algorithm: str | None,
    expected: str | None,
    size: int | None = None,
    progress: bool | None = None,
    description: str = "",
    chunk_size: int = 1 << 20,
    timeout: float = 60.0,
    retries: int = 3,
) -> str:
    """Download `url` to `target` (resuming `<target>.part`), verify it, and return its hex digest.

    `algorithm` is sha256 (default), sha1 or md5; `expected=None` means trust-on-first-use: the digest
    of whatever arrived is returned for the caller to record. Raises ChecksumMismatchError (the .part
    is deleted) or DataUnavailableError (the .part is kept, so running again resumes).
    """
    algorithm = _check_algorithm(algorithm, expected)
    expected = expected.strip().lower() if expected else None
    target = Path(target)
    part = part_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    show = progress_enabled() if progress is None else progress
    with _exclusive(part):
        if expected is not None and target.is_file() and file_digest(target, algorithm) == expected:
            log.info("%s was completed by another process meanwhile", target)  # we waited for its lock
            return expected
        return _download_locked(url, target, part, algorithm, expected, size, show, description, chunk_size,
                                timeout, retries)


def _download_locked(url, target, part, algorithm, expected, size, show, description, chunk_size, timeout, retries):
    resumed = _drop_oversized_part(part, size)
    with requests.Session() as session, _bar(show, description or target.name) as bar:
        fetch = _Fetch(session, url, part, algorithm, size, bar, chunk_size, timeout, retries)
        hashed = fetch.run()
        try:
            return _finish(url, part, target, algorithm, expected, size, hashed)
        except ChecksumMismatchError as exc:
            if not resumed:
                raise
            log.warning("%s; the .part came from an earlier run, downloading %s again from scratch", exc, url)
        return _finish(url, part, target, algorithm, expected, size, fetch.run())


@contextmanager
def _exclusive(part: Path):
    """Hold `<part>.lock` so that two processes never append to the same .part (POSIX flock;
    elsewhere no lock). A second process waits, then finds the file complete."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(part.with_name(part.name + ".lock"), "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another process is downloading %s; waiting for it", part.name[: -len(".part")])
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def part_path(target: Path) -> Path:
    """Where the unfinished download of `target` lives (next to it)."""
    return target.with_name(target.name + ".part")


def _check_algorithm(algorithm: str | None, expected: str | None) -> str:
    """Normalise the algorithm name; refuse unknown ones and digests of the wrong length before any download."""
    name = (algorithm or "sha256").lower().replace("-", "")
    if name not in ALGORITHMS:
        raise InvalidInputError(f"unsupported checksum algorithm {algorithm!r}; supported: {', '.join(ALGORITHMS)}")
    if expected is not None:
        digest = expected.strip().lower()
        fits = [a for a, n in ALGORITHMS.items() if n == len(digest)]
        if len(digest) != ALGORITHMS[name] or not re.fullmatch(r"[0-9a-f]+", digest):
            hint = f" (its length fits {fits[0]})" if fits else ""
            raise InvalidInputError(f"expected {name} digest {expected!r} is not {ALGORITHMS[name]} hex digits{hint}")
    return name


def _drop_oversized_part(part: Path, size: int | None) -> bool:
    """Delete a .part longer than the known size (another release); say whether a usable .part remains."""
    if not part.is_file():
        return False
    have = part.stat().st_size
    if size is not None and have > size:
        log.warning("discarding %s: %d bytes, more than the expected %d", part, have, size)
        part.unlink()
        return False
    return have > 0


class _Fetch:
    """Brings `part` to the server's full file, retrying transient failures and resuming each time."""

    def __init__(self, session, url, part, algorithm, size, bar, chunk_size, timeout, retries):
        self.session, self.url, self.part, self.algorithm = session, url, part, algorithm
        self.size, self.bar, self.chunk_size, self.timeout, self.retries = size, bar, chunk_size, timeout, retries
        self.hashed: _Hashed | None = None
        self.total: int | None = size

    def run(self) -> _Hashed:
        failures = 0
        while True:
            try:
                return self._attempt()
            except _Transient as exc:
                failures += 1
                have = _size_of(self.part)
                if failures > self.retries:
                    raise DataUnavailableError(self._gave_up(exc, failures, have)) from exc
                delay = min(_BACKOFF_S * 2 ** (failures - 1), _BACKOFF_MAX_S)
                log.warning("download of %s interrupted (%s) at %s; retry %d/%d in %.1f s",
                            self.url, exc, _human(have), failures, self.retries, delay)
                time.sleep(delay)

    def _gave_up(self, exc: Exception, attempts: int, have: int) -> str:
        of = f" of {_human(self.total)}" if self.total else ""
        return (f"could not download {self.url}: {exc} ({attempts} attempts). Fetched {_human(have)}{of} so far, "
                f"kept in {self.part}; running the same command again resumes from there.")

    def _attempt(self) -> _Hashed:
        offset = _size_of(self.part)
        headers = {"Accept-Encoding": "identity"}  # byte ranges must count stored bytes, not decoded ones
        if offset:
            headers["Range"] = f"bytes={offset}-"
            log.info("resuming %s at byte %d (%s already in %s)", self.url, offset, _human(offset), self.part)
        try:
            resp = self.session.get(self.url, headers=headers, stream=True, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        except requests.RequestException as exc:  # invalid URL or scheme: retrying cannot help
            raise DataUnavailableError(f"could not download {self.url}: {type(exc).__name__}: {exc}") from exc
        with resp:
            return self._handle(resp, offset)

    def _handle(self, resp: requests.Response, offset: int) -> _Hashed:
        code = resp.status_code
        if code == 416 and offset:
            return self._complete_part(resp, offset)
        if code in _RETRY_STATUS:
            raise _Transient(f"HTTP {code} {resp.reason}")
        if code not in (200, 206):
            raise DataUnavailableError(f"could not download {self.url}: HTTP {code} {resp.reason}")
        if code == 206 and offset:
            start, total = _content_range(resp)
            if start != offset:
                self._discard(f"server sent bytes from {start}, asked for {offset}")
            self.total = total or self.total
            return self._stream(resp, offset, self._hash_part(offset))
        if offset:
            log.info("%s ignored the Range request; restarting the download from byte 0", self.url)
        length = _content_length(resp)
        self.total = self.size or length
        return self._stream(resp, 0, _Hashed(hashlib.new(self.algorithm), 0))

    def _complete_part(self, resp: requests.Response, offset: int) -> _Hashed:
        """416 Range Not Satisfiable: the .part already holds the whole file, unless the server says otherwise."""
        _, total = _content_range(resp)
        if total is not None and total != offset:
            self._discard(f"server file has {total} bytes, the partial download {offset}")
        log.info("%s: the partial download is already complete (%s)", self.url, _human(offset))
        self.total = offset
        self.bar.reset(offset, offset)
        return self._hash_part(offset)

    def _discard(self, why: str) -> None:
        self.part.unlink(missing_ok=True)
        self.hashed = None
        raise _Transient(f"{why}; discarded the partial download")

    def _hash_part(self, offset: int) -> _Hashed:
        """Digest state of the existing .part: carried over from the last attempt, or re-read from disk."""
        if self.hashed is not None and self.hashed.length == offset:
            return _Hashed(self.hashed.hasher.copy(), offset)
        hasher = hashlib.new(self.algorithm)
        with open(self.part, "rb") as fh:
            while block := fh.read(1 << 20):
                hasher.update(block)
        return _Hashed(hasher, offset)

    def _stream(self, resp: requests.Response, offset: int, hashed: _Hashed) -> _Hashed:
        """Append the body to the .part (truncating it first when offset is 0), hashing as it is written."""
        length = _content_length(resp)
        end = offset + length if length is not None else None
        self.bar.reset(offset, self.total or end)
        self.hashed = hashed
        with open(self.part, "ab" if offset else "wb") as fh:
            try:
                for chunk in resp.iter_content(self.chunk_size):
                    fh.write(chunk)
                    hashed.hasher.update(chunk)
                    hashed.length += len(chunk)
                    self.bar.advance(len(chunk))
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                raise _Transient(f"connection lost: {type(exc).__name__}") from exc
        if end is not None and hashed.length < end:
            raise _Transient(f"connection closed after {hashed.length} of {end} bytes")
        return hashed


def _finish(url, part, target, algorithm, expected, size, hashed: _Hashed) -> str:
    """Check size and digest of the finished .part, then move it into place atomically."""
    actual = hashed.hasher.hexdigest()
    have = part.stat().st_size
    if hashed.length != have:  # the file changed under us (another process?): trust the disk
        actual = file_digest(part, algorithm)
    problem = None
    if size is not None and have != size:
        problem = f"{have} bytes, expected {size} (truncated or another release?); "
    if problem or (expected is not None and actual != expected):
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"downloaded {url}: {problem or ''}{algorithm} expected {expected}, actual {actual}; "
            f"the download was deleted"
        )
    os.replace(part, target)
    log.debug("downloaded %s -> %s (%s %s)", url, target, algorithm, actual)
    return actual


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a local file with one of ALGORITHMS (for verifying mirror and cache copies too)."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            hasher.update(block)
    return hasher.hexdigest()


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _content_length(resp: requests.Response) -> int | None:
    try:
        return int(resp.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _content_range(resp: requests.Response) -> tuple[int | None, int | None]:
    """(first byte, full size) from a Content-Range header; None where absent or '*'."""
    match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", "").strip())
    if not match:
        return None, None
    start, _, total = match.groups()
    return (int(start) if start else None), (int(total) if total and total != "*" else None)


def _human(n: int | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


class _Bar:
    """A rich task (bytes, speed, ETA), or nothing when progress is off."""

    def __init__(self, progress=None, task=None):
        self._progress, self._task = progress, task

    def reset(self, completed: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, total=total)

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)


def _make_progress():
    """The rich Progress for downloads, on stderr so piped stdout stays clean."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)


@contextmanager
def _bar(show: bool, description: str):
    if not show:
        yield _Bar()
        return
    with _make_progress() as progress:
        yield _Bar(progress, progress.add_task(description, total=None))
