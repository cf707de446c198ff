"""Topographic signatures on constructed layers with known organisation, and on pure noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, stats

from neurobench.errors import InvalidInputError, NoSheetPositionsError
from neurobench.models.sheet import sheet_positions, sheet_shape
from neurobench.topography import (
    RidgeReadout,
    category_t_maps,
    connected_components,
    effective_dimensionality,
    lesion_effect,
    map_similarity,
    mesh_graph,
    morans_i,
    neighbourhood_graph,
    participation_ratio,
    selectivity,
    selectivity_clusters,
    shuffled_positions,
    smoothness,
    stratified_split,
    voxel_coordinates,
)

N_UNITS = 256  # 16 x 16 sheet
CATS = np.repeat(np.array(["face", "body", "object"]), 20)
CENTRES = {"face": (4, 4), "body": (4, 8), "object": (12, 12)}  # face and body neighbours


def _bump(h, w, centre, radius=2.5):
    yy, xx = np.mgrid[:h, :w]
    return np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * radius**2)).ravel()


def organised_layer(seed=0, n=N_UNITS, labels=CATS, amp=2.0, sigma=2.0):
    """Responses that are smooth Gaussian random fields on the sheet plus a category bump each."""
    rng = np.random.default_rng(seed)
    h, w = sheet_shape(n)
    x = np.empty((len(labels), n))
    for s, lab in enumerate(labels):
        f = ndimage.gaussian_filter(rng.standard_normal((h, w)), sigma).ravel()
        x[s] = f / f.std() + amp * _bump(h, w, CENTRES[lab])
    return x


def shuffled(x, seed=1):
    return x[:, np.random.default_rng(seed).permutation(x.shape[1])]


@pytest.fixture(scope="module")
def layers():
    x = organised_layer()
    return {"smooth": x, "shuffled": shuffled(x),
            "noise": np.random.default_rng(5).standard_normal(x.shape)}


POS = sheet_positions(N_UNITS)


# --------------------------------------------------------------------------- smoothness
def test_smoothness_separates_organised_from_shuffled(layers):
    sm = smoothness(layers["smooth"], POS, n_perm=100)
    sh = smoothness(layers["shuffled"], POS, n_perm=100)
    assert sm.score > 0.5 and abs(sh.score) < 0.1
    assert sm.z > 20 and sm.p_value == pytest.approx(1 / 101)
    assert sm.distance_correlation > 0.3 and abs(sh.distance_correlation) < 0.1
    assert sm.similarity[0] > sm.null_high[0] and sm.similarity[-1] < sm.null_low[-1]
    inside = (sh.similarity >= sh.null_low - 0.02) & (sh.similarity <= sh.null_high + 0.02)
    assert inside.mean() > 0.8


def test_smoothness_curve_matches_direct_float64_computation(layers):
    x = layers["smooth"][:, :64]
    pos = POS[:64]
    res = smoothness(x, pos, n_bins=5, n_perm=10, dtype="float64")
    r = np.corrcoef(x.T)
    i, j = np.triu_indices(64, 1)
    d = np.linalg.norm(pos[i] - pos[j], axis=1)
    edges = np.linspace(0, d.max() * (1 + 1e-9), 6)
    b = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, 4)
    want = np.array([r[i, j][b == k].mean() for k in range(5) if (b == k).any()])
    np.testing.assert_allclose(res.similarity, want, atol=1e-10)
    near = d <= res.near_radius
    far = d > res.far_distance
    assert res.contrast == pytest.approx(r[i, j][near].mean() - r[i, j][far].mean(), abs=1e-10)
    assert res.distance_correlation_raw == pytest.approx(-np.corrcoef(d, r[i, j])[0, 1], abs=1e-10)
    assert res.counts.sum() == len(i) and res.exact


def test_smoothness_sampled_mode_estimates_the_exact_curve(layers):
    exact = smoothness(layers["smooth"], POS, n_perm=20)
    sampled = smoothness(layers["smooth"], POS, n_perm=20, max_units=120)
    assert not sampled.exact and exact.exact
    assert sampled.near_similarity == pytest.approx(exact.near_similarity, abs=1e-5)
    assert sampled.score == pytest.approx(exact.score, abs=0.05)
    np.testing.assert_allclose(sampled.similarity[:6], exact.similarity[:6], atol=0.06)


def test_smoothness_is_deterministic(layers):
    a = smoothness(layers["noise"], POS, n_perm=30, seed=3)
    b = smoothness(layers["noise"], POS, n_perm=30, seed=3)
    assert a.score == b.score and np.array_equal(a.null_scores, b.null_scores)


def test_smoothness_p_values_are_calibrated_on_noise():
    pos = sheet_positions(36)
    rng = np.random.default_rng(11)
    p = np.array([smoothness(rng.standard_normal((12, 36)), pos, n_perm=39, seed=k).p_value
                  for k in range(200)])
    assert 0.015 <= np.mean(p <= 0.05) <= 0.10
    assert 0.35 <= np.mean(p <= 0.5) <= 0.65


# --------------------------------------------------------------------------- selectivity
def test_t_maps_match_scipy_pooled_t_test(layers):
    x = layers["noise"]
    tm = category_t_maps(x, CATS)
    for k, c in enumerate(tm.categories):
        want = stats.ttest_ind(x[CATS == c], x[CATS != c], equal_var=True).statistic
        np.testing.assert_allclose(tm.t[k], want, rtol=1e-10, atol=1e-12)


def test_selectivity_separates_organised_from_shuffled(layers):
    sm = selectivity(layers["smooth"], CATS, POS, n_perm=99)
    sh = selectivity(layers["shuffled"], CATS, POS, n_perm=99)
    for c in ("face", "body", "object"):
        a, b = sm.per_category[c], sh.per_category[c]
        assert a.moran.i > 0.6 and a.moran.p_value <= 0.01
        assert abs(b.moran.i) < 0.2
        assert a.clusters.largest >= 10 and a.clusters.largest_p <= 0.02
        assert a.clusters.largest >= 2 * b.clusters.largest
        assert a.clusters.n_clusters <= 2 < b.clusters.n_clusters
        # shuffling moves units, not their tuning: the selective fraction is unchanged
        assert a.selective_fraction == pytest.approx(b.selective_fraction)
    s = sm.similarity
    cats = sm.tmaps.categories
    assert s[cats.index("face"), cats.index("body")] > s[cats.index("face"), cats.index("object")]
    np.testing.assert_allclose(s, np.corrcoef(sm.tmaps.t), atol=1e-12)


def test_selective_fraction_counts_units_over_threshold(layers):
    res = selectivity(layers["smooth"], CATS, POS, threshold=2.5, n_perm=9)
    t = res.tmaps.of("face")
    assert res.per_category["face"].n_selective == int((t > 2.5).sum())
    assert res.per_category["face"].selective_fraction == pytest.approx((t > 2.5).mean())


def test_morans_i_matches_direct_formula():
    rng = np.random.default_rng(2)
    pos = sheet_positions(30)
    g = neighbourhood_graph(pos, connectivity=4)
    x = rng.standard_normal(30)
    w = g.toarray()
    z = x - x.mean()
    direct = 0.0
    for i in range(30):
        for j in range(30):
            direct += w[i, j] * z[i] * z[j]
    direct *= 30 / w.sum() / np.sum(z**2)
    res = morans_i(x, g, n_perm=199, seed=0)
    assert res.i == pytest.approx(direct, rel=1e-12)
    assert res.expected == pytest.approx(-1 / 29)
    assert abs(res.null.mean() - res.expected) < 0.03  # the permutation null centres on E[I]


def test_morans_i_p_values_are_calibrated_on_noise():
    pos = sheet_positions(64)
    g = neighbourhood_graph(pos)
    rng = np.random.default_rng(3)
    p = np.array([morans_i(rng.standard_normal(64), g, n_perm=199, seed=k).p_value
                  for k in range(300)])
    assert 0.025 <= np.mean(p <= 0.05) <= 0.085


def test_selectivity_p_values_are_calibrated_on_noise():
    """Moran's I of t maps and the largest-patch test, over 200 noise layers at alpha 0.05."""
    pos = sheet_positions(36)
    labels = np.repeat(["a", "b"], 6)
    rng = np.random.default_rng(4)
    moran_p, patch_p = [], []
    for k in range(200):
        res = selectivity(rng.standard_normal((12, 36)), labels, pos, categories=["a"],
                          threshold=1.0, n_perm=39, seed=k)
        moran_p.append(res.per_category["a"].moran.p_value)
        patch_p.append(res.per_category["a"].clusters.largest_p)
    assert 0.015 <= np.mean(np.array(moran_p) <= 0.05) <= 0.10
    # patch sizes are discrete (ties count against us): the test may be conservative, never liberal
    assert np.mean(np.array(patch_p) <= 0.05) <= 0.10


