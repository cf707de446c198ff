"""Cichy, Pantazis & Oliva (2014): MEG to the 92 object images, time-resolved RSA.

`cichy2014.meg-rsa` reads MNE-Python's `visual_92_categories` release (one participant, four
raw runs) as published: the two archives unpack into one folder with `visual_stimuli.csv`
(columns trigger, condition, human, face, animal, natural; the stim-channel code of a trial is
trigger + 1) and `sample_subject_{0..3}_tsss_mc.fif`. Processing:

1. the four runs are concatenated and events found on the stim channel (MNE's default channel
   lookup, minimum duration 2 ms, as in MNE's RSA example); codes other than the table's
   triggers (catch trials, responses) are ignored;
2. epochs -0.1 .. 0.5 s on all MEG sensors (306: magnetometers and gradiometers; bad channels
   excluded), baseline -0.1 .. 0 s, no rejection, averaged per condition;
3. univariate noise normalisation: each channel is divided by the standard deviation of its
   condition means over the baseline, so magnetometers (T) and gradiometers (T/m) weigh alike;
4. 10 ms bins (mean of the samples in each bin: a boxcar low-pass before down-sampling);
5. one RDM per bin, 1 - Pearson correlation across sensors between conditions.

With `--option data_rdm=decoding` the RDMs are Cichy et al.'s own kind instead: cross-validated
pairwise decoding accuracy per pair of images and 10 ms bin (`neurobench.metrics.decoding`), from
the single trials (same epochs and baseline; each channel divided by the SD of all trials over
the baseline; 10 ms bins; `decoding_folds` round-robin folds of each image's trials).

Condition t of the table is stimulus `92obj-{t+1:02d}` of kriegeskorte2008 (same 92 images, same
order); the loader checks every row's category and human/face/animal/natural flags against the
kriegeskorte2008 labels and refuses a table that disagrees. One participant only: no noise
ceiling (the result says so), and the peak-latency CI resamples stimuli.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from neurobench.benchmarks import kriegeskorte2008 as k08
from neurobench.data.files import file_state, unpack
from neurobench.errors import AlignmentError, DataUnavailableError, NeurobenchError
from neurobench.kinds.temporal_rsa import (
    TemporalData,
    TemporalRSABenchmark,
    TemporalTrials,
    bin_time,
    rdms_over_time,
)
from neurobench.registry import register_benchmark

log = logging.getLogger(__name__)

DATASET = "cichy2014"
ARCHIVES = ("MNE-visual_92_categories-data-part1.tar.gz", "MNE-visual_92_categories-data-part2.tar.gz")
TABLE = "visual_stimuli.csv"
RUNS = tuple(f"sample_subject_{i}_tsss_mc.fif" for i in range(4))
COLUMNS = ("trigger", "condition", "human", "face", "animal", "natural")
TMIN, TMAX, BIN_S = -0.1, 0.5, 0.01
NOTE = ("one participant (MNE's visual_92_categories sample subject): no between-subject variability, so no Nili "
        "noise ceiling and no normalised score; the peak-latency CI resamples stimuli")
_CACHE: dict[tuple, TemporalData] = {}
_TRIALS: dict[tuple, TemporalTrials] = {}


def data_folders() -> list[Path]:
    """The unpacked release: one folder per archive (MNE extracts both into one folder)."""
    return [unpack(DATASET, name) for name in ARCHIVES]


def find_file(name: str, folders: list[Path]) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, *folder.glob(f"*/{name}")):
            if candidate.is_file():
                return candidate
    return None


def _present(folders: list[Path]) -> list[str]:
    return sorted(p.relative_to(f).as_posix() for f in folders for p in f.rglob("*") if p.is_file()
                  and not p.name.startswith(".neurobench"))


def read_table(path: Path) -> dict[int, str]:
    """visual_stimuli.csv -> {stim-channel code: kriegeskorte2008 stimulus id}, checked row by row."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = set(rows[0]) if rows else set()
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise NeurobenchError(f"{path}: columns {missing} missing (found {sorted(header)}); another release?")
    labels = k08.load_stimuli().labels
    ids = list(labels.index)
    mapping = {}
    for row in rows:
        trigger = int(float(row["trigger"]))
        if not 0 <= trigger < len(ids):
            raise AlignmentError(
                f"{path}: trigger {trigger} (condition {row['condition']!r}) has no matching stimulus: "
                f"kriegeskorte2008 has {len(ids)} images ({ids[0]} .. {ids[-1]}) for triggers 0..{len(ids) - 1}")
        sid = ids[trigger]
        _check_row(path, row, trigger, sid, labels.loc[sid])
        mapping[trigger + 1] = sid
    absent = [s for s in ids if s not in mapping.values()]
    if absent:
        raise AlignmentError(f"{path}: no trigger for {len(absent)} of the 92 stimuli, e.g. {absent[:5]}")
    return mapping


