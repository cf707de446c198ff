"""THINGS-MEG (Hebart, Contier, Teichmann et al. 2023): time-resolved RSA on the 200 test images.

Reads the released preprocessed epochs (OpenNeuro ds004212,
`derivatives/preprocessed/preprocessed_P{1..4}-epo.fif` and MNE's split parts `-epo-1/2/3.fif`,
which must sit in one folder: parts found in different places are linked together under the
cache). The epochs carry the sourcedata sample table as metadata: `trial_type` ('exp', 'test',
'catch') and `image_path` ('images_test_meg/<image>.jpg' for test trials) identify each trial's
image; the THINGS image id is the file stem. Per participant, the test trials (200 images x 12
sessions) are averaged per image, binned into 10 ms bins, and one RDM per bin is computed
(1 - Pearson across the chosen sensors; the release is already baseline z-scored per channel).

With `--option data_rdm=decoding` the RDM of each bin is the cross-validated pairwise decoding
accuracy of every two test images from their 12 single trials (`neurobench.metrics.decoding`;
`decoding_folds` round-robin folds over the repetitions, i.e. over sessions), as in Cichy et al.
(2014), instead of 1 - Pearson of the image means.

Sensor groups follow CTF channel names (`M` + hemisphere L/R/Z + region letter, e.g. `MLO11-1609`),
as the authors group them: occipital (O), temporal (T), parietal (P), frontal (F), central (C),
and all sensors. 4 participants: Nili et al. (2014) ceiling; peak-latency CIs resample
participants.

`things-meg.<group>-encoding`: per participant, ridge from a layer to every (sensor, 10 ms bin)
target of the post-onset window (default 0-1.0 s), trained on the `exp` trials (each image shown
once) and tested on the 200 test images (mean of 12 repetitions; split-half ceiling of those),
then combined over participants (`combine_subjects`); time courses in provenance.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from neurobench.data.assemblies import repetition_slots
from neurobench.data.files import cache_path, file_state, load_manifest, resolve
from neurobench.errors import (
    AlignmentError,
    DataUnavailableError,
    InvalidInputError,
    NeurobenchError,
)
from neurobench.kinds.per_subject import SubjectResponses
from neurobench.kinds.temporal_encoding import TemporalEncodingBenchmark, split_responses
from neurobench.kinds.temporal_rsa import (
    TemporalData,
    TemporalRSABenchmark,
    TemporalTrials,
    bin_time,
    rdms_over_time,
)
from neurobench.options import finite_float, option
from neurobench.registry import register_benchmark

log = logging.getLogger(__name__)

DATASET = "things_meg"
SUBJECTS = ("P1", "P2", "P3", "P4")
GROUPS = {"all": "", "occipital": "O", "temporal": "T", "parietal": "P", "frontal": "F", "central": "C"}
PART = re.compile(r"^derivatives/preprocessed/preprocessed_(P\d+)-epo(?:-(\d+))?\.fif$")
REQUIRED = ("trial_type", "image_path")
BIN_S = 0.01
_MEANS: dict[tuple, tuple] = {}


def subject_parts() -> dict[str, list[str]]:
    """Manifest file names of each participant's epochs, first part first."""
    parts: dict[str, list[tuple[int, str]]] = {}
    for spec in load_manifest(DATASET).files:
        m = PART.match(spec.name)
        if m:
            parts.setdefault(m.group(1), []).append((int(m.group(2) or 0), spec.name))
    return {s: [n for _, n in sorted(v)] for s, v in sorted(parts.items())}


def epochs_file(subject: str) -> list[Path]:
    """Verified paths of one participant's parts, all in one folder (linked under the cache if not)."""
    parts = subject_parts()
    if subject not in parts:
        raise DataUnavailableError(f"{DATASET}: no preprocessed epochs for participant {subject} in the manifest; "
                                   f"participants present: {sorted(parts)}")
    paths = [resolve(DATASET, name) for name in parts[subject]]
    if len({p.parent for p in paths}) == 1:
        return paths
    folder = cache_path(DATASET, f".linked/{subject}")
    folder.mkdir(parents=True, exist_ok=True)
    linked = []
    for p in paths:
        link = folder / p.name
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(p.resolve(), link)
        linked.append(link)
    return linked