def test_components_4_vs_8_connectivity_and_graph_route_agree():
    pos = sheet_positions(16)  # 4 x 4
    mask = np.zeros(16, bool)
    mask[[0, 5, 10, 3]] = True  # a diagonal run plus a corner
    four = connected_components(mask, pos, connectivity=4)
    eight = connected_components(mask, pos, connectivity=8)
    assert four.max() == 4 and eight.max() == 2
    for conn in (4, 8):
        via_graph = connected_components(mask, pos, graph=neighbourhood_graph(pos, connectivity=conn))
        assert np.array_equal(via_graph, connected_components(mask, pos, connectivity=conn))


def test_knn_and_radius_graphs_are_symmetric():
    rng = np.random.default_rng(0)
    pts = rng.uniform(size=(50, 3))
    for g in (neighbourhood_graph(pts, kind="knn", k=4),
              neighbourhood_graph(pts, kind="radius", radius=0.3)):
        assert (g != g.T).nnz == 0 and g.diagonal().sum() == 0


# --------------------------------------------------------------------------- dimensionality
def test_participation_ratio_matches_eigenvalues():
    rng = np.random.default_rng(0)
    for shape in [(40, 10), (10, 40)]:
        x = rng.standard_normal(shape) @ np.diag(rng.uniform(0.1, 3, shape[1]))
        lam = np.linalg.eigvalsh(np.cov(x, rowvar=False))
        assert participation_ratio(x) == pytest.approx(lam.sum() ** 2 / (lam**2).sum(), rel=1e-10)


