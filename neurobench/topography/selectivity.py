"""Category selectivity on the sheet: t maps, selective fraction, clusters, Moran's I, map similarity.

Per unit and category, a two-sample t statistic with pooled variance (category vs all other
stimuli), as in fMRI localiser contrasts; positive t = prefers the category.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from ..errors import InvalidInputError
from ._common import (
    UnitMask,
    as_labels,
    as_responses,
    check_categories,
    perm_p_value,
    permutations,
    require_positions,
)
from .spatial import (
    MoranResult,
    component_sizes,
    connected_components,
    is_grid,
    morans_i,
    neighbourhood_graph,
)

log = logging.getLogger(__name__)

# |t| cap for units that never vary within either group but differ between them (t would be inf).
T_CAP = 1e3


@dataclass(frozen=True)
class TMaps:
    """t statistic of every unit for every category (category vs rest)."""

    categories: list
    t: np.ndarray  # (n_categories, n_units); constant units hold 0.0
    valid: np.ndarray  # (n_units,) False for constant units
    n_constant: int
    n_capped: int  # t values clipped to +-T_CAP (zero within-group variance)

    def of(self, category) -> np.ndarray:
        """The t map of one category."""
        try:
            return self.t[self.categories.index(category)]
        except ValueError:
            raise InvalidInputError(
                f"category {category!r} was not tested; tested: {self.categories}"
            ) from None


def category_t_maps(responses, labels, categories=None) -> TMaps:
    """Pooled-variance two-sample t (equal_var=True) of each category vs the rest, per unit."""
    x = as_responses(responses)
    lab = as_labels(labels, x.shape[0])
    cats = check_categories(lab, categories)
    mask = UnitMask.of(x)
    t = np.zeros((len(cats), x.shape[1]))
    n_capped = 0
    xv = x[:, mask.valid]
    for k, c in enumerate(cats):
        inside = lab == c
        a, b = xv[inside], xv[~inside]
        n1, n2 = a.shape[0], b.shape[0]
        diff = a.mean(0) - b.mean(0)
        ss = ((a - a.mean(0)) ** 2).sum(0) + ((b - b.mean(0)) ** 2).sum(0)
        se = np.sqrt(ss / (n1 + n2 - 2) * (1.0 / n1 + 1.0 / n2))
        with np.errstate(divide="ignore", invalid="ignore"):
            tk = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.sign(diff) * np.inf)
        capped = ~np.isfinite(tk) | (np.abs(tk) > T_CAP)
        n_capped += int(capped.sum())
        t[k, mask.valid] = np.clip(np.nan_to_num(tk, nan=0.0), -T_CAP, T_CAP)
    if n_capped:
        log.warning("%d t value(s) capped at +-%g: units constant within both groups", n_capped, T_CAP)
    return TMaps(categories=cats, t=t, valid=mask.valid, n_constant=mask.n_constant, n_capped=n_capped)


@dataclass(frozen=True)
class ClusterResult:
    """Connected patches of units selective for one category."""

    labels: np.ndarray  # (n_units,) 0 = not selective, 1..K = patch
    sizes: np.ndarray  # patch sizes, largest first
    largest: int
    largest_p: float  # permutation p for the largest patch (positions shuffled)
    null_largest_mean: float
    best: np.ndarray  # unit indices of the most selective patch (largest summed t)

    @property
    def n_clusters(self) -> int:
        return int(self.sizes.size)


def selectivity_clusters(tmap, positions, threshold: float = 3.0, graph=None,
                         connectivity: int = 8, n_perm: int = 199, seed: int = 0,
                         min_size: int = 1) -> ClusterResult:
    """Patches = connected components of units with t > threshold (grid: 4/8-connectivity).

    The p-value asks whether the largest patch is bigger than when the same t values sit at
    shuffled positions. Patches smaller than min_size are dropped.
    """
    t = np.asarray(tmap, dtype=np.float64)
    pos = require_positions(positions, t.shape[0])
    if n_perm < 1:
        raise InvalidInputError(f"n_perm must be >= 1 for the patch-size p-value, got {n_perm}")
    if graph is None and not is_grid(pos):
        graph = neighbourhood_graph(pos, kind="knn")

    def patches(mask):
        lab = connected_components(mask, pos, graph=graph, connectivity=connectivity)
        if min_size > 1:
            small = np.isin(lab, np.flatnonzero(np.bincount(lab) < min_size))
            lab = np.where(small, 0, lab)
        return lab

    sel = t > threshold
    lab = patches(sel)
    sizes = component_sizes(lab)
    largest = int(sizes[0]) if sizes.size else 0
    null = np.array([component_sizes(patches(sel[p]))[:1].sum() for p in
                     permutations(t.shape[0], n_perm, seed)], dtype=np.float64)
    return ClusterResult(
        labels=lab, sizes=sizes, largest=largest,
        largest_p=perm_p_value(largest, null),
        null_largest_mean=float(null.mean()),
        best=_best_patch(lab, t),
    )


def _best_patch(lab: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Unit indices of the patch with the largest summed t (empty when there is none)."""
    if not lab.any():
        return np.empty(0, dtype=np.int64)
    tsum = np.bincount(lab, weights=np.where(lab > 0, t, 0.0))
    tsum[0] = -np.inf
    return np.flatnonzero(lab == int(np.argmax(tsum)))