def image_stem(path: str) -> str:
    name = str(path).replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def read_epochs(paths: list[Path]):
    import mne

    epochs = mne.read_epochs(paths[0], preload=False, verbose="error")
    meta = epochs.metadata
    if meta is None or any(c not in meta.columns for c in REQUIRED):
        cols = [] if meta is None else list(meta.columns)
        raise NeurobenchError(f"{paths[0]}: epochs metadata lacks {list(REQUIRED)} (columns: {cols[:20]}); "
                              "is it the ds004212 release of the preprocessed epochs?")
    return epochs


def test_image_means(subject: str, chunk: int = 240):
    """(sorted test image ids, means (n_images, n_channels, n_times) float32, channel names, times, sfreq)."""
    paths = epochs_file(subject)
    key = file_state(*paths)
    if key in _MEANS:
        return _MEANS[key]
    epochs = read_epochs(paths)
    meta = epochs.metadata.reset_index(drop=True)
    rows = np.flatnonzero(meta["trial_type"].astype(str).to_numpy() == "test")
    if not len(rows):
        raise NeurobenchError(f"{paths[0]}: no trials with trial_type == 'test' (types: "
                              f"{sorted(set(meta['trial_type'].astype(str)))})")
    stems = np.array([image_stem(p) for p in meta["image_path"].iloc[rows]])
    ids = sorted(set(stems))
    index = {s: i for i, s in enumerate(ids)}
    picks = [epochs.ch_names[i] for i in _mag_picks(epochs)]
    sums = np.zeros((len(ids), len(picks), len(epochs.times)))
    counts = np.zeros(len(ids))
    for start in range(0, len(rows), chunk):
        block = rows[start:start + chunk]
        data = epochs[block].get_data(picks=picks)
        where = np.array([index[s] for s in stems[start:start + chunk]])
        np.add.at(sums, where, data)
        np.add.at(counts, where, 1)
    out = (ids, (sums / counts[:, None, None]).astype(np.float32), picks, epochs.times.copy(), epochs.info["sfreq"])
    if len(_MEANS) >= len(SUBJECTS):
        _MEANS.pop(next(iter(_MEANS)))
    _MEANS[key] = out
    log.info("%s: %d test images, %d repetitions on average", subject, len(ids), counts.mean())
    return out


def _mag_picks(epochs) -> np.ndarray:
    import mne

    picks = mne.pick_types(epochs.info, meg=True, ref_meg=False, exclude="bads")
    if not len(picks):
        raise NeurobenchError(f"no MEG sensors in the epochs (channels: {epochs.ch_names[:10]} ...)")
    return picks


def sensor_group(names: list[str], group: str, subject: str) -> list[int]:
    """Indices of the channels of one CTF region (name[2] is the region letter); all for 'all'."""
    letter = GROUPS[group]
    if not letter:
        return list(range(len(names)))
    found = [i for i, n in enumerate(names) if len(n) > 2 and n[0] == "M" and n[2] == letter]
    if not found:
        present = sorted({g for g, lt in GROUPS.items() if lt and any(len(n) > 2 and n[2] == lt for n in names)})
        raise NeurobenchError(f"{DATASET} {subject}: no {group} sensors (CTF names M?{letter}*) among "
                              f"{len(names)} channels, e.g. {names[:5]}; sensor groups present: {present}")
    return found


def test_image_ids() -> list[str]:
    return test_image_means(SUBJECTS[0])[0]


def load_stimuli():
    from neurobench.benchmarks.things_images import load_things_stimuli

    return load_things_stimuli(test_image_ids(), "things-meg-test200")


