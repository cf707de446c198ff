"""Time-resolved encoding (MEG/EEG): every (sensor, time bin) is a target, scored per subject.

MEG datasets such as THINGS-MEG show each training image once and each test image many times.
`split_responses` takes the two parts as they are, (train images x targets) and (test images x
repetitions x targets), and returns them in the form `PerSubjectEncodingBenchmark` scores: one
mean response per image plus the test images' repetitions (`score_encoding`'s
`test_repetitions`), so 22k training images are never padded to 12 repetitions (~29 GB for 27k
sensor-time targets). Ridge with nested CV on the training images, held-out r on the test images'
mean responses, the split-half Spearman-Brown ceiling of the test repetitions, stimulus-bootstrap
CIs.

`TemporalEncodingBenchmark` is the kind: a dataset module supplies its readers (targets labelled
with `sensor` and `time`, sensor-major: target = sensor * n_bins + bin) and gets, besides the
headline, every layer's time course (`provenance["timecourse"]`: per bin, the median over
sensors of held-out r and of the normalised score, per subject and averaged over subjects) and
the headline layer's per-target table (subject x sensor x time).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import AlignmentError, InvalidInputError
from ..result import Scores
from .per_subject import PerSubjectEncodingBenchmark
from .targets import KeepsLayerTargets

log = logging.getLogger(__name__)

__all__ = ["TemporalEncodingBenchmark", "split_responses", "timecourse"]


def split_responses(train: np.ndarray, test: np.ndarray, train_ids: Sequence, test_ids: Sequence
                    ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids: training then test, one mean response per image (float32), the test repetitions)
    from single-trial training responses (images, targets) and repeated test responses (images,
    repetitions, targets)."""
    if train.ndim != 2 or test.ndim != 3:
        raise InvalidInputError(f"train must be (images, targets) and test (images, repetitions, targets); got "
                                f"{train.shape} and {test.shape}")
    if train.shape[1] != test.shape[2]:
        raise InvalidInputError(f"{train.shape[1]} training targets but {test.shape[2]} test targets")
    if len(train_ids) != len(train) or len(test_ids) != len(test):
        raise InvalidInputError(f"{len(train_ids)} / {len(test_ids)} ids for {len(train)} training / {len(test)} "
                                "test rows")
    if test.shape[1] < 2:
        raise InvalidInputError(f"the split-half ceiling needs >= 2 test repetitions, got {test.shape[1]}")
    if not (np.isfinite(train).all() and np.isfinite(test).all()):
        raise InvalidInputError("responses contain NaN/inf; drop or impute missing trials first")
    ids = [str(i) for i in train_ids] + [str(i) for i in test_ids]
    means = np.concatenate([np.asarray(train, dtype=np.float32), np.asarray(test, dtype=np.float32).mean(1)])
    return ids, means, test


def timecourse(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Median over sensors per time bin of per-target values laid out sensor-major
    (target = sensor * n_bins + bin); NaN where a bin has no finite value."""
    grid = np.asarray(values, dtype=np.float64).reshape(-1, n_bins)
    out = np.full(n_bins, np.nan)
    ok = np.isfinite(grid).any(0)
    out[ok] = np.nanmedian(grid[:, ok], axis=0)
    return out


class TemporalEncodingBenchmark(KeepsLayerTargets, PerSubjectEncodingBenchmark):
    """Per-subject encoding of (sensor, time bin) targets, with time courses (module docstring).

    A dataset's `subject_responses` labels its targets with `sensor` and `time` columns
    (sensor-major); every subject must share the time axis.
    """

    def finish(self, scores: Scores, per_subject: Mapping[str, Scores]) -> Scores:
        scores = super().finish(scores, per_subject)  # KeepsLayerTargets: every layer's targets
        times = _shared_times(per_subject, self.identifier)
        layers = list(scores.layers["layer"])
        scores.per_target = _best_layer_targets(per_subject, scores.best_layer)
        scores.provenance["timecourse"] = _timecourses(per_subject, layers, times)
        return scores


def _shared_times(per_subject: Mapping[str, Scores], what: str) -> np.ndarray:
    times = None
    for subject, res in per_subject.items():
        if "time" not in res.per_target:
            raise InvalidInputError(f"{what}: {subject}'s targets carry no 'time' label")
        t = pd.unique(res.per_target["time"].to_numpy(dtype=np.float64))
        if times is not None and (len(t) != len(times) or not np.allclose(t, times)):
            raise AlignmentError(f"{what}: {subject} has another time axis than {next(iter(per_subject))}")
        times = t
    return times


def _best_layer_targets(per_subject: Mapping[str, Scores], best: str) -> pd.DataFrame:
    """Long per-target table of the headline layer: one row per subject x sensor x time bin."""
    frames = []
    for subject, res in per_subject.items():
        lay = res.layer_targets[best]
        frames.append(pd.DataFrame({"subject": subject, "sensor": res.per_target["sensor"].to_numpy(),
                                    "time": res.per_target["time"].to_numpy(), "r": lay["r"].to_numpy(),
                                    "normalized": lay["normalized"].to_numpy(),
                                    "reliability": lay["reliability"].to_numpy(), "usable": lay["usable"].to_numpy(),
                                    "alpha": lay["alpha"].to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def _timecourses(per_subject: Mapping[str, Scores], names: list[str], times: np.ndarray) -> dict:
    """Per layer and bin: median over sensors of held-out r and of the normalised score, per
    subject and averaged over subjects."""
    n = len(times)
    per = {s: {k: np.stack([timecourse(res.layer_targets[name][k].to_numpy(), n) for name in names])
               for k in ("r", "normalized")}
           for s, res in per_subject.items()}

    def mean(k):
        with np.errstate(all="ignore"):
            return np.nanmean(np.stack([p[k] for p in per.values()]), axis=0)

    def lists(a):
        return np.round(a, 6).tolist()

    return {"times": [float(t) for t in times], "layers": list(names), "statistic":
            "median over sensors per time bin (normalised: over sensors with a usable ceiling); mean over subjects",
            "r": lists(mean("r")), "normalized": lists(mean("normalized")),
            "per_subject": {s: {k: lists(v) for k, v in p.items()} for s, p in per.items()}}
