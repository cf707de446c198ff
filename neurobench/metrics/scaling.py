"""Exact power-of-two rescaling of arrays whose magnitude would overflow or underflow.

Multiplying by a power of two changes only the exponent of every value, so it is exact (no
rounding) and every later floating-point operation on the rescaled values rounds exactly as it
would have on the originals, short of overflow and underflow. Activations of 1e20 (their squares
overflow float32) or 1e-25 (their squares underflow it) are rescaled to a largest magnitude in
[0.5, 1); what depends on the scale is adjusted to match (ridge penalties by the square of the
factor, weights by the factor), and what does not (correlation or cosine RDMs, rank comparisons)
is unchanged. Values already in the safe range are left exactly as they are.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["SAFE_MAGNITUDE", "max_abs", "power_of_two_factor", "rescaled"]

SAFE_MAGNITUDE = (2.0 ** -40, 2.0 ** 40)  # largest |value| outside this range is rescaled


def max_abs(x) -> float:
    """The largest finite |value| of a tensor or array (0.0 for an empty or all-zero one),
    without an |x|-sized temporary."""
    if isinstance(x, torch.Tensor):
        if x.numel() == 0:
            return 0.0
        lo, hi = torch.aminmax(x.detach())
        return max(abs(float(lo)), abs(float(hi)))
    a = np.asarray(x)
    if a.size == 0:
        return 0.0
    return max(abs(float(np.min(a))), abs(float(np.max(a))))


def power_of_two_factor(largest: float, safe: tuple[float, float] = SAFE_MAGNITUDE) -> float:
    """1.0 when `largest` is 0, not finite, or within `safe`; else 2**-e with `largest * 2**-e`
    in [0.5, 1)."""
    if not math.isfinite(largest) or largest == 0.0 or safe[0] <= largest <= safe[1]:
        return 1.0
    _mantissa, exponent = math.frexp(largest)
    return math.ldexp(1.0, -exponent)


def rescaled(x: torch.Tensor, safe: tuple[float, float] = SAFE_MAGNITUDE) -> tuple[torch.Tensor, float]:
    """(x * factor, factor): `x` itself with factor 1.0 when its magnitude is safe."""
    factor = power_of_two_factor(max_abs(x), safe)
    return (x if factor == 1.0 else x * factor), factor
