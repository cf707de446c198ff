"""THINGS-MEG (Hebart, Contier, Teichmann et al. 2023): time-resolved RSA on the 200 test images.

Reads the released preprocessed epochs (OpenNeuro ds004212,
`derivatives/preprocessed/preprocessed_P{1..4}-epo.fif` and MNE's split parts `-epo-1/2/3.fif`,
which must sit in one folder: parts found in different places are linked together under the
cache). The epochs carry the sourcedata sample table as metadata: `trial_type` ('exp', 'test',
'catch') and `image_path` ('images_test_meg/<image>.jpg' for test trials) identify each trial's
image; the THINGS image id is the file stem. Per participant, the test trials (200 images x 12
sessions) are averaged per image, binned into 10 ms bins, and one RDM per bin is computed
(1 - Pearson across the chosen sensors; the release is already baseline z-scored per channel).

Sensor groups follow CTF channel names (`M` + hemisphere L/R/Z + region letter, e.g. `MLO11-1609`),
as the authors group them: occipital (O), temporal (T), parietal (P), frontal (F), central (C),
and all sensors. 4 participants: Nili et al. (2014) ceiling; peak-latency CIs resample
participants.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from neurobench.data import cache_path, load_manifest, resolve
from neurobench.errors import AlignmentError, DataUnavailableError, NeurobenchError
from neurobench.registry import register_benchmark
from neurobench.temporal_benchmark import (
    TemporalData,
    TemporalRSABenchmark,
    bin_time,
    rdms_over_time,
)

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


def _key(paths: list[Path]) -> tuple:
    return tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)


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
    key = _key(paths)
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
    from neurobench.things_images import load_things_stimuli

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


def _make(group: str):
    ident = f"things-meg.{group}-rsa"
    what = "all sensors" if group == "all" else f"{group} sensors (CTF M?{GROUPS[group]}*)"

    def factory():
        return TemporalRSABenchmark(
            ident, f"THINGS-MEG 200 test images x 12 repetitions, 4 participants, {what}, 10 ms bins; 1-Pearson "
            "RDMs, Spearman over time; layer and 50 ms window chosen on held-out images",
            (DATASET, "things_images"), load_stimuli, lambda: load_data(group), comparator="spearman",
            data_files=_data_files())

    factory.__doc__ = f"THINGS-MEG 200 test images, 4 participants, {what}, time-resolved RSA"
    register_benchmark(ident, dataset=DATASET)(factory)


for _group in GROUPS:
    _make(_group)
