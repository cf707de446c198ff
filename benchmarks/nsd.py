"""Natural Scenes Dataset (Allen et al. 2022): per-ROI ridge encoding of single-trial fMRI betas.

`nsd.<roi>-encoding` for v1, v2, v3, hv4 (prf-visualrois; ventral + dorsal merged), ffa (FFA-1 +
FFA-2), ofa, ppa, opa and eba (floc localiser ROIs). Per subject, only that ROI's voxels are read
from the func1pt8mm `betas_fithrf_GLMdenoise_RR` betas, one session at a time (int16 / 300 = %
signal change), z-scored per voxel within each session (the NSD convention) and arranged as
images x repetitions x voxels (NaN where an image has fewer repeats). The test set is the shared
images the subject saw (`sharedix`), the training set the subject's other images; the ceiling
per voxel is NSD's noise ceiling from `ncsnr`, NC = ncsnr^2 / (ncsnr^2 + mean over test images of
1 / repetitions). Subject scores are combined with `combine_subjects`.

Stimulus ids are `nsd-NNNNN`, the 1-based 73k index used by `nsd_expdesign.mat` (the
`nsd_stim_info_merged.csv` column `nsdId` is the 0-based one, i.e. `nsd-00001` is nsdId 0).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from neurobench.data.assemblies import repetition_slots
from neurobench.data.files import availability, file_state, load_manifest, recorded_digest, resolve
from neurobench.data.matlab import load_mat
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import (
    AlignmentError,
    DataFormatError,
    DataUnavailableError,
    InvalidInputError,
)
from neurobench.kinds.per_subject import PerSubjectEncodingBenchmark, SubjectResponses
from neurobench.kinds.targets import KeepsLayerTargets
from neurobench.options import names, option
from neurobench.registry import register_benchmark

log = logging.getLogger(__name__)

DATASET = "nsd"
SUBJECTS = tuple(f"subj{i:02d}" for i in range(1, 9))
N_SESSIONS = dict(zip(SUBJECTS, (40, 40, 32, 30, 40, 32, 40, 30)))
DESIGN = "nsddata/experiments/nsd/nsd_expdesign.mat"
STIMULI = "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
BETA_DIR = "nsddata_betas/ppdata/{subject}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
NCSNR = BETA_DIR + "/ncsnr.nii.gz"
ROI_MASK = "nsddata/ppdata/{subject}/func1pt8mm/roi/{family}.nii.gz"
ROI_CTAB = "nsddata/freesurfer/{subject}/label/{family}.mgz.ctab"
SESSION_FILE = re.compile(r"/betas_session(\d+)\.(hdf5|nii\.gz)$")
BETA_SCALE = 300.0  # int16 betas are % signal change x 300
TRIAL_CHUNK = 64  # NIfTI betas are read this many trials at a time

# benchmark key -> (display name, ROI file family, label names in the family's .ctab)
REGIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "v1": ("V1", "prf-visualrois", ("V1v", "V1d")),
    "v2": ("V2", "prf-visualrois", ("V2v", "V2d")),
    "v3": ("V3", "prf-visualrois", ("V3v", "V3d")),
    "hv4": ("hV4", "prf-visualrois", ("hV4",)),
    "ffa": ("FFA", "floc-faces", ("FFA-1", "FFA-2")),
    "ofa": ("OFA", "floc-faces", ("OFA",)),
    "ppa": ("PPA", "floc-places", ("PPA",)),
    "opa": ("OPA", "floc-places", ("OPA",)),
    "eba": ("EBA", "floc-bodies", ("EBA",)),
}
CEILING_NOTE = ("NSD noise ceiling per voxel from ncsnr (Allen et al. 2022): NC = ncsnr^2 / (ncsnr^2 + mean over "
                "the test images of 1/repetitions), in r^2 units")


def stimulus_id(index73k: int) -> str:
    """`nsd-00001` for the first of the 73k images (1-based, as in nsd_expdesign.mat)."""
    return f"nsd-{int(index73k):05d}"


# ---------------------------------------------------------------- design ----

@dataclass(frozen=True)
class Design:
    """nsd_expdesign.mat: which image each trial showed, and which images are shared."""

    masterordering: np.ndarray  # (trials,) 1-based column of subjectim shown on each trial
    subjectim: np.ndarray  # (8, images per subject) 1-based 73k ids
    sharedix: np.ndarray  # (1000,) 1-based 73k ids of the images every subject saw

    def trial_images(self, subject: str, session: int, n_trials: int) -> np.ndarray:
        """73k ids (1-based) of one session's trials; sessions are 1-based and equally long."""
        start, stop = (session - 1) * n_trials, session * n_trials
        if stop > len(self.masterordering):
            raise InvalidInputError(
                f"{DESIGN}: masterordering has {len(self.masterordering)} trials, but session {session} of "
                f"{n_trials} trials needs {stop}; are the betas and the design file from the same release?")
        return self.subjectim[SUBJECTS.index(subject), self.masterordering[start:stop] - 1]


