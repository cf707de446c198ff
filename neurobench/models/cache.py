"""The content-keyed activation cache: one layer file per (model, weights, stimuli, extraction, layer).

Entries live under `NEUROBENCH_HOME/activations/<model>/<weights>/<stimuli>-<extraction>/<layer>.h5`
(the key: model id, weights hash, stimulus-set content hash, preprocessing + read-out + precision,
layer) in the chunked, compressed, checksummed format of `layerfile`. They are written as
`.part` files and renamed into place, so a crash never leaves a half-written entry.

The cache is bounded: `NEUROBENCH_CACHE_MAX` (default 20GB; `0`, `none` or `unlimited` for no
bound) caps the bytes on disk. After every new entry the least recently used entries (last use =
the file's mtime, touched on every read) are deleted until the total fits, never one that a
reader holds (a shared lock, taken by every `LayerArray` for its lifetime) and never the entry
just written. An entry larger than the cap on its own is used once and not kept.

An entry that fails its checksum, cannot be opened, is from another format or is not a file is
reported with a warning naming it, deleted, and recomputed by the caller.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import paths
from ..errors import CacheCorruptError, InvalidInputError
from ..memory import parse_size
from .layerfile import FORMAT, LayerArray, LayerWriter, read_header, try_exclusive

log = logging.getLogger(__name__)

DEFAULT_CACHE_MAX = "20GB"
STALE_PART_SECONDS = 24 * 3600


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


def cache_max() -> int | None:
    """The cache's size cap in bytes from NEUROBENCH_CACHE_MAX (None: unbounded)."""
    raw = os.environ.get("NEUROBENCH_CACHE_MAX", DEFAULT_CACHE_MAX).strip()
    if raw.lower() in ("0", "none", "unlimited", "inf", ""):
        return None
    return parse_size(raw, "NEUROBENCH_CACHE_MAX")


@dataclass(frozen=True)
class CacheEntry:
    """One layer file of the cache, as `neurobench cache ls` lists it."""

    path: Path
    model: str
    weights: str
    stimuli: str
    extraction: str
    layer: str
    shape: tuple[int, int] | None
    nbytes: int
    last_used: float

    def row(self) -> dict:
        return {"model": self.model, "weights": self.weights[:16], "stimuli": self.stimuli[:12],
                "extraction": self.extraction, "layer": self.layer,
                "shape": "x".join(map(str, self.shape)) if self.shape else "?",
                "MB": round(self.nbytes / 1e6, 2),
                "last used": time.strftime("%Y-%m-%d %H:%M", time.localtime(self.last_used))}


