"""Time-resolved RSA benchmarks (MEG/EEG): every model layer's RDM against the data RDM of every
time point, per subject.

Per layer (all stimuli): the time course (subject mean), its peak latency with a bootstrap CI
(subjects and stimuli resampled together when there are >= 2 subjects, a percentile interval;
stimuli alone otherwise), and the r at the layer's best time window with a bootstrap CI and the
Nili et al. (2014) ceiling of that window. The r intervals resample subjects and stimuli with the
corrected two-factor variance of Schütt et al. (2023) when there are >= 2 subjects, stimuli alone
otherwise (`bootstrap` option; docs/conventions.md).

The headline is chosen without peeking, as in `RSABenchmark`, but over layers *and* time windows:
stimuli are split in two seeded halves; the (layer, window) pair that scores best on the selection
half is scored on the held-out half only (r, bootstrap CI, Nili ceiling of that window
when there are >= 2 subjects, else a note saying why there is none). Windows are sliding boxcars
of `window` seconds over the data RDMs (RDMs averaged over the window's time points); only windows
starting at or after stimulus onset are candidates.

**Data RDMs** (option `data_rdm`, named in the results' provenance and metric): `"correlation"`
(default) is 1 - Pearson r across sensors between condition means, per time bin (the loader's
`TemporalData`); `"decoding"` is the cross-validated pairwise decoding accuracy of Cichy et al.
(2014) per pair of conditions and time bin (`metrics.decoding.pairwise_decoding_rdms`: shrinkage
LDA with one noise covariance, `decoding_folds` folds of each condition's trials), computed from
the loader's single trials (`TemporalTrials`).

The full layer x time matrix is in `result.per_target` (long DataFrame: layer, time, r and one
`r_<subject>` column per subject) and in `result.provenance["timecourse"]` (lists).

Data RDMs are checked as `RSABenchmark` checks them (every subject at every time point), before
any activation is extracted; model RDMs come from `kinds.rsa.model_rdms`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..conventions import NILI_LOWER, NO_INTERVAL
from ..data.stimuli import StimulusSet
from ..errors import InvalidInputError, InvalidOptionError
from ..metrics.decoding import condition_folds, pairwise_decoding_rdms
from ..metrics.inference import BOOTSTRAP_CHOICES, INTERVAL_CONVENTION, score_rdms
from ..metrics.rdm import check_data_rdms, compute_rdms, pair_positions, upper_triangle
from ..metrics.rsa import canonical_method, compare_rdms
from ..metrics.temporal import time_resolved_rsa
from ..options import boolean, finite_float, int_at_least, non_negative_int, one_of, option
from ..result import Scores
from .base import Benchmark
from .rsa import model_rdms
from .selection import half_split

log = logging.getLogger(__name__)


@dataclass
class TemporalData:
    """Data RDMs over time: `rdms` (S, T, K) condensed or (S, T, n, n); `times` in seconds."""

    ids: list[str]
    rdms: np.ndarray | torch.Tensor
    times: np.ndarray
    subjects: list[str]
    note: str = ""

    @classmethod
    def from_mne(cls, ids: Sequence[str], subjects: dict, conditions: Sequence[str] | None = None,
                 method: str = "correlation", picks="data", note: str = "") -> TemporalData:
        """From MNE objects per subject (Epochs, or a list of Evoked in stimulus order)."""
        from ..metrics.temporal import data_rdms_over_time

        parts = [data_rdms_over_time(inst, method, conditions, picks, dtype=torch.float64) for inst in subjects.values()]
        times = parts[0][1]
        if any(len(p[1]) != len(times) or not np.allclose(p[1], times) for p in parts):
            raise InvalidInputError("subjects have different time axes; crop or resample them alike")
        return cls(list(ids), torch.stack([p[0] for p in parts]), times, list(subjects), note)


@dataclass
class TemporalTrials:
    """Single trials per subject, for decoding RDMs: `trials[s]` (n_trials, sensors, time bins),
    `labels[s]` (n_trials,) the index into `ids` of each trial's condition, trials of a condition
    in recording order (folds are drawn round-robin in that order); `times` in seconds."""

    ids: list[str]
    trials: list[np.ndarray]
    labels: list[np.ndarray]
    times: np.ndarray
    subjects: list[str]
    note: str = ""

    def decoding_rdms(self, n_folds: int, device="cpu") -> tuple[TemporalData, list[int]]:
        """Pairwise decoding RDMs per subject (float64 on `device`) and the folds used per subject
        (`n_folds`, or fewer where a condition has fewer trials)."""
        rdms, used = [], []
        for subject, x, y in zip(self.subjects, self.trials, self.labels):
            present = np.unique(y)
            if len(present) != len(self.ids):
                raise InvalidInputError(f"subject {subject}: trials for {len(present)} of the {len(self.ids)} "
                                        "conditions; decoding RDMs need every condition")
            k = min(n_folds, int(np.bincount(y).min()))
            if k < n_folds:
                log.warning("subject %s: a condition has only %d trials: %d decoding folds instead of %d",
                            subject, k, k, n_folds)
            rdms.append(pairwise_decoding_rdms(x, y, condition_folds(y, k), device=device, dtype=torch.float64))
            used.append(k)
        return TemporalData(list(self.ids), torch.stack(rdms), np.asarray(self.times, float), list(self.subjects),
                            self.note), used


def sliding_windows(rdms: torch.Tensor, times: np.ndarray, width: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Boxcar means over `width` consecutive time points: (S, T - width + 1, K), window start and
    end times (s)."""
    t = rdms.shape[1]
    width = max(1, min(width, t))
    csum = torch.cumsum(torch.cat([torch.zeros_like(rdms[:, :1]), rdms], dim=1), dim=1)
    out = (csum[:, width:] - csum[:, :-width]) / width
    starts = np.asarray(times[: t - width + 1], dtype=float)
    ends = np.asarray(times[width - 1:], dtype=float)
    return out, starts, ends


