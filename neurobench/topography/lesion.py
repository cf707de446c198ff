"""Localised processing: does silencing one category's patch hurt that category most?

A linear read-out is fitted on training stimuli; on held-out stimuli we silence (a) the most
selective contiguous patch for a category (chosen on the training split only) and (b) as many
randomly drawn selective units, and compare per-category read-out accuracy. Silencing sets a
unit to its training mean, so the read-out is not refitted: like a lesion downstream of a fixed
decoder.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InvalidInputError
from ._common import as_labels, as_responses, require_positions, rng_for
from .selectivity import category_t_maps, most_selective_patch

log = logging.getLogger(__name__)


class RidgeReadout:
    """One-vs-rest ridge classifier on standardised features, closed form in float64.

    Targets are +-1 per class (as scikit-learn's RidgeClassifier); prediction is the argmax.
    """

    def __init__(self, alpha: float = 1.0):
        if alpha <= 0:
            raise InvalidInputError(f"ridge alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def fit(self, x, y) -> RidgeReadout:
        x = as_responses(x, "training responses")
        y = as_labels(y, x.shape[0])
        self.classes_ = np.array(list(dict.fromkeys(y.tolist())), dtype=object)
        if len(self.classes_) < 2:
            raise InvalidInputError("a read-out needs at least 2 classes in the training labels")
        self.mean_ = x.mean(0)
        sd = x.std(0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        xs = (x - self.mean_) / self.scale_
        t = np.where(y[:, None] == self.classes_[None, :], 1.0, -1.0)
        self.intercept_ = t.mean(0)
        tc = t - self.intercept_
        s, n = xs.shape
        if n <= s:
            self.coef_ = np.linalg.solve(xs.T @ xs + self.alpha * np.eye(n), xs.T @ tc)
        else:  # dual form: cheaper when units outnumber stimuli
            self.coef_ = xs.T @ np.linalg.solve(xs @ xs.T + self.alpha * np.eye(s), tc)
        return self

    def decision_function(self, x, silenced: np.ndarray | None = None) -> np.ndarray:
        xs = (as_responses(x) - self.mean_) / self.scale_
        if silenced is not None and len(silenced):
            xs = xs.copy()
            xs[:, silenced] = 0.0  # = the unit's training mean
        return xs @ self.coef_ + self.intercept_

    def predict(self, x, silenced: np.ndarray | None = None) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(x, silenced), axis=1)]

    def class_accuracy(self, x, y, silenced: np.ndarray | None = None) -> dict:
        """Per-class recall on (x, y): the fraction of each class's stimuli classified correctly."""
        y = as_labels(y, np.asarray(x).shape[0])
        pred = self.predict(x, silenced)
        return {c: float(np.mean(pred[y == c] == c)) for c in self.classes_ if (y == c).any()}


@dataclass(frozen=True)
class LesionResult:
    """Category-specific read-out drops after silencing a patch vs random selective units."""

    category: object
    n_lesioned: int
    patch_units: np.ndarray
    baseline: dict
    after_patch: dict
    after_random: dict  # mean over random draws
    target_drop_patch: float  # accuracy drop for the category
    other_drop_patch: float  # mean drop over the other categories
    target_drop_random: float
    other_drop_random: float
    specificity_patch: float  # target_drop_patch - other_drop_patch
    specificity_random: float
    p_value: float  # fraction of random draws whose target drop >= the patch's (with +1)
    n_random: int
    pool_size: int
    seed: int

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("patch_units")
        return d


def stratified_split(labels, test_fraction: float = 0.5, seed: int = 0):
    """(train_idx, test_idx) with each label split in the same proportion, seeded."""
    lab = np.asarray(labels)
    if not 0 < test_fraction < 1:
        raise InvalidInputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = rng_for(seed)
    train, test = [], []
    for c in dict.fromkeys(lab.tolist()):
        idx = rng.permutation(np.flatnonzero(lab == c))
        k = int(round(len(idx) * test_fraction))
        k = min(max(k, 1), len(idx) - 1) if len(idx) > 1 else 0
        test.extend(idx[:k])
        train.extend(idx[k:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def _drops(base: dict, after: dict, category) -> tuple[float, float]:
    target = base[category] - after[category]
    others = [base[c] - after[c] for c in base if c != category]
    return float(target), float(np.mean(others)) if others else 0.0


def lesion_effect(train_responses, train_labels, test_responses, test_labels, positions,
                  category, *, threshold: float = 3.0, alpha: float = 1.0, n_random: int = 100,
                  control: str = "selective", graph=None, connectivity: int = 8, seed: int = 0,
                  layer: str | None = None) -> LesionResult:
    """Silence the category's most selective patch vs n_random equal-sized random unit sets.

    control: "selective" draws random units among all units with t > threshold for the category
    (the question: does *where* the selective units sit matter?); "any" draws among all units.
    The t map and the patch come from the training split only.
    """
    xtr = as_responses(train_responses, "training responses")
    xte = as_responses(test_responses, "test responses")
    if xtr.shape[1] != xte.shape[1]:
        raise InvalidInputError(f"train and test responses have {xtr.shape[1]} and {xte.shape[1]} units")
    pos = require_positions(positions, xtr.shape[1], layer)
    ytr, yte = as_labels(train_labels, xtr.shape[0]), as_labels(test_labels, xte.shape[0])
    if not (yte == category).any():
        raise InvalidInputError(f"no test stimulus has category {category!r}; cannot score its drop")
    if control not in ("selective", "any"):
        raise InvalidInputError(f"control must be 'selective' or 'any', got {control!r}")
    t = category_t_maps(xtr, ytr, [category]).t[0]
    patch = most_selective_patch(t, pos, threshold, graph=graph, connectivity=connectivity)
    if patch.size == 0:
        raise InvalidInputError(
            f"no unit has t > {threshold:g} for category {category!r} on the training split; "
            "lower `threshold` or use more training stimuli"
        )
    pool = np.flatnonzero(t > threshold) if control == "selective" else np.arange(t.size)
    if pool.size == patch.size:
        log.warning("every selective unit lies in the patch: random and patch lesions coincide")
    readout = RidgeReadout(alpha).fit(xtr, ytr)
    base = readout.class_accuracy(xte, yte)
    after_patch = readout.class_accuracy(xte, yte, patch)
    rng = rng_for(seed)
    rand_acc = [readout.class_accuracy(xte, yte, rng.choice(pool, patch.size, replace=False))
                for _ in range(n_random)]
    after_random = {c: float(np.mean([a[c] for a in rand_acc])) for c in base}
    tp, op = _drops(base, after_patch, category)
    rand_drops = np.array([_drops(base, a, category) for a in rand_acc]).reshape(-1, 2)
    tr_, or_ = (rand_drops.mean(0) if n_random else (0.0, 0.0))
    p = float((1 + np.sum(rand_drops[:, 0] >= tp)) / (1 + n_random))
    return LesionResult(
        category=category, n_lesioned=int(patch.size), patch_units=patch, baseline=base,
        after_patch=after_patch, after_random=after_random, target_drop_patch=tp,
        other_drop_patch=op, target_drop_random=float(tr_), other_drop_random=float(or_),
        specificity_patch=tp - op, specificity_random=float(tr_ - or_), p_value=p,
        n_random=n_random, pool_size=int(pool.size), seed=seed,
    )
