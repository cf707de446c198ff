"""Pereira et al. (2018): fMRI of participants reading sentences of short passages.

- `pereira2018.384sentences-encoding`: Experiment 2, 384 sentences in 96 passages, 8 participants.
- `pereira2018.243sentences-encoding`: Experiment 3, 243 sentences in 72 passages, 6 participants.

Each participant's archive (`<subject>.tar`) holds `data_384sentences.mat` / `data_243sentences.mat`
with one whole-brain image per sentence (`examples_passagesentences`, sentences x voxels), the
sentences (`keySentences`), their passage (`labelsPassageForEachSentence`) and `meta`, whose
atlases (`meta.atlases`, `meta.rois`, `meta.roiColumns`) include the language parcels
`languageLH` and `languageRH`: their voxels are the targets. Ridge encoding per subject, with
cross-validation folds grouped by passage (inner folds too), so no passage straddles training and
test. The release has one image per sentence (no repetitions), so the ceiling is the
cross-subject one: per voxel, the held-out r^2 of a ridge from the other subjects' language
voxels (same folds). Subjects are combined with `combine_subjects`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from neurobench.data.files import file_state, load_manifest, unpack
from neurobench.data.matlab import cells, load_mat, text
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import (
    AlignmentError,
    DataFormatError,
    DataUnavailableError,
    InvalidInputError,
    NeurobenchError,
)
from neurobench.kinds.encoding import score_encoding
from neurobench.kinds.per_subject import PerSubjectEncodingBenchmark, SubjectResponses
from neurobench.kinds.targets import KeepsLayerTargets
from neurobench.options import names, one_of, option, positive_floats
from neurobench.registry import register_benchmark

log = logging.getLogger(__name__)

DATASET = "pereira2018"
LANGUAGE_ATLASES = ("languageLH", "languageRH")
REQUIRED = ("examples_passagesentences", "keySentences", "labelsPassageForEachSentence", "meta")
META_FIELDS = ("atlases", "rois", "roiColumns")
# The cross-subject ceiling regresses on thousands of voxels of several subjects: a wider grid.
CEILING_ALPHAS = tuple(float(a) for a in np.logspace(-2, 10, 13))
CEILING_NOTE = ("cross-subject ceiling: per voxel, the held-out r^2 of a ridge from the other subjects' "
                "language voxels to this voxel (same passage-grouped folds; voxels with r <= 0 unusable); "
                "the release has one image per sentence, so no split-half ceiling exists; this is the variance "
                "shared across people, not extrapolated to infinitely many subjects (Brain-Score does), so "
                "normalised scores above 1 are possible")


@dataclass(frozen=True)
class Experiment:
    name: str
    number: int
    n_sentences: int
    n_passages: int
    subjects: tuple[str, ...]  # participants of this experiment (release page)

    @property
    def filename(self) -> str:
        return f"data_{self.name}.mat"


EXPERIMENTS = {
    "384sentences": Experiment("384sentences", 2, 384, 96, ("P01", "M02", "M04", "M07", "M08", "M09", "M14", "M15")),
    "243sentences": Experiment("243sentences", 3, 243, 72, ("P01", "M02", "M03", "M04", "M07", "M15")),
}


@dataclass(frozen=True)
class SubjectData:
    """One subject's file: sentences in file order and the responses of the selected voxels."""

    subject: str
    sentences: tuple[str, ...]
    passages: np.ndarray  # (n,) passage number of each sentence, 1-based as in the file
    passage_names: tuple[str, ...]  # per sentence ("" when the file has no keyPassages)
    responses: np.ndarray  # (n, voxels) float64
    voxels: pd.DataFrame  # per selected voxel: column (0-based), atlas, roi, x, y, z


def _field(meta, name: str, path: Path):
    if name not in (meta.dtype.names or ()):
        raise DataFormatError(f"{path}: meta has no field {name!r} (fields: {list(meta.dtype.names or ())}); "
                                "is it a file of another release?")
    return meta[name][0, 0]


