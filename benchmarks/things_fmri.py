"""THINGS-fMRI (Hebart et al. 2023, THINGS-data): single-trial responses of 3 subjects to 8,740 THINGS images.

Each subject saw 8,640 training images (720 concepts x 12 images) once and 100 test images 12
times (once per session). The release's table format (`betas_csv.zip` on figshare) holds per
subject `sub-0X_ResponseData.h5` (single-trial betas, voxels x trials, written by pandas
`to_hdf` in its fixed format, read here with h5py), `sub-0X_VoxelMetadata.csv` (ROI membership
dummy columns, noise ceilings) and `sub-0X_StimulusMetadata.csv` (one row per trial: trial_type,
session, run, stimulus file, concept). Images come from the THINGS image archive
(`neurobench.things_images`).

- `things-fmri.<roi>-encoding`: ridge from layer activations to each ROI voxel, trained on the
  training images (single trials), tested on the 100 test images (mean of their 12 repetitions);
  normalised by the release's per-voxel noise ceiling `nc_testset` (percent of the variance of
  the 12-trial mean a perfect model could explain, /100), or by split-half reliability of the
  test repetitions if a release lacks it; subjects combined with `combine_subjects`.
- `things-fmri.<roi>-rsa`: RDMs (1 - Pearson over ROI voxels) of the 100 test images, one per
  subject, Kendall tau-a, Nili et al. (2014) ceiling over the 3 subjects.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch

from neurobench.benchmarks import things_images
from neurobench.data.assemblies import by_repetition
from neurobench.data.files import file_state, unpack
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import AlignmentError, DataFormatError, InvalidInputError
from neurobench.kinds.encoding import REDUCTIONS
from neurobench.kinds.per_subject import PerSubjectEncodingBenchmark, SubjectResponses
from neurobench.kinds.rsa import RSABenchmark
from neurobench.kinds.targets import KeepsLayerTargets
from neurobench.metrics.rdm import compute_rdms
from neurobench.options import option
from neurobench.registry import register_benchmark

log = logging.getLogger(__name__)

DATASET = "things_fmri"
ARCHIVE = "betas_csv.zip"
SUBJECTS = ("01", "02", "03")
# benchmark ROI -> the release's dummy-coded VoxelMetadata columns (union over hemispheres)
ROIS: dict[str, tuple[str, ...]] = {
    "V1": ("V1",), "V2": ("V2",), "V3": ("V3",), "hV4": ("hV4",),
    "LOC": ("lLOC", "rLOC"), "FFA": ("lFFA", "rFFA"), "PPA": ("lPPA", "rPPA"), "EBA": ("lEBA", "rEBA"),
    "IT": ("IT",),
}
NC_COLUMN = "nc_testset"  # noise ceiling (%) of the mean of the 12 test repetitions
NOT_ROI = {"voxel_id", "subject_id", "voxel_x", "voxel_y", "voxel_z", "nc_singletrial", "nc_testset",
           "splithalf_uncorrected", "splithalf_corrected", "prf-eccentricity", "prf-polarangle",
           "prf-rsquared", "prf-size"}
TRIAL_TYPES = ("train", "test")  # catch trials are not in the table release; dropped if present
H5_KEY = "ResponseData"
DATA_FILES = ((DATASET, ARCHIVE), (things_images.DATASET, things_images.ARCHIVE))


# ----------------------------------------------------------------------------- files


def betas_folder() -> Path:
    """The unpacked `betas_csv` folder (the archive holds `betas_csv/sub-0X_...`)."""
    root = unpack(DATASET, ARCHIVE)
    return root / "betas_csv" if (root / "betas_csv").is_dir() else root


def subject_files(folder: Path, subject: str) -> dict[str, Path]:
    """The three files of one subject; a missing subject names the subjects the archive has."""
    files = {kind: folder / f"sub-{subject}_{kind}" for kind in
             ("ResponseData.h5", "VoxelMetadata.csv", "StimulusMetadata.csv")}
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        have = sorted({p.name.split("_")[0].removeprefix("sub-") for p in folder.glob("sub-*_*")})
        raise DataFormatError(f"THINGS-fMRI subject {subject!r}: {', '.join(missing)} not in {folder}; "
                                f"subjects there: {have}")
    return files


def read_stimulus_metadata(path: Path) -> pd.DataFrame:
    """One row per trial, in the order of the response columns."""
    table = pd.read_csv(path)
    need = {"trial_type", "stimulus"}
    if not need <= set(table.columns):
        raise DataFormatError(f"{path.name}: expected columns {sorted(need)} (and session, run, concept), "
                                f"found {list(table.columns)[:12]}; is it another release?")
    return table


def read_voxel_metadata(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """voxel_id, the ROI columns asked for, and the noise ceiling if the release has one."""
    header = list(pd.read_csv(path, nrows=0).columns)
    if "voxel_id" not in header:
        raise DataFormatError(f"{path.name}: no 'voxel_id' column (found {header[:8]}); is it another release?")
    missing = [c for c in columns if c not in header]
    if missing:
        rois = [c for c in header if c not in NOT_ROI and not c.startswith("glasser-")]
        raise DataFormatError(f"{path.name} has no ROI column {missing}; ROI columns there: {rois}")
    use = ["voxel_id", *columns] + ([NC_COLUMN] if NC_COLUMN in header else [])
    return pd.read_csv(path, usecols=use)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _labels(node: h5py.Dataset) -> list[str] | None:
    """A pandas index stored as a plain array; None when pandas pickled it (mixed-type labels,
    as the release's column labels 'voxel_id', 0, 1, ... are): those are never unpickled."""
    if _text(node.attrs.get("CLASS", b"")) == "VLARRAY" or node.dtype.kind == "O":
        return None
    return [_text(v) for v in node[()]]


def _block_values(group: h5py.Group, i: int) -> h5py.Dataset:
    node = group[f"block{i}_values"]
    if node.ndim != 2:
        raise DataFormatError(f"{group.file.filename}: block{i}_values has shape {node.shape}, expected 2-D")
    return node


@dataclass
class ResponseTable:
    """The response frame's layout: voxel ids per row, and where the trial columns are."""

    path: Path
    voxel_ids: np.ndarray
    trial_block: int
    n_trials: int
    transposed: bool


def response_layout(path: Path) -> ResponseTable:
    """Find the voxel_id column and the block of trial columns in the pandas fixed-format frame."""
    with h5py.File(path, "r") as f:
        keys = list(f.keys())
        key = H5_KEY if H5_KEY in f else (keys[0] if len(keys) == 1 else None)
        if key is None or not isinstance(f[key], h5py.Group) or _text(f[key].attrs.get("pandas_type", "")) != "frame":
            raise DataFormatError(f"{path.name}: expected one pandas frame stored under {H5_KEY!r}, found keys {keys}")
        group = f[key]
        nblocks = int(group.attrs.get("nblocks", 0))
        voxel_ids, trial_blocks = None, []
        for i in range(nblocks):
            labels = _labels(group[f"block{i}_items"])
            values = _block_values(group, i)
            transposed = bool(values.attrs.get("transposed", True))
            if labels == ["voxel_id"]:
                voxel_ids = np.asarray(values[()]).reshape(-1)
            elif values.dtype.kind == "f":
                trial_blocks.append((i, labels, transposed, values.shape))
        if voxel_ids is None or len(trial_blocks) != 1:
            raise DataFormatError(f"{path.name}: expected a 'voxel_id' column and one block of float trial columns "
                                    f"(pandas fixed format), found {nblocks} blocks; is it another release?")
        i, labels, transposed, shape = trial_blocks[0]
        n_rows, n_trials = shape if transposed else shape[::-1]
        if n_rows != len(voxel_ids):
            raise DataFormatError(f"{path.name}: {n_rows} response rows but {len(voxel_ids)} voxel ids")
        if labels is not None and labels != [str(k) for k in range(n_trials)]:
            raise DataFormatError(f"{path.name}: trial columns are labelled {labels[:5]}..., expected 0..{n_trials - 1}")
    return ResponseTable(path, voxel_ids.astype(np.int64), i, int(n_trials), transposed)


def read_responses(layout: ResponseTable, rows: np.ndarray) -> np.ndarray:
    """Responses (len(rows), trials) of the given sorted response rows, read in contiguous runs."""
    with h5py.File(layout.path, "r") as f:
        node = f[H5_KEY if H5_KEY in f else next(iter(f.keys()))][f"block{layout.trial_block}_values"]
        out = np.empty((len(rows), layout.n_trials), dtype=np.float32)
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)
        ends = np.append(starts[1:], len(rows))
        for s, e in zip(starts, ends):
            a, b = int(rows[s]), int(rows[e - 1]) + 1
            out[s:e] = node[a:b] if layout.transposed else node[:, a:b].T
    return out


