"""Per-subject encoding: a kind for datasets scored subject by subject, and the combination over subjects.

Datasets such as NSD, THINGS-fMRI, THINGS-MEG and Pereira are scored subject by subject (each
subject has its own voxels or sensors, and often its own training stimuli). A dataset module
subclasses `PerSubjectEncodingBenchmark` and supplies its readers: the subjects it has
(`available_subjects`), the stimulus set (`stimuli`), and one subject's responses
(`subject_responses` -> `SubjectResponses`: rows by stimulus id, the dataset's test set or fold
grouping, its ceiling, per-target labels). The kind owns the options, the subject loop, row
alignment by stimulus id, `score_encoding` and the combination over subjects.

The combined score is the mean over subjects, for one layer chosen by the mean inner-CV score
(training data only). Its CI covers new subjects as well as new stimuli (interval
`subjects+stimuli (Schütt 2023 corrected)`, docs/conventions.md): each bootstrap draw resamples
the subjects (with replacement, seeded) and, within each drawn subject, takes that subject's
stimulus resample of the same index; the variance of the mean over those draws, corrected with
the variances of the subject-only and stimulus-only parts of the same draws (Schütt et al. 2023,
`metrics.inference.two_factor_interval`), gives mean +- t(0.975, min(S, n) - 1) sqrt(v). With
the same test stimuli in the same order and the same seed, the subjects share each stimulus
resample (paired); otherwise their stimulus resamples are independent. One subject: the
percentile interval of its stimulus bootstrap (interval `stimuli`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..conventions import (
    EXPLAINABLE_VARIANCE_FRACTION,
    NO_INTERVAL,
    STIMULI,
    SUBJECTS_STIMULI_CORRECTED,
)
from ..errors import AlignmentError, DataUnavailableError, InvalidInputError
from ..metrics.inference import two_factor_interval
from ..metrics.splits import Splits, fixed_split, kfold_splits
from ..options import names, option
from ..result import Scores
from .base import Benchmark
from .encoding import EncodingOptions, score_encoding

log = logging.getLogger(__name__)

__all__ = ["PerSubjectEncodingBenchmark", "SubjectResponses", "combine_subjects", "row_index"]


def row_index(activations: Mapping[str, Any], ids: Sequence[str], what: str) -> dict[str, int]:
    """Row of each stimulus id in activations extracted for the benchmark's stimulus set, after
    checking that every layer has one row per stimulus (each subject then takes its own rows)."""
    for layer, acts in activations.items():
        if len(acts) != len(ids):
            raise InvalidInputError(f"layer {layer!r}: {len(acts)} activation rows for {len(ids)} {what} stimuli; "
                                    "extract activations for the benchmark's own stimulus set")
    return {sid: row for row, sid in enumerate(ids)}


def _subject_samples(per_subject: Mapping[str, Scores], layer: str, key: str) -> np.ndarray | None:
    """(S, B) stimulus-bootstrap samples of every subject (None unless all have B of them)."""
    samples = []
    for res in per_subject.values():
        if not res.bootstrap or layer not in res.bootstrap or res.bootstrap[layer].get(key) is None:
            return None
        samples.append(np.asarray(res.bootstrap[layer][key], dtype=np.float64))
    if len({s.shape for s in samples}) != 1:
        return None
    return np.stack(samples)


def subject_draws(n_subjects: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """(B, S) subjects drawn with replacement, from a stream of its own (`default_rng([seed, 1])`),
    independent of the stimulus resamples (`default_rng(seed)`)."""
    return np.random.default_rng([seed, 1]).integers(0, n_subjects, size=(n_bootstrap, n_subjects))


def _combined_interval(points: np.ndarray, samples: np.ndarray | None, subj: np.ndarray | None,
                       n_stimuli: int) -> tuple[float, float, np.ndarray | None]:
    """(low, high, samples of the mean) of the subject mean: two-factor corrected with >= 2
    subjects, the stimulus percentile interval with one (module docstring)."""
    nan = float("nan")
    if samples is None or not np.isfinite(samples).any():
        return nan, nan, None
    if len(points) == 1:
        lo, hi = np.nanpercentile(samples[0], [2.5, 97.5])
        return float(lo), float(hi), samples[0]
    cols = np.arange(samples.shape[1])[:, None]
    both = samples.T[cols, subj].mean(1)  # draw b: subjects subj[b], each at its own resample b
    lo, hi, _ = two_factor_interval([points.mean()], both, points[subj].mean(1), samples.mean(0),
                                    len(points), n_stimuli)
    return float(lo[0]), float(hi[0]), both


def combine_subjects(per_subject: Mapping[str, Scores], benchmark: str, note: str = "", seed: int = 0) -> Scores:
    """Mean over subjects per layer; the headline layer maximises the mean inner-CV score; CIs
    resample subjects and stimuli (module docstring; `seed` draws the subjects)."""
    if not per_subject:
        raise InvalidInputError(f"{benchmark}: no subject results to combine")
    tables = []
    for subject, res in per_subject.items():
        if "cv_score" not in res.layers:
            raise InvalidInputError(f"{benchmark}: subject {subject}'s result has no inner-CV score per layer")
        tables.append(res.layers.assign(subject=subject))
    layers = list(dict.fromkeys(tables[0]["layer"]))
    for subject, t in zip(per_subject, tables):
        if list(t["layer"]) != layers:
            raise InvalidInputError(f"{benchmark}: subject {subject} was scored on layers {list(t['layer'])}, "
                                    f"the first subject on {layers}")
    long = pd.concat(tables, ignore_index=True)
    mean = long.groupby("layer", sort=False)[["raw", "normalized", "ceiling", "cv_score"]].mean().reindex(layers)
    counts = [c for c in ("n_targets", "alpha_at_min", "alpha_at_max") if c in long]
    summed = long.groupby("layer", sort=False)[counts].sum().reindex(layers) if counts else None
    n_boot = {np.size(r.bootstrap[layer]["raw"]) for r in per_subject.values() if r.bootstrap
              for layer in r.bootstrap if r.bootstrap[layer].get("raw") is not None}
    subj = subject_draws(len(per_subject), n_boot.pop(), seed) if len(n_boot) == 1 else None
    n_stim = min(int(r.provenance.get("n_test_stimuli", 0)) for r in per_subject.values())
    rows, boot = [], {}
    for layer in layers:
        per_layer = {k: np.asarray([float(t.set_index("layer").loc[layer, k]) for t in tables]) for k in ("raw", "normalized")}
        lo, hi, braw = _combined_interval(per_layer["raw"], _subject_samples(per_subject, layer, "raw"), subj, n_stim)
        nlo, nhi, bnorm = _combined_interval(per_layer["normalized"], _subject_samples(per_subject, layer, "normalized"),
                                             subj, n_stim)
        boot[layer] = {"raw": braw, "normalized": bnorm}
        m = mean.loc[layer]
        rows.append({"layer": layer, "raw": float(m["raw"]), "ci_low": lo, "ci_high": hi,
                     "ceiling": float(m["ceiling"]), "normalized": float(m["normalized"]),
                     "normalized_ci_low": nlo, "normalized_ci_high": nhi, "cv_score": float(m["cv_score"]),
                     "n_subjects": len(per_subject),
                     **({k: int(summed.loc[layer, k]) for k in counts} if counts else {})})
    table = pd.DataFrame(rows)
    interval = (NO_INTERVAL if not np.isfinite(table[["ci_low", "ci_high"]].to_numpy()).any()
                else STIMULI if len(per_subject) == 1 else SUBJECTS_STIMULI_CORRECTED)
    best = str(table.loc[table["cv_score"].idxmax(), "layer"])
    b = table[table["layer"] == best].iloc[0]
    per_target = []
    for subject, res in per_subject.items():
        if isinstance(res.per_target, pd.DataFrame):
            per_target.append(res.per_target.assign(subject=subject))
    first = next(iter(per_subject.values()))
    subjects = {
        s: {"best_layer": r.best_layer, "raw": r.raw, "normalized": r.normalized, "ci": [r.ci_low, r.ci_high],
            "ceiling": r.ceiling, **{f"{best}_{k}": float(r.layers.set_index("layer").loc[best, k])
                                      for k in ("raw", "normalized")}}
        for s, r in per_subject.items()
    }
    return Scores(
        layers=table, best_layer=best,
        raw=float(b["raw"]), ci_low=float(b["ci_low"]), ci_high=float(b["ci_high"]),
        ceiling=float(b["ceiling"]), normalized=float(b["normalized"]),
        selection=(f"one layer for all {len(per_subject)} subjects: the best mean over subjects of the inner-CV "
                   "score (training stimuli only); headline = mean over subjects of held-out scores; CI of that mean: "
                   f"{interval}"),
        ceiling_note=(note + "; " if note else "") + f"per subject: {first.ceiling_note}",
        metric=first.metric, normalization=first.normalization or EXPLAINABLE_VARIANCE_FRACTION, interval=interval,
        notes=[f"{s}: {n}" for s, r in per_subject.items() for n in r.notes],
        per_target=pd.concat(per_target, ignore_index=True) if per_target else None,
        provenance={"subjects": subjects, "normalized_ci": [float(b["normalized_ci_low"]), float(b["normalized_ci_high"])],
                    "subject_bootstrap": {"seed_stream": [seed, 1], "n_test_stimuli_min": n_stim},
                    "per_subject_provenance": {s: r.provenance for s, r in per_subject.items()}},
        bootstrap=boot,
    )


@dataclass
class SubjectResponses:
    """One subject's responses, as a dataset's reader hands them to `PerSubjectEncodingBenchmark`.

    `responses` is (stimuli, repetitions, targets), NaN where a stimulus has fewer repetitions,
    or (stimuli, targets) when the dataset gives a ceiling or `test_repetitions`; its rows follow
    `stimulus_ids`. `test_ids`: the dataset's test set (the other rows train); None: the kind's
    `splits` folds. `groups`: a label per row that folds must not split (e.g. a passage); None:
    rows are grouped by stimulus. `ceiling`: per-target ceiling in r^2 units given by the dataset
    (None: split-half reliability of the repetitions). `test_repetitions`: the test rows'
    repeated responses (test rows in order x repetitions x targets) when `responses` holds one
    mean per row. `targets`: per-target columns for the per-target table (voxel coordinates,
    sensor and time). `info`: what the subject's provenance should record.
    """

    subject: str
    stimulus_ids: Sequence[str]
    responses: np.ndarray
    test_ids: Sequence[str] | None = None
    groups: Sequence | None = None
    ceiling: np.ndarray | None = None
    ceiling_note: str | None = None
    test_repetitions: np.ndarray | None = None
    targets: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)


class PerSubjectEncodingBenchmark(EncodingOptions, Benchmark):
    """Ridge encoding subject by subject, combined over subjects (see the module docstring).

    A dataset subclass sets `identifier`, `description`, `datasets` and implements
    `available_subjects`, `stimuli` and `subject_responses`; it may override `default_subjects`
    (which subjects to score when none are asked for), `subject_label` and `finish`.

    Parameters
    ----------
    subjects : list of str or None
        The subjects to score (None: the dataset's default, e.g. every subject whose files are
        local).
    """

    subjects = option(None, names)
    keep_layer_targets = False  # also keep every layer's per-target values (for time courses)

    # ------------------------------------------------------------------ dataset hooks

    def available_subjects(self) -> Sequence[str]:
        """Every subject the dataset has (the order in which they are scored)."""
        raise NotImplementedError

    def default_subjects(self) -> Sequence[str]:
        """The subjects scored when none are asked for (default: all)."""
        return self.available_subjects()

    def subject_responses(self, subject: str, seed: int = 0, device="cpu",
                          memory_budget: int | None = None) -> SubjectResponses:
        """One subject's responses; `seed`, `device` and `memory_budget` are the run's, for
        datasets whose readers compute (e.g. a cross-subject ceiling with the run's folds)."""
        raise NotImplementedError

    def subject_label(self, subject: str) -> str:
        """How a subject is named in results (e.g. 'sub-01')."""
        return subject

    def finish(self, scores: Scores, per_subject: Mapping[str, Scores]) -> Scores:
        """Add dataset-specific provenance to the combined scores (default: nothing)."""
        return scores

    # ------------------------------------------------------------------ the kind

    def selected_subjects(self) -> tuple[str, ...]:
        """The subjects this run scores: those asked for (checked against the dataset's), else
        the dataset's default."""
        if self.subjects is None:
            chosen = tuple(self.default_subjects())
            if not chosen:
                raise DataUnavailableError(f"{self.identifier}: no subject's data is available")
            return chosen
        have = list(self.available_subjects())
        unknown = [s for s in self.subjects if s not in have]
        if unknown:
            raise DataUnavailableError(f"{self.identifier}: the dataset has no subject(s) {unknown}; subjects: {have}")
        return tuple(self.subjects)

    def folds(self, n_rows: int, groups: Sequence | None, ids: Sequence[str], seed: int):
        """Outer folds (the `splits` option) and inner folds, grouped by `groups` (else by stimulus)."""
        if isinstance(self.splits, Splits):
            return self.splits, self.inner_cv
        if groups is None:
            return kfold_splits(n_rows, int(self.splits), groups=np.asarray(ids), seed=seed), self.inner_cv
        g = np.asarray(groups)
        outer = kfold_splits(n_rows, int(self.splits), groups=g, seed=seed)
        inner = self.inner_cv
        if isinstance(inner, (int, np.integer)):
            inner = [kfold_splits(len(tr), int(inner), groups=g[tr], seed=seed) for tr, _ in outer.folds]
        return outer, inner

    def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
        index = row_index(activations, self.stimuli().ids, self.identifier)
        per_subject, info = {}, {}
        for subject in self.selected_subjects():
            data = self.subject_responses(subject, seed=seed, device=device, memory_budget=memory_budget)
            label = self.subject_label(subject)
            log.info("%s: scoring %s", self.identifier, label)
            try:
                per_subject[label] = self._score_subject(data, activations, index, seed, device, memory_budget)
            except InvalidInputError as exc:  # say whose data it is
                raise type(exc)(f"{self.identifier}, subject {label}: {exc}") from None
            info[label] = data.info
        scores = combine_subjects(per_subject, benchmark=self.identifier, seed=seed,
                                  note=f"{len(per_subject)} subjects ({', '.join(per_subject)})")
        scores.provenance.update({"reduction": self.reduction, "subject_info": info})
        return self.finish(scores, per_subject)

    def _score_subject(self, data: SubjectResponses, activations, index, seed, device, memory_budget) -> Scores:
        ids = [str(i) for i in data.stimulus_ids]
        missing = [s for s in ids if s not in index]
        if missing:
            raise AlignmentError(f"{self.identifier}: {data.subject}'s responses are to stimuli the stimulus set "
                                 f"lacks: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        rows = np.asarray([index[s] for s in ids])
        same = len(rows) == len(index) and bool((rows == np.arange(len(rows))).all())
        acts = {name: (a if same else np.asarray(a)[rows]) for name, a in activations.items()}
        if data.test_ids is not None:
            test = set(str(i) for i in data.test_ids)
            outer = fixed_split(ids=np.asarray(ids), train_ids=[i for i in ids if i not in test],
                                test_ids=[i for i in ids if i in test])
            inner = self.inner_cv
        else:
            outer, inner = self.folds(len(ids), data.groups, ids, seed)
        options = {**self.encoding_options(), "inner_cv": inner}
        responses = np.asarray(data.responses)
        if responses.ndim == 2 and data.test_repetitions is None:  # one response per stimulus
            responses = responses[:, None, :]
        scores = score_encoding(acts, responses, ids, ids, splits=outer, seed=seed, device=device,
                                memory_budget=memory_budget, ceiling=data.ceiling, ceiling_note=data.ceiling_note,
                                test_repetitions=data.test_repetitions, keep_layer_targets=self.keep_layer_targets,
                                **options)
        if data.targets is not None:
            for column in data.targets.columns:
                scores.per_target[column] = data.targets[column].to_numpy()
        return scores