def _check_variables(mat: dict, path: Path, experiment: Experiment) -> None:
    missing = [k for k in REQUIRED if k not in mat]
    if missing:
        have = sorted(k for k in mat if not k.startswith("__"))
        raise DataFormatError(f"{path}: lacks the variables {missing} of the Pereira 2018 {experiment.filename} "
                                f"(it has {have}); is it a file of another release or experiment?")


def _check_counts(path: Path, experiment: Experiment, X: np.ndarray, sentences, passages) -> None:
    if X.ndim != 2:
        raise InvalidInputError(f"{path}: examples_passagesentences should be sentences x voxels, got shape {X.shape}")
    if not (X.shape[0] == len(sentences) == len(passages)):
        raise InvalidInputError(f"{path}: {X.shape[0]} rows in examples_passagesentences, {len(sentences)} "
                                f"keySentences and {len(passages)} labelsPassageForEachSentence; they must agree")
    n_passages = len(np.unique(passages))
    others = [e for e in EXPERIMENTS.values() if e is not experiment and e.n_sentences == len(sentences)]
    if others:
        raise InvalidInputError(f"{path}: {len(sentences)} sentences in {n_passages} passages, the size of "
                                f"{others[0].filename} (Experiment {others[0].number}), but Experiment "
                                f"{experiment.number} has {experiment.n_sentences} in {experiment.n_passages}; "
                                "is it the other experiment's file?")
    if len(sentences) != experiment.n_sentences or n_passages != experiment.n_passages:
        log.warning("%s: %d sentences in %d passages, not the release's %d in %d (a subset or miniature copy?)",
                    path, len(sentences), n_passages, experiment.n_sentences, experiment.n_passages)


def _atlas_columns(meta, path: Path, atlases: Sequence[str], n_voxels: int) -> pd.DataFrame:
    """The voxels (columns) of the named atlases, with their ROI names and coordinates."""
    names = [text(a) for a in cells(_field(meta, "atlases", path))]
    rois, columns = cells(_field(meta, "rois", path)), cells(_field(meta, "roiColumns", path))
    if not (len(names) == len(rois) == len(columns)):
        raise InvalidInputError(f"{path}: meta has {len(names)} atlases, {len(rois)} ROI lists and "
                                f"{len(columns)} column lists; they must agree")
    rows = []
    for atlas in atlases:
        if atlas not in names:
            raise InvalidInputError(f"{path}: meta.atlases has no {atlas!r}; it has {names}")
        k = names.index(atlas)
        roi_names, roi_cols = [text(r) for r in cells(rois[k])], cells(columns[k])
        if len(roi_names) != len(roi_cols):
            raise InvalidInputError(f"{path}: atlas {atlas!r} names {len(roi_names)} ROIs but has "
                                    f"{len(roi_cols)} column lists")
        for roi, cols in zip(roi_names, roi_cols):
            idx = np.asarray(cols, dtype=np.float64).ravel()
            if idx.size and (idx.min() < 1 or idx.max() > n_voxels or np.any(idx != np.round(idx))):
                raise InvalidInputError(f"{path}: ROI {roi!r} of {atlas!r} has column numbers outside 1..{n_voxels}")
            rows += [(int(c) - 1, atlas, roi) for c in idx]
    table = pd.DataFrame(rows, columns=["column", "atlas", "roi"]).drop_duplicates("column").sort_values("column")
    if table.empty:
        raise InvalidInputError(f"{path}: the atlases {list(atlases)} select no voxels")
    if "colToCoord" in (meta.dtype.names or ()):
        coords = np.asarray(meta["colToCoord"][0, 0])
        if coords.ndim == 2 and coords.shape[0] == n_voxels and coords.shape[1] == 3:
            for j, axis in enumerate("xyz"):
                table[axis] = coords[table["column"].to_numpy(), j].astype(int)
    return table.reset_index(drop=True)


_read_cache: dict[tuple, SubjectData] = {}


