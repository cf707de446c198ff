"""Ground truth of the hierarchy scores: the synthetic network's known spatial and temporal scores
fall inside the scorer's intervals, the shuffled-layer control's intervals cover 0, per-voxel best
layers and per-layer latencies are stored and exported, and the checkpoint trajectory's known
chronology is recovered."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import neurobench as nb
from neurobench.benchmarks import synthetic
from neurobench.benchmarks import synthetic_hierarchy as sh
from neurobench.cli import main
from neurobench.development import (
    checkpoint_step,
    checkpoints,
    chronology_from_trajectory,
    score_checkpoints,
)
from neurobench.errors import InvalidInputError
from neurobench.result import ScoreResult

CPU = torch.device("cpu")


def _components(bench, acts):
    out = {}
    for ident, _ in bench.components:
        component = bench.component(ident)
        if "splits" in component.options() and component.splits is not None:
            component.configure(splits=3, inner_cv=3)  # a lighter cross-validation keeps the test fast
        out[ident] = component.score_activations(acts, seed=0, device=CPU)
    return out


@pytest.fixture(scope="module")
def acts():
    out = sh.synthetic_hierarchy().activations(synthetic.stimuli(), device="cpu", cache=False)
    shuffled = {sh.LAYERS[i]: out[sh.LAYERS[i]] for i in sh.SHUFFLED_ORDER}
    return out, shuffled


@pytest.fixture(scope="module")
def spatial(acts):
    bench = nb.load_benchmark("hierarchy.synthetic-spatial")
    return bench, {"model": _components(bench, acts[0]), "shuffled": _components(bench, acts[1])}


@pytest.fixture(scope="module")
def temporal(acts):
    bench = nb.load_benchmark("hierarchy.synthetic-temporal")
    return bench, {"model": _components(bench, acts[0]), "shuffled": _components(bench, acts[1])}


def test_shuffled_adapter_lists_the_same_layers_out_of_order(acts):
    assert sh.synthetic_hierarchy_shuffled().default_layers() == [sh.LAYERS[i] for i in sh.SHUFFLED_ORDER]
    features = sh.layer_features()
    for k, name in enumerate(sh.LAYERS):
        np.testing.assert_allclose(acts[0][name], features[:, k], atol=1e-4)


def test_true_values_of_the_ground_truth():
    assert sh.true_spatial_score() == pytest.approx(0.8)
    assert sh.true_spatial_score(shuffled=True) == pytest.approx(0.0, abs=1e-12)
    assert sh.true_temporal_score() == pytest.approx(0.9759, abs=1e-4)
    assert sh.true_temporal_score(shuffled=True) == pytest.approx(0.0, abs=1e-12)


def test_spatial_score_recovers_the_generating_network(spatial):
    bench, results = spatial
    res = bench.score_results(results["model"], seed=0)
    assert res.ci_low <= sh.true_spatial_score() <= res.ci_high
    assert res.ci_high - res.ci_low < 0.3
    assert res.interval == "subjects, then targets within regions (percentile)"
    assert res.provenance["hierarchy"]["p_value"] == pytest.approx(1 / 24)  # the smallest p 4 layers allow
    # every voxel's best layer is its driving layer
    t = res.targets[res.targets["layer"] == "stage1"]
    assert (t["best_layer"] == t["driving_layer"]).all()
    per_region = res.provenance["hierarchy"]["per_region"]
    depths = [per_region[f"synthetic.area{k}-encoding"]["mean_best_depth"] for k in range(1, 5)]
    assert depths == sorted(depths)


def test_spatial_score_of_the_shuffled_control_covers_zero(spatial):
    bench, results = spatial
    res = bench.score_results(results["shuffled"], seed=0)
    assert res.ci_low <= sh.true_spatial_score(shuffled=True) <= res.ci_high
    assert res.ci_low <= 0 <= res.ci_high
    assert res.provenance["hierarchy"]["p_value"] > 0.2


def test_temporal_score_recovers_latencies_and_the_control(temporal):
    bench, results = temporal
    res = bench.score_results(results["model"], seed=0)
    np.testing.assert_allclose(res.layers["peak_latency"], sh.LATENCIES)
    assert res.ci_low <= sh.true_temporal_score() <= res.ci_high
    assert res.interval == "subjects"
    control = bench.score_results(results["shuffled"], seed=0)
    np.testing.assert_allclose(control.layers["peak_latency"], [sh.LATENCIES[i] for i in sh.SHUFFLED_ORDER])
    assert control.ci_low <= 1e-12 and control.ci_high >= -1e-12  # covers 0 (up to rounding)
    assert control.provenance["hierarchy"]["p_value"] > 0.2


def test_best_layer_maps_are_stored_and_exported(spatial, tmp_path):
    nib = pytest.importorskip("nibabel")
    bench, results = spatial
    scores = bench.score_results(results["model"], seed=0)
    result = ScoreResult.from_scores(scores, model="synthetic-hierarchy", weights_id="w", trained=True,
                                     benchmark=bench.identifier)
    store = nb.ResultStore(tmp_path / "s.sqlite")
    store.add(result)
    files = nb.export_targets("synthetic-hierarchy", bench.identifier, format="nifti", out=tmp_path / "maps",
                              store=store)
    depth_maps = [f for f in files if f.name.endswith("sub-01_best_depth.nii.gz")]
    assert len(depth_maps) == 1
    vol = np.asarray(nib.load(depth_maps[0]).dataobj)
    drive = sh.driving_layers()
    for area in range(4):  # area k is the slab voxel_k = k; each voxel shows its driving layer's depth
        slab = vol[:, :, area].reshape(-1)[:sh.VOXELS]
        np.testing.assert_allclose(slab, drive[area] / 3)
    table = store.targets("synthetic-hierarchy", bench.identifier).frame
    assert {"region", "position", "best_layer", "best_depth"} <= set(table.columns)


def test_temporal_cli_stores_latencies_and_exports_time_courses(tmp_path):
    db, out = tmp_path / "s.sqlite", tmp_path / "courses.csv"
    assert main(["score", "--model", "synthetic-hierarchy", "--benchmark", "hierarchy.synthetic-temporal",
                 "--device", "cpu", "--store", str(db), "--quiet", "-o", "n_bootstrap=200"]) == 0
    rows = nb.ResultStore(db).rows()
    layer_rows = rows[rows["row_kind"] == "layer"]

    latencies = [json.loads(d)["peak_latency"] for d in layer_rows["details"]]
    np.testing.assert_allclose(latencies, sh.LATENCIES)
    assert main(["export", "--model", "synthetic-hierarchy", "--benchmark", "hierarchy.synthetic-temporal",
                 "--out", str(out), "--store", str(db)]) == 0
    courses = pd.read_csv(out)
    assert set(courses["subject"]) == {"mean", *sh.MEG_SUBJECTS} and {"time", "r"} <= set(courses.columns)


def test_hierarchy_benchmark_refuses_bad_declarations():
    with pytest.raises(InvalidInputError, match="distinct hierarchy positions"):
        nb.HierarchyBenchmark("h", "", "spatial", [("a", 1), ("b", 1)])
    with pytest.raises(InvalidInputError, match="exactly 1"):
        nb.HierarchyBenchmark("h", "", "temporal", [("a", 1), ("b", 2)])
    with pytest.raises(nb.errors.InvalidOptionError):
        nb.load_benchmark("hierarchy.synthetic-spatial", alphas=[1.0])


@pytest.mark.parametrize("name, step", [("step_001000.pt", 1000), ("epoch=3-step=1200.ckpt", 1200),
                                        ("ckpt-500.pt", 500), ("checkpoint_250.pt", 250), ("iter_3000.pth", 3000),
                                        ("global_step42.pt", 42), ("700.pt", 700)])
def test_checkpoint_step_from_file_name(name, step):
    assert checkpoint_step(f"/x/{name}") == step


def test_checkpoints_refuse_unreadable_sets(tmp_path):
    with pytest.raises(InvalidInputError, match="training step"):
        checkpoint_step("final.pt")
    with pytest.raises(InvalidInputError, match="no checkpoint matches"):
        checkpoints(str(tmp_path / "*.pt"))
    (tmp_path / "step_10.pt").write_bytes(b"x")
    (tmp_path / "ckpt-10.pt").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="two checkpoints at step 10"):
        checkpoints(str(tmp_path / "*.pt"))


def test_chronology_recovers_the_trajectory_and_reuses_stored_results(tmp_path):
    steps = (0, 100, 300, 800)
    sh.write_checkpoints(tmp_path / "ckpts", steps=steps)
    benches = ["synthetic.area1-encoding", "synthetic.area4-encoding"]
    options = {"subjects": ["sub-01"], "n_bootstrap": 200, "splits": 2, "inner_cv": 2}
    store = tmp_path / "s.sqlite"
    traj = score_checkpoints("synthetic-hierarchy", str(tmp_path / "ckpts" / "*.pt"), benches, store=store,
                             device="cpu", options=options)
    assert not traj["reused"].any() and sorted(set(traj["step"])) == list(steps)
    report = chronology_from_trajectory(traj, n_bootstrap=500)
    assert report.order == benches  # early areas emerge first
    on_grid, continuous = sh.true_half_steps(steps), sh.true_half_steps()
    for rec in report.table.to_dict("records"):
        assert rec["ci_low"] <= on_grid[rec["name"]] <= rec["ci_high"], rec
        assert abs(rec["half_step"] - continuous[rec["name"]]) < 100  # within the checkpoint spacing
    again = score_checkpoints("synthetic-hierarchy", str(tmp_path / "ckpts" / "*.pt"), benches, store=store,
                              device="cpu", options=options)
    assert again["reused"].all()
    pd.testing.assert_frame_equal(again.drop(columns="reused"), traj.drop(columns="reused"))
    # the command line reads the same stored results (same options, as text) and writes table and figure
    out = tmp_path / "chronology.csv"
    args = ["chronology", "--model", "synthetic-hierarchy", "--weights", str(tmp_path / "ckpts" / "*.pt"),
            "--benchmark", *benches, "--device", "cpu", "--store", str(store), "--out", str(out),
            "--figure", str(tmp_path / "chronology.png"), "--quiet", "-o", "subjects=sub-01", "-o", "n_bootstrap=200",
            "-o", "splits=2", "-o", "inner_cv=2"]
    assert main(args) == 0
    table = pd.read_csv(out)
    assert list(table["name"]) == benches and (tmp_path / "chronology-trajectory.csv").is_file()
    assert (tmp_path / "chronology.png").is_file() and (tmp_path / "chronology.svg").is_file()
    np.testing.assert_allclose(table["half_step"], report.table["half_step"])
    assert len(nb.ResultStore(store).rows().query("row_kind == 'headline'")) == 2 * len(steps)  # nothing rescored