def most_selective_patch(tmap, positions, threshold: float = 3.0, graph=None,
                         connectivity: int = 8) -> np.ndarray:
    """Indices of the contiguous patch of units with t > threshold that has the largest summed t."""
    t = np.asarray(tmap, dtype=np.float64)
    pos = require_positions(positions, t.shape[0])
    if graph is None and not is_grid(pos):
        graph = neighbourhood_graph(pos, kind="knn")
    return _best_patch(connected_components(t > threshold, pos, graph, connectivity), t)


def map_similarity(tmaps: TMaps) -> np.ndarray:
    """Pearson correlation between categories' t maps over non-constant units (C x C)."""
    t = tmaps.t[:, tmaps.valid]
    if t.shape[1] < 3:
        raise InvalidInputError("map similarity needs at least 3 non-constant units")
    sd = t.std(axis=1)
    if (sd == 0).any():
        flat = [c for c, s in zip(tmaps.categories, sd, strict=True) if s == 0]
        raise InvalidInputError(f"t map of {flat} is flat over units; its correlation is undefined")
    return np.corrcoef(t)


@dataclass(frozen=True)
class CategorySignature:
    """Everything the selectivity analysis reports for one category."""

    category: object
    selective_fraction: float  # of non-constant units with t > threshold
    n_selective: int
    clusters: ClusterResult
    moran: MoranResult

    def summary(self) -> dict:
        return {
            "category": self.category,
            "selective_fraction": self.selective_fraction,
            "n_selective": self.n_selective,
            "n_clusters": self.clusters.n_clusters,
            "largest_cluster": self.clusters.largest,
            "cluster_sizes": self.clusters.sizes.tolist(),
            "largest_cluster_p": self.clusters.largest_p,
            "morans_i": self.moran.i,
            "morans_i_p": self.moran.p_value,
        }


@dataclass(frozen=True)
class SelectivityResult:
    """Selectivity signatures of one layer (or brain region) for every tested category."""

    tmaps: TMaps
    per_category: dict = field(default_factory=dict)  # category -> CategorySignature
    similarity: np.ndarray | None = None  # (C, C) t-map correlations
    threshold: float = 3.0

    def summary(self) -> list[dict]:
        return [s.summary() for s in self.per_category.values()]


def selectivity(responses, labels, positions, *, categories=None, threshold: float = 3.0,
                graph: sparse.spmatrix | None = None, connectivity: int = 8, n_perm: int = 199,
                seed: int = 0, layer: str | None = None) -> SelectivityResult:
    """t maps, selective fractions, patches, Moran's I and map similarity in one call.

    graph: neighbourhood graph for irregular coordinates (see `neighbourhood_graph`); on an
    integer sheet the default is the grid with the given connectivity.
    """
    x = as_responses(responses)
    pos = require_positions(positions, x.shape[1], layer)
    tm = category_t_maps(x, labels, categories)
    valid = tm.valid
    if valid.sum() < 3:
        raise InvalidInputError(f"only {int(valid.sum())} non-constant unit(s); need >= 3")
    g_all = graph if graph is not None else neighbourhood_graph(pos, connectivity=connectivity)
    g_valid = sparse.csr_matrix(g_all)[valid][:, valid]
    out = {}
    for k, c in enumerate(tm.categories):
        t = tm.t[k]
        clusters = selectivity_clusters(t, pos, threshold, graph=graph, connectivity=connectivity,
                                        n_perm=n_perm, seed=seed + k)
        moran = morans_i(t[valid], g_valid, n_perm=max(n_perm, 1), seed=seed + 1000 + k)
        n_sel = int((t[valid] > threshold).sum())
        out[c] = CategorySignature(c, n_sel / int(valid.sum()), n_sel, clusters, moran)
    sim = map_similarity(tm) if len(tm.categories) > 1 else None
    return SelectivityResult(tmaps=tm, per_category=out, similarity=sim, threshold=threshold)