def read_subject(path: Path, subject: str, experiment: Experiment,
                 atlases: Sequence[str] = LANGUAGE_ATLASES) -> SubjectData:
    """Parse one `data_<experiment>.mat`; cached on the file's path, size and mtime."""
    key = (file_state(path), subject, experiment.name, tuple(atlases))
    if key not in _read_cache:
        _read_cache.clear()  # one subject file at a time is plenty; they are large
        _read_cache[key] = _parse(path, subject, experiment, atlases)
    return _read_cache[key]


def _parse(path: Path, subject: str, experiment: Experiment, atlases: Sequence[str]) -> SubjectData:
    mat = load_mat(path, squeeze_me=False, struct_as_record=True)
    _check_variables(mat, path, experiment)
    X = np.asarray(mat["examples_passagesentences"])
    sentences = tuple(text(s) for s in cells(mat["keySentences"]))
    passages = np.asarray(mat["labelsPassageForEachSentence"], dtype=np.float64).ravel().astype(int)
    _check_counts(path, experiment, X, sentences, passages)
    meta = mat["meta"]
    if meta.dtype.names is None or meta.size != 1:
        raise InvalidInputError(f"{path}: meta should be a 1x1 struct, got {meta.dtype} of shape {meta.shape}")
    voxels = _atlas_columns(meta, path, atlases, X.shape[1])
    Y = np.asarray(X[:, voxels["column"].to_numpy()], dtype=np.float64)
    finite = np.isfinite(Y).all(axis=0)
    if not finite.all():
        log.warning("%s: dropping %d voxels with non-finite responses", path, int((~finite).sum()))
        Y, voxels = Y[:, finite], voxels[finite].reset_index(drop=True)
    names = [""] * len(sentences)
    if "keyPassages" in mat:
        keys = [text(p) for p in cells(mat["keyPassages"])]
        if passages.max() <= len(keys):
            names = [keys[p - 1] for p in passages]
    return SubjectData(subject, sentences, passages, tuple(names), Y, voxels)


def _occurrence_keys(sentences: Sequence[str]) -> list[tuple[str, int]]:
    """(text, k-th occurrence): aligns sentences by content even if a text repeats."""
    seen: dict[str, int] = {}
    out = []
    for s in sentences:
        out.append((s, seen.get(s, 0)))
        seen[s] = seen.get(s, 0) + 1
    return out


def align_subject(data: SubjectData, reference: Sequence[str], what: str) -> np.ndarray:
    """Row order that puts `data`'s sentences in `reference` order (AlignmentError if they differ)."""
    mine, ref = _occurrence_keys(data.sentences), _occurrence_keys(reference)
    extra = [s for s, _ in sorted(set(mine) - set(ref))]
    missing = [s for s, _ in sorted(set(ref) - set(mine))]
    if extra or missing:
        raise AlignmentError(f"{what}: {len(extra)} sentences are not in the stimulus set (e.g. {extra[:3]}) and "
                             f"{len(missing)} stimulus-set sentences are missing (e.g. {missing[:3]}); the subjects' "
                             "files must hold the same sentences")
    index = {k: i for i, k in enumerate(mine)}
    return np.asarray([index[k] for k in ref], dtype=np.int64)


def passage_contexts(sentences, passages) -> list[str]:
    """Per sentence, the sentences before it in its passage (file order), joined by spaces."""
    seen: dict[int, list[str]] = {}
    out = []
    for sentence, passage in zip(sentences, passages):
        before = seen.setdefault(int(passage), [])
        out.append(" ".join(before))
        before.append(str(sentence).strip())
    return out


