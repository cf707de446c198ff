"""Time-resolved RSA benchmarks (MEG/EEG): every model layer's RDM against the data RDM of every
time point, per subject.

Per layer (all stimuli): the time course (subject mean), its peak latency with a bootstrap CI
(subjects when there are >= 2, else stimuli), and the r at the layer's best time window with a
stimulus-bootstrap CI and the Nili et al. (2014) ceiling of that window.

The headline is chosen without peeking, as in `RSABenchmark`, but over layers *and* time windows:
stimuli are split in two seeded halves; the (layer, window) pair that scores best on the selection
half is scored on the held-out half only (r, stimulus-bootstrap CI, Nili ceiling of that window
when there are >= 2 subjects, else a note saying why there is none). Windows are sliding boxcars
of `window` seconds over the data RDMs (RDMs averaged over the window's time points); only windows
starting at or after stimulus onset are candidates.

The full layer x time matrix is in `result.per_target` (long DataFrame: layer, time, r and one
`r_<subject>` column per subject) and in `result.provenance["timecourse"]` (lists).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..data.stimuli import StimulusSet
from ..errors import InvalidInputError
from ..metrics.inference import score_rdms
from ..metrics.rdm import compute_rdms, n_stimuli_from_length, pair_positions, upper_triangle
from ..metrics.rsa import canonical_method, compare_rdms
from ..metrics.temporal import time_resolved_rsa
from ..options import finite_float, int_at_least, non_negative_int, option
from ..result import Scores
from .base import Benchmark
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
        Stimulus-bootstrap resamples for the headline's confidence interval (0: none).
    n_bootstrap_layers : int
        Stimulus-bootstrap resamples for each layer's interval in the per-layer table.
    n_bootstrap_latency : int or None
        Resamples for the peak-latency intervals (None: 1,000 with several subjects, where
        resampling subjects is cheap, else 100 stimulus resamples).
    """

    window = option(0.05, finite_float)
    n_bootstrap = option(1000, non_negative_int)
    n_bootstrap_layers = option(200, non_negative_int)
    n_bootstrap_latency = option(None, int_at_least(0))

    def __init__(self, identifier: str, description: str, datasets: tuple[str, ...],
                 load_stimuli: Callable[[], StimulusSet], load_data: Callable[[], TemporalData],
                 comparator: str = "spearman", rdm_method: str = "correlation",
                 data_files: tuple[tuple[str, str], ...] = (), **options):
        self.identifier, self.description, self.datasets = identifier, description, datasets
        self._load_stimuli, self._load_data = load_stimuli, load_data
        self.comparator, self.rdm_method = canonical_method(comparator), rdm_method
        self.configure(**options)
        if data_files:
            self.data_files = tuple(data_files)
        self.metric = f"temporal-rsa-{self.comparator}"
        self._stimuli: StimulusSet | None = None
        self._data: TemporalData | None = None

    # ------------------------------------------------------------------ data

    def temporal_data(self) -> TemporalData:
        """The data (loaded once per benchmark instance), checked against the stimulus set."""
        if self._data is None:
            self._data = self._load_data()
        data = self._data
        self.stimuli().check_aligned(data.ids, what=f"{self.identifier} data RDMs")
        return data

    def data_rdms(self, device: torch.device) -> tuple[torch.Tensor, np.ndarray, TemporalData]:
        data = self.temporal_data()
        t = torch.as_tensor(data.rdms, dtype=torch.float64, device=device)
        if t.ndim == 4:
            t = upper_triangle(t)
        times = np.asarray(data.times, dtype=float)
        if t.ndim != 3 or t.shape[1] != len(times) or t.shape[0] != len(data.subjects):
            raise InvalidInputError(
                f"{self.identifier}: data RDMs must be (subjects {len(data.subjects)}, times {len(times)}, K); "
                f"got {tuple(t.shape)}")
        if n_stimuli_from_length(t.shape[-1]) != len(data.ids):
            raise InvalidInputError(f"{self.identifier}: RDMs cover {n_stimuli_from_length(t.shape[-1])} stimuli, "
                                    f"ids {len(data.ids)}")
        return t, times, data

    def latency_resamples(self, data: torch.Tensor) -> int:
        """Peak-latency bootstrap size: resampling subjects costs nothing, resampling stimuli
        recomputes every time course, so one subject gets 100 resamples unless set."""
        if self.n_bootstrap_latency is not None:
            return self.n_bootstrap_latency
        return 1000 if data.shape[0] >= 2 else 100

    def window_samples(self, times: np.ndarray) -> int:
        step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
        return max(1, int(round(self.window / step)))

    # ------------------------------------------------------------------ scoring

    def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
        names = list(activations)
        data, times, meta = self.data_rdms(device)
        model = torch.stack([
            upper_triangle(compute_rdms(torch.as_tensor(np.asarray(activations[n])), self.rdm_method, device=device,
                                        dtype=torch.float64))
            for n in names])
        n_stim = len(meta.ids)
        course = time_resolved_rsa(model, data, times, self.comparator, n_bootstrap=self.latency_resamples(data),
                                   seed=seed)
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
                          seed=seed, bootstrap="stimuli")
        raw, ceil = float(test.score[0]), test.ceiling_lower
        window = _fmt_ms(starts[w], ends[w])
        return Scores(
            layers=table, best_layer=names[best],
            raw=raw, ci_low=float(test.ci_low[0]), ci_high=float(test.ci_high[0]), ceiling=ceil,
            normalized=(raw / ceil) if ceil else None, ceiling_lower=ceil, ceiling_upper=test.ceiling_upper,
            selection=(f"layer {names[best]} and time window {window} chosen together on a random half of the "
                       f"{n_stim} stimuli (seed {seed}) among {len(names)} layers x {len(starts)} post-onset "
                       f"{self.window * 1000:.0f} ms windows; headline scored on the other {len(held_out)} stimuli, "
                       f"with ceiling and {self.n_bootstrap}-sample stimulus-bootstrap CI on that half; the "
                       "per-layer table uses all stimuli at each layer's own best window (optimistic)"),
            ceiling_note=meta.note or test.ceiling_note or "Nili et al. (2014) lower bound; normalised = raw / lower bound",
            metric=self.metric, per_target=self._per_target(names, course, meta.subjects),
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
                            bootstrap="stimuli")
            raw, ceil = float(sc.score[0]), sc.ceiling_lower
            rows.append({
                "layer": name, "raw": raw, "ci_low": float(sc.ci_low[0]), "ci_high": float(sc.ci_high[0]),
                "ceiling": ceil if ceil is not None else np.nan,
                "normalized": raw / ceil if ceil else np.nan,
                "ceiling_upper": sc.ceiling_upper if sc.ceiling_upper is not None else np.nan,
                "window_start": float(starts[w]), "window_end": float(ends[w]),
                "peak_latency": float(course.peak_latency[i]), "peak_r": float(course.timecourse[i].max()),
                "latency_ci_low": float(course.peak_ci_low[i]), "latency_ci_high": float(course.peak_ci_high[i]),
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
            "comparator": self.comparator, "rdm_method": self.rdm_method, "n_bootstrap": self.n_bootstrap,
            "n_bootstrap_layers": self.n_bootstrap_layers, "n_bootstrap_latency": course.n_bootstrap,
            "latency_bootstrap": course.bootstrap,
            "window_s": self.window, "n_windows": n_windows,
            "selected_window_s": [float(window[0]), float(window[1])],
            "selection_stimuli": [meta.ids[i] for i in select],
            "n_subjects": len(meta.subjects), "subjects": list(meta.subjects),
            "timecourse": {
                "times": [float(t) for t in course.times], "layers": list(names),
                "r": course.timecourse.cpu().numpy().round(6).tolist(),
                "peak_latency": [float(x) for x in course.peak_latency],
                "peak_latency_ci": [[float(a), float(b)] for a, b in zip(course.peak_ci_low, course.peak_ci_high)],
            },
        }
