"""Unit positions on a 2-D cortical sheet, laid out as TopoLoss lays them (Deb et al., 2025)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInputError


def sheet_shape(n_units: int) -> tuple[int, int]:
    """(h, w) with h the largest divisor of n not above sqrt(n) and w = n / h."""
    if n_units < 1:
        raise InvalidInputError(f"a sheet needs at least one unit, got {n_units}")
    h = math.isqrt(n_units)
    while n_units % h:
        h -= 1
    return h, n_units // h


def sheet_positions(n_units: int) -> np.ndarray:
    """(n_units, 2) integer array of (row, col): unit c sits at (c // w, c % w)."""
    _h, w = sheet_shape(n_units)
    c = np.arange(n_units)
    return np.stack([c // w, c % w], axis=1)
