"""Layer selection without peeking, shared by the RSA kinds: the stimuli are split in two seeded
halves; the layer (and, for time-resolved data, the time window) that scores best on the
selection half is scored on the held-out half only."""

from __future__ import annotations

import numpy as np


def half_split(n_stimuli: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(selection half, held-out half): sorted stimulus indices from a seeded permutation; the
    held-out half gets the extra stimulus when n is odd."""
    order = np.random.default_rng(seed).permutation(n_stimuli)
    return np.sort(order[: n_stimuli // 2]), np.sort(order[n_stimuli // 2:])