class PereiraEncoding(KeepsLayerTargets, PerSubjectEncodingBenchmark):
    """Per-subject ridge encoding of language-network voxels, passage-grouped folds, cross-subject ceiling.

    Parameters
    ----------
    subjects : list of str or None
        Participants to score (at least 2, for the cross-subject ceiling); None: every
        participant of the experiment whose archive the manifest lists.
    atlases : list of str
        The `meta.atlases` whose voxels are the targets.
    ceiling_alphas : list of float
        Ridge grid of the cross-subject ceiling (it regresses on thousands of voxels of several
        subjects, so wider than the model's).
    context : {'passage', 'none'}
        Read each sentence after the sentences before it in its passage (as participants did),
        or alone.
    """

    datasets = (DATASET,)
    atlases = option(LANGUAGE_ATLASES, names)
    ceiling_alphas = option(CEILING_ALPHAS, positive_floats)
    context = option("passage", one_of("passage", "none"))

    def __init__(self, experiment: str, **options):
        if experiment not in EXPERIMENTS:
            raise NeurobenchError(f"unknown Pereira 2018 experiment {experiment!r}; known: {sorted(EXPERIMENTS)}")
        self.experiment = EXPERIMENTS[experiment]
        self.identifier = f"{DATASET}.{experiment}-encoding"
        self._stimuli: StimulusSet | None = None
        self._ceilings: dict[tuple, dict[str, np.ndarray]] = {}
        self.configure(**options)

    @property
    def description(self) -> str:
        exp = self.experiment
        return (f"Pereira 2018 Experiment {exp.number}: {exp.n_sentences} sentences in {exp.n_passages} passages; "
                f"{'+'.join(self.atlases)} voxels, ridge per subject, passage-grouped folds, cross-subject ceiling")

    # which subjects and files -----------------------------------------------------------------
    def available_subjects(self) -> list[str]:
        """The experiment's participants whose archive the manifest lists."""
        groups = {f.group for f in load_manifest(DATASET).files}
        return [s for s in self.experiment.subjects if s in groups]

    @property
    def data_files(self) -> tuple[tuple[str, str], ...]:
        wanted = self.subjects if self.subjects is not None else self.available_subjects()
        return tuple((DATASET, f"{s}.tar") for s in wanted)

    def selected_subjects(self) -> tuple[str, ...]:
        """Those requested, else every listed participant; the cross-subject ceiling needs >= 2."""
        exp, listed = self.experiment, self.available_subjects()
        if self.subjects is None:
            if len(listed) < 2:
                raise DataUnavailableError(f"{self.identifier}: the {DATASET} manifest lists archives of "
                                           f"{listed} only; the cross-subject ceiling needs >= 2 of {list(exp.subjects)}")
            return tuple(listed)
        unknown = [s for s in self.subjects if s not in exp.subjects]
        if unknown:
            raise NeurobenchError(f"{self.identifier}: subjects {unknown} did not take part in Experiment "
                                  f"{exp.number}; its subjects are {list(exp.subjects)}")
        absent = [s for s in self.subjects if s not in listed]
        if absent:
            raise DataUnavailableError(f"{self.identifier}: the {DATASET} manifest lists no archive for {absent}; "
                                       f"it has {listed}")
        if len(self.subjects) < 2:
            raise InvalidInputError(f"{self.identifier}: the cross-subject ceiling needs >= 2 subjects, "
                                    f"got {list(self.subjects)}")
        return tuple(self.subjects)

    def subject_file(self, subject: str) -> Path:
        """The subject's `data_<experiment>.mat`, from its unpacked archive."""
        folder = unpack(DATASET, f"{subject}.tar")
        hits = sorted(folder.rglob(self.experiment.filename))
        if len(hits) != 1:
            found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.mat"))
            what = "no" if not hits else f"{len(hits)} copies of"
            raise DataUnavailableError(f"{DATASET}/{subject}.tar has {what} {self.experiment.filename} "
                                       f"(its .mat files: {found}); is it another participant's or release's archive?")
        return hits[0]

    def subject_data(self, subject: str) -> SubjectData:
        return read_subject(self.subject_file(subject), subject, self.experiment, self.atlases)

    # stimuli and responses --------------------------------------------------------------------
    def stimuli(self) -> StimulusSet:
        """The sentences in the first subject's file order, with passage labels. With
        context="passage" (the default, as participants and Brain-Score's models read them) each
        sentence is read after the sentences before it in its passage (the `context` label)."""
        if self._stimuli is None:
            ref = self.subject_data(self.selected_subjects()[0])
            exp = self.experiment.name
            ids = [f"{exp}.s{k + 1:03d}" for k in range(len(ref.sentences))]
            labels = pd.DataFrame({"sentence": list(ref.sentences), "passage": ref.passages,
                                   "passage_name": list(ref.passage_names)}, index=ids)
            if self.context == "passage":
                labels["context"] = passage_contexts(ref.sentences, ref.passages)
            self._stimuli = StimulusSet(f"{DATASET}-{exp}", ids, texts=list(ref.sentences), labels=labels)
        return self._stimuli

    def responses(self) -> dict[str, np.ndarray]:
        """Per subject: (sentences x voxels), rows in stimulus-set order."""
        texts = self.stimuli().texts
        out = {}
        for s in self.selected_subjects():
            data = self.subject_data(s)
            order = align_subject(data, texts, f"{s}/{self.experiment.filename}")
            out[s] = data.responses[order]
        return out

    def ceilings(self, responses: dict[str, np.ndarray], seed: int, device, memory_budget=None) -> dict[str, np.ndarray]:
        """Per subject, per voxel: cross-subject ceiling in r^2 units (NaN where unusable), with
        the folds the model is scored on."""
        key = (seed, tuple(responses), tuple(v.shape for v in responses.values()))
        if key not in self._ceilings:
            stim = self.stimuli()
            outer, inner = self.folds(len(stim), stim.labels["passage"].to_numpy(), stim.ids, seed)
            self._ceilings[key] = {
                s: cross_subject_ceiling(Y, [responses[o] for o in responses if o != s], stim.ids, outer, inner,
                                         self.ceiling_alphas, seed, device, self.dtype, memory_budget)
                for s, Y in responses.items()}
        return self._ceilings[key]

    def subject_responses(self, subject: str, seed: int = 0, device="cpu", memory_budget=None) -> SubjectResponses:
        responses = self.responses()
        stim = self.stimuli()
        ceiling = self.ceilings(responses, seed, device, memory_budget)[subject]
        Y = responses[subject]
        return SubjectResponses(subject, stim.ids, Y, groups=stim.labels["passage"].to_numpy(), ceiling=ceiling,
                                ceiling_note=CEILING_NOTE, info={"n_voxels": int(Y.shape[1])})

    def finish(self, scores, per_subject):
        scores = super().finish(scores, per_subject)  # KeepsLayerTargets
        scores.provenance.update({
            "experiment": self.experiment.name, "atlases": list(self.atlases),
            "n_voxels": {s: i["n_voxels"] for s, i in scores.provenance["subject_info"].items()},
            "splits": {**next(iter(per_subject.values())).provenance["splits"], "grouped_by": "passage"},
            "inner_cv": self.inner_cv,
            "stimulus_text": ("each sentence read after the earlier sentences of its passage; its own tokens pooled"
                              if self.context == "passage" else "each sentence alone (no passage context)"),
        })
        return scores