def _norm(text: str) -> str:
    return "".join(str(text).lower().split())


def _check_row(path, row, trigger, sid, label) -> None:
    flags = {f: bool(int(float(row[f]))) for f in ("human", "face", "animal", "natural")}
    expected = {f: bool(label[f]) for f in flags}
    if flags != expected or _norm(row["condition"]) != _norm(label["category"]):
        raise AlignmentError(
            f"{path}: trigger {trigger} is {row['condition']!r} {flags}, but {sid} (kriegeskorte2008 row "
            f"{trigger + 1}) is {label['category']!r} {expected}; the table's condition order differs from the "
            "92-object order")


def read_runs(folders: list[Path]):
    import mne

    paths = [find_file(name, folders) for name in RUNS]
    if any(p is None for p in paths):
        absent = [n for n, p in zip(RUNS, paths) if p is None]
        raise DataUnavailableError(
            f"{DATASET}: runs {absent} are missing from the unpacked archives (present: {_present(folders)}); "
            f"the release has {list(RUNS)}: re-fetch both archives with `neurobench fetch {DATASET}`")
    raws = [mne.io.read_raw_fif(p, preload=False, on_split_missing="ignore", verbose="error") for p in paths]
    return mne.concatenate_raws(raws, verbose="error"), paths


def _epochs(raw, mapping: dict[int, str]):
    """The release's trials as (lazy) epochs: -0.1 .. 0.5 s, baseline -0.1 .. 0 s, MEG sensors."""
    import mne

    events = mne.find_events(raw, min_duration=0.002, verbose="error")
    keep = np.isin(events[:, 2], list(mapping))
    if (~keep).any():
        log.info("ignoring %d events with codes %s (not in %s)", int((~keep).sum()),
                 sorted(set(events[~keep, 2].tolist()))[:10], TABLE)
    events = events[keep]
    absent = [sid for code, sid in mapping.items() if code not in set(events[:, 2].tolist())]
    if absent:
        raise AlignmentError(f"{DATASET}: no trials for {len(absent)} conditions, e.g. {absent[:5]}")
    picks = mne.pick_types(raw.info, meg=True, exclude="bads")
    if not len(picks):
        raise NeurobenchError(f"{DATASET}: no MEG channels in the runs (channels: {raw.ch_names[:10]} ...)")
    event_id = {sid: code for code, sid in mapping.items()}
    return mne.Epochs(raw, events, event_id=event_id, tmin=TMIN, tmax=TMAX, baseline=(None, 0), picks=picks,
                      preload=False, reject=None, flat=None, verbose="error")


def condition_means(raw, mapping: dict[int, str]) -> tuple[np.ndarray, np.ndarray]:
    """(92, n_sensors, n_times) baseline-corrected condition means and the times."""
    epochs = _epochs(raw, mapping)
    order = [mapping[c] for c in sorted(mapping)]
    means = np.stack([epochs[sid].average().data for sid in order])
    return means, epochs.times.copy()