def _int_vector(mat: dict, key: str, path: Path) -> np.ndarray:
    values = np.asarray(mat[key], dtype=np.float64)
    flat = values.reshape(-1) if values.ndim <= 2 and min(values.shape, default=1) == 1 else None
    if flat is None or not np.all(np.isfinite(flat)) or np.any(flat != np.round(flat)) or np.any(flat < 1):
        raise DataFormatError(f"{path.name}: {key!r} must be a vector of 1-based indices, got shape {values.shape}")
    return flat.astype(np.int64)


@functools.lru_cache(maxsize=4)
def _read_design(key: tuple) -> Design:
    path = Path(key[0][0])
    mat = load_mat(path, required=("masterordering", "subjectim", "sharedix"))
    subjectim = np.asarray(mat["subjectim"], dtype=np.float64)
    if subjectim.ndim != 2 or subjectim.shape[0] != len(SUBJECTS):
        raise DataFormatError(f"{path.name}: subjectim must be {len(SUBJECTS)} subjects x images, got {subjectim.shape}")
    order = _int_vector(mat, "masterordering", path)
    if order.max() > subjectim.shape[1]:
        raise InvalidInputError(f"{path.name}: masterordering refers to column {order.max()} of subjectim, "
                                f"which has {subjectim.shape[1]}")
    return Design(order, subjectim.astype(np.int64), _int_vector(mat, "sharedix", path))


def load_design() -> Design:
    return _read_design(file_state(resolve(DATASET, DESIGN)))


# --------------------------------------------------------------- stimuli ----

class ImageBrick(Sequence):
    """Images of nsd_stimuli.hdf5 (`imgBrick`, 73k x 425 x 425 x 3 uint8), read one at a time."""

    def __init__(self, path: Path, rows: np.ndarray):
        self.path, self.rows = Path(path), np.asarray(rows, dtype=np.int64)
        self._dataset = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if self._dataset is None:
            import h5py

            self._dataset = h5py.File(self.path, "r")["imgBrick"]
        return np.asarray(self._dataset[int(self.rows[i])])


def _check_brick(path: Path, needed: np.ndarray) -> None:
    import h5py

    with h5py.File(path, "r") as fh:
        if "imgBrick" not in fh:
            raise DataFormatError(f"{path.name} has no dataset 'imgBrick' (it has {sorted(fh)}); another release?")
        ds = fh["imgBrick"]
        if ds.ndim != 4 or ds.shape[3] != 3 or ds.dtype != np.uint8:
            raise DataFormatError(f"{path.name}: imgBrick must be images x height x width x 3 uint8, "
                                    f"got {ds.shape} {ds.dtype}")
        n_images = ds.shape[0]
    beyond = needed[needed > n_images]
    if beyond.size:
        raise AlignmentError(f"the design shows images the stimulus file lacks: {path.name} holds {n_images} "
                             f"images, but trials show {[stimulus_id(i) for i in beyond[:5]]}"
                             f"{' ...' if beyond.size > 5 else ''}")


def _file_digest(name: str) -> str:
    spec = load_manifest(DATASET).file(name)
    return spec.checksum if spec.digest else f"tofu:sha256:{recorded_digest(DATASET, name)}"


def load_stimuli(images73k: Sequence[int]) -> StimulusSet:
    """The given 73k images (1-based ids), lazily read; the content hash comes from the verified
    file's checksum and the ids, so nothing hashes the 37 GB brick."""
    ids73k = np.asarray(sorted(set(int(i) for i in images73k)), dtype=np.int64)
    path = resolve(DATASET, STIMULI)
    _check_brick(path, ids73k)
    ids = [stimulus_id(i) for i in ids73k]
    h = hashlib.sha256(f"image\0nsd-imgBrick\0{_file_digest(STIMULI)}".encode())
    for sid in ids:
        h.update(b"\0id" + sid.encode())
    return StimulusSet("nsd-73k", ids, images=ImageBrick(path, ids73k - 1), _hash=h.hexdigest())


