"""Export stored per-target results: tables (CSV, Parquet) and, for fMRI voxels, NIfTI brain maps.

`export_targets(model, benchmark, format=..., out=...)` reads the latest stored result of a model
on a benchmark (`ResultStore.targets`: the sidecar, checksum verified) and writes

- `csv` / `parquet`: one row per (layer, subject, target) with `layer, subject, target, r,
  ceiling, normalized, alpha, usable` and the dataset's target labels (voxel indices, voxel id,
  sensor and time);
- `nifti`: for one layer (the result's best layer unless `layer` is given) and every subject
  whose targets have voxel coordinates, two volumes in the subject's space, held-out r
  (`..._r.nii.gz`) and the normalised score (`..._normalized.nii.gz`), NaN outside the targets,
  with the affine the benchmark recorded (NSD: the func1pt8mm ROI mask's); a hierarchy result
  (`hierarchy.*-spatial`) adds a third, the relative depth of each voxel's best layer
  (`..._best_depth.nii.gz`, the same for every layer); with `plot=True` also nilearn
  glass-brain drawings of each (PNG and SVG).

The volumes are in each subject's native space; nilearn's glass brain draws them on its MNI
outline, so the outline is only a guide to where the voxels are.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from .errors import InvalidInputError
from .store import ResultStore, StoredTargets

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "nifti")
MAP_VALUES = ("r", "normalized")
OPTIONAL_MAP_VALUES = ("best_depth",)  # per-target values drawn when a result's table has them


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "x"


def target_volumes(stored: StoredTargets, layer: str) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """{(subject, value): (volume float32 NaN outside the targets, affine)} for one layer."""
    if not stored.space:
        raise InvalidInputError(
            f"{stored.result['benchmark']}: its targets have no voxel coordinates and volume (the benchmark records "
            "none: sensors, neurons or voxels without a NIfTI space); export --format csv or parquet instead")
    frame = stored.frame[stored.frame["layer"] == layer]
    if frame.empty:
        raise InvalidInputError(f"no targets of layer {layer!r}; layers: {list(dict.fromkeys(stored.frame['layer']))}")
    out = {}
    for subject, space in stored.space.items():
        rows = frame[frame["subject"] == subject]
        if rows.empty:
            continue
        ijk = rows[space["columns"]].to_numpy(dtype=np.int64)
        shape = tuple(int(n) for n in space["shape"])
        if (ijk < 0).any() or (ijk >= np.asarray(shape)).any():
            raise InvalidInputError(f"{subject}: voxel indices outside the recorded volume {shape}")
        for value in MAP_VALUES + tuple(v for v in OPTIONAL_MAP_VALUES if v in rows):
            vol = np.full(shape, np.nan, dtype=np.float32)
            vol[tuple(ijk.T)] = rows[value].to_numpy(dtype=np.float32)
            out[(subject, value)] = (vol, np.asarray(space["affine"], dtype=np.float64))
    return out


def _write_nifti(stored: StoredTargets, layer: str, folder: Path, plot: bool) -> list[Path]:
    import nibabel as nib

    folder.mkdir(parents=True, exist_ok=True)
    res = stored.result
    stem = f"{_safe(res['model'])}_{_safe(res['benchmark'])}_{_safe(layer)}"
    written = []
    for (subject, value), (vol, affine) in target_volumes(stored, layer).items():
        img = nib.Nifti1Image(vol, affine)
        img.header["descrip"] = f"neurobench {value} {res['benchmark']}"[:79].encode()
        img.header.set_intent("none", name=value[:15])
        path = folder / f"{stem}_{_safe(subject)}_{value}.nii.gz"
        nib.save(img, path)
        written.append(path)
        if plot:
            shown = nib.Nifti1Image(np.nan_to_num(vol, nan=0.0), affine)  # no data drawn as 0, as nilearn would
            written += glass_brain(shown, path, f"{res['model']} {layer} {subject}: {value}")
    return written


def glass_brain(img, path: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from nilearn import plotting

    display = plotting.plot_glass_brain(img, colorbar=True, plot_abs=False, title=title, cmap="RdBu_r")
    out = []
    for ext in ("png", "svg"):
        target = path.with_name(path.name.replace(".nii.gz", f"_glass.{ext}"))
        display.savefig(str(target))
        out.append(target)
    display.close()
    plt.close("all")
    return out


def export_targets(model: str, benchmark: str, *, out: str | Path, format: str = "csv", layer: str | None = None,
                   plot: bool = False, store: ResultStore | str | Path | None = None) -> list[Path]:
    """Write the stored per-target values of `model` on `benchmark` (module docstring); returns
    the files written. `out` is a file for csv/parquet and a folder for nifti."""
    if format not in FORMATS:
        raise InvalidInputError(f"unknown export format {format!r}; formats: {list(FORMATS)}")
    if plot and format != "nifti":
        raise InvalidInputError("plot=True draws brain maps: use it with format='nifti'")
    st = store if isinstance(store, ResultStore) else ResultStore(store)
    out = Path(out)
    if format == "nifti":
        stored = st.targets(model, benchmark)
        return _write_nifti(stored, layer or stored.result["best_layer"], out, plot)
    stored = st.targets(model, benchmark, layer)
    out.parent.mkdir(parents=True, exist_ok=True)
    if format == "csv":
        stored.frame.to_csv(out, index=False)
    else:
        stored.frame.to_parquet(out, index=False)
    log.info("wrote %d per-target rows of %s on %s to %s", len(stored.frame), model, benchmark, out)
    return [out]
