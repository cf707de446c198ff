"""The 92-object benchmark on the real data: reference figures and end-to-end scoring."""

import numpy as np
import pytest

import neurobench as nb
from neurobench.benchmarks import kriegeskorte2008 as k08
from neurobench.cli import main
from neurobench.metrics.rdm import upper_triangle
from neurobench.metrics.rsa import compare_rdms, noise_ceiling

from ..conftest import needs_kriegeskorte

pytestmark = needs_kriegeskorte


def _subjects():
    return upper_triangle(np.asarray(k08.load_hit_subjects()[1]))


def _mit():
    return np.asarray(k08.load_mit()[1])


@pytest.mark.parametrize("method, lower, upper", [
    ("tau_a", 0.2539, 0.4767), ("spearman", 0.3723, 0.6657), ("pearson", 0.3944, 0.6804)])
def test_noise_ceiling_matches_source(method, lower, upper):
    lo, up = noise_ceiling(_subjects(), method)
    assert lo == pytest.approx(lower, abs=1e-4) and up == pytest.approx(upper, abs=1e-4)


@pytest.mark.parametrize("method, expected", [("tau_a", 0.2009), ("spearman", 0.2963), ("pearson", 0.3335)])
def test_mit_vs_subjects_matches_source(method, expected):
    assert float(compare_rdms(_mit(), _subjects(), method).mean()) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("method, expected", [("tau_a", 0.3040), ("spearman", 0.4389), ("pearson", 0.4912)])
def test_mit_vs_group_hit_matches_source(method, expected):
    from neurobench.benchmarks.kriegeskorte2008 import _supplement

    fig1 = _supplement()["RDMs_mIT_hIT_fig1"].ravel()
    hit = np.asarray(fig1[1]["RDM"], dtype=float).reshape(1, -1)
    assert float(compare_rdms(_mit(), hit, method)[0, 0]) == pytest.approx(expected, abs=1e-4)


def test_stimuli_and_labels():
    stim = k08.load_stimuli()
    assert len(stim) == 92 and stim.ids[0] == "92obj-01"
    assert stim.labels["face"].sum() > 0 and "cat_animate" in stim.labels
    assert np.asarray(stim.images[0]).shape == (175, 175, 3)


def test_data_rdms_are_brought_to_the_benchmark_order():
    bench = nb.load_benchmark("kriegeskorte2008.hit-rsa")
    data, _ = bench.data_rdms(device=__import__("torch").device("cpu"))
    assert tuple(data.shape) == (4, 4186)


@pytest.fixture(scope="module")
def tiny_acts():
    """Cheap stand-in activations: pixels of the 92 images at two resolutions."""
    stim = k08.load_stimuli()
    imgs = np.stack([np.asarray(im, dtype=np.float32) for im in stim.images])
    return {"pixels": imgs[:, ::5, ::5].reshape(92, -1), "coarse": imgs[:, ::25, ::25].reshape(92, -1)}


def test_score_activations_headline_is_held_out(tiny_acts):
    import torch

    bench = nb.load_benchmark("kriegeskorte2008.hit-rsa")
    bench.n_bootstrap = 100
    res = bench.score_activations(tiny_acts, seed=0, device=torch.device("cpu"))
    assert res.best_layer in tiny_acts and res.ceiling_upper > res.ceiling > 0
    assert res.ci_low <= res.raw <= res.ci_high
    assert res.layers["ceiling"].iloc[0] == pytest.approx(0.2539, abs=1e-4)  # all-stimuli ceiling
    assert len(res.provenance["selection_stimuli"]) == 46
    mit = nb.load_benchmark("kriegeskorte2008.mit-rsa")
    mit.n_bootstrap = 50
    res = mit.score_activations(tiny_acts, seed=0, device=torch.device("cpu"))
    assert res.ceiling is None and res.normalized is None and "single RDM" in res.ceiling_note


@pytest.mark.slow
def test_cli_end_to_end_untrained_toporesnet18(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    code = main(["score", "--model", "toporesnet18", "--weights", "random", "--store", str(store),
                 "--device", "cpu", "--quiet"])
    assert code == 0
    captured = capsys.readouterr()
    shown = captured.out
    assert "kriegeskorte2008.hit-rsa" in shown and "[untrained]" in shown
    assert "skipped synthetic.fmri-encoding" in captured.err
    assert main(["leaderboard", "--store", str(store), "--export", str(tmp_path / "lb.csv")]) == 0
    board = nb.ResultStore(store).leaderboard()
    assert set(board["benchmark"]) == {"kriegeskorte2008.hit-rsa", "kriegeskorte2008.mit-rsa",
                                       "kriegeskorte2008.hit-trsa", "kriegeskorte2008.mit-trsa",
                                       "topo.near-far-similarity", "topo.tdann-face-smoothness", "topo.face-selectivity-clusters",
                                       "topo.effective-dim"}
    assert all(m.endswith("[untrained]") for m in board["model"])


def test_trsa_benchmarks_transform_both_sides(tiny_acts):
    import torch

    from neurobench.metrics.rsa import noise_ceiling as nc
    from neurobench.metrics.trsa import gt_transform

    bench = nb.load_benchmark("kriegeskorte2008.hit-trsa")
    bench.n_bootstrap = 50
    res = bench.score_activations(tiny_acts, seed=0, device=torch.device("cpu"))
    expected_lower, _ = nc(gt_transform(_subjects()), "tau_a")
    assert res.layers["ceiling"].iloc[0] == pytest.approx(expected_lower, abs=1e-9)
    assert res.metric == "rsa-tau_a+gt-transform(l=0.2,u=0.8)"
    assert nb.load_benchmark("kriegeskorte2008.mit-trsa").comparator == "tau_a"