# ------------------------------------------------------------------ ROIs ----

def read_ctab(path: Path) -> dict[str, int]:
    """Label name -> integer value from a FreeSurfer-style `.mgz.ctab` ("value name" per line)."""
    labels = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and re.fullmatch(r"-?\d+", parts[0]):
            labels[parts[1]] = int(parts[0])
    if not labels:
        raise DataFormatError(f"{path.name}: no 'value name' lines; is it an NSD label table?")
    return labels


def _canonical(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", label.lower())


def _read_volume(path: Path) -> np.ndarray:
    import nibabel as nib

    try:
        return np.asarray(nib.load(path).dataobj)
    except Exception as exc:
        raise DataFormatError(f"cannot read {path} as NIfTI ({exc}); is it another release?") from exc


@functools.lru_cache(maxsize=16)
def _roi_voxels(key: tuple, labels: tuple[str, ...], subject: str) -> tuple[np.ndarray, tuple]:
    """(voxels x 3) (i, j, k) indices of the ROI in the func1pt8mm volume, and the volume shape."""
    mask_path, ctab_path = Path(key[0][0]), Path(key[1][0])
    table = read_ctab(ctab_path)
    lookup = {_canonical(name): value for name, value in table.items()}
    absent = [lab for lab in labels if _canonical(lab) not in lookup]
    if absent:
        raise InvalidInputError(f"{subject}: {ctab_path.name} has no label {absent}; it has {sorted(table)}")
    volume = np.rint(_read_volume(mask_path)).astype(np.int64)
    if volume.ndim != 3:
        raise InvalidInputError(f"{mask_path.name}: expected a 3-D label volume, got shape {volume.shape}")
    voxels = np.argwhere(np.isin(volume, [lookup[_canonical(lab)] for lab in labels]))
    if not len(voxels):
        present = sorted(name for name, value in table.items() if value > 0 and np.any(volume == value))
        raise InvalidInputError(f"{subject} has no voxels labelled {list(labels)} in {mask_path.name}; "
                                f"ROIs present for {subject}: {present}")
    return voxels, volume.shape


# ----------------------------------------------------------------- betas ----

def _session_length(path: Path) -> int:
    if path.name.endswith(".hdf5"):
        import h5py

        with h5py.File(path, "r") as fh:
            if "betas" not in fh:
                raise DataFormatError(f"{path.name} has no dataset 'betas' (it has {sorted(fh)}); another release?")
            return int(fh["betas"].shape[0])
    import nibabel as nib

    shape = nib.load(path).shape
    return int(shape[3]) if len(shape) == 4 else 0


def _shape_error(path: Path, found, expected, subject: str) -> InvalidInputError:
    return DataFormatError(
        f"{path.name} of {subject}: betas of shape {tuple(found)}, expected {expected} (the func1pt8mm volume "
        "of the subject's ROI masks and ncsnr); a file from another release, subject or resolution?")


def _read_hdf5(path: Path, voxels: np.ndarray, volume: tuple, subject: str) -> tuple[np.ndarray, np.dtype]:
    """(trials x voxels) from `/betas` (h5py order: trials x Z x Y X), one Z plane at a time."""
    import h5py

    with h5py.File(path, "r") as fh:
        if "betas" not in fh:
            raise DataFormatError(f"{path.name} has no dataset 'betas' (it has {sorted(fh)}); another release?")
        ds = fh["betas"]
        if ds.ndim != 4 or tuple(ds.shape[1:]) != tuple(volume[::-1]):
            raise _shape_error(path, ds.shape, f"(trials, {volume[2]}, {volume[1]}, {volume[0]})", subject)
        out = np.empty((ds.shape[0], len(voxels)), dtype=np.float32)
        for k in np.unique(voxels[:, 2]):
            sel = np.flatnonzero(voxels[:, 2] == k)
            i, j = voxels[sel, 0], voxels[sel, 1]
            block = ds[:, int(k), j.min():j.max() + 1, i.min():i.max() + 1]
            out[:, sel] = block[:, j - j.min(), i - i.min()]
        return out, ds.dtype


def _read_nifti(path: Path, voxels: np.ndarray, volume: tuple, subject: str) -> tuple[np.ndarray, np.dtype]:
    """(trials x voxels) from a 4-D NIfTI (X x Y x Z x trials), a chunk of trials at a time."""
    import nibabel as nib

    img = nib.load(path)
    if len(img.shape) != 4 or tuple(img.shape[:3]) != tuple(volume):
        raise _shape_error(path, img.shape, f"({volume[0]}, {volume[1]}, {volume[2]}, trials)", subject)
    n = img.shape[3]
    out = np.empty((n, len(voxels)), dtype=np.float32)
    i, j, k = voxels.T
    for t0 in range(0, n, TRIAL_CHUNK):
        block = np.asarray(img.dataobj[..., t0:t0 + TRIAL_CHUNK])
        out[t0:t0 + block.shape[3]] = block[i, j, k].T
    return out, img.get_data_dtype()


def read_session(path: Path, voxels: np.ndarray, volume: tuple, subject: str = "") -> np.ndarray:
    """One session's betas for the given voxels, (trials x voxels), in % signal change."""
    reader = _read_hdf5 if path.name.endswith(".hdf5") else _read_nifti
    betas, dtype = reader(path, voxels, volume, subject)
    if np.dtype(dtype) == np.int16:
        betas /= BETA_SCALE
    else:
        log.info("%s stores %s betas: taken as %% signal change as they are", path.name, dtype)
    return betas


def zscore_trials(betas: np.ndarray) -> np.ndarray:
    """z-score each voxel over a session's trials (sample SD); constant voxels become 0."""
    mean = betas.mean(0, keepdims=True)
    sd = betas.std(0, ddof=1, keepdims=True)
    return np.where(sd > 0, (betas - mean) / np.where(sd > 0, sd, 1.0), 0.0).astype(np.float32)


def noise_ceiling(ncsnr: np.ndarray, repetitions: np.ndarray) -> np.ndarray:
    """NSD's noise ceiling (r^2 units, i.e. NC / 100) of the mean over each test image's repetitions."""
    snr2 = np.asarray(ncsnr, dtype=np.float64) ** 2
    return snr2 / (snr2 + np.mean(1.0 / np.asarray(repetitions, dtype=np.float64)))


# --------------------------------------------------------------- subjects ---

@dataclass
class SubjectData:
    """One subject's ROI responses, split and ceiling."""

    subject: str
    stimulus_ids: list[str]  # sorted by 73k id
    responses: np.ndarray  # (images, repetitions, voxels), z-scored betas, NaN-padded
    is_test: np.ndarray  # (images,) shared image?
    ceiling: np.ndarray  # (voxels,) r^2 units
    ncsnr: np.ndarray  # (voxels,)
    voxels: np.ndarray  # (voxels, 3) (i, j, k) in the func1pt8mm volume
    sessions: tuple[int, ...]


def session_table() -> dict[str, dict[int, str]]:
    """Subject -> session number -> manifest file of its betas (HDF5 preferred over NIfTI), from
    one read of the manifest; subjects without betas in the manifest are left out."""
    table: dict[str, dict[int, str]] = {}
    for spec in load_manifest(DATASET).files:
        match = SESSION_FILE.search(spec.name)
        subject = next((s for s in SUBJECTS if spec.name.startswith(BETA_DIR.format(subject=s) + "/")), None)
        if match and subject:
            sessions = table.setdefault(subject, {})
            session = int(match.group(1))
            if session not in sessions or spec.name.endswith(".hdf5"):
                sessions[session] = spec.name
    return {s: dict(sorted(table[s].items())) for s in SUBJECTS if s in table}


def subject_files(subject: str, family: str, sessions: dict[int, str]) -> list[str]:
    """The manifest files one subject's ROI needs: its session betas, ncsnr, ROI mask and label table."""
    return [*sessions.values(), NCSNR.format(subject=subject), ROI_MASK.format(subject=subject, family=family),
            ROI_CTAB.format(subject=subject, family=family)]


def _session_lengths(subject: str) -> dict[int, tuple[Path, int]]:
    out = {}
    for session, name in session_table().get(subject, {}).items():
        path = resolve(DATASET, name)
        out[session] = (path, _session_length(path))
    lengths = {n for _p, n in out.values()}
    if len(lengths) > 1:
        raise InvalidInputError(f"{subject}: sessions differ in trial count ({sorted(lengths)}); NSD sessions "
                                "have 750 trials each: mixed releases?")
    return out


def subject_images(subject: str) -> np.ndarray:
    """73k ids (1-based) of the images a subject saw in the sessions at hand."""
    design = load_design()
    seen = [design.trial_images(subject, s, n) for s, (_p, n) in _session_lengths(subject).items()]
    return np.unique(np.concatenate(seen))


def load_subject(subject: str, region: str) -> SubjectData:
    """Read a subject's ROI voxels session by session (never the whole brain for all sessions)."""
    _name, family, labels = REGIONS[region]
    voxels, volume = _roi_voxels(file_state(resolve(DATASET, ROI_MASK.format(subject=subject, family=family)),
                                            resolve(DATASET, ROI_CTAB.format(subject=subject, family=family))),
                                 labels, subject)
    ncsnr_path = resolve(DATASET, NCSNR.format(subject=subject))
    ncsnr_volume = _read_volume(ncsnr_path)
    if ncsnr_volume.shape != volume:
        raise InvalidInputError(f"{subject}: ncsnr.nii.gz has shape {ncsnr_volume.shape} but the ROI mask "
                                f"{volume}; files from different resolutions or releases?")
    design = load_design()
    sessions = _session_lengths(subject)
    shown = [design.trial_images(subject, session, n) for session, (_p, n) in sessions.items()]
    ids73k, rows, slots, counts = repetition_slots(np.concatenate(shown))
    responses = np.full((len(ids73k), int(counts.max()), len(voxels)), np.nan, dtype=np.float32)
    start = 0
    for session, (path, n) in sessions.items():  # one session in memory at a time
        sl = slice(start, start + n)
        responses[rows[sl], slots[sl]] = zscore_trials(read_session(path, voxels, volume, subject))
        start += n
        log.debug("%s session %d: %d trials x %d voxels", subject, session, n, len(voxels))
    is_test = np.isin(ids73k, design.sharedix)
    if not is_test.any() or is_test.all():
        raise InvalidInputError(f"{subject}: {int(is_test.sum())} of {len(ids73k)} images are shared; the split "
                                "needs shared (test) and non-shared (training) images")
    ncsnr = ncsnr_volume[tuple(voxels.T)].astype(np.float64)
    reps = np.sum(~np.isnan(responses[is_test, :, 0]), axis=1)
    return SubjectData(subject, [stimulus_id(i) for i in ids73k], responses, is_test,
                       noise_ceiling(ncsnr, reps), ncsnr, voxels, tuple(sessions))


def _subject_name(subject) -> str:
    text = str(subject).strip().lower()
    return f"subj{int(text):02d}" if text.isdigit() else text


# -------------------------------------------------------------- benchmark ---

class NSDEncodingBenchmark(KeepsLayerTargets, PerSubjectEncodingBenchmark):
    """Ridge encoding of one ROI, per subject on the subject's own images, shared images held out.

    Parameters
    ----------
    subjects : list of str or None
        Subjects to score, as subj01..subj08 or 1..8 (None: every subject whose files for this ROI
        are all local, else all eight).
    """

    datasets = (DATASET,)
    splits = None  # the dataset defines the test set: the shared images each subject saw
    subjects = option(None, lambda v: tuple(dict.fromkeys(_subject_name(s) for s in names(v))))

    def __init__(self, region: str, **options):
        key = region.lower()
        if key not in REGIONS:
            raise InvalidInputError(f"unknown NSD region {region!r}; regions: {sorted(REGIONS)}")
        self.region = key
        name, family, labels = REGIONS[key]
        self.identifier = f"{DATASET}.{key}-encoding"
        self.description = (f"NSD {name} ({family}: {' + '.join(labels)}), single-trial betas; ridge, shared-1000 "
                            "test images, ncsnr noise ceiling")
        self._stimuli = None
        self.configure(**options)

    @property
    def family(self) -> str:
        return REGIONS[self.region][1]

    def _needed(self, subjects: Sequence[str], table: dict[str, dict[int, str]]) -> dict[str, list[str]]:
        """Per subject, the files it needs (the design and the images included)."""
        return {s: [DESIGN, STIMULI, *subject_files(s, self.family, table[s])] for s in subjects}

    @property
    def data_files(self) -> tuple[tuple[str, str], ...]:
        needed = self._needed(self.selected_subjects(), session_table())
        return tuple((DATASET, name) for name in dict.fromkeys(n for names in needed.values() for n in names))

    def _local_subjects(self, table: dict[str, dict[int, str]]) -> list[str]:
        """Subjects whose files (for this ROI) are all in the cache or a mirror, intact."""
        needed = self._needed(list(table), table)
        local = availability(DATASET, list(dict.fromkeys(n for names in needed.values() for n in names)))
        return [s for s, names in needed.items() if all(local[n] for n in names)]

    def available_subjects(self) -> list[str]:
        return list(session_table())

    def default_subjects(self) -> list[str]:
        table = session_table()
        ready = self._local_subjects(table)
        if ready and len(ready) < len(table):
            log.info("%s: scoring the subjects whose data are local: %s", self.identifier, ready)
        return ready or list(table)

    def _ensure_local(self, subject: str) -> None:
        """Raise naming the subjects that are at hand when one asked for cannot be had."""
        table = session_table()
        try:
            for name in self._needed([subject], table)[subject]:
                resolve(DATASET, name)
        except DataUnavailableError as exc:
            ready = self._local_subjects(table)
            raise DataUnavailableError(f"{self.identifier}: data of {subject} missing ({exc}). Subjects whose "
                                       f"files are all local: {ready or 'none'}") from exc

    def stimuli(self) -> StimulusSet:
        """Union of the scored subjects' images (sorted by 73k id)."""
        if self._stimuli is None:
            subjects = self.selected_subjects()
            for subject in subjects:
                self._ensure_local(subject)
            self._stimuli = load_stimuli(np.concatenate([subject_images(s) for s in subjects]))
        return self._stimuli

    def subject_responses(self, subject: str, **_run) -> SubjectResponses:
        self._ensure_local(subject)
        data = load_subject(subject, self.region)
        ids = np.asarray(data.stimulus_ids)
        targets = pd.DataFrame({"voxel_i": data.voxels[:, 0], "voxel_j": data.voxels[:, 1],
                                "voxel_k": data.voxels[:, 2], "ncsnr": data.ncsnr})
        return SubjectResponses(subject, data.stimulus_ids, data.responses, test_ids=ids[data.is_test],
                                ceiling=data.ceiling, ceiling_note=CEILING_NOTE, targets=targets,
                                info={"sessions": list(data.sessions), "n_voxels": len(data.voxels),
                                      "space": self.target_space(subject)})

    def target_space(self, subject: str) -> dict:
        """The func1pt8mm volume of the subject's voxels: index columns, shape and affine, from the
        header of the ROI mask NIfTI the voxels come from."""
        import nibabel as nib

        img = nib.load(resolve(DATASET, ROI_MASK.format(subject=subject, family=self.family)))
        return {"columns": ["voxel_i", "voxel_j", "voxel_k"], "shape": [int(n) for n in img.shape[:3]],
                "affine": np.asarray(img.affine, dtype=float).tolist(),
                "source": f"{ROI_MASK.format(subject=subject, family=self.family)} (func1pt8mm, subject space)"}

    def finish(self, scores, per_subject):
        scores = super().finish(scores, per_subject)  # KeepsLayerTargets
        scores.provenance.update({"region": REGIONS[self.region][0], "roi_family": self.family,
                                  "roi_labels": list(REGIONS[self.region][2]),
                                  "sessions": {s: i["sessions"] for s, i in scores.provenance["subject_info"].items()}})
        return scores


def _register(region: str) -> None:
    name, family, labels = REGIONS[region]

    def factory(**options) -> NSDEncodingBenchmark:
        return NSDEncodingBenchmark(region, **options)

    factory.__doc__ = (f"NSD {name} ({family}: {' + '.join(labels)}): ridge encoding of single-trial betas, shared-1000 test "
                       "images, ncsnr noise ceiling, 8 subjects")
    factory.__qualname__ = f"nsd_{region}_encoding"
    register_benchmark(f"{DATASET}.{region}-encoding", dataset=DATASET, modality="fmri")(factory)


for _region in REGIONS:
    _register(_region)

__all__ = ["NSDEncodingBenchmark", "REGIONS", "load_subject", "load_stimuli", "noise_ceiling"]