def test_effective_dimensionality_separates_organised_from_noise(layers):
    sm = effective_dimensionality(layers["smooth"], n_boot=200)
    sh = effective_dimensionality(layers["shuffled"], n_boot=200)
    nz = effective_dimensionality(layers["noise"], n_boot=200)
    assert sm.participation_ratio == pytest.approx(sh.participation_ratio)  # positions ignored
    assert sm.ci_high < nz.ci_low and 2 * sm.participation_ratio < nz.participation_ratio
    for r in (sm, nz):
        assert r.ci_low < r.participation_ratio < r.ci_high and r.se > 0


# --------------------------------------------------------------------------- lesions
def test_ridge_readout_matches_sklearn(layers):
    sklearn = pytest.importorskip("sklearn.linear_model")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    x = layers["smooth"]
    tr, te = stratified_split(CATS, 0.5, seed=0)
    ours = RidgeReadout(alpha=3.0).fit(x[tr], CATS[tr])
    scaler = preprocessing.StandardScaler().fit(x[tr])
    ref = sklearn.RidgeClassifier(alpha=3.0).fit(scaler.transform(x[tr]), CATS[tr])
    assert np.array_equal(ours.predict(x[te]), ref.predict(scaler.transform(x[te])))
    order = [list(ref.classes_).index(c) for c in ours.classes_]
    np.testing.assert_allclose(ours.decision_function(x[te]),
                               ref.decision_function(scaler.transform(x[te]))[:, order], atol=1e-8)


