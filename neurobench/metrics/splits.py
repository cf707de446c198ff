"""Cross-validation splits grouped by stimulus, seeded, as explicit index arrays.

Repeats of one stimulus (same id) always land on the same side of a split, so a model never
sees a stimulus at training time that it is scored on.  Splits are plain index arrays so they
can be recorded with a result and replayed exactly.

Rows are stimuli, so a split is only right for rows in the order it was built for.  A split
built from stimulus ids (`fixed_split(ids=...)`, or a mask with `ids=`) carries them, and
`Splits.aligned_to(ids)` puts it in the order of the rows it is used on: the same split when
the ids are the same, re-indexed by stimulus id when they are the same stimuli in another order
(e.g. a split built in an assembly's order, used on rows in the stimulus set's order), and an
AlignmentError when they are other stimuli.  A split without ids is positional: it is taken to
index the rows it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AlignmentError, InvalidInputError
from ..ids import check_same_ids

__all__ = ["Splits", "kfold_splits", "fixed_split"]


@dataclass(frozen=True)
class Splits:
    """A list of (train_idx, test_idx) pairs over rows, plus how they were made.

    `ids`: the stimulus id of each row the splits were built for (None: positional splits, which
    index whatever rows they are given); see `aligned_to`.
    """

    kind: str
    seed: int | None
    folds: list[tuple[np.ndarray, np.ndarray]]
    n_samples: int
    meta: dict[str, Any] = field(default_factory=dict)
    ids: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.ids is not None:
            object.__setattr__(self, "ids", tuple(str(i) for i in self.ids))
            if len(self.ids) != self.n_samples:
                raise InvalidInputError(f"splits over {self.n_samples} rows carry {len(self.ids)} stimulus ids; "
                                        "give one id per row")

    def __len__(self) -> int:
        return len(self.folds)

    def __repr__(self) -> str:
        ids = "positional" if self.ids is None else f"ids {list(self.ids[:3])}{' ...' if len(self.ids) > 3 else ''}"
        return f"Splits({self.kind!r}, {len(self.folds)} fold(s) over {self.n_samples} rows, {ids})"

    def __iter__(self):
        return iter(self.folds)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.folds[i]

    def to_record(self) -> dict[str, Any]:
        """JSON-friendly description that reproduces the splits exactly."""
        return {
            "kind": self.kind,
            "seed": self.seed,
            "n_samples": self.n_samples,
            "n_splits": len(self.folds),
            "folds": [
                {"train": tr.tolist(), "test": te.tolist()} for tr, te in self.folds
            ],
            **({"ids": list(self.ids)} if self.ids is not None else {}),
            **self.meta,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Splits:
        folds = [
            (np.asarray(f["train"], dtype=np.int64), np.asarray(f["test"], dtype=np.int64))
            for f in rec["folds"]
        ]
        meta = {k: v for k, v in rec.items()
                if k not in {"kind", "seed", "n_samples", "n_splits", "folds", "ids"}}
        return cls(rec["kind"], rec["seed"], folds, int(rec["n_samples"]), meta, rec.get("ids"))

    def aligned_to(self, ids: Sequence, what: str = "the responses") -> Splits:
        """These splits over rows that follow `ids` (the stimulus id of each row).

        Splits built for exactly these ids, or without ids (positional), are returned as they
        are. Splits built for the same stimuli in another order are re-indexed by stimulus id.
        AlignmentError when the stimuli differ, or when an id's rows straddle a fold (its side
        would depend on the row order).
        """
        want = [str(i) for i in ids]
        if self.ids is None or list(self.ids) == want:
            if self.ids is None and len(want) != self.n_samples:
                raise AlignmentError(f"splits over {self.n_samples} rows used on {len(want)} rows of {what}")
            return self
        check_same_ids(sorted(self.ids), sorted(want), "the splits' stimulus ids", f"the stimulus ids of {what}",
                       hint="build the split from the ids of the rows it is used on (fixed_split(ids=..., "
                            "train_ids=...))")
        rows_of: dict[str, list[int]] = {}
        for r, i in enumerate(want):
            rows_of.setdefault(i, []).append(r)
        folds = []
        for k, (tr, te) in enumerate(self.folds):
            side: dict[str, str] = {}
            for rows, name in ((tr, "train"), (te, "test")):
                for r in np.asarray(rows).tolist():
                    if side.setdefault(self.ids[r], name) != name:
                        raise AlignmentError(
                            f"fold {k} of the splits puts rows of stimulus {self.ids[r]!r} on both sides, so it "
                            f"cannot be re-indexed by stimulus id for {what} (in another order); build it for "
                            "their rows, in their order")
            folds.append(tuple(np.sort(np.asarray([r for i, sd in side.items() if sd == name for r in rows_of[i]],
                                                  dtype=np.int64)) for name in ("train", "test")))
        return Splits(self.kind, self.seed, folds, len(want), {**self.meta, "realigned_by_id": True}, tuple(want))


def _groups(n_samples: int | None, groups: Sequence | np.ndarray | None) -> np.ndarray:
    """Integer group codes per row (each row its own group when no ids are given)."""
    if groups is None:
        if n_samples is None:
            raise InvalidInputError("give n_samples or groups (stimulus ids per row)")
        return np.arange(n_samples)
    ids = np.asarray(groups)
    if ids.ndim != 1:
        raise InvalidInputError(f"stimulus ids must be 1-D, got shape {ids.shape}")
    if n_samples is not None and len(ids) != n_samples:
        raise InvalidInputError(
            f"{len(ids)} stimulus ids for {n_samples} rows; give one id per row"
        )
    _, codes = np.unique(ids, return_inverse=True)
    return codes.reshape(-1)


def kfold_splits(
    n_samples: int | None = None,
    n_splits: int = 5,
    groups: Sequence | np.ndarray | None = None,
    seed: int | None = 0,
    shuffle: bool = True,
) -> Splits:
    """K folds over stimuli: every id's rows go to exactly one test fold.

    With `shuffle`, unique ids are permuted with `numpy.random.default_rng(seed)` before
    being cut into `n_splits` contiguous, near-equal blocks (like sklearn's KFold on ids).
    """
    codes = _groups(n_samples, groups)
    n = len(codes)
    n_groups = int(codes.max()) + 1 if n else 0
    if n_splits < 2:
        raise InvalidInputError(f"n_splits must be >= 2, got {n_splits}")
    if n_groups < n_splits:
        raise InvalidInputError(
            f"cannot make {n_splits} folds from {n_groups} distinct stimuli; "
            f"use at most {n_groups} folds or provide more stimuli"
        )
    order = np.arange(n_groups)
    if shuffle:
        order = np.random.default_rng(seed).permutation(n_groups)
    sizes = np.full(n_splits, n_groups // n_splits)
    sizes[: n_groups % n_splits] += 1
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    start = 0
    for k, size in enumerate(sizes):
        fold_of_group[order[start:start + size]] = k
        start += size
    fold_of_row = fold_of_group[codes]
    folds = []
    for k in range(n_splits):
        test = np.flatnonzero(fold_of_row == k)
        train = np.flatnonzero(fold_of_row != k)
        folds.append((train, test))
    return Splits("kfold", seed if shuffle else None, folds, n,
                  {"grouped": groups is not None, "shuffle": shuffle})


def fixed_split(
    is_train: Sequence[bool] | np.ndarray | None = None,
    *,
    ids: Sequence | np.ndarray | None = None,
    train_ids: Sequence | np.ndarray | None = None,
    test_ids: Sequence | np.ndarray | None = None,
) -> Splits:
    """One train/test split a dataset defines: a boolean mask, or ids per row + train ids.

    With ids, rows whose id is in `train_ids` train; rows in `test_ids` (default: all others)
    test.  An id listed on both sides is an error, since its repeats would straddle the split.
    `ids` (the stimulus id of each row, with a mask too) travel with the split, so that
    `score_encoding` uses it on the right rows whatever their order (`Splits.aligned_to`); a
    mask without ids is positional.
    """
    if is_train is not None:
        mask = np.asarray(is_train)
        if mask.dtype != bool or mask.ndim != 1:
            raise InvalidInputError("is_train must be a 1-D boolean array")
        if train_ids is not None or test_ids is not None:
            raise InvalidInputError("give is_train or train_ids/test_ids, not both")
        if ids is not None and len(ids) != len(mask):
            raise InvalidInputError(f"{len(ids)} ids for a mask of {len(mask)} rows; give one id per row")
        train, test = np.flatnonzero(mask), np.flatnonzero(~mask)
        n = len(mask)
    else:
        if ids is None or train_ids is None:
            raise InvalidInputError("give is_train, or ids with train_ids")
        ids = np.asarray(ids)
        tr_set = set(np.asarray(train_ids).tolist())
        te_set = set(np.asarray(test_ids).tolist()) if test_ids is not None else None
        if te_set is not None and tr_set & te_set:
            both = sorted(tr_set & te_set)[:5]
            raise InvalidInputError(f"ids on both sides of the split, e.g. {both}")
        in_train = np.array([i in tr_set for i in ids.tolist()], dtype=bool)
        if te_set is None:
            in_test = ~in_train
        else:
            in_test = np.array([i in te_set for i in ids.tolist()], dtype=bool)
        train, test = np.flatnonzero(in_train), np.flatnonzero(in_test)
        n = len(ids)
    if len(train) == 0 or len(test) == 0:
        raise InvalidInputError(
            f"fixed split has {len(train)} training and {len(test)} test rows; both must be > 0"
        )
    return Splits("fixed", None, [(train, test)], n, ids=None if ids is None else tuple(np.asarray(ids).tolist()))