# ----------------------------------------------------------------------------- per-subject data


@dataclass
class SubjectROI:
    """One subject's ROI responses, one row per image (sorted ids), with the dataset's split."""

    subject: str
    stimulus_ids: list[str]
    train_ids: list[str]
    test_ids: list[str]
    responses: np.ndarray  # (images, repetitions, voxels); NaN where an image has fewer repetitions
    noise_ceiling: np.ndarray | None  # (voxels,) in r^2 units, or None
    voxel_ids: np.ndarray


def _trial_ids(stim: pd.DataFrame, name: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Kept trial positions, and the train / test image ids (each image on one side only)."""
    keep = np.flatnonzero(stim["trial_type"].isin(TRIAL_TYPES).to_numpy())
    ids = [things_images.image_id(s) for s in stim["stimulus"].to_numpy()[keep]]
    kinds = stim["trial_type"].to_numpy()[keep]
    train = sorted({i for i, k in zip(ids, kinds) if k == "train"})
    test = sorted({i for i, k in zip(ids, kinds) if k == "test"})
    both = sorted(set(train) & set(test))
    if both:
        raise DataFormatError(f"{name}: images shown both as train and test trials, e.g. {both[:3]}")
    if not train or not test:
        raise DataFormatError(f"{name}: {len(train)} train and {len(test)} test images; both must be > 0")
    return keep, train, test


def _per_image(values: np.ndarray, trial_ids: list[str], order: list[str], average: bool) -> np.ndarray:
    """(voxels, trials) -> (images, repetitions, voxels), NaN-padded; or (images, 1, voxels) means."""
    pos = {s: k for k, s in enumerate(order)}
    img = np.array([pos[s] for s in trial_ids])
    counts = np.bincount(img, minlength=len(order))
    if average:
        sums = np.zeros((len(order), values.shape[0]), dtype=np.float64)
        np.add.at(sums, img, values.T.astype(np.float64))
        return (sums / counts[:, None])[:, None, :]
    ids, out = by_repetition(values.T, trial_ids)
    if list(ids) != list(order):
        raise AlignmentError(f"trials show {len(ids)} distinct images, the split lists {len(order)}")
    return out


@functools.lru_cache(maxsize=3)
def _load_subject_roi(keys: tuple, subject: str, columns: tuple[str, ...], repeats: str) -> SubjectROI:
    resp_path, vox_path, stim_path = (Path(k[0]) for k in keys)
    stim = read_stimulus_metadata(stim_path)
    layout = response_layout(resp_path)
    if layout.n_trials != len(stim):
        raise AlignmentError(f"{resp_path.name} has {layout.n_trials} trial columns but {stim_path.name} lists "
                             f"{len(stim)} trials: the files come from different releases or subjects")
    vox = read_voxel_metadata(vox_path, columns)
    in_roi = (vox[list(columns)].fillna(0).to_numpy() != 0).any(axis=1)
    if not in_roi.any():
        raise DataFormatError(f"{vox_path.name}: no voxel is flagged in {list(columns)}")
    roi_ids = vox["voxel_id"].to_numpy()[in_roi].astype(np.int64)
    row_of = {int(v): r for r, v in enumerate(layout.voxel_ids)}
    absent = [int(v) for v in roi_ids if int(v) not in row_of]
    if absent:
        raise DataFormatError(f"{vox_path.name}: ROI voxels {absent[:5]} have no row in {resp_path.name}")
    order = np.argsort([row_of[int(v)] for v in roi_ids], kind="stable")
    roi_ids = roi_ids[order]
    rows = np.array([row_of[int(v)] for v in roi_ids])
    keep, train, test = _trial_ids(stim, stim_path.name)
    values = read_responses(layout, rows)[:, keep]
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        log.warning("THINGS-fMRI sub-%s: dropping %d ROI voxels with non-finite responses", subject, (~finite).sum())
        values, roi_ids, order = values[finite], roi_ids[finite], order[finite]
    trial_ids = [things_images.image_id(s) for s in stim["stimulus"].to_numpy()[keep]]
    ids = sorted(train + test)
    nc = None
    if NC_COLUMN in vox.columns:
        nc = vox[NC_COLUMN].to_numpy(dtype=np.float64)[in_roi][order] / 100.0
    log.info("THINGS-fMRI sub-%s %s: %d voxels, %d train + %d test images", subject, "+".join(columns),
             len(roi_ids), len(train), len(test))
    average = repeats == "mean" or (repeats == "auto" and nc is not None)
    return SubjectROI(subject, ids, train, test, _per_image(values, trial_ids, ids, average), nc, roi_ids)


def load_subject_roi(subject: str, roi: str, repeats: str = "auto") -> SubjectROI:
    """One subject's responses in one benchmark ROI (cached per file state). Repetitions are
    averaged with `repeats="mean"`, and with "auto" when the release has a noise ceiling (else they
    are kept, NaN-padded, for a split-half ceiling)."""
    if roi not in ROIS:
        raise InvalidInputError(f"unknown THINGS-fMRI ROI {roi!r}; known: {list(ROIS)}")
    files = subject_files(betas_folder(), subject)
    keys = file_state(*(files[k] for k in ("ResponseData.h5", "VoxelMetadata.csv", "StimulusMetadata.csv")))
    return _load_subject_roi(keys, subject, ROIS[roi], repeats)


def image_ids(subjects=SUBJECTS) -> tuple[list[str], list[str]]:
    """(all images, test images) over the subjects' stimulus metadata, sorted."""
    folder = betas_folder()
    every, tests = set(), set()
    for s in subjects:
        path = subject_files(folder, s)["StimulusMetadata.csv"]
        _keep, train, test = _trial_ids(read_stimulus_metadata(path), path.name)
        every |= set(train) | set(test)
        tests |= set(test)
    return sorted(every), sorted(tests)


def all_stimuli(subjects=SUBJECTS) -> StimulusSet:
    every, tests = image_ids(subjects)
    stim = things_images.load_things_stimuli(every, f"things-fmri-{len(every)}")
    stim.labels["split"] = np.where(np.isin(stim.ids, tests), "test", "train")
    return stim


def test_stimuli(subjects=SUBJECTS) -> StimulusSet:
    _every, tests = image_ids(subjects)
    return things_images.load_things_stimuli(tests, f"things-fmri-test{len(tests)}")


# ----------------------------------------------------------------------------- benchmarks

NC_NOTE = ("THINGS-fMRI noise ceiling nc_testset/100 per voxel (variance of the 12-repetition test mean "
           "a perfect model could explain)")


VOXEL_SIZE_MM = 2.0  # the release's description: 3 T, 2 mm isotropic


def voxel_targets(subject: str, voxel_ids: np.ndarray) -> tuple[pd.DataFrame, dict | None]:
    """Per-target labels (voxel_id and, where the release has them, voxel_x/y/z indices) and the
    subject's target space for brain maps. The table release has no NIfTI header: the affine is
    the 2 mm isotropic voxel grid with its origin at voxel (0, 0, 0), and says so."""
    path = subject_files(betas_folder(), subject)["VoxelMetadata.csv"]
    coords = ["voxel_x", "voxel_y", "voxel_z"]
    header = list(pd.read_csv(path, nrows=0).columns)
    targets = pd.DataFrame({"voxel_id": voxel_ids})
    if not all(c in header for c in coords):
        return targets, None
    table = pd.read_csv(path, usecols=["voxel_id", *coords]).set_index("voxel_id").reindex(voxel_ids)
    if table.isna().any().any():
        raise DataFormatError(f"{path.name}: voxel ids without coordinates, e.g. "
                              f"{table.index[table.isna().any(axis=1)][:5].tolist()}")
    for c in coords:
        targets[c] = table[c].to_numpy(dtype=np.int64)
    affine = np.diag([VOXEL_SIZE_MM] * 3 + [1.0]).tolist()
    shape = [int(targets[c].max()) + 1 for c in coords]
    return targets, {"columns": coords, "shape": shape, "affine": affine,
                     "source": (f"{path.name} voxel_x/y/z on the release's 2 mm grid; the table release carries no "
                                "NIfTI header, so the origin is voxel (0, 0, 0), not scanner or MNI coordinates")}


class ThingsFmriEncoding(KeepsLayerTargets, PerSubjectEncodingBenchmark):
    """Ridge encoding per subject on the dataset's split (train: single-trial training images; test: the
    100 test images' repetition means), normalised by the released voxel noise ceiling, subjects combined.

    Parameters
    ----------
    subjects : list of str or None
        Subjects to score, among 01, 02, 03 (None: all three).
    """

    splits = None  # the dataset defines the test set
    reduction = option("srp", REDUCTIONS)
    datasets, data_files = (DATASET, things_images.DATASET), DATA_FILES

    def __init__(self, roi: str, **options):
        self.roi = roi
        self.identifier = f"things-fmri.{roi.lower()}-encoding"
        self.description = f"THINGS-fMRI {roi} ({'+'.join(ROIS[roi])}), 3 subjects; ridge encoding, noise-ceiling normalised"
        self._stimuli = None
        self.configure(**options)

    def available_subjects(self):
        return SUBJECTS

    def subject_label(self, subject: str) -> str:
        return f"sub-{subject}"

    def stimuli(self) -> StimulusSet:
        if self._stimuli is None:
            self._stimuli = all_stimuli(self.selected_subjects())
        return self._stimuli

    def subject_responses(self, subject: str, **_run) -> SubjectResponses:
        data = load_subject_roi(subject, self.roi)
        targets, space = voxel_targets(subject, data.voxel_ids)
        return SubjectResponses(subject, data.stimulus_ids, data.responses, test_ids=data.test_ids,
                                ceiling=data.noise_ceiling,
                                ceiling_note=NC_NOTE if data.noise_ceiling is not None else None,
                                targets=targets, info={"n_voxels": len(data.voxel_ids), "space": space})

    def finish(self, scores, per_subject):
        scores = super().finish(scores, per_subject)  # KeepsLayerTargets
        scores.provenance.update({"roi": self.roi, "roi_columns": list(ROIS[self.roi]),
                                  "n_voxels": {s: i["n_voxels"] for s, i in scores.provenance["subject_info"].items()}})
        return scores


def subject_rdms(roi: str, subjects=SUBJECTS) -> tuple[list[str], np.ndarray, str]:
    """One RDM per subject (1 - Pearson over ROI voxels) of the test images' repetition means."""
    rdms, ids = [], None
    for s in subjects:
        data = load_subject_roi(s, roi, repeats="mean")
        if ids is None:
            ids = data.test_ids
        elif data.test_ids != ids:
            raise AlignmentError(f"sub-{s}'s test images differ from sub-{subjects[0]}'s "
                                 f"({sorted(set(data.test_ids) ^ set(ids))[:5]})")
        rows = [data.stimulus_ids.index(t) for t in ids]
        with np.errstate(all="ignore"):
            means = np.nanmean(data.responses[rows], axis=1)
        means = means[:, np.isfinite(means).all(axis=0) & (np.nanstd(means, axis=0) > 0)]
        rdms.append(compute_rdms(torch.as_tensor(means), "correlation", dtype=torch.float64).cpu().numpy())
    return list(ids), np.stack(rdms), ""


def _register(roi: str) -> None:
    cols = "+".join(ROIS[roi])

    def encoding():
        return ThingsFmriEncoding(roi)

    def rsa():
        bench = RSABenchmark(
            identifier=f"things-fmri.{roi.lower()}-rsa",
            description=f"THINGS-fMRI {roi} ({cols}), 100 test images, 3 subjects; 1-Pearson RDMs, Kendall tau-a",
            datasets=(DATASET, things_images.DATASET), load_stimuli=test_stimuli,
            load_data=functools.partial(subject_rdms, roi), comparator="tau_a",
        )
        bench.data_files = DATA_FILES
        return bench

    encoding.__doc__ = f"THINGS-fMRI {roi} ({cols}): ridge encoding, 8,640 train / 100 test images, 3 subjects"
    rsa.__doc__ = f"THINGS-fMRI {roi} ({cols}): RSA on the 100 test images, tau-a, Nili ceiling over 3 subjects"
    register_benchmark(f"things-fmri.{roi.lower()}-encoding", dataset=DATASET, modality="fmri")(encoding)
    register_benchmark(f"things-fmri.{roi.lower()}-rsa", dataset=DATASET, modality="fmri")(rsa)


for _roi in ROIS:
    _register(_roi)