def test_lesioning_the_patch_is_category_specific_only_when_organised():
    """Category signal in smooth patches (face and body adjacent) plus independent unit noise."""
    labels = np.repeat(np.array(["face", "body", "object"]), 40)
    rng = np.random.default_rng(3)
    x = np.stack([1.5 * _bump(16, 16, CENTRES[c]) for c in labels]) + rng.standard_normal((120, 256))
    tr, te = stratified_split(labels, 0.5, seed=0)
    kw = dict(threshold=2.0, alpha=10.0, n_random=50, control="any", seed=0)
    org = lesion_effect(x[tr], labels[tr], x[te], labels[te], POS, "face", **kw)
    xs = shuffled(x)
    shf = lesion_effect(xs[tr], labels[tr], xs[te], labels[te], POS, "face", **kw)
    assert org.baseline["face"] >= 0.95
    assert org.target_drop_patch >= 0.15 and org.target_drop_random <= 0.05
    assert org.other_drop_patch <= 0.05 and org.specificity_patch >= 0.15
    assert org.p_value == pytest.approx(1 / 51)
    assert shf.n_lesioned < org.n_lesioned / 3
    assert shf.target_drop_patch <= org.target_drop_patch - 0.1


def test_stratified_split_keeps_every_category_on_both_sides():
    tr, te = stratified_split(CATS, 0.25, seed=1)
    assert set(CATS[tr]) == set(CATS[te]) == set(CATS)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(CATS)


# --------------------------------------------------------------------------- brain side
def test_voxel_coordinates_follow_affine_and_nilearn_order():
    nib = pytest.importorskip("nibabel")
    masking = pytest.importorskip("nilearn.masking")
    rng = np.random.default_rng(0)
    mask = rng.uniform(size=(5, 6, 4)) > 0.5
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    affine[:3, 3] = [-10, 4, 7]
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), affine)
    xyz = voxel_coordinates(mask_img)
    assert xyz.shape == (mask.sum(), 3)
    # encode each voxel's x coordinate in a 4-D image and read it back through nilearn
    xs = np.broadcast_to((affine[0, 0] * np.arange(5) + affine[0, 3])[:, None, None], mask.shape)
    data = nib.Nifti1Image(np.stack([xs, xs], -1).astype(np.float32), affine)
    np.testing.assert_allclose(masking.apply_mask(data, mask_img)[0], xyz[:, 0])


def test_brain_volume_smoothness_and_moran_separate_smooth_from_shuffled():
    rng = np.random.default_rng(1)
    shape = (12, 12, 8)
    vols = np.stack([ndimage.gaussian_filter(rng.standard_normal(shape), 1.5) for _ in range(30)])
    coords = np.argwhere(np.ones(shape, bool)) * 2.0  # 2 mm voxels, C order
    x = vols.reshape(30, -1)
    sm = smoothness(x, coords, n_perm=30, max_units=400)
    sh = smoothness(x, shuffled_positions(coords, seed=2), n_perm=30, max_units=400)
    assert sm.score > 0.3 and abs(sh.score) < 0.05 and not sm.exact
    g = neighbourhood_graph(coords, kind="radius", radius=2.01)  # 6-neighbourhood
    assert morans_i(x[0], g, n_perm=49).i > 0.5


def test_mesh_graph_and_irregular_clusters():
    faces = np.array([[0, 1, 2], [1, 2, 3], [4, 5, 6]])
    g = mesh_graph(faces, 7)
    assert g.nnz == 2 * 8 and (g != g.T).nnz == 0
    labels = connected_components(np.ones(7, bool), np.zeros((7, 3)) + np.arange(7)[:, None], graph=g)
    assert labels.max() == 2
    res = selectivity_clusters(np.array([5, 5, 5, 5, 0, 0, 5.0]), np.random.default_rng(0).uniform(size=(7, 3)),
                               threshold=1, graph=g, n_perm=9)
    assert sorted(res.sizes.tolist()) == [1, 4]


