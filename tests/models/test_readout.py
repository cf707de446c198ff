"""Read-out spec strings, incremental PCA against scikit-learn, and read-outs from the CLI."""

import numpy as np
import pandas as pd
import pytest
import torch

import neurobench as nb
from neurobench.errors import InvalidInputError
from neurobench.models import readout as readout_module
from neurobench.models.cache import ActivationCache
from neurobench.models.readout import IncrementalPCA, Readout, StreamingPCA

from .test_streaming import Net, adapter, stimuli


@pytest.mark.parametrize("spec, expected", [
    ("pool=mean", Readout(pool="mean")),
    ("pool=2,project=4096", Readout(pool=2, project=4096)),
    ("project=512, seed=3", Readout(project=512, seed=3)),
    ("pca=64,fit=first:100", Readout(pca=64, fit="first:100")),
    ("pool=mean,pca=8,fit=label:split=train", Readout(pool="mean", pca=8, fit="label:split=train")),
    ("none", Readout()),
])
def test_readout_specs_parse_and_round_trip(spec, expected):
    r = Readout.parse(spec)
    assert r == expected
    assert Readout.parse(r.spec) == r
    assert Readout.parse(r) is r


@pytest.mark.parametrize("spec, message", [
    ("pool=max", "pool must be"), ("project=0", "project must be"), ("poool=2", "unknown key 'poool'"),
    ("pool", "not KEY=VALUE"), ("pca=8,fit=last:3", "fit must be"), ("fit=first:3", "no pca=N"),
    ("pool=2,pool=3", "given twice"), ("project=abc", "must be an integer"),
])
def test_bad_readout_specs_are_refused_by_name(spec, message):
    with pytest.raises(InvalidInputError, match=message):
        Readout.parse(spec)


def test_identifiers_separate_read_outs_and_record_them():
    ids = {Readout.parse(s).identifier for s in ("pool=mean", "pool=2", "project=64", "project=64,seed=1",
                                                   "pca=4", "pca=4,fit=first:10", "none")}
    assert len(ids) == 7
    rec = Readout.parse("pool=2,project=64").to_record()
    assert rec["spec"] == "pool=2,project=64" and "pool -> very sparse random projection" in rec["convention"]


def test_incremental_pca_matches_scikit_learn_batch_by_batch():
    sk = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 30)) @ rng.standard_normal((30, 30)) + rng.standard_normal(30) * 3
    ours, ref = IncrementalPCA(5), sk.IncrementalPCA(5)
    for s0 in range(0, 120, 20):
        ours.partial_fit(torch.as_tensor(X[s0:s0 + 20]))
        ref.partial_fit(X[s0:s0 + 20])
    ours.finish()
    np.testing.assert_allclose(ours.components_.numpy(), ref.components_, atol=1e-10)
    np.testing.assert_allclose(ours.singular_values_.numpy(), ref.singular_values_, rtol=1e-10)
    np.testing.assert_allclose(ours.mean_.numpy(), ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.transform(torch.as_tensor(X)).numpy(), ref.transform(X), atol=1e-9)


def test_streaming_pca_is_exact_for_narrow_layers_and_incremental_for_wide_ones(monkeypatch):
    rng = np.random.default_rng(1)
    X = torch.as_tensor(rng.standard_normal((90, 12)) @ rng.standard_normal((12, 12)) + 5.0)
    exact = StreamingPCA(4)
    for s0 in range(0, 90, 30):
        exact.partial_fit(X[s0:s0 + 30])
    exact.finish()
    _u, sv, vt = np.linalg.svd((X - X.mean(0)).numpy(), full_matrices=False)
    assert exact.method == "covariance"
    np.testing.assert_allclose(np.abs(exact.components_.numpy()), np.abs(vt[:4]), atol=1e-8)
    np.testing.assert_allclose(exact.singular_values_.numpy(), sv[:4], rtol=1e-8)
    monkeypatch.setattr(readout_module, "EXACT_PCA_MAX_UNITS", 10)
    wide, inc = StreamingPCA(4), IncrementalPCA(4)
    for s0 in range(0, 90, 30):
        wide.partial_fit(X[s0:s0 + 30])
        inc.partial_fit(X[s0:s0 + 30])
    assert wide.finish().method == "incremental"
    np.testing.assert_allclose(wide.components_.numpy(), inc.finish().components_.numpy())


