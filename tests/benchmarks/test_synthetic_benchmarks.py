"""Ground-truth encoding benchmarks: the scorer recovers known ceiling-normalised scores."""

import numpy as np
import pytest
import torch

import neurobench as nb
from neurobench.benchmarks import synthetic
from neurobench.cli import main
from neurobench.errors import AlignmentError


@pytest.fixture(scope="module")
def acts():
    out = synthetic.synthetic_oracle().activations(synthetic.stimuli(), device="cpu", cache=False)
    out["distractor"] = synthetic.synthetic_distractor().activations(
        synthetic.stimuli(), device="cpu", cache=False)["features"]
    return out


def test_oracle_reads_exactly_the_hidden_features(acts):
    np.testing.assert_allclose(acts["features"], synthetic.hidden_features(), atol=1e-5)
    np.testing.assert_allclose(acts["partial"], synthetic.hidden_features()[:, :4], atol=1e-5)


@pytest.mark.parametrize("kind", ["fmri", "spikes"])
def test_true_normalised_scores_fall_inside_their_cis(acts, kind):
    bench = nb.load_benchmark(f"synthetic.{kind}-encoding")
    res = bench.score_activations(acts, seed=0, device=torch.device("cpu"))
    table = res.layers.set_index("layer")
    truth = {"features": 1.0, "partial": synthetic.true_normalized_score(kind, 4), "distractor": 0.0}
    for layer, value in truth.items():
        lo, hi = table.loc[layer, "normalized_ci_low"], table.loc[layer, "normalized_ci_high"]
        assert lo <= value <= hi, (layer, value, lo, hi)
        assert hi - lo < 0.1
    # a model carrying the hidden features ranks above one that does not
    assert table.loc["features", "normalized"] > table.loc["partial", "normalized"] > table.loc["distractor", "normalized"]
    assert res.best_layer == "features"  # chosen by inner CV on training stimuli
    assert 0.5 < res.ceiling < 0.95
    assert res.per_target["usable"].all()


def test_responses_in_another_order_are_realigned_by_id(acts):
    bench = nb.load_benchmark("synthetic.spikes-encoding")
    shuffled = synthetic.spike_responses().isel(presentation=np.random.default_rng(0).permutation(1000))
    bench._load_assembly = lambda: shuffled
    bench.n_bootstrap = 0
    res = bench.score_activations({"features": acts["features"]}, seed=0, device=torch.device("cpu"))
    assert res.normalized > 0.95


def test_responses_for_other_stimuli_are_refused(acts):
    bench = nb.load_benchmark("synthetic.spikes-encoding")
    bench._load_assembly = lambda: synthetic.spike_responses().isel(presentation=slice(0, 900))
    with pytest.raises(AlignmentError, match="missing from"):
        bench.score_activations({"features": acts["features"]}, seed=0, device=torch.device("cpu"))


def test_cli_ranks_oracle_above_distractor(tmp_path):
    store = tmp_path / "s.sqlite"
    for model in ("synthetic-oracle", "synthetic-distractor"):
        assert main(["score", "--model", model, "--benchmark", "synthetic.fmri-encoding", "--store", str(store),
                     "--quiet"]) == 0
    board = nb.ResultStore(store).leaderboard().set_index("model")
    col = "explainable_variance_fraction"
    assert set(board["normalization"]) == {col} and set(board["interval"]) == {"stimuli"}
    assert board.loc["synthetic-oracle", col] > 0.95 > 0.05 > board.loc["synthetic-distractor", col]


def test_memory_budget_too_small_is_a_clear_error(tmp_path, capsys):
    code = main(["score", "--model", "synthetic-oracle", "--benchmark", "synthetic.spikes-encoding",
                 "--store", str(tmp_path / "s.sqlite"), "--memory-budget", "1kB", "--quiet"])
    assert code == 2
    assert "budget" in capsys.readouterr().err.lower()
    assert nb.ResultStore(tmp_path / "s.sqlite").rows().empty  # nothing half-stored


@pytest.mark.parametrize("kind", ["fmri", "spikes"])
def test_brainscore_explained_variance_is_not_ours_on_the_oracle(acts, kind):
    """The oracle carries every hidden feature: ours (median sign(r) r^2 / rho) is ~1, Brain-Score's
    `explained_variance`, (median r / median rho)^2, is ~1 / median rho (its r ~ sqrt(rho))."""
    from neurobench.metrics.ceiling import brainscore_explained_variance

    bench = nb.load_benchmark(f"synthetic.{kind}-encoding", n_bootstrap=0)
    res = bench.score_activations({"features": acts["features"]}, seed=0, device=torch.device("cpu"))
    r, rho = res.per_target["r"].to_numpy(), res.per_target["reliability"].to_numpy()
    assert res.normalization == "explainable_variance_fraction" and res.normalized == pytest.approx(1.0, abs=0.03)
    theirs = brainscore_explained_variance(np.median(r), np.median(rho))
    assert theirs == pytest.approx((np.median(r) / np.median(rho)) ** 2)  # the formula in neural_common.py
    assert theirs == pytest.approx(1 / np.median(rho), rel=0.05) and theirs > 1.2