# --------------------------------------------------------------------------- bad input
def test_missing_positions_names_the_shuffled_control_and_the_adapter_hook(layers):
    with pytest.raises(NoSheetPositionsError) as err:
        smoothness(layers["smooth"], None, layer="avgpool")
    msg = str(err.value)
    assert "shuffled-positions" in msg and "Adapter.sheet_positions(layer)" in msg
    assert "avgpool" in msg
    with pytest.raises(NoSheetPositionsError):
        selectivity(layers["smooth"], CATS, None)


def test_category_with_one_stimulus_is_rejected(layers):
    labels = CATS.copy()
    labels[0] = "lonely"
    with pytest.raises(InvalidInputError, match="lonely.*at least 2"):
        category_t_maps(layers["smooth"], labels)
    with pytest.raises(InvalidInputError):
        selectivity(layers["smooth"], labels, POS)


def test_constant_units_are_excluded_and_counted(layers):
    x = layers["smooth"].copy()
    x[:, [3, 40, 41]] = 7.0
    sm = smoothness(x, POS, n_perm=20)
    assert sm.n_constant == 3 and sm.n_units == N_UNITS - 3
    assert np.isfinite(sm.similarity).all() and np.isfinite(sm.score)
    sel = selectivity(x, CATS, POS, n_perm=9)
    assert sel.tmaps.n_constant == 3 and np.isfinite(sel.tmaps.t).all()
    assert (sel.tmaps.t[:, [3, 40, 41]] == 0).all()
    assert all(np.isfinite(list(filter(None, [v for k, v in s.items() if k != "category"
                                               and not isinstance(v, list)]))).all()
               for s in sel.summary())
    assert np.isfinite(map_similarity(sel.tmaps)).all()
    ed = effective_dimensionality(x, n_boot=20)
    assert ed.n_constant == 3 and np.isfinite(ed.participation_ratio)


def test_other_bad_inputs(layers):
    x = layers["smooth"]
    with pytest.raises(InvalidInputError, match="NaN"):
        smoothness(np.where(np.eye(*x.shape) > 0, np.nan, x), POS)
    with pytest.raises(InvalidInputError, match="positions"):
        smoothness(x, POS[:10])
    with pytest.raises(InvalidInputError, match="2-D"):
        smoothness(x[0], POS)
    with pytest.raises(InvalidInputError, match="constant"):
        participation_ratio(np.ones((10, 5)))
    with pytest.raises(InvalidInputError, match="threshold"):
        tr, te = stratified_split(CATS, 0.5)
        lesion_effect(x[tr], CATS[tr], x[te], CATS[te], POS, "face", threshold=1e6)


# --------------------------------------------------------------------------- figures
def test_figures_and_summary_are_written(tmp_path, layers):
    from neurobench.topography.figures import plot_smoothness, plot_tmaps, write_summary

    sm = {"organised": smoothness(layers["smooth"], POS, n_perm=20)}
    sel = {"organised": selectivity(layers["smooth"], CATS, POS, n_perm=9)}
    figs = plot_tmaps(sel["organised"].tmaps, POS, tmp_path / "fig" / "tmaps")
    figs += plot_smoothness(sm, tmp_path / "fig" / "smoothness")
    figs += plot_tmaps(sel["organised"].tmaps, np.random.default_rng(0).uniform(size=(N_UNITS, 3)),
                       tmp_path / "fig" / "scatter")
    assert sorted(p.suffix for p in figs) == [".png"] * 3 + [".svg"] * 3
    for p in figs:
        head = p.read_bytes()[:64]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else b"<svg" in p.read_bytes()[:2000]
    md = write_summary(tmp_path / "summary.md", smoothness=sm, selectivity=sel, figures=figs,
                       dimensionality={"organised": effective_dimensionality(layers["smooth"], n_boot=20)})
    text = md.read_text()
    assert f"{sm['organised'].score:.3g}" in text and "![tmaps](fig/tmaps.png)" in text
    assert "| organised | face |" in text


