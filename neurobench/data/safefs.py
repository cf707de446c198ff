"""File-system primitives that hold under concurrency and crashes: an exclusive lock per resource,
atomic replacement of small records, and the file state that decides when a verified file must be
hashed again.

- `exclusive(lock)`: a POSIX `flock` on a lock file; the kernel releases it when its holder exits,
  even after SIGKILL, so a crash never leaves a stale lock. Other platforms run without a lock.
- `write_atomic(path, text)`: a unique temporary file in the same folder, flushed and fsync'ed,
  then `os.replace`d: a reader sees the old record or the new one, never half of one.
- `file_state(path)`: device, inode, size, mtime and ctime (ns). A verification is remembered for
  one state; any change of these (an in-place rewrite changes ctime even when size and mtime are
  restored; a replaced file has a new inode) makes the next use hash the file again. A change that
  keeps all five (a disk fault, a raw write to the device) is caught by `neurobench verify`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def exclusive(lock: Path, waiting: str = ""):
    """Hold an exclusive lock on the file `lock` (created if needed) for the block; when another
    process holds it, log `waiting` (if given) and wait for it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                log.warning("%s", waiting)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=1))


def read_json(path: Path, default=None):
    """The JSON record at `path`, or `default` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def file_state(path: Path) -> dict:
    """The state a verification is remembered for (see the module docstring)."""
    st = Path(path).stat()
    return {"path": str(Path(path).resolve()), "dev": st.st_dev, "inode": st.st_ino, "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


HASH_LENGTHS = {"sha256": 64, "sha1": 40, "md5": 32}  # supported algorithm -> hex digest length


def is_digest(text: str, algorithm: str) -> bool:
    """Is `text` a lower-case hex digest of `algorithm`'s length?"""
    return len(text) == HASH_LENGTHS[algorithm] and all(c in "0123456789abcdef" for c in text)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a local file with one of HASH_LENGTHS' algorithms."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            hasher.update(block)
    return hasher.hexdigest()
