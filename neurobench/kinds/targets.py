"""Per-target results of every layer (voxels, neurons, (sensor, time) bins), kept for the store.

`score_encoding(keep_layer_targets=True)` returns each layer's per-target frame (held-out r, the
target's ceiling, normalised value, chosen alpha, usable flag). `layer_target_table` turns those
into one long table, `TARGET_COLUMNS` plus the dataset's target labels (voxel coordinates, voxel
id, sensor and time), which the results store writes as a sidecar file next to the result's
rows (`neurobench.store`) and `neurobench export` reads back.

Per-subject kinds combine subjects in `combine_subjects`, which keeps only the combined table;
`KeepsLayerTargets` (a mixin placed before `PerSubjectEncodingBenchmark`) gathers every subject's
layer targets in the `finish` hook, with the subject's target space (`SubjectResponses.info
["space"]`: voxel-index columns, volume shape and affine) for brain maps.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..result import Scores

TARGET_COLUMNS = ["layer", "subject", "target", "r", "ceiling", "normalized", "alpha", "usable"]
_RENAMES = {"reliability": "ceiling"}  # the per-target ceiling (split-half reliability or the dataset's)
SCORE_COLUMNS = {"r", "r_fold_mean", "normalized", "reliability", "usable", "alpha"}  # score_encoding's frames


def layer_target_table(layer_targets: Mapping[str, pd.DataFrame], labels: pd.DataFrame | None = None,
                       subject: str = "") -> pd.DataFrame:
    """One long table of every layer's targets (`TARGET_COLUMNS`, then the target labels)."""
    frames = []
    for layer, frame in layer_targets.items():
        f = frame.rename(columns=_RENAMES)
        out = pd.DataFrame({"layer": layer, "subject": subject, "target": np.arange(len(f)),
                            **{c: f[c].to_numpy() for c in TARGET_COLUMNS[3:]}})
        if labels is not None:
            for column in labels.columns:
                if column not in out:
                    out[column] = labels[column].to_numpy()
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


def subject_target_table(per_subject: Mapping[str, Scores]) -> pd.DataFrame | None:
    """The long table over subjects, each with the labels its reader gave (`per_target` columns
    that are not scores)."""
    frames = []
    for subject, res in per_subject.items():
        if not res.layer_targets:
            return None
        first = next(iter(res.layer_targets.values()))
        labels = None
        if isinstance(res.per_target, pd.DataFrame) and len(res.per_target) == len(first):
            labels = res.per_target[[c for c in res.per_target.columns if c not in SCORE_COLUMNS]]
        frames.append(layer_target_table(res.layer_targets, labels, subject))
    return pd.concat(frames, ignore_index=True) if frames else None


class KeepsLayerTargets:
    """Mixin for per-subject encoding kinds: keep every subject's and layer's per-target values
    (`Scores.targets`) and the subjects' target spaces (`Scores.target_space`)."""

    keep_layer_targets = True

    def finish(self, scores: Scores, per_subject: Mapping[str, Scores]) -> Scores:
        scores = super().finish(scores, per_subject)
        scores.targets = subject_target_table(per_subject)
        info = scores.provenance.get("subject_info", {})
        spaces = {s: i["space"] for s, i in info.items() if isinstance(i, dict) and i.get("space")}
        scores.target_space = spaces or None
        return scores
