"""Start-up cost: `neurobench --help` imports no torch, `import neurobench` exposes its public names
lazily, and looking up one id imports only the plugin that declares it (fresh processes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import neurobench as nb


def _modules_after(code: str) -> dict:
    """Run `code` in a fresh interpreter; report which of the interesting modules it imported."""
    probe = code + """
import json, sys
print(json.dumps(sorted(m for m in sys.modules if m in ("torch", "pandas", "torchvision", "transformers")
                        or m.startswith(("neurobench.adapters.", "neurobench.benchmarks.", "neurobench.metrics.")))))
"""
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--help"], ["score", "--help"], ["perf", "ridge", "--help"], ["--version"]])
def test_help_imports_neither_torch_nor_pandas(argv):
    loaded = _modules_after(f"""
import contextlib, io
from neurobench.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main({argv!r})
    except SystemExit as exit:
        assert exit.code == 0, exit.code
""")
    assert not loaded & {"torch", "pandas", "torchvision"}, loaded
    assert not any(m.startswith(("neurobench.adapters.", "neurobench.benchmarks.")) for m in loaded), loaded


def test_help_of_the_installed_command():
    proc = subprocess.run([sys.executable, "-m", "neurobench.cli", "score", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "--option NAME=VALUE" in proc.stdout and "--memory-budget" in proc.stdout


def test_import_neurobench_is_lazy():
    loaded = _modules_after("import neurobench as nb; assert nb.__version__")
    assert not loaded & {"torch", "pandas"}, loaded


def test_looking_up_one_benchmark_imports_only_its_plugin():
    loaded = _modules_after("import neurobench as nb; nb.load_benchmark('kriegeskorte2008.hit-rsa')")
    assert "neurobench.benchmarks.kriegeskorte2008" in loaded
    others = {"neurobench.benchmarks.nsd", "neurobench.benchmarks.things_fmri", "neurobench.benchmarks.things_meg",
              "neurobench.benchmarks.pereira2018", "neurobench.benchmarks.majajhong2015",
              "neurobench.adapters.huggingface", "neurobench.adapters.torchvision_zoo", "neurobench.adapters.toponets",
              "neurobench.metrics.catalog"}
    assert not loaded & others, loaded & others
    assert "transformers" not in loaded and "torchvision" not in loaded


def test_looking_up_one_model_imports_only_its_plugin():
    loaded = _modules_after("import neurobench as nb; nb.registry.models.get('toporesnet18-tau10')")
    assert "neurobench.adapters.toponets" in loaded
    assert not loaded & {"neurobench.adapters.huggingface", "neurobench.benchmarks.nsd",
                         "neurobench.benchmarks.kriegeskorte2008"}, loaded


PUBLIC = ["RSABenchmark", "TemporalRSABenchmark", "TemporalData", "EncodingBenchmark", "fixed_split", "kfold_splits",
          "Splits", "repeated_assembly", "StimulusSet", "Readout", "ImagePreprocess", "imagenet_preprocess", "Adapter",
          "TorchAdapter", "TextAdapter", "Benchmark", "Scores", "ScoreResult", "ResultStore", "option", "load_model",
          "load_benchmark", "score", "score_many", "ScoreRun", "register_model", "register_benchmark",
          "register_metric", "errors"]


def test_public_names_resolve_from_the_top():
    for name in PUBLIC:
        assert name in nb.__all__ and name in dir(nb), name
        assert getattr(nb, name) is not None, name
    assert nb.errors.UnknownNameError.__module__ == "neurobench.errors"
    assert nb.Benchmark is nb.kinds.base.Benchmark and nb.score_many is nb.api.score_many
    for name in nb.__all__:
        getattr(nb, name)  # everything in __all__ exists, so `from neurobench import *` works
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        nb.no_such_name  # noqa: B018


def test_kinds_are_exposed_at_the_top():
    from neurobench.kinds import per_subject, temporal_encoding, topographic

    assert nb.PerSubjectEncodingBenchmark is per_subject.PerSubjectEncodingBenchmark
    assert nb.SubjectResponses is per_subject.SubjectResponses
    assert nb.TemporalEncodingBenchmark is temporal_encoding.TemporalEncodingBenchmark
    assert nb.TopographicBenchmark is topographic.TopographicBenchmark