def test_pca_readout_fits_on_the_declared_set_then_projects_every_stimulus(fresh_home):
    s = stimuli(40)
    raw = adapter().activations(s, layers=["conv"], batch_size=7, cache=False)["conv"]
    a = adapter().with_readout("pca=6,fit=first:25")
    got = a.activations(s, layers=["conv"], batch_size=7, cache=False)["conv"]
    assert got.shape == (40, 6)
    fit = raw[:25].astype(np.float64)
    mean = fit.mean(0)
    _u, _s, vt = np.linalg.svd(fit - mean, full_matrices=False)
    expected = (raw - mean) @ vt[:6].T
    signs = np.sign((got * expected).sum(0))  # components are defined up to sign
    np.testing.assert_allclose(got * signs, expected, rtol=1e-3, atol=1e-3)
    # another fitting set is another cache entry; the same one is reused
    other = adapter().with_readout("pca=6,fit=first:30")
    assert other.extraction_key(s) != a.extraction_key(s)
    cached = a.activations(s, layers=["conv"], batch_size=7)["conv"]
    np.testing.assert_array_equal(cached, a.activations(s, layers=["conv"], batch_size=7)["conv"])


def test_pca_fitting_set_by_label_and_its_errors():
    s = stimuli(12)
    s.labels = pd.DataFrame({"split": ["train"] * 8 + ["test"] * 4}, index=s.ids)
    r = Readout.parse("pca=3,fit=label:split=train")
    assert list(r.fit_rows(12, s.labels)) == list(range(8))
    with pytest.raises(InvalidInputError, match="no label column 'part'"):
        Readout.parse("pca=3,fit=label:part=a").fit_rows(12, s.labels)
    with pytest.raises(InvalidInputError, match="needs at least 20 fitting stimuli"):
        Readout.parse("pca=20").fit_rows(12, s.labels)


def test_readout_from_the_cli_is_in_the_cache_key_and_the_stored_configuration(fresh_home, tmp_path, capsys):
    from neurobench.cli import main
    from neurobench.registry import benchmarks, models

    s = stimuli(24)
    rdm = np.random.default_rng(3).random((24, 24))
    rdm = (rdm + rdm.T) / 2
    np.fill_diagonal(rdm, 0)

    @nb.register_model("readout-net")
    def _model():
        return adapter(Net())

    @nb.register_benchmark("toy.readout-rsa")
    def _bench():
        return nb.RSABenchmark("toy.readout-rsa", "toy", (), lambda: s, lambda: (s.ids, rdm[None], "one RDM"),
                               comparator="spearman", n_bootstrap=0)

    store = tmp_path / "r.sqlite"
    try:
        for spec in ("pool=mean", "project=16,seed=2"):
            assert main(["score", "--model", "readout-net", "--benchmark", "toy.readout-rsa", "--store", str(store),
                         "--quiet", "--readout", spec]) == 0
        assert main(["score", "--model", "readout-net", "--benchmark", "toy.readout-rsa", "--store", str(store),
                     "--quiet", "--readout", "pool=maximum"]) == 2
        assert "pool must be" in capsys.readouterr().err
        assert main(["score", "--model", "readout-net", "--benchmark", "toy.readout-rsa", "--store", str(store),
                     "--quiet", "--precision", "float16", "--device", "cpu"]) == 2
        assert "float16 extraction is for GPUs" in capsys.readouterr().err
        result = nb.score("readout-net", "toy.readout-rsa", readout="pool=mean", device="cpu")
    finally:
        models.remove("readout-net")
        benchmarks.remove("toy.readout-rsa")
    assert result.provenance["readout"]["spec"] == "pool=mean"
    assert "readout=poolmean" in result.provenance["preprocess"]
    extractions = {e.extraction for e in ActivationCache().entries()}
    assert any("poolmean" in e for e in extractions) and any("srp16-seed2" in e for e in extractions)