def load_data(group: str) -> TemporalData:
    rdms, times, ids = [], None, None
    for subject in SUBJECTS:
        sid, means, names, t, sfreq = test_image_means(subject)
        if ids is not None and sid != ids:
            raise AlignmentError(f"{DATASET}: {subject}'s test images differ from {SUBJECTS[0]}'s: only in "
                                 f"{subject}: {sorted(set(sid) - set(ids))[:5]}, missing: {sorted(set(ids) - set(sid))[:5]}")
        ids = sid
        picks = sensor_group(names, group, subject)
        binned, btimes = bin_time(means[:, picks].astype(np.float64), t, sfreq, BIN_S)
        if times is not None and (len(btimes) != len(times) or not np.allclose(btimes, times)):
            raise AlignmentError(f"{DATASET}: {subject} has another time axis than {SUBJECTS[0]}")
        times = btimes
        rdms.append(rdms_over_time(binned).numpy())
    return TemporalData(ids, np.stack(rdms), times, list(SUBJECTS))


def _data_files() -> tuple[tuple[str, str], ...]:
    try:
        names = [n for parts in subject_parts().values() for n in parts]
    except NeurobenchError:
        names = []
    return tuple((DATASET, n) for n in names) + (("things_images", "images_THINGS.zip"),)


# ------------------------------------------------------------ encoding ----

TRIAL_CACHE_BYTES = 8 * 2**30  # binned single trials kept in memory across benchmarks (oldest evicted first)
_TRIALS: dict[tuple, SubjectTrials] = {}
_TEST_TRIALS: dict[tuple, tuple] = {}
_IDS: dict[tuple, tuple[list[str], list[str]]] = {}


@dataclass
class SubjectTrials:
    """One participant's responses in 10 ms bins over the window, all MEG sensors, float32."""

    train_ids: list[str]  # exp images, sorted
    train: np.ndarray  # (n_train, sensors, bins), single trials
    test_ids: list[str]  # test images, sorted
    test: np.ndarray  # (n_test, repetitions, sensors, bins)
    channels: list[str]
    times: np.ndarray  # bin centres (s)

    @property
    def nbytes(self) -> int:
        return self.train.nbytes + self.test.nbytes