# --------------------------------------------------------------------------- adapter glue
def test_topo_report_scores_sheet_layers_and_skips_the_rest(tmp_path, layers):
    import pandas as pd

    from neurobench.models.adapter import Adapter
    from neurobench.topography.run import topo_report

    class Fake(Adapter):
        identifier, weights_id, trained = "fake", "sha-fake", True

        def layers(self):
            return ["sheet", "head"]

        def sheet_positions(self, layer):
            return POS if layer == "sheet" else None

        def activations(self, stimuli, layers, **kw):
            return {n: layers_[n] for n in layers}

    layers_ = {"sheet": layers["smooth"], "head": layers["noise"][:, :10]}

    class Stimuli:
        labels = pd.DataFrame({"category": CATS, "face": CATS == "face"})

        def __len__(self):
            return len(CATS)

    path, res = topo_report(Fake(), Stimuli(), tmp_path, labels="face", n_perm=20, n_boot=20)
    assert [r.layer for r in res] == ["sheet"]
    row = res[0].row()
    assert row["near_far_similarity"] > 0.5 and abs(row["near_far_similarity_shuffled"]) < 0.1
    assert row["face_morans_i"] > 0.5
    text = path.read_text()
    assert "Skipped (no sheet positions): head." in text
    assert (tmp_path / "figures" / "tmaps_sheet.svg").exists()


def test_topo_benchmarks_score_sheet_layers(layers):
    import pandas as pd

    import neurobench.benchmarks.topo as topo

    class Adapter:
        readout = None

        def sheet_positions(self, layer):
            return POS if layer == "sheet" else None

    class Stimuli:
        labels = pd.DataFrame({"face": CATS == "face"})

    acts = {"sheet": layers["smooth"], "head": layers["noise"][:, :10]}
    raws = {}
    for factory in (topo.topo_near_far_similarity, topo.topo_tdann_face_smoothness, topo.topo_face_clusters,
                    topo.topo_effective_dim):
        bench = factory()
        bench._adapter, bench._stimuli = Adapter(), Stimuli()
        res = bench.score_activations(acts, seed=0, device="cpu")
        raws[bench.identifier] = res
    near_far = raws["topo.near-far-similarity"]
    assert near_far.raw > 0.5 and "skipped ['head']" in near_far.selection
    tdann = raws["topo.tdann-face-smoothness"]
    assert tdann.raw > 0.5 and abs(tdann.layers["chance"].item()) < 0.3 and tdann.metric == "topo-tdann-smoothness"
    assert raws["topo.face-selectivity-clusters"].raw > 0.5
    assert len(raws["topo.effective-dim"].layers) == 2 and raws["topo.effective-dim"].ceiling is None
    bench = topo.topo_near_far_similarity()
    bench._adapter, bench._stimuli = Adapter(), Stimuli()
    with pytest.raises(NoSheetPositionsError, match="shuffled-positions"):
        bench.score_activations({"head": acts["head"]}, seed=0, device="cpu")


