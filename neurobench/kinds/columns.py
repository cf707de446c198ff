"""Working storage of a score at dataset scale: matrices written and read a block of columns at a time.

`ColumnStore` holds a (rows x columns) float matrix, e.g. the repetition-averaged responses of
every target or one outer fold's held-out predictions, either in memory or in a temporary file
under `NEUROBENCH_HOME/tmp` laid out column by column (one target's rows are contiguous), read
and written with positioned I/O. A file read goes through the page cache, not this process's
resident memory, so a score can stream targets that do not fit its memory budget. The file is
deleted when the store is closed or collected.
"""

from __future__ import annotations

import os
import uuid
import weakref

import numpy as np

from .. import paths


def _remove(fd: int, path: str) -> None:
    try:
        os.close(fd)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


class ColumnStore:
    """A (rows x cols) matrix of `dtype`, in memory (`spill=False`) or in a temporary file."""

    def __init__(self, rows: int, cols: int, spill: bool = False, dtype=np.float32):
        self.rows, self.cols, self.dtype = int(rows), int(cols), np.dtype(dtype)
        self.spilled = bool(spill)
        self._array = None
        self._fd = None
        if self.spilled:
            path = paths.subdir("tmp") / f"columns.{os.getpid()}-{uuid.uuid4().hex[:8]}.bin"
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            self.path = str(path)
            self._finalizer = weakref.finalize(self, _remove, self._fd, self.path)
        else:
            self._array = np.empty((self.rows, self.cols), dtype=self.dtype)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.cols

    @property
    def resident_bytes(self) -> int:
        return 0 if self.spilled else self._array.nbytes

    def _offset(self, col: int) -> int:
        return col * self.rows * self.dtype.itemsize

    def write(self, cols: slice, block) -> None:
        """Store `block` (rows x len(cols)) as the columns `cols`."""
        block = np.asarray(block, dtype=self.dtype)
        if block.shape != (self.rows, cols.stop - cols.start):
            raise ValueError(f"block of shape {block.shape} for {self.rows} rows x columns {cols}")
        if not self.spilled:
            self._array[:, cols] = block
            return
        data = np.ascontiguousarray(block.T)
        os.pwrite(self._fd, memoryview(data).cast("B"), self._offset(cols.start))

    def read(self, cols: slice) -> np.ndarray:
        """The columns `cols` as a (rows x c) array (a view for an in-memory store)."""
        if not self.spilled:
            return self._array[:, cols]
        c = cols.stop - cols.start
        out = np.empty((c, self.rows), dtype=self.dtype)
        view, offset, done = memoryview(out).cast("B"), self._offset(cols.start), 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], offset + done)
            if got <= 0:
                raise OSError(f"short read from {self.path}")
            done += got
        return out.T

    def __getitem__(self, key):
        """`store[:, a:b]` (what `metrics.ridge.Targets` reads)."""
        rows, cols = key
        if rows != slice(None) or not isinstance(cols, slice) or cols.step not in (None, 1):
            raise IndexError("a ColumnStore is read as store[:, a:b]")
        start, stop, _ = cols.indices(self.cols)
        return self.read(slice(start, stop))

    def close(self) -> None:
        if self.spilled:
            self._finalizer()
        self._array = None
