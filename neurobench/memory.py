"""Sizes and memory: parse '4GB', print bytes, read this process's resident memory.

Sizes are decimal (1 GB = 10^9 bytes) unless written with an `i` (1 GiB = 2^30 bytes), as
`--memory-budget`, `NEUROBENCH_CACHE_MAX` and the error messages write them.
"""

from __future__ import annotations

import math
import re
import resource

from .errors import InvalidInputError

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*$")


def parse_size(text: str | int | float, what: str = "size") -> int:
    """'4GB', '512MiB', '2e9', 2000000000 -> bytes (int). InvalidInputError for anything else."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        match = _SIZE.match(str(text).lower())
        if match is None or match.group(2) not in _UNITS:
            raise InvalidInputError(f"{what} {text!r}: give bytes or a size like 4GB, 512MB or 1.5GiB")
        value, unit = float(match.group(1)), match.group(2)
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{what} {text!r}: must be a non-negative size")
    return int(value * _UNITS[unit])


def format_size(nbytes: int | float) -> str:
    """Bytes as the shortest exact-enough decimal size: 1.25 GB, 143 MB, 12 kB."""
    n = float(nbytes)
    for unit, factor in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{int(n)} B"


def format_size_up(nbytes: int) -> str:
    """A size rounded *up* (kB, MB, or GB to the MB), so a budget given as the printed figure, e.g.
    `--memory-budget 2.146GB`, is at least `nbytes`."""
    if nbytes < 10**8:
        return f"{math.ceil(nbytes / 1e3)}kB"
    if nbytes < 10**9:
        return f"{math.ceil(nbytes / 1e6)}MB"
    return f"{math.ceil(nbytes / 1e6) / 1e3:.3f}GB"


def rss_bytes() -> int:
    """This process's resident memory now (Linux /proc; the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * resource.getpagesize()
    except OSError:
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (ru_maxrss: KiB on Linux)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


_M_MMAP_THRESHOLD = -3
_heap_bounded = False


def _libc():
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None or "musl" in name:
        return None
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def bound_heap(threshold: int = 2**20) -> bool:
    """Make freed memory go back to the system (glibc; a no-op elsewhere). Returns whether it did.

    glibc serves allocations below a threshold that rises up to 32 MB from a heap it rarely
    returns to the system, so a long computation's resident memory creeps above what it holds.
    With a fixed threshold of 1 MiB every large buffer is mapped on its own and unmapped when
    freed. Called once per process when a memory budget is given.
    """
    global _heap_bounded
    if _heap_bounded:
        return True
    libc = _libc()
    if libc is None:
        return False
    _heap_bounded = bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    return _heap_bounded


def trim_heap() -> None:
    """Return the heap's free memory to the system now (glibc's malloc_trim; a no-op elsewhere)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
