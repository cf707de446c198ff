"""MATLAB files as datasets release them (scipy.io.loadmat): reading with a typed error, cells, text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataFormatError


def load_mat(path: Path, required: Sequence[str] = (), **kwargs) -> dict:
    """`scipy.io.loadmat(path, **kwargs)`; DataFormatError for a file that is not MATLAB or lacks
    one of the `required` variables (naming those it has)."""
    import scipy.io

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path, **kwargs)
    except Exception as exc:  # scipy raises several types for foreign files
        raise DataFormatError(f"cannot read {path} as a MATLAB file ({type(exc).__name__}: {exc}); "
                              "is it another release?") from exc
    missing = [k for k in required if k not in mat]
    if missing:
        have = sorted(k for k in mat if not k.startswith("__"))
        raise DataFormatError(f"{path.name} lacks {missing} (it has {have}); "
                              "is it another release of the file?")
    return mat


def cells(x) -> list:
    """The elements of a MATLAB cell array, in MATLAB's (column-major) order."""
    return list(np.asarray(x, dtype=object).ravel(order="F"))


def text(x) -> str:
    """A MATLAB char array (possibly wrapped in 1x1 cells) as a str; '' for an empty one."""
    while isinstance(x, np.ndarray) and x.dtype == object and x.size == 1:
        x = x.ravel()[0]
    arr = np.asarray(x)
    if arr.dtype.kind == "U":
        return "".join(arr.ravel().tolist())
    return str(x)