def bin_time(patterns: np.ndarray, times: np.ndarray, sfreq: float, bin_s: float = 0.01):
    """Means over consecutive `bin_s` bins along the last axis (a boxcar low-pass before
    down-sampling; trailing samples that do not fill a bin are dropped) and the bin-centre times."""
    n = max(1, int(round(bin_s * sfreq)))
    nb = patterns.shape[-1] // n
    binned = patterns[..., : nb * n].reshape(*patterns.shape[:-1], nb, n).mean(-1)
    return binned, np.asarray(times[: nb * n], dtype=float).reshape(nb, n).mean(-1)


def rdms_over_time(patterns: np.ndarray) -> torch.Tensor:
    """(n_conditions, n_sensors, n_times) -> condensed 1 - Pearson RDMs (n_times, K), float64."""
    x = torch.as_tensor(np.transpose(patterns, (2, 0, 1)), dtype=torch.float64)
    return upper_triangle(compute_rdms(x, "correlation"))


def _latency_interval(course) -> str:
    return INTERVAL_CONVENTION[course.bootstrap] if course.n_bootstrap > 0 else NO_INTERVAL


def _fmt_ms(start: float, end: float) -> str:
    return f"{start * 1000:.0f}-{end * 1000:.0f} ms"


class TemporalRSABenchmark(Benchmark):
    """Model RDMs per layer vs data RDMs per subject per time point (see the module docstring).

    `load_data` returns a `TemporalData` whose ids are exactly the stimulus set's ids, in order.

    Parameters
    ----------
    window : float
        Width in seconds of the sliding boxcar windows over which data RDMs are averaged for the
        headline and the per-layer scores.
    n_bootstrap : int
        Bootstrap resamples for the headline's confidence interval (0: none).
    n_bootstrap_layers : int
        Bootstrap resamples for each layer's interval in the per-layer table.
    n_bootstrap_latency : int or None
        Resamples for the peak-latency intervals (None: 200; each recomputes every time course).
    bootstrap : {'auto', 'stimuli', 'subjects', 'both', 'both-corrected'}
        What the r intervals resample: 'auto' is 'both-corrected' with >= 2 subjects (Schütt et
        al. 2023 corrected variance, t interval) and 'stimuli' with one (docs/conventions.md).
    latency_bootstrap : {'auto', 'stimuli', 'subjects', 'both'}
        What the peak-latency intervals resample (percentile): 'auto' is 'both' with >= 2
        subjects and 'stimuli' with one.
    data_rdm : {'correlation', 'decoding'}
        The data RDM of each time bin: 1 - Pearson r across sensors between condition means, or
        the cross-validated pairwise decoding accuracy (shrinkage LDA, Cichy et al. 2014's design;
        needs a dataset that gives single trials).
    decoding_folds : int
        Cross-validation folds of each condition's trials for `data_rdm='decoding'` (fewer when a
        condition has fewer trials; the number used is recorded).
    similarity_to_dissimilarity : bool
        The data matrices are similarities: convert them with D_ij = (S_ii + S_jj) / 2 - S_ij
        (square matrices only). Without it a similarity matrix is refused.
    allow_negative : bool
        The data RDMs hold cross-validated distances, which can be negative; without it a negative
        dissimilarity is refused.
    """

    window = option(0.05, finite_float)
    n_bootstrap = option(1000, non_negative_int)
    n_bootstrap_layers = option(200, non_negative_int)
    n_bootstrap_latency = option(None, int_at_least(0))
    bootstrap = option("auto", one_of(*BOOTSTRAP_CHOICES))
    latency_bootstrap = option("auto", one_of("auto", "stimuli", "subjects", "both"))
    data_rdm = option("correlation", one_of("correlation", "decoding"))
    decoding_folds = option(5, int_at_least(2))
    similarity_to_dissimilarity = option(False, boolean)
    allow_negative = option(False, boolean)

    def __init__(self, identifier: str, description: str, datasets: tuple[str, ...],
                 load_stimuli: Callable[[], StimulusSet], load_data: Callable[[], TemporalData],
                 comparator: str = "spearman", rdm_method: str = "correlation",
                 data_files: tuple[tuple[str, str], ...] = (),
                 load_trials: Callable[[], TemporalTrials] | None = None, **options):
        self.identifier, self.description, self.datasets = identifier, description, datasets
        self._load_stimuli, self._load_data, self._load_trials = load_stimuli, load_data, load_trials
        self.comparator, self.rdm_method = canonical_method(comparator), rdm_method
        self.configure(**options)
        if data_files:
            self.data_files = tuple(data_files)
        self.metric = f"temporal-rsa-{self.comparator}"
        self._stimuli: StimulusSet | None = None
        self._data: TemporalData | None = None
        self._decoded: dict[int, tuple[TemporalData, list[int]]] = {}
        self._checked: tuple[tuple, torch.Tensor] | None = None

    # ------------------------------------------------------------------ data

    def temporal_data(self, device="cpu") -> TemporalData:
        """The data RDMs of the `data_rdm` option (computed once per benchmark instance), checked
        against the stimulus set."""
        if self.data_rdm == "decoding":
            data = self._decoding_data(device)[0]
        else:
            if self._data is None:
                self._data = self._load_data()
            data = self._data
        self.stimuli().check_aligned(data.ids, what=f"{self.identifier} data RDMs")
        return data

    def _decoding_data(self, device) -> tuple[TemporalData, list[int]]:
        if self._load_trials is None:
            raise InvalidOptionError(f"{self.identifier}: data_rdm='decoding' needs single trials, which this "
                                     "benchmark's dataset does not give; use data_rdm='correlation'")
        if self.decoding_folds not in self._decoded:
            trials = self._load_trials()
            self.stimuli().check_aligned(trials.ids, what=f"{self.identifier} trials")
            self._decoded[self.decoding_folds] = trials.decoding_rdms(self.decoding_folds, device)
        return self._decoded[self.decoding_folds]

    def data_rdm_record(self) -> dict:
        """What the data RDMs are, for provenance."""
        if self.data_rdm == "decoding":
            return {"data_rdm": "decoding", "decoding": {
                "convention": "pairwise-lda-accuracy",
                "classifier": "LDA, one Ledoit-Wolf-shrunk pooled within-condition covariance, equal priors",
                "cv": "round-robin folds of each condition's trials", "folds_requested": self.decoding_folds,
                "folds_used": self._decoded.get(self.decoding_folds, (None, None))[1],
                "value": "cross-validated pairwise accuracy (0.5 = chance)"}}
        return {"data_rdm": "correlation", "data_rdm_definition": "1 - Pearson r across sensors of condition means"}

    def check_data(self) -> None:
        self.data_rdms("cpu")

    def data_rdms(self, device: torch.device) -> tuple[torch.Tensor, np.ndarray, TemporalData]:
        """Condensed (subjects, times, K) float64 data RDMs on `device`, checked (once per setting
        of the conversion options), the times and the data."""
        data = self.temporal_data(device)
        times = np.asarray(data.times, dtype=float)
        key = (id(data), self.similarity_to_dissimilarity, self.allow_negative)
        if self._checked is None or self._checked[0] != key:
            rdms = data.rdms
            n, s = len(data.ids), len(data.subjects)
            if rdms.ndim not in (3, 4) or rdms.shape[0] != s or rdms.shape[1] != len(times):
                raise InvalidInputError(
                    f"{self.identifier}: data RDMs must be (subjects {s}, times {len(times)}, {n * (n - 1) // 2}) "
                    f"condensed or (subjects {s}, times {len(times)}, {n}, {n}) square; got {tuple(rdms.shape)}")
            t = check_data_rdms(rdms, n, what=f"{self.identifier} data RDMs", square=rdms.ndim == 4,
                                similarity=self.similarity_to_dissimilarity, allow_negative=self.allow_negative,
                                ids=list(data.ids), axes=("subject", "time point"))
            self._checked = (key, t)
        return self._checked[1].to(device), times, data

    def latency_resamples(self) -> int:
        """Peak-latency bootstrap size: resampling stimuli recomputes every time course, so 200
        resamples unless set."""
        return 200 if self.n_bootstrap_latency is None else self.n_bootstrap_latency

    def latency_kind(self, n_subjects: int) -> str:
        """What the latency intervals resample: 'auto' is both factors with >= 2 subjects."""
        if self.latency_bootstrap == "auto":
            return "both" if n_subjects >= 2 else "stimuli"
        return self.latency_bootstrap

    def window_samples(self, times: np.ndarray) -> int:
        step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
        return max(1, int(round(self.window / step)))

    # ------------------------------------------------------------------ scoring

    def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
        names = list(activations)
        data, times, meta = self.data_rdms(device)
        model = model_rdms(activations, meta.ids, self.rdm_method, device, self.identifier)
        n_stim = len(meta.ids)
        course = time_resolved_rsa(model, data, times, self.comparator, n_bootstrap=self.latency_resamples(),
                                   seed=seed, bootstrap=self.latency_kind(data.shape[0]))
        win, starts, ends = sliding_windows(data, times, self.window_samples(times))
        cand = np.flatnonzero(starts >= -1e-9)
        if not len(cand):
            cand = np.arange(len(starts))
        win = win[:, cand]
        starts, ends = starts[cand], ends[cand]
        table = self._layer_table(names, model, win, starts, ends, course, seed)

        select, held_out = half_split(n_stim, seed)
        pos, _ = pair_positions(n_stim, select, data.device)
        sel = compare_rdms(model[:, pos], win[..., pos], self.comparator).mean(1)  # (L, W)
        flat = int(torch.argmax(sel))
        best, w = divmod(flat, sel.shape[1])
        pos, _ = pair_positions(n_stim, held_out, data.device)
        test = score_rdms(model[best:best + 1, pos], win[:, w, pos], self.comparator, n_bootstrap=self.n_bootstrap,
                          seed=seed, bootstrap=self.bootstrap)
        raw, ceil = float(test.score[0]), test.ceiling_lower
        window = _fmt_ms(starts[w], ends[w])
        return Scores(
            layers=table, best_layer=names[best],
            raw=raw, ci_low=float(test.ci_low[0]), ci_high=float(test.ci_high[0]), ceiling=ceil,
            normalized=(raw / ceil) if ceil else None, ceiling_lower=ceil, ceiling_upper=test.ceiling_upper,
            normalization=NILI_LOWER if ceil else None, interval=test.interval,
            selection=(f"layer {names[best]} and time window {window} chosen together on a random half of the "
                       f"{n_stim} stimuli (seed {seed}) among {len(names)} layers x {len(starts)} post-onset "
                       f"{self.window * 1000:.0f} ms windows; headline scored on the other {len(held_out)} stimuli, "
                       f"with ceiling and {self.n_bootstrap}-sample CI ({test.interval}) on that half; the "
                       "per-layer table uses all stimuli at each layer's own best window (optimistic)"),
            ceiling_note=meta.note or test.ceiling_note or "Nili et al. (2014) lower bound; normalised = raw / lower bound",
            metric=self.metric + ("-decoding" if self.data_rdm == "decoding" else ""),
            per_target=self._per_target(names, course, meta.subjects),
            provenance=self._provenance(names, course, meta, select, (starts[w], ends[w]), n_windows=len(starts)),
        )

    def _layer_table(self, names, model, win, starts, ends, course, seed) -> pd.DataFrame:
        """All stimuli: r at each layer's best window (CI over stimuli, `n_bootstrap_layers` resamples;
        ceiling there), latencies."""
        per = compare_rdms(model, win, self.comparator).mean(1)  # (L, W)
        rows = []
        for i, name in enumerate(names):
            w = int(torch.argmax(per[i]))
            sc = score_rdms(model[i:i + 1], win[:, w], self.comparator, n_bootstrap=self.n_bootstrap_layers, seed=seed,
                            bootstrap=self.bootstrap)
            raw, ceil = float(sc.score[0]), sc.ceiling_lower
            rows.append({
                "layer": name, "raw": raw, "ci_low": float(sc.ci_low[0]), "ci_high": float(sc.ci_high[0]),
                "ceiling": ceil if ceil is not None else np.nan,
                "normalized": raw / ceil if ceil else np.nan,
                "ceiling_upper": sc.ceiling_upper if sc.ceiling_upper is not None else np.nan,
                "window_start": float(starts[w]), "window_end": float(ends[w]),
                "peak_latency": float(course.peak_latency[i]), "peak_r": float(course.timecourse[i].max()),
                "latency_ci_low": float(course.peak_ci_low[i]), "latency_ci_high": float(course.peak_ci_high[i]),
                "interval": sc.interval, "latency_interval": _latency_interval(course),
            })
        return pd.DataFrame(rows)

    @staticmethod
    def _per_target(names, course, subjects) -> pd.DataFrame:
        mean = course.timecourse.cpu().numpy()
        per = course.per_subject.cpu().numpy()  # (L, S, T)
        frame = pd.DataFrame({
            "layer": np.repeat(names, len(course.times)),
            "time": np.tile(course.times, len(names)),
            "r": mean.reshape(-1),
        })
        for s, subject in enumerate(subjects):
            frame[f"r_{subject}"] = per[:, s].reshape(-1)
        return frame

    def _provenance(self, names, course, meta, select, window, n_windows) -> dict:
        return {
            "comparator": self.comparator, "rdm_method": self.rdm_method, **self.data_rdm_record(),
            "n_bootstrap": self.n_bootstrap,
            "n_bootstrap_layers": self.n_bootstrap_layers, "n_bootstrap_latency": course.n_bootstrap,
            "latency_bootstrap": course.bootstrap, "latency_interval": _latency_interval(course),
            "window_s": self.window, "n_windows": n_windows,
            "selected_window_s": [float(window[0]), float(window[1])],
            "selection_stimuli": [meta.ids[i] for i in select],
            "n_subjects": len(meta.subjects), "subjects": list(meta.subjects),
            "timecourse": {
                "times": [float(t) for t in course.times], "layers": list(names),
                "r": course.timecourse.cpu().numpy().round(6).tolist(),
                "peak_latency": [float(x) for x in course.peak_latency],
                "peak_latency_ci": [[float(a), float(b)] for a, b in zip(course.peak_ci_low, course.peak_ci_high)],
                # every resample's peak latency per layer (the same draws for every layer): the joint
                # samples a statistic over layers (the temporal hierarchy score) needs for its interval
                "peak_latency_samples": (None if course.peak_samples is None
                                         else np.round(course.peak_samples, 6).tolist()),
                "latency_bootstrap": course.bootstrap,
            },
        }