def _trial_rows(meta, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of exp and test trials and the image id of every such row."""
    kinds = meta["trial_type"].astype(str).to_numpy()
    exp, test = np.flatnonzero(kinds == "exp"), np.flatnonzero(kinds == "test")
    if not len(exp) or not len(test):
        raise NeurobenchError(f"{path}: needs trials with trial_type 'exp' and 'test'; found {len(exp)} exp and "
                              f"{len(test)} test trials (types: {sorted(set(kinds))})")
    stems = np.full(len(meta), "", dtype=object)
    for rows in (exp, test):
        stems[rows] = [image_stem(p) for p in meta["image_path"].iloc[rows]]
    both = sorted(set(stems[exp]) & set(stems[test]))
    if both:
        raise AlignmentError(f"{path}: images shown both as exp (training) and test trials, e.g. {both[:5]}; "
                             "the release keeps the 200 test images apart")
    return exp, test, stems


def trial_ids(subject: str) -> tuple[list[str], list[str]]:
    """(sorted exp image ids, sorted test image ids) of one participant, from the metadata only."""
    paths = epochs_file(subject)
    key = file_state(*paths)
    if key not in _IDS:
        epochs = read_epochs(paths)
        exp, test, stems = _trial_rows(epochs.metadata.reset_index(drop=True), paths[0])
        if len(_IDS) >= 2 * len(SUBJECTS):
            _IDS.pop(next(iter(_IDS)))
        _IDS[key] = (sorted(set(stems[exp])), sorted(set(stems[test])))
    return _IDS[key]


def _window_bins(times: np.ndarray, sfreq: float, tmin: float, tmax: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Mask of the 10 ms bins (as `bin_time` makes them) whose centre lies in [tmin, tmax], and the centres."""
    _, centres = bin_time(np.zeros((1, len(times))), times, sfreq, BIN_S)
    keep = centres >= tmin - 1e-9
    if tmax is not None:
        keep &= centres <= tmax + 1e-9
    if not keep.any():
        raise InvalidInputError(f"{DATASET}: no 10 ms bin in the window {tmin}..{tmax} s; the epochs span "
                                f"{times[0]:.3f}..{times[-1]:.3f} s")
    return keep, centres[keep]


def _read_binned(epochs, rows: np.ndarray, picks: list[str], keep: np.ndarray, chunk: int):
    """Yield (row positions, float32 binned trials (chunk, sensors, bins)), `chunk` trials at a time."""
    sfreq = epochs.info["sfreq"]
    for start in range(0, len(rows), chunk):
        data = epochs[rows[start:start + chunk]].get_data(picks=picks)
        binned, _ = bin_time(data, epochs.times, sfreq, BIN_S)
        yield start, binned[..., keep].astype(np.float32)


def _repeated_trials(epochs, rows: np.ndarray, stems: np.ndarray, picks: list[str], keep: np.ndarray, chunk: int,
                     subject: str) -> tuple[list[str], np.ndarray]:
    """Binned trials of repeated images: (sorted image ids, (images, repetitions, sensors, bins)
    float32), repetitions in trial order, the first `min count` of each image."""
    ids, row, slot, seen = repetition_slots(stems)
    reps = int(seen.min())
    if reps != seen.max():
        log.warning("%s: test images have %d to %d repetitions; the first %d of each are used", subject, reps,
                    int(seen.max()), reps)
    out = np.zeros((len(ids), reps, len(picks), int(keep.sum())), dtype=np.float32)
    for start, block in _read_binned(epochs, rows, picks, keep, chunk):
        for i in range(len(block)):
            if slot[start + i] < reps:
                out[row[start + i], slot[start + i]] = block[i]
    return list(ids), out


def test_trials(subject: str, chunk: int = 240):
    """The test trials over the whole epoch in 10 ms bins, all MEG sensors: (sorted test image ids,
    (images, repetitions, sensors, bins) float32, channel names, bin-centre times); cached per file
    state (one entry per participant)."""
    paths = epochs_file(subject)
    key = ("test-trials",) + tuple(file_state(*paths))
    if key in _TEST_TRIALS:
        return _TEST_TRIALS[key]
    epochs = read_epochs(paths)
    _exp, test, stems = _trial_rows(epochs.metadata.reset_index(drop=True), paths[0])
    picks = [epochs.ch_names[i] for i in _mag_picks(epochs)]
    keep, times = _window_bins(epochs.times, epochs.info["sfreq"], float(epochs.times[0]), None)
    ids, out = _repeated_trials(epochs, test, stems[test].astype(str), picks, keep, chunk, subject)
    if len(_TEST_TRIALS) >= len(SUBJECTS):
        _TEST_TRIALS.pop(next(iter(_TEST_TRIALS)))
    _TEST_TRIALS[key] = (ids, out, picks, times)
    return _TEST_TRIALS[key]


def load_trials(group: str) -> TemporalTrials:
    """Every participant's test trials (200 images x 12 repetitions) of one sensor group, for
    decoding RDMs; a condition's trials are its repetitions in session order."""
    trials, labels, times, ids = [], [], None, None
    for subject in SUBJECTS:
        sid, x, names, t = test_trials(subject)
        if ids is not None and sid != ids:
            raise AlignmentError(f"{DATASET}: {subject}'s test images differ from {SUBJECTS[0]}'s")
        if times is not None and (len(t) != len(times) or not np.allclose(t, times)):
            raise AlignmentError(f"{DATASET}: {subject} has another time axis than {SUBJECTS[0]}")
        ids, times = sid, t
        picks = sensor_group(names, group, subject)
        trials.append(x[:, :, picks].reshape(x.shape[0] * x.shape[1], len(picks), x.shape[3]))
        labels.append(np.repeat(np.arange(x.shape[0]), x.shape[1]))
    return TemporalTrials(ids, trials, labels, times, list(SUBJECTS))


def read_trials(subject: str, tmin: float = 0.0, tmax: float | None = 1.0, chunk: int = 240) -> SubjectTrials:
    """Binned exp trials (one row per image; repeats averaged) and test trials (repetitions in
    trial order, the first `min count` of each image), read in chunks of trials; cached per
    file state and window within TRIAL_CACHE_BYTES."""
    paths = epochs_file(subject)
    key = (file_state(*paths), float(tmin), None if tmax is None else float(tmax))
    if key in _TRIALS:
        return _TRIALS[key]
    epochs = read_epochs(paths)
    exp, test, stems = _trial_rows(epochs.metadata.reset_index(drop=True), paths[0])
    picks = [epochs.ch_names[i] for i in _mag_picks(epochs)]
    keep, times = _window_bins(epochs.times, epochs.info["sfreq"], tmin, tmax)
    train_ids, train_row = np.unique(stems[exp].astype(str), return_inverse=True)
    train = np.zeros((len(train_ids), len(picks), int(keep.sum())), dtype=np.float32)
    counts = np.bincount(train_row, minlength=len(train_ids)).astype(np.float32)
    for start, block in _read_binned(epochs, exp, picks, keep, chunk):
        for i, row in enumerate(train_row[start:start + len(block)]):
            train[row] += block[i]
    if counts.max() > 1:
        log.info("%s: %d exp images shown more than once; their trials are averaged", subject, int((counts > 1).sum()))
        train /= counts[:, None, None]
    test_ids, out = _repeated_trials(epochs, test, stems[test].astype(str), picks, keep, chunk, subject)
    trials = SubjectTrials(list(train_ids), train, list(test_ids), out, picks, times)
    while _TRIALS and sum(t.nbytes for t in _TRIALS.values()) + trials.nbytes > TRIAL_CACHE_BYTES:
        _TRIALS.pop(next(iter(_TRIALS)))
    if trials.nbytes <= TRIAL_CACHE_BYTES:
        _TRIALS[key] = trials
    log.info("%s: %d exp images, %d test images x %d repetitions, %d sensors x %d bins", subject, len(train_ids),
             len(test_ids), out.shape[1], len(picks), len(times))
    return trials


def _group_targets(trials: SubjectTrials, picks: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(n_train, sensors*bins) and (n_test, reps, sensors*bins), sensor-major; views for all sensors."""
    if picks != list(range(len(trials.channels))):
        train, test = trials.train[:, picks], trials.test[:, :, picks]
    else:
        train, test = trials.train, trials.test
    return train.reshape(len(train), -1), test.reshape(*test.shape[:2], -1)


class ThingsMEGEncodingBenchmark(TemporalEncodingBenchmark):
    """Ridge encoding of every (sensor, 10 ms bin) of one sensor group, per participant: trained
    on the single-trial exp images, tested on the 200 repeated test images (module docstring).

    Parameters
    ----------
    subjects : list of str or None
        Participants to score, among P1..P4 (None: all four).
    tmin : float
        Start of the scored window, seconds after image onset (bins whose centre lies in the window).
    tmax : float or None
        End of the scored window in seconds (None: the end of the epochs).
    """

    datasets = (DATASET, "things_images")
    splits = None  # the dataset defines the test set: the 200 test images
    tmin = option(0.0, finite_float)
    tmax = option(1.0, finite_float, nullable=True)

    def __init__(self, group: str, **options):
        if group not in GROUPS:
            raise InvalidInputError(f"unknown THINGS-MEG sensor group {group!r}; groups: {list(GROUPS)}")
        self.group = group
        self.identifier = f"things-meg.{group}-encoding"
        self.data_files = _data_files()
        self._stimuli = None
        self.configure(**options)

    @property
    def description(self) -> str:
        window = f"{self.tmin:g}-{'end' if self.tmax is None else f'{self.tmax:g}'} s"
        return (f"THINGS-MEG {_what(self.group)}, every (sensor, 10 ms bin) in {window}; ridge trained on the "
                "~22k single-trial exp images, tested on the 200 test images x 12 repetitions, split-half "
                "ceiling, 4 participants")

    def available_subjects(self):
        return SUBJECTS

    def stimuli(self):
        """Union of the participants' exp and test images (sorted ids), from the metadata only."""
        if self._stimuli is None:
            from neurobench.benchmarks.things_images import load_things_stimuli

            ids = sorted({i for s in self.selected_subjects() for part in trial_ids(s) for i in part})
            self._stimuli = load_things_stimuli(ids, "things-meg-exp-test")
        return self._stimuli

    def subject_responses(self, subject: str, **_run) -> SubjectResponses:
        trials = read_trials(subject, self.tmin, self.tmax)
        picks = sensor_group(trials.channels, self.group, subject)
        train, test = _group_targets(trials, picks)
        ids, means, test = split_responses(train, test, trials.train_ids, trials.test_ids)
        targets = pd.DataFrame({"sensor": np.repeat(np.asarray(trials.channels)[picks], len(trials.times)),
                                "time": np.tile(trials.times, len(picks))})
        return SubjectResponses(subject, ids, means, test_ids=trials.test_ids, test_repetitions=test,
                                targets=targets, info={"n_sensors": len(picks)})

    def finish(self, scores, per_subject):
        scores = super().finish(scores, per_subject)
        times = scores.provenance["timecourse"]["times"]
        window = f"{times[0] - BIN_S / 2:.3f}-{times[-1] + BIN_S / 2:.3f} s"
        scores.selection += (f"; targets: every (sensor, 10 ms bin) of {_what(self.group)} with bin centre in "
                             f"{window}; per participant the score is the median over targets with a usable ceiling")
        scores.ceiling_note += "; all post-onset (sensor, time) targets pooled, no time window chosen"
        scores.provenance.update({"group": self.group, "window_s": [self.tmin, self.tmax], "bin_s": BIN_S})
        return scores


def _what(group: str) -> str:
    return "all sensors" if group == "all" else f"{group} sensors (CTF M?{GROUPS[group]}*)"


def _make_encoding(group: str):
    def factory(**options):
        return ThingsMEGEncodingBenchmark(group, **options)

    factory.__doc__ = (f"THINGS-MEG {_what(group)}: time-resolved ridge encoding (exp images train, 200 test images "
                       "x 12 repetitions test), split-half ceiling, 4 participants")
    register_benchmark(f"things-meg.{group}-encoding", dataset=DATASET, modality="meg")(factory)


def _make(group: str):
    ident = f"things-meg.{group}-rsa"
    what = "all sensors" if group == "all" else f"{group} sensors (CTF M?{GROUPS[group]}*)"

    def factory():
        return TemporalRSABenchmark(
            ident, f"THINGS-MEG 200 test images x 12 repetitions, 4 participants, {what}, 10 ms bins; data RDMs "
            "1-Pearson of image means (data_rdm=decoding: pairwise decoding accuracy), Spearman over time; layer "
            "and 50 ms window chosen on held-out images",
            (DATASET, "things_images"), load_stimuli, lambda: load_data(group), comparator="spearman",
            data_files=_data_files(), load_trials=lambda: load_trials(group))

    factory.__doc__ = f"THINGS-MEG 200 test images, 4 participants, {what}, time-resolved RSA"
    register_benchmark(ident, dataset=DATASET, modality="meg")(factory)


for _group in GROUPS:
    _make(_group)
    _make_encoding(_group)