class ActivationCache:
    """Content-keyed, bounded store of activation matrices (n_stimuli, n_units) per layer."""

    def __init__(self, root: str | Path | None = None, max_bytes: int | None | str = "env"):
        self.root = Path(root) if root is not None else paths.subdir("activations")
        self.max_bytes = cache_max() if max_bytes == "env" else max_bytes

    # ------------------------------------------------------------------ keys and paths
    def entry_dir(self, model_id: str, weights_id: str, stimuli_hash: str, preprocess_id: str) -> Path:
        prep = hashlib.sha256(preprocess_id.encode()).hexdigest()[:12]
        return self.root / _safe(model_id) / _safe(weights_id)[:24] / f"{stimuli_hash[:16]}-{prep}"

    def path(self, entry: Path, layer: str) -> Path:
        return entry / f"{_safe(layer)}.h5"

    # ------------------------------------------------------------------ reading
    def discard(self, path: Path, why: str) -> None:
        """Warn, naming the entry and why, and delete it (a directory in its place too)."""
        log.warning("activation cache entry %s %s; deleting it and recomputing", path, why)
        try:
            if path.is_dir() and not path.is_symlink():
                if self.root.resolve() in path.resolve().parents:
                    shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete %s (%s); it will be bypassed", path, exc)

    def open(self, entry: Path, layer: str, expect_ids: list[str]) -> LayerArray | None:
        """The entry as a lazily-read array, or None (missing, stale, corrupt: then deleted)."""
        path = self.path(entry, layer)
        if not os.path.lexists(path):
            return None
        if not path.is_file():
            self.discard(path, "is not a file")
            return None
        try:
            head = read_header(path)
        except CacheCorruptError as exc:
            self.discard(path, f"is unreadable ({exc.why})")
            return None
        if head["format"] != FORMAT or not head["fletcher32"]:
            self.discard(path, f"has format {head['format']} (this version writes {FORMAT}, with checksums)")
            return None
        if head["layer"] != layer or head["ids"] != list(expect_ids):
            self.discard(path, "holds other stimuli or another layer than its key says")
            return None
        try:
            array = LayerArray(path, layer, head["shape"])
        except OSError as exc:
            log.warning("cannot lock activation cache entry %s (%s); recomputing", path, exc)
            return None
        self.touch(path)
        return array

    def load(self, entry: Path, layer: str, expect_ids: list[str]) -> np.ndarray | None:
        """The whole entry in memory, every chunk verified; None when missing or corrupt (deleted)."""
        array = self.open(entry, layer, expect_ids)
        if array is None:
            return None
        try:
            return array.read()
        except CacheCorruptError as exc:
            array.close()
            self.discard(array.path, f"failed its checksum ({exc.why})")
            return None
        finally:
            array.close()

    @staticmethod
    def touch(path: Path) -> None:
        """Mark an entry as just used (its mtime orders the least-recently-used eviction)."""
        try:
            os.utime(path)
        except OSError:
            pass

    # ------------------------------------------------------------------ writing
    def writer(self, entry: Path, layer: str, ids: list[str], meta: dict) -> LayerWriter:
        """A writer for a new entry (a unique `.part` file beside it until `commit`)."""
        final = self.path(entry, layer)
        if os.path.lexists(final) and not final.is_file():
            self.discard(final, "is not a file")
        w = LayerWriter(final, layer, ids, meta)
        w.part = final.with_name(f"{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
        return w

    def save(self, entry: Path, layer: str, ids: list[str], values: np.ndarray, meta: dict) -> Path:
        """Write a whole (n_stimuli, n_units) matrix as an entry; returns its path."""
        writer = self.writer(entry, layer, ids, meta)
        try:
            writer.append(np.asarray(values, dtype=np.float32))
        except BaseException:
            writer.abort()
            raise
        array = self.commit(writer)
        path = array.path
        array.close()
        return path

    def commit(self, writer: LayerWriter) -> LayerArray:
        """Rename the written entry into place, then evict least recently used entries over the cap.

        An entry larger than the cap on its own is returned as a temporary array (deleted when
        released) instead of being kept.
        """
        try:
            path = writer.commit()
        except OSError as exc:  # e.g. the folder became unwritable: use the data once, keep nothing
            log.warning("could not store activation cache entry %s (%s); using it once", writer.path, exc)
            return LayerArray(writer.part, writer.layer, (writer.n_total, writer.n_cols), delete=True)
        array = LayerArray(path, writer.layer, (writer.n_total, writer.n_cols))
        size = path.stat().st_size
        if self.max_bytes is not None and size > self.max_bytes:
            log.warning("layer %s takes %.1f MB, more than the cache's cap of %.1f MB (NEUROBENCH_CACHE_MAX): "
                        "used for this run, not kept", writer.layer, size / 1e6, self.max_bytes / 1e6)
            array.close()
            temp = temp_path(writer.layer)
            os.replace(path, temp)
            return LayerArray(temp, writer.layer, (writer.n_total, writer.n_cols), delete=True)
        self.evict(self.max_bytes, protect={path})
        return array

    # ------------------------------------------------------------------ listing and eviction
    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*.h5") if p.is_file()) if self.root.is_dir() else []

    def entries(self, model: str | None = None) -> list[CacheEntry]:
        out = []
        for path in self.files():
            rel = path.relative_to(self.root).parts
            try:
                st = path.stat()
            except OSError:
                continue
            shape, attrs = None, {}
            try:
                with h5py.File(path, "r") as fh:
                    attrs = dict(fh.attrs)
                    shape = tuple(fh["activations"].shape) if "activations" in fh else None
            except (OSError, KeyError):
                pass
            entry = CacheEntry(path, str(attrs.get("model", rel[0] if len(rel) > 3 else "?")),
                               str(attrs.get("weights", rel[1] if len(rel) > 3 else "?")),
                               str(attrs.get("stimuli", "?")), str(attrs.get("preprocess", "?")),
                               str(attrs.get("layer", path.stem)), shape, st.st_size, st.st_mtime)
            if model is None or entry.model == model or (len(rel) > 3 and rel[0] == _safe(model)):
                out.append(entry)
        return out

    def total_bytes(self) -> int:
        total = 0
        for p in self.files():
            try:
                total += p.stat().st_size
            except OSError:
                pass
        return total

    def evict(self, max_bytes: int | None, protect: set[Path] = frozenset()) -> list[Path]:
        """Delete least recently used entries until the total is at most `max_bytes`; entries a
        reader holds and those in `protect` are kept. Also drops `.part` files older than a day."""
        self._drop_stale_parts()
        if max_bytes is None:
            return []
        stats = []
        for p in self.files():
            try:
                st = p.stat()
            except OSError:
                continue
            stats.append((st.st_mtime, st.st_size, p))
        total = sum(s for _, s, _ in stats)
        removed = []
        for _mtime, size, path in sorted(stats):
            if total <= max_bytes:
                break
            if path in protect:
                continue
            fd = try_exclusive(path)
            if fd is None:  # a reader holds it
                continue
            try:
                path.unlink(missing_ok=True)
                total -= size
                removed.append(path)
            finally:
                os.close(fd)
        if removed:
            log.info("activation cache over its cap of %.1f MB: evicted %d least recently used entries",
                     max_bytes / 1e6, len(removed))
        self._prune_empty_dirs()
        return removed

    def clear(self, model: str | None = None) -> tuple[int, int]:
        """Delete every entry (of `model`); returns (entries deleted, bytes freed). Entries a reader
        holds are kept."""
        n = freed = 0
        for entry in self.entries(model):
            fd = try_exclusive(entry.path)
            if fd is None:
                continue
            try:
                entry.path.unlink(missing_ok=True)
                n += 1
                freed += entry.nbytes
            finally:
                os.close(fd)
        self._prune_empty_dirs()
        return n, freed

    def _drop_stale_parts(self) -> None:
        if not self.root.is_dir():
            return
        now = time.time()
        for p in self.root.rglob("*.part"):
            try:
                if now - p.stat().st_mtime > STALE_PART_SECONDS:
                    p.unlink(missing_ok=True)
            except OSError:
                pass

    def _prune_empty_dirs(self) -> None:
        if not self.root.is_dir():
            return
        for d in sorted((p for p in self.root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass


def temp_path(layer: str) -> Path:
    """A file for a temporary (uncached) extraction under NEUROBENCH_HOME/tmp."""
    folder = paths.subdir("tmp")
    return folder / f"{_safe(layer)}.{os.getpid()}-{uuid.uuid4().hex[:8]}.h5"


def temp_writer(layer: str, ids: list[str], meta: dict) -> LayerWriter:
    """A writer whose result is used once (cache off, or an entry over the cap)."""
    if not ids:
        raise InvalidInputError("no stimuli to extract")
    drop_stale_temp()
    return LayerWriter(temp_path(layer), layer, ids, meta)


def drop_stale_temp() -> None:
    """Delete temporary files (extractions, a score's spill files) left by processes that died:
    a day old and, for a layer file, not held by a reader."""
    folder = paths.home() / "tmp"
    if not folder.is_dir():
        return
    now = time.time()
    for p in folder.glob("*"):
        try:
            old = now - p.stat().st_mtime > STALE_PART_SECONDS
        except OSError:
            continue
        if old:
            fd = try_exclusive(p) if p.suffix == ".h5" else None
            if fd is not None or p.suffix != ".h5":
                p.unlink(missing_ok=True)
            if fd is not None:
                os.close(fd)