def single_trials(raw, mapping: dict[int, str], chunk: int = 240):
    """Every trial binned to 10 ms, each channel divided by its SD over all trials' baselines:
    (trials (n, sensors, bins) float32, condition index per trial, bin-centre times)."""
    epochs = _epochs(raw, mapping)
    epochs.drop_bad(verbose="error")
    index = {code: i for i, code in enumerate(sorted(mapping))}
    labels = np.array([index[c] for c in epochs.events[:, 2]])
    sfreq, times = raw.info["sfreq"], epochs.times
    base = times < 0
    parts, sq, count = [], 0.0, 0
    for start in range(0, len(labels), chunk):
        data = epochs[start:start + chunk].get_data(verbose="error")
        sq = sq + (data[:, :, base] ** 2).sum(axis=(0, 2))  # baseline-corrected: mean 0 per trial
        count += data.shape[0] * int(base.sum())
        binned, btimes = bin_time(data, times, sfreq, BIN_S)
        parts.append(binned.astype(np.float32))
    sd = np.sqrt(sq / count)
    if np.any(sd == 0):
        raise NeurobenchError(f"{DATASET}: channels {np.flatnonzero(sd == 0)[:5].tolist()} are flat over the "
                              "baseline; cannot noise-normalise")
    return np.concatenate(parts) / sd[None, :, None].astype(np.float32), labels, btimes


def noise_normalise(means: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Divide each channel by the SD of its condition means over the baseline (t < 0)."""
    base = means[:, :, times < 0]
    sd = base.transpose(1, 0, 2).reshape(means.shape[1], -1).std(axis=1)
    if np.any(sd == 0):
        bad = np.flatnonzero(sd == 0)[:5].tolist()
        raise NeurobenchError(f"{DATASET}: channels {bad} are flat over the baseline; cannot noise-normalise")
    return means / sd[None, :, None]


def _release():
    """The release's table mapping, concatenated runs and their file-state cache key."""
    folders = data_folders()
    table = find_file(TABLE, folders)
    if table is None:
        raise DataUnavailableError(f"{DATASET}: {TABLE} is not in the unpacked archives (present: {_present(folders)})")
    mapping = read_table(table)
    raw, paths = read_runs(folders)
    return mapping, raw, file_state(table, *paths)


def load_data() -> TemporalData:
    """The sample subject's data RDMs every 10 ms, -0.1 .. 0.5 s (cached per file state)."""
    mapping, raw, key = _release()
    if key not in _CACHE:
        means, times = condition_means(raw, mapping)
        binned, btimes = bin_time(noise_normalise(means, times), times, raw.info["sfreq"], BIN_S)
        rdms = rdms_over_time(binned)
        _CACHE.clear()
        _CACHE[key] = TemporalData([mapping[c] for c in sorted(mapping)], rdms[None].numpy(), btimes,
                                   ["sample_subject"], NOTE)
    return _CACHE[key]


def load_trials() -> TemporalTrials:
    """The sample subject's single trials in 10 ms bins, for decoding RDMs (cached per file state)."""
    mapping, raw, key = _release()
    if key not in _TRIALS:
        trials, labels, times = single_trials(raw, mapping)
        _TRIALS.clear()
        _TRIALS[key] = TemporalTrials([mapping[c] for c in sorted(mapping)], [trials], [labels], times,
                                      ["sample_subject"], NOTE)
    return _TRIALS[key]


@register_benchmark("cichy2014.meg-rsa", dataset=DATASET, modality="meg")
def cichy2014_meg_rsa():
    """Cichy 2014 92 objects, MEG (1 subject, 306 sensors), time-resolved RSA, Spearman"""
    return TemporalRSABenchmark(
        "cichy2014.meg-rsa",
        "92 objects, MEG of MNE's sample subject (306 sensors, 10 ms bins, -0.1..0.5 s); data RDMs 1-Pearson of "
        "condition means (data_rdm=decoding: pairwise decoding accuracy), Spearman over time; layer and 50 ms "
        "window chosen on held-out stimuli",
        (DATASET, k08.DATASET), k08.load_stimuli, load_data, comparator="spearman", load_trials=load_trials,
        data_files=tuple((DATASET, a) for a in ARCHIVES) + ((k08.DATASET, k08.SUPPLEMENT),),
    )
