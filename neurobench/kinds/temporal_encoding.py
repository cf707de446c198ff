"""Encoding with single-trial training images and repeated test images, and time courses of it.

MEG datasets such as THINGS-MEG show each training image once and each test image many times.
`score_split_encoding` takes the two parts as they are, (train images x targets) and (test images
x repetitions x targets), and scores them with `score_encoding` (a fixed split, its
`test_repetitions`: no padding of 22k training images to 12 repetitions, which would be ~29 GB
for 27k sensor-time targets): ridge with nested CV on the training images, held-out r on the test
images' mean responses, the split-half Spearman-Brown ceiling of the test repetitions,
stimulus-bootstrap CIs. It also returns every layer's per-target r and normalised score, from
which `timecourse` makes per-time-bin medians over sensors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..metrics.splits import fixed_split
from ..result import Scores
from .encoding import score_encoding

log = logging.getLogger(__name__)

__all__ = ["score_split_encoding", "timecourse"]


def _check(train: np.ndarray, test: np.ndarray, train_ids: Sequence, test_ids: Sequence) -> None:
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


def score_split_encoding(activations: Mapping[str, Any], train: np.ndarray, test: np.ndarray,
                         train_ids: Sequence, test_ids: Sequence, **kwargs: Any
                         ) -> tuple[Scores, dict[str, dict[str, np.ndarray]]]:
    """Score layers whose activation rows follow `train_ids` then `test_ids` (keyword arguments
    go to `score_encoding`).

    Returns the Scores and, per layer, the per-target held-out `r`, `normalized`, `usable`,
    `alpha` and `r_fold_mean` arrays.
    """
    _check(train, test, train_ids, test_ids)
    ids = [str(i) for i in train_ids] + [str(i) for i in test_ids]
    n_train = len(train)
    means = np.concatenate([np.asarray(train, dtype=np.float32), np.asarray(test, dtype=np.float32).mean(1)])
    split = fixed_split(ids=ids, train_ids=ids[:n_train], test_ids=ids[n_train:])
    result = score_encoding(activations, means, ids, ids, splits=split, test_repetitions=test,
                            keep_layer_targets=True, **kwargs)
    per_layer = {name: {k: frame[k].to_numpy() for k in ("r", "normalized", "usable", "alpha", "r_fold_mean")}
                 for name, frame in result.layer_targets.items()}
    return result, per_layer


def timecourse(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Median over sensors per time bin of per-target values laid out sensor-major
    (target = sensor * n_bins + bin); NaN where a bin has no finite value."""
    grid = np.asarray(values, dtype=np.float64).reshape(-1, n_bins)
    out = np.full(n_bins, np.nan)
    ok = np.isfinite(grid).any(0)
    out[ok] = np.nanmedian(grid[:, ok], axis=0)
    return out
