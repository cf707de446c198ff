"""The spatial hierarchy score on an NSD miniature in the release's layout: per voxel the relative
depth of its best layer, read from each ROI benchmark's own per-voxel results, Pearson-correlated
with the ROI's position; the best-layer map is exported at each voxel's (i, j, k)."""

import nibabel as nib
import numpy as np
import pytest
from scipy.stats import pearsonr

import neurobench as nb
from neurobench.benchmarks import nsd
from neurobench.benchmarks.hierarchy import SPATIAL
from tests.benchmarks.test_nsd import build, plugin  # noqa: F401  (fixture)


def test_nsd_ventral_spatial_score_matches_its_components(miniature, plugin, tmp_path):  # noqa: F811
    build(miniature)
    store = tmp_path / "s.sqlite"
    res = nb.score("nsd-tiny", "hierarchy.nsd-ventral-spatial", device="cpu", store=store,
                   options={"subjects": ["subj01"], "n_bootstrap": 200})
    depth, position = [], []
    for ident, pos in SPATIAL["nsd-ventral"][1]:
        region = ident.split(".")[1].split("-")[0]
        comp = nb.score("nsd-tiny", nsd.NSDEncodingBenchmark(region, subjects=["subj01"], n_bootstrap=0), device="cpu")
        grid = comp.targets.pivot(index="target", columns="layer", values="r")[["0", "1"]].to_numpy()
        depth += list(np.argmax(grid, axis=1).astype(float))  # 2 layers: depth 0 or 1
        position += [pos] * len(grid)
    assert res.raw == pytest.approx(pearsonr(depth, position)[0], abs=1e-9)
    assert res.ci_low <= res.raw <= res.ci_high and res.interval == "targets within regions (percentile)"
    assert set(res.provenance["components"]) == {i for i, _ in SPATIAL["nsd-ventral"][1]}
    files = nb.export_targets("nsd-tiny", "hierarchy.nsd-ventral-spatial", format="nifti", out=tmp_path / "maps",
                              store=store)
    (depth_map,) = [f for f in files if f.name.endswith("subj01_best_depth.nii.gz")]
    vol = np.asarray(nib.load(depth_map).dataobj)
    rows = res.targets[res.targets["layer"] == "0"]
    np.testing.assert_allclose(vol[rows["voxel_i"], rows["voxel_j"], rows["voxel_k"]], rows["best_depth"])
