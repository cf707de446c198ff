"""Model comparison: p-value adjustment against scipy and the textbook Holm procedure, linear CKA
against a numpy reference in float64, the paired comparison end to end on the 92 objects."""

import json

import numpy as np
import pytest
import torch
from scipy.stats import false_discovery_control

import neurobench as nb
from neurobench.cli import main
from neurobench.errors import InvalidInputError
from neurobench.metrics.inference import adjust_pvalues
from neurobench.registry import models
from neurobench.report.compare import cka_matrix

from ..conftest import needs_kriegeskorte


def _holm_reference(p):
    m = len(p)
    order = np.argsort(p)
    out, running = np.empty(m), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out


def test_adjusted_p_values_match_references():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 12))
        np.testing.assert_allclose(adjust_pvalues(p, "fdr_bh"), false_discovery_control(p), rtol=1e-12)
        np.testing.assert_allclose(adjust_pvalues(p, "holm"), _holm_reference(p), rtol=1e-12)
    withnan = adjust_pvalues([0.01, np.nan, 0.02], "holm")
    assert np.isnan(withnan[1]) and withnan[0] == pytest.approx(0.02) and withnan[2] == pytest.approx(0.02)
    with pytest.raises(InvalidInputError, match="holm"):
        adjust_pvalues([0.1], "bonferonni")


def _cka_reference(x, y):
    x = x - x.mean(0)
    y = y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_layer_by_layer_cka_matches_numpy_reference_in_float64():
    rng = np.random.default_rng(1)
    a = {"l1": rng.normal(size=(30, 7)), "l2": rng.normal(size=(30, 4, 3))}
    b = {"m1": a["l1"] @ rng.normal(size=(7, 5)), "m2": rng.normal(size=(30, 50))}
    got = cka_matrix(a, b, ["l1", "l2"], ["m1", "m2"])
    for i, la in enumerate(["l1", "l2"]):
        for j, lb in enumerate(["m1", "m2"]):
            ref = _cka_reference(a[la].reshape(30, -1), b[lb].reshape(30, -1))
            assert got[i, j] == pytest.approx(ref, rel=1e-10)
    assert got.dtype == np.float64


@pytest.fixture
def tiny_models():
    def make(width, seed):
        def factory(seed_: int = 0):
            torch.manual_seed(seed)
            net = torch.nn.Sequential(torch.nn.Conv2d(3, width, 5, stride=4), torch.nn.ReLU(),
                                      torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
            return nb.TorchAdapter(net, layers=["1", "3"], preprocess=nb.ImagePreprocess(resize=48, crop=48),
                                   trained=False)
        return factory

    names = ["cmp-tiny-a", "cmp-tiny-b", "cmp-tiny-c"]
    for k, name in enumerate(names):
        models.add(name, make(4 + 2 * k, k))
    yield names
    for name in names:
        models.remove(name)


@needs_kriegeskorte
def test_paired_comparison_of_three_models(tiny_models, tmp_path, capsys):
    from neurobench.api import load_benchmark
    from neurobench.kinds.rsa import model_rdms
    from neurobench.kinds.selection import half_split
    from neurobench.metrics.inference import score_rdms
    from neurobench.metrics.rdm import subset_condensed

    layers = {m: "3" for m in tiny_models}
    res = nb.compare(tiny_models, "kriegeskorte2008.hit-rsa", layers=layers, n_bootstrap=100,
                     store=tmp_path / "none.sqlite")
    assert len(res.scores) == 3 and len(res.pairs) == 3 and res.bootstrap == "both" and res.n_stimuli == 46
    np.testing.assert_allclose(res.pairs["p_holm"], adjust_pvalues(res.pairs["p"], "holm"))
    np.testing.assert_allclose(res.pairs["p_fdr_bh"], adjust_pvalues(res.pairs["p"], "fdr_bh"))
    assert ((res.pairs["p"] > 0) & (res.pairs["p"] <= 1)).all()
    # each model's score is its held-out-half score computed independently
    bench = load_benchmark("kriegeskorte2008.hit-rsa")
    stim = bench.stimuli()
    _, held = half_split(len(stim), 0)
    data, _ = bench.data_rdms(torch.device("cpu"))
    for row in res.scores.itertuples():
        adapter = nb.load_model(row.model.removesuffix(" [untrained]"))
        rdm = model_rdms(adapter.activations(stim, ["3"]), stim.ids, "correlation", "cpu")
        ref = score_rdms(subset_condensed(rdm, held), subset_condensed(data, held), n_bootstrap=0)
        assert row.raw == pytest.approx(float(ref.score[0]), abs=1e-9)
    first = res.pairs.iloc[0]
    assert first["difference"] == pytest.approx(res.scores["raw"][0] - res.scores["raw"][1], abs=1e-9)
    # the CLI: table, JSON Lines, figure
    fig = tmp_path / "cmp.svg"
    args = ["compare", "--models", *tiny_models, "--benchmark", "kriegeskorte2008.hit-rsa", "--n-bootstrap", "50",
            "--store", str(tmp_path / "none.sqlite"), *sum((["--layer", f"{m}=3"] for m in tiny_models), [])]
    assert main([*args, "--format", "json", "--figure", str(fig)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["row_kind"] for r in rows] == ["model"] * 3 + ["pair"] * 3
    assert {"p", "p_holm", "p_fdr_bh", "ci_low", "ci_high"} <= set(rows[-1])
    assert fig.read_text().lstrip().startswith("<?xml") and "<svg" in fig.read_text()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Holm" in out and "Benjamini-Hochberg" in out


@needs_kriegeskorte
def test_compare_needs_a_layer_or_a_stored_score(tiny_models, tmp_path, capsys):
    assert main(["compare", "--models", *tiny_models[:2], "--benchmark", "kriegeskorte2008.hit-rsa",
                 "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "score it first" in capsys.readouterr().err


@needs_kriegeskorte
def test_cli_cka_of_two_models(tiny_models, capsys):
    assert main(["compare", "--cka", "--models", *tiny_models[:2], "--benchmark", "kriegeskorte2008.hit-rsa",
                 "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4 and all(0 <= r["cka"] <= 1 + 1e-9 for r in rows)
