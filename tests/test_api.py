"""The one scoring path: `nb.score_many` (selection, options, one model load, one run id, storing,
error policy), `nb.score` on top of it, and `neurobench score` printing what it reports."""

from __future__ import annotations

import pytest

import neurobench as nb
from neurobench import api
from neurobench.cli import main
from neurobench.errors import InvalidInputError, InvalidOptionError, NeurobenchError
from neurobench.kinds.rsa import RSABenchmark
from neurobench.registry import Registry, models

from .miniature import example_plugin

RSA_DEFAULTS = {"allow_negative": False, "bootstrap": "auto", "similarity_to_dissimilarity": False}  # the RSA kind's other options
RSA_ACCEPTS = "allow_negative, bootstrap, n_bootstrap, similarity_to_dissimilarity"


@pytest.fixture(scope="module")
def toy():
    """The README example's module (tiny-convnet, hue-circle stimuli and RDM), registrations undone."""
    with example_plugin("my_plugin_for_api_tests") as module:
        yield module


class NoData(RSABenchmark):
    def data_status(self):
        return False, "data not available locally: toy/missing.bin (run `neurobench fetch toy.nodata`)"


class Broken(RSABenchmark):
    def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
        raise InvalidInputError("broken on purpose")


class Spy(RSABenchmark):
    budgets: list = []

    def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
        Spy.budgets.append(memory_budget)
        return super().score_activations(activations, seed=seed, device=device, memory_budget=memory_budget)


@pytest.fixture
def registry(toy, monkeypatch):
    """A benchmark registry of toys for the default selection: two scorable, one without data,
    one ground-truth check (by name only), one that fails."""
    reg = Registry("benchmark")

    def make(cls, ident):
        return lambda: cls(ident, "hue circle", (), toy.colour_stimuli, toy.colour_rdm, comparator="spearman",
                           n_bootstrap=20)

    reg.add("toy.a", make(Spy, "toy.a"))
    reg.add("toy.b", make(RSABenchmark, "toy.b"))
    reg.add("toy.nodata", make(NoData, "toy.nodata"))
    reg.add("toy.check", make(RSABenchmark, "toy.check"), by_name_only=True)
    reg.add("toy.broken", make(Broken, "toy.broken"))
    monkeypatch.setattr(api, "benchmark_registry", reg)
    return reg


@pytest.fixture
def counting_model(toy):
    calls = []

    def factory(seed: int = 0):
        calls.append(seed)
        return toy.tiny_convnet(seed)

    models.add("toy-counting", factory)
    yield calls
    models.remove("toy-counting")


def test_default_selection_scores_local_data_records_skips_and_failures(registry, counting_model, tmp_path):
    seen, failed = [], []
    store = tmp_path / "s.sqlite"
    run = nb.score_many("toy-counting", store=store, device="cpu", memory_budget=123_456_789,
                        on_result=seen.append, on_failure=failed.append)
    assert isinstance(run, nb.ScoreRun) and not run.ok
    assert [r.benchmark for r in run.results] == ["toy.a", "toy.b"] and seen == run.results
    assert {(s.benchmark, s.cause) for s in run.skipped} == {("toy.nodata", "data"), ("toy.check", "by_name_only")}
    assert "toy/missing.bin" in next(s.reason for s in run.skipped if s.cause == "data")
    assert [(f.benchmark, type(f.error)) for f in run.failures] == [("toy.broken", InvalidInputError)]
    assert failed == run.failures
    assert counting_model == [0]  # the model is loaded once
    assert Spy.budgets[-1] == 123_456_789  # the run's memory budget reaches the kind
    rows = nb.ResultStore(store).rows()
    assert set(rows["run_id"]) == {run.run_id} and set(rows["benchmark"]) == {"toy.a", "toy.b"}
    assert run.store == store and run.model == "toy-counting" and run.model_display == "toy-counting [untrained]"
    assert list(run.headlines()["benchmark"]) == ["toy.a", "toy.b"]


def test_named_benchmarks_raise_and_run_by_name_only_checks(registry, tmp_path):
    run = nb.score_many("tiny-convnet", ["toy.check"], store=False, device="cpu")
    assert [r.benchmark for r in run.results] == ["toy.check"] and run.store is None
    with pytest.raises(InvalidInputError, match="broken on purpose"):
        nb.score_many("tiny-convnet", ["toy.a", "toy.broken"], store=tmp_path / "s.sqlite", device="cpu")
    assert list(nb.ResultStore(tmp_path / "s.sqlite").rows()["benchmark"].unique()) == ["toy.a"]


def test_default_store_unless_store_false(registry, fresh_home):
    run = nb.score_many("tiny-convnet", ["toy.b"], device="cpu")
    assert run.store == fresh_home / "results.sqlite"
    assert len(nb.ResultStore().leaderboard()) == 1


def test_an_option_a_selected_kind_does_not_declare_fails_before_anything_runs(registry, counting_model, tmp_path):
    with pytest.raises(InvalidOptionError) as info:
        nb.score_many("toy-counting", ["toy.a", "toy.b"], options={"reduction": "srp"}, store=tmp_path / "s.sqlite")
    message = str(info.value)
    assert "toy.a (Spy)" in message and "toy.b (RSABenchmark)" in message and f"accepts: {RSA_ACCEPTS}" in message
    assert counting_model == [] and not (tmp_path / "s.sqlite").exists()
    with pytest.raises(InvalidOptionError, match="n_bootstrap='many'"):
        nb.score_many("toy-counting", ["toy.a"], option_text={"n_bootstrap": "many"}, store=False)


