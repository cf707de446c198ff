"""Input checks shared by every topographic signature: shapes, finiteness, positions, constant units."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidInputError, NoSheetPositionsError

log = logging.getLogger(__name__)

# A unit whose standard deviation over stimuli is below this fraction of the layer's typical
# standard deviation (or exactly zero) is "constant": its correlations and t values are undefined.
CONSTANT_REL_TOL = 1e-7

NO_POSITIONS_HINT = (
    "Topographic signatures need each unit's position on the cortical sheet. Adapters declare them "
    "by returning an (n_units, 2) array from `Adapter.sheet_positions(layer)` (TopoNets lay output "
    "channels on the TopoLoss grid: `neurobench.sheet.sheet_positions(n_units)`). For a model "
    "without a sheet, score the `shuffled-positions` control explicitly by passing "
    "`neurobench.topography.shuffled_positions(neurobench.sheet.sheet_positions(n_units), seed)`, "
    "or pick a layer that has positions."
)


def require_positions(positions, n_units: int, layer: str | None = None) -> np.ndarray:
    """Positions as a float64 (n_units, d) array; NoSheetPositionsError when there are none."""
    where = f"layer {layer!r}" if layer else "this layer"
    if positions is None:
        raise NoSheetPositionsError(f"{where} has no sheet positions. {NO_POSITIONS_HINT}")
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim == 1:
        pos = pos[:, None]
    if pos.ndim != 2 or pos.shape[0] != n_units:
        raise InvalidInputError(
            f"positions for {where} must have shape (n_units={n_units}, d), got {pos.shape}; "
            "one row of coordinates per unit, in the order of the response columns"
        )
    if pos.shape[1] == 0:
        raise NoSheetPositionsError(f"{where} has empty (d=0) positions. {NO_POSITIONS_HINT}")
    if not np.isfinite(pos).all():
        raise InvalidInputError(f"positions for {where} contain NaN or inf; drop those units first")
    return pos


def as_responses(responses, name: str = "responses") -> np.ndarray:
    """(n_stimuli, n_units) float64 array with finite values and at least 2 stimuli."""
    if isinstance(responses, torch.Tensor):
        responses = responses.detach().cpu().numpy()
    x = np.asarray(responses, dtype=np.float64)
    if x.ndim != 2:
        raise InvalidInputError(
            f"{name} must be 2-D (n_stimuli, n_units), got shape {x.shape}; flatten spatial maps "
            "(or average them) before scoring topography"
        )
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise InvalidInputError(f"{name} needs >= 2 stimuli and >= 1 unit, got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=0).sum())
        raise InvalidInputError(f"{name} contain NaN or inf in {bad} unit(s); remove or impute them")
    return x


def constant_units(x: np.ndarray) -> np.ndarray:
    """Boolean mask of units whose response does not vary over stimuli (x: stimuli x units)."""
    sd = x.std(axis=0)
    scale = float(np.median(sd[sd > 0])) if (sd > 0).any() else 0.0
    scale = max(scale, float(np.abs(x).max()) * 1e-12 if x.size else 0.0)
    return sd <= CONSTANT_REL_TOL * scale


@dataclass(frozen=True)
class UnitMask:
    """Which units enter correlation-based statistics, and how many were dropped as constant."""

    valid: np.ndarray  # (n_units,) bool
    n_constant: int

    @classmethod
    def of(cls, x: np.ndarray) -> UnitMask:
        const = constant_units(x)
        n_const = int(const.sum())
        if n_const:
            log.info("excluding %d constant unit(s) of %d", n_const, x.shape[1])
        return cls(valid=~const, n_constant=n_const)


def as_labels(labels, n_stimuli: int) -> np.ndarray:
    """1-D label array, one label per stimulus."""
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n_stimuli:
        raise InvalidInputError(
            f"labels must be 1-D with one entry per stimulus ({n_stimuli}), got shape {lab.shape}"
        )
    return lab


def check_categories(labels: np.ndarray, categories=None) -> list:
    """Categories to test; each needs >= 2 stimuli in it and >= 2 outside it."""
    uniq = list(dict.fromkeys(labels.tolist()))
    cats = uniq if categories is None else list(categories)
    if not cats:
        raise InvalidInputError("no categories to test: labels are empty")
    for c in cats:
        n_in = int((labels == c).sum())
        n_out = labels.shape[0] - n_in
        if n_in < 2 or n_out < 2:
            counts = {u: int((labels == u).sum()) for u in uniq}
            raise InvalidInputError(
                f"category {c!r} has {n_in} stimuli in it and {n_out} outside; a two-sample t test "
                f"needs at least 2 on each side. Label counts: {counts}. Merge small categories or "
                "pass `categories=` to test only the well-sampled ones"
            )
    return cats


def rng_for(seed: int) -> np.random.Generator:
    """One seeded generator per call so results never depend on global state."""
    return np.random.default_rng(np.random.SeedSequence(int(seed)))


def permutations(n: int, n_perm: int, seed: int) -> np.ndarray:
    """(n_perm, n) int64 array of seeded permutations of range(n)."""
    rng = rng_for(seed)
    return np.stack([rng.permutation(n) for _ in range(n_perm)]) if n_perm else np.empty((0, n), int)


def perm_p_value(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p-value, (1 + #{null >= observed}) / (1 + n): never 0, valid at any n."""
    null = np.asarray(null, dtype=np.float64)
    return float((1 + np.sum(null >= observed - 1e-12 * max(1.0, abs(observed)))) / (1 + null.size))


def shuffled_positions(positions, seed: int = 0) -> np.ndarray:
    """The `shuffled-positions` control: the same set of positions, randomly reassigned to units."""
    pos = np.asarray(positions)
    return pos[rng_for(seed).permutation(pos.shape[0])]


# Below this many elements per torch op, one CPU thread is faster than several: on a busy
# machine, parallel regions of tiny ops can stall for milliseconds each (seen: index_add_ 1000x).
SMALL_WORK = 1 << 20


@contextlib.contextmanager
def cpu_threads_for(n_elements: int, device: torch.device) -> Iterator[None]:
    """Run small CPU work single-threaded; restores the previous thread count afterwards."""
    if device.type != "cpu" or n_elements >= SMALL_WORK or torch.get_num_threads() == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
