"""One headline over subjects from per-subject encoding results.

Datasets such as NSD, THINGS-fMRI and Pereira are scored subject by subject (each subject has
its own voxels, and often its own training stimuli). The combined score is the mean over
subjects, for one layer chosen by the mean inner-CV score (training data only). Its CI is the
percentile interval of the mean of the subjects' bootstrap samples: with the same test stimuli
in the same order and the same seed, the subjects share the stimulus resampling (a paired
bootstrap over stimuli); otherwise the subjects are resampled independently, which is the
bootstrap of a mean of independent estimates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..result import Scores

__all__ = ["combine_subjects", "row_index"]


def row_index(activations: Mapping[str, Any], ids: Sequence[str], what: str) -> dict[str, int]:
    """Row of each stimulus id in activations extracted for the benchmark's stimulus set, after
    checking that every layer has one row per stimulus (each subject then takes its own rows)."""
    for layer, acts in activations.items():
        if len(acts) != len(ids):
            raise InvalidInputError(f"layer {layer!r}: {len(acts)} activation rows for {len(ids)} {what} stimuli; "
                                    "extract activations for the benchmark's own stimulus set")
    return {sid: row for row, sid in enumerate(ids)}


def _mean_samples(per_subject: Mapping[str, Scores], layer: str, key: str) -> np.ndarray | None:
    samples = []
    for res in per_subject.values():
        if not res.bootstrap or layer not in res.bootstrap:
            return None
        samples.append(np.asarray(res.bootstrap[layer][key], dtype=np.float64))
    if len({s.shape for s in samples}) != 1:
        return None
    return np.mean(samples, axis=0)


def _interval(samples: np.ndarray | None) -> tuple[float, float]:
    if samples is None or not np.isfinite(samples).any():
        return float("nan"), float("nan")
    lo, hi = np.nanpercentile(samples, [2.5, 97.5])
    return float(lo), float(hi)


def combine_subjects(per_subject: Mapping[str, Scores], benchmark: str, note: str = "") -> Scores:
    """Mean over subjects per layer; the headline layer maximises the mean inner-CV score."""
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
    rows = []
    for layer in layers:
        lo, hi = _interval(_mean_samples(per_subject, layer, "raw"))
        nlo, nhi = _interval(_mean_samples(per_subject, layer, "normalized"))
        m = mean.loc[layer]
        rows.append({"layer": layer, "raw": float(m["raw"]), "ci_low": lo, "ci_high": hi,
                     "ceiling": float(m["ceiling"]), "normalized": float(m["normalized"]),
                     "normalized_ci_low": nlo, "normalized_ci_high": nhi, "cv_score": float(m["cv_score"]),
                     "n_subjects": len(per_subject)})
    table = pd.DataFrame(rows)
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
                   "score (training stimuli only); headline = mean over subjects of held-out scores; CI = percentile "
                   "bootstrap of that mean"),
        ceiling_note=(note + "; " if note else "") + f"per subject: {first.ceiling_note}",
        metric=first.metric,
        per_target=pd.concat(per_target, ignore_index=True) if per_target else None,
        provenance={"subjects": subjects, "normalized_ci": [float(b["normalized_ci_low"]), float(b["normalized_ci_high"])],
                    "per_subject_provenance": {s: r.provenance for s, r in per_subject.items()}},
        bootstrap={layer: {"raw": _mean_samples(per_subject, layer, "raw"),
                           "normalized": _mean_samples(per_subject, layer, "normalized")} for layer in layers},
    )