def test_options_from_python_and_from_text(registry):
    run = nb.score_many("tiny-convnet", ["toy.a", "toy.b"], options={"n_bootstrap": 0}, store=False, device="cpu")
    assert all(r.provenance["options"] == {**RSA_DEFAULTS, "n_bootstrap": 0} for r in run.results)
    run = nb.score_many("tiny-convnet", ["toy.a"], option_text={"n_bootstrap": "5"}, store=False, device="cpu")
    assert run.results[0].provenance["options"] == {**RSA_DEFAULTS, "n_bootstrap": 5}


def test_score_uses_the_objects_it_is_handed(registry, toy, monkeypatch):
    adapter = nb.load_model("tiny-convnet")
    bench = nb.load_benchmark("toy.b", n_bootstrap=0)

    def no_lookups(name):
        raise AssertionError(f"looked up {name!r}")

    monkeypatch.setattr(api.model_registry, "get", no_lookups)
    monkeypatch.setattr(api.benchmark_registry, "get", no_lookups)
    result = nb.score(adapter, bench, device="cpu", options={"n_bootstrap": 3})
    assert isinstance(result, nb.ScoreResult) and result.model == adapter.identifier == "tiny-convnet"
    assert bench.n_bootstrap == 3 and result.provenance["options"] == {**RSA_DEFAULTS, "n_bootstrap": 3}
    with pytest.raises(NeurobenchError, match="applies to a model name"):
        nb.score(adapter, bench, weights="random")


def test_bad_arguments_are_typed_errors(registry):
    with pytest.raises(NeurobenchError, match="expected a registered name or a neurobench Adapter"):
        nb.score(42, "toy.a")
    with pytest.raises(NeurobenchError, match="expected a registered id or a Benchmark"):
        nb.load_benchmark(3.5)
    with pytest.raises(NeurobenchError, match="an empty list"):
        nb.score_many("tiny-convnet", [])


# ------------------------------------------------------------------------------------ CLI

def test_cli_default_selection_prints_results_skips_and_failures(registry, tmp_path, capsys):
    code = main(["score", "--model", "tiny-convnet", "--store", str(tmp_path / "s.sqlite"), "--device", "cpu",
                 "--quiet", "-o", "n_bootstrap=0"])
    out, err = capsys.readouterr()
    assert code == 1  # a failure in the default selection: reported, the others scored
    assert "scored toy.a" in err and "scored toy.b" in err and "failed toy.broken: broken on purpose" in err
    assert "skipped toy.check: a ground-truth check" in err
    assert "skipped 1 benchmarks whose data is not local: toy.nodata" in err
    assert "held-out score of the selected layer" in " ".join(out.split()) and "stored in" in out
    rows = nb.ResultStore(tmp_path / "s.sqlite").rows()
    assert set(rows["benchmark"]) == {"toy.a", "toy.b"} and rows["run_id"].nunique() == 1


def test_cli_options_policy(registry, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    assert main(["score", "--model", "tiny-convnet", "--benchmark", "toy.a", "--store", str(store), "--quiet",
                 "--reduction", "srp"]) == 2
    err = capsys.readouterr().err
    assert "toy.a (Spy) does not take option(s) ['reduction']" in err and f"accepts: {RSA_ACCEPTS}" in err
    assert not store.exists()
    assert main(["score", "--model", "tiny-convnet", "--benchmark", "toy.a", "--store", str(store), "--quiet",
                 "--reduction", "srp", "-o", "reduction=pca"]) == 2
    assert "disagree" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["score", "--model", "tiny-convnet", "-o", "n_bootstrap"])
    assert "expected NAME=VALUE" in capsys.readouterr().err
    assert main(["score", "--model", "tiny-convnet", "--benchmark", "toy.a", "--store", str(store), "--quiet",
                 "--device", "cpu", "--option", "n_bootstrap=7", "--memory-budget", "2GB"]) == 0
    assert Spy.budgets[-1] == 2_000_000_000
    assert '"n_bootstrap": 7' in nb.ResultStore(store).rows()["provenance"].iloc[0]


def test_cli_reduction_shorthand_sets_the_option(tmp_path, monkeypatch):
    """--reduction is -o reduction=...: it reaches the encoding benchmark's declared option."""
    captured = {}
    monkeypatch.setattr(api, "score_many", lambda model, benchmarks, **kw: captured.update(kw) or api.ScoreRun(
        run_id="r", model=model, model_display=model, failures=[api.Failure("x", NeurobenchError("stop"))]))
    assert main(["score", "--model", "m", "--benchmark", "synthetic.fmri-encoding", "--reduction", "none",
                 "-o", "alphas=1,10", "--memory-budget", "512MB"]) == 1
    assert captured["option_text"] == {"reduction": "none", "alphas": "1,10"}
    assert captured["memory_budget"] == 512_000_000 and captured["store"] is True


def test_list_benchmark_options(capsys):
    assert main(["list", "benchmarks", "--options", "kriegeskorte2008.hit-rsa"]) == 0
    out = capsys.readouterr().out
    assert "n_bootstrap" in out and "Bootstrap resamples" in out and "Schütt" in out and "RSABenchmark" in out
    assert main(["list", "benchmarks", "--options", "synthetic.spikes-encoding"]) == 0
    out = capsys.readouterr().out
    assert "reduction" in out and "alphas" in out
    assert main(["list", "models", "--options", "toporesnet18"]) == 2
    assert "--options describes a benchmark's options" in capsys.readouterr().err
    assert main(["list", "benchmarks", "--options", "kriegeskorte2008.hit-rs"]) == 2
    assert "Did you mean 'kriegeskorte2008.hit-rsa'" in capsys.readouterr().err
