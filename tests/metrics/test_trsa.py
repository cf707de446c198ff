"""Topological RSA: the geo-topological transform as defined by Lin & Kriegeskorte, geodesic RDMs,
and where rsatoolbox's `geotopological_transform` differs."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from scipy.spatial.distance import squareform
from scipy.stats import rankdata

from neurobench.errors import InvalidInputError
from neurobench.metrics.trsa import (
    compare_rgdm,
    compare_trsa,
    geodesic_rdms,
    gt_transform,
    isomap_geodesic_rdms,
)

F64 = torch.float64


def ref_gt(v, lo, up):
    r = rankdata(v)
    r = (r - r.min()) / (r.max() - r.min())
    ql, qu = np.quantile(r, lo), np.quantile(r, up)
    return np.clip((r - ql) / (qu - ql), 0, 1)


def test_gt_transform_definition_per_rdm():
    rng = np.random.default_rng(0)
    v = rng.random((3, 45)) ** 3
    got = gt_transform(v, 0.2, 0.8, dtype=F64).numpy()
    for i in range(3):
        np.testing.assert_allclose(got[i], ref_gt(v[i], 0.2, 0.8), atol=1e-12)
    frac0, frac1 = (got == 0).mean(), (got == 1).mean()
    assert frac0 == pytest.approx(0.2, abs=0.03) and frac1 == pytest.approx(0.2, abs=0.03)


def test_gt_extremes_geometry_and_topology():
    v = np.random.default_rng(1).random(36)
    geometry = gt_transform(v, 0.0, 1.0, dtype=F64).numpy()
    np.testing.assert_allclose(geometry, (rankdata(v) - 1) / 35, atol=1e-12)
    topo = gt_transform(v, 0.5, 0.5, dtype=F64).numpy()
    assert set(np.unique(topo)) == {0.0, 1.0}
    with pytest.raises(InvalidInputError):
        gt_transform(v, 0.9, 0.1)


def test_differs_from_rsatoolbox_where_documented():
    """rsatoolbox (0.3.2) pools quantiles over all RDMs, skips the rank step and overwrites values
    it has already rescaled (see docs/rsa.md). Concretely:"""
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.rdm.transform import geotopological_transform

    # 1. dissimilarities in [0, 0.5]: rescaled values above its upper quantile (0.4) are set to 1
    #    again, so ~60% of entries saturate instead of the 20% above the 0.8-quantile.
    v = np.linspace(0.0, 0.5, 45)[None]
    theirs = geotopological_transform(RDMs(v.copy()), 0.2, 0.8).get_vectors()[0]
    ours = gt_transform(v, 0.2, 0.8, dtype=F64).numpy()[0]
    assert (ours == 1).mean() == pytest.approx(0.2, abs=0.03)
    assert (theirs == 1).mean() > 0.55
    # 2. negative dissimilarities (crossnobis): the zeros written for the smallest values fall
    #    inside [l-quantile, u-quantile] and are rescaled again: the output is not monotone.
    w = np.linspace(-1.0, 1.0, 45)[None]
    theirs_w = geotopological_transform(RDMs(w.copy()), 0.2, 0.8).get_vectors()[0]
    assert np.any(np.diff(theirs_w) < 0)
    assert np.all(np.diff(gt_transform(w, 0.2, 0.8, dtype=F64).numpy()[0]) >= 0)
    # 3. pooled quantiles: adding another RDM to the call changes rsatoolbox's result for the first
    other = np.linspace(10.0, 20.0, 45)[None]
    pooled = geotopological_transform(RDMs(np.concatenate([v, other])), 0.2, 0.8).get_vectors()[0]
    assert not np.allclose(pooled, theirs)
    ours_pooled = gt_transform(np.concatenate([v, other]), 0.2, 0.8, dtype=F64).numpy()[0]
    np.testing.assert_allclose(ours_pooled, ours)


def test_isomap_geodesic_matches_networkx():
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(12, 2))
    v = squareform(np.linalg.norm(pts[:, None] - pts[None], axis=-1), checks=False)
    got = isomap_geodesic_rdms(v[None], k_nearest=3, dtype=F64).numpy()[0]
    sq = squareform(v)
    g = nx.Graph()
    nn = np.argsort(sq + np.diag(np.full(12, np.inf)), axis=1)[:, :3]
    for i in range(12):
        for j in nn[i]:
            g.add_edge(i, int(j), weight=sq[i, j])
    dist = dict(nx.all_pairs_dijkstra_path_length(g))
    ref = np.array([dist[i].get(j, np.inf) for i in range(12) for j in range(i + 1, 12)])
    ref[np.isinf(ref)] = ref[np.isfinite(ref)].max() + 1
    r = rankdata(ref)
    np.testing.assert_allclose(got, (r - r.min()) / (r.max() - r.min()), atol=1e-12)
    thr = isomap_geodesic_rdms(v[None], upper=0.5, dtype=F64)
    assert thr.shape == (1, 66) and float(thr.min()) == 0.0 and float(thr.max()) == 1.0


def test_trsa_comparator_on_real_rdms():
    from ..rsa_data import fig1_rdms

    mit, hit = fig1_rdms()
    score = compare_trsa(mit, hit, "tau_a", dtype=F64).item()
    assert 0.1 < score < 0.6
    assert compare_trsa(mit, mit, "tau_a", dtype=F64).item() > 0.9


# ------------------------------------------------------------------ the authors' two-step RGDM
def authors_rgdm(v, lo=0.2, up=0.8):
    """Lin & Kriegeskorte's two-step RGDM re-derived from their description in plain numpy/scipy:
    GT transform (ranks scaled to [0, 1], 0 below the l-quantile, 1 above the u-quantile, linear in
    between), min-max scale, drop the edges equal to 1, shortest paths over the remaining weights
    (a dense csgraph treats 0 as "no edge", as networkx's from_numpy_array does), rank."""
    from scipy.sparse.csgraph import shortest_path

    r = rankdata(v)
    r = (r - r.min()) / (r.max() - r.min())
    ql, qu = np.quantile(r, lo), np.quantile(r, up)
    g = np.where(r < ql, 0.0, np.where(r > qu, 1.0, (r - ql) / (qu - ql)))
    g = (g - g.min()) / (g.max() - g.min())
    w = squareform(g)
    w[w == 1] = 0.0
    return rankdata(squareform(shortest_path(w, method="FW", directed=False), checks=False))


@pytest.mark.parametrize("n, ties", [(12, False), (30, False), (25, True)])
def test_geodesic_is_the_authors_two_step_rgdm_on_random_rdms(n, ties):
    from ..rsa_data import random_condensed

    v = random_condensed(np.random.default_rng(n), 3, n, ties=ties)
    got = geodesic_rdms(v, dtype=F64).numpy()
    for i in range(3):
        np.testing.assert_allclose(got[i], authors_rgdm(v[i]), rtol=0, atol=1e-12)
    other = geodesic_rdms(v, 0.1, 0.5, dtype=F64).numpy()
    np.testing.assert_allclose(other[0], authors_rgdm(v[0], 0.1, 0.5), rtol=0, atol=1e-12)


def test_geodesic_is_the_authors_two_step_rgdm_on_the_92_objects():
    from ..rsa_data import fig1_rdms

    mit, hit = fig1_rdms()
    both = np.concatenate([mit, hit])
    got = geodesic_rdms(both, dtype=F64).numpy()
    for i in range(2):
        assert np.max(np.abs(got[i] - authors_rgdm(both[i]))) <= 1e-12
    # documented in docs/rsa.md: mIT vs hIT is 0.028 on RGDMs (0.276 on GT RDMs), because the pairs
    # the transform sets to 0 (the nearest 20%) have no direct edge in the authors' graph
    assert compare_rgdm(mit, hit, "tau_a", dtype=F64).item() == pytest.approx(0.0276, abs=1e-3)
    assert compare_rgdm(mit, mit, "tau_a", dtype=F64).item() > 0.99


def test_geodesic_graph_step_is_rsatoolbox_geodesic_transform():
    """rsatoolbox 0.3.2's geodesic_transform is the graph step (min-max, drop edges equal to 1,
    Floyd-Warshall) without the final ranks; on our GT-transformed RDMs the ranks agree."""
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.rdm.transform import geodesic_transform

    from ..rsa_data import fig1_rdms

    for rdms in (np.random.default_rng(5).random((2, 190)), np.concatenate(fig1_rdms())):
        gt = gt_transform(rdms, dtype=F64).numpy()
        theirs = geodesic_transform(RDMs(gt.copy())).get_vectors()
        ours = geodesic_rdms(rdms, dtype=F64).numpy()
        for i in range(len(rdms)):
            np.testing.assert_allclose(ours[i], rankdata(theirs[i]), rtol=0, atol=1e-12)


def test_geodesic_refuses_incomplete_or_constant_rdms():
    v = np.random.default_rng(0).random(45)
    with pytest.raises(InvalidInputError, match="no NaN"):
        geodesic_rdms(np.where(np.arange(45) == 3, np.nan, v))
    with pytest.raises(InvalidInputError, match="constant"):
        geodesic_rdms(np.ones(45), 0.5, 0.5)
