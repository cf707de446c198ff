"""One layer's activations on disk: a chunked, compressed, checksummed HDF5 file, and a lazy array.

Format 2 (`FORMAT`): `/activations` is float32 (stimuli x units), stored in chunks of about
1 MiB (`chunk_shape`: up to 65,536 units wide, as many rows as fit), compressed with LZF (h5py's
fastest built-in compressor: `neurobench perf extract` measures it against gzip level 1) and
checksummed with HDF5's Fletcher-32 filter: every chunk carries the checksum of its stored bytes,
written with it and verified by HDF5 whenever that chunk is read, so a flipped bit or overwritten
bytes raise instead of becoming a number. `/stimulus_ids` holds the row ids; attributes say the
layer, the model, the weights, the stimulus set and the extraction id.

`LayerWriter` streams rows into a file (written as `<name>.part`, renamed into place by `commit`,
so a reader never sees a half-written entry); it buffers at most one row of chunks. `LayerArray`
reads a file lazily: `len`, `shape`, `np.asarray(a)` (the whole layer), `a[rows]`,
`a[rows, cols]`, `a.read(rows, cols)` and `a.column_blocks(width)` read only the chunks they
touch. A corrupt chunk raises `CacheCorruptError` naming the file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from ..errors import CacheCorruptError, InvalidInputError

log = logging.getLogger(__name__)

FORMAT = 2
COMPRESSION = "lzf"
CHUNK_BYTES = 2**20
MAX_CHUNK_COLS = 65536
DATASET = "activations"


def cache_compression() -> tuple[str | None, int | None]:
    """The compressor for new files: NEUROBENCH_CACHE_COMPRESSION = lzf (default), gzip (level 1)
    or none."""
    name = os.environ.get("NEUROBENCH_CACHE_COMPRESSION", COMPRESSION).strip().lower()
    if name not in ("lzf", "gzip", "none"):
        raise InvalidInputError(f"NEUROBENCH_CACHE_COMPRESSION must be lzf, gzip or none, got {name!r}")
    return {"lzf": ("lzf", None), "gzip": ("gzip", 1), "none": (None, None)}[name]


def chunk_shape(n_rows: int, n_cols: int) -> tuple[int, int]:
    """(rows, cols) of one ~1 MiB float32 chunk: whole rows up to 65,536 units, else equal tiles of
    at most 65,536 units (no padded tile at the end of a row)."""
    cols = max(1, -(-n_cols // -(-n_cols // MAX_CHUNK_COLS)))  # ceil(n / ceil(n / MAX))
    rows = max(1, min(n_rows, CHUNK_BYTES // (4 * cols)))
    return rows, cols


def _decode_ids(raw) -> list[str]:
    return [s.decode() if isinstance(s, bytes) else str(s) for s in raw]


class LayerWriter:
    """Append rows of one layer to `path` (via `path.part`); `commit()` renames it into place.

    Rows arrive in any batch size; they are written in whole chunk rows (the buffer holds at most
    one chunk row: `chunk rows x units` floats), so every chunk is compressed once.
    """

    def __init__(self, path: str | Path, layer: str, ids: Sequence[str], meta: dict | None = None,
                 compression: str | None = "env"):
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + ".part")
        self.layer, self.ids, self.meta = layer, list(ids), dict(meta or {})
        self.compression, self.level = cache_compression() if compression == "env" else (compression, None)
        self.n_total = len(self.ids)
        self.rows = 0
        self._fh: h5py.File | None = None
        self._ds = None
        self._buf: np.ndarray | None = None
        self._fill = 0
        self.n_cols: int | None = None

    def _open(self, n_cols: int) -> None:
        if n_cols == 0:
            raise InvalidInputError(f"layer {self.layer!r} has no units (width 0): there is nothing to score; "
                                    "choose another layer (--layers) or check the model's read-out")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = h5py.File(self.part, "w")
        chunks = chunk_shape(self.n_total, n_cols)
        self._ds = self._fh.create_dataset(DATASET, shape=(self.n_total, n_cols), dtype=np.float32,
                                           chunks=chunks, compression=self.compression,
                                           compression_opts=self.level, fletcher32=True)
        self._buf = np.empty((chunks[0], n_cols), dtype=np.float32)
        self.n_cols = int(n_cols)

    def append(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.float32)
        if rows.ndim != 2:
            raise InvalidInputError(f"layer {self.layer!r}: rows must be 2-D (stimuli x units), got {rows.shape}")
        if self._ds is None:
            self._open(rows.shape[1])
        if rows.shape[1] != self._ds.shape[1]:
            raise InvalidInputError(f"layer {self.layer!r}: {rows.shape[1]} units in this batch, "
                                    f"{self._ds.shape[1]} in the first")
        if self.rows + len(rows) > self.n_total:
            raise InvalidInputError(f"layer {self.layer!r}: more than {self.n_total} rows written")
        start = 0
        block = len(self._buf)
        while start < len(rows):
            if self._fill == 0 and len(rows) - start >= block and (self.rows % block) == 0:
                stop = start + (len(rows) - start) // block * block  # whole chunk rows: straight to disk
                self._ds[self.rows:self.rows + stop - start] = rows[start:stop]
                self.rows += stop - start
                start = stop
                continue
            take = min(block - self._fill, len(rows) - start)
            self._buf[self._fill:self._fill + take] = rows[start:start + take]
            self._fill += take
            start += take
            if self._fill == block:
                self._flush()

    def _flush(self) -> None:
        if self._fill:
            self._ds[self.rows:self.rows + self._fill] = self._buf[:self._fill]
            self.rows += self._fill
            self._fill = 0

    def commit(self) -> Path:
        """Check the row count, write ids and attributes, close, rename into place."""
        if self._ds is None:
            raise InvalidInputError(f"layer {self.layer!r}: nothing was written")
        self._flush()
        if self.rows != self.n_total:
            self.abort()
            raise InvalidInputError(f"layer {self.layer!r}: {self.rows} rows written for {self.n_total} stimuli")
        self._fh.create_dataset("stimulus_ids", data=np.array(self.ids, dtype=h5py.string_dtype()))
        self._fh.attrs["format"] = FORMAT
        self._fh.attrs["layer"] = self.layer
        self._fh.attrs["compression"] = self.compression or "none"
        self._fh.attrs["checksum"] = "fletcher32 per chunk (HDF5 filter)"
        for key, value in self.meta.items():
            self._fh.attrs[key] = value
        self._fh.close()
        self._fh, self._ds, self._buf = None, None, None
        os.replace(self.part, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the partial file (nothing is left behind)."""
        if self._fh is not None:
            try:
                self._fh.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away
                pass
            self._fh = None
        self.part.unlink(missing_ok=True)


