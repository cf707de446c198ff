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
from neurobench.metrics.trsa import compare_trsa, geodesic_rdms, gt_transform

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


def test_geodesic_matches_networkx():
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(12, 2))
    v = squareform(np.linalg.norm(pts[:, None] - pts[None], axis=-1), checks=False)
    got = geodesic_rdms(v[None], k_nearest=3, dtype=F64).numpy()[0]
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
    thr = geodesic_rdms(v[None], upper=0.5, dtype=F64)
    assert thr.shape == (1, 66) and float(thr.min()) == 0.0 and float(thr.max()) == 1.0


def test_trsa_comparator_on_real_rdms():
    from ..rsa_data import fig1_rdms

    mit, hit = fig1_rdms()
    score = compare_trsa(mit, hit, "tau_a", dtype=F64).item()
    assert 0.1 < score < 0.6
    assert compare_trsa(mit, mit, "tau_a", dtype=F64).item() > 0.9