def cross_subject_ceiling(target: np.ndarray, others: Sequence[np.ndarray], ids, outer, inner,
                          alphas: Sequence[float], seed: int, device, dtype: str = "float32",
                          memory_budget: int | None = None) -> np.ndarray:
    """Per target voxel: r^2 of a cross-validated ridge from the other subjects' voxels (NaN if r <= 0).

    Uses `score_encoding` itself, so the ceiling's r is computed exactly as the model's.
    """
    X = np.hstack(list(others))
    res = score_encoding({"other-subjects": X}, target[:, None, :], ids, ids, splits=outer, inner_cv=inner,
                         alphas=alphas, n_bootstrap=0, seed=seed, device=device, dtype=dtype,
                         memory_budget=memory_budget, ceiling=np.ones(target.shape[1]))
    r = res.per_target["r"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(r > 0, r * r, np.nan)


def _register(experiment: str) -> None:
    exp = EXPERIMENTS[experiment]

    def factory(**options):
        return PereiraEncoding(experiment, **options)

    factory.__doc__ = (f"Pereira 2018 Experiment {exp.number}: {exp.n_sentences} sentences, language-network voxels, "
                       "ridge encoding per subject, passage-grouped folds, cross-subject ceiling")
    register_benchmark(f"{DATASET}.{experiment}-encoding", dataset=DATASET, modality="fmri")(factory)


for _experiment in EXPERIMENTS:
    _register(_experiment)