def read_header(path: Path) -> dict:
    """Format, layer, shape, ids and attributes of a layer file; CacheCorruptError when unreadable."""
    try:
        with h5py.File(path, "r") as fh:
            ds = fh[DATASET]
            return {"format": fh.attrs.get("format"), "layer": fh.attrs.get("layer"), "shape": tuple(ds.shape),
                    "ids": _decode_ids(fh["stimulus_ids"][()]), "attrs": dict(fh.attrs),
                    "fletcher32": bool(ds.fletcher32)}
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise CacheCorruptError(path, f"cannot read it ({type(exc).__name__}: {exc})") from exc


class _Lease:
    """A shared lock on a file for as long as a reader holds it (eviction skips locked files)."""

    def __init__(self, path: Path):
        self.fd: int | None = os.open(path, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _release(lease: _Lease, path: Path, delete: bool) -> None:
    lease.release()
    if delete:
        path.unlink(missing_ok=True)


def try_exclusive(path: Path) -> int | None:
    """An fd holding an exclusive lock on `path`, or None when a reader holds it (or it is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class LayerArray:
    """A layer's activations (stimuli x units, float32) read from its file on demand.

    Behaves like a read-only 2-D array for the kinds: `len(a)`, `a.shape`, `np.asarray(a)`,
    `torch.as_tensor(np.asarray(a))`, `a[rows]` and `a[rows, cols]` (numpy arrays back),
    `a.read(rows, cols)`, and `a.column_blocks(width)` (one block of columns at a time).
    `a.subset(rows)` is a lazy view of some rows (e.g. one subject's stimuli). While the array
    is alive it holds a shared lock on its file, so the cache never evicts it; `delete=True`
    (temporary extractions) removes the file when the array is closed or collected.
    """

    def __init__(self, path: str | Path, layer: str, shape: tuple[int, int], rows: np.ndarray | None = None,
                 delete: bool = False, _lease: _Lease | None = None):
        self.path = Path(path)
        self.layer = layer
        self._n_file, self._n_cols = int(shape[0]), int(shape[1])
        self._rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self._lease = _lease or _Lease(self.path)
        self._finalizer = weakref.finalize(self, _release, self._lease, self.path, delete) if _lease is None else None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ array protocol
    @property
    def shape(self) -> tuple[int, int]:
        return (self._n_file if self._rows is None else len(self._rows), self._n_cols)

    ndim = 2
    dtype = np.dtype(np.float32)

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * 4

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LayerArray({self.layer!r}, shape={self.shape}, file={str(self.path)!r})"

    def __array__(self, dtype=None, copy=None):
        out = self.read()
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            if len(key) != 2:
                raise IndexError(f"a layer array is 2-D; got {len(key)} indices")
            rows, cols = key
        else:
            rows, cols = key, slice(None)
        squeeze_row = isinstance(rows, (int, np.integer))
        squeeze_col = isinstance(cols, (int, np.integer))
        out = self.read(self._index(rows, self.shape[0]), self._index(cols, self._n_cols))
        if squeeze_row:
            out = out[0]
            return out[0] if squeeze_col else out
        return out[:, 0] if squeeze_col else out

    @staticmethod
    def _index(key, n: int) -> np.ndarray:
        if isinstance(key, slice):
            return np.arange(n)[key]
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"boolean index of shape {idx.shape} for {n} entries")
            return np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"index out of range for {n} entries")
        return np.where(idx < 0, idx + n, idx)

    # ------------------------------------------------------------------ reading
    def subset(self, rows: Sequence[int] | np.ndarray) -> LayerArray:
        """A lazy view of some rows, in the given order (nothing is read)."""
        idx = self._index(rows, self.shape[0])
        base = idx if self._rows is None else self._rows[idx]
        view = LayerArray(self.path, self.layer, (self._n_file, self._n_cols), rows=base, _lease=self._lease)
        view._parent = self  # keeps the lease (and a temporary file) alive while the view is
        return view

    def read(self, rows: np.ndarray | None = None, cols: np.ndarray | slice | None = None) -> np.ndarray:
        """float32 array of the given rows (positions in this array) and columns, in order.

        Only the chunks that hold them are read (whole chunk rows, then selected); each chunk read
        is verified against its Fletcher-32 checksum.
        """
        file_rows = self._file_rows(rows)
        col_idx = None if cols is None else self._index(cols, self._n_cols)
        col_sel = slice(None)
        if col_idx is not None and col_idx.size:
            lo, hi = int(col_idx.min()), int(col_idx.max()) + 1
            col_sel = slice(lo, hi)
            col_idx = col_idx - lo
        n_out_cols = self._n_cols if col_idx is None else len(col_idx)
        out = np.empty((len(file_rows), n_out_cols), dtype=np.float32)
        if not len(file_rows) or not n_out_cols:
            return out
        try:
            with self._lock, h5py.File(self.path, "r") as fh:
                ds = fh[DATASET]
                block = ds.chunks[0] if ds.chunks else len(file_rows)
                self._read_blocks(ds, file_rows, col_sel, col_idx, block, out)
        except (OSError, KeyError, ValueError) as exc:
            raise CacheCorruptError(self.path, f"reading layer {self.layer!r} failed ({exc})") from exc
        return out

    def _file_rows(self, rows) -> np.ndarray:
        if rows is None:
            return np.arange(self._n_file) if self._rows is None else self._rows
        idx = self._index(rows, self.shape[0])
        return idx if self._rows is None else self._rows[idx]

    @staticmethod
    def _read_blocks(ds, file_rows: np.ndarray, col_sel: slice, col_idx, block: int, out: np.ndarray) -> None:
        """Fill `out` with `file_rows` (any order) reading each touched chunk row once."""
        if np.all(np.diff(file_rows) == 1):  # one contiguous run: a single read
            data = ds[int(file_rows[0]):int(file_rows[-1]) + 1, col_sel]
            out[:] = data if col_idx is None else data[:, col_idx]
            return
        order = np.argsort(file_rows, kind="stable")
        sorted_rows = file_rows[order]
        chunk_ids = sorted_rows // block
        bounds = np.flatnonzero(np.diff(chunk_ids)) + 1
        for group in np.split(np.arange(len(sorted_rows)), bounds):
            c = int(chunk_ids[group[0]])
            lo = c * block
            data = ds[lo:min(lo + block, ds.shape[0]), col_sel]
            picked = data[sorted_rows[group] - lo]
            out[order[group]] = picked if col_idx is None else picked[:, col_idx]

    def verify(self) -> bool:
        """Read every chunk of the file (a row of chunks at a time) against its checksum."""
        try:
            with self._lock, h5py.File(self.path, "r") as fh:
                ds = fh[DATASET]
                step = ds.chunks[0] if ds.chunks else max(1, ds.shape[0])
                for s0 in range(0, ds.shape[0], step):
                    ds[s0:s0 + step]
        except (OSError, KeyError, ValueError):
            return False
        return True

    def column_blocks(self, width: int, rows: np.ndarray | None = None) -> Iterator[tuple[slice, np.ndarray]]:
        """(column slice, rows x block) for consecutive blocks of `width` columns."""
        for start in range(0, self._n_cols, max(1, int(width))):
            sl = slice(start, min(self._n_cols, start + int(width)))
            yield sl, self.read(rows, np.arange(sl.start, sl.stop))

    def close(self) -> None:
        """Release the lock now (and delete a temporary file); the array cannot be read after."""
        if self._finalizer is not None:
            self._finalizer()


def is_lazy(values) -> bool:
    return isinstance(values, LayerArray)
