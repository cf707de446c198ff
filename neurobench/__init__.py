"""neurobench: how brain-like is a model? Encoding, RSA and topography benchmarks on torch.

Everything a user or plugin author needs is importable from here (`nb.score`, `nb.TorchAdapter`,
`nb.register_benchmark`, ...). The names are resolved lazily (PEP 562): `import neurobench` and
`neurobench --help` import neither torch nor pandas; the first use of a name imports its module.
"""

from __future__ import annotations

import importlib
import importlib.util

from .version import __version__

# public name -> module (relative to this package) that defines it
_LAZY = {
    # scoring and loading
    "load_model": "api", "load_benchmark": "api", "score": "api", "score_many": "api", "ScoreRun": "api",
    "Skipped": "api", "Failure": "api",
    # sweeps (Dask) and stores
    "sweep": "sweeps.run", "SweepRun": "sweeps.run", "ModelSpec": "sweeps.plan", "ClusterSpec": "sweeps.cluster",
    "read_sweep_file": "sweeps.plan", "open_store": "stores", "merge_stores": "stores",
    # development: checkpoints over training
    "chronology": "development", "score_checkpoints": "development", "checkpoint_step": "development",
    "plot_chronology": "development",
    # registration
    "register_model": "registry", "register_benchmark": "registry", "register_metric": "registry",
    # benchmark kinds and what they are built from
    "Benchmark": "kinds.base", "RSABenchmark": "kinds.rsa", "TemporalRSABenchmark": "kinds.temporal_rsa",
    "TemporalData": "kinds.temporal_rsa", "EncodingBenchmark": "kinds.encoding",
    "PerSubjectEncodingBenchmark": "kinds.per_subject", "SubjectResponses": "kinds.per_subject",
    "TemporalEncodingBenchmark": "kinds.temporal_encoding", "TopographicBenchmark": "kinds.topographic",
    "HierarchyBenchmark": "kinds.hierarchy",
    "option": "options",
    "Splits": "metrics.splits", "fixed_split": "metrics.splits", "kfold_splits": "metrics.splits",
    "repeated_assembly": "data.assemblies", "StimulusSet": "data.stimuli",
    # models
    "Adapter": "models.adapter", "TorchAdapter": "models.adapter", "TextAdapter": "models.text",
    "Readout": "models.readout", "ImagePreprocess": "models.preprocess", "imagenet_preprocess": "models.preprocess",
    # results
    "Scores": "result", "ScoreResult": "result", "ResultStore": "store", "export_targets": "export",
    "TemporalTrials": "kinds.temporal_rsa",
    # reports, leaderboard site, model comparison (`nb.report(...)` is the callable package `report`)
    "write_report": "report.build", "write_leaderboard_site": "report.build",
    "compare": "report.compare", "layer_cka": "report.compare",
}
_SUBMODULES = ("errors", "report")  # modules exposed as attributes: `nb.errors.UnknownNameError`

__all__ = sorted(_LAZY) + list(_SUBMODULES) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
    elif name in _SUBMODULES or not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # nb.errors, nb.registry, ...
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
