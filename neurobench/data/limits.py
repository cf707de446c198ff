"""Every limit on the data side: its environment variable, its default, and how it is read.

| variable                         | default                              | bounds                         |
|----------------------------------|--------------------------------------|--------------------------------|
| NEUROBENCH_DOWNLOAD_STALL_S      | 60 s                                 | seconds with no byte arriving  |
| NEUROBENCH_DOWNLOAD_DEADLINE_S   | 600 s + size at 100 kB/s (6 h if the | one whole download, retries    |
|                                  | manifest gives no size)              | included                       |
| NEUROBENCH_UNPACK_MAX_BYTES      | 100 GiB                              | bytes one archive unpacks to   |
| NEUROBENCH_UNPACK_MAX_RATIO      | 100                                  | unpacked bytes per archive byte|
| NEUROBENCH_MAX_IMAGE_PIXELS      | 89,478,485 (Pillow's own default)    | pixels of one decoded image    |

A value that is not a positive number is refused by the caller's typed error, naming the variable.
"""

from __future__ import annotations

import os

STALL_S = 60.0
DEADLINE_FLOOR_S = 600.0
DEADLINE_MIN_RATE = 100e3  # bytes/s the default deadline allows for a file of known size
DEADLINE_UNKNOWN_SIZE_S = 6 * 3600.0
UNPACK_MAX_BYTES = 100 * 2**30
UNPACK_MAX_RATIO = 100.0
MAX_IMAGE_PIXELS = 89_478_485


def positive(variable: str, default: float, error: type[Exception], unit: str = "number") -> float:
    """The positive number in environment variable `variable`, or `default` when it is unset or
    blank; anything else raises `error` naming the variable."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise error(f"{variable}={raw!r} is not a positive {unit}; unset it for the default ({default:,g})")
    return value


def download_deadline(size: int | None, error: type[Exception]) -> float:
    default = DEADLINE_FLOOR_S + size / DEADLINE_MIN_RATE if size is not None else DEADLINE_UNKNOWN_SIZE_S
    return positive("NEUROBENCH_DOWNLOAD_DEADLINE_S", default, error, "number of seconds")


def max_image_pixels(error: type[Exception]) -> int:
    value = positive("NEUROBENCH_MAX_IMAGE_PIXELS", MAX_IMAGE_PIXELS, error, "number of pixels")
    return int(value)