def test_lesion_brain_score_drops_when_the_carrying_patch_is_silenced():
    """A 'brain' RDM that depends on one sheet patch: silencing that patch hurts the score, random
    units of the same number do not."""
    import pandas as pd

    from neurobench.data.stimuli import StimulusSet
    from neurobench.kinds.rsa import RSABenchmark
    from neurobench.models.sheet import sheet_positions
    from neurobench.topography.brain_lesion import lesion_brain_score

    rng = np.random.default_rng(0)
    n, side = 60, 8
    labels = np.array(["face"] * 20 + ["other"] * 40)
    pos = sheet_positions(side * side)
    x = rng.standard_normal((n, side * side)) * 0.3
    patch = (pos[:, 0] < 3) & (pos[:, 1] < 3)  # 9 face-selective units carrying stimulus structure
    tuning = rng.standard_normal((3, patch.sum()))  # stimulus structure spread over the patch's units
    face = (labels == "face")[:, None] * (2.0 + rng.random(patch.sum()))
    x[:, patch] += rng.standard_normal((n, 3)) @ tuning + face + rng.standard_normal((n, patch.sum())) * 0.2
    brain = 1 - np.corrcoef(x[:, patch])  # the 'brain' sees only the patch's information
    ids = [f"s{i}" for i in range(n)]
    stim = StimulusSet("toy", ids, texts=ids, labels=pd.DataFrame({"c": labels}, index=ids))
    bench = RSABenchmark("toy.lesion", "", (), lambda: stim, lambda: (ids, brain[None], "toy"),
                         comparator="spearman", n_bootstrap=10)
    res = lesion_brain_score(bench, x, pos, labels, "face", n_random=19, seed=0)
    assert res.n_silenced >= 5 and res.patch_drop > 0.3
    assert res.random_drop < res.patch_drop / 3 and res.p_value <= 0.05
    assert bench.n_bootstrap == 10


# --------------------------------------------------------------------------- TDANN's smoothness
def test_tdann_smoothness_formula_on_hand_computed_curves():
    """(max(curve) - curve[0]) / max(curve), cut at the first NaN; flat curves score 1 (TDANN)."""
    from neurobench.topography import tdann_smoothness

    assert tdann_smoothness([0.5, 1.0, 2.0, 1.5]) == pytest.approx((2.0 - 0.5) / 2.0)  # 0.75
    assert tdann_smoothness([0.2, 0.4, np.nan, 9.0]) == pytest.approx((0.4 - 0.2) / 0.4)  # 0.5: cut at NaN
    assert tdann_smoothness([1.0, 1.0, 1.0]) == 1.0  # ptp 0: TDANN returns 1
    assert tdann_smoothness([3.0, 2.0, 1.0]) == 0.0  # the first bin is the maximum
    with pytest.raises(InvalidInputError, match="first bin"):
        tdann_smoothness([np.nan, 1.0])


def test_tdann_category_smoothness_curve_matches_direct_computation(layers):
    """The curve is mean |t_i - t_j| per half-open distance bin (edges from np.histogram_bin_edges),
    t = TDANN's unpooled t; with all units in one sample it is exact."""
    from neurobench.topography import tdann_category_smoothness, tdann_smoothness

    x = layers["smooth"]
    face = CATS == "face"
    res = tdann_category_smoothness(x, face, POS, n_bins=8, seed=1)
    on, off = x[face], x[~face]
    t = (on.mean(0) - off.mean(0)) / np.sqrt(on.var(0) / len(on) + off.var(0) / len(off))
    i, j = np.tril_indices(x.shape[1], -1)
    d = np.linalg.norm(POS[i] - POS[j], axis=1)
    diff = np.abs(t[i] - t[j])
    edges = np.histogram_bin_edges(d, bins=8)
    curve = [diff[(d >= a) & (d < b)].mean() if ((d >= a) & (d < b)).any() else np.nan
             for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_allclose(res.curves[0], curve, atol=1e-12)
    assert res.n_samples == 1 and res.smoothness == pytest.approx(tdann_smoothness(curve))
    assert res.smoothness > 0.5 and abs(res.chance) < 0.3
    shuffled = tdann_category_smoothness(layers["shuffled"], face, POS, n_bins=8, seed=1)
    assert shuffled.smoothness < res.smoothness
    sampled = tdann_category_smoothness(x, face, POS, n_bins=8, sample_size=60, n_samples=20, seed=1)
    assert sampled.curves.shape == (20, 8) and sampled.sample_size == 60


def test_old_smoothness_id_is_refused_with_the_new_name():
    import neurobench as nb
    from neurobench.errors import RenamedError

    with pytest.raises(RenamedError, match="'topo.smoothness' was renamed 'topo.near-far-similarity'"):
        nb.load_benchmark("topo.smoothness")
    assert "topo.smoothness" not in nb.registry.benchmarks.names()
