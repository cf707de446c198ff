"""NeuralAssembly helpers: labelled xarray arrays (presentation x repetition x neuroid).

Alignment with a stimulus set is always by the `stimulus_id` coordinate, never by position.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..errors import AlignmentError, InvalidInputError

DIMS = ("presentation", "repetition", "neuroid")


def repeated_assembly(data, stimulus_ids: Sequence[str], neuroid_ids: Sequence[str] | None = None,
                      **neuroid_coords) -> xr.DataArray:
    """Wrap (presentations, repetitions, neuroids) responses with their stimulus and neuroid ids."""
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise InvalidInputError(f"responses must be (presentations, repetitions, neuroids), got shape {arr.shape}")
    if len(stimulus_ids) != arr.shape[0]:
        raise InvalidInputError(f"{arr.shape[0]} presentations but {len(stimulus_ids)} stimulus ids")
    neuroid_ids = [f"n{i}" for i in range(arr.shape[2])] if neuroid_ids is None else list(neuroid_ids)
    coords = {"stimulus_id": ("presentation", [str(s) for s in stimulus_ids]),
              "neuroid_id": ("neuroid", neuroid_ids)}
    coords.update({k: ("neuroid", np.asarray(v)) for k, v in neuroid_coords.items()})
    return xr.DataArray(arr, dims=DIMS, coords=coords)


def align_to(assembly: xr.DataArray, stimulus_ids: Sequence[str], what: str = "assembly") -> xr.DataArray:
    """The assembly's presentations reordered to `stimulus_ids` (each id exactly once)."""
    if "stimulus_id" not in assembly.coords:
        raise InvalidInputError(f"{what} has no 'stimulus_id' coordinate on its presentation dimension")
    have = [str(s) for s in assembly["stimulus_id"].values]
    if len(set(have)) != len(have):
        raise InvalidInputError(f"{what}: stimulus ids repeat along 'presentation'; put repeats on 'repetition'")
    want = [str(s) for s in stimulus_ids]
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    if missing or extra:
        raise AlignmentError(
            f"{what} and the stimulus set describe different stimuli: missing from the {what}: {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}; not in the stimulus set: {extra[:5]}{' ...' if len(extra) > 5 else ''}"
        )
    index = {s: i for i, s in enumerate(have)}
    return assembly.isel(presentation=[index[s] for s in want])


def repetition_slots(trial_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For trials (in presentation order) showing `trial_ids`: the sorted distinct ids, each
    trial's row among them, its repetition slot (0 for the first showing of its stimulus) and
    the number of showings of each id."""
    ids, rows, counts = np.unique(np.asarray(trial_ids), return_inverse=True, return_counts=True)
    rows = rows.reshape(-1)
    order = np.argsort(rows, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slots = np.empty(len(rows), dtype=np.int64)
    slots[order] = np.arange(len(rows)) - np.repeat(starts, counts)
    return ids, rows, slots, counts


def by_repetition(values: np.ndarray, trial_ids, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Single trials (trials x targets) -> (sorted distinct ids, stimuli x repetitions x targets),
    repetitions in presentation order, NaN where a stimulus was shown fewer times."""
    ids, rows, slots, counts = repetition_slots(trial_ids)
    out = np.full((len(ids), int(counts.max()), values.shape[1]), np.nan, dtype=dtype)
    out[rows, slots] = values
    return ids, out
