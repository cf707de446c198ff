"""The Python entry points: load a model or benchmark by name, score, store."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from pathlib import Path

from .errors import NeurobenchError, RegistrationError
from .kinds.base import Benchmark
from .models.adapter import Adapter
from .registry import benchmarks, models
from .result import ScoreResult
from .store import ResultStore

log = logging.getLogger(__name__)


def load_model(name: str | Adapter, weights: str | None = None, seed: int = 0) -> Adapter:
    """An Adapter by registered name. `weights`: None (the model's published weights), 'random'
    (untrained, labelled so everywhere) or a local checkpoint path."""
    if isinstance(name, Adapter):
        return name
    entry = models.get(name)
    params = inspect.signature(entry.factory).parameters
    kwargs = {}
    if weights is not None:
        if "weights" not in params:
            raise NeurobenchError(f"model {entry.name!r} does not take --weights; its factory has no `weights` argument")
        kwargs["weights"] = weights
    if "seed" in params:
        kwargs["seed"] = seed
    adapter = entry.factory(**kwargs)
    if not isinstance(adapter, Adapter):
        raise RegistrationError(
            f"model {entry.name!r}: its factory returned {type(adapter).__name__}, expected a neurobench Adapter "
            "(e.g. nb.TorchAdapter(module, layers=[...]))"
        )
    if not getattr(adapter, "identifier", None) or adapter.identifier == "custom":
        adapter.identifier = entry.name
    return adapter


def load_benchmark(name: str | Benchmark) -> Benchmark:
    if isinstance(name, Benchmark):
        return name
    entry = benchmarks.get(name)
    bench = entry.factory()
    if not isinstance(bench, Benchmark):
        raise RegistrationError(f"benchmark {entry.name!r}: its factory returned {type(bench).__name__}, expected a Benchmark")
    if not bench.identifier:
        bench.identifier = entry.name
    return bench


def score(
    model: str | Adapter,
    benchmark: str | Benchmark,
    layers: Sequence[str] | None = None,
    weights: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    seed: int = 0,
    store: ResultStore | str | Path | bool | None = None,
    cache: bool = True,
    memory_budget: int | None = None,
    options: dict | None = None,
) -> ScoreResult:
    """Score one model on one benchmark; returns a ScoreResult (per-layer table in `.layers`).

    `store`: None/False keeps the result in memory; True uses the default store; a path or
    ResultStore stores there.
    """
    adapter = load_model(model, weights=weights, seed=seed)
    bench = load_benchmark(benchmark)
    if options:
        bench.configure(**options)
    result = bench.score(adapter, layers=layers, batch_size=batch_size, device=device, seed=seed, cache=cache,
                         memory_budget=memory_budget)
    if store:
        target = store if isinstance(store, ResultStore) else ResultStore(None if store is True else store)
        target.add(result)
    return result
